"""The console's :class:`~app.book_source.BookSource`, answered by the orderbook stage actor.

Every read is a pykka ``ask`` with a short timeout, so a hung or restarting stage makes the
console say so instead of stalling a request. The stage reads its books on the stream
thread (the books' only writer), so each answer is consistent.
"""

from __future__ import annotations

from typing import Any

import pykka

from actors.orderbook_connect import OrderbookConnectActor
from app.book_source import BooksUnavailable, NoOrderbookStage
from messages.base import Message
from messages.commands import BookDepth, BookTops, Query, StreamHealth

READ_TIMEOUT_SECONDS = 1.0
"""The page polls once a second: an answer later than that is worth less than an error."""


class StageBooks:
    """Reads books and stream health from whichever orderbook stage actor is running."""

    def __init__(self, timeout: float = READ_TIMEOUT_SECONDS) -> None:
        self.timeout = timeout

    def tops(self) -> dict[str, Any]:
        return self._ask(BookTops()).model_dump(mode="json")

    def depth(self, ticker: str) -> dict[str, Any] | None:
        reply = self._ask(BookDepth(ticker=ticker))
        return None if reply is None else reply.model_dump(mode="json")

    def health(self) -> dict[str, Any]:
        return self._ask(StreamHealth()).model_dump(mode="json")

    def _ask(self, query: Query) -> Any:
        refs = pykka.ActorRegistry.get_by_class(OrderbookConnectActor)
        if not refs:
            raise NoOrderbookStage()
        try:
            reply = refs[0].ask(query, timeout=self.timeout)
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
