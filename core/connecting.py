"""INITIALIZING and the stage walk: resolve markets once, then each stage in spec order."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING

from core.timers import MarketsResolved
from kalshi_api.market_facts import MarketFacts
from messages.base import Message
from messages.commands import Connect, Describe
from messages.exchange import StageThrottled
from messages.metadata import StartupMetadata
from messages.results import StageSucceeded
from messages.states import State

if TYPE_CHECKING:
    from core.supervisor_core import SupervisorCore

logger = logging.getLogger("kalshi_supervisor.core.connecting")

class StageWalk:
    """Where the forward path is: the resolved markets and the stage being connected."""

    def __init__(self, core: SupervisorCore) -> None:
        self._core = core
        self.cursor = 0
        self.markets: tuple[str, ...] | None = None
        self.facts: Mapping[str, MarketFacts] = {}
        """What the listing said about each market (status, close time) when resolved."""
        self.facts_fresh = False
        """True until the first stage is given the facts: a stream started later (a
        restart) must not trust them to accept empty books without a REST check."""

    def begin(self) -> None:
        """Enter INITIALIZING; resolve markets off-thread (a shutdown must get through).

        Markets resolved before a recovery are kept, so a restart reconnects the same books.
        """
        core = self._core
        config = core.config
        core.transition(
            State.INITIALIZING,
            "Recovering: starting up again" if core.recovery.recovering else "Starting up",
            StartupMetadata(
                environment=config.environment.value,
                host=core.status_address,
                log_level=config.log_level,
                mode=config.discovery_mode,
            ),
        )
        core.deadline.arm(
            core.specs[0].name, State.INITIALIZING, config.deadlines.get(State.INITIALIZING)
        )
        if self.markets is not None:
            self.start_at(0)
            return
        self.discover()

    def discover(self) -> None:
        """Resolve markets off-thread; a failure during an exchange pause is only a wait.

        Why the status is read on failure: a paused exchange may refuse market listings
        too (503); that is the exchange's condition, not the first stage's failure.
        """
        core = self._core
        epoch, resolve, mailbox = core.epoch, core.resolve_markets, core.mailbox
        probe = core.probe_exchange

        def work() -> None:
            try:
                resolved = resolve()
                mailbox(MarketsResolved(epoch, resolved.tickers, None, "", facts=resolved.facts))
            except Exception as exc:
                paused = None
                if probe is not None:
                    with contextlib.suppress(Exception):
                        condition = probe()
                        paused = condition if condition.exchange_paused else None
                mailbox(MarketsResolved(epoch, (), type(exc).__name__, str(exc), paused))

        core.background(work)

    def on_markets_resolved(self, message: MarketsResolved) -> None:
        """Discovery failing is the first stage's failure: it is the one that needs markets."""
        core = self._core
        if message.epoch != core.epoch or core.state is not State.INITIALIZING:
            return
        if message.paused is not None:
            core.pauses.on_discovery_paused(message.paused, message.reason)
            return
        if message.error_type is not None:
            core.fail(core.specs[0].name, message.error_type, message.reason)
            return
        self.markets = message.tickers
        self.facts, self.facts_fresh = message.facts, True
        self.start_at(0)

    def start_at(self, index: int) -> None:
        """Walk from the stage at ``index`` (0 on (re)start, the stream's on a READY reconnect)."""
        self.cursor = index
        self._enter_stage()

    def _enter_stage(self) -> None:
        """Start the stage; enter its state if an earlier stage has not; arm its own deadline.

        The actor describes its state's entry itself (``Describe``): only it knows its facts.
        """
        core = self._core
        spec = core.specs[self.cursor]
        generation = core.ensure_child(spec)
        if core.state is not spec.state:
            metadata = core.ask_stage(spec.name, Describe())
            if metadata is None:
                return
            context = spec.entry_line(self.markets or ())
            if not core.transition_from_stage(spec.name, spec.state, context, metadata):
                return
        core.deadline.arm(spec.name, spec.state, spec.deadline_in(core.config.deadlines))
        core.tell_child(spec.name, Connect(generation=generation))

    def take_fresh_facts(self) -> bool:
        """Whether the market facts are fresh for the stage now being started: only the
        first stage started after INITIALIZING gets them fresh (the stream, first)."""
        fresh, self.facts_fresh = self.facts_fresh, False
        return fresh

    def is_connecting(self, stage: str) -> bool:
        """Whether ``stage`` is the one the walk is waiting for (in its own state)."""
        core = self._core
        if self.cursor >= len(core.specs) or core.specs[self.cursor].name != stage:
            return False
        return core.state is core.specs[self.cursor].state

    def on_throttled(self, message: StageThrottled) -> None:
        """The stage being connected waits out a 429 it reported: hold its deadline.

        Waiting out a documented rate limit is not a failure, so the deadline is armed
        again to cover the reported wait plus the state's full bound (each new 429 moves
        it again). A stage held for an exchange pause keeps the pause's hold instead.
        """
        core = self._core
        if not self.is_connecting(message.stage) or message.stage in core.pauses.waiting:
            return
        spec = core.specs[self.cursor]
        seconds = spec.deadline_in(core.config.deadlines)
        if seconds is None:
            return
        logger.info(
            "%s stage waits %.1f s for the exchange's rate limit: deadline held",
            message.stage,
            message.wait_seconds,
        )
        core.deadline.arm(spec.name, spec.state, message.wait_seconds + seconds)

    def retry(self, stage: str, generation: int) -> None:
        """Tell the stage being connected to do its work again, under a fresh deadline.

        Used after an exchange pause: the stage waited (no failure, no restart).
        """
        core = self._core
        spec = core.specs[self.cursor]
        core.deadline.arm(spec.name, spec.state, spec.deadline_in(core.config.deadlines))
        core.tell_child(stage, Connect(generation=generation))

    def on_succeeded(self, message: StageSucceeded, result: Message) -> None:
        """The stage being connected is done: on to the next one, or READY after the last."""
        core = self._core
        if self.cursor >= len(core.specs):
            return  # READY is pending on a healing stream; its reply is an incident, not this
        spec = core.specs[self.cursor]
        if spec.name != message.stage:
            logger.debug("ignoring %s result while %s is connecting", message.stage, spec.name)
            return
        core.deadline.cancel()
        self.cursor += 1
        if self.cursor < len(core.specs):
            self._enter_stage()
        else:
            core.ready.enter()
