"""How long shutting down takes: ``run`` after SIGINT, and the embedded exchange's stop.

Usage::

    .venv/bin/python bench/bench_shutdown.py [--runs 5]

The tests check that shutting down happens, in the right order (SHUTDOWN is the last event,
exit 0, held requests released, no thread left); how long it takes is measured here:

* ``run`` in READY (embedded exchange, ``--status-port 0``), SIGINT → exit, plain and with
  two stalled console clients attached (a feed client that never reads, a half-sent request);
* the embedded exchange in-process: ``stop()`` with an idle keep-alive client, with a
  request held at a gate, and with a 30 s slow response in flight.

Floor: a ``python -c`` process that blocks in ``signal.pause()`` and exits on SIGINT.
Target: every median under 2 s (the README's promise on a signal).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import contextlib

import httpx

from bench.support import machine_info
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig

TARGET_S = 2.0
SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
START_WAIT = 30.0
PREFIX = "/trade-api/v2"


def _wait_line(proc: subprocess.Popen[str], predicate: Callable[[str], bool]) -> str:
    assert proc.stdout is not None
    deadline = time.monotonic() + START_WAIT
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        if predicate(line):
            return line
    proc.kill()
    raise SystemExit("bench_shutdown: the supervisor never reached READY")


def _sigint_exit(proc: subprocess.Popen[str]) -> float:
    started = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    try:
        code = proc.wait(30)
    except subprocess.TimeoutExpired:
        proc.kill()
        raise SystemExit("bench_shutdown: still running 30 s after SIGINT") from None
    elapsed = time.perf_counter() - started
    if code != 0:
        raise SystemExit(f"bench_shutdown: exit {code} after SIGINT")
    return elapsed


def run_sigint(stalled_clients: bool, state_dir: Path) -> float:
    proc = subprocess.Popen(
        [
            *COMMAND,
            "run",
            "--status-port",
            "0",
            "--events",
            "-",
            "--log-level",
            "INFO",
            "--state-file",
            str(state_dir / "control.json"),
        ],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        _wait_line(proc, lambda line: '"to_state":"ready"' in line.replace(" ", ""))
        if not stalled_clients:
            return _sigint_exit(proc)
        console = json.loads((state_dir / "control.json").read_text())["url"]
        host, port = console.removeprefix("http://").rsplit(":", 1)
        from websockets.sync.client import connect

        with (
            connect(console.replace("http://", "ws://") + "/ws", max_queue=1),
            socket.create_connection((host, int(port))) as stalled,
        ):
            stalled.sendall(f"GET /status HTTP/1.1\r\nHost: {host}:{port}\r\n".encode())
            return _sigint_exit(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def floor_sigint() -> float:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import signal,sys; print(1, flush=True); signal.pause()"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    assert proc.stdout is not None
    proc.stdout.readline()
    started = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    return time.perf_counter() - started


def exchange_stop(kind: str) -> float:
    exchange = EmbeddedExchange(ExchangeConfig(markets=2, delta_rate=0)).start()
    caller: threading.Thread | None = None
    http = httpx.Client(trust_env=False, timeout=60)
    try:
        if kind == "idle keep-alive":
            http.get(f"{exchange.rest_url}/exchange/status")
        else:
            if kind == "held at a gate":
                gate = exchange.faults.hold(f"{PREFIX}/exchange/status")
            else:
                exchange.faults.slow_responses(30.0, 1)

            def call() -> None:
                with contextlib.suppress(httpx.HTTPError):
                    http.get(f"{exchange.rest_url}/exchange/status")

            caller = threading.Thread(target=call, daemon=True)
            caller.start()
            if kind == "held at a gate":
                gate.wait_entered(START_WAIT)
            else:
                exchange.oplog.wait_for(lambda ops: any(o.kind == "rest" for o in ops), 10)
        started = time.perf_counter()
        exchange.stop()
        return time.perf_counter() - started
    finally:
        exchange.stop()
        if caller is not None:
            caller.join(10)
        http.close()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    os.environ.pop("KALSHI_API_KEY_ID", None)
    # uvicorn logs the slow response that stop() cancels as an ASGI error: expected here.
    # (A filter, not a level: uvicorn sets its loggers' levels when each server starts.)
    logging.getLogger("uvicorn.error").addFilter(lambda record: "ASGI" not in record.getMessage())
    print(machine_info())
    floor = statistics.median(floor_sigint() for _ in range(args.runs))
    print(f"floor: python -c, SIGINT -> exit: median {floor * 1000:.0f} ms")
    failed = False
    rows: list[tuple[str, list[float]]] = []
    with tempfile.TemporaryDirectory(prefix="bench-shutdown-") as tmp:
        for stalled in (False, True):
            name = "run in READY, SIGINT -> exit" + (" (stalled console clients)" * stalled)
            times = []
            for n in range(args.runs):
                state_dir = Path(tmp) / f"{int(stalled)}-{n}"
                state_dir.mkdir()
                times.append(run_sigint(stalled, state_dir))
            rows.append((name, times))
    for kind in ("idle keep-alive", "held at a gate", "slow response in flight"):
        rows.append((f"exchange.stop(), {kind}", [exchange_stop(kind) for _ in range(args.runs)]))
    for name, times in rows:
        median = statistics.median(times)
        verdict = "ok" if median < TARGET_S else "FAIL"
        failed |= median >= TARGET_S
        print(
            f"{name}: median {median * 1000:.0f} ms, max {max(times) * 1000:.0f} ms "
            f"({median / floor:.1f}x floor) [{verdict}: target < {TARGET_S:g} s]"
        )
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
