"""What a newcomer meets first, as real processes: one-line usage errors on every sub-command,
``--version``, help texts, the README's flag table, a refused injection's exit code, service
references from a config file and from the checkout, and the terminal's output (unwrapped
when piped, one line per fact, no Python reprs)."""
# ruff: noqa: F811  (the fixtures shared with test_cli_process are imported, then requested)

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from cli.readme_flags import README, table_in
from cli.run import build_parser, flag_table
from kalshi_sim.exchange import EmbeddedExchange
from tests.cli.test_cli_process import (
    COMMAND,
    REPO,
    START_WAIT,
    Launcher,
    Proc,
    env,  # noqa: F401  (fixture)
    exchange,  # noqa: F401  (fixture)
    inject_cmd,
    key_file,  # noqa: F401  (fixture)
    launch,  # noqa: F401  (fixture)
    run_against,
    secrets,  # noqa: F401  (fixture)
    shared_exchange,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.slow  # subprocesses: every test starts kalshi-supervisor


def _run(*args: str, cwd: Path = REPO) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*COMMAND, *args], cwd=cwd, capture_output=True, text=True, timeout=60, check=False
    )


# -- usage errors, --version, help ---------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "names"),
    [
        (["run", "--sync-interval", "soon"], "run: argument --sync-interval"),
        (["run", "--colour"], "run: unrecognized arguments: --colour"),
        (["exchange", "--port", "x"], "exchange: argument --port"),
        (["inject", "orderbook", "explode"], "inject: argument FAULT"),
        (["diagram", "--wide"], "diagram: unrecognized arguments: --wide"),
        (["explode"], "argument COMMAND: invalid choice: 'explode'"),
    ],
    ids=["run-type", "run-unknown", "exchange", "inject", "diagram", "top-level"],
)
def test_subcommand_when_argument_bad_prints_one_error_line_and_exits_2(
    argv: list[str], names: str
) -> None:
    done = _run(*argv)

    assert done.returncode == 2, done
    assert done.stdout == ""
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"kalshi-supervisor: error: {names}"), lines[0]
    assert "--help" in lines[0]


@pytest.mark.parametrize("argv", [[], ["run"], ["exchange"], ["inject"], ["diagram"]])
def test_version_when_asked_prints_the_package_version_and_exits_0(argv: list[str]) -> None:
    from importlib.metadata import version

    done = _run(*argv, "--version")

    assert (done.returncode, done.stderr) == (0, "")
    assert done.stdout == f"kalshi-supervisor {version('kalshi-supervisor')}\n"


def test_exchange_help_when_printed_explains_every_option_and_its_default_once() -> None:
    done = _run("exchange", "--help")

    assert done.returncode == 0
    # Each option's block: its name line plus the indented lines that continue it (argparse
    # moves the help to the next line when the name and metavar are long).
    blocks = re.findall(
        r"^  (--[a-z-]+)((?: [A-Z_{},]+)?)(.*(?:\n {6,}.*)*)$", done.stdout, re.MULTILINE
    )
    assert {name for name, _, _ in blocks} >= {"--host", "--port", "--markets", "--rate", "--seed"}
    for name, _metavar, rest in blocks:
        assert rest.strip(), f"{name} has no help text:\n{done.stdout}"
    flat = " ".join(done.stdout.split())
    assert re.search(r"\(\d[\d.]*\) \(default:", flat) is None, flat
    assert flat.count("how many markets the exchange lists (default: 20)") == 1


def test_run_help_when_printed_shows_each_default_once() -> None:
    done = _run("run", "--help")
    text = done.stdout
    flat = " ".join(text.split())

    assert done.returncode == 0
    assert re.search(r"\(\d[\d.]*\) \(default:", flat) is None, flat
    assert "--discovery-refresh SECONDS" in text
    assert "(default: 300)" in flat


# -- the README's flag table ------------------------------------------------------------------
def test_readme_flag_table_when_compared_with_the_parser_is_identical() -> None:
    shown = table_in(README.read_text(encoding="utf-8"))

    assert shown == flag_table(), "regenerate it: python -m cli.readme_flags"
    for flag in re.findall(r"^\s+(--[a-z-]+)", build_parser().format_help(), re.MULTILINE):
        if flag not in ("--help", "--version"):
            assert f"`{flag}" in shown, flag
    assert "`--discovery-refresh SECONDS` | `300` |" in shown


# -- services: references from a config file, dotted references from a checkout -------------------
def test_run_when_config_file_service_path_is_wrong_names_file_key_and_problem(
    tmp_path: Path,
) -> None:
    config = tmp_path / "supervisor.toml"
    config.write_text(
        'services = ["examples/no_such_service.py:SpreadAlert"]\n'
        '[restart_types]\nspread_alert = "transient"\n',
        encoding="utf-8",
    )

    done = _run("run", "--config", str(config), "--status-port", "0", cwd=tmp_path)

    assert done.returncode == 2, done
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith(f"kalshi-supervisor: error: config file {config}: services: "), (
        lines[0]
    )
    assert "no such file examples/no_such_service.py" in lines[0]
    assert str(tmp_path / "examples" / "no_such_service.py") in lines[0]
    assert "restart_types" not in lines[0]


