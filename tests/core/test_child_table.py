"""One supervision mechanism: a stage and a service go through the same ``ChildTable``.

The table is driven here with a recording host and a manual clock (as the core drives it);
the real actors are exercised by the supervisor tests. Each test uses both kinds, so a
table that treated one kind apart would fail here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from actors.registry import ORDERBOOK
from actors.service import ServiceActor, ServiceSpec
from core.child_table import ChildTable
from core.timers import ConfirmDead, LivenessCheck
from supervision.scheduler import ManualScheduler


class Idle(ServiceActor):
    """Never started for real here."""


SERVICE = ServiceSpec("watch", Idle)


@dataclass
class Probe:
    host: Host

    def answered(self) -> bool:
        return self.host.answers

    def failure(self) -> tuple[str, str] | None:
        return None if self.host.answers else ("Unresponsive", "no answer")


@dataclass
class Host:
    """The ``ChildHost`` port, recording what the table asks of it."""

    alive: dict[str, bool] = field(default_factory=dict)
    log: list[tuple[Any, ...]] = field(default_factory=list)
    answers: bool = True
    controls: dict[str, Any] = field(default_factory=dict)

    def start(self, spec: Any, context: object, generation: int, controls: Any) -> None:
        self.log.append(("start", spec.name, generation))
        self.alive[spec.name] = True
        assert not controls.release.is_set()  # a fresh incarnation starts unreleased
        self.controls[spec.name] = controls

    def is_alive(self, name: str) -> bool:
        return self.alive.get(name, False)

    def ask(self, name: str, message: object, timeout: float) -> Any:
        return ("asked", name)

    def tell(self, name: str, message: object) -> bool:
        return self.alive.get(name, False)

    def ping(self, name: str) -> Probe:
        self.log.append(("ping", name))
        return Probe(self)

    def stop(self, names: Sequence[str]) -> None:
        self.log.append(("stop", *names))
        for name in names:
            self.alive[name] = False

    def lingering(self, name: str) -> bool:
        return False


def table() -> tuple[ChildTable, Host, ManualScheduler, list[object]]:
    host, scheduler, mail = Host(), ManualScheduler(), []
    return (
        ChildTable(host, mailbox=mail.append, scheduler=scheduler, liveness_timeout=0.5),
        host,
        scheduler,
        mail,
    )


def test_start_when_a_stage_and_a_service_restart_each_gets_its_own_next_generation() -> None:
    children, _, _, _ = table()
    assert children.start(ORDERBOOK, None) == 1
    assert children.start(SERVICE, None) == 1
    children.stop(["orderbook"])
    assert children.ensure(ORDERBOOK, None) == 2
    assert children.ensure(SERVICE, None) == 1  # still running: kept
    assert children.names() == ["watch", "orderbook"]  # a restart goes last in start order
    assert children.is_current("orderbook", 2) and not children.is_current("orderbook", 1)


def test_ping_when_unanswered_is_judged_unresponsive_in_the_childs_own_words() -> None:
    children, host, scheduler, mail = table()
    children.start(ORDERBOOK, None)
    children.start(SERVICE, None)
    host.answers = False
    children.ping("orderbook")
    children.ping("watch")
    children.ping("watch")  # one ping in flight per child
    assert [e for e in host.log if e[0] == "ping"] == [("ping", "orderbook"), ("ping", "watch")]
    scheduler.advance(0.5)
    verdicts = {check.child: children.judge(check) for check in mail}  # type: ignore[attr-defined]
    assert verdicts == {
        "orderbook": ("Unresponsive", "orderbook stage did not answer a ping within 0.5s"),
        "watch": ("Unresponsive", "watch service did not answer a ping within 0.5s"),
    }


def test_judge_when_the_child_restarted_since_the_ping_is_stale() -> None:
    children, host, scheduler, mail = table()
    children.start(SERVICE, None)
    host.answers = False
    children.ping("watch")
    children.stop(["watch"])
    children.start(SERVICE, None)
    scheduler.advance(0.5)
    assert len(mail) == 1 and isinstance(mail[0], LivenessCheck)
    assert children.judge(mail[0]) is None


def test_tell_when_the_child_is_gone_queues_confirm_dead_for_that_incarnation() -> None:
    children, host, _, mail = table()
    children.start(ORDERBOOK, None)
    children.start(SERVICE, None)
    host.alive["watch"] = False
    assert children.tell("orderbook", "hello")
    assert not children.tell("watch", "hello")
    assert mail == [ConfirmDead("watch", 1)]


def test_stop_when_given_names_releases_hangs_and_stops_in_reverse_start_order() -> None:
    children, host, _, _ = table()
    children.start(ORDERBOOK, None)
    children.start(SERVICE, None)
    children.stop(children.ordered(["orderbook", "watch"], ["orderbook", "watch"]))
    assert host.log[-1] == ("stop", "watch", "orderbook")
    assert all(c.release.is_set() for c in host.controls.values())
    assert children.names() == []
