"""A top-of-book recorder: every change of a market's best YES bid or ask, as a CSV row.

Run it on the embedded exchange::

    kalshi-supervisor run --service examples/top_of_book.py:TopOfBookRecorder \
        --service-option top_of_book_recorder.path=tob.csv

Columns: ``ticker, time, yes_bid, yes_bid_size, yes_ask, yes_ask_size``. Prices are
dollars and sizes contracts, written as exact decimals from the book's integer units
(never through a float); an empty side is an empty cell. The first row per market is its
top of book when the recorder starts; after that a row is written only when the best
price or the size at it changed. Stale books (before a snapshot, during a gap repair)
are not recorded: their levels are not the exchange's.

Rows are buffered and flushed every ``flush_interval`` seconds (a timer) and on stop, so
a busy market costs a write call per change, not a disk flush.
"""

from __future__ import annotations

import csv
from datetime import UTC, datetime
from pathlib import Path
from typing import IO

from pydantic import Field

from actors.service import ServiceActor, ServiceOptions
from kalshi_api.book_changes import BookView
from kalshi_api.fixed_point import format_count, format_dollars
from messages.metadata import ReadyMetadata

HEADER = ("ticker", "time", "yes_bid", "yes_bid_size", "yes_ask", "yes_ask_size")
Top = tuple[str, str, str, str]


class TopOfBookOptions(ServiceOptions):
    path: Path
    """The CSV file: created with a header if new, else appended to (a restart loses no row)."""
    tickers: tuple[str, ...] | None = None
    """Markets to record; default every streamed market."""
    flush_interval: float = Field(default=0.2, gt=0, le=60)


class TopOfBookRecorder(ServiceActor):
    """Writes one CSV row per change of a market's best YES bid/ask (price or size)."""

    options_model = TopOfBookOptions
    service_name = "top_of_book_recorder"

    def setup(self) -> None:
        options: TopOfBookOptions = self.options
        options.path.parent.mkdir(parents=True, exist_ok=True)
        # Appended, never truncated: the supervisor restarts a failed service by calling
        # setup again, and the rows written before the failure must survive it. The header
        # goes only into a new (or empty) file.
        self._file: IO[str] = options.path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._file)
        if self._file.tell() == 0:
            self._writer.writerow(HEADER)
            self._file.flush()
        self._last: dict[str, Top] = {}
        self.rows = 0
        self.call_every(options.flush_interval, self._file.flush)

    def subscribed_tickers(self) -> tuple[str, ...] | None:
        return self.options.tickers

    def on_ready(self, metadata: ReadyMetadata) -> None:
        # Record where every market stands now, so the file starts from a known state.
        for ticker in self.options.tickers or self.markets:
            book = self.book(ticker)
            if book is not None:
                self.on_book_changed(ticker, book)

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        if book.stale:
            return
        top = top_of_book(book)
        if self._last.get(ticker) == top:
            return
        self._last[ticker] = top
        self._writer.writerow((ticker, datetime.now(UTC).isoformat(), *top))
        self.rows += 1

    def teardown(self) -> None:
        file = getattr(self, "_file", None)
        if file is not None:
            file.close()


def top_of_book(book: BookView) -> Top:
    """``(yes_bid, yes_bid_size, yes_ask, yes_ask_size)`` as exact decimal strings."""
    bid, ask = book.best_yes_bid(), book.best_yes_ask()
    return (
        "" if bid is None else format_dollars(bid[0]),
        "" if bid is None else format_count(bid[1]),
        "" if ask is None else format_dollars(ask[0]),
        "" if ask is None else format_count(ask[1]),
    )
