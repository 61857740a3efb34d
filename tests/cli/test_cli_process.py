"""The real ``kalshi-supervisor`` console script, end to end: subprocesses, loopback, signals.

Everything else tests the supervisor in-process; only a subprocess shows what a user sees:
exit codes, what lands on stdout and stderr, how Ctrl-C behaves in each state, and that
``inject`` reaches a supervisor in another process. When a test needs to steer the exchange
(hold a request, stall the stream) the exchange runs here, in the test process, and the
supervisor subprocess is pointed at it with ``--rest-url``/``--ws-url``.

Synchronisation is always on output: reader threads collect every line as it is written
and tests wait, with a deadline, for the line they need. No test sleeps to let time pass.
"""

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
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import IO, Any

import httpx
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from kalshi_api.auth import load_signer
from kalshi_api.rest import KalshiRestClient
from kalshi_sim.account import Account
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from kalshi_sim.markets import MarketSet
from tests.cli.reorder_proxy import ReorderProxy

pytestmark = pytest.mark.slow  # subprocesses: every test starts kalshi-supervisor

REPO = Path(__file__).resolve().parents[2]
_SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
COMMAND = [str(_SCRIPT)] if _SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
"""The installed console script next to this interpreter (what users run), else the module."""

REST = "/trade-api/v2"
START_WAIT = 15.0
"""Generous: a cold interpreter on a loaded 2-core CI box; a healthy run takes well under 1s."""
EXIT_WAIT = 15.0
"""How long a test waits for the process to end after a signal: generous, for a loaded
machine. The 2 s promise is a figure, measured by ``bench/bench_shutdown.py``."""
TRANSITION_KEYS = {
    "from_state",
    "to_state",
    "context",
    "metadata",
    "timestamp",
    "duration_ms",
    "type",
}


# -- a running kalshi-supervisor, read line by line -------------------------------------------
def _ignore_sigint() -> None:
    """In the child, before exec: what a non-interactive shell does for ``cmd &``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


class Proc:
    """One ``kalshi-supervisor`` subprocess; stdout, stderr and events collected as they come.

    Events come from stdout (``--events -``) or by tailing ``events_file``. Waits are on a
    condition the reader threads signal, so a test wakes the moment its line arrives.
    """

    def __init__(
        self,
        args: list[str],
        *,
        env: dict[str, str],
        events_file: Path | None = None,
        sigint_ignored: bool = False,
    ) -> None:
        """``sigint_ignored``: start as a shell's ``cmd &`` does, with SIGINT ignored (inherited
        across exec)."""
        self.args = args
        self.stdout: list[str] = []
        self.stderr: list[str] = []
        self.events: list[dict[str, Any]] = []
        self.bad_event_lines: list[str] = []
        self.signalled_at: float | None = None
        self.stderr_before_signal = 0
        self._events_on_stdout = events_file is None and "--events" in args[:-1]
        if self._events_on_stdout:
            self._events_on_stdout = args[args.index("--events") + 1] == "-"
        self._changed = threading.Condition()
        self.popen = subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            env=env,
            cwd=REPO,
            preexec_fn=_ignore_sigint if sigint_ignored else None,
        )
        assert self.popen.stdout is not None and self.popen.stderr is not None
        self._threads = [
            threading.Thread(target=self._pump, args=(self.popen.stdout, True), daemon=True),
            threading.Thread(target=self._pump, args=(self.popen.stderr, False), daemon=True),
        ]
        if events_file is not None:
            self._threads.append(
                threading.Thread(target=self._tail, args=(events_file,), daemon=True)
            )
        for thread in self._threads:
            thread.start()

    # -- readers ------------------------------------------------------------------------------
    def _pump(self, stream: IO[str], is_stdout: bool) -> None:
        for line in stream:
            with self._changed:
                (self.stdout if is_stdout else self.stderr).append(line.rstrip("\n"))
                if is_stdout and self._events_on_stdout:
                    self._add_event(line)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()  # EOF: wake waiters so they fail fast, not at timeout

    def _tail(self, path: Path) -> None:
        """Follow a file the child appends JSON lines to (polled: files have no readiness)."""
        pending = ""
        handle: IO[str] | None = None
        try:
            while True:
                exited = self.popen.poll() is not None
                if handle is None and path.exists():
                    handle = path.open(encoding="utf-8")
                chunk = handle.read() if handle is not None else ""
                if chunk:
                    pending += chunk
                    *lines, pending = pending.split("\n")
                    with self._changed:
                        for line in lines:
                            self._add_event(line)
                        self._changed.notify_all()
                elif exited:
                    return
                else:
                    time.sleep(0.01)  # file polling interval, not synchronisation
        finally:
            if handle is not None:
                handle.close()
            with self._changed:
                self._changed.notify_all()

    def _add_event(self, line: str) -> None:
        try:
            event = json.loads(line)
        except ValueError:
            self.bad_event_lines.append(line)
            return
        if isinstance(event, dict):
            self.events.append(event)
        else:
            self.bad_event_lines.append(line)

    # -- waiting ------------------------------------------------------------------------------
    def wait_for(self, predicate: Callable[[], Any], timeout: float, what: str) -> Any:
        """Block until ``predicate()`` is truthy (checked under the lock); fail with context."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while True:
                result = predicate()
                if result:
                    return result
                remaining = deadline - time.monotonic()
                if remaining <= 0 or (self.popen.poll() is not None and self._readers_done()):
                    break
                self._changed.wait(min(remaining, 0.2))
        raise AssertionError(f"timed out waiting for {what}\n{self.describe()}")

    def _readers_done(self) -> bool:
        return not any(t.is_alive() for t in self._threads)

    def wait_transition(self, to_state: str, *, after: int = 0, timeout: float = START_WAIT) -> int:
        """Index in ``events`` of the first transition into ``to_state`` at or after ``after``."""

        def find() -> int | None:
            for index in range(after, len(self.events)):
                event = self.events[index]
                if event.get("type") == "state_transition" and event.get("to_state") == to_state:
                    return index + 1  # +1 keeps index 0 truthy; undone below
            return None

        return int(self.wait_for(find, timeout, f"transition to {to_state}")) - 1

    def wait_stderr(self, needle: str, timeout: float = START_WAIT) -> str:
        return str(
            self.wait_for(
                lambda: next((line for line in self.stderr if needle in line), None),
                timeout,
                f"{needle!r} on stderr",
            )
        )

    # -- ending -------------------------------------------------------------------------------
    def interrupt(self, signum: int = signal.SIGINT) -> tuple[int | None, float]:
        """Send ``signum``; returns (exit code or None if still running, seconds to exit)."""
        with self._changed:
            self.stderr_before_signal = len(self.stderr)
        self.signalled_at = time.monotonic()
        self.popen.send_signal(signum)
        try:
            code: int | None = self.popen.wait(EXIT_WAIT)
        except subprocess.TimeoutExpired:
            code = None
        elapsed = time.monotonic() - self.signalled_at
        if code is not None:
            self.join_readers()
        return code, elapsed

    def finish(self, timeout: float = START_WAIT) -> int:
        """Wait for a process that exits by itself (bad config, one-shot commands)."""
        try:
            code = self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"still running after {timeout}s\n{self.describe()}") from None
        self.join_readers()
        return code

    def join_readers(self) -> None:
        for thread in self._threads:
            thread.join(5.0)

    def kill(self) -> None:
        if self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait(5.0)
        self.join_readers()

    def describe(self) -> str:
        with self._changed:
            out, err = "\n".join(self.stdout[-15:]), "\n".join(self.stderr[-25:])
        return f"$ kalshi-supervisor {' '.join(self.args)}\n--- stdout\n{out}\n--- stderr\n{err}"

    @property
    def output(self) -> str:
        return "\n".join(self.stdout + self.stderr)


