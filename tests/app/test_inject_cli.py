"""``kalshi-supervisor inject`` end to end: argparse, state file, HTTP, a live console server."""

from __future__ import annotations

import argparse
import io
import json
import os
import socket
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from app.console_server import ConsoleServer as ControlServer
from app.console_state import ConsoleEndpoint, new_token, write_state_file
from cli.inject import add_inject_arguments, main, run_inject
from messages.fault_kinds import check_fault
from messages.faults import ActorFault, ExchangeFault, FaultTarget, InjectFault

REFUSAL = "refused: invalid or missing control token\n"


@dataclass
class RecordingInject:
    """An ``inject`` callback that records faults; ``gate`` (when set) holds the reply back."""

    calls: list[InjectFault] = field(default_factory=list)
    gate: threading.Event | None = None

    def __call__(self, fault: InjectFault) -> Mapping[str, Any]:
        self.calls.append(fault)
        if self.gate is not None:
            self.gate.wait(timeout=10.0)
        return {"injected": f"{fault.target}/{fault.fault}", "count": fault.count}


@dataclass
class Live:
    server: ControlServer
    recorder: RecordingInject
    token: str
    state_file: Path


@pytest.fixture
def live(tmp_path: Path) -> Iterator[Live]:
    recorder = RecordingInject()
    token = new_token()
    server = ControlServer(port=0, token=token, status=lambda: {"state": "READY"}, inject=recorder)
    server.start()
    state_file = tmp_path / "state" / "control.json"
    write_state_file(state_file, ConsoleEndpoint(url=server.url, token=token, pid=os.getpid()))
    try:
        yield Live(server, recorder, token, state_file)
    finally:
        if recorder.gate is not None:
            recorder.gate.set()
        server.stop()


def _parse(argv: list[str]) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="kalshi-supervisor inject")
    add_inject_arguments(parser)
    return parser.parse_args(argv)


