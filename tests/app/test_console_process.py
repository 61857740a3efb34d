"""``kalshi-supervisor run`` as a subprocess: the console with slow clients on a signal, the
events sink's failures and SIGHUP, and two supervisors sharing one state directory."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import IO

import pytest
from websockets.sync.client import connect

from app.console_state import instance_path, read_state_file

pytestmark = pytest.mark.slow  # subprocesses: every test starts kalshi-supervisor

_SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
START_WAIT = 20.0
EXIT_WAIT = 15.0
"""How long a test waits for the process to end after a signal: generous, for a loaded
machine. The 2 s promise is a figure, measured by ``bench/bench_shutdown.py``."""
REPO = Path(__file__).resolve().parents[2]
CONSOLE_LINE = re.compile(r"console at (http://\S+?)/(?:\s|$)")


class Run:
    """One ``kalshi-supervisor run``; stderr collected line by line as it comes."""

    def __init__(self, *args: str, env: dict[str, str]) -> None:
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            [*COMMAND, "run", "--status-port", "0", "--exchange-rate", "5", *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
            env=env,
            cwd=REPO,
        )
        assert self.popen.stderr is not None
        self._reader = threading.Thread(target=self._pump, args=(self.popen.stderr,), daemon=True)
        self._reader.start()

    def _pump(self, stream: IO[str]) -> None:
        for line in stream:
            with self._changed:
                self.lines.append(line.rstrip("\n"))
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_line(self, needle: str, timeout: float = START_WAIT) -> str:
        def find() -> str | None:
            return next((line for line in self.lines if needle in line), None)

        with self._changed:
            found = self._changed.wait_for(
                lambda: find() or not self._reader.is_alive(), timeout=timeout
            )
            line = find()
        assert found and line is not None, f"no {needle!r} on stderr:\n" + "\n".join(self.lines)
        return line

    @property
    def console_url(self) -> str:
        match = CONSOLE_LINE.search(self.wait_line("console at "))
        assert match is not None
        return match.group(1)

    def wait_ready(self) -> None:
        """Follow the console's own feed until READY (event-driven, no polling)."""
        url = self.console_url.replace("http://", "ws://") + "/ws"
        with connect(url) as ws:
            while True:
                event = json.loads(ws.recv(timeout=START_WAIT))
                if event.get("to_state") == "ready":
                    return

    def interrupt(self, signum: int = signal.SIGINT) -> tuple[int | None, float]:
        start = time.monotonic()
        self.popen.send_signal(signum)
        try:
            code: int | None = self.popen.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        return code, time.monotonic() - start

    def finish(self, timeout: float = START_WAIT) -> int:
        code = self.popen.wait(timeout)
        self._reader.join(timeout)
        return code

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()
        self._reader.join(5.0)


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    environment = dict(os.environ)
    environment["XDG_STATE_HOME"] = str(tmp_path / "state")
    environment.pop("KALSHI_API_KEY_ID", None)
    return environment


@pytest.fixture
def runs() -> Iterator[list[Run]]:
    started: list[Run] = []
    try:
        yield started
    finally:
        for run in started:
            run.kill()


def test_sigint_when_slow_console_clients_attached_exits_0_without_traceback(
    env: dict[str, str], runs: list[Run]
) -> None:
    run = Run(env=env)
    runs.append(run)
    run.wait_ready()
    url = run.console_url
    host, port = url.removeprefix("http://").rsplit(":", 1)
    # A feed client that never reads, and a client that sends half a request and stalls.
    with (
        connect(url.replace("http://", "ws://") + "/ws", max_queue=1, close_timeout=1),
        socket.create_connection((host, int(port))) as stalled,
    ):
        stalled.sendall(b"GET /status HTTP/1.1\r\nHost: " + f"{host}:{port}".encode() + b"\r\n")
        code, _elapsed = run.interrupt(signal.SIGINT)
    assert code == 0, "\n".join(run.lines)
    assert not any("Traceback" in line for line in run.lines)