class Launcher:
    """Starts subprocesses, and kills whatever a failed test left running."""

    def __init__(self, env: dict[str, str], secrets: list[str]) -> None:
        self.env = env
        self.secrets = list(secrets)  # a test may add its own without touching the shared list
        self.procs: list[Proc] = []

    def __call__(
        self, *args: str, events_file: Path | None = None, sigint_ignored: bool = False
    ) -> Proc:
        proc = Proc(
            list(args), env=self.env, events_file=events_file, sigint_ignored=sigint_ignored
        )
        self.procs.append(proc)
        return proc

    def close(self) -> None:
        for proc in self.procs:
            proc.kill()

    def leaked_secrets(self) -> list[str]:
        """Runs whose stdout/stderr show any line of a private key's PEM body."""
        markers = [
            line
            for pem in self.secrets
            for line in pem.splitlines()
            if len(line) >= 40 and "-----" not in line
        ]
        return [
            " ".join(proc.args)
            for proc in self.procs
            if any(marker in proc.output for marker in markers)
        ]


def inject_cmd(launcher: Launcher, state_file: Path, *args: str) -> Proc:
    proc = launcher("inject", *args, "--state-file", str(state_file))
    proc.finish()
    return proc


# -- fixtures ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    """The child's environment: no Kalshi credentials from the developer's shell, and a
    private XDG state dir, so no run can touch the user's real control file."""
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    scrubbed["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    scrubbed["PYTHONUNBUFFERED"] = "1"
    return scrubbed


@pytest.fixture(scope="module")
def key_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A valid RSA private key nobody registered: loads fine, never authenticates."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    path = tmp_path_factory.mktemp("keys") / "kalshi.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def shared_exchange() -> Iterator[EmbeddedExchange]:
    with EmbeddedExchange(
        ExchangeConfig(markets=6, delta_rate=100, read_tokens_per_second=None)
    ) as exchange:
        yield exchange


@pytest.fixture
def exchange(shared_exchange: EmbeddedExchange) -> Iterator[EmbeddedExchange]:
    """The shared in-test exchange, with gates released and the stream flowing afterwards."""
    yield shared_exchange
    shared_exchange.faults.clear()
    shared_exchange.ws.unstall()


@pytest.fixture(scope="module")
def secrets(shared_exchange: EmbeddedExchange, key_file: Path) -> list[str]:
    return [shared_exchange.private_key_path.read_text(), key_file.read_text()]


@pytest.fixture
def launch(env: dict[str, str], secrets: list[str]) -> Iterator[Launcher]:
    launcher = Launcher(env, secrets)
    try:
        yield launcher
    finally:
        launcher.close()
    assert launcher.leaked_secrets() == []


def run_against(exchange: EmbeddedExchange, state_file: Path, *extra: str) -> list[str]:
    """``run`` arguments pointing the subprocess at the in-test exchange."""
    return [
        "run",
        "--env",
        "local",
        "--rest-url",
        exchange.rest_url,
        "--ws-url",
        exchange.ws_url,
        "--key-id",
        exchange.key_id,
        "--private-key",
        str(exchange.private_key_path),
        "--status-port",
        "0",
        "--state-file",
        str(state_file),
        *extra,
    ]


def assert_events_file(path: Path) -> list[dict[str, Any]]:
    """Every line is one JSON event; transitions carry exactly the documented keys."""
    events = []
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
        event = json.loads(line)
        assert isinstance(event, dict), f"line {number}: {line}"
        assert {"type", "timestamp"} <= event.keys(), f"line {number}: {line}"
        if event["type"] == "state_transition":
            assert set(event) == TRANSITION_KEYS, f"line {number}: {line}"
        events.append(event)
    return events


BATCH = 4
"""Bad-configuration runs started together: enough to overlap start-ups on 2 cores, few
enough that on a loaded machine each still exits within ``START_WAIT`` of its start."""


def run_in_batches(names: list[str], start: Callable[[str], Proc]) -> dict[str, tuple[Proc, int]]:
    """Start ``BATCH`` processes at a time and wait for each to exit by itself."""
    finished: dict[str, tuple[Proc, int]] = {}
    for at in range(0, len(names), BATCH):
        batch = {name: start(name) for name in names[at : at + BATCH]}
        finished.update({name: (proc, proc.finish()) for name, proc in batch.items()})
    return finished


def free_port() -> int:
    """A port nothing listens on (bound, then closed: connections to it are refused)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# -- run: cold start to READY and back down ---------------------------------------------------
def test_run_when_no_arguments_reaches_ready_and_sigint_shuts_down_cleanly(
    launch: Launcher, tmp_path: Path
) -> None:
    proc = launch(
        "run", "--status-port", "0", "--state-file", str(tmp_path / "s" / "c.json"), "--events", "-"
    )
    proc.wait_transition("ready")
    code, _elapsed = proc.interrupt(signal.SIGINT)
    assert code == 0, proc.describe()
    assert proc.bad_event_lines == []
    last = json.loads(proc.stdout[-1])
    assert (last["type"], last["from_state"], last["to_state"]) == (
        "state_transition",
        "ready",
        "shutdown",
    )
    states = [e["to_state"] for e in proc.events if e["type"] == "state_transition"]
    assert states == [
        "initializing",
        "orderbook_connect",
        "trading_client_connect",
        "kalshi_data_sync",
        "ready",
        "shutdown",
    ]
    assert "Traceback" not in proc.output
    assert not (tmp_path / "s" / "c.json").exists()  # the state file is cleaned up on exit


# -- SIGINT from every state --------------------------------------------------------------------
Starter = Callable[..., Proc]
"""``start(*extra_run_args)``: launch ``run`` against the in-test exchange."""


def _hold_initializing(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    gate = exchange.faults.hold(f"{REST}/markets")  # discovery: GET /markets?status=open
    proc = start()
    proc.wait_transition("initializing")
    assert gate.wait_entered(START_WAIT), proc.describe()
    return proc


def _hold_orderbook(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    exchange.ws.stall(None)  # connected and subscribed, but no snapshot ever arrives
    proc = start()
    proc.wait_transition("orderbook_connect")
    return proc


def _hold_trading(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    # The CLI's preflight also reads /exchange/status, so the gate goes up only once the
    # supervisor is past it: held in ORDERBOOK_CONNECT by a stall, then let through.
    exchange.ws.stall(None)
    proc = start("--markets", ",".join(exchange.markets.tickers()[:3]))
    proc.wait_transition("orderbook_connect")
    gate = exchange.faults.hold(f"{REST}/exchange/status")
    exchange.ws.unstall()
    proc.wait_transition("trading_client_connect")
    assert gate.wait_entered(START_WAIT), proc.describe()
    return proc


def _hold_sync(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    gate = exchange.faults.hold(f"{REST}/portfolio/positions")
    proc = start()
    proc.wait_transition("kalshi_data_sync")
    assert gate.wait_entered(START_WAIT), proc.describe()
    return proc


def _hold_ready(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    proc = start()
    proc.wait_transition("ready")
    return proc


def _hold_error(exchange: EmbeddedExchange, start: Starter, launch: Launcher) -> Proc:
    proc = start("--min-backoff", "30", "--max-backoff", "30", "--random-factor", "0")
    ready = proc.wait_transition("ready")
    state_file = Path(proc.args[proc.args.index("--state-file") + 1])
    injector = launch("inject", "trading", "crash", "--state-file", str(state_file))
    assert injector.finish() == 0, injector.describe()
    proc.wait_transition("error", after=ready)
    return proc


HOLDS: dict[str, Callable[[EmbeddedExchange, Starter, Launcher], Proc]] = {
    "initializing": _hold_initializing,
    "orderbook_connect": _hold_orderbook,
    "trading_client_connect": _hold_trading,
    "kalshi_data_sync": _hold_sync,
    "ready": _hold_ready,
    "error": _hold_error,
}


@pytest.mark.parametrize("state", list(HOLDS))
def test_run_when_sigint_in_state_exits_0_with_shutdown_from_that_state(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path, state: str
) -> None:
    events_file = tmp_path / "events.jsonl"
    state_file = tmp_path / "state" / "control.json"

    def start(*extra: str) -> Proc:
        args = run_against(exchange, state_file, "--events", str(events_file), *extra)
        return launch(*args, events_file=events_file)

    proc = HOLDS[state](exchange, start, launch)
    code, elapsed = proc.interrupt(signal.SIGINT)
    assert code == 0, f"exit {code} after {elapsed:.2f}s\n{proc.describe()}"
    events = assert_events_file(events_file)
    last = events[-1]
    assert (last["type"], last["from_state"], last["to_state"]) == (
        "state_transition",
        state,
        "shutdown",
    ), proc.describe()
    assert last["metadata"] == {"reason": "interrupted by signal"}
    # The injected crash behind ERROR is logged with its traceback (pykka reports an actor's
    # unhandled exception); shutting down must add none.
    assert "Traceback" not in "\n".join(proc.stderr[proc.stderr_before_signal :]), proc.describe()
    if state != "error":
        assert "Traceback" not in proc.output, proc.describe()


@pytest.mark.parametrize("inherited", ["sigint_default", "sigint_ignored"])
def test_run_when_sigint_during_preflight_exits_promptly_without_traceback(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path, inherited: str
) -> None:
    """Also when started as ``kalshi-supervisor run &`` from a script, with SIGINT ignored:
    the handlers installed once serving honour SIGINT anyway, so one arriving before them
    must not be lost (it once was: the process went on to READY and never stopped)."""
    gate = exchange.faults.hold(f"{REST}/exchange/status")  # the preflight's one request
    proc = launch(
        # the request outlasts any load: preflight stays open until SIGINT, not until its
        # 5 s timeout (which a loaded machine once reached first: exit 2)
        *run_against(exchange, tmp_path / "state" / "control.json", "--request-timeout", "600"),
        sigint_ignored=inherited == "sigint_ignored",
    )
    assert gate.wait_entered(START_WAIT), proc.describe()
    code, _elapsed = proc.interrupt(signal.SIGINT)
    assert code is not None, proc.describe()
    assert "Traceback" not in proc.output, proc.describe()
    assert code == 0, proc.describe()
    assert "interrupted before the supervisor started" in proc.output, proc.describe()


def test_run_when_sigint_arrives_while_repair_replies_come_out_of_order_exits_0_cleanly(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    """Issue 17: with ``get_snapshot`` replies arriving out of order, SIGINT once left the
    process running (no SHUTDOWN, ``control.json`` left behind). Here a loopback proxy holds
    every repair reply and sends the held ones newest first, seq gaps keep repairs coming,
    and the signal lands while they are being reordered."""
    events_file = tmp_path / "events.jsonl"
    state_file = tmp_path / "state" / "control.json"
    with ReorderProxy(exchange.ws_url) as proxy:
        args = run_against(exchange, state_file, "--events", str(events_file))
        args[args.index("--ws-url") + 1] = proxy.ws_url
        proc = launch(*args, events_file=events_file)
        proc.wait_transition("ready")
        assert state_file.exists()
        for _ in range(20):
            exchange.ws.skip_seq()
        assert proxy.wait_held(5, START_WAIT), proc.describe()
        code, _ = proc.interrupt(signal.SIGINT)
    assert code == 0, proc.describe()
    last = assert_events_file(events_file)[-1]
    assert (last["type"], last["to_state"]) == ("state_transition", "shutdown"), proc.describe()
    assert last["metadata"] == {"reason": "interrupted by signal"}
    assert not state_file.exists()  # withdrawn on the way out
    assert "Traceback" not in proc.output, proc.describe()


def test_run_when_sent_sigusr1_prints_every_thread_stack_and_keeps_running(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    """The stack dump that shows where a process that does not stop is stuck; it must not
    stop one that runs."""
    events_file = tmp_path / "events.jsonl"
    state_file = tmp_path / "state" / "control.json"
    proc = launch(*run_against(exchange, state_file, "--events", str(events_file)),
                  events_file=events_file)
    proc.wait_transition("ready")
    proc.popen.send_signal(signal.SIGUSR1)
    proc.wait_stderr("Current thread")  # faulthandler's words, then the main thread's stack:
    proc.wait_stderr("in wait_for_stop")
    assert proc.popen.poll() is None, proc.describe()
    code, _ = proc.interrupt(signal.SIGINT)  # still serving: a signal still ends it cleanly
    assert code == 0, proc.describe()
    last = assert_events_file(events_file)[-1]
    assert (last["from_state"], last["to_state"]) == ("ready", "shutdown"), proc.describe()
    assert not state_file.exists()


# -- bad configuration: one line, exit 2, no traceback ---------------------------------------------
def _bad_config_cases(
    tmp: Path, key_file: Path, listening_port: int
) -> dict[str, tuple[list[str], str]]:
    """case -> (arguments after ``run``, text the error line must contain)."""
    closed = free_port()
    unreachable = [
        "--rest-url",
        f"http://127.0.0.1:{closed}/trade-api/v2",
        "--ws-url",
        f"ws://127.0.0.1:{closed}/trade-api/ws/v2",
    ]
    not_pem = tmp / "not-a-key.pem"
    not_pem.write_text("this is not a PEM file\n")
    not_pem.chmod(0o600)
    return {
        "paper_without_key_id": (["--env", "paper"], "key id"),
        "production_without_key": (["--env", "production", "--key-id", "X"], "private key"),
        "key_file_missing": (
            ["--env", "paper", *unreachable, "--key-id", "X", "--private-key", str(tmp / "nope")],
            "nope",
        ),
        "key_file_is_directory": (
            ["--env", "paper", *unreachable, "--key-id", "X", "--private-key", str(tmp)],
            str(tmp),
        ),
        "key_file_not_pem": (
            ["--env", "paper", *unreachable, "--key-id", "X", "--private-key", str(not_pem)],
            "not-a-key.pem",
        ),
        "malformed_ticker": (["--markets", "bad ticker"], "bad ticker"),
        # 80,000 characters of tickers: past httpx's 65,536-character query limit unbatched.
        "five_thousand_unknown_tickers": (
            ["--markets", ",".join(f"KXNOPE-T{i:05d}" for i in range(5000))],
            "KXNOPE-T00000, KXNOPE-T00001",
        ),
        "unreachable_exchange": (
            ["--env", "paper", *unreachable, "--key-id", "K", "--private-key", str(key_file)],
            f"127.0.0.1:{closed}",
        ),
        "status_port_in_use": (["--status-port", str(listening_port)], str(listening_port)),
        "bad_deadline": (["--deadline", "foo=1"], "--deadline"),
        "bad_restart_type": (["--restart-type", "orderbook=forever"], "--restart-type"),
        "negative_sync_interval": (["--sync-interval", "-1"], "--sync-interval"),
        "infinite_sync_interval": (["--sync-interval", "inf"], "sync"),
        "infinite_max_backoff": (["--max-backoff", "inf"], "backoff"),
        "nan_deadline": (["--deadline", "orderbook_connect=nan"], "deadline"),
        "negative_exchange_check_interval": (
            ["--exchange-check-interval", "-5"],
            "--exchange-check-interval",
        ),
        "junk_pause_max_poll": (["--pause-max-poll", "soon"], "--pause-max-poll"),
        "pause_bounds_out_of_order": (
            ["--pause-min-poll", "5", "--pause-max-poll", "2"],
            "pause_min_poll (5) must not exceed pause_max_poll (2)",
        ),
        "service_limit_without_name": (["--service-limit", "max_position=5"], "NAME:KEY=VALUE"),
        "service_limit_unknown_key": (
            ["--service-limit", "mm:max_positions=5"],
            "--service-limit: service_limits.mm.max_positions: unknown setting",
        ),
        "service_limit_bad_value": (
            ["--service-limit", "mm:max_notional=-2.5"],
            "--service-limit: service_limits.mm.max_notional",
        ),
        "service_limit_unknown_service": (
            ["--service-limit", "nobody:max_position=5"],
            "--service-limit: limits for unknown service(s): nobody (services: none configured)",
        ),
    }


ARGPARSE_CASES = {
    "negative_sync_interval",
    "infinite_sync_interval",
    "infinite_max_backoff",
    "negative_exchange_check_interval",
    "junk_pause_max_poll",
}
BAD_CONFIG_IDS = [
    "paper_without_key_id",
    "production_without_key",
    "key_file_missing",
    "key_file_is_directory",
    "key_file_not_pem",
    "malformed_ticker",
    "five_thousand_unknown_tickers",
    "unreachable_exchange",
    "status_port_in_use",
    "bad_deadline",
    "bad_restart_type",
    "negative_sync_interval",
    "infinite_sync_interval",
    "infinite_max_backoff",
    "nan_deadline",
    "negative_exchange_check_interval",
    "junk_pause_max_poll",
    "pause_bounds_out_of_order",
    "service_limit_without_name",
    "service_limit_unknown_key",
    "service_limit_bad_value",
    "service_limit_unknown_service",
]


@pytest.fixture(scope="module")
def bad_config_runs(
    tmp_path_factory: pytest.TempPathFactory,
    env: dict[str, str],
    secrets: list[str],
    key_file: Path,
) -> Iterator[dict[str, tuple[Proc, int, str]]]:
    """Every bad-configuration run, started a batch at a time (each is CPU-bound interpreter
    start-up, independent of the others): case -> (proc, exit code, expected)."""
    tmp = tmp_path_factory.mktemp("bad-config")
    launcher = Launcher(env, secrets)
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        cases = _bad_config_cases(tmp, key_file, busy.getsockname()[1])
        assert set(cases) == set(BAD_CONFIG_IDS)
        try:

            def start(name: str) -> Proc:
                args = cases[name][0]
                if "--status-port" not in args:
                    args = [*args, "--status-port", "0"]
                return launcher("run", *args, "--state-file", str(tmp / name / "control.json"))

            finished = run_in_batches(list(cases), start)
            yield {name: (proc, code, cases[name][1]) for name, (proc, code) in finished.items()}
        finally:
            launcher.close()
    assert launcher.leaked_secrets() == []


RETRY_NOTE = re.compile(
    r" INFO kalshi_supervisor\.kalshi_api\.rest: GET \S+ failed \(.*\); retry \d+/\d+ in "
)
"""The client's log line for a retried GET (see ``kalshi_api.rest``)."""


@pytest.mark.parametrize(
    "case",
    BAD_CONFIG_IDS,
)
def test_run_when_configuration_bad_prints_one_error_line_and_exits_2(
    bad_config_runs: dict[str, tuple[Proc, int, str]], case: str
) -> None:
    proc, code, expected = bad_config_runs[case]
    assert code == 2, proc.describe()
    assert "Traceback" not in proc.output, proc.describe()
    assert proc.stdout == [], proc.describe()
    # A REST retry (the embedded exchange's read budget answers 429 when a loaded machine
    # bunches the lookups) is an INFO note, not an error: it may come before the error line.
    lines = [line for line in proc.stderr if line.strip() and not RETRY_NOTE.search(line)]
    assert len(lines) == 1, proc.describe()
    assert lines[0].startswith("kalshi-supervisor: error:"), proc.describe()
    if case in ARGPARSE_CASES:  # a flag argparse refused: the line names the sub-command
        assert lines[0].startswith("kalshi-supervisor: error: run: argument"), proc.describe()
    assert expected in lines[0], proc.describe()


# -- inject, from another process ---------------------------------------------------------------
@pytest.fixture(scope="module")
def supervised(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], secrets: list[str]
) -> Iterator[tuple[Proc, Path, Launcher]]:
    """One supervisor on its own embedded exchange (exchange faults need it in-process),
    with fast restarts, shared by the inject tests; each test reads only events it caused."""
    state_file = tmp_path_factory.mktemp("inject") / "state" / "control.json"
    launcher = Launcher(env, secrets)
    try:
        proc = launcher(
            "run",
            "--status-port",
            "0",
            "--state-file",
            str(state_file),
            "--events",
            "-",
            "--exchange-markets",
            "6",
            "--min-backoff",
            "0.01",
            "--max-backoff",
            "0.05",
            "--random-factor",
            "0",
        )
        proc.wait_transition("ready")
        yield proc, state_file, launcher
        code, _ = proc.interrupt(signal.SIGINT)
        assert code == 0, proc.describe()
    finally:
        launcher.close()
    assert launcher.leaked_secrets() == []


