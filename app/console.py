"""The terminal view: each state as it is entered, how long the last one took, its metadata.

Why its own vocabulary: a person reads this next to the console page, so both say the same
thing the same way: money in dollars (the account's integer cents as ``$500.00``), durations
human-scaled (``7.2 s``, never ``7246.4 ms``), one line per fact, and no Python reprs
(``None``, ``{'a': 1}``) ever reach the terminal. Lines are wrapped only on a terminal, to
its width; logs, pipes and CI get each fact on exactly one line, whatever its length.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from rich.console import Console, Group, RenderableType
from rich.padding import Padding
from rich.table import Table
from rich.text import Text

from messages.events import (
    Escalation,
    ExchangePaused,
    ExchangeResumed,
    FaultInjected,
    KalshiSyncComplete,
    RestartScheduled,
    ServiceDropped,
    ServiceFailureReported,
    ServiceRestarted,
    ServiceStarted,
    StageDropped,
    StageFailureReported,
    StateTransition,
    StreamHealed,
    StreamInterrupted,
    StreamNotice,
    SupervisorEvent,
)
from messages.orders import reason_beyond
from messages.states import State
from messages.trading_events import (
    FillEvent,
    HaltCompleted,
    OrderUpdateEvent,
    PositionChanged,
    Reconciled,
    TradingStateChanged,
)

_STATE_STYLE = {
    State.READY: "bold green",
    State.ERROR: "bold red",
    State.SHUTDOWN: "bold yellow",
}
_INDENT = " " * 14
CENT_FIELDS = frozenset({"balance", "portfolio_value"})
"""Metadata fields in integer cents, shown as dollars (here and on the page)."""


def terminal_console() -> Console:
    """stderr, wrapped to the terminal's width on a terminal and never wrapped elsewhere.

    rich assumes 80 columns when stderr is not a terminal and hard-wraps there, which
    splits one fact over several lines of a log file; ``soft_wrap`` leaves long lines whole.
    """
    console = Console(stderr=True, highlight=False)
    if not console.is_terminal:
        console = Console(stderr=True, highlight=False, soft_wrap=True)
    return console


def duration(ms: float) -> str:
    """``12 ms``, ``7.2 s``, ``2 min 5 s``, ``1 h 3 min``: the page's ``human()`` too."""
    if ms < 1000:
        return f"{ms:.0f} ms" if ms >= 10 else f"{ms:.1f} ms"
    seconds = ms / 1000
    if seconds < 60:
        return f"{seconds:.1f} s"
    if seconds < 3600:
        return f"{int(seconds // 60)} min {int(seconds % 60)} s"
    return f"{int(seconds // 3600)} h {int(seconds % 3600 // 60)} min"


def dollars_from_cents(cents: int) -> str:
    """``$1,234.56`` from integer cents (exact: no float)."""
    sign = "-" if cents < 0 else ""
    whole, part = divmod(abs(cents), 100)
    return f"{sign}${whole:,}.{part:02d}"


def signed_dollars(change: str) -> str:
    """A signed cents string from the sync (``"+120"``) as ``+$1.20``."""
    text = change.strip()
    try:
        cents = int(text)
    except ValueError:
        return text
    return ("+" if cents >= 0 else "-") + dollars_from_cents(abs(cents))


def value_text(key: str, value: Any) -> str:
    """One metadata value as the page shows it."""
    if value is None:
        return "none"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if key in CENT_FIELDS and isinstance(value, int):
        return dollars_from_cents(value)
    if key.endswith("_ms") and isinstance(value, int | float):
        return duration(value)
    if isinstance(value, list | tuple):
        return ", ".join(value_text("", v) for v in value) or "none"
    if isinstance(value, Mapping):
        return "(" + fields(value) + ")"
    return str(value)


def fields(values: Mapping[str, Any]) -> str:
    """``key=value`` pairs, values as :func:`value_text`; ``_ms`` keys lose their unit."""
    return "  ".join(f"{key.removesuffix('_ms')}={value_text(key, v)}" for key, v in values.items())


