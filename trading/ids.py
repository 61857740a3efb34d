"""``client_order_id``s that are unique forever: never reused, even across restarts.

Kalshi spends an id forever, even on a cancelled or FOK-killed order, and a reused id gets
409 ``order_already_exists`` (§8.4). Peers lost money both ways: ids minted fresh on retry
doubled positions; ids derived from (market, window) were spent by kills and refused 57 of
69 later orders. So an id here is ``{prefix}-{run}-{seq}``:

- ``run``: 16 random hex digits per process (64 bits from ``secrets``), so two processes,
  or a process whose state file was lost, cannot collide except by a 2^-64 chance;
- ``seq``: a counter that, with a state file, never goes back across restarts. The file
  holds a high-water mark; a block of ``block`` numbers is reserved (written atomically,
  mode 0600, fsynced) **before** any number in it is handed out, so a crash loses at most
  unused numbers, never reuses one.

Nothing in the id comes from the market or the time window. The whole id stays inside
FIX's ClOrdID alphabet and ≤ 64 chars (``messages.orders.CLIENT_ORDER_ID_PATTERN``).

A corrupt or unreadable state file is refused with ``IdStateError`` (one line naming the
file), never silently replaced: it means something else wrote there, and an operator
should look. Refusing is safe: cancels and the kill switch need no new ids. Moving the
file away starts afresh, which is also safe, because ``run`` is random.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import threading
from pathlib import Path

from messages.text import one_line

PREFIX_PATTERN = re.compile(r"^[A-Za-z0-9]{1,16}$")
DEFAULT_PREFIX = "ks"
STATE_VERSION = 1
DEFAULT_BLOCK = 1000
MAX_SEQ = 10**18
"""Far beyond any real use; keeps ``seq`` ≤ 19 digits so every id fits in 64 chars."""


class IdStateError(Exception):
    """The id state file cannot be trusted or written; the message is one line."""


class ClientOrderIdAllocator:
    """Hands out ``client_order_id``s; thread-safe; persists its high-water mark if given a path."""

    def __init__(
        self,
        state_path: Path | str | None = None,
        *,
        prefix: str = DEFAULT_PREFIX,
        block: int = DEFAULT_BLOCK,
        run_id: str | None = None,
    ) -> None:
        if not PREFIX_PATTERN.fullmatch(prefix):
            raise ValueError(f"id prefix {prefix!r} must be 1-16 ASCII letters or digits")
        if block < 1:
            raise ValueError("block must be ≥ 1")
        self._run = run_id if run_id is not None else secrets.token_hex(8)
        if not re.fullmatch(r"[0-9a-f]{1,16}", self._run):
            raise ValueError("run_id must be 1-16 lowercase hex digits")
        self._prefix = prefix
        self._block = block
        self._path = Path(state_path) if state_path is not None else None
        self._lock = threading.Lock()
        self._next = load_high_water(self._path) if self._path is not None else 0
        self._reserved = self._next  # nothing handed out before the first reservation

    @property
    def run_id(self) -> str:
        return self._run

    @property
    def high_water(self) -> int:
        """The first number not yet reserved (what the state file says)."""
        return self._reserved

    def next_id(self) -> str:
        """A new id, never handed out before by this or any earlier process using the file."""
        with self._lock:
            if self._next >= self._reserved:
                self._reserve(self._next + self._block)
            seq = self._next
            self._next += 1
        # ≤ 16 + 1 + 16 + 1 + 19 chars: always within CLIENT_ORDER_ID_MAX and FIX's alphabet.
        return f"{self._prefix}-{self._run}-{seq}"

    def skip_past(self, client_order_id: str | None) -> bool:
        """Never hand out ``client_order_id`` (an adopted order's): if it has this
        allocator's prefix and run, the counter moves past its number. True if it moved.

        Why: an adopted order keeps its id; an id handed out again would be refused 409 by
        the exchange, or worse, be taken for the adopted order."""
        match = _ID_PATTERN.fullmatch(client_order_id or "")
        if match is None or match.group(1) != self._prefix or match.group(2) != self._run:
            return False
        seq = int(match.group(3))
        with self._lock:
            if seq < self._next:
                return False
            if seq + 1 > self._reserved:
                self._reserve(seq + 1)
            self._next = seq + 1
        return True

    def _reserve(self, upto: int) -> None:
        if upto > MAX_SEQ:
            raise IdStateError("client_order_id counter exhausted")
        if self._path is not None:
            write_high_water(self._path, upto)
        self._reserved = upto


def is_ours(client_order_id: str | None, *, prefix: str, high_water: int | None = None) -> bool:
    """Whether an order's ``client_order_id`` was handed out by this installation's allocator.

    Why this test: at startup, resting orders are sorted into ours (an earlier run's, or this
    run's before a stage restart: never cancelled behind the gateway's back) and unknown
    ones (the startup policy's business). Ours is ``{prefix}-{run}-{seq}`` with ``seq``
    below the state file's high-water mark (every number handed out was reserved there
    first); with no state file (``high_water`` None) the prefix and shape decide alone.
    """
    if not client_order_id or not PREFIX_PATTERN.fullmatch(prefix):
        return False
    match = _ID_PATTERN.fullmatch(client_order_id)
    if match is None or match.group(1) != prefix:
        return False
    return high_water is None or int(match.group(3)) < high_water


_ID_PATTERN = re.compile(r"^([A-Za-z0-9]{1,16})-([0-9a-f]{1,16})-([0-9]{1,19})$")


def load_high_water(path: Path) -> int:
    """The persisted high-water mark; 0 if the file does not exist; ``IdStateError`` if bad."""
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return 0
    except OSError as exc:
        raise IdStateError(one_line(f"cannot read id state {path}: {exc}")) from exc
    try:
        data = json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise IdStateError(
            one_line(f"id state {path} is not JSON ({exc}); move it away to start afresh")
        ) from exc
    if (
        not isinstance(data, dict)
        or data.get("version") != STATE_VERSION
        or type(data.get("high_water")) is not int
        or not 0 <= data["high_water"] <= MAX_SEQ
    ):
        raise IdStateError(
            one_line(
                f"id state {path} is not a version {STATE_VERSION} high-water record; "
                "move it away to start afresh"
            )
        )
    return data["high_water"]


def write_high_water(path: Path, high_water: int) -> None:
    """Replace the state file atomically: write a 0600 temp file, fsync, rename, fsync dir."""
    body = json.dumps({"version": STATE_VERSION, "high_water": high_water}).encode()
    tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.write(fd, body)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        tmp.unlink(missing_ok=True)
        raise IdStateError(one_line(f"cannot write id state {path}: {exc}")) from exc