def test_inject_when_fault_valid_exits_0_and_events_show_fault_injected(
    supervised: tuple[Proc, Path, Launcher],
) -> None:
    proc, state_file, launcher = supervised
    after = len(proc.events)
    injector = inject_cmd(launcher, state_file, "exchange", "seq_gap")
    assert injector.popen.returncode == 0, injector.describe()
    assert json.loads(injector.stdout[-1]) == {
        "accepted": True,
        "target": "exchange",
        "fault": "seq_gap",
    }
    proc.wait_for(
        lambda: any(
            e["type"] == "fault_injected"
            and e["fault"]["target"] == "exchange"
            and e["fault"]["fault"] == "seq_gap"
            for e in proc.events[after:]
        ),
        START_WAIT,
        "fault_injected event",
    )


def test_inject_when_console_is_flooded_with_slow_header_connections_still_works(
    supervised: tuple[Proc, Path, Launcher],
) -> None:
    """250 connections that never finish their request headers: ordinary requests meet the
    connection cap (503), ``inject`` still reaches the supervisor, and the console closes
    every slow connection by itself (its header deadline)."""
    proc, state_file, launcher = supervised
    url = json.loads(state_file.read_text())["url"]
    host, port = url.removeprefix("http://").rsplit(":", 1)
    slow: list[socket.socket] = []
    try:
        for _ in range(250):
            sock = socket.create_connection((host, int(port)), timeout=START_WAIT)
            sock.sendall(b"GET /status HTTP/1.1\r\nHo")
            slow.append(sock)
        after = len(proc.events)
        injector = inject_cmd(launcher, state_file, "exchange", "seq_gap")
        assert injector.popen.returncode == 0, injector.describe()
        proc.wait_for(
            lambda: any(e["type"] == "fault_injected" for e in proc.events[after:]),
            START_WAIT,
            "fault_injected event",
        )
        for sock in slow:
            assert sock.recv(1024) == b""  # closed by the console, not by us
    finally:
        for sock in slow:
            sock.close()
    token = json.loads(state_file.read_text())["token"]
    with httpx.Client(trust_env=False, timeout=START_WAIT) as http:
        status = http.get(f"{url}/status", headers={"Authorization": f"Bearer {token}"})
    assert status.status_code == 200
    assert status.json()["console"]["closed_slow_connections"] >= 250


