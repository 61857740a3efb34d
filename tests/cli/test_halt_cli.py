"""``kalshi-supervisor halt`` and ``resume``: one line, exit 0 / 1 refused / 2 usage or
unreachable.

Two rigs. In-process, ``run_control`` against a real console server on a loopback port whose
supervisor side is a recording stand-in (what was asked, and every reply shape). As
subprocesses, the real console script against a real ``kalshi-supervisor run`` on the
embedded exchange: refused in orderbook-only mode, and bad arguments.
"""

from __future__ import annotations

import io
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from app.console_server import ConsoleServer
from app.console_state import ConsoleEndpoint, new_token, write_state_file
from cli import halt, resume
from kalshi_sim.exchange import EmbeddedExchange, ExchangeConfig
from messages.orders import TradingState
from tests.app.test_console_trading import StandInTrading
from tests.cli.test_cli_process import START_WAIT, Launcher, Proc, run_against


@dataclass
class Live:
    server: ConsoleServer
    trading: StandInTrading
    token: str
    state_file: Path


def _live(tmp_path: Path, trading_enabled: bool = True) -> Iterator[Live]:
    trading = StandInTrading()
    token = new_token()
    server = ConsoleServer(
        port=0,
        token=token,
        inject=lambda fault: {},
        trading=trading,
        trading_enabled=trading_enabled,
    )
    server.start()
    state_file = tmp_path / "state" / "control.json"
    write_state_file(state_file, ConsoleEndpoint(url=server.url, token=token, pid=os.getpid()))
    try:
        yield Live(server, trading, token, state_file)
    finally:
        server.stop()


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    yield from _live(tmp_path)


@pytest.fixture
def orderbook_only(tmp_path: Path) -> Iterator[Live]:
    yield from _live(tmp_path, trading_enabled=False)


