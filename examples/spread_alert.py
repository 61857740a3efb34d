"""A spread alert: logs when a market's YES spread crosses a threshold, in either direction.

Run it on the embedded exchange::

    kalshi-supervisor run --service examples/spread_alert.py:SpreadAlert \
        --service-option spread_alert.threshold=0.05

The spread is best YES ask minus best YES bid (the ask implied by the best NO bid), in
exact decimal dollars. A market whose book has an empty side has no spread and counts as
*wide* (nobody to trade with). One log line per crossing, never one per update::

    spread_alert KXFED-26NOV24-T4.25 WIDE spread=0.0800 threshold=0.0500
    spread_alert KXFED-26NOV24-T4.25 NARROW spread=0.0300 threshold=0.0500

The first observation of each market logs its side too, so the log alone says where
every market stands. While the system is not READY alerts pause (books may be stale);
on READY again every market is re-checked.
"""

from __future__ import annotations

import logging
from decimal import Decimal

from pydantic import Field

from actors.service import ServiceActor, ServiceOptions
from kalshi_api.book_changes import BookView
from kalshi_api.fixed_point import MICROS_PER_DOLLAR, format_dollars
from messages.metadata import ReadyMetadata
from messages.states import State

logger = logging.getLogger("spread_alert")


class SpreadAlertOptions(ServiceOptions):
    threshold: Decimal = Field(default=Decimal("0.05"), gt=0, lt=1, decimal_places=6)
    """Dollars: a spread strictly above it is WIDE, at or below it NARROW."""
    tickers: tuple[str, ...] | None = None
    """Markets to watch; default every streamed market."""


class SpreadAlert(ServiceActor):
    """Logs ``WIDE``/``NARROW`` when a market's spread crosses ``threshold``."""

    options_model = SpreadAlertOptions
    service_name = "spread_alert"

    def setup(self) -> None:
        self._threshold = int(self.options.threshold * MICROS_PER_DOLLAR)
        self._wide: dict[str, bool] = {}
        self.alerts = 0

    def subscribed_tickers(self) -> tuple[str, ...] | None:
        return self.options.tickers

    def on_ready(self, metadata: ReadyMetadata) -> None:
        for ticker in self.options.tickers or self.markets:
            book = self.book(ticker)
            if book is not None:
                self.on_book_changed(ticker, book)

    def on_not_ready(self, state: State, reason: str) -> None:
        logger.info("spread_alert paused: system is %s (%s)", state.name, reason)

    def on_book_changed(self, ticker: str, book: BookView) -> None:
        if book.stale or not self.ready:
            return
        spread = book.spread()
        wide = spread is None or spread > self._threshold
        if self._wide.get(ticker) is wide:
            return
        self._wide[ticker] = wide
        self.alerts += 1
        logger.warning(
            "spread_alert %s %s spread=%s threshold=%s",
            ticker,
            "WIDE" if wide else "NARROW",
            "none" if spread is None else format_dollars(spread),
            format_dollars(self._threshold),
        )