def test_inject_when_token_wrong_exits_1_and_supervisor_logs_refusal_without_tokens(
    supervised: tuple[Proc, Path, Launcher],
) -> None:
    proc, state_file, launcher = supervised
    real_token = json.loads(state_file.read_text())["token"]
    wrong_token = "wrong-token-0123456789abcdef"
    after = len(proc.events)
    injector = inject_cmd(launcher, state_file, "exchange", "seq_gap", "--token", wrong_token)
    assert injector.popen.returncode == 1, injector.describe()
    assert injector.stdout == []
    assert injector.stderr[-1].startswith("refused"), injector.describe()
    refusal = proc.wait_stderr("refused fault injection")
    assert "Traceback" not in injector.output
    for token in (real_token, wrong_token):
        assert token not in proc.output
        assert token not in injector.output
    assert "token" in refusal
    assert not any(e["type"] == "fault_injected" for e in proc.events[after:])


def test_inject_when_sync_crashes_goes_to_error_then_back_to_ready(
    supervised: tuple[Proc, Path, Launcher],
) -> None:
    proc, state_file, launcher = supervised
    after = len(proc.events)
    injector = inject_cmd(launcher, state_file, "sync", "crash")
    assert injector.popen.returncode == 0, injector.describe()
    error = proc.wait_transition("error", after=after)
    assert proc.events[error]["from_state"] == "ready"
    proc.wait_transition("ready", after=error)


