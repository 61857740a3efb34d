"""An asyncio event loop on a thread of its own, with a started/stopped contract.

Why: the orderbook stream must own its socket and its books on one thread (one writer, no
locks on the hot path) while its owner (an actor, a test, a benchmark) lives on others.
This helper holds the plumbing that every such owner needs and that is easy to get subtly
wrong: start returns only once the loop runs, stop cancels the main coroutine and joins,
pending tasks are cancelled and awaited before the loop closes, and calls from other
threads degrade gracefully once the loop is gone instead of raising.

The embedded exchange does not use it: its servers are moving onto uvicorn/Starlette, which
run their own loop. It is the client session's helper.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["LoopThread"]

log = logging.getLogger("kalshi_supervisor.kalshi_api.loop_thread")

_T = TypeVar("_T")


class LoopThread:
    """Runs one main coroutine on a fresh event loop in a daemon thread.

    Contract: :meth:`start` returns once the loop exists (so :meth:`call_soon` works from
    then on); :meth:`stop` cancels the main coroutine and joins; after the main coroutine
    ends (by itself, by cancellation or by crashing) every remaining task is cancelled and
    awaited, async generators are closed, ``on_exit`` runs on the loop thread, and only then
    is the loop closed. A crash is handed to ``on_crash`` on the loop thread rather than
    killing the thread silently. A stopped LoopThread cannot be restarted.
    """

    def __init__(
        self,
        main: Callable[[], Coroutine[Any, Any, None]],
        *,
        name: str,
        on_crash: Callable[[BaseException], None] | None = None,
        on_exit: Callable[[], None] | None = None,
    ) -> None:
        self._main = main
        self._name = name
        self._on_crash = on_crash
        self._on_exit = on_exit
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._main_task: asyncio.Task[None] | None = None
        self._ready = threading.Event()
        self._stopping = False

    # -- lifecycle (any thread) ------------------------------------------------------------
    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called: the main coroutine should wind down."""
        return self._stopping

    @property
    def loop(self) -> asyncio.AbstractEventLoop | None:
        """The running loop, or None before start and after it closed."""
        return self._loop

    def in_loop_thread(self) -> bool:
        """True when called from the loop's own thread (where blocking on it would deadlock)."""
        return threading.current_thread() is self._thread

    def start(self) -> None:
        """Start the thread and return once its loop exists; idempotent while running."""
        with self._lock:
            if self._stopping:
                raise RuntimeError(f"a stopped {self._name} cannot be restarted")
            if self._thread is not None:
                return
            thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread = thread
            thread.start()
        self._ready.wait()

    def stop(self, timeout: float = 2.0) -> bool:
        """Cancel the main coroutine and join the thread; idempotent, safe from any thread.

        Returns False if the thread was still alive after ``timeout`` (logged once).
        """
        with self._lock:
            self._stopping = True
            thread = self._thread
        self.call_soon(self._cancel_main)
        if thread is not None and thread is not threading.current_thread():
            thread.join(timeout)
            if thread.is_alive():
                log.warning("%s thread did not stop within %.1fs", self._name, timeout)
                return False
        return True

    # -- crossing threads ------------------------------------------------------------------
    def call_soon(self, fn: Callable[..., object], *args: object) -> bool:
        """Schedule ``fn(*args)`` on the loop from any thread; False if the loop is gone."""
        loop = self._loop
        if loop is None:
            return False
        try:
            loop.call_soon_threadsafe(fn, *args)
        except RuntimeError:  # closed between the check and the call
            return False
        return True

    def run_sync(self, fn: Callable[[], _T], timeout: float = 2.0) -> _T:
        """Run ``fn`` on the loop thread and return its result.

        Called on the loop thread, or when no loop runs (nobody else can be writing then),
        or when the loop does not get to it within ``timeout`` (it is shutting down), ``fn``
        runs directly in the caller: readers always get an answer, never a hang.
        """
        if self._loop is None or self.in_loop_thread():
            return fn()
        future: concurrent.futures.Future[_T] = concurrent.futures.Future()

        def run() -> None:
            try:
                future.set_result(fn())
            except BaseException as exc:
                future.set_exception(exc)

        if not self.call_soon(run):
            return fn()
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            return fn()

    def run_coroutine(self, coro: Coroutine[Any, Any, _T], timeout: float = 2.0) -> _T:
        """Run ``coro`` on the loop from another thread and wait up to ``timeout`` for it."""
        loop = self._loop
        if loop is None:
            coro.close()
            raise RuntimeError(f"{self._name} is not running")
        if self.in_loop_thread():
            coro.close()
            raise RuntimeError("run_coroutine from the loop thread would deadlock")
        future = asyncio.run_coroutine_threadsafe(coro, loop)
        try:
            return future.result(timeout=timeout)
        except TimeoutError:
            future.cancel()
            raise

    # -- the thread ------------------------------------------------------------------------
    def _cancel_main(self) -> None:
        if self._main_task is not None:
            self._main_task.cancel()

    def _run(self) -> None:
        loop = asyncio.new_event_loop()
        self._loop = loop
        self._main_task = loop.create_task(self._main())
        self._ready.set()
        try:
            loop.run_until_complete(self._main_task)
        except asyncio.CancelledError:
            pass
        except Exception as exc:  # a bug must still surface through on_crash, not a dead thread
            if self._on_crash is None:
                log.exception("%s crashed", self._name)
            else:
                self._on_crash(exc)
        finally:
            if self._on_exit is not None:
                self._on_exit()
            pending = [task for task in asyncio.all_tasks(loop) if not task.done()]
            for task in pending:
                task.cancel()
            if pending:
                loop.run_until_complete(asyncio.gather(*pending, return_exceptions=True))
            loop.run_until_complete(loop.shutdown_asyncgens())
            with self._lock:
                self._loop = None
            with contextlib.suppress(Exception):
                loop.close()