def _run(argv: list[str]) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = run_inject(_parse(argv), out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_run_inject_when_supervisor_is_running_prints_reply_and_exits_0(live: Live) -> None:
    code, out, err = _run(
        ["orderbook", "crash", "--count", "2", "--state-file", str(live.state_file)]
    )

    assert (code, err) == (0, "")
    assert out.count("\n") == 1
    assert json.loads(out) == {"injected": "orderbook/crash", "count": 2}
    assert live.recorder.calls == [
        InjectFault(target=FaultTarget.ORDERBOOK, fault=ActorFault.CRASH, count=2)
    ]


def test_run_inject_when_exchange_fault_has_seconds_sends_them(live: Live) -> None:
    code, _, err = _run(
        ["exchange", "stall", "--seconds", "1.5", "--state-file", str(live.state_file)]
    )

    assert (code, err) == (0, "")
    assert live.recorder.calls == [
        InjectFault(target=FaultTarget.EXCHANGE, fault=ExchangeFault.STALL, seconds=1.5)
    ]


def test_run_inject_when_token_is_wrong_exits_1_with_refusal_line(live: Live) -> None:
    wrong = new_token()

    code, out, err = _run(["sync", "hang", "--token", wrong, "--state-file", str(live.state_file)])

    assert (code, out, err) == (1, "", REFUSAL)
    assert live.recorder.calls == []


def test_run_inject_when_url_and_token_given_skips_state_file(live: Live, tmp_path: Path) -> None:
    argv = ["trading", "disconnect", "--url", live.server.url, "--token", live.token]
    code, out, err = _run([*argv, "--state-file", str(tmp_path / "absent.json")])

    assert (code, err) == (0, "")
    assert json.loads(out)["injected"] == "trading/disconnect"


def test_run_inject_when_state_file_is_missing_exits_1_with_one_line(tmp_path: Path) -> None:
    path = tmp_path / "absent" / "control.json"

    code, out, err = _run(["orderbook", "crash", "--state-file", str(path)])

    assert (code, out) == (1, "")
    assert err == f"no running supervisor found: {path} does not exist\n"


def test_run_inject_when_state_file_is_too_open_exits_1_without_token(live: Live) -> None:
    live.state_file.chmod(0o644)

    code, out, err = _run(["orderbook", "crash", "--state-file", str(live.state_file)])

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert "too open" in err
    assert live.token not in err
    assert live.recorder.calls == []


@pytest.mark.parametrize(
    ("target", "fault"),
    [("orderbook", "ws_drop"), ("exchange", "crash")],
    ids=["exchange-fault-on-actor", "actor-fault-on-exchange"],
)
def test_run_inject_when_fault_does_not_fit_target_exits_2_without_sending(
    live: Live, target: str, fault: str
) -> None:
    code, out, err = _run([target, fault, "--state-file", str(live.state_file)])

    assert (code, out) == (2, "")
    assert err.startswith("invalid fault: ")
    assert err.count("\n") == 1
    assert live.recorder.calls == []


def test_run_inject_when_seconds_out_of_range_exits_2(live: Live) -> None:
    code, _, err = _run(["sync", "slow", "--seconds", "0", "--state-file", str(live.state_file)])

    assert code == 2
    assert err.startswith("invalid fault: seconds:")
    assert live.recorder.calls == []


def test_run_inject_when_supervisor_is_unreachable_exits_1_naming_url(tmp_path: Path) -> None:
    url = f"http://127.0.0.1:{_free_port()}"

    code, out, err = _run(["orderbook", "crash", "--url", url, "--token", new_token()])

    assert (code, out) == (1, "")
    assert err.count("\n") == 1
    assert err.startswith(f"cannot reach supervisor at {url}:")


def test_run_inject_when_state_file_names_dead_supervisor_says_stale(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    url = f"http://127.0.0.1:{_free_port()}"
    # pid_max on Linux is at most 2**22, so this pid cannot exist.
    write_state_file(path, ConsoleEndpoint(url=url, token=new_token(), pid=2**22 + 1))

    code, _, err = _run(["orderbook", "crash", "--state-file", str(path)])

    assert code == 1
    assert url in err
    assert "stale state file" in err
    assert err.count("\n") == 1


def test_run_inject_when_supervisor_does_not_answer_in_time_exits_1(live: Live) -> None:
    live.recorder.gate = threading.Event()

    code, out, err = _run(
        ["orderbook", "hang", "--timeout", "0.2", "--state-file", str(live.state_file)]
    )
    live.recorder.gate.set()

    assert (code, out) == (1, "")
    assert err == f"supervisor at {live.server.url} did not answer within 0.2s\n"


def test_run_inject_when_callback_fails_exits_1_with_server_error(tmp_path: Path) -> None:
    def failing(fault: InjectFault) -> Mapping[str, Any]:
        raise RuntimeError("sync actor is not running")

    token = new_token()
    server = ControlServer(port=0, token=token, status=dict, inject=failing)
    server.start()
    try:
        code, out, err = _run(["sync", "crash", "--url", server.url, "--token", token])
    finally:
        server.stop()

    assert (code, out) == (1, "")
    assert err == (
        "supervisor failed to inject sync/crash: RuntimeError: sync actor is not running\n"
    )


def test_run_inject_when_url_is_not_http_exits_2(tmp_path: Path) -> None:
    code, _, err = _run(["orderbook", "crash", "--url", "ftp://127.0.0.1", "--token", "t"])

    assert code == 2
    assert err.startswith("invalid control URL ftp://127.0.0.1:")


def test_parse_when_fault_is_unknown_exits_2() -> None:
    parser = argparse.ArgumentParser()
    add_inject_arguments(parser)

    with pytest.raises(SystemExit) as caught:
        parser.parse_args(["orderbook", "explode"])

    assert caught.value.code == 2


def test_parse_when_only_positionals_given_uses_defaults() -> None:
    args = _parse(["exchange", "rest_429"])

    assert (args.target, args.fault) == ("exchange", "rest_429")
    assert (args.seconds, args.count, args.token, args.url, args.state_file) == (
        None,
        None,
        None,
        None,
        None,
    )
    assert args.timeout == 5.0


_FAULTS = [f.value for f in ActorFault] + [f.value for f in ExchangeFault]


@pytest.mark.slow
@settings(max_examples=600, deadline=None)
@given(
    target=st.sampled_from([t.value for t in FaultTarget] + ["added_stage", "Bad", ""]),
    fault=st.sampled_from([*_FAULTS, "explode"]),
    seconds=st.none() | st.floats(allow_nan=True, allow_infinity=True, min_value=None),
    count=st.none() | st.integers(min_value=-5, max_value=20_000),
    shard=st.none() | st.integers(min_value=-3, max_value=300),
    resume_in=st.none()
    | st.floats(allow_nan=True, allow_infinity=True)
    | st.sampled_from([0.0, -0.0, 1e-9, 86_400.0, 86_400.5]),
)
def test_check_fault_when_any_request_agrees_with_inject_fault_model(
    target: str,
    fault: str,
    seconds: float | None,
    count: int | None,
    shard: int | None,
    resume_in: float | None,
) -> None:
    """The CLI's pydantic-free check refuses exactly what the model refuses."""
    try:
        InjectFault(
            target=target,
            fault=fault,
            seconds=seconds,
            count=count,
            shard=shard,
            resume_in=resume_in,
        )
        model_ok = True
    except ValidationError:
        model_ok = False

    assert (check_fault(target, fault, seconds, count, shard, resume_in) is None) == model_ok


# -- pauses ------------------------------------------------------------------------------------
def test_run_inject_when_pause_has_shard_and_resume_in_sends_both(live: Live) -> None:
    code, _, err = _run(
        [
            "exchange",
            "pause_trading",
            "--shard",
            "2",
            "--resume-in",
            "30",
            "--state-file",
            str(live.state_file),
        ]
    )

    assert (code, err) == (0, "")
    assert live.recorder.calls == [
        InjectFault(
            target=FaultTarget.EXCHANGE, fault=ExchangeFault.PAUSE_TRADING, shard=2, resume_in=30.0
        )
    ]


def test_run_inject_when_resume_given_alone_sends_no_parameter(live: Live) -> None:
    code, _, err = _run(["exchange", "resume", "--state-file", str(live.state_file)])

    assert (code, err) == (0, "")
    assert live.recorder.calls == [InjectFault(target="exchange", fault=ExchangeFault.RESUME)]


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["pause_trading", "--shard", "-1"], "invalid fault: shard: Input should be greater"),
        (["pause_trading", "--shard", "256"], "invalid fault: shard: Input should be less"),
        (["pause_exchange", "--resume-in", "-5"], "invalid fault: resume_in: Input should be"),
        (["pause_exchange", "--resume-in", "0"], "invalid fault: resume_in: Input should be"),
        (["pause_exchange", "--resume-in", "nan"], "invalid fault: resume_in: Input should be"),
        (["pause_exchange", "--resume-in", "1e9"], "invalid fault: resume_in: Input should be"),
        (["pause_exchange", "--shard", "1"], "invalid fault: shard: only pause_trading"),
        (["ws_drop", "--resume-in", "5"], "invalid fault: resume_in: only pause_"),
        (["pause_exchange", "--seconds", "5"], "invalid fault: seconds: 'pause_exchange' takes"),
        (["resume", "--count", "2"], "invalid fault: count: 'resume' takes no count"),
    ],
    ids=lambda value: "_".join(value) if isinstance(value, list) else None,
)
def test_run_inject_when_pause_parameter_bad_exits_2_with_one_line_sending_nothing(
    live: Live, argv: list[str], expected: str
) -> None:
    code, out, err = _run(["exchange", *argv, "--state-file", str(live.state_file)])

    assert (code, out) == (2, "")
    assert err.startswith(expected), err
    assert err.count("\n") == 1
    assert live.recorder.calls == []


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["--shard", "soon"], "argument --shard: invalid int value: 'soon'"),
        (["--resume-in", "soon"], "argument --resume-in: invalid float value: 'soon'"),
        (["--shard"], "argument --shard: expected one argument"),
        (["--colour", "red"], "unrecognized arguments: --colour red"),
    ],
)
def test_main_when_arguments_are_junk_exits_2_with_one_line(
    capsys: pytest.CaptureFixture[str], argv: list[str], expected: str
) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["exchange", "pause_trading", *argv])

    out, err = capsys.readouterr()
    assert caught.value.code == 2
    assert out == ""
    hint = "(see `kalshi-supervisor inject --help`)"
    assert err == f"kalshi-supervisor: error: inject: {expected} {hint}\n"