def test_inject_when_exchange_paused_shows_the_pause_until_it_ends_and_keeps_running(
    supervised: tuple[Proc, Path, Launcher],
) -> None:
    """``inject exchange pause_exchange --resume-in 1`` from another process: the supervisor
    shows the pause (with the exchange's estimate), waits it out without a failure, and is
    READY when it ends; a shard the exchange lacks is the user's mistake: one line, exit 2."""
    proc, state_file, launcher = supervised
    after = len(proc.events)
    injector = inject_cmd(launcher, state_file, "exchange", "pause_exchange", "--resume-in", "1")
    assert injector.popen.returncode == 0, injector.describe()
    assert json.loads(injector.stdout[-1]) == {
        "accepted": True,
        "target": "exchange",
        "fault": "pause_exchange",
    }

    def ended() -> list[dict[str, Any]]:
        return [e for e in proc.events[after:] if e["type"] == "exchange_resumed"]

    proc.wait_for(ended, START_WAIT, "exchange_resumed event")
    events = proc.events[after:]
    paused = [e for e in events if e["type"] == "exchange_paused"]
    assert [(e["exchange_index"], e["scope"]) for e in paused] == [(None, "exchange")]
    assert paused[0]["resume_estimate"] is not None
    assert [(e["exchange_index"], e["scope"]) for e in ended()] == [(None, "exchange")]
    transitions = [e["to_state"] for e in events if e["type"] == "state_transition"]
    assert not transitions or transitions[-1] == "ready", transitions
    assert not [e for e in events if e["type"] in ("stage_failure", "escalation")]
    assert proc.popen.poll() is None

    refused = inject_cmd(launcher, state_file, "exchange", "pause_trading", "--shard", "9")
    assert refused.popen.returncode == 2, refused.describe()
    assert refused.stdout == []
    assert refused.stderr == [
        "rejected by supervisor: no exchange shard 9 (this exchange has shards 0, 1, 2, 3)"
    ], refused.describe()