@pytest.fixture
def started(launch: Launcher, exchange: EmbeddedExchange, tmp_path: Path) -> Iterator[Proc]:
    """A supervisor on the in-test exchange with the shipped example as a *dotted* reference,
    its terminal output piped (as in a log or CI)."""
    proc = launch(
        *run_against(
            exchange,
            tmp_path / "control.json",
            "--events",
            str(tmp_path / "events.jsonl"),
            "--service",
            "examples.spread_alert:SpreadAlert",
        ),
        events_file=tmp_path / "events.jsonl",
    )
    proc.wait_for(
        lambda: any(
            e.get("type") == "service_started" and e.get("service") == "spread_alert"
            for e in proc.events
        ),
        START_WAIT,
        "the dotted service started",
    )
    yield proc
    code, _ = proc.interrupt(signal.SIGINT)
    assert code == 0, proc.describe()


def test_run_when_service_is_a_dotted_reference_to_the_example_starts_it(started: Proc) -> None:
    starts = [e for e in started.events if e.get("type") == "service_started"]

    # the order gateway, a built-in service with trading on, starts first
    assert [e["service"] for e in starts] == ["order_gateway", "spread_alert"]


# -- the terminal: unwrapped when piped, one line per fact ------------------------------------
def test_run_when_stderr_is_piped_prints_each_fact_on_one_unwrapped_line(started: Proc) -> None:
    started.wait_stderr("READY")
    lines = started.stderr

    connect = next(i for i, line in enumerate(lines) if "ORDERBOOK_CONNECT  after" in line)
    metadata = lines[connect + 1]
    assert "ws_url=" in metadata and "market_count=" in metadata and "environment=" in metadata
    assert len(metadata) > 80  # one line, however long: never hard-wrapped at 80 columns
    ready = next(i for i, line in enumerate(lines) if "  READY  after" in line)
    assert "trading_client=(" in lines[ready + 1] and "portfolio_value=$" in lines[ready + 1]


def test_inject_when_fault_accepted_is_printed_once_in_console_vocabulary(
    started: Proc, launch: Launcher, tmp_path: Path
) -> None:
    injector = inject_cmd(launch, tmp_path / "control.json", "sync", "crash")
    assert injector.popen.returncode == 0, injector.describe()
    started.wait_stderr("restart: sync (attempt 1)")
    started.wait_for(
        lambda: sum("  READY  after" in line for line in started.stderr) >= 2,
        START_WAIT,
        "READY again",
    )
    text = "\n".join(started.stderr)

    mentions = [
        line
        for line in started.stderr
        if any(s in line for s in ("injected crash into", "injecting crash", "fault injection"))
    ]
    assert mentions == ["              fault: injected crash into sync"], text
    failures = [line for line in started.stderr if "injected crash in sync stage" in line]
    assert len(failures) == 2, text  # the failure line, and ERROR's metadata (its reason)
    assert "None" not in text and "{'" not in text and "['" not in text, text
    error = next(line for line in started.stderr if "  ERROR  after" in line)
    assert re.search(r"after (\d+ ms|\d+\.\d s) in READY", error), error


@pytest.mark.parametrize(
    ("ms", "shown"),
    [
        (0.4, "0.4 ms"),
        (61.2, "61 ms"),
        (7246.4, "7.2 s"),
        (125_000, "2 min 5 s"),
        (3_780_000, "1 h 3 min"),
    ],
)
def test_duration_when_formatted_is_human_scaled(ms: float, shown: str) -> None:
    from app.console import duration

    assert duration(ms) == shown


@pytest.mark.parametrize(
    ("cents", "shown"), [(50000, "$500.00"), (5, "$0.05"), (-123456, "-$1,234.56")]
)
def test_dollars_when_formatted_from_cents_are_exact(cents: int, shown: str) -> None:
    from app.console import dollars_from_cents

    assert dollars_from_cents(cents) == shown


def test_inject_when_supervisor_refuses_exits_1_with_the_reason_on_one_line(
    started: Proc, launch: Launcher, tmp_path: Path
) -> None:
    injector = inject_cmd(launch, tmp_path / "control.json", "no_such_stage", "crash")

    assert injector.popen.returncode == 1, injector.describe()
    assert injector.stdout == []
    assert injector.stderr == ["refused by supervisor: no running no_such_stage stage"]


def test_cli_module_when_run_with_python_m_matches_the_script() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "cli.main", "diagram", "--wide"],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert done.returncode == 2
    assert done.stderr.startswith("kalshi-supervisor: error: diagram:")


def test_console_view_when_on_a_terminal_wraps_to_its_width_under_the_indent() -> None:
    import io

    from rich.console import Console

    from app.console import ConsoleView
    from messages.events import StreamInterrupted

    out = io.StringIO()
    view = ConsoleView(Console(file=out, force_terminal=True, width=60, color_system=None))
    view(StreamInterrupted(detail="connection lost " * 8, heal_timeout_ms=5000))

    lines = out.getvalue().splitlines()
    assert len(lines) >= 3
    assert all(len(line) <= 60 for line in lines), lines
    assert lines[0].startswith(" " * 14 + "stream: interrupted (connection lost")
    assert all(line.startswith(" " * 14) and line[14] != " " for line in lines[1:]), lines
    assert "".join(line.strip() + " " for line in lines).count("connection lost") == 8
