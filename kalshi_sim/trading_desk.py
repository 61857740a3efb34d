"""The exchange's trading desk: the one matching engine, its clock and the calendar, per call.

Why a desk between the wire and :class:`~kalshi_sim.matching.engine.MatchingEngine` (which the
market set owns, ``MarketSet.engine``, behind ``MarketSet.lock``): the engine is pure (no
clock, no threads, no I/O), while the exchange has to

* tell the engine what the exchange's calendar says before each call: a market past its
  close time is closed, a deactivated market (``SimMarket.status == "inactive"``) refuses
  orders and loses its resting orders on reactivation, a trading pause keeps cancels only,
  an exchange pause refuses everything, expired GTC orders end; and do the same every
  :attr:`TradingDesk.sweep_interval` s on its own (the WS feed runs :meth:`sweep` on the
  server loop), so resting orders die "shortly after" a close even when nobody calls;
* run every mutating call on the server's event loop when it is running (calls from other
  threads hop onto it and wait), so a change and its WebSocket frames are produced in one
  loop step and a snapshot can never include a change whose deltas are still to come;
* hand every :class:`~kalshi_sim.engine_types.Outcome` to its listeners (the WS feed);
* know which member an API key trades for, and serve REST reads lagged by
  :attr:`~kalshi_sim.trading_faults.TradingSettings.read_lag_ms` (REST portfolio reads lag
  writes on Kalshi, §8.2).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from kalshi_api.fixed_point import MICROS_PER_DOLLAR
from kalshi_sim.engine_types import EngineOrder, MemberTruth, Outcome, Reject
from kalshi_sim.markets import fee_type_of_series
from kalshi_sim.matching.engine import MatchingEngine
from kalshi_sim.trading_faults import TradingFaults, TradingSettings

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

T = TypeVar("T")
Runner = Callable[[Callable[[], T]], T]

MICROS_PER_CENT = MICROS_PER_DOLLAR // 100
_CLOSED = frozenset({"closed", "determined", "finalized", "settled", "amended", "disputed"})
_MAX_LAGGED_VIEWS = 256


def fees_of(series_ticker: str) -> tuple[str, Fraction]:
    """A series' ``fee_type`` and ``fee_multiplier``, as the engine charges them."""
    return fee_type_of_series(series_ticker), Fraction(1)


@dataclass(frozen=True, slots=True)
class MemberKey:
    """A trading member's API key: its id and the 0600 file holding the private half."""

    member: str
    key_id: str
    private_key_path: Path


