"""READY's trading summary is assembled from two stages: the sync stage's seed keys and the
trading stage's refinement (tier, write budget, open orders, order group)."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from actors.registry import SYNC, TRADING
from core.ready import ready_metadata, refine_fields
from messages.metadata import ReadyMetadata, TradingReadyMetadata, WriteBudget
from messages.results import TradingConnected
from tests.core.rig import sync_result
from tests.harness import TRADING_CLIENT_KEYS

ORDERBOOK_FIELDS = {
    "markets_connected": 1,
    "snapshots_received": 1,
    "deltas_received": 0,
    "connection_established": True,
    "first_snapshot_received": True,
    "environment": "local",
}
CONNECTED = TradingConnected(
    api_url="http://x",
    exchange_active=True,
    trading_active=True,
    usage_tier="premier",
    write_budget=WriteBudget(refill_per_second=Decimal(20), capacity=Decimal(200)),
    order_group_id="g-1",
)


def _parts(*results: tuple[Any, Any]) -> dict[str, Any]:
    fields: dict[str, Any] = dict(ORDERBOOK_FIELDS)
    later = []
    for spec, result in results:
        assert spec.ready is not None
        if spec.ready.refines:
            later.append(spec.ready.fields(result))
        else:
            fields.update(spec.ready.fields(result))
    for more in later:
        refine_fields(fields, more)
    return fields


def test_ready_fields_when_trading_and_sync_contribute_make_one_full_summary() -> None:
    fields = _parts((TRADING, CONNECTED), (SYNC, sync_result(balance=120)))
    metadata = ready_metadata(fields, [ReadyMetadata, TradingReadyMetadata])
    assert isinstance(metadata, TradingReadyMetadata)
    summary = metadata.trading_client
    assert set(summary.model_dump()) == TRADING_CLIENT_KEYS
    assert (summary.balance, summary.tier, summary.order_group) == (120, "premier", "g-1")
    assert summary.write_budget == CONNECTED.write_budget
    assert summary.open_orders == 0


def test_ready_fields_when_sync_is_absent_trading_adds_nothing() -> None:
    fields = _parts((TRADING, CONNECTED))
    assert "trading_client" not in fields
    assert type(ready_metadata(fields, [ReadyMetadata])) is ReadyMetadata


def test_refine_fields_when_key_is_not_a_mapping_leaves_it() -> None:
    fields: dict[str, Any] = {"a": 1, "b": {"x": 1}}
    refine_fields(fields, {"a": {"y": 2}, "b": {"y": 2}, "c": {"z": 3}})
    assert fields == {"a": 1, "b": {"x": 1, "y": 2}}
