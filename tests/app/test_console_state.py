"""The control state file: where it lives, who may read it, and that it is never half-written."""

from __future__ import annotations

import json
import os
import stat
from collections.abc import Iterator
from pathlib import Path

import pytest

from app.console_state import (
    ConsoleEndpoint,
    ConsoleStateError,
    default_state_path,
    new_token,
    read_state_file,
    remove_state_file,
    write_state_file,
)
from kalshi_sim.exchange import EmbeddedExchange

TOKEN = "tok-" + "s3cret" * 7
ENDPOINT = ConsoleEndpoint(url="http://127.0.0.1:8005", token=TOKEN, pid=4242)


@pytest.fixture
def permissive_umask() -> Iterator[None]:
    """Prove modes come from the code, not from a friendly default umask."""
    previous = os.umask(0)
    try:
        yield
    finally:
        os.umask(previous)


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _assert_one_line_without_token(error: ConsoleStateError) -> str:
    message = str(error)
    assert "\n" not in message
    assert TOKEN not in message
    return message


def test_default_state_path_when_xdg_state_home_is_set_uses_it() -> None:
    env = {"XDG_STATE_HOME": "/var/xdg", "HOME": "/home/u"}

    assert default_state_path(env) == Path("/var/xdg/kalshi-supervisor/control.json")


@pytest.mark.parametrize("xdg", [None, "", "relative/dir"], ids=["unset", "empty", "relative"])
def test_default_state_path_when_xdg_state_home_is_unusable_falls_back_to_home(
    xdg: str | None,
) -> None:
    env = {"HOME": "/home/u"} if xdg is None else {"HOME": "/home/u", "XDG_STATE_HOME": xdg}

    assert default_state_path(env) == Path("/home/u/.local/state/kalshi-supervisor/control.json")


def test_write_state_file_when_directories_are_missing_creates_them_0700_and_file_0600(
    tmp_path: Path, permissive_umask: None
) -> None:
    path = tmp_path / "state" / "kalshi-supervisor" / "control.json"

    write_state_file(path, ENDPOINT)

    assert _mode(path) == 0o600
    assert _mode(path.parent) == 0o700
    assert _mode(path.parent.parent) == 0o700
    assert read_state_file(path) == ENDPOINT


def test_write_state_file_when_directory_exists_leaves_its_mode_alone(
    tmp_path: Path, permissive_umask: None
) -> None:
    shared = tmp_path / "shared"
    shared.mkdir(mode=0o755)

    write_state_file(shared / "control.json", ENDPOINT)

    assert _mode(shared) == 0o755
    assert _mode(shared / "control.json") == 0o600


def test_write_state_file_when_replacing_swaps_whole_file_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.json"
    write_state_file(path, ENDPOINT)
    old_inode = path.stat().st_ino
    newer = ConsoleEndpoint(url="http://127.0.0.1:9999", token=new_token(), pid=7)

    with path.open("rb") as reader_of_old:
        write_state_file(path, newer)
        old_content = reader_of_old.read()

    assert json.loads(old_content)["pid"] == ENDPOINT.pid  # the old file was never rewritten
    assert path.stat().st_ino != old_inode  # the new one arrived by rename
    assert read_state_file(path) == newer
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]


def test_write_state_file_when_existing_file_is_too_open_replaces_it_with_0600(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.json"
    path.write_text("{}")
    path.chmod(0o644)

    write_state_file(path, ENDPOINT)

    assert _mode(path) == 0o600


def test_write_state_file_when_rename_fails_raises_one_line_error_and_leaves_no_temp(
    tmp_path: Path,
) -> None:
    path = tmp_path / "control.json"
    path.mkdir()  # a directory where the file should go: os.replace must fail

    with pytest.raises(ConsoleStateError) as caught:
        write_state_file(path, ENDPOINT)

    assert "cannot write state file" in _assert_one_line_without_token(caught.value)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["control.json"]


def test_read_state_file_when_missing_raises_no_running_supervisor(tmp_path: Path) -> None:
    path = tmp_path / "control.json"

    with pytest.raises(ConsoleStateError) as caught:
        read_state_file(path)

    assert str(caught.value) == f"no running supervisor found: {path} does not exist"


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o660, 0o700 | 0o007])
def test_read_state_file_when_group_or_other_can_access_refuses(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "control.json"
    write_state_file(path, ENDPOINT)
    path.chmod(mode)

    with pytest.raises(ConsoleStateError) as caught:
        read_state_file(path)

    message = _assert_one_line_without_token(caught.value)
    assert "too open" in message
    assert f"{mode:04o}" in message


def test_read_state_file_when_owner_read_only_accepts(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    write_state_file(path, ENDPOINT)
    path.chmod(0o400)

    assert read_state_file(path) == ENDPOINT


def test_read_state_file_when_path_is_a_directory_raises_cannot_read(tmp_path: Path) -> None:
    with pytest.raises(ConsoleStateError) as caught:
        read_state_file(tmp_path)

    assert "cannot read state file" in _assert_one_line_without_token(caught.value)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (b'{"url": "http://127.0.0.1:1", "token": "' + TOKEN.encode() + b'"', "malformed JSON"),
        (b"\xff\xfe not utf8", "malformed JSON"),
        (b"[]", "expected a JSON object"),
        (b'{"url": "http://127.0.0.1:1", "pid": 1}', "'token'"),
        (b'{"url": "http://127.0.0.1:1", "token": "has space", "pid": 1}', "'token'"),
        (b'{"token": "' + TOKEN.encode() + b'", "pid": 1}', "'url'"),
        (b'{"url": "http://127.0.0.1:1", "token": "' + TOKEN.encode() + b'"}', "'pid'"),
        (
            b'{"url": "http://127.0.0.1:1", "token": "' + TOKEN.encode() + b'", "pid": true}',
            "'pid'",
        ),
    ],
    ids=[
        "truncated",
        "not-utf8",
        "array",
        "no-token",
        "bad-token",
        "no-url",
        "no-pid",
        "bool-pid",
    ],
)
def test_read_state_file_when_content_is_malformed_raises_one_line_without_token(
    tmp_path: Path, content: bytes, expected: str
) -> None:
    path = tmp_path / "control.json"
    path.write_bytes(content)
    path.chmod(0o600)

    with pytest.raises(ConsoleStateError) as caught:
        read_state_file(path)

    assert expected in _assert_one_line_without_token(caught.value)


