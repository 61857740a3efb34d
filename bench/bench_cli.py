"""How long a ``kalshi-supervisor`` command takes, start to exit, beside ``python -c pass``.

Usage::

    .venv/bin/python bench/bench_cli.py [--runs N]

Every command is a fresh subprocess, as a user or a script runs it, so interpreter start-up
and every import the command makes are in the figure. The floor, ``python -c pass`` with the
same interpreter, is measured in the same run, interleaved with the commands, so a loaded
machine raises both alike. Commands:

* ``--help`` and ``diagram`` — no network at all;
* ``inject --help`` — the inject parser only;
* ``inject`` against a running supervisor — a supervisor (``run --env local``) is started
  once outside the timing, then ``inject exchange rest_5xx --count 1`` is sent to it, which
  is the full path: read the state file, POST, print the reply;
* ``inject`` that fails fast — a state file naming a closed loopback port.

Target: each command's median ≤ 150 ms on this machine.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import machine_info, p90

TARGET_MS = 150.0
SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
START_WAIT = 30.0


def _time(argv: Sequence[str], *, env: dict[str, str], expect: int) -> float:
    """One run's wall time in ms; a wrong exit code means the figure would be wrong."""
    started = time.perf_counter()
    done = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = (time.perf_counter() - started) * 1000.0
    if done.returncode != expect:
        raise SystemExit(
            f"bench_cli: {' '.join(argv)} exited {done.returncode} (expected {expect}): "
            f"{done.stderr.strip()[-300:]}"
        )
    return elapsed


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _start_supervisor(state_file: Path, env: dict[str, str]) -> subprocess.Popen[str]:
    """A real supervisor on the embedded exchange; returns once its state file exists."""
    proc = subprocess.Popen(
        [
            *COMMAND,
            "run",
            "--status-port",
            "0",
            "--state-file",
            str(state_file),
            "--log-level",
            "WARNING",
            "--exchange-rate",
            "1",
        ],
        env=env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        text=True,
    )
    deadline = time.monotonic() + START_WAIT
    while not state_file.is_file():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            raise SystemExit("bench_cli: the supervisor did not publish its state file")
        time.sleep(0.05)  # polling a file another process writes; not a test
    return proc


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15, help="runs per command (median of these)")
    args = parser.parse_args(argv)
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "0"}
    print(machine_info())
    print(f"command: {' '.join(COMMAND)}; {args.runs} runs each, interleaved\n")
    with tempfile.TemporaryDirectory() as tmp:
        stale = Path(tmp) / "stale.json"
        stale.write_text(
            json.dumps({"url": f"http://127.0.0.1:{_closed_port()}", "token": "t" * 32, "pid": 1})
        )
        live = Path(tmp) / "live.json"
        cases: dict[str, tuple[list[str], int]] = {
            "python -c pass (floor)": ([sys.executable, "-c", "pass"], 0),
            "--help": ([*COMMAND, "--help"], 0),
            "diagram": ([*COMMAND, "diagram"], 0),
            "inject --help": ([*COMMAND, "inject", "--help"], 0),
            "inject (unreachable)": (
                [*COMMAND, "inject", "orderbook", "disconnect", "--state-file", str(stale)],
                1,
            ),
            "inject (live supervisor)": (
                [
                    *COMMAND,
                    "inject",
                    "exchange",
                    "rest_5xx",
                    "--count",
                    "1",
                    "--state-file",
                    str(live),
                ],
                0,
            ),
        }
        proc = _start_supervisor(live, env)
        try:
            samples: dict[str, list[float]] = {name: [] for name in cases}
            for command, expect in cases.values():  # warm the page cache once
                _time(command, env=env, expect=expect)
            for _ in range(args.runs):
                for name, (command, expect) in cases.items():
                    samples[name].append(_time(command, env=env, expect=expect))
        finally:
            proc.terminate()
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
    floor = statistics.median(samples["python -c pass (floor)"])
    print(f"{'command':<28}{'median ms':>10}{'p90 ms':>9}{'x floor':>9}  target")
    worst = 0.0
    for name, values in samples.items():
        median = statistics.median(values)
        is_floor = name.endswith("(floor)")
        if not is_floor:
            worst = max(worst, median)
        verdict = "" if is_floor else ("ok" if median <= TARGET_MS else "OVER")
        print(
            f"{name:<28}{median:>10.1f}{p90(values):>9.1f}{median / floor:>9.2f}  "
            f"{'' if is_floor else f'<= {TARGET_MS:.0f} ms {verdict}'}"
        )
    print(f"\nslowest command median: {worst:.1f} ms (floor {floor:.1f} ms)")
    return 0 if worst <= TARGET_MS else 1


if __name__ == "__main__":
    sys.exit(main())
