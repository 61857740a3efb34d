"""The two example services, run as a user runs them: ``kalshi-supervisor run --service ...``
in a subprocess, against an in-test embedded exchange whose books are the oracle.

The exchange streams for a while, then pauses; from then on the truth is still, and each
example's output must end exactly where the exchange's books are.
"""

from __future__ import annotations

import csv
import itertools
import os
import re
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import pytest

from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_count, format_dollars
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from tests.cli.test_cli_process import Launcher, Proc, inject_cmd, run_against

pytestmark = pytest.mark.slow  # subprocesses and services running for seconds

WAIT = 20.0
RECORDER = "examples/top_of_book.py:TopOfBookRecorder"
ALERT = "examples/spread_alert.py:SpreadAlert"
ALERT_LINE = re.compile(
    r"spread_alert (?P<ticker>\S+) (?P<side>WIDE|NARROW) spread=(?P<spread>\S+) "
    r"threshold=(?P<threshold>\S+)"
)


@pytest.fixture
def exchange() -> Iterator[EmbeddedExchange]:
    config = ExchangeConfig(markets=5, delta_rate=150, read_tokens_per_second=None, seed=3)
    with EmbeddedExchange(config) as exchange:
        yield exchange


@pytest.fixture
def launch(tmp_path: Path) -> Iterator[Launcher]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    env["XDG_STATE_HOME"] = str(tmp_path / "xdg")
    env["PYTHONUNBUFFERED"] = "1"
    launcher = Launcher(env, [])
    try:
        yield launcher
    finally:
        launcher.close()


def truth_top(exchange: EmbeddedExchange, ticker: str) -> tuple[str, str, str, str]:
    """The exchange's own best YES bid/ask, formatted as the recorder must write them."""
    levels = exchange.markets.levels(ticker)
    bid = max(levels.yes) if levels.yes else None
    best_no = max(levels.no) if levels.no else None
    return (
        "" if bid is None else format_dollars(bid[0]),
        "" if bid is None else format_count(bid[1]),
        "" if best_no is None else format_dollars(MICROS_PER_DOLLAR - best_no[0]),
        "" if best_no is None else format_count(best_no[1]),
    )


def truth_spread(exchange: EmbeddedExchange, ticker: str) -> int | None:
    levels = exchange.markets.levels(ticker)
    if not levels.yes or not levels.no:
        return None
    return (MICROS_PER_DOLLAR - max(levels.no)[0]) - max(levels.yes)[0]


