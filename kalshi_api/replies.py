"""Reply correlation for Kalshi WebSocket commands: command id -> what we are waiting for.

Why its own module: every command a client sends carries an ``id`` and the exchange echoes it
on the reply (``subscribed``, ``ok``, ``error``...). What a reply *means* depends on which
command it answers, so the subscription core records each command as a :class:`Pending`
and looks it up when the reply arrives. Keeping the table apart keeps the id discipline
(ids strictly increasing for the life of the client, never reused across reconnects, so a
late reply from an old session can never be mistaken for a new one) in one small place.
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from dataclasses import dataclass
from enum import Enum

__all__ = ["CommandKind", "Pending", "PendingReplies"]


class CommandKind(Enum):
    """What a sent command was for, which decides how its reply is treated."""

    SUBSCRIBE = "subscribe"
    GET_SNAPSHOT = "get_snapshot"
    UNSUBSCRIBE = "unsubscribe"
    BARRIER = "barrier"
    LIFECYCLE = "lifecycle"


@dataclass(frozen=True, slots=True)
class Pending:
    """A command we sent and the reply we expect.

    ``tickers`` are the markets a ``subscribe`` asked for, ``sid`` the subscription a
    ``get_snapshot`` or ``unsubscribe`` addressed, ``token`` the opaque handle of whoever
    waits for a barrier (released when the reply, or an error for it, arrives).
    """

    kind: CommandKind
    tickers: tuple[str, ...] = ()
    sid: int = 0
    token: Hashable | None = None


class PendingReplies:
    """Command ids and the commands still waiting for a reply (bounded by what we sent).

    Entries leave on their reply or when the session ends (:meth:`clear`); an exchange that
    never replies cannot grow the table beyond the commands we chose to send.
    """

    __slots__ = ("_ids", "_next_id", "_pending")

    def __init__(self, ids: Callable[[], int] | None = None) -> None:
        """``ids`` hands out command ids when several clients share one socket (the
        transport's counter, so no two clients ever send the same id); by default this
        table counts its own from 1."""
        self._ids = ids
        self._next_id = 1
        self._pending: dict[int, Pending] = {}

    def allocate(self) -> int:
        """A fresh command id (every command needs one, awaited or not)."""
        if self._ids is not None:
            return self._ids()
        command_id = self._next_id
        self._next_id += 1
        return command_id

    def expect(self, command_id: int, pending: Pending) -> None:
        """Record that ``command_id`` awaits a reply meaning ``pending``."""
        self._pending[command_id] = pending

    def peek(self, command_id: object) -> Pending | None:
        """The pending command ``command_id`` answers, if any (a non-int id never matches)."""
        return self._pending.get(command_id) if type(command_id) is int else None

    def take(self, command_id: object) -> Pending | None:
        """Remove and return the pending command ``command_id`` answers, if any."""
        return self._pending.pop(command_id, None) if type(command_id) is int else None

    def __contains__(self, command_id: object) -> bool:
        return command_id in self._pending

    def __len__(self) -> int:
        return len(self._pending)

    def clear(self) -> None:
        """Forget every pending command (the session they were sent on has ended)."""
        self._pending.clear()
