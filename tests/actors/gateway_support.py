"""Helpers for the order gateway's tests: a trading service a test drives, a counterparty
member, and the end-of-test comparison with the exchange's truth."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.service import ServiceActor, ServiceOptions, ServiceSpec
from app.handle import Supervisor
from kalshi_api.order_models import CreateOrder
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.exchange import EmbeddedExchange
from messages.account import AccountView
from messages.events import SupervisorEvent
from messages.orders import Fill, OrderStatus, OrderUpdate, Position
from messages.states import State
from supervision.config import GatewaySettings
from tests.harness import make_config, signer_from_file

WAIT = 15.0
RECORDERS: dict[str, Recorder] = {}


@dataclass(frozen=True)
class Do:
    """Run ``fn(service)`` on the service's own thread (asked, with a timeout)."""

    fn: Callable[[Any], Any]


class Recorder:
    """What the trading service's hooks saw, with a condition to wait on."""

    def __init__(self) -> None:
        self.cond = threading.Condition()
        self.orders: list[OrderUpdate] = []
        self.fills: list[Fill] = []
        self.positions: list[Position] = []
        self.ref: Any = None
        self.ready = False
        self.not_ready = 0
        self.events: list[Any] = []
        self.accounts: list[AccountView] = []
        self.account_gate: threading.Event | None = None
        """When set, the next ``on_account`` the gateway caused waits for it (after being
        recorded): the service is busy while a burst arrives."""

    def add(self, kind: str, item: Any) -> None:
        with self.cond:
            getattr(self, kind).append(item)
            self.cond.notify_all()

    def wait(self, predicate: Callable[[Recorder], bool], timeout: float = WAIT) -> bool:
        with self.cond:
            return self.cond.wait_for(lambda: predicate(self), timeout)

    def status_of(self, cid: str) -> OrderStatus | None:
        found = [u.status for u in self.orders if u.client_order_id == cid]
        return found[-1] if found else None

    def last(self, cid: str) -> OrderUpdate | None:
        found = [u for u in self.orders if u.client_order_id == cid]
        return found[-1] if found else None

    def call(self, fn: Callable[[Any], Any]) -> Any:
        assert self.wait(lambda r: r.ref is not None)
        return self.ref.ask(Do(fn), timeout=WAIT)


class TraderOptions(ServiceOptions):
    key: str


class Trader(ServiceActor):
    """A service that trades what the test tells it to and records its hooks."""

    options_model = TraderOptions

    @property
    def recorder(self) -> Recorder:
        return RECORDERS[self.options.key]

    def setup(self) -> None:
        self.recorder.ref = self.actor_ref

    def on_ready(self, metadata: Any) -> None:
        # the gateway heard READY before any service did: orders from here on are admitted
        with self.recorder.cond:
            self.recorder.ready = True
            self.recorder.cond.notify_all()

    def on_not_ready(self, state: Any, reason: str) -> None:
        with self.recorder.cond:
            self.recorder.ready = False
            self.recorder.not_ready += 1
            self.recorder.cond.notify_all()

    def on_event(self, event: Any) -> None:
        self.recorder.add("events", event)

    def on_order(self, update: OrderUpdate) -> None:
        self.recorder.add("orders", update)

    def on_fill(self, fill: Fill) -> None:
        self.recorder.add("fills", fill)

    def on_account(self, account: AccountView) -> None:
        self.recorder.add("accounts", account)
        gate = self.recorder.account_gate
        if gate is not None and account.cause == "trading":
            self.recorder.account_gate = None
            gate.wait(WAIT)

    def on_position(self, position: Position) -> None:
        self.recorder.add("positions", position)

    def handle(self, message: Any) -> Any:
        if isinstance(message, Do):
            return message.fn(self)
        return super().handle(message)


class Counterparty:
    """Another member trading against us through its own signed client."""

    def __init__(self, exchange: EmbeddedExchange, name: str = "bob") -> None:
        key = exchange.add_member(name)
        signer = signer_from_file(key.key_id, key.private_key_path)
        self.client = KalshiRestClient(exchange.rest_url, signer, timeout=5.0)
        self.api = OrderApi(self.client, grid_for=lambda _: None)
        self._seq = 0

    def order(self, ticker: str, side: str, count: str, price: str, tif: str = "immediate_or_cancel"
              ) -> Any:
        self._seq += 1
        return self.api.create(
            CreateOrder(ticker=ticker, side=side, count=Decimal(count),  # type: ignore[arg-type]
                        price=Decimal(price), client_order_id=f"bob-{self._seq}",
                        time_in_force=tif)  # type: ignore[arg-type]
        )

    def close(self) -> None:
        self.client.close()


