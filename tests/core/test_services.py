"""Services under the real supervisor, on the embedded exchange: lifecycle, books, account,
events, and every actor fault (a failing service never takes a stage down or leaves READY).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any, ClassVar

import pykka
import pytest

from actors.service import ServiceActor, ServiceSpec
from app.handle import Supervisor
from kalshi_api.book_changes import BookView
from kalshi_api.orderbook_digest import book_digest
from kalshi_sim.exchange import EmbeddedExchange
from messages.account import AccountView
from messages.events import (
    Event,
    ExchangePaused,
    ExchangeResumed,
    StageFailureReported,
    StateTransition,
)
from messages.faults import FaultTarget, InjectFault
from messages.metadata import ReadyMetadata
from messages.services import (
    ServiceDropped,
    ServiceFailureReported,
    ServiceRestarted,
    ServiceStarted,
)
from messages.states import State
from supervision.config import RestartSettings
from supervision.policy import RestartType
from tests.harness import WAIT, live_actor_count, make_config, running_supervisor, start_exchange


class Journal:
    """What every service incarnation did, in order, across threads."""

    def __init__(self) -> None:
        self.lock = threading.Condition()
        self.entries: list[tuple[Any, ...]] = []
        self.books: dict[str, BookView] = {}

    def add(self, *entry: Any) -> None:
        with self.lock:
            self.entries.append(entry)
            self.lock.notify_all()

    def wait(self, predicate: Any, timeout: float = WAIT) -> bool:
        with self.lock:
            return self.lock.wait_for(lambda: predicate(self.entries), timeout)

    def kinds(self, name: str) -> list[str]:
        """The hooks ``name`` ran, in order, leaving out the (many) events."""
        with self.lock:
            return [e[1] for e in self.entries if e[0] == name and e[1] != "event"]

    def wait_for_entry(self, *prefix: Any, count: int = 1) -> bool:
        """Wait until ``count`` entries start with ``prefix``."""
        n = len(prefix)
        return self.wait(lambda entries: sum(e[:n] == prefix for e in entries) >= count)


class Probe(ServiceActor):
    """Records every hook call in the class's journal."""

    journal: ClassVar[Journal]

    def setup(self) -> None:
        self.journal.add(self.name, "setup", self.generation)

    def teardown(self) -> None:
        live = sum(1 for t in self.markets if (b := self.book(t)) and not b.stale)
        self.journal.add(self.name, "teardown", self.generation, live)

    def on_ready(self, metadata: ReadyMetadata) -> None:
        for ticker in self.markets:  # where every book stands; changes follow
            if (book := self.book(ticker)) is not None:
                self.on_book_changed(ticker, book)
        self.journal.add(self.name, "ready", metadata.markets_connected)

    def on_not_ready(self, state: State, reason: str) -> None:
        self.journal.add(self.name, "not_ready", state)

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        with self.journal.lock:
            self.journal.books[ticker] = book
            self.journal.lock.notify_all()

    def on_account(self, sync: AccountView) -> None:  # the old shape reads through
        self.journal.add(self.name, "account", sync.sync_type, sync.state.balance)

    def on_event(self, event: Event) -> None:
        self.journal.add(self.name, "event", getattr(event, "type", ""))

    def on_disconnect(self) -> None:
        self.journal.add(self.name, "disconnect")


class Second(Probe):
    """A second service, to check ordering."""


@pytest.fixture
def journal() -> Journal:
    Probe.journal = Journal()
    return Probe.journal


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    exchange = start_exchange(markets=4, delta_rate=300.0)
    yield exchange
    exchange.stop()


def _events(sup: Supervisor, kind: type) -> list[Any]:
    return [e for e in sup.recorder.events() if isinstance(e, kind)]


def _wait_event(sup: Supervisor, kind: type, count: int = 1, **fields: Any) -> list[Any]:
    def found(events: list[Any]) -> list[Any] | None:
        hits = [
            e
            for e in events
            if isinstance(e, kind) and all(getattr(e, k) == v for k, v in fields.items())
        ]
        return hits if len(hits) >= count else None

    hits = sup.recorder.wait_for(found, WAIT)
    assert hits, f"no {count} x {kind.__name__} {fields}: {sup.recorder.events()[-5:]}"
    return hits


def _transitions_after(sup: Supervisor, mark: int) -> list[State]:
    return [e.to_state for e in sup.recorder.events()[mark:] if isinstance(e, StateTransition)]


SPECS = (ServiceSpec("probe", Probe), ServiceSpec("second", Second))


