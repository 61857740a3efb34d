"""Each transition's metadata model has exactly the seed's keys, and cannot be changed."""

from __future__ import annotations

import pydantic
import pytest

from messages.base import Message
from messages.metadata import (
    KalshiDataSyncMetadata,
    OrderbookConnectMetadata,
    ReadyMetadata,
    StartupMetadata,
    TradingClientConnectMetadata,
    TradingClientSummary,
    TradingReadyMetadata,
)
from messages.results import SyncChanges, SyncState
from messages.states import State
from tests.harness import READY_KEYS, SEED_KEYS, TRADING_CLIENT_KEYS

TRADING_FIELDS = {"balance", "portfolio_value", "positions", "orders", "trading_client"}

SEED_KEYS_BY_MODEL: dict[type[Message], set[str]] = {
    StartupMetadata: SEED_KEYS[State.INITIALIZING],
    OrderbookConnectMetadata: SEED_KEYS[State.ORDERBOOK_CONNECT],
    TradingClientConnectMetadata: SEED_KEYS[State.TRADING_CLIENT_CONNECT],
    KalshiDataSyncMetadata: SEED_KEYS[State.KALSHI_DATA_SYNC],
    ReadyMetadata: READY_KEYS,
    TradingClientSummary: TRADING_CLIENT_KEYS,
}


@pytest.mark.parametrize(
    ("model", "keys"), SEED_KEYS_BY_MODEL.items(), ids=lambda v: getattr(v, "__name__", "")
)
def test_model_fields_when_compared_with_seed_are_exactly_equal(
    model: type[Message], keys: set[str]
) -> None:
    assert set(model.model_fields) == keys


def test_trading_ready_fields_when_compared_add_only_trading_client() -> None:
    assert set(TradingReadyMetadata.model_fields) == READY_KEYS | {"trading_client"}


@pytest.mark.parametrize(
    "model",
    [
        StartupMetadata,
        OrderbookConnectMetadata,
        TradingClientConnectMetadata,
        KalshiDataSyncMetadata,
        ReadyMetadata,
    ],
)
def test_pre_ready_models_when_inspected_have_no_trading_field(model: type[Message]) -> None:
    assert not set(model.model_fields) & TRADING_FIELDS - {"mode"}


def test_orderbook_metadata_when_given_balance_is_rejected() -> None:
    with pytest.raises(pydantic.ValidationError, match="balance"):
        OrderbookConnectMetadata(
            ws_url="ws://x", markets=("A",), market_count=1, environment="local", balance=50000
        )


def test_metadata_when_mutated_raises() -> None:
    metadata = OrderbookConnectMetadata(
        ws_url="ws://x", markets=("A",), market_count=1, environment="local"
    )
    with pytest.raises(pydantic.ValidationError):
        metadata.market_count = 2  # type: ignore[misc]
    with pytest.raises(pydantic.ValidationError):
        metadata.balance = 50000  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("tickers", "expected"),
    [
        ((), ()),
        (("A",), ("A",)),
        (("A", "B"), ("A", "B")),
        (("A", "B", "C"), ("A", "B", "...and 1 more")),
        (tuple(f"T{i}" for i in range(20)), ("T0", "T1", "...and 18 more")),
    ],
)
def test_summarize_markets_when_listing_follows_seed_format(
    tickers: tuple[str, ...], expected: tuple[str, ...]
) -> None:
    assert OrderbookConnectMetadata.summarize_markets(tickers) == expected


def test_sync_changes_when_computed_are_signed_strings() -> None:
    before = SyncState(balance=50000, portfolio_value=1000, positions=3, orders=4)
    after = SyncState(balance=50120, portfolio_value=900, positions=3, orders=5)
    changes = SyncChanges.between(before, after)
    assert changes.model_dump() == {
        "balance_change": "+120",
        "portfolio_change": "-100",
        "positions_change": "+0",
        "orders_change": "+1",
    }
