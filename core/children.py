"""The stage actors behind the core's ``Children`` port: the only core module that talks pykka."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pykka

from actors.context import StageContext
from actors.controls import StageControls, StartFaults
from actors.service_spec import ServiceContext, ServiceSpec
from actors.stage_spec import StageSpec
from core.ports import StageGoneError, StageUnresponsiveError
from messages.base import Message
from messages.commands import Ping
from messages.text import one_line

logger = logging.getLogger("kalshi_supervisor.core.children")

STOP_TIMEOUT = 0.5


@dataclass
class _Child:
    ref: pykka.ActorRef[Any]
    generation: int
    controls: StageControls


class PykkaPing:
    """A liveness ping as a pykka future, judged without blocking."""

    def __init__(self, future: pykka.Future[Any] | None) -> None:
        self._future = future

    def answered(self) -> bool:
        if self._future is None:
            return True
        try:
            self._future.get(timeout=0)
        except pykka.Timeout:
            return False
        except Exception:
            return True
        return True

    def failure(self) -> tuple[str, str] | None:
        if self._future is None:
            return ("ActorDied", "stage actor is not running")
        try:
            self._future.get(timeout=0)
        except pykka.Timeout:
            return ("Unresponsive", "did not answer a ping")
        except Exception as exc:
            return ("ActorDied", f"{type(exc).__name__}: {exc}")
        return None


class PykkaChildren:
    """Starts, asks, tells and stops stage actors for one supervisor actor (their parent)."""

    def __init__(self, parent: pykka.ActorRef[Any]) -> None:
        self._parent = parent
        self._children: dict[str, _Child] = {}
        self._generation = 0
        self._start_faults = StartFaults()
        """Owned here so an armed ``crash_on_start`` survives the restart it causes."""

    def ensure(self, spec: StageSpec, context: StageContext) -> int:
        child = self._children.get(spec.name)
        if child is not None and child.ref.is_alive():
            return child.generation
        self._children.pop(spec.name, None)
        self._generation += 1
        controls = StageControls(start_faults=self._start_faults)
        ref = spec.actor_class.start(self._parent, context, self._generation, controls)
        self._children[spec.name] = _Child(ref=ref, generation=self._generation, controls=controls)
        return self._generation

    def generation(self, name: str) -> int | None:
        child = self._children.get(name)
        return None if child is None else child.generation

    def names(self) -> list[str]:
        return list(self._children)

    def is_alive(self, name: str) -> bool:
        child = self._children.get(name)
        return child is not None and child.ref.is_alive()

    def ask(self, name: str, message: Message, timeout: float) -> Any:
        child = self._children.get(name)
        if child is None:
            raise StageGoneError(name)
        try:
            return child.ref.ask(message, timeout=timeout)
        except pykka.Timeout as exc:
            raise StageUnresponsiveError(name) from exc
        except pykka.ActorDeadError as exc:
            raise StageGoneError(name) from exc

    def tell(self, name: str, message: object) -> bool:
        child = self._children.get(name)
        if child is None:
            return False
        try:
            child.ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ping(self, name: str) -> PykkaPing:
        child = self._children.get(name)
        if child is None:
            return PykkaPing(None)
        try:
            return PykkaPing(child.ref.ask(Ping(), block=False))
        except pykka.ActorDeadError:
            return PykkaPing(None)

    def stop(self, names: Sequence[str]) -> None:
        """Stop in the given order, releasing any simulated hang first (bounded per stage)."""
        for name in names:
            child = self._children.pop(name, None)
            if child is None:
                continue
            child.controls.release.set()
            try:
                child.ref.stop(block=True, timeout=STOP_TIMEOUT)
            except pykka.Timeout:
                logger.warning("%s stage did not stop within %.1fs", name, STOP_TIMEOUT)
            except pykka.ActorDeadError:
                pass


# -- services (the shell side of core.services.ServiceHost) --------------------------------------
SERVICE_STOP_TIMEOUT = 0.5


class PykkaServiceHost:
    """Service actors started as children of ``parent`` (the supervisor's ref)."""

    def __init__(self, parent: pykka.ActorRef[Any]) -> None:
        self._parent = parent
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._pings: dict[str, pykka.Future[Any]] = {}

    def start(
        self, spec: ServiceSpec, context: ServiceContext, generation: int, controls: StageControls
    ) -> None:
        self._refs[spec.name] = spec.actor_class.start(self._parent, context, generation, controls)
        self._pings.pop(spec.name, None)

    def tell(self, name: str, message: object) -> bool:
        ref = self._refs.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def is_alive(self, name: str) -> bool:
        ref = self._refs.get(name)
        return ref is not None and ref.is_alive()

    def ping(self, name: str) -> None:
        ref = self._refs.get(name)
        if ref is not None:
            self._pings[name] = ref.ask(Ping(), block=False)

    def ping_result(self, name: str) -> tuple[str, str] | bool | None:
        future = self._pings.get(name)
        if future is None:
            return None
        try:
            future.get(timeout=0)
        except pykka.Timeout:
            return False
        except Exception as exc:
            self._pings.pop(name, None)
            return "ActorDied", one_line(f"{name} service: {type(exc).__name__}: {exc}")
        self._pings.pop(name, None)
        return None

    def stop(self, name: str) -> None:
        ref = self._refs.pop(name, None)
        self._pings.pop(name, None)
        if ref is None:
            return
        try:
            ref.stop(block=True, timeout=SERVICE_STOP_TIMEOUT)
        except pykka.Timeout:
            logger.warning("%s service did not stop within %.1fs", name, SERVICE_STOP_TIMEOUT)
        except pykka.ActorDeadError:
            pass