def test_remove_state_file_when_pid_matches_removes_it(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    write_state_file(path, ENDPOINT)

    assert remove_state_file(path, ENDPOINT.pid) is True
    assert not path.exists()


def test_remove_state_file_when_another_supervisor_owns_it_keeps_it(tmp_path: Path) -> None:
    path = tmp_path / "control.json"
    write_state_file(path, ENDPOINT)

    assert remove_state_file(path, ENDPOINT.pid + 1) is False
    assert read_state_file(path) == ENDPOINT


def test_remove_state_file_when_missing_returns_false(tmp_path: Path) -> None:
    assert remove_state_file(tmp_path / "control.json", 1) is False


def test_repr_when_endpoint_holds_token_hides_it() -> None:
    assert TOKEN not in repr(ENDPOINT)
    assert TOKEN not in str(ENDPOINT)
    assert "4242" in repr(ENDPOINT)


def test_new_token_when_called_twice_returns_distinct_url_safe_tokens() -> None:
    first, second = new_token(), new_token()

    assert first != second
    assert len(first) >= 43
    assert set(first) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_new_token_when_drawn_many_times_never_starts_with_a_dash() -> None:
    # A leading "-" would make `inject --token <token>` parse as an option.
    assert not any(new_token().startswith("-") for _ in range(2000))


# -- several supervisors sharing one state directory -----------------------------------------
def test_withdraw_when_the_latest_exits_hands_the_file_back_to_a_live_supervisor(
    tmp_path: Path,
) -> None:
    from app.console_state import instance_path, publish_endpoint, withdraw_endpoint

    path = tmp_path / "state" / "control.json"
    live = ConsoleEndpoint(url="http://127.0.0.1:1", token=new_token(), pid=os.getpid())
    gone_pid = _dead_pid()
    latest = ConsoleEndpoint(url="http://127.0.0.1:2", token=new_token(), pid=gone_pid)
    publish_endpoint(path, live)
    publish_endpoint(path, latest)
    assert read_state_file(path).pid == gone_pid

    withdraw_endpoint(path, gone_pid)

    assert read_state_file(path) == live
    assert not instance_path(path, gone_pid).exists()
    withdraw_endpoint(path, os.getpid())
    assert not path.exists()
    assert list(path.parent.iterdir()) == []


def test_withdraw_when_the_file_names_another_pid_leaves_it_alone(tmp_path: Path) -> None:
    from app.console_state import publish_endpoint, withdraw_endpoint

    path = tmp_path / "control.json"
    other = ConsoleEndpoint(url="http://127.0.0.1:3", token=new_token(), pid=os.getpid())
    publish_endpoint(path, other)

    withdraw_endpoint(path, _dead_pid())

    assert read_state_file(path) == other


def _dead_pid() -> int:
    """A pid that no running process has (a child that has exited and been reaped)."""
    import subprocess
    import sys

    child = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    return int(child.stdout)


def test_supervisor_start_when_the_supervisor_cannot_start_leaves_no_state_file(
    exchange: EmbeddedExchange, tmp_path: Path
) -> None:
    """The endpoint is published before the supervisor actor starts; when that start fails,
    nothing may point ``inject`` at a supervisor that never ran (issue 17)."""
    from app.handle import Supervisor
    from kalshi_api.auth import load_signer
    from tests.harness import make_config

    path = tmp_path / "state" / "control.json"
    signer = load_signer(exchange.key_id, exchange.private_key_path)
    supervisor = Supervisor(make_config(exchange), signer, stages=(), state_file=path)
    with pytest.raises(ValueError, match="at least one stage"):
        supervisor.start()
    assert not path.exists()
    assert list(path.parent.iterdir()) == []  # no per-process copy either
