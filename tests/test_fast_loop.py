"""The fast loop's one enforced rule (``tests/conftest.py``): a test that is not marked slow
cannot start a ``kalshi-supervisor`` server process; one-shot commands and ``--help`` it may."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import starts_a_server

SCRIPT = "/venv/bin/kalshi-supervisor"


@pytest.mark.parametrize(
    ("argv", "command"),
    [
        ([SCRIPT, "run", "--events", "-"], "run"),
        ([sys.executable, "-m", "cli.main", "exchange", "--markets", "3"], "exchange"),
        ([sys.executable, "-c", "from cli.main import main; main()", "exchange"], "exchange"),
        ((SCRIPT, "run"), "run"),
        ([SCRIPT, "run", "--help"], None),
        ([SCRIPT, "diagram"], None),
        ([SCRIPT, "halt", "--reason", "drill"], None),
        ([sys.executable, "-c", "print(1)", "run"], None),
        ([SCRIPT], None),
        ("kalshi-supervisor run", None),  # a shell string: not how the tests start processes
    ],
)
def test_starts_a_server_when_argv_given_names_the_serving_command(
    argv: list[str], command: str | None
) -> None:
    assert starts_a_server(argv) == command


def test_popen_when_unmarked_test_starts_a_server_is_refused_before_the_process_exists() -> None:
    # ``--no-such-flag``: were the guard gone, the process would exit 2 at once, not serve.
    argv = [sys.executable, "-m", "cli.main", "run", "--no-such-flag"]
    with pytest.raises(RuntimeError, match=r"starts kalshi-supervisor run .*mark the test slow"):
        subprocess.run(argv, capture_output=True, timeout=60, check=False)


def test_popen_when_unmarked_test_runs_a_one_shot_command_is_allowed() -> None:
    done = subprocess.run(
        [sys.executable, "-c", "import sys; print(len(sys.argv))", "run"],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == "2"