def test_events_path_unusable_is_one_line_and_exit_2(
    env: dict[str, str], runs: list[Run], tmp_path: Path
) -> None:
    run = Run("--events", str(tmp_path / "missing-dir" / "events.jsonl"), env=env)
    runs.append(run)
    code = run.finish()

    assert code == 2
    errors = [line for line in run.lines if "error" in line]
    assert len(errors) == 1, run.lines
    assert errors[0].startswith("kalshi-supervisor: error: cannot write events to ")
    assert not any("Traceback" in line for line in run.lines)


def test_sighup_reopens_the_events_file_for_log_rotation(
    env: dict[str, str], runs: list[Run], tmp_path: Path
) -> None:
    events = tmp_path / "events.jsonl"
    run = Run("--events", str(events), env=env)
    runs.append(run)
    run.wait_ready()
    rotated = tmp_path / "events.jsonl.1"
    events.rename(rotated)
    run.popen.send_signal(signal.SIGHUP)
    run.wait_line("reopened")
    code, _ = run.interrupt(signal.SIGTERM)

    assert code == 0
    old = [json.loads(line) for line in rotated.read_text().splitlines()]
    new = [json.loads(line) for line in events.read_text().splitlines()]
    def states(events: list[dict[str, object]]) -> list[object]:
        return [e["to_state"] for e in events if e["type"] == "state_transition"]

    # Every event is in exactly one of the two files: the old one up to the rotation, the
    # new one from there (READY may land on either side: the sink is the feed's sibling).
    assert states(old)[0] == "initializing"
    assert states(new)[-1] == "shutdown"
    assert states(old) + states(new) == [
        "initializing",
        "orderbook_connect",
        "trading_client_connect",
        "kalshi_data_sync",
        "ready",
        "shutdown",
    ]


def test_events_to_a_closed_pipe_warns_once_and_keeps_running(
    env: dict[str, str], tmp_path: Path
) -> None:
    reader_closed = subprocess.Popen(
        [*COMMAND, "run", "--status-port", "0", "--events", "-"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    assert reader_closed.stdout is not None and reader_closed.stderr is not None
    try:
        first = reader_closed.stdout.readline()  # the first event: it runs
        reader_closed.stdout.close()  # the reader goes away
        lines: list[str] = []
        for line in reader_closed.stderr:
            lines.append(line)
            if match := CONSOLE_LINE.search(line):
                url = match.group(1)
                break
        with connect(url.replace("http://", "ws://") + "/ws") as ws:
            while json.loads(ws.recv(timeout=START_WAIT)).get("to_state") != "ready":
                pass  # READY reached with nobody reading the events: it kept running
        reader_closed.send_signal(signal.SIGINT)
        rest = reader_closed.stderr.read()
        code = reader_closed.wait(START_WAIT)
    finally:
        if reader_closed.poll() is None:
            reader_closed.kill()
            reader_closed.wait()
    stderr = "".join(lines) + rest
    assert json.loads(first)["type"] == "state_transition"
    assert code == 0, stderr
    assert stderr.count("closed by its reader") == 1, stderr
    assert "Traceback" not in stderr


def test_two_supervisors_on_port_0_keep_inject_pointed_at_a_live_one(
    env: dict[str, str], runs: list[Run], tmp_path: Path
) -> None:
    state = Path(env["XDG_STATE_HOME"]) / "kalshi-supervisor" / "control.json"
    first = Run(env=env)
    runs.append(first)
    first.wait_ready()
    second = Run(env=env)
    runs.append(second)
    second.wait_ready()
    assert read_state_file(state).pid == second.popen.pid

    code, _ = second.interrupt(signal.SIGINT)
    assert code == 0
    published = read_state_file(state)
    inject = subprocess.run(
        [*COMMAND, "inject", "orderbook", "slow", "--seconds", "0.01"],
        env=env,
        capture_output=True,
        text=True,
        timeout=START_WAIT,
        cwd=REPO,
    )
    code, _ = first.interrupt(signal.SIGINT)

    assert published.pid == first.popen.pid
    assert published.url == first.console_url
    assert inject.returncode == 0, inject.stderr
    assert json.loads(inject.stdout)["accepted"] is True
    assert code == 0
    assert not state.exists()
    assert not instance_path(state, first.popen.pid).exists()
