"""The loop-thread helper: start/stop contract, crossing threads, crash and exit hooks."""

from __future__ import annotations

import asyncio
import threading

import pytest

from kalshi_api.loop_thread import LoopThread


def _forever() -> LoopThread:
    async def main() -> None:
        await asyncio.Event().wait()

    return LoopThread(main, name="test-loop")


def test_start_returns_with_a_running_loop_and_stop_joins() -> None:
    exited = threading.Event()

    async def main() -> None:
        await asyncio.Event().wait()

    runner = LoopThread(main, name="test-loop", on_exit=exited.set)
    runner.start()
    assert runner.loop is not None
    assert runner.run_sync(lambda: threading.current_thread().name) == "test-loop"
    assert runner.stop(timeout=5.0)
    assert exited.is_set() and runner.loop is None and runner.stopping


def test_stopped_loop_thread_cannot_restart_and_stop_is_idempotent() -> None:
    runner = _forever()
    runner.start()
    runner.stop(timeout=5.0)
    assert runner.stop(timeout=5.0)
    with pytest.raises(RuntimeError, match="cannot be restarted"):
        runner.start()


def test_calls_after_the_loop_is_gone_degrade_gracefully() -> None:
    runner = _forever()
    assert runner.call_soon(print) is False  # never started
    assert runner.run_sync(lambda: 42) == 42  # nobody else writes: runs in the caller
    runner.start()
    runner.stop(timeout=5.0)
    assert runner.call_soon(print) is False
    assert runner.run_sync(lambda: 7) == 7


def test_run_coroutine_returns_its_result_and_errors() -> None:
    runner = _forever()
    runner.start()
    try:

        async def double(value: int) -> int:
            await asyncio.sleep(0)
            return value * 2

        async def boom() -> None:
            raise ValueError("bad")

        assert runner.run_coroutine(double(21), timeout=5.0) == 42
        with pytest.raises(ValueError, match="bad"):
            runner.run_coroutine(boom(), timeout=5.0)
    finally:
        runner.stop(timeout=5.0)
    with pytest.raises(RuntimeError, match="not running"):
        runner.run_coroutine(double(1), timeout=1.0)


def test_run_sync_propagates_exceptions() -> None:
    runner = _forever()
    runner.start()
    try:
        with pytest.raises(KeyError):
            runner.run_sync(lambda: {}["missing"])
    finally:
        runner.stop(timeout=5.0)


def test_crash_goes_to_on_crash_and_pending_tasks_are_cancelled() -> None:
    crashed: list[BaseException] = []
    cancelled = threading.Event()

    async def child() -> None:
        try:
            await asyncio.Event().wait()
        except asyncio.CancelledError:
            cancelled.set()
            raise

    async def main() -> None:
        asyncio.get_running_loop().create_task(child())
        await asyncio.sleep(0)
        raise RuntimeError("bug")

    exited = threading.Event()
    runner = LoopThread(main, name="test-loop", on_crash=crashed.append, on_exit=exited.set)
    runner.start()
    assert exited.wait(5.0)  # the crash ends the thread by itself; stop() would race it
    assert runner.stop(timeout=5.0)
    assert [str(e) for e in crashed] == ["bug"] and cancelled.is_set()


def test_in_loop_thread_blocks_deadlocking_calls() -> None:
    results: list[object] = []

    async def main() -> None:
        results.append(runner.in_loop_thread())
        results.append(runner.run_sync(lambda: "direct"))
        coro = asyncio.sleep(0)
        try:
            runner.run_coroutine(coro)
        except RuntimeError as exc:
            results.append(str(exc))

    runner = LoopThread(main, name="test-loop")
    runner.start()
    runner.stop(timeout=5.0)
    assert results == [True, "direct", "run_coroutine from the loop thread would deadlock"]
    assert not runner.in_loop_thread()