class ConsoleView:
    """A listener that renders events for a person; never raises into the supervisor."""

    def __init__(self, console: Console | None = None) -> None:
        self._console = console or terminal_console()
        self._wraps = self._console.is_terminal
        """On a terminal long lines wrap, under their own indentation (a hanging indent);
        elsewhere each line is printed whole."""

    def __call__(self, event: SupervisorEvent) -> None:
        if isinstance(event, StateTransition):
            self._transition(event)
            return
        label, style, body = describe_event(event)
        self._line(label, style, body)

    def _transition(self, event: StateTransition) -> None:
        stamp = Text(event.timestamp.strftime("%H:%M:%S.%f")[:-3] + "  ", style="dim")
        header = Text()
        header.append(event.to_state.name, style=_STATE_STYLE.get(event.to_state, "bold blue"))
        header.append(
            f"  after {duration(event.duration_ms)} in {event.from_state.name}", style="dim"
        )
        header.append(f"  {event.context}")
        first: RenderableType
        if self._wraps:  # the wrapped part stays right of the time
            grid = Table.grid()
            grid.add_column(width=len(stamp), no_wrap=True)
            grid.add_column()
            grid.add_row(stamp, header)
            first = grid
        else:
            first = stamp + header
        values = Text(fields(event.metadata.model_dump(mode="json")), style="dim")
        metadata = self._indented(values, 4)
        # One print, so one write: a log line from another thread can never land between a
        # transition and its metadata.
        self._console.print(Group(first, metadata))

    def _line(self, label: str, style: str, body: str) -> None:
        text = Text()
        text.append(f"{label}: ", style=style)
        text.append(body)
        self._emit(text, len(_INDENT))

    def _emit(self, text: Text, indent: int) -> None:
        self._console.print(self._indented(text, indent))

    def _indented(self, text: Text, indent: int) -> RenderableType:
        if self._wraps:
            return Padding(text, (0, 0, 0, indent))
        return Text(" " * indent) + text


def describe_event(event: SupervisorEvent) -> tuple[str, str, str]:
    """``(label, style, one line)`` for every event but a transition."""
    if isinstance(event, KalshiSyncComplete):
        return "sync", "cyan", _sync(event)
    if isinstance(event, StageFailureReported):
        body = f"{event.stage} in {event.state.name}: {event.error_type}: {event.reason}"
        return "failure", "red", body
    if isinstance(event, RestartScheduled):
        body = f"{', '.join(event.stages)} (attempt {event.attempt}) in {duration(event.delay_ms)}"
        return "restart", "yellow", body
    if isinstance(event, FaultInjected):
        return "fault", "bold magenta", _fault(event)
    if isinstance(event, Escalation):
        return "gave up", "bold red", event.reason
    if isinstance(event, StageDropped):
        return "dropped", "red", f"{event.stage}: {event.reason}"
    if isinstance(event, StreamInterrupted):
        body = (
            f"interrupted ({event.detail}); healing in place for up to "
            f"{duration(event.heal_timeout_ms)}"
        )
        return "stream", "yellow", body
    if isinstance(event, StreamHealed):
        body = f"healed by {event.kind} ({event.detail}); {event.healed_total} healed so far"
        return "stream", "green", body
    if isinstance(event, StreamNotice):
        return "stream", "yellow", f"{event.kind}: {event.detail}"
    if isinstance(event, ExchangePaused):
        estimate = event.resume_estimate
        when = estimate.astimezone().strftime("%H:%M:%S") if estimate else "none given"
        body = f"{_where(event.exchange_index, event.scope)}; estimated resume {when}"
        return "paused", "bold yellow", body
    if isinstance(event, ExchangeResumed):
        body = (
            f"{_where(event.exchange_index, event.scope)} ended after {duration(event.paused_ms)}"
        )
        return "resumed", "green", body
    if isinstance(event, ServiceStarted):
        return "service", "cyan", f"{event.service} started"
    if isinstance(event, ServiceFailureReported):
        after = (
            "not restarted"
            if event.next_restart_in_ms is None
            else f"restart in {duration(event.next_restart_in_ms)}"
        )
        body = f"{event.service} failed: {event.error_type}: {event.reason}; {after}"
        return "service", "red", body
    if isinstance(event, ServiceRestarted):
        return "service", "cyan", f"{event.service} restarted (attempt {event.attempt})"
    if isinstance(event, ServiceDropped):
        return "service", "red", f"{event.service} dropped: {event.reason}"
    if isinstance(event, OrderUpdateEvent | FillEvent | PositionChanged):
        return _trade_line(event)
    if isinstance(event, TradingStateChanged | HaltCompleted | Reconciled):
        return _trading_line(event)
    values = event.model_dump(mode="json", exclude={"type", "timestamp", "counters"})
    return (
        event.type.replace("_", " "),
        "magenta",
        fields({k: v for k, v in values.items() if v is not None}),
    )