# -- exchange and diagram -------------------------------------------------------------------------
def test_exchange_when_started_prints_one_json_line_serves_signed_rest_and_sigterm_exits_0(
    launch: Launcher,
) -> None:
    proc = launch("exchange", "--markets", "3", "--rate", "0")
    proc.wait_for(lambda: proc.stdout, START_WAIT, "the address line")
    published = json.loads(proc.stdout[0])
    assert set(published) == {"rest_url", "ws_url", "key_id", "private_key", "truth_url", "members"}
    key_path = Path(published["private_key"])
    assert key_path.stat().st_mode & 0o777 == 0o600
    launch.secrets.append(key_path.read_text())
    signer = load_signer(published["key_id"], key_path, env={})
    with KalshiRestClient(published["rest_url"], signer, timeout=5.0) as client:
        balance = client.get_balance()
    # The exchange in the other process is the deterministic demo (seed 0): the same
    # account built here must report the same cents.
    demo = Account.demo(MarketSet.generate(count=3, seed=0), seed=0)
    assert balance.balance == demo.balance_cents() > 0
    code, _elapsed = proc.interrupt(signal.SIGTERM)
    assert code == 0, proc.describe()
    assert len(proc.stdout) == 1, proc.describe()
    assert "Traceback" not in proc.output


