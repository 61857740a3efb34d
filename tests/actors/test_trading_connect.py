"""The trading stage as the trading connection, over real sockets against the embedded
exchange: limits, tier and order group in READY; the startup policy for resting orders
this installation did not place; private events handed to the listener, kept open while
the stage lives and reconnected as an event (never a stage failure); ``--no-trading`` and
production without ``--allow-production-trading`` write nothing.

Orders "not ours" are placed before the supervisor starts, in the supervisor's own
account (the demo member) with ids outside the allocator's prefix; "ours" carry the
allocator's shape. A second member (``add_member``) is the counterparty that fills ours.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import pytest

from actors.gateway_config import ID_STATE_FILE
from actors.trading_connect import exchange_order
from kalshi_api.account_limits import get_account_limits
from kalshi_api.auth import load_signer
from kalshi_api.environments import Environment
from kalshi_api.models import Order
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.private_events import FillEvent, PrivateConnected, UserOrder
from kalshi_api.rest import KalshiRestClient
from kalshi_api.stream_events import StreamFailed
from kalshi_sim.account import DEMO_MEMBER
from kalshi_sim.exchange import EmbeddedExchange
from messages.events import StateTransition
from messages.faults import InjectFault
from messages.orders import TradingState
from messages.states import State
from supervision.config import GatewaySettings
from tests.harness import WAIT, make_config, metadata_of, running_supervisor, start_exchange
from tests.listeners import Events
from trading.ids import write_high_water

LOW = Decimal("0.02")
"""A bid far below any ask: it rests and never fills by itself."""


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(delta_rate=0)
    yield exchange
    exchange.stop()


def order_api(exchange: EmbeddedExchange, key_id: str | None = None, path: Any = None) -> OrderApi:
    signer = load_signer(key_id or exchange.key_id, path or exchange.private_key_path, env={})
    return OrderApi(KalshiRestClient(exchange.rest_url, signer, timeout=5.0))


def place(
    api: OrderApi,
    ticker: str,
    client_order_id: str,
    *,
    side: str = "bid",
    price: Decimal = LOW,
    count: Decimal = Decimal(1),
) -> str:
    created = api.create(
        CreateOrder(
            ticker=ticker, side=side, count=count, price=price, client_order_id=client_order_id
        )
    )
    return created.order_id


def resting_ids(exchange: EmbeddedExchange) -> set[str]:
    truth = exchange.truth(DEMO_MEMBER)[DEMO_MEMBER]
    return {o.order_id for o in truth.orders if o.status == "resting"}


def groups(exchange: EmbeddedExchange) -> list[Any]:
    return list(exchange.truth(DEMO_MEMBER)[DEMO_MEMBER].groups)


def failures(supervisor: Any) -> list[StateTransition]:
    return [t for t in supervisor.recorder.transitions() if t.to_state is State.ERROR]


def test_connect_when_trading_enabled_ready_carries_tier_write_budget_and_group(
    exchange: EmbeddedExchange,
) -> None:
    config = make_config(exchange, gateway=GatewaySettings(order_group_limit=Decimal(37)))
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        summary = metadata_of(supervisor, State.READY)["trading_client"]
        with KalshiRestClient(
            exchange.rest_url, load_signer(exchange.key_id, exchange.private_key_path, env={})
        ) as client:
            limits = get_account_limits(client)
        assert summary["tier"] == limits.usage_tier
        assert Decimal(summary["write_budget"]["refill_per_second"]) == limits.write.refill_rate
        assert Decimal(summary["write_budget"]["capacity"]) == limits.write.bucket_capacity
        [group] = groups(exchange)
        assert summary["order_group"] == group.order_group_id
        assert group.contracts_limit_centi == 37 * 100
        assert not group.triggered
        assert summary["open_orders"] == 0


@pytest.mark.parametrize("policy", ["cancel", "adopt", "leave"])
def test_startup_when_unknown_orders_rest_applies_policy_and_keeps_ours(
    exchange: EmbeddedExchange, policy: str
) -> None:
    tickers = exchange.markets.tickers()
    api = order_api(exchange)
    unknown = {place(api, tickers[0], "someone-else-1"), place(api, tickers[1], "someone-else-2")}
    mine = place(api, tickers[0], "ks-0123456789abcdef-7")
    api.client.close()
    before = resting_ids(exchange)
    assert unknown | {mine} <= before
    config = make_config(exchange, startup_orders=policy)
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        summary = metadata_of(supervisor, State.READY)["trading_client"]
        after = resting_ids(exchange)
        assert mine in after  # ours is never touched
        if policy == "cancel":
            assert not unknown & after
            assert summary["open_orders"] == 1
        elif policy == "adopt":
            assert unknown <= after
            # every resting order: ours, and all the others (the account's seeded ones too)
            assert summary["open_orders"] == len(before)
        else:
            assert unknown <= after
            assert summary["open_orders"] == 1
        assert failures(supervisor) == []


def test_startup_when_id_has_our_prefix_above_high_water_treats_it_as_unknown(
    exchange: EmbeddedExchange, tmp_path: Any
) -> None:
    write_high_water(tmp_path / ID_STATE_FILE, 10)
    tickers = exchange.markets.tickers()
    api = order_api(exchange)
    below = place(api, tickers[0], "ks-00aa-9")
    above = place(api, tickers[0], "ks-00aa-10")
    api.client.close()
    config = make_config(exchange, gateway=GatewaySettings(state_dir=tmp_path))
    with running_supervisor(exchange, config) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        after = resting_ids(exchange)
        assert below in after
        assert above not in after


def test_private_events_when_our_order_fills_reach_the_listener(
    exchange: EmbeddedExchange,
) -> None:
    heard = Events()
    ticker = exchange.markets.tickers()[2]
    with running_supervisor(exchange, private_events=heard) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert heard.of(PrivateConnected)
        # The counterparty rests first, so ours trades as it arrives (the order gateway
        # would cancel an order of ours it does not track before it could fill).
        maker = exchange.add_member("maker", {s: 100_000 for s in exchange.account.shard_indexes()})
        theirs = order_api(exchange, maker.key_id, maker.private_key_path)
        place(theirs, ticker, "maker-1", side="ask", price=Decimal("0.97"), count=Decimal(2))
        theirs.client.close()
        ours = order_api(exchange)
        order_id = place(ours, ticker, "ks-00bb-1", price=Decimal("0.97"), count=Decimal(2))
        ours.client.close()

        def filled(events: list[object]) -> int:
            return sum(
                e.count for e in events if isinstance(e, FillEvent) and e.order_id == order_id
            )

        assert heard.wait_until(lambda events: filled(events) == 200)  # centi-contracts
        assert heard.wait_until(
            lambda events: any(isinstance(e, UserOrder) and e.order_id == order_id for e in events)
        )
        fills = [e for e in heard.of(FillEvent) if e.order_id == order_id]
        assert {f.client_order_id for f in fills} == {"ks-00bb-1"}
        traded = [
            f for f in exchange.truth(DEMO_MEMBER)[DEMO_MEMBER].fills if f.order_id == order_id
        ]
        assert sorted((f.count, f.yes_price) for f in fills) == sorted(
            (f.count_centi, f.yes_price_micros) for f in traded
        )
        assert supervisor.state is State.READY
        assert failures(supervisor) == []


def test_private_channels_when_session_is_lost_reconnect_as_event_not_failure(
    exchange: EmbeddedExchange,
) -> None:
    heard = Events()
    with running_supervisor(exchange, private_events=heard) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert heard.wait_for(PrivateConnected)
        assert exchange.ws.drop_private_sessions(DEMO_MEMBER) == 1
        assert heard.wait_for(PrivateConnected, 2)
        sessions = [e.session for e in heard.of(PrivateConnected)]
        assert sessions[-1] > sessions[0]
        assert supervisor.state is State.READY
        assert failures(supervisor) == []
        assert len(supervisor.recorder.transitions()) == 5  # nothing after READY


def test_private_channels_when_upgrade_is_refused_reopen_after_rest_check_not_failure(
    exchange: EmbeddedExchange,
) -> None:
    heard = Events()
    config = make_config(exchange, exchange_check_interval=3600.0)
    with running_supervisor(exchange, config, private_events=heard) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert heard.wait_for(PrivateConnected)
        # The order gateway reads nothing until it first trades: the refusal is the channels'.
        exchange.faults.reject_auth(1)  # the private channels' next upgrade: 401, given up
        assert exchange.ws.drop_private_sessions(DEMO_MEMBER) == 1
        assert heard.wait_for(StreamFailed)

        def reopened(events: list[object]) -> bool:
            kinds = [type(e) for e in events]
            failed = kinds.index(StreamFailed)
            return PrivateConnected in kinds[failed:]

        assert heard.wait_until(reopened)
        assert supervisor.state is State.READY
        assert failures(supervisor) == []


def test_no_trading_when_running_opens_no_private_channels_and_writes_nothing(
    exchange: EmbeddedExchange,
) -> None:
    heard = Events()
    config = make_config(exchange, trading_enabled=False)
    with running_supervisor(exchange, config, private_events=heard) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert "trading_client" not in metadata_of(supervisor, State.READY)
        assert heard.events == []
        assert groups(exchange) == []
        details = [op.detail for op in exchange.oplog.entries("rest")]
        assert not [d for d in details if "/account/" in d or "/portfolio/" in d]
        assert exchange.oplog.entries("ws_subscribe_channel") == [] or all(
            "fill" not in op.detail for op in exchange.oplog.entries("ws_subscribe_channel")
        )


def test_production_when_not_allowed_trades_nothing_and_says_so(
    exchange: EmbeddedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    api = order_api(exchange)
    unknown = place(api, exchange.markets.tickers()[0], "someone-else-1")
    api.client.close()
    heard = Events()
    config = make_config(exchange, environment=Environment.PRODUCTION)
    with (
        caplog.at_level(logging.WARNING, logger="kalshi_supervisor"),
        running_supervisor(exchange, config, private_events=heard) as supervisor,
    ):
        assert supervisor.wait_for_state(State.READY, WAIT)
        summary = metadata_of(supervisor, State.READY)["trading_client"]
        assert summary["mode"] == "live"
        assert summary["order_group"] is None
        assert groups(exchange) == []
        assert unknown in resting_ids(exchange)  # reads only: nothing cancelled
        assert heard.of(PrivateConnected)  # reads still flow
        link = supervisor.trading_link
        assert link is not None and link.state is TradingState.HALTED  # the gateway starts so
    lines = [r.getMessage() for r in caplog.records if "trading HALTED" in r.getMessage()]
    assert len(lines) == 1


def test_production_when_allowed_trades_and_warns_once(
    exchange: EmbeddedExchange, caplog: pytest.LogCaptureFixture
) -> None:
    config = make_config(
        exchange, environment=Environment.PRODUCTION, allow_production_trading=True
    )
    with (
        caplog.at_level(logging.WARNING, logger="kalshi_supervisor"),
        running_supervisor(exchange, config) as supervisor,
    ):
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.READY)["trading_client"]["order_group"] is not None
        assert len(groups(exchange)) == 1
    warnings = [r for r in caplog.records if "real money" in r.getMessage()]
    assert [r.levelno for r in warnings] == [logging.WARNING]


def test_dry_run_when_unknown_orders_rest_writes_nothing(exchange: EmbeddedExchange) -> None:
    api = order_api(exchange)
    unknown = place(api, exchange.markets.tickers()[0], "someone-else-1")
    api.client.close()
    with running_supervisor(exchange, make_config(exchange, dry_run=True)) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert metadata_of(supervisor, State.READY)["trading_client"]["order_group"] is None
        assert groups(exchange) == []
        assert unknown in resting_ids(exchange)


def test_trading_stage_when_restarted_closes_its_private_channels(
    exchange: EmbeddedExchange,
) -> None:
    heard = Events()
    with running_supervisor(exchange, private_events=heard) as supervisor:
        assert supervisor.wait_for_state(State.READY, WAIT)
        before = [t.name for t in threading.enumerate() if t.name == "kalshi-private-ws"]
        assert len(before) == 1
        mark = supervisor.recorder.last_id
        supervisor.inject(InjectFault(target="trading", fault="crash"))
        assert supervisor.wait_for_state(State.READY, WAIT, after=mark)
        assert heard.wait_for(PrivateConnected, 2)
        alive = [t.name for t in threading.enumerate() if t.name == "kalshi-private-ws"]
        assert alive == before  # the crashed incarnation's channels were closed
    assert not [t for t in threading.enumerate() if t.name == "kalshi-private-ws"]


@pytest.mark.parametrize(
    ("fields", "side", "price"),
    [
        ({"book_side": "bid", "yes_price_dollars": "0.4200"}, "bid", Decimal("0.42")),
        ({"book_side": "ask", "yes_price_dollars": "0.4200"}, "ask", Decimal("0.42")),
        ({"side": "yes", "action": "buy", "yes_price_dollars": "0.30"}, "bid", Decimal("0.30")),
        ({"side": "yes", "action": "sell", "yes_price_dollars": "0.30"}, "ask", Decimal("0.30")),
        ({"side": "no", "action": "buy", "no_price_dollars": "0.65"}, "ask", Decimal("0.35")),
        ({"side": "no", "action": "sell", "no_price_dollars": "0.65"}, "bid", Decimal("0.35")),
    ],
)
def test_exchange_order_when_read_from_rest_gives_the_yes_leg_at_the_yes_price(
    fields: dict[str, str], side: str, price: Decimal
) -> None:
    order = Order.model_validate(
        {
            "order_id": "o-1",
            "ticker": "KXFED-26DEC-T3.00",
            "status": "resting",
            "client_order_id": "c-1",
            "remaining_count_fp": "3.50",
            "fill_count_fp": "1.00",
            **fields,
        }
    )
    view = exchange_order(order)
    assert (view.side, view.price) == (side, price)
    assert (view.remaining_count, view.fill_count) == (Decimal("3.50"), Decimal("1.00"))
    assert view.status == "resting" and view.client_order_id == "c-1"
