"""Hunt for a ``run`` that a signal does not end: many runs, a signal at a varied moment each.

Usage::

    .venv/bin/python bench/sigint_soak.py [--runs 200] [--modes ready_reorder,startup,...]
        [--hog] [--sigint-ignored] [--exit-wait 5] [--out DIR]

Each run starts ``kalshi-supervisor run`` against one embedded exchange, its WebSocket behind
the reorder proxy of ``tests/cli/reorder_proxy.py`` (``get_snapshot`` replies out of order,
the issue 17 case), and sends SIGINT at a moment its mode picks:

* ``ready_reorder``: READY, seq gaps forced, once the proxy has reordered a few repairs;
* ``ready_gap_now``: READY, right after forcing gaps (a resync in flight);
* ``startup``: 0.2-2.5 s after launch, whatever it is doing (imports, preflight, start);
* ``orderbook_connect``: just after entering ORDERBOOK_CONNECT;
* ``backoff``: READY, just after the exchange dropped the session once or twice;
* ``double``: like ``ready_reorder``, then a second SIGINT 0-50 ms later;
* ``hup_storm``: READY, 3000 SIGHUPs (events file reopens) first;
* ``ready_plain``: READY, 0-1 s later.

A run still alive ``--exit-wait`` s after its signal is a hang: it gets SIGUSR1 (``run``
prints every thread's stack), then SIGKILL, and its stderr is kept in ``--out``. A run is
also bad if it exits non-zero, leaves ``control.json``, or prints a traceback; a SIGINT that
lands while the command is still loading (exit 130, or -2 before it even runs) is counted
apart. ``--hog`` runs a CPU hog beside it (one busy
process per core); ``--sigint-ignored`` starts each run the way ``cmd &`` in a script does.
The result is one line per mode and the signal-to-exit times; the README promises 2 s.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.support import machine_info, p90
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from tests.cli.reorder_proxy import ReorderProxy

SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
COMMAND = [str(SCRIPT)] if SCRIPT.is_file() else [sys.executable, "-m", "cli.main"]
MODES = (
    "ready_reorder",
    "ready_gap_now",
    "startup",
    "orderbook_connect",
    "backoff",
    "double",
    "hup_storm",
    "ready_plain",
)
START_WAIT = 60.0
WHILE_LOADING = (130, -signal.SIGINT)
"""Exit codes of a SIGINT that lands while the command is still loading: ``kalshi-supervisor``
says so in one line (130), or, before it even runs, the interpreter dies of it (-2)."""


class Run:
    """One ``run`` subprocess; its stderr is drained to a file, its events file polled."""

    def __init__(self, exchange: EmbeddedExchange, ws_url: str, work: Path, ignored: bool) -> None:
        self.events = work / "events.jsonl"
        self.state = work / "state" / "control.json"
        self.err_path = work / "stderr.txt"
        for path in (self.events, self.state):
            path.unlink(missing_ok=True)
        self.err = self.err_path.open("w")
        args = [
            "run",
            "--env",
            "local",
            "--rest-url",
            exchange.rest_url,
            "--ws-url",
            ws_url,
            "--key-id",
            exchange.key_id,
            "--private-key",
            str(exchange.private_key_path),
            "--status-port",
            "0",
            "--state-file",
            str(self.state),
            "--events",
            str(self.events),
            "--reconnect-max-delay",
            "2",
        ]
        self.popen = subprocess.Popen(
            [*COMMAND, *args],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=self.err,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, signal.SIG_IGN)) if ignored else None,
        )

    def transitions(self) -> list[dict[str, Any]]:
        try:
            lines = self.events.read_text().splitlines()
        except OSError:
            return []
        events = []
        for line in lines:
            try:
                events.append(json.loads(line))
            except ValueError:
                continue  # a line still being written
        return [e for e in events if e.get("type") == "state_transition"]

    def wait_state(self, state: str) -> bool:
        deadline = time.monotonic() + START_WAIT
        while time.monotonic() < deadline and self.popen.poll() is None:
            if any(e.get("to_state") == state for e in self.transitions()):
                return True
            time.sleep(0.02)  # polling a file: a bench, not a test
        return False


def one(
    mode: str,
    exchange: EmbeddedExchange,
    proxy: ReorderProxy,
    work: Path,
    rng: random.Random,
    exit_wait: float,
    ignored: bool,
) -> dict[str, Any]:
    run = Run(exchange, proxy.ws_url, work, ignored)
    reached = True
    if mode == "startup":
        time.sleep(rng.uniform(0.2, 2.5))
    elif mode == "orderbook_connect":
        reached = run.wait_state("orderbook_connect")
        time.sleep(rng.uniform(0, 0.15))
    else:
        reached = run.wait_state("ready")
        if reached and mode in ("ready_reorder", "double"):
            held = proxy.held
            for _ in range(20):
                exchange.ws.skip_seq()
            proxy.wait_held(held + rng.randint(1, 5), 10)
            time.sleep(rng.uniform(0, 0.3))
        elif reached and mode == "ready_gap_now":
            for _ in range(rng.randint(1, 20)):
                exchange.ws.skip_seq()
            time.sleep(rng.uniform(0, 0.05))
        elif reached and mode == "backoff":
            exchange.ws.drop_connections()
            time.sleep(rng.uniform(0, 0.5))
            if rng.random() < 0.5:
                exchange.ws.drop_connections()
                time.sleep(rng.uniform(0, 0.2))
        elif reached and mode == "hup_storm":
            for _ in range(3000):
                run.popen.send_signal(signal.SIGHUP)
                time.sleep(rng.uniform(0, 0.001))
        elif reached:
            time.sleep(rng.uniform(0, 1.0))
    signalled = time.monotonic()
    run.popen.send_signal(signal.SIGINT)
    if mode == "double":
        time.sleep(rng.uniform(0, 0.05))
        run.popen.send_signal(signal.SIGINT)
    hung = False
    try:
        code: int | None = run.popen.wait(exit_wait)
    except subprocess.TimeoutExpired:
        hung, code = True, None
        run.popen.send_signal(signal.SIGUSR1)  # every thread's stack, to stderr
        time.sleep(3.0)
        run.popen.kill()
        run.popen.wait(10)
    elapsed = time.monotonic() - signalled
    run.err.close()
    stderr = run.err_path.read_text(errors="replace")
    last = (run.transitions() or [{}])[-1]
    return {
        "mode": mode,
        "reached": reached,
        "code": code,
        "hung": hung,
        "exit_s": round(elapsed, 3),
        "shutdown_last": last.get("to_state") == "shutdown",
        "control_left": run.state.exists(),
        "traceback": "Traceback" in stderr,
        "load1": os.getloadavg()[0],
        "stderr": stderr,
    }


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=200)
    parser.add_argument("--modes", default=",".join(MODES))
    parser.add_argument("--hog", action="store_true", help="a busy process per core beside it")
    parser.add_argument(
        "--sigint-ignored",
        action="store_true",
        help="start each run with SIGINT ignored, as `cmd &` in a script does",
    )
    parser.add_argument("--exit-wait", type=float, default=5.0)
    parser.add_argument("--out", type=Path, default=None, help="where bad runs' stderr goes")
    args = parser.parse_args(argv)
    modes = args.modes.split(",")
    unknown = set(modes) - set(MODES)
    if unknown:
        parser.error(f"unknown modes: {', '.join(sorted(unknown))}")
    out = args.out or Path(tempfile.mkdtemp(prefix="sigint-soak-"))
    out.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGINT, signal.SIG_DFL)  # children start from the default
    hogs = (
        [
            subprocess.Popen([sys.executable, "-c", "while 1: pass"])
            for _ in range(os.cpu_count() or 1)
        ]
        if args.hog
        else []
    )
    exchange = EmbeddedExchange(
        ExchangeConfig(
            markets=6, delta_rate=200.0, page_size=2, seed=7, read_tokens_per_second=None
        )
    ).start()
    results: list[dict[str, Any]] = []
    rng = random.Random()
    try:
        with ReorderProxy(exchange.ws_url) as proxy, tempfile.TemporaryDirectory() as tmp:
            for index in range(args.runs):
                mode = modes[index % len(modes)]
                result = one(
                    mode, exchange, proxy, Path(tmp), rng, args.exit_wait, args.sigint_ignored
                )
                bad = (
                    result["hung"]
                    or result["control_left"]
                    or (
                        result["code"] not in (0, *WHILE_LOADING)
                        or (result["traceback"] and result["code"] == 0)
                    )
                )
                if bad:
                    (out / f"{index:04d}-{mode}.stderr").write_text(result["stderr"])
                del result["stderr"]
                results.append(result)
                print(json.dumps({"run": index, **result}), flush=True)
    finally:
        exchange.stop()
        for hog in hogs:
            hog.kill()
            hog.wait()
    print(machine_info())
    by_mode: dict[str, list[dict[str, Any]]] = collections.defaultdict(list)
    for result in results:
        by_mode[result["mode"]].append(result)
    for mode, rows in by_mode.items():
        times = [r["exit_s"] for r in rows if r["code"] == 0]
        print(
            f"{mode:18} runs {len(rows):4}  hangs {sum(r['hung'] for r in rows)}  "
            f"control.json left {sum(r['control_left'] for r in rows)}  "
            f"interrupted while loading {sum(r['code'] in WHILE_LOADING for r in rows)}  "
            f"exit s median {sorted(times)[len(times) // 2] if times else 0:.2f} "
            f"p90 {p90(times) if times else 0:.2f} max {max(times, default=0):.2f}"
        )
    print(f"stderr of bad runs: {out}")
    return 1 if any(r["hung"] or r["control_left"] for r in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