def _halt(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = halt.build_parser().parse_args(argv)
    code = halt.run_control("halt", "/halt", {"reason": args.reason}, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _resume(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    args = resume.build_parser().parse_args(argv)
    code = halt.run_control("resume", "/resume", {}, args, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def test_halt_when_supervisor_trades_prints_report_on_one_line_and_exits_0(live: Live) -> None:
    code, out, err = _halt(
        ["--json", "--reason", "drill on KXT", "--state-file", str(live.state_file)]
    )

    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == {
        "accepted": True,
        "reason": "drill on KXT",
        "state": "halted",
        "duration_ms": 12,
        "cancel_all_calls": 1,
        "verify_reads": 2,
        "remaining": 0,
    }
    assert live.trading.calls == [("halt", "drill on KXT")]


def test_resume_when_halted_exits_0_and_trading_is_active(live: Live) -> None:
    _halt(["--state-file", str(live.state_file)])

    code, out, err = _resume(["--json", "--state-file", str(live.state_file)])

    assert (code, err) == (0, "")
    assert json.loads(out)["state"] == "active"
    assert live.trading.calls == [("halt", "manual"), ("resume", None)]


def test_halt_when_token_is_wrong_exits_1_with_one_refusal_line(live: Live) -> None:
    code, out, err = _halt(["--token", new_token(), "--state-file", str(live.state_file)])

    assert (code, out) == (1, "")
    assert err == "halt: refused: invalid or missing control token\n"
    assert live.trading.calls == []


def test_halt_when_orderbook_only_exits_1_saying_trading_is_off(orderbook_only: Live) -> None:
    code, out, err = _halt(["--state-file", str(orderbook_only.state_file)])

    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and "orderbook-only" in err


def test_halt_when_orders_still_rest_after_the_halt_exits_1(live: Live) -> None:
    live.trading.remaining = 3

    code, out, err = _halt(["--json", "--state-file", str(live.state_file)])

    assert code == 1
    assert json.loads(out)["remaining"] == 3
    assert err == "halt: 3 of our orders still rest\n"

    code, out, err = _halt(["--state-file", str(live.state_file)])  # a person reads it too

    assert code == 1 and err == "halt: 3 of our orders still rest\n"
    assert "3 orders of ours STILL REST after 12 ms" in out


def test_halt_without_json_prints_a_short_summary_for_a_person(live: Live) -> None:
    code, out, err = _halt(["--reason", "drill on KXT", "--state-file", str(live.state_file)])

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "halt: trading HALTED (reason: drill on KXT)",
        "  zero of ours resting after 12 ms (1 cancel-all call, 2 verify reads)",
    ]


def test_resume_without_json_summarises_the_trading_status(live: Live) -> None:
    _halt(["--state-file", str(live.state_file)])
    stand_in = live.trading

    def resume_trading() -> object:  # as the gateway does: ACTIVE, and its status
        stand_in.state = TradingState.ACTIVE
        return stand_in.trading_status()

    stand_in.resume_trading = resume_trading  # type: ignore[method-assign]

    code, out, err = _resume(["--state-file", str(live.state_file)])

    assert (code, err) == (0, "")
    assert out.splitlines() == [
        "resume: trading ACTIVE",
        "  open orders: 1 (mm 1)",
        "  positions: none",
        "  write budget 37.5 of 100 tokens, 2 writes answered 429",
    ]


def test_halt_when_gateway_does_not_answer_exits_1_with_the_reason(live: Live) -> None:
    live.trading.error = TimeoutError("order gateway did not answer within 30 s")

    code, out, err = _halt(["--state-file", str(live.state_file)])

    assert (code, out) == (1, "")
    assert err == "halt: refused: halt failed: order gateway did not answer within 30 s\n"


def test_halt_when_no_supervisor_runs_exits_2_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "control.json"

    code, out, err = _halt(["--state-file", str(path)])

    assert (code, out) == (2, "")
    assert err == f"halt: no running supervisor found: {path} does not exist\n"


def test_resume_when_supervisor_is_gone_exits_2_naming_the_stale_file(live: Live) -> None:
    live.server.stop()

    code, out, err = _resume(["--state-file", str(live.state_file)])

    assert (code, out) == (2, "")
    assert err.startswith(f"resume: cannot reach supervisor at {live.server.url}")
    assert err.count("\n") == 1


# -- the real console script against a real supervisor --------------------------------------
@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    scrubbed = {k: v for k, v in os.environ.items() if not k.startswith("KALSHI_")}
    scrubbed["XDG_STATE_HOME"] = str(tmp_path_factory.mktemp("xdg-state"))
    scrubbed["PYTHONUNBUFFERED"] = "1"
    return scrubbed


@pytest.fixture(scope="module")
def exchange() -> Iterator[EmbeddedExchange]:
    with EmbeddedExchange(
        ExchangeConfig(markets=4, delta_rate=50, read_tokens_per_second=None)
    ) as exchange:
        yield exchange


@pytest.fixture
def launch(env: dict[str, str], exchange: EmbeddedExchange) -> Iterator[Launcher]:
    launcher = Launcher(env, [exchange.private_key_path.read_text()])
    try:
        yield launcher
    finally:
        launcher.close()
    assert launcher.leaked_secrets() == []


def _command(launch: Launcher, *args: str) -> Proc:
    proc = launch(*args)
    proc.finish()
    return proc


@pytest.mark.slow  # subprocesses: kalshi-supervisor run, then halt and resume
def test_halt_when_supervisor_runs_orderbook_only_exits_1_and_it_keeps_running(
    launch: Launcher, exchange: EmbeddedExchange, tmp_path: Path
) -> None:
    state_file = tmp_path / "s" / "control.json"
    proc = launch(*run_against(exchange, state_file, "--no-trading", "--events", "-"))
    proc.wait_transition("ready")

    halted = _command(launch, "halt", "--reason", "drill", "--state-file", str(state_file))
    resumed = _command(launch, "resume", "--state-file", str(state_file))

    for command in (halted, resumed):
        assert command.popen.returncode == 1, command.describe()
        assert command.stdout == []
        assert len(command.stderr) == 1 and "orderbook-only" in command.stderr[0]
    assert proc.popen.poll() is None
    assert not any(e["type"] in ("trading_state", "halt_completed") for e in proc.events)
    code, _ = proc.interrupt()
    assert code == 0, proc.describe()


@pytest.mark.slow  # a kalshi-supervisor subprocess per case
@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["halt", "--reason", ""], "--reason: must not be empty"),
        (["halt", "--reason", "a\tb"], "--reason: must be one printable line"),
        (["halt", "now"], "unrecognized arguments: now"),
        (["resume", "--timeout", "0", "--url", "http://127.0.0.1:1", "--token", "t"], "timeout"),
        (["resume", "--url", "ftp://x", "--token", "t"], "invalid control URL"),
    ],
    ids=["empty-reason", "tab-reason", "extra-arg", "zero-timeout", "bad-url"],
)
def test_control_command_when_arguments_are_bad_exits_2_with_one_line(
    launch: Launcher, argv: list[str], needle: str
) -> None:
    command = _command(launch, *argv)

    assert command.popen.returncode == 2, command.describe()
    assert command.stdout == []
    assert len(command.stderr) == 1 and needle in command.stderr[0], command.describe()
    assert "Traceback" not in command.output