def test_services_when_ready_start_in_order_get_ready_and_account_then_stop_before_stages(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    with running_supervisor(exchange, services=SPECS) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        # the order gateway (a built-in service with trading on) starts first
        started = _wait_event(sup, ServiceStarted, 3)
        assert [e.service for e in started] == ["order_gateway", "probe", "second"]
        assert journal.wait_for_entry("second", "account", "initial")
        assert journal.wait_for_entry("probe", "account", "initial")  # each on its own thread
        assert journal.kinds("probe")[:3] == ["setup", "ready", "account"]
        ready = next(e for e in journal.entries if e[:2] == ("probe", "ready"))
        assert ready[2] == 4
        balance = next(e for e in journal.entries if e[:2] == ("probe", "account"))[3]
        assert balance == exchange.account.balance_cents()
        ready_at = [
            i for i, e in enumerate(sup.recorder.events()) if isinstance(e, StateTransition)
        ][-1]
        first_start = sup.recorder.events().index(started[0])
        assert first_start > ready_at
    teardowns = [e for e in journal.entries if e[1] == "teardown"]
    assert [e[0] for e in teardowns] == ["second", "probe"]
    assert all(e[3] > 0 for e in teardowns)  # books still live: stages stopped after
    assert live_actor_count() == 0


def test_book_changes_when_the_stream_runs_reach_the_service_equal_to_the_truth(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    with running_supervisor(exchange, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        exchange.pause_stream()
        tickers = exchange.markets.tickers()

        def matches() -> bool:
            books = journal.books
            return all(
                t in books
                and book_digest(books[t].yes.items(), books[t].no.items())
                == exchange.markets.digest(t)
                for t in tickers
            )

        with journal.lock:
            assert journal.lock.wait_for(matches, WAIT)


def test_leaving_ready_when_a_stage_fails_tells_services_without_stopping_them(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    with running_supervisor(exchange, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        mark = len(sup.recorder.events())
        assert sup.inject(InjectFault(target="orderbook", fault="crash"))["accepted"]
        assert sup.recorder.wait_for_state(State.READY, WAIT, after=mark)
        assert journal.wait_for_entry("probe", "ready", count=2)
        kinds = journal.kinds("probe")
        assert kinds[kinds.index("not_ready") + 1 :].count("ready") == 1
        assert ("probe", "not_ready", State.ERROR) in journal.entries
        assert journal.kinds("probe").count("setup") == 1  # the same incarnation throughout
        assert _events(sup, ServiceFailureReported) == []


FAULTS = ["crash", "crash_on_start", "hang", "bad_metadata"]


@pytest.mark.parametrize("fault", FAULTS)
def test_service_fault_when_injected_restarts_only_the_service_and_ready_holds(
    exchange: EmbeddedExchange, journal: Journal, fault: str
) -> None:
    config = make_config(exchange, liveness_interval=0.1, liveness_timeout=0.3)
    with running_supervisor(exchange, config, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        mark = len(sup.recorder.events())
        reply = sup.inject(InjectFault(target="probe", fault=fault))
        assert reply == {"accepted": True, "target": "probe", "fault": fault}
        restarted = _wait_event(sup, ServiceRestarted, service="probe")
        failures = _events(sup, ServiceFailureReported)
        expected = {
            "crash": "InjectedFaultError",
            "crash_on_start": "InjectedFaultError",
            "hang": "Unresponsive",
            "bad_metadata": "BadMetadata",
        }[fault]
        assert failures[0].error_type == expected
        assert failures[0].next_restart_in_ms is not None
        if fault == "crash_on_start":  # the restart fails in on_start, then one succeeds
            _wait_event(sup, ServiceRestarted, 2, service="probe")
            reported = _events(sup, ServiceFailureReported)
            assert [f.error_type for f in reported][:2] == [expected] * 2
            assert "crash_on_start" in reported[1].reason
        assert restarted[0].attempt == 1  # the first restart of this service
        assert journal.wait_for_entry("probe", "ready", count=2)
        assert _transitions_after(sup, mark) == []  # READY held throughout
        assert _events(sup, StageFailureReported) == []
        assert sup.state is State.READY


@pytest.mark.parametrize("fault", ["disconnect", "slow"])
def test_service_fault_when_harmless_is_absorbed_without_a_restart(
    exchange: EmbeddedExchange, journal: Journal, fault: str
) -> None:
    with running_supervisor(exchange, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        reply = sup.inject(InjectFault(target="probe", fault=fault, seconds=0.05))
        assert reply["accepted"]
        # The service keeps working: an event published after the fault still reaches it.
        assert sup.inject(InjectFault(target="exchange", fault="rest_5xx", count=1))["accepted"]
        assert journal.wait_for_entry("probe", "event", "fault_injected", count=2)
        if fault == "disconnect":
            assert ("probe", "disconnect") in journal.entries
        assert _events(sup, ServiceFailureReported) == []
        assert sup.state is State.READY


def test_service_killed_when_its_actor_dies_silently_is_detected_and_restarted(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    config = make_config(exchange, liveness_interval=0.1, liveness_timeout=0.3)
    with running_supervisor(exchange, config, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        (ref,) = pykka.ActorRegistry.get_by_class(Probe)
        ref.stop(block=True, timeout=WAIT)  # dies without reporting anything
        _wait_event(sup, ServiceRestarted, service="probe")
        assert _events(sup, ServiceFailureReported)[0].error_type == "ActorDied"
        assert sup.state is State.READY


def test_restart_intensity_when_exhausted_drops_the_service_and_stays_ready(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    restart = RestartSettings(
        min_backoff=0.01, max_backoff=0.02, random_factor=0.0, max_restarts=2, period=60.0
    )
    config = make_config(exchange, restart=restart)
    with running_supervisor(exchange, config, services=SPECS) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="second")
        mark = len(sup.recorder.events())
        for attempt in range(1, 3):
            assert sup.inject(InjectFault(target="probe", fault="crash"))["accepted"]
            _wait_event(sup, ServiceRestarted, attempt, service="probe")
        assert sup.inject(InjectFault(target="probe", fault="crash"))["accepted"]
        (dropped,) = _wait_event(sup, ServiceDropped, service="probe")
        assert "restart intensity exhausted" in dropped.reason
        assert _events(sup, ServiceFailureReported)[-1].next_restart_in_ms is None
        reply = sup.inject(InjectFault(target="probe", fault="crash"))
        assert reply == {"accepted": False, "error": "probe service is dropped"}
        assert _transitions_after(sup, mark) == []
        assert sup.state is State.READY
        # The other service is untouched and still served.
        assert sup.inject(InjectFault(target="second", fault="disconnect"))["accepted"]
        assert journal.wait_for_entry("second", "disconnect")
        assert len(pykka.ActorRegistry.get_by_class(Second)) == 1


def test_temporary_service_when_it_fails_is_dropped_at_once(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    spec = ServiceSpec("probe", Probe, restart_type=RestartType.TEMPORARY)
    with running_supervisor(exchange, services=(spec,)) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        assert sup.inject(InjectFault(target="probe", fault="crash"))["accepted"]
        _wait_event(sup, ServiceDropped, service="probe")
        assert _events(sup, ServiceRestarted) == []
        assert sup.state is State.READY


def test_restart_type_when_configured_for_a_service_overrides_its_spec(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    restart = RestartSettings(
        min_backoff=0.01,
        max_backoff=0.05,
        random_factor=0.0,
        restart_types={"probe": RestartType.TEMPORARY},
    )
    config = make_config(exchange, restart=restart)
    with running_supervisor(exchange, config, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        _wait_event(sup, ServiceStarted, service="probe")
        assert sup.inject(InjectFault(target="probe", fault="crash"))["accepted"]
        _wait_event(sup, ServiceDropped, service="probe")


def test_account_when_an_update_sync_runs_reaches_the_service(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    config = make_config(exchange, sync_interval=0.2)
    with running_supervisor(exchange, config, services=SPECS[:1]) as sup:
        assert sup.wait_for_state(State.READY, WAIT)
        assert journal.wait_for_entry("probe", "account", "initial")
        exchange.account.set_balance(12_345)
        total = exchange.account.balance_cents()  # every shard's cash, as a sync reports it
        assert journal.wait_for_entry("probe", "account", "update", total)


class PauseProbe(Probe):
    """Records what ``trading_paused`` says on READY and on every pause event."""

    def _note(self, hook: str) -> None:
        self.journal.add(
            self.name, hook, self.generation, self.trading_paused(0), self.trading_paused(2)
        )

    def on_ready(self, metadata: ReadyMetadata) -> None:
        self._note("ready")

    def on_event(self, event: Event) -> None:
        if isinstance(event, ExchangePaused | ExchangeResumed):
            self._note(event.type)


def test_exchange_pause_when_a_shard_pauses_tells_services_whose_trading_is_refused(
    exchange: EmbeddedExchange, journal: Journal
) -> None:
    """Per-shard ``trading_active`` honoured where orders are placed: in the services. A
    service restarted during the pause knows it before its ``on_ready`` runs."""
    config = make_config(exchange, exchange_check_interval=3600.0)
    with running_supervisor(exchange, config, services=(ServiceSpec("probe", PauseProbe),)) as sup:
        assert journal.wait_for_entry("probe", "ready", 1, False, False)
        pause = InjectFault(target=FaultTarget.EXCHANGE, fault="pause_trading", shard=2)
        assert sup.inject(pause)["accepted"] is True
        assert journal.wait_for_entry("probe", "exchange_paused", 1, False, True)
        assert sup.inject(InjectFault(target="probe", fault="crash"))["accepted"] is True
        assert journal.wait_for_entry("probe", "ready", 2, False, True)
        resume = InjectFault(target=FaultTarget.EXCHANGE, fault="resume")
        assert sup.inject(resume)["accepted"] is True
        assert journal.wait_for_entry("probe", "exchange_resumed", 2, False, False)
        everywhere = InjectFault(target=FaultTarget.EXCHANGE, fault="pause_exchange")
        assert sup.inject(everywhere)["accepted"] is True
        assert journal.wait_for_entry("probe", "exchange_paused", 2, True, True)
        assert sup.inject(resume)["accepted"] is True
        assert journal.wait_for_entry("probe", "exchange_resumed", 2, False, False, count=2)
        assert _events(sup, StageFailureReported) == []
