"""The rendezvous file through which ``kalshi-supervisor inject`` finds a running supervisor.

The supervisor picks its control port (possibly a free one) and a fresh token at start-up;
the injector runs in another terminal and needs both. A file under ``$XDG_STATE_HOME`` is
the least surprising place for that hand-off, and because it holds the token it is treated
like an ssh private key: created 0600 inside a 0700 directory, and refused on read if group
or others can get at it, since a token others could have read no longer proves anything.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Mapping
from pathlib import Path
from typing import NamedTuple

STATE_DIR_NAME = "kalshi-supervisor"
STATE_FILE_NAME = "control.json"

_MAX_STATE_BYTES = 64 * 1024
"""The real file is ~150 bytes; a cap keeps a wrong ``--state-file`` from being slurped whole."""

_TOKEN_PATTERN = re.compile(r"[!-~]+")
"""Printable ASCII without spaces: what can travel in an ``Authorization`` header verbatim."""


class ConsoleStateError(RuntimeError):
    """The state file is missing or unusable; the message is one line and never has the token."""


class ConsoleEndpoint(NamedTuple):
    """How to reach one running supervisor's console server.

    A NamedTuple, not a dataclass: ``inject`` reads it on every call, and importing
    ``dataclasses`` (with ``inspect``) would cost that command a tenth of its budget.
    """

    url: str
    token: str
    pid: int

    def __repr__(self) -> str:
        """Hide the token: endpoints end up in logs and tracebacks."""
        return f"ConsoleEndpoint(url={self.url!r}, token='<hidden>', pid={self.pid})"


def new_token() -> str:
    """A fresh bearer token: 256 bits, URL-safe so it fits a header and a JSON string as-is.

    Tokens starting with ``-`` are redrawn (a negligible entropy cost): argparse would read
    ``--token -abc...`` as an unknown option, and users do paste tokens from the state file.
    """
    import secrets  # here, not at load: `inject` reads state files and never makes tokens

    while (token := secrets.token_urlsafe(32)).startswith("-"):
        pass
    return token


def is_valid_token(token: str) -> bool:
    """Whether ``token`` can be sent in an HTTP header without being altered or rejected."""
    return _TOKEN_PATTERN.fullmatch(token) is not None


def default_state_path(env: Mapping[str, str] = os.environ) -> Path:
    """``$XDG_STATE_HOME/kalshi-supervisor/control.json``, else under ``~/.local/state``.

    A relative ``XDG_STATE_HOME`` is ignored, as the XDG spec requires: it would make the
    supervisor and the injector disagree whenever they run from different directories.
    """
    xdg = env.get("XDG_STATE_HOME", "")
    if xdg and os.path.isabs(xdg):
        base = Path(xdg)
    else:
        home = env.get("HOME")
        base = (Path(home) if home else Path.home()) / ".local" / "state"
    return base / STATE_DIR_NAME / STATE_FILE_NAME


def write_state_file(path: Path, endpoint: ConsoleEndpoint) -> None:
    """Atomically publish ``endpoint`` at ``path`` (mode 0600; missing directories 0700).

    The temp file is created 0600 by ``os.open`` itself, so the token is never readable by
    others even for an instant, and ``os.replace`` means a concurrent ``inject`` sees either
    the old file or the new one, never a half-written one.
    """
    path = Path(path)
    document = {"url": endpoint.url, "token": endpoint.token, "pid": endpoint.pid}
    data = (json.dumps(document) + "\n").encode("utf-8")
    tmp = path.with_name(f".{path.name}.{os.urandom(8).hex()}.tmp")
    try:
        _make_private_dirs(path.parent)
        fd = os.open(
            tmp,
            os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC,
            0o600,
        )
        try:
            os.fchmod(fd, 0o600)  # exact mode whatever the umask
            view = memoryview(data)
            while view:
                view = view[os.write(fd, view) :]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise ConsoleStateError(f"cannot write state file {path}: {exc.strerror or exc}") from None
    _fsync_dir(path.parent)


def read_state_file(path: Path) -> ConsoleEndpoint:
    """Load the endpoint a running supervisor published, refusing a file others can read."""
    return _load(Path(path), enforce_private=True)


def remove_state_file(path: Path, pid: int) -> bool:
    """Remove ``path`` only if it still names ``pid``; returns whether it was removed.

    A second supervisor may have started since and overwritten the file; deleting it on
    our way out would strand that one's injectors. Permissions are not enforced here: a
    file naming our own pid is ours to clean up whatever its mode.
    """
    path = Path(path)
    try:
        endpoint = _load(path, enforce_private=False)
    except ConsoleStateError:
        return False
    if endpoint.pid != pid:
        return False
    try:
        path.unlink()
    except OSError:
        return False
    return True


def _load(path: Path, *, enforce_private: bool) -> ConsoleEndpoint:
    # Open first, then fstat the descriptor: checking the mode of the file actually read,
    # not of whatever the path pointed at a moment earlier.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise ConsoleStateError(f"no running supervisor found: {path} does not exist") from None
    except OSError as exc:
        raise ConsoleStateError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise ConsoleStateError(f"cannot read state file {path}: not a regular file")
        if enforce_private and info.st_mode & 0o077:
            mode = stat.S_IMODE(info.st_mode)
            raise ConsoleStateError(
                f"refusing state file {path}: permissions {mode:04o} are too open, "
                f"it holds a secret token (run: chmod 600 {path})"
            )
        with os.fdopen(fd, "rb", closefd=False) as stream:
            raw = stream.read(_MAX_STATE_BYTES + 1)
    except OSError as exc:
        raise ConsoleStateError(f"cannot read state file {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)
    return _parse(path, raw)


def _parse(path: Path, raw: bytes) -> ConsoleEndpoint:
    """Validate field by field so an error names the field, never echoes its value."""
    if len(raw) > _MAX_STATE_BYTES:
        raise ConsoleStateError(f"state file {path} is malformed: larger than {_MAX_STATE_BYTES}")
    try:
        document = json.loads(raw)
    except json.JSONDecodeError as exc:
        raise ConsoleStateError(
            f"state file {path} is malformed JSON: {exc.msg} at line {exc.lineno} "
            f"column {exc.colno}"
        ) from None
    except (ValueError, RecursionError):
        raise ConsoleStateError(f"state file {path} is malformed JSON") from None
    if not isinstance(document, dict):
        raise ConsoleStateError(f"state file {path} is malformed: expected a JSON object")
    url, token, pid = document.get("url"), document.get("token"), document.get("pid")
    if not isinstance(url, str) or not url.startswith(("http://", "https://")):
        raise ConsoleStateError(f"state file {path} is malformed: missing or invalid 'url'")
    if not isinstance(token, str) or not is_valid_token(token):
        raise ConsoleStateError(f"state file {path} is malformed: missing or invalid 'token'")
    if isinstance(pid, bool) or not isinstance(pid, int) or pid <= 0:
        raise ConsoleStateError(f"state file {path} is malformed: missing or invalid 'pid'")
    return ConsoleEndpoint(url=url, token=token, pid=pid)


def _make_private_dirs(directory: Path) -> None:
    """Create each missing level of ``directory`` as 0700, as the XDG spec asks.

    Only directories created here are chmod-ed: an existing one (``/tmp`` for a custom
    ``--state-file``) is not ours to tighten, and the file's own 0600 is what protects it.
    """
    missing: list[Path] = []
    current = directory
    while not current.exists():
        missing.append(current)
        if current.parent == current:
            break
        current = current.parent
    for level in reversed(missing):
        try:
            os.mkdir(level, 0o700)
        except FileExistsError:
            continue  # created concurrently by someone else; leave its mode alone
        os.chmod(level, 0o700)  # mkdir's mode is filtered by the umask


def _fsync_dir(directory: Path) -> None:
    """Make the rename durable; best effort, as some filesystems refuse fsync on dirs."""
    try:
        fd = os.open(directory, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


# -- several supervisors on one machine ------------------------------------------------------
def instance_path(path: Path, pid: int) -> Path:
    """``control.<pid>.json`` beside ``control.json``: each running supervisor's own copy."""
    path = Path(path)
    return path.with_name(f"{path.stem}.{pid}{path.suffix}")


