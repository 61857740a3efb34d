"""The console's :class:`~app.book_source.BookSource`, answered by the orderbook stage actor.

Every read is a pykka ``ask`` with a short timeout, so a hung or restarting stage makes the
console say so instead of stalling a request. The stage reads its books on the stream
thread (the books' only writer), so each answer is consistent.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pykka

from actors.orderbook_connect import OrderbookConnectActor
from app.book_source import BooksUnavailable, NoOrderbookStage
from messages.base import Message
from messages.commands import BookLadders, BookTops, Query, StageOwner, StreamHealth

READ_TIMEOUT_SECONDS = 1.0
"""The page polls once a second: an answer later than that is worth less than an error."""


class StageBooks:
    """Reads books and stream health from the orderbook stage of one supervisor.

    ``owner`` gives that supervisor's actor URN (None while it is not running: no stage).
    The stage found is remembered until it stops, so a read is normally a single ``ask``.
    """

    def __init__(
        self,
        owner: Callable[[], str | None],
        timeout: float = READ_TIMEOUT_SECONDS,
    ) -> None:
        self.timeout = timeout
        self._owner = owner
        self._stage: pykka.ActorRef[Any] | None = None

    def stage(self) -> pykka.ActorRef[Any]:
        """The running orderbook stage actor of our supervisor, else ``NoOrderbookStage``."""
        stage = self._stage
        if stage is not None and stage.is_alive():
            return stage
        self._stage = None
        owner = self._owner()
        if owner is None:
            raise NoOrderbookStage()
        for ref in pykka.ActorRegistry.get_by_class(OrderbookConnectActor):
            try:
                if ref.ask(StageOwner(), timeout=self.timeout) != owner:
                    continue
            except (pykka.ActorDeadError, pykka.Timeout):
                continue
            self._stage = ref
            return ref
        raise NoOrderbookStage()

    def tops(self) -> dict[str, Any]:
        return self._ask(BookTops()).model_dump(mode="json")

    def depth(self, ticker: str) -> dict[str, Any] | None:
        reply = self._ask(BookLadders(ticker=ticker))
        return None if reply is None else reply.model_dump(mode="json")

    def health(self) -> dict[str, Any]:
        return self._ask(StreamHealth()).model_dump(mode="json")

    def _ask(self, query: Query) -> Any:
        stage = self.stage()
        try:
            reply = stage.ask(query, timeout=self.timeout)
        except pykka.ActorDeadError:
            raise NoOrderbookStage("the orderbook stage stopped while asked") from None
        except pykka.Timeout:
            raise BooksUnavailable(
                f"the orderbook stage did not answer within {self.timeout:g}s"
            ) from None
        except Exception as exc:  # the stage reports its own failure; we answer one line
            raise BooksUnavailable(f"the orderbook stage failed to answer: {exc}") from None
        if reply is not None and not isinstance(reply, Message):
            raise BooksUnavailable(f"the orderbook stage answered {type(reply).__name__}")
        return reply