def test_run_inject_when_supervisor_finds_request_invalid_exits_2_with_its_reason(
    tmp_path: Path,
) -> None:
    """A shard the exchange does not have is known only there: the supervisor answers 400."""

    def no_such_shard(fault: InjectFault) -> Mapping[str, Any]:
        return {"accepted": False, "error": f"no exchange shard {fault.shard}", "invalid": True}

    token = new_token()
    server = ControlServer(port=0, token=token, status=dict, inject=no_such_shard)
    server.start()
    try:
        code, out, err = _run(
            ["exchange", "pause_trading", "--shard", "9", "--url", server.url, "--token", token]
        )
    finally:
        server.stop()

    assert (code, out) == (2, "")
    assert err == "rejected by supervisor: no exchange shard 9\n"


def test_run_inject_when_peer_is_not_http_exits_1_with_one_line(tmp_path: Path) -> None:
    """Something else listens on the port (a stale state file, a reused port): one line."""
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]

    def answer_garbage() -> None:
        connection, _ = listener.accept()
        with connection:
            connection.recv(65536)
            connection.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

    server = threading.Thread(target=answer_garbage, daemon=True)
    server.start()
    try:
        code, out, err = _run(
            ["orderbook", "crash", "--url", f"http://127.0.0.1:{port}", "--token", "t0ken"]
        )
    finally:
        server.join(5.0)
        listener.close()
    assert code == 1 and out == ""
    assert err.count("\n") == 1
    assert f"cannot reach supervisor at http://127.0.0.1:{port}: malformed reply" in err