def test_diagram_when_run_prints_mermaid_state_diagram(launch: Launcher) -> None:
    proc = launch("diagram")
    assert proc.finish() == 0, proc.describe()
    assert proc.stdout[0] == "stateDiagram-v2"
    text = "\n".join(proc.stdout)
    for edge in ("STARTUP --> INITIALIZING", "KALSHI_DATA_SYNC --> READY", "ERROR --> STARTUP"):
        assert edge in text
    assert proc.stderr == []


# -- configuration sources: flags > KALSHI_SUPERVISOR_* > --config TOML > defaults -------------
def _listening() -> socket.socket:
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    return sock


def _port(sock: socket.socket) -> int:
    return int(sock.getsockname()[1])


def _against_without_port(exchange: EmbeddedExchange, state_file: Path) -> list[str]:
    """``run_against`` minus ``--status-port``, which each test sets from one source."""
    args = run_against(exchange, state_file)
    at = args.index("--status-port")
    return args[:at] + args[at + 2 :]


@pytest.mark.parametrize("winner", ["file", "env", "flag"])
def test_run_when_status_port_set_in_several_sources_uses_highest_priority(
    exchange: EmbeddedExchange,
    env: dict[str, str],
    secrets: list[str],
    tmp_path: Path,
    winner: str,
) -> None:
    """Each source names a different busy port; the one in the error line is the one used."""
    busy = {source: _listening() for source in ("file", "env", "flag")}
    ports = {source: _port(sock) for source, sock in busy.items()}
    try:
        config = tmp_path / "supervisor.toml"
        config.write_text(f"status_port = {ports['file']}\n")
        child_env = dict(env)
        args = [
            *_against_without_port(exchange, tmp_path / "control.json"),
            "--config",
            str(config),
        ]
        if winner in ("env", "flag"):
            child_env["KALSHI_SUPERVISOR_STATUS_PORT"] = str(ports["env"])
        if winner == "flag":
            args += ["--status-port", str(ports["flag"])]
        launcher = Launcher(child_env, secrets)
        try:
            proc = launcher(*args)
            code = proc.finish()
        finally:
            launcher.close()
        assert launcher.leaked_secrets() == []
    finally:
        for sock in busy.values():
            sock.close()

    assert code == 2, proc.describe()
    lines = [line for line in proc.stderr if line.strip()]
    assert len(lines) == 1, proc.describe()
    assert lines[0].startswith("kalshi-supervisor: error:"), proc.describe()
    assert str(ports[winner]) in lines[0], proc.describe()
    losers = [str(ports[s]) for s in busy if s != winner]
    assert not any(port in lines[0] for port in losers), proc.describe()


