"""Run test files again and again beside CPU hogs, to find the tests a loaded machine breaks.

Usage::

    .venv/bin/python bench/under_load.py [--runs 5] [--hogs 1] -- tests/cli -k sigint

A test that waits on a condition with a generous timeout passes however slow the machine
is; one that races a thread, or asserts how long something took, fails here first. Each run
is a fresh ``pytest`` (``-p no:randomly`` is not needed: the order is pytest's own), with
``--hogs`` busy-looping processes beside it (one per core makes a 2-core CI box look like a
busy one). The hogs are started before the first run and killed, by their PIDs, after the
last, whatever happens. Prints one line per run and exits non-zero if any run failed.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--hogs", type=int, default=1, help="busy-looping processes beside")
    parser.add_argument("pytest_args", nargs="+", help="what to run (after --)")
    args = parser.parse_args(argv)
    hogs = [
        subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(args.hogs)
    ]
    failed = 0
    try:
        for run in range(1, args.runs + 1):
            started = time.monotonic()
            done = subprocess.run(
                [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *args.pytest_args],
                cwd=ROOT,
                capture_output=True,
                text=True,
                check=False,
            )
            summary = (done.stdout.strip().splitlines() or ["(no output)"])[-1]
            verdict = "ok" if done.returncode == 0 else "FAILED"
            took = time.monotonic() - started
            print(f"run {run}/{args.runs}: {verdict} in {took:.0f}s: {summary}")
            if done.returncode != 0:
                failed += 1
                print(done.stdout[-4000:])
    finally:
        for hog in hogs:
            hog.kill()
            hog.wait(5)
    print(f"{failed} of {args.runs} runs failed beside {args.hogs} CPU hog(s)")
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
