"""What the console server needs from the books: tops, depth and stream health, as JSON.

The console server serves pages and sockets and knows nothing of actors; the handle gives
it a :class:`BookSource` (``app.stage_books.StageBooks``) that asks the orderbook stage.
Kept apart so the server (and its tests) depend on this small contract only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol


class BooksUnavailable(LookupError):
    """No answer about books: no orderbook stage runs, or it did not answer in time.

    ``status`` is the HTTP status the console answers with; the message is one line.
    """

    def __init__(self, message: str, status: int = 503) -> None:
        super().__init__(message)
        self.status = status


class NoOrderbookStage(BooksUnavailable):
    """Nothing to read: the orderbook stage is not running (stopped, restarting, not built)."""

    def __init__(self, message: str = "no orderbook stage is running") -> None:
        super().__init__(message, 503)


class BookSource(Protocol):
    """Blocking reads (each bounded by a timeout); called from a worker thread."""

    def tops(self) -> Mapping[str, Any]:
        """``{"books": [...]}``, each a ``TopOfBook`` as JSON; raises ``BooksUnavailable``."""
        ...

    def depth(self, ticker: str) -> Mapping[str, Any] | None:
        """A ``BookDepthReport`` as JSON, None for a ticker the stream does not carry."""
        ...

    def health(self) -> Mapping[str, Any]:
        """A ``StreamHealthReport`` as JSON; raises ``BooksUnavailable``."""
        ...