def publish_endpoint(path: Path, endpoint: ConsoleEndpoint) -> None:
    """Publish ``endpoint`` as the current one (``path``) and as this pid's own copy.

    ``inject`` reads ``path``: the supervisor started last. The per-pid copies let
    :func:`withdraw_endpoint` hand ``path`` back to a supervisor still running when the
    latest one exits, instead of leaving ``inject`` with nothing to find.
    """
    write_state_file(instance_path(path, endpoint.pid), endpoint)
    write_state_file(path, endpoint)


def withdraw_endpoint(path: Path, pid: int) -> None:
    """Remove this pid's copy; if ``path`` names us, point it at another live supervisor
    (the most recently published) or remove it. Never touches another process's copy
    unless that process is gone."""
    path = Path(path)
    with contextlib.suppress(OSError):
        instance_path(path, pid).unlink()
    try:
        current = _load(path, enforce_private=False)
    except ConsoleStateError:
        return
    if current.pid != pid:
        return  # someone else's: not ours to touch
    survivor = _newest_live_instance(path)
    if survivor is None:
        remove_state_file(path, pid)
        return
    with contextlib.suppress(ConsoleStateError):
        write_state_file(path, survivor)


def _newest_live_instance(path: Path) -> ConsoleEndpoint | None:
    candidates: list[tuple[float, ConsoleEndpoint]] = []
    try:
        entries = list(path.parent.glob(f"{path.stem}.*{path.suffix}"))
    except OSError:
        return None
    for entry in entries:
        middle = entry.name[len(path.stem) + 1 : len(entry.name) - len(path.suffix)]
        if not middle.isdigit():
            continue
        try:
            endpoint = _load(entry, enforce_private=True)
            mtime = entry.stat().st_mtime
        except (ConsoleStateError, OSError):
            continue
        if _alive(endpoint.pid):
            candidates.append((mtime, endpoint))
        else:
            with contextlib.suppress(OSError):
                entry.unlink()  # a crashed supervisor's leftover
    return max(candidates, key=lambda c: c[0])[1] if candidates else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
