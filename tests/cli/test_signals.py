"""A signal landing at any instant of ``run``'s main loop is counted and ends it (issue 17).

CPython runs a Python signal handler on the main thread at a bytecode boundary of whatever
that thread is doing. The old handler set a ``threading.Event`` the loop was waiting on; a
signal landing on the few bytecodes where the loop held that event's lock deadlocked the main
thread for good (no SHUTDOWN, ``control.json`` left behind, once in hundreds of Ctrl-Cs).
Timing cannot hit those bytecodes on purpose, so the child below makes every one of them a
signal's landing place: a trace function raises a real signal (``signal.raise_signal``, which
runs the installed handler before it returns) at each bytecode the main loop executes,
``threading``'s included. A handler that takes a lock the loop can hold hangs the child;
one that only counts lets it end.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow  # a subprocess tracing every bytecode of a few loop turns

REPO = Path(__file__).resolve().parents[2]
DEADLOCK_AFTER = 90.0
"""Generous: the child runs a few seconds; only a deadlock lasts this long (then it prints
every thread's stack and exits)."""

CHILD = r"""
import faulthandler
import signal
import sys
import threading

from cli.run import wait_for_stop
from cli.signals import SignalCounter

INTERRUPT_AT = int(sys.argv[1])
faulthandler.dump_traceback_later(float(sys.argv[2]), exit=True)  # a deadlock shows where
stopped = threading.Event()  # the supervisor's: nobody sets it here
reopened = []
executed = 0


def every_bytecode(frame, event, arg):
    global executed
    frame.f_trace_opcodes = True
    if event == "opcode":
        executed += 1
        signal.raise_signal(signal.SIGINT if executed == INTERRUPT_AT else signal.SIGHUP)
    return every_bytecode


with SignalCounter(signal.SIGINT, signal.SIGTERM, signal.SIGHUP) as signals:
    sys.settrace(every_bytecode)
    try:
        by_signal = wait_for_stop(signals, stopped, lambda: reopened.append(True))
    finally:
        sys.settrace(None)
print(by_signal, signals.count(signal.SIGINT), signals.count(signal.SIGHUP) > 0, bool(reopened),
      executed >= INTERRUPT_AT)
"""


def test_wait_for_stop_when_a_signal_lands_on_every_bytecode_counts_them_and_ends_on_sigint() -> (
    None
):
    # Enough bytecodes for several turns of the loop, each through Event.wait's locked parts.
    interrupt_at = 3000
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(interrupt_at), str(DEADLOCK_AFTER)],
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    out, err = child.communicate()  # ends by itself: finished, or its deadlock timer
    assert "Timeout" not in err, "the main loop deadlocked in a signal handler:\n" + err
    assert child.returncode == 0, err
    # Ended by the SIGINT; every SIGHUP before it reopened the events file on the loop.
    assert out.split() == ["True", "1", "True", "True", "True"], out + err