@contextmanager
def trading_supervisor(
    exchange: EmbeddedExchange,
    key: str,
    member: str = "alice",
    config: dict[str, Any] | None = None,
    before_start: Callable[[Any], None] | None = None,
    **gateway: Any,
) -> Iterator[tuple[Supervisor, Recorder]]:
    """A supervisor trading as a fresh ``member`` with one ``Trader`` service, READY.
    ``before_start(member_key)`` runs once the member exists, before the supervisor starts
    (orders placed there are ones this process did not place)."""
    recorder = Recorder()
    RECORDERS[key] = recorder
    member_key = exchange.add_member(member)
    if before_start is not None:
        before_start(member_key)
    signer = signer_from_file(member_key.key_id, member_key.private_key_path)
    settings = {"lookup_in_flight_ms": 300, "halt_timeout": 20.0, **gateway}
    config = dict(config or {})
    # the session group's limit is a gateway setting (shared with the trading stage);
    # ``order_group=False`` is no group at all
    if "order_group_limit" in config:
        settings["order_group_limit"] = Decimal(config.pop("order_group_limit"))
    if settings.pop("order_group", True) is False:
        settings["order_group_limit"] = None
    supervisor_config = make_config(
        exchange,
        market_count=3,
        request_timeout=1.0,
        gateway=GatewaySettings(**settings),
        **config,
    )

    def notify(_: object) -> None:  # predicates on events and the gateway's view re-run
        with recorder.cond:
            recorder.cond.notify_all()

    supervisor = Supervisor(
        supervisor_config,
        signer,
        services=[ServiceSpec("trader", Trader, {"key": key}, tickers=())],
        listeners=[notify],
        exchange=exchange,
    )
    supervisor.start()
    try:
        assert supervisor.wait_for_state(State.READY, WAIT)
        assert recorder.wait(lambda r: r.ref is not None and r.ready)
        yield supervisor, recorder
    finally:
        supervisor.shutdown(timeout=5.0)
        RECORDERS.pop(key, None)


def events_of(supervisor: Supervisor, kind: str) -> list[SupervisorEvent]:
    return [e for e in supervisor.recorder.events() if getattr(e, "type", None) == kind]


def assert_matches_truth(supervisor: Supervisor, exchange: EmbeddedExchange, member: str) -> None:
    """Nothing unknown, nothing duplicated, open orders and positions equal to the truth."""
    truth = exchange.truth(member)[member]
    status = supervisor.trading_status()
    cids = [o.client_order_id for o in truth.orders]
    assert len(cids) == len(set(cids)), f"duplicated client_order_ids at the exchange: {cids}"
    tracked = {o.client_order_id for o in status.open_orders}
    assert not [o for o in status.open_orders if o.status is OrderStatus.OUTCOME_UNKNOWN]
    assert not [o for o in status.open_orders if o.status is OrderStatus.PENDING]
    resting = {o.client_order_id for o in truth.orders if o.status == "resting"}
    assert tracked == resting
    ours = {p.ticker: p.position for p in status.positions}
    true_positions = {
        p.ticker: Decimal(p.position_centi).scaleb(-2) for p in truth.positions
        if p.position_centi
    }
    assert ours == true_positions, (ours, true_positions)


TICK = Decimal("0.01")


@dataclass(frozen=True)
class Quiet:
    """A market whose house book leaves room: ``bid`` and ``ask`` are the house's best, at
    least three ticks apart, so an order of ours can rest below the bid, above the ask, or
    inside the spread (best on its side: a counterparty's IOC at that price takes ours)."""

    ticker: str
    bid: Decimal
    ask: Decimal

    @property
    def inside(self) -> str:
        return str(self.bid + TICK)

    def below(self, ticks: int) -> str:
        return str(self.bid - ticks * TICK)

    def above(self, ticks: int) -> str:
        return str(self.ask + ticks * TICK)


def quiet_market(exchange: EmbeddedExchange, skip: tuple[str, ...] = ()) -> Quiet:
    """The first market (the exchange's order) with such a book; the exchange must be still
    (``delta_rate=0``) so the house does not move it."""
    for ticker in exchange.markets.tickers():
        if ticker in skip:
            continue
        levels = exchange.markets.levels(ticker)
        if not levels.yes or not levels.no:
            continue
        bid = Decimal(max(levels.yes)[0]).scaleb(-6)
        ask = 1 - Decimal(max(levels.no)[0]).scaleb(-6)
        if bid >= Decimal("0.10") and ask - bid >= 3 * TICK and ask <= Decimal("0.90"):
            return Quiet(ticker, bid, ask)
    raise AssertionError("no market with room in its book: start the exchange with more")
