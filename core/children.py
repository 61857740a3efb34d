"""The actors behind the core's ``ChildHost`` port, stages and services alike, and the
shell's background work: the only core modules that talk pykka and threads are this one and
``supervisor_actor``.

Why stops happen on a thread of their own: ``ActorRef.stop(block=True)`` on the
supervisor's thread blocked it up to ``STOP_TIMEOUT`` per child (a hung child, every
restart). The ``Stopper`` stops the children in the order given, one at a time, on one
short-lived thread that ends when it has nothing left to stop; the shell joins it (bounded)
at shutdown, so no thread outlives the supervisor.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Sequence
from typing import Any

import pykka

from core.ports import ChildGoneError, ChildUnresponsiveError
from messages.base import Message
from messages.commands import Ping

logger = logging.getLogger("kalshi_supervisor.core.children")

STOP_TIMEOUT = 0.5
"""Bound on one child's stop (on the stopper's thread); a child still running is abandoned.
A child class may ask for its own (``stop_timeout``: the order gateway's halt budget)."""


def stop_budget(actor_class: Any) -> float:
    """The bound on stopping an actor of this class: its own ``stop_timeout`` or ours."""
    own = getattr(actor_class, "stop_timeout", None)
    return STOP_TIMEOUT if own is None else max(STOP_TIMEOUT, float(own))


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
            return ("ActorDied", "actor is not running")
        try:
            self._future.get(timeout=0)
        except pykka.Timeout:
            return ("Unresponsive", "did not answer a ping")
        except Exception as exc:
            return ("ActorDied", f"{type(exc).__name__}: {exc}")
        return None


class Stopper:
    """Stops actors in the order given, off the caller's thread; one thread at most, alive
    only while there is something to stop."""

    def __init__(
        self, timeout: float = STOP_TIMEOUT, on_done: Callable[[str], None] | None = None
    ) -> None:
        self._timeout = timeout
        self._on_done = on_done
        self._queue: queue.SimpleQueue[tuple[str, pykka.ActorRef[Any], float]] = (
            queue.SimpleQueue()
        )
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._pending = 0
        self._extra = 0.0
        """The budgets beyond ``timeout`` of the stops not done yet (the gateway's halt)."""

    def submit(
        self, refs: Sequence[tuple[str, pykka.ActorRef[Any]]],
        budgets: dict[str, float] | None = None,
    ) -> None:
        """Stop these, in order; ``budgets`` names the ones allowed longer than ours."""
        with self._lock:
            for name, ref in refs:
                budget = max(self._timeout, (budgets or {}).get(name, self._timeout))
                self._queue.put((name, ref, budget))
                self._extra += budget - self._timeout
            self._pending += len(refs)
            if self._thread is None and self._pending:
                self._thread = threading.Thread(
                    target=self._run, name="kalshi-supervisor-stopper", daemon=True
                )
                self._thread.start()

    def _run(self) -> None:
        while True:
            with self._lock:
                if self._pending == 0:
                    self._thread = None
                    return
            name, ref, budget = self._queue.get()
            try:
                ref.stop(block=True, timeout=budget)
            except pykka.Timeout:
                logger.warning("%s did not stop within %.1fs", name, budget)
            except pykka.ActorDeadError:
                pass
            except Exception:
                logger.exception("%s: error while stopping", name)
            finally:
                with self._lock:
                    self._pending -= 1
                    self._extra -= budget - self._timeout
                if self._on_done is not None:
                    self._on_done(name)

    def join(self, timeout: float) -> bool:
        """Wait (bounded) until everything submitted was stopped and the thread ended:
        ``timeout`` plus the longer budgets of the stops still to finish (a gateway
        verifying its halt is waited for, not abandoned as the process exits)."""
        with self._lock:
            thread = self._thread
            extra = max(0.0, self._extra)
        if thread is not None:
            thread.join(timeout + extra)
        with self._lock:
            return self._pending == 0


class PykkaChildren:
    """Starts, asks, tells, pings and stops every child of one supervisor actor (their parent)."""

    def __init__(
        self, parent: pykka.ActorRef[Any], on_stopped: Callable[[str], None] | None = None
    ) -> None:
        self._parent = parent
        self._refs: dict[str, pykka.ActorRef[Any]] = {}
        self._budgets: dict[str, float] = {}
        """Children whose stop may take longer than ``STOP_TIMEOUT`` (``stop_budget``)."""
        self._stopper = Stopper(on_done=on_stopped)
        self._stopping: dict[str, list[pykka.ActorRef[Any]]] = {}
        """Incarnations handed to the stopper, until their actor has really stopped."""

    def start(self, spec: Any, context: object, generation: int, controls: Any) -> None:
        self._refs.pop(spec.name, None)
        self._refs[spec.name] = spec.actor_class.start(self._parent, context, generation, controls)
        budget = stop_budget(spec.actor_class)
        if budget > STOP_TIMEOUT:
            self._budgets[spec.name] = budget

    def is_alive(self, name: str) -> bool:
        ref = self._refs.get(name)
        return ref is not None and ref.is_alive()

    def ask(self, name: str, message: Message, timeout: float) -> Any:
        ref = self._refs.get(name)
        if ref is None:
            raise ChildGoneError(name)
        try:
            return ref.ask(message, timeout=timeout)
        except pykka.Timeout as exc:
            raise ChildUnresponsiveError(name) from exc
        except pykka.ActorDeadError as exc:
            raise ChildGoneError(name) from exc

    def tell(self, name: str, message: object) -> bool:
        ref = self._refs.get(name)
        if ref is None:
            return False
        try:
            ref.tell(message)
        except pykka.ActorDeadError:
            return False
        return True

    def ping(self, name: str) -> PykkaPing:
        ref = self._refs.get(name)
        if ref is None:
            return PykkaPing(None)
        try:
            return PykkaPing(ref.ask(Ping(), block=False))
        except pykka.ActorDeadError:
            return PykkaPing(None)

    def stop(self, names: Sequence[str]) -> None:
        """Hand the stopper these children, in this order; returns at once."""
        refs = [(name, ref) for name in names if (ref := self._refs.pop(name, None)) is not None]
        for name, ref in refs:  # kept until really stopped; the dead are dropped here (bounded)
            earlier = [r for r in self._stopping.get(name, ()) if r.is_alive()]
            self._stopping[name] = [*earlier, ref]
        if refs:
            self._stopper.submit(refs, self._budgets)

    def lingering(self, name: str) -> bool:
        """Whether an earlier incarnation of ``name`` is still running after its stop (a
        real hang in its own code: nothing can interrupt a Python thread)."""
        alive = [ref for ref in self._stopping.get(name, ()) if ref.is_alive()]
        if alive:
            self._stopping[name] = alive
        else:
            self._stopping.pop(name, None)
        return bool(alive)

    def close(self, timeout: float) -> bool:
        """The supervisor stopped: stop any child left (latest first), wait for every stop."""
        self.stop(list(reversed(self._refs)))
        return self._stopper.join(timeout)


class BackgroundWork:
    """The shell's ``Background`` port: blocking work (market discovery, status reads) on
    threads that are remembered, so the shell can join them (bounded) when it stops."""

    def __init__(self) -> None:
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def __call__(self, work: Callable[[], None]) -> None:
        thread = threading.Thread(target=work, name="kalshi-supervisor-background", daemon=True)
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()]
            self._threads.append(thread)
        thread.start()

    def join(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds in all; whether every thread ended."""
        with self._lock:
            threads = list(self._threads)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)