def _sync(event: KalshiSyncComplete) -> str:
    state, changes = event.state, event.changes
    if changes is None:
        return (
            f"{event.sync_type} (first) · balance {dollars_from_cents(state.balance)} · "
            f"portfolio value {dollars_from_cents(state.portfolio_value)} · "
            f"positions {state.positions} · resting orders {state.orders}"
        )
    moved = [
        (label, change)
        for label, change in (
            ("balance", signed_dollars(changes.balance_change)),
            ("portfolio value", signed_dollars(changes.portfolio_change)),
            ("positions", changes.positions_change),
            ("resting orders", changes.orders_change),
        )
        if change.lstrip("+-$0.,") != ""
    ]
    what = ", ".join(f"{label} {change}" for label, change in moved) or "no change"
    return (
        f"{event.sync_type}: {what} · balance {dollars_from_cents(state.balance)} · "
        f"portfolio value {dollars_from_cents(state.portfolio_value)} · "
        f"positions {state.positions} · resting orders {state.orders}"
    )


def _fault(event: FaultInjected) -> str:
    fault = event.fault
    parts = [f"injected {fault.fault.value} into {fault.target}"]
    if fault.seconds is not None:
        parts.append(f"for {fault.seconds:g} s")
    if fault.count is not None:
        parts.append(f"{fault.count} time(s)")
    if fault.shard is not None:
        parts.append(f"on shard {fault.shard}")
    if fault.resume_in is not None:
        parts.append(f"resuming in {fault.resume_in:g} s")
    return " ".join(parts)


_ORDER_STYLE = {
    "rejected": "red",
    "outcome_unknown": "bold yellow",
    "canceled": "yellow",
    "executed": "green",
    "partially_filled": "green",
}
RECONCILED_SHOWN = 3
"""Differences a ``reconciled`` line shows (the event, ``--events`` and the page's row detail
keep them all): one line per fact, readable at a glance."""
DIFFERENCE_CHARS = 160


def _clip(text: str) -> str:
    return text if len(text) <= DIFFERENCE_CHARS else text[: DIFFERENCE_CHARS - 1] + "…"


_TRADING_STYLE = {"active": "bold green", "reducing": "bold yellow", "halted": "bold red"}