def read_rows(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def wait_started(proc: Proc, service: str) -> None:
    proc.wait_transition("ready")
    proc.wait_for(
        lambda: any(
            e.get("type") == "service_started" and e.get("service") == service for e in proc.events
        ),
        WAIT,
        f"{service} started",
    )


def test_top_of_book_recorder_when_run_writes_every_change_and_ends_at_the_truth(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    out = tmp_path / "tob.csv"
    state = tmp_path / "control.json"
    proc = launch(
        *run_against(exchange, state, "--events", "-", "--service", RECORDER),
        "--service-option",
        f"top_of_book_recorder.path={out}",
        "--service-option",
        "top_of_book_recorder.flush_interval=0.05",
    )
    wait_started(proc, "top_of_book_recorder")
    tickers = exchange.markets.tickers()
    # Let the stream move every book at least once, then freeze the truth.
    proc.wait_for(lambda: len(read_rows(out)) > 3 * len(tickers), WAIT, "rows")
    exchange.pause_stream()
    truth = {t: truth_top(exchange, t) for t in tickers}

    def ends_at_truth() -> bool:
        last: dict[str, tuple[str, ...]] = {}
        for row in read_rows(out):
            last[row["ticker"]] = (
                row["yes_bid"],
                row["yes_bid_size"],
                row["yes_ask"],
                row["yes_ask_size"],
            )
        return last == truth

    proc.wait_for(ends_at_truth, WAIT, f"the CSV's last rows to equal the truth {truth}")
    code, _ = proc.interrupt()
    assert code == 0, proc.describe()
    rows = read_rows(out)
    assert list(rows[0]) == ["ticker", "time", "yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size"]
    previous: dict[str, tuple[str, ...]] = {}
    for row in rows:
        top = (row["yes_bid"], row["yes_bid_size"], row["yes_ask"], row["yes_ask_size"])
        assert previous.get(row["ticker"]) != top, f"unchanged row recorded: {row}"
        previous[row["ticker"]] = top
        for value in top:
            assert value == "" or Decimal(value) > 0  # exact decimals, never a float repr
        assert row["yes_bid"] == "" or len(row["yes_bid"].split(".")[1]) >= 4
    assert len(rows) > len(tickers)  # changes were recorded, not just the starting state


def test_top_of_book_recorder_when_restarted_appends_and_keeps_every_row(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    """A crash restarts the recorder (``setup`` runs again): the rows written before it stay,
    new rows follow them, and the header is written once, when the file was new."""
    out = tmp_path / "tob.csv"
    state = tmp_path / "control.json"
    proc = launch(
        *run_against(exchange, state, "--events", "-", "--service", RECORDER),
        "--service-option",
        f"top_of_book_recorder.path={out}",
        "--service-option",
        "top_of_book_recorder.flush_interval=0.05",
        "--min-backoff",
        "0.01",
    )
    wait_started(proc, "top_of_book_recorder")
    proc.wait_for(lambda: len(read_rows(out)) > 10, WAIT, "rows before the crash")
    injected = inject_cmd(launch, state, "top_of_book_recorder", "crash")
    assert injected.popen.returncode == 0, injected.describe()
    proc.wait_for(
        lambda: any(e.get("type") == "service_restarted" for e in proc.events),
        WAIT,
        "service_restarted",
    )
    before = out.read_text(encoding="utf-8")  # everything flushed when the crash stopped it
    proc.wait_for(
        lambda: len(out.read_text(encoding="utf-8")) > len(before), WAIT, "rows after the restart"
    )
    code, _ = proc.interrupt()
    assert code == 0, proc.describe()

    after = out.read_text(encoding="utf-8")
    assert after.startswith(before)
    assert after.count("ticker,time,yes_bid") == 1
    assert len(read_rows(out)) > len(before.splitlines()) - 1


def test_spread_alert_when_run_logs_crossings_and_ends_at_the_truth(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    threshold = Decimal("0.03")
    state = tmp_path / "control.json"
    proc = launch(
        *run_against(exchange, state, "--events", "-", "--service", ALERT),
        "--service-option",
        f"spread_alert.threshold={threshold}",
    )
    wait_started(proc, "spread_alert")
    tickers = exchange.markets.tickers()

    def alerts() -> list[re.Match[str]]:
        return [m for line in proc.stderr if (m := ALERT_LINE.search(line))]

    proc.wait_for(lambda: {m["ticker"] for m in alerts()} == set(tickers), WAIT, "every market")
    exchange.pause_stream()
    limit = int(threshold * MICROS_PER_DOLLAR)
    expected = {}
    for ticker in tickers:
        spread = truth_spread(exchange, ticker)
        expected[ticker] = "WIDE" if spread is None or spread > limit else "NARROW"

    def ends_at_truth() -> bool:
        last = {m["ticker"]: m["side"] for m in alerts()}
        return last == expected

    proc.wait_for(ends_at_truth, WAIT, f"the last alert per market to be {expected}")
    code, _ = proc.interrupt()
    assert code == 0, proc.describe()
    sides: dict[str, list[str]] = {}
    for match in alerts():
        assert match["threshold"] == format_dollars(limit)
        if match["spread"] != "none":
            spread = int(Decimal(match["spread"]) * MICROS_PER_DOLLAR)
            assert (spread > limit) == (match["side"] == "WIDE")
        sides.setdefault(match["ticker"], []).append(match["side"])
    for ticker, history in sides.items():  # crossings only: never the same side twice in a row
        assert all(a != b for a, b in itertools.pairwise(history)), (ticker, history)


def test_service_when_injected_and_typed_from_the_cli_is_supervised(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    """``inject NAME crash`` reaches a loaded service; ``--restart-type NAME=temporary``
    applies to it: the crash drops the service and the system stays READY."""
    state = tmp_path / "control.json"
    proc = launch(
        *run_against(exchange, state, "--events", "-", "--service", ALERT),
        "--restart-type",
        "spread_alert=temporary",
    )
    wait_started(proc, "spread_alert")
    injected = inject_cmd(launch, state, "spread_alert", "crash")
    assert injected.popen.returncode == 0, injected.describe()
    proc.wait_for(
        lambda: any(e.get("type") == "service_dropped" for e in proc.events),
        WAIT,
        "service_dropped",
    )
    again = inject_cmd(launch, state, "spread_alert", "crash")
    assert again.popen.returncode == 1, again.describe()  # a refusal is not a success
    assert again.stdout == []
    assert again.stderr == ["refused by supervisor: spread_alert service is dropped"]
    transitions = [e["to_state"] for e in proc.events if e.get("type") == "state_transition"]
    assert transitions[-1] == "ready"
    code, _ = proc.interrupt()
    assert code == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--service", "no_such_module_xyz:Thing"], "no module named 'no_such_module_xyz'"),
        (["--service", "examples/missing.py:X"], "no such file examples/missing.py"),
        (["--service", "examples/spread_alert.py:Nope"], "has no 'Nope'"),
        (["--service", "not_an_entry_point"], "expected MODULE:CLASS"),
        (
            ["--service", ALERT, "--service-option", "spread_alert.threshold=7"],
            "option threshold: Input should be less than 1",
        ),
        (["--service", f"orderbook={ALERT}"], "already used"),
        (["--service", f"adopted={ALERT}"], "already used"),  # the owner of adopted orders
        (["--restart-type", "nobody=temporary"], "unknown stage 'nobody'"),
        (
            ["--service", ALERT, "--restart-type", "nobody=temporary"],
            "unknown stage or service 'nobody'",
        ),
        (["--service-option", "spread_alert"], "expected NAME.KEY=VALUE"),
    ],
)
def test_service_reference_when_bad_exits_2_with_one_line(
    launch: Launcher, tmp_path: Path, args: list[str], message: str
) -> None:
    proc = launch("run", "--status-port", "0", "--state-file", str(tmp_path / "c.json"), *args)
    assert proc.finish() == 2
    assert len(proc.stderr) == 1, proc.describe()
    assert proc.stderr[0].startswith("kalshi-supervisor: error: ")
    assert message in proc.stderr[0]


def test_services_when_given_in_the_config_file_run_with_their_options(
    exchange: EmbeddedExchange, launch: Launcher, tmp_path: Path
) -> None:
    """The config-file section: ``services``, ``[service_options.NAME]``, and the service's
    name in ``[restart_types]``."""
    config = tmp_path / "supervisor.toml"
    config.write_text(
        f'services = ["{ALERT}"]\n'
        "[service_options.spread_alert]\n"
        'threshold = "0.02"\n'
        "[restart_types]\n"
        'spread_alert = "temporary"\n'
    )
    state = tmp_path / "control.json"
    proc = launch(*run_against(exchange, state, "--events", "-", "--config", str(config)))
    wait_started(proc, "spread_alert")
    proc.wait_for(
        lambda: any(
            (m := ALERT_LINE.search(line)) and m["threshold"] == "0.0200" for line in proc.stderr
        ),
        WAIT,
        "an alert with the file's threshold",
    )
    injected = inject_cmd(launch, state, "spread_alert", "crash")
    assert injected.popen.returncode == 0, injected.describe()
    proc.wait_for(
        lambda: any(e.get("type") == "service_dropped" for e in proc.events),
        WAIT,
        "the temporary service dropped",
    )
    code, _ = proc.interrupt()
    assert code == 0
