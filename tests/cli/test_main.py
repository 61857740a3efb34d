"""``cli.main``: each sub-command imports only what it uses (the budget ``bench_cli`` times)."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
HEAVY = ("pykka", "httpx", "httpcore", "websockets", "pydantic", "cryptography", "kalshi_sim")
"""Modules the light commands must not load: each costs tens to hundreds of milliseconds."""

PROBE = """
import json, sys
from cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:
    code = exc.code
sys.stdout = sys.__stdout__
print("\\n" + json.dumps({"code": code, "modules": sorted(sys.modules)}))
"""


def _loaded(*argv: str) -> tuple[int, list[str]]:
    done = subprocess.run(
        [sys.executable, "-c", PROBE, *argv],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    return report["code"], report["modules"]


@pytest.mark.parametrize(
    ("argv", "expected_code"),
    [
        (["--help"], 0),
        (["diagram"], 0),
        (["inject", "--help"], 0),
        (["inject", "orderbook", "crash", "--url", "http://127.0.0.1:1", "--token", "t"], 1),
        (["inject", "orderbook", "ws_drop", "--url", "http://127.0.0.1:1", "--token", "t"], 2),
        (["run", "--help"], 0),
        (["halt", "--help"], 0),
        (["halt", "--url", "http://127.0.0.1:1", "--token", "t"], 2),
        (["resume", "--url", "http://127.0.0.1:1", "--token", "t"], 2),
    ],
    ids=[
        "help",
        "diagram",
        "inject-help",
        "inject-unreachable",
        "inject-invalid",
        "run-help",
        "halt-help",
        "halt-unreachable",
        "resume-unreachable",
    ],
)
def test_light_command_when_run_imports_no_heavy_module(
    argv: list[str], expected_code: int
) -> None:
    code, modules = _loaded(*argv)

    heavy = sorted(m for m in modules if m.split(".")[0] in HEAVY)
    allowed = {"pydantic", "pydantic_core", "pydantic_settings"} if argv[0] == "run" else set()
    assert code == expected_code
    assert [m for m in heavy if m.split(".")[0] not in allowed] == []


def test_main_when_command_unknown_exits_2() -> None:
    code, _ = _loaded("explode")

    assert code == 2


def test_main_when_no_command_prints_help_and_exits_2() -> None:
    code, modules = _loaded()

    assert code == 2
    assert not any(m.startswith(("app", "core", "actors")) for m in modules)


def test_main_when_ctrl_c_lands_while_the_command_loads_prints_one_line_and_exits_130(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """A Ctrl-C in the first instant interrupts an import of the sub-command's module: one
    line, no traceback. The module here is a real one whose import is interrupted the way a
    SIGINT interrupts it (KeyboardInterrupt out of the module's code)."""
    from cli import main as dispatcher

    (tmp_path / "slow_to_load.py").write_text("raise KeyboardInterrupt\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(dispatcher.COMMANDS, "probe", ("slow_to_load", "a command still loading"))

    code = dispatcher.main(["probe"])

    err = capsys.readouterr().err
    assert code == dispatcher.EXIT_INTERRUPTED == 130
    assert err == "kalshi-supervisor: probe interrupted while loading\n"


def test_main_when_started_with_sigint_ignored_lets_ctrl_c_interrupt_the_command() -> None:
    """A script's ``kalshi-supervisor run &`` starts with SIGINT ignored; ``run`` honours
    SIGINT once it serves, so the dispatcher honours it from the start (before the command's
    module loads), and a Ctrl-C while it loads is not lost."""
    probe = (
        "import signal\n"
        "from cli.main import main\n"
        "main(['diagram'])\n"
        "print(signal.getsignal(signal.SIGINT) is signal.default_int_handler)\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", probe],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[-1] == "True"
