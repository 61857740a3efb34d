"""The trading state's policy and the kill switch's verification loop, both pure.

**Trading state.** ``ACTIVE < REDUCING < HALTED`` in strictness. Automatic triggers
(``HaltReason``) only ever make it stricter, as ``HaltPolicy`` says for each; only a
person's ``resume`` loosens it. So no automatic path can un-halt a process, and two
triggers in any order end in the stricter state.

**Verifying a halt.** A cancel-all is not proof: it answers 204 with no body (or 503 on
demo), it has a documented one-minute tail, reads lag, and a create still in flight when
the halt began can land after it (one peer's cancel-all missed orders placed in its last
minute, §8.11). So the kill switch loops: cancel-all, read our resting orders, and
``plan_halt_step`` decides:

- some of ours rest: cancel them by id (batch), and cancel-all again if the last one
  failed; then read again;
- none rest, but the last cancel-all failed: cancel-all again, then read again (reads lag:
  an order placed just before the halt may not be listed yet, and only a cancel-all that
  answered proves it was swept);
- none rest, but creates of ours are still in flight (pending or outcome-unknown): read
  again after a backoff (they may yet land, and will then be cancelled by id);
- none rest and nothing is in flight: done, with the time it took.

It never gives up: a halted process must never leave an order of ours resting. The
gateway refuses every new order while HALTED, so the set it waits for only shrinks.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from messages.orders import HaltReason, TradingState

STRICTNESS = {TradingState.ACTIVE: 0, TradingState.REDUCING: 1, TradingState.HALTED: 2}

DEFAULT_ON: Mapping[HaltReason, TradingState] = MappingProxyType(
    {
        HaltReason.MANUAL: TradingState.HALTED,
        HaltReason.LEFT_READY: TradingState.HALTED,
        HaltReason.SHUTDOWN: TradingState.HALTED,
        HaltReason.EXCHANGE_PAUSE: TradingState.HALTED,
        HaltReason.TRADING_PAUSE: TradingState.ACTIVE,
        # orders are refused locally during a pause anyway; resting ones follow
        # cancel_order_on_pause, which intents set by default
        HaltReason.RISK_BREACH: TradingState.REDUCING,
        HaltReason.DAILY_LOSS: TradingState.HALTED,
        HaltReason.ORDER_GROUP_TRIGGERED: TradingState.HALTED,
        HaltReason.RECONCILIATION_FAILED: TradingState.REDUCING,
    }
)
"""The documented defaults (docs/trading.md): what each trigger moves trading to."""


@dataclass(frozen=True, slots=True)
class HaltPolicy:
    """What each trigger does; a trigger mapped to ``ACTIVE`` changes nothing."""

    on: Mapping[HaltReason, TradingState] = field(default_factory=lambda: DEFAULT_ON)

    def target(self, reason: HaltReason) -> TradingState:
        return self.on.get(reason, DEFAULT_ON.get(reason, TradingState.HALTED))


def stricter(a: TradingState, b: TradingState) -> TradingState:
    return a if STRICTNESS[a] >= STRICTNESS[b] else b


def on_trigger(
    current: TradingState, reason: HaltReason, policy: HaltPolicy | None = None
) -> TradingState:
    """The state after an automatic (or manual halt) trigger: never looser than before."""
    return stricter(current, (policy or HaltPolicy()).target(reason))


def resume() -> TradingState:
    """A person's ``resume``: back to ACTIVE (the gateway also resets the order group). The
    risk checks still refuse (and halt again) while a daily-loss breach lasts."""
    return TradingState.ACTIVE


# -- verifying a halt ------------------------------------------------------------------------
@dataclass(frozen=True, slots=True)
class HaltCheck:
    """One read of the exchange during a halt."""

    started_ms: int
    now_ms: int
    resting_ours: tuple[str, ...]
    """Order ids of ours the exchange lists resting (matched by client id, then order id)."""
    in_flight: int
    """Our creates not yet settled (pending or outcome-unknown)."""
    reads: int
    """Reads made so far, this one included (≥ 1)."""
    last_cancel_all_ok: bool = True
    """False if the last cancel-all got a 5xx, a timeout or a dropped connection."""


@dataclass(frozen=True, slots=True)
class HaltDone:
    elapsed_ms: int


@dataclass(frozen=True, slots=True)
class CancelAgain:
    order_ids: tuple[str, ...]
    cancel_all: bool
    """Send cancel-all too (the last one failed)."""


@dataclass(frozen=True, slots=True)
class ReadAgain:
    after_ms: int
    reason: str


HaltStep = HaltDone | CancelAgain | ReadAgain


@dataclass(frozen=True, slots=True)
class HaltVerifyPolicy:
    first_backoff_ms: int = 100
    max_backoff_ms: int = 2_000


def plan_halt_step(check: HaltCheck, policy: HaltVerifyPolicy | None = None) -> HaltStep:
    """The kill switch's next step after a read (module docstring)."""
    policy = policy or HaltVerifyPolicy()
    if check.resting_ours:
        return CancelAgain(tuple(dict.fromkeys(check.resting_ours)), not check.last_cancel_all_ok)
    if not check.last_cancel_all_ok:
        return CancelAgain((), True)  # the read may lag behind an order of ours
    if check.in_flight > 0:
        step = max(0, check.reads - 1)
        wait = min(policy.max_backoff_ms, policy.first_backoff_ms * 2 ** min(step, 30))
        return ReadAgain(wait, f"{check.in_flight} create(s) of ours still in flight")
    return HaltDone(max(0, check.now_ms - check.started_ms))


def ours(resting: Iterable[tuple[str, str | None]], known_order_ids: set[str],
         id_prefix: str) -> tuple[str, ...]:
    """Of the exchange's resting ``(order_id, client_order_id)`` pairs, those that are ours:
    an order id we track, or a client id with our prefix (an order from before a restart
    carries our prefix too; ``kalshiflow`` cancelled only what it tracked, §8.11)."""
    return tuple(
        oid
        for oid, cid in resting
        if oid in known_order_ids or (cid is not None and cid.startswith(f"{id_prefix}-"))
    )
