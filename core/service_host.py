"""The pykka side of :class:`core.services.ServiceHost`: service actors as refs.

Kept apart from the decisions so those stay plain Python. Every call is bounded: tells
never wait, pings are futures read with ``timeout=0``, and a stop waits at most
``STOP_TIMEOUT`` (a stuck actor is abandoned, its daemon thread cannot keep the process).
"""

from __future__ import annotations

import logging
from typing import Any

import pykka

from actors.base import StageControls, one_line
from actors.service import ServiceContext, ServiceSpec
from messages.commands import Ping

logger = logging.getLogger("kalshi_supervisor.services")

STOP_TIMEOUT = 0.5


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
            ref.stop(block=True, timeout=STOP_TIMEOUT)
        except pykka.Timeout:
            logger.warning("%s service did not stop within %.1fs", name, STOP_TIMEOUT)
        except pykka.ActorDeadError:
            pass