QUOTER = "tests/resting_quoter.py:RestingQuoter"


def _resting_of_ours(exchange: EmbeddedExchange, ids: set[str]) -> list[str]:
    """Our orders (by client_order_id) the exchange itself holds resting, unlagged."""
    return [
        order.client_order_id
        for view in exchange.truth().values()
        for order in view.orders
        if order.client_order_id in ids and order.status == "resting"
    ]


@pytest.mark.slow  # subprocesses: kalshi-supervisor run, then halt and resume
def test_halt_when_a_service_has_an_order_resting_cancels_it_and_resume_reactivates(
    launch: Launcher, exchange: EmbeddedExchange, tmp_path: Path
) -> None:
    state_file = tmp_path / "s" / "control.json"
    proc = launch(*run_against(exchange, state_file, "--service", QUOTER, "--events", "-"))
    proc.wait_transition("ready")
    resting = proc.wait_for(
        lambda: next(
            (
                e
                for e in proc.events
                if e["type"] == "order_update"
                and e["service"] == "resting_quoter"
                and e["status"] == "resting"
            ),
            None,
        ),
        START_WAIT,
        "the quoter's order resting",
    )
    ours = {resting["client_order_id"]}
    assert _resting_of_ours(exchange, ours) == [resting["client_order_id"]]

    halted = _command(
        launch, "halt", "--json", "--reason", "drill", "--state-file", str(state_file)
    )

    assert halted.popen.returncode == 0, halted.describe()
    assert halted.stderr == [] and len(halted.stdout) == 1
    report = json.loads(halted.stdout[0])
    assert (report["accepted"], report["remaining"], report["open_at_start"]) == (True, 0, 1)
    assert report["reason"] == "drill" and report["cancel_all_calls"] >= 1
    assert _resting_of_ours(exchange, ours) == []
    proc.wait_for(
        lambda: any(e["type"] == "halt_completed" for e in proc.events),
        START_WAIT,
        "halt_completed event",
    )
    states = [e["state"] for e in proc.events if e["type"] == "trading_state"]
    assert states[-1] == "halted"
    after = len(proc.events)

    again = _command(launch, "halt", "--reason", "drill 2", "--state-file", str(state_file))

    assert again.popen.returncode == 0, again.describe()
    assert again.stdout[0] == "halt: trading HALTED (reason: drill 2)", again.describe()
    assert again.stdout[1] == "  0 orders of ours open when it began; none rest now"
    assert again.stdout[2].startswith("  zero of ours resting after ")

    resumed = _command(launch, "resume", "--state-file", str(state_file))

    assert resumed.popen.returncode == 0, resumed.describe()
    assert resumed.stdout[0] == "resume: trading ACTIVE (resumed)", resumed.describe()
    assert resumed.stdout[1] == "  open orders: 0"
    assert resumed.stdout[2].startswith("  positions: ")  # the demo account's, and ours
    assert resumed.stdout[-1].startswith("  order group ") and "write budget" in resumed.stdout[-1]
    assert resumed.stderr == []
    proc.wait_for(
        lambda: any(
            e["type"] == "trading_state" and e["state"] == "active" for e in proc.events[after:]
        ),
        START_WAIT,
        "trading_state active after resume",
    )
    code, _ = proc.interrupt()
    assert code == 0, proc.describe()