def dollars(text: str, *, signed: bool = False) -> str:
    """An exact decimal string of dollars as ``$0.45``, ``-$1,234.50``, ``$0.0175``: at least
    cents, and every significant digit (a price of 0.0175 is not 2 cents; 0.4500 is 45)."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return text
    if not value.is_finite():
        return text
    value = value.normalize()
    if value.as_tuple().exponent > -2:  # type: ignore[operator]
        value = value.quantize(Decimal("0.01"))
    sign = "-" if value < 0 else ("+" if signed and value > 0 else "")
    whole, _, part = f"{abs(value):f}".partition(".")
    return f"{sign}${int(whole):,}.{part}"


def contracts(text: str) -> str:
    """A count without trailing zeros (``10``, ``2.5``), exact."""
    try:
        value = Decimal(text)
    except ArithmeticError:
        return text
    return f"{value.normalize():f}" if value.is_finite() else text


def _side(side: str) -> str:
    """The YES leg in words: a bid buys YES, an ask sells YES (≡ buys NO)."""
    return "buy YES" if side == "bid" else "sell YES"


def _trade_line(event: OrderUpdateEvent | FillEvent | PositionChanged) -> tuple[str, str, str]:
    if isinstance(event, OrderUpdateEvent):
        status = event.status.value
        body = (
            f"{event.service} {_side(event.side)} {contracts(event.count)} {event.ticker} "
            f"@ {dollars(event.price)}: {status.replace('_', ' ')}"
        )
        if Decimal(event.filled):
            body += f", {contracts(event.filled)} filled"
        reason = reason_beyond(event.status, event.reason)  # never "canceled (canceled)"
        if reason:
            body += f" ({reason})"
        body += f" · {event.client_order_id}"
        return "order", _ORDER_STYLE.get(status, "cyan"), body
    if isinstance(event, FillEvent):
        verb = "bought" if event.side == "bid" else "sold"
        who = event.service or "(not ours to a service)"
        body = (
            f"{who} {verb} {contracts(event.count)} YES {event.ticker} @ "
            f"{dollars(event.price)} as {'taker' if event.is_taker else 'maker'}, "
            f"fee {dollars(event.fee)} · trade {event.trade_id}"
        )
        return "fill", "bold green", body
    position = Decimal(event.position)
    held = (
        "flat"
        if not position
        else f"long YES {contracts(event.position)}"
        if position > 0
        else f"long NO {contracts(str(-position))}"
    )
    who = f"{event.service} " if event.service else ""
    body = (
        f"{who}{event.ticker} {held} · realized {dollars(event.realized_pnl, signed=True)} · "
        f"unrealized {dollars(event.unrealized_pnl, signed=True)} · fees {dollars(event.fees)}"
    )
    return "position", "cyan", body


def _trading_line(event: TradingStateChanged | HaltCompleted | Reconciled) -> tuple[str, str, str]:
    if isinstance(event, TradingStateChanged):
        state = event.state.value
        body = state.upper() + (f" ({event.reason})" if event.reason else "")
        return "trading", _TRADING_STYLE.get(state, "bold"), body
    if isinstance(event, HaltCompleted):
        body = (
            f"halted ({event.reason}) in {duration(event.duration_ms)}: "
            f"{event.cancel_all_calls} cancel-all call(s), {event.verify_reads} verify read(s), "
            f"{event.remaining} of ours still resting"
        )
        return "halt", "bold red" if event.remaining else "bold yellow", body
    total = event.difference_count if event.difference_count is not None else len(event.differences)
    if not total:
        return "reconciled", "green", f"after {event.trigger}: no differences"
    shown = "; ".join(_clip(d) for d in event.differences[:RECONCILED_SHOWN])
    more = total - min(len(event.differences), RECONCILED_SHOWN)
    tail = f"; and {more} more" if more > 0 else ""
    return "reconciled", "yellow", f"after {event.trigger}: {total} difference(s): {shown}{tail}"


def _where(exchange_index: int | None, scope: str) -> str:
    """``exchange pause on every shard``, ``trading pause on shard 2``."""
    shard = "every shard" if exchange_index is None else f"shard {exchange_index}"
    return f"{scope} pause on {shard}"


SHOWN_AS_EVENTS: frozenset[tuple[str, str]] = frozenset(
    {
        ("kalshi_supervisor.app.console_server", "fault injection: %s"),
        ("kalshi_supervisor.app.console_server", "kill switch pressed: halting trading (%s)"),
        ("kalshi_supervisor.app.console_server", "trading resumed by request"),
        ("kalshi_supervisor.actors.child", "%s: injecting %s"),
        ("kalshi_supervisor.core.recovery", "%s stage failed in %s: %s: %s"),
        ("kalshi_supervisor.core.services", "%s service failed: %s: %s"),
    }
)
"""Log records (logger, message template) whose fact the view prints as an event line."""


class ShownAsEventsFilter(logging.Filter):
    """Drops, from the terminal's log handler only, the records that repeat an event line.

    Why: with the view on, an injected fault used to reach the terminal three times (the
    console server's log, the actor's log, the event). The event line is the one in the
    page's vocabulary; the records still reach any other handler (a log file) unchanged.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        return (record.name, record.msg) not in SHOWN_AS_EVENTS
