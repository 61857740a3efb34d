"""A trading process killed (SIGKILL) with orders resting, then restarted: real subprocesses,
``kalshi-supervisor run`` against a standalone ``kalshi-supervisor exchange`` whose truth is
read over HTTP (``/_sim/truth``).

The killed process cannot cancel anything; its orders rest at the exchange with nobody
managing them. The restarted process (same installation: same state directory, so its ids
continue above the old high-water mark) must find them at connect and cancel them
(``--startup-orders cancel`` for orders it did not place; reconciliation for orders of an
earlier process of its own), place its own without reusing an id, and end with its open
orders equal to the exchange's resting orders.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.cli.test_cli_process import Launcher, Proc

pytestmark = pytest.mark.slow

WAIT = 60.0
REPO = Path(__file__).resolve().parents[2]
QUOTER = "tests/resting_quoter.py:RestingQuoter"
OPEN = {"pending", "resting", "partially_filled", "outcome_unknown"}


@pytest.fixture
def env(tmp_path: Path) -> dict[str, str]:
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    scrubbed["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    scrubbed["PYTHONUNBUFFERED"] = "1"
    return scrubbed


@pytest.fixture
def exchange(env: dict[str, str]) -> Iterator[dict[str, Any]]:
    proc = subprocess.Popen(
        [sys.executable, "-c", "import sys; from cli.main import main; sys.exit(main())",
         "exchange", "--markets", "3", "--rate", "0", "--member", "alice", "--tier", "premier",
         "--cancel-all-tail", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert line, proc.stderr.read() if proc.stderr else "no output"
        yield json.loads(line)
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=WAIT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=WAIT)


@pytest.fixture
def launch(env: dict[str, str]) -> Iterator[Launcher]:
    launcher = Launcher(env, [])
    try:
        yield launcher
    finally:
        launcher.close()


def _truth(published: dict[str, Any]) -> dict[str, Any]:
    """The exchange's truth about alice. The truth URL shares the exchange's read budget with
    the supervisor's own reads, so a 429 is paced as any client paces one (not a wait for
    something to happen: a rate limit to respect)."""
    pacing = threading.Event()
    for _ in range(50):
        reply = httpx.get(published["truth_url"], trust_env=False, timeout=10.0)
        if reply.status_code != 429:
            break
        pacing.wait(float(reply.headers.get("retry-after", "0.2")))
    assert reply.status_code == 200, f"/_sim/truth answered {reply.status_code}: {reply.text}"
    return reply.json()["members"]["alice"]


def _run_args(published: dict[str, Any], state_file: Path, *extra: str) -> list[str]:
    (alice,) = published["members"]
    return [
        "run", "--env", "local", "--rest-url", published["rest_url"], "--ws-url",
        published["ws_url"], "--key-id", alice["key_id"], "--private-key", alice["private_key"],
        "--status-port", "0", "--state-file", str(state_file), "--service", QUOTER,
        "--service-option", "resting_quoter.orders=2", "--events", "-", *extra,
    ]


def _ours(proc: Proc) -> dict[str, dict[str, Any]]:
    last: dict[str, dict[str, Any]] = {}
    for event in proc.events:
        if event.get("type") == "order_update":
            last[event["client_order_id"]] = event
    return last


def _killed_with_two_resting(
    launch: Launcher, exchange: dict[str, Any], state_file: Path
) -> set[str]:
    """A first process that placed two resting orders, then SIGKILLed (it cancels nothing):
    the client_order_ids it placed."""
    first = launch(*_run_args(exchange, state_file))
    first.wait_for(
        lambda: sum(e["status"] == "resting" for e in _ours(first).values()) == 2,
        WAIT, "two resting orders of the first process",
    )
    old = set(_ours(first))
    first.popen.send_signal(signal.SIGKILL)
    first.popen.wait(WAIT)
    first.join_readers()
    return old


def test_process_when_killed_with_orders_resting_and_restarted_leaves_nothing_unknown(
    launch: Launcher, exchange: dict[str, Any], tmp_path: Path
) -> None:
    state_file = tmp_path / "state" / "control.json"
    old = _killed_with_two_resting(launch, exchange, state_file)
    resting = {o["client_order_id"] for o in _truth(exchange)["orders"]
               if o["status"] == "resting"}
    assert resting == old, "the killed process cancelled nothing: its orders still rest"

    second = launch(*_run_args(exchange, state_file, "--startup-orders", "cancel"))
    second.wait_transition("ready")

    last = [0.0]

    def settled() -> bool:
        # the truth URL shares the exchange's read budget: asked at most every 0.5 s (the
        # wait re-checks on every line the process prints, and at least every 0.2 s)
        if time.monotonic() - last[0] < 0.5:
            return False
        last[0] = time.monotonic()
        truth = _truth(exchange)
        mine = _ours(second)
        now_resting = {o["client_order_id"] for o in truth["orders"] if o["status"] == "resting"}
        believed = {c for c, e in mine.items() if e["status"] in OPEN}
        return len(mine) == 2 and now_resting == believed and not (now_resting & old)

    second.wait_for(settled, WAIT, "the old orders cancelled and the new ones resting")
    truth = _truth(exchange)
    cids = [o["client_order_id"] for o in truth["orders"]]
    assert len(cids) == len(set(cids)), f"an id was used twice: {cids}"
    assert set(cids) == old | set(_ours(second)), "an order at the exchange nobody placed"
    assert not old & set(_ours(second)), "the restarted process reused an id"
    code, _ = second.interrupt()
    assert code == 0, second.describe()
    assert [o for o in _truth(exchange)["orders"] if o["status"] == "resting"] == []


def _status(state_file: Path) -> dict[str, Any]:
    """``/status`` of the running process (reads need no token on loopback)."""
    from app.console_state import read_state_file

    endpoint = read_state_file(state_file)
    reply = httpx.get(f"{endpoint.url}/status", trust_env=False, timeout=10.0)
    assert reply.status_code == 200, reply.text
    return reply.json()


def test_process_when_killed_and_restarted_with_adopt_tracks_the_old_orders_then_halts_them(
    launch: Launcher, exchange: dict[str, Any], tmp_path: Path
) -> None:
    state_file = tmp_path / "state" / "control.json"
    old = _killed_with_two_resting(launch, exchange, state_file)

    second = launch(*_run_args(exchange, state_file, "--startup-orders", "adopt"))
    second.wait_transition("ready")

    def adopted_and_placed() -> bool:
        mine = _ours(second)
        adopted = {c for c, e in mine.items() if e["service"] == "adopted"}
        placed = {c for c, e in mine.items() if e["service"] == "resting_quoter"}
        return adopted == old and len(placed) == 2 and all(
            e["status"] == "resting" for e in mine.values()
        )

    second.wait_for(adopted_and_placed, WAIT, "the old orders adopted, two new ones resting")
    truth = _truth(exchange)
    resting = {o["client_order_id"] for o in truth["orders"] if o["status"] == "resting"}
    assert resting == set(_ours(second)), "an order at the exchange the process does not track"
    cids = [o["client_order_id"] for o in truth["orders"]]
    assert len(cids) == len(set(cids)), f"an id was used twice: {cids}"

    trading = _status(state_file)["trading"]
    shown = {o["client_order_id"]: o["service"] for o in trading["open_orders"]}
    assert shown == {c: e["service"] for c, e in _ours(second).items()}, shown
    lines = [line for e in second.events if e.get("type") == "reconciled"
             for line in e["differences"]]
    assert not [line for line in lines if "untracked" in line], lines
    assert sum(line.startswith("adopted order") for line in lines) == 2, lines

    halt = launch("halt", "--reason", "drill", "--state-file", str(state_file))
    assert halt.finish() == 0, halt.describe()
    assert [o for o in _truth(exchange)["orders"] if o["status"] == "resting"] == []
    second.wait_for(
        lambda: all(e["status"] == "canceled" for e in _ours(second).values()),
        WAIT, "every order, adopted ones included, shown cancelled",
    )
    code, _ = second.interrupt()
    assert code == 0, second.describe()