def test_run_when_key_path_comes_from_config_file_reaches_ready_without_printing_key(
    exchange: EmbeddedExchange, env: dict[str, str], secrets: list[str], tmp_path: Path
) -> None:
    """Everything from the file (endpoints, key id, key path, a deadline table, markets as
    a TOML list, orderbook only); no flag but --config. The key itself is never printed."""
    config = tmp_path / "supervisor.toml"
    ticker = exchange.markets.tickers()[0]
    config.write_text(
        "\n".join(
            [
                'env = "local"',
                f'rest_url = "{exchange.rest_url}"',
                f'ws_url = "{exchange.ws_url}"',
                f'key_id = "{exchange.key_id}"',
                f'private_key = "{exchange.private_key_path}"',
                "status_port = 0",
                f'state_file = "{tmp_path / "control.json"}"',
                f'markets = ["{ticker}"]',
                "no_trading = true",
                'events = "-"',
                "",
                "[deadlines]",
                "orderbook_connect = 7",
                "",
            ]
        )
    )
    launcher = Launcher(env, secrets)
    try:
        proc = launcher("run", "--config", str(config), "--events", "-")
        proc.wait_transition("ready")
        code, _ = proc.interrupt(signal.SIGINT)
    finally:
        launcher.close()
    assert code == 0, proc.describe()
    ready = next(
        e for e in proc.events if e["type"] == "state_transition" and e["to_state"] == "ready"
    )
    assert ready["metadata"]["markets_connected"] == 1, proc.describe()
    assert "trading_client" not in ready["metadata"], proc.describe()
    assert "trading_client_connect" not in {
        e.get("to_state") for e in proc.events if e["type"] == "state_transition"
    }
    assert launcher.leaked_secrets() == []


BAD_SOURCE_CASES: dict[str, tuple[dict[str, str], str | None, str]] = {
    # case: (environment variables, config file text or None, text the one error line contains)
    "file_bad_value": ({}, "sync_interval = -1\n", "{config}: sync_interval:"),
    "file_unknown_setting": ({}, 'colour = "blue"\n', "{config}: colour: unknown setting"),
    "file_not_toml": ({}, "status_port = = 3\n", "{config}: not valid TOML"),
    "file_bad_enum": ({}, 'strategy = "all_for_none"\n', "{config}: strategy:"),
    "file_bad_restart_stage": (
        {},
        '[restart_types]\nnobody = "transient"\n',
        "unknown stage 'nobody'",
    ),
    "env_infinite": (
        {"KALSHI_SUPERVISOR_MAX_BACKOFF": "inf"},
        None,
        "KALSHI_SUPERVISOR_MAX_BACKOFF",
    ),
    "env_not_a_number": (
        {"KALSHI_SUPERVISOR_MARKET_COUNT": "eighty"},
        None,
        "KALSHI_SUPERVISOR_MARKET_COUNT: market_count:",
    ),
    "env_bad_ticker": (
        {"KALSHI_SUPERVISOR_MARKETS": "GOOD-1,bad ticker"},
        None,
        "KALSHI_SUPERVISOR_MARKETS: markets:",
    ),
    "env_not_json": ({"KALSHI_SUPERVISOR_DEADLINES": "five"}, None, "deadlines"),
    "env_config_missing": (
        {"KALSHI_SUPERVISOR_CONFIG": "{missing}"},
        None,
        "config file {missing}",
    ),
}


@pytest.fixture(scope="module")
def bad_source_runs(
    tmp_path_factory: pytest.TempPathFactory, env: dict[str, str], secrets: list[str]
) -> Iterator[dict[str, tuple[Proc, int, str]]]:
    """Every bad-source run, a batch at a time (as ``bad_config_runs``)."""
    tmp = tmp_path_factory.mktemp("bad-sources")
    launchers: list[Launcher] = []
    expected: dict[str, str] = {}

    def start(name: str) -> Proc:
        variables, text, needle = BAD_SOURCE_CASES[name]
        config = tmp / f"{name}.toml"
        missing = tmp / f"{name}-missing.toml"
        args = ["run", "--status-port", "0", "--state-file", str(tmp / name / "c.json")]
        if text is not None:
            config.write_text(text)
            args += ["--config", str(config)]
        fill = {"config": str(config), "missing": str(missing)}
        expected[name] = needle.format(**fill)
        launcher = Launcher({**env, **{k: v.format(**fill) for k, v in variables.items()}}, secrets)
        launchers.append(launcher)
        return launcher(*args)

    try:
        finished = run_in_batches(list(BAD_SOURCE_CASES), start)
        yield {name: (proc, code, expected[name]) for name, (proc, code) in finished.items()}
    finally:
        for launcher in launchers:
            launcher.close()
    assert all(launcher.leaked_secrets() == [] for launcher in launchers)


@pytest.mark.parametrize("case", list(BAD_SOURCE_CASES))
def test_run_when_a_source_has_a_bad_value_prints_one_line_naming_it_and_exits_2(
    bad_source_runs: dict[str, tuple[Proc, int, str]], case: str
) -> None:
    proc, code, expected = bad_source_runs[case]
    assert code == 2, proc.describe()
    assert "Traceback" not in proc.output, proc.describe()
    assert proc.stdout == [], proc.describe()
    lines = [line for line in proc.stderr if line.strip()]
    assert len(lines) == 1, proc.describe()
    assert lines[0].startswith("kalshi-supervisor: error:"), proc.describe()
    assert expected in lines[0], proc.describe()