class TradingDesk:
    """The engine's calls with the calendar, members, lagged reads and outcome listeners."""

    sweep_interval: float = 0.1
    """Seconds between the calendar sweeps the WS feed runs on the server loop."""

    def __init__(
        self, exchange: EmbeddedExchange, *, clock_ms: Callable[[], int] | None = None
    ) -> None:
        self._exchange = exchange
        self.engine: MatchingEngine = exchange.markets.engine
        self.lock = exchange.markets.lock
        self.settings = TradingSettings()
        self.faults = TradingFaults()
        self._clock_ms = clock_ms or exchange.markets.clock_ms
        self._runner: Runner[object] | None = None
        self._members: dict[str, str] = {}
        self._listeners: list[Callable[[Outcome], None]] = []
        self._market_state: dict[str, str] = {}
        self._touched: set[str] = set()
        self._not_active: set[str] = set()
        self._paused_shards: frozenset[int] = frozenset()
        self._exchange_paused = False
        self._cancel_all_at: dict[tuple[str, int | None], int] = {}
        self._lagged: dict[str, deque[tuple[int, MemberTruth]]] = {}

    def set_runner(self, runner: Runner[object] | None) -> None:
        """``runner(fn)`` runs ``fn`` on the server loop and returns its result (the WS feed's,
        set while the server runs); None runs calls on the caller's thread."""
        self._runner = runner

    def _run(self, fn: Callable[[], T]) -> T:
        runner = self._runner
        if runner is None:
            return fn()
        return runner(fn)  # type: ignore[return-value]

    # -- members -------------------------------------------------------------------------
    def register_member(
        self, key_id: str, member: str, cash_by_shard_cents: dict[int, int] | None
    ) -> None:
        """Key ``key_id`` trades for ``member``; with cash, the member's account opens with it
        (None: the member exists already, as the demo account does)."""
        with self.lock:
            self._members[key_id] = member
            if cash_by_shard_cents is not None:
                cash = {s: c * MICROS_PER_CENT for s, c in cash_by_shard_cents.items()}
                self.engine.open_account(member, cash)

    def member_of(self, key_id: str | None) -> str | None:
        """The member an API key trades for (None for an unknown key)."""
        if key_id is None:
            return None
        with self.lock:
            return self._members.get(key_id)

    def members(self) -> list[str]:
        with self.lock:
            return sorted(set(self._members.values()))

    def touch_market(self, ticker: str) -> None:
        """A market's own status may have changed (deactivated, reactivated, closed): the
        next sweep looks at it. Sweeps look only at touched, scheduled and inactive markets,
        so 20,000 quiet markets cost nothing."""
        with self.lock:
            self._touched.add(ticker)

    # -- calls -----------------------------------------------------------------------------
    def now_ms(self) -> int:
        return self._clock_ms()

    def add_listener(self, listener: Callable[[Outcome], None]) -> None:
        """Called with every non-empty Outcome, under the lock, in engine order (on the server
        loop while it runs)."""
        self._listeners.append(listener)

    def call(self, op: Callable[[MatchingEngine, int], T], *, publish: bool = True) -> T:
        """Run ``op(engine, now_ms)`` after bringing the calendar up to date.

        Outcomes of the sweep are published; ``op``'s result is published when it is an
        Outcome (or a tuple holding some) and ``publish`` is True; otherwise the caller
        publishes it (the REST endpoint, to order events around its reply).
        """

        def run() -> T:
            with self.lock:
                now = self.now_ms()
                self._sweep(now)
                if self.settings.read_lag_ms > 0:
                    self._remember_views(now)  # the state just before: what lagged reads show
                result = op(self.engine, now)
                if publish:
                    for outcome in _outcomes_in(result):
                        self.publish(outcome)
                self._remember_views(now)
                return result

        return self._run(run)

    def read(self, op: Callable[[MatchingEngine, int], T]) -> T:
        """A read after the sweep (reads see closes and expiries too)."""
        return self.call(op)

    def publish(self, outcome: Outcome) -> None:
        if not _is_empty(outcome):
            with self.lock:
                for listener in self._listeners:
                    listener(outcome)

    # -- reads for the REST portfolio (lagged by settings.read_lag_ms) --------------------------
    def view(self, member: str) -> MemberTruth:
        """The member's state as REST reads show it: now, or ``read_lag_ms`` ago."""

        def run() -> MemberTruth:
            with self.lock:
                now = self.now_ms()
                self._sweep(now)
                lagged = self._lagged_view(member, now)
                return lagged if lagged is not None else self.engine.truth(member)

        return self._run(run)

    def order(self, member: str, order_id: str) -> EngineOrder | None:
        """One order as REST reads show it (None: unknown). Unlagged, it is one lookup: no
        copy of the member's other orders, so it costs the same at 10 orders or 10,000."""

        def run() -> EngineOrder | None:
            with self.lock:
                now = self.now_ms()
                self._sweep(now)
                lagged = self._lagged_view(member, now)
                if lagged is not None:
                    return next((o for o in lagged.orders if o.order_id == order_id), None)
                try:
                    return self.engine.order(member, order_id)
                except Reject:
                    return None

        return self._run(run)

    def orders(
        self, member: str, *, ticker: str | None = None, status: str | None = None
    ) -> list[EngineOrder]:
        """The member's orders as REST reads show them, in creation order, narrowed by
        ``ticker`` and ``status``. Unlagged, the engine's indexes answer (only the orders
        that match are copied)."""

        def run() -> list[EngineOrder]:
            with self.lock:
                now = self.now_ms()
                self._sweep(now)
                lagged = self._lagged_view(member, now)
                if lagged is None:
                    return self.engine.orders(member, ticker=ticker, status=status)
                return [
                    o
                    for o in lagged.orders
                    if (ticker is None or o.ticker == ticker)
                    and (status is None or o.status == status)
                ]

        return self._run(run)

    def _lagged_view(self, member: str, now: int) -> MemberTruth | None:
        """What a lagged read shows: the newest remembered state at least ``read_lag_ms`` old
        (the oldest kept if none is); None when reads are not lagged (read the engine)."""
        if self.settings.read_lag_ms <= 0:
            return None
        history = self._lagged.get(member)
        if not history:
            return None
        chosen = history[0][1]
        for stamp, truth in history:
            if stamp > now - self.settings.read_lag_ms:
                break
            chosen = truth
        return chosen

    def as_of_ms(self) -> int:
        """What ``GET /exchange/user_data_timestamp`` reports: now less the read lag."""
        return self.now_ms() - max(0, self.settings.read_lag_ms)

    def truth(self, member: str) -> MemberTruth:
        """The exchange's own, unlagged view of ``member`` (for tests and ``/_sim/truth``)."""

        def run() -> MemberTruth:
            with self.lock:
                self._sweep(self.now_ms())
                return self.engine.truth(member)

        return self._run(run)

    def _remember_views(self, now: int) -> None:
        if self.settings.read_lag_ms <= 0:
            self._lagged.clear()
            return
        for member in set(self._members.values()):
            history = self._lagged.setdefault(member, deque(maxlen=_MAX_LAGGED_VIEWS))
            history.append((now, self.engine.truth(member)))

    # -- cancel-all's tail ---------------------------------------------------------------------
    def note_cancel_all(self, member: str, subaccount: int | None, now_ms: int) -> None:
        with self.lock:
            self._cancel_all_at[(member, subaccount)] = now_ms

    def in_cancel_all_tail(self, member: str, subaccount: int, now_ms: int) -> bool:
        """Whether an order placed now falls in the tail of a recent cancel-all."""
        tail_ms = int(self.settings.cancel_all_tail_s * 1000)
        if tail_ms <= 0:
            return False
        with self.lock:
            for key in ((member, None), (member, subaccount)):
                at = self._cancel_all_at.get(key)
                if at is not None and now_ms - at <= tail_ms:
                    return True
        return False

    # -- the calendar ------------------------------------------------------------------------------
    def sweep(self) -> None:
        """Bring the engine up to date with the calendar now (also runs before every call)."""

        def run() -> None:
            with self.lock:
                now = self.now_ms()
                self._sweep(now)
                self._remember_views(now)

        self._run(run)

    def _sweep(self, now: int) -> None:
        exchange = self._exchange
        outcomes: list[Outcome] = []
        closes = exchange.close_times
        candidates = set(closes.scheduled_tickers()) | self._touched | self._not_active
        for ticker in sorted(candidates):
            try:
                market = exchange.markets.market(ticker)
            except KeyError:
                continue
            wanted = closes.status(market.ticker, market.status)
            state = "closed" if wanted in _CLOSED else wanted
            known = self._market_state.get(market.ticker, "active")
            if known in (state, "closed"):
                continue
            if state == "closed":
                outcomes.append(self.engine.close_market(market.ticker, now))
            elif state == "inactive":
                outcomes.append(self.engine.deactivate(market.ticker, now))
            elif state == "active" and known == "inactive":
                outcomes.append(self.engine.reactivate(market.ticker, now))
            self._market_state[market.ticker] = state
            if state == "active":
                self._not_active.discard(market.ticker)
            else:
                self._not_active.add(market.ticker)
        self._touched.clear()
        status, body = exchange.status.response()
        exchange_paused = status != 200
        paused = frozenset(
            s["exchange_index"] for s in body["exchange_index_statuses"] if not s["trading_active"]
        )
        if exchange_paused and not self._exchange_paused:
            outcomes.append(self.engine.trading_pause(now, None, cancels_allowed=False))
        elif not exchange_paused:
            if self._exchange_paused:
                outcomes.append(self.engine.trading_resume(now, None))
                self._paused_shards = frozenset()
            for shard in sorted(paused - self._paused_shards):
                outcomes.append(self.engine.trading_pause(now, shard))
            for shard in sorted(self._paused_shards - paused):
                outcomes.append(self.engine.trading_resume(now, shard))
            self._paused_shards = paused
        self._exchange_paused = exchange_paused
        outcomes.append(self.engine.expire(now))
        for outcome in outcomes:
            self.publish(outcome)


def _is_empty(outcome: Outcome) -> bool:
    return not (
        outcome.orders_changed
        or outcome.fills
        or outcome.positions_changed
        or outcome.trades
        or outcome.book_changes
        or outcome.group_events
        or outcome.order is not None
    )


def _outcomes_in(result: object) -> list[Outcome]:
    if isinstance(result, Outcome):
        return [result]
    if isinstance(result, tuple | list):
        found: list[Outcome] = []
        for item in result:
            found.extend(_outcomes_in(item))
        return found
    return []
