"""A market's price grid (``price_ranges``): which YES prices an order may carry.

Why: an off-grid price is refused with 400 ``invalid_price`` (protocol §8.3), and the grids
are no longer one cent everywhere: four-decimal ticks at the edges of ``center_*``
structures, a uniform $0.0001 on combos (§7.1). Checking before sending spends no write
token on an order the exchange would refuse; snapping is the caller's decision, so this
module only answers "is it on the grid" and "what are the nearest grid prices".
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from decimal import Decimal
from typing import Protocol

__all__ = ["PriceGrid"]


class _Range(Protocol):
    @property
    def start(self) -> Decimal: ...
    @property
    def end(self) -> Decimal: ...
    @property
    def step(self) -> Decimal: ...


@dataclass(frozen=True, slots=True)
class PriceGrid:
    """Bands ``(start, end, step)``: prices ``start, start+step, ... <= end`` are valid."""

    bands: tuple[tuple[Decimal, Decimal, Decimal], ...]

    @classmethod
    def of(cls, ranges: Iterable[_Range]) -> PriceGrid:
        """From a market's ``price_ranges`` (``kalshi_api.models.PriceRange`` or alike)."""
        bands = []
        for band in ranges:
            if band.step <= 0 or band.end < band.start:
                raise ValueError(f"bad price range {band.start}-{band.end} step {band.step}")
            bands.append((band.start, band.end, band.step))
        return cls(tuple(sorted(bands)))

    def contains(self, price: Decimal) -> bool:
        """Whether ``price`` (a YES price) is one of the grid's prices."""
        return any(
            start <= price <= end and (price - start) % step == 0
            for start, end, step in self.bands
        )

    def neighbours(self, price: Decimal) -> tuple[Decimal | None, Decimal | None]:
        """The grid prices just below and just above ``price`` (``price`` itself if on it)."""
        below: Decimal | None = None
        above: Decimal | None = None
        for start, end, step in self.bands:
            if price < start:
                candidate_above = start
                candidate_below = None
            elif price > end:
                candidate_below = start + ((end - start) // step) * step
                candidate_above = None
            else:
                low = start + ((price - start) // step) * step
                candidate_below = low
                candidate_above = low if low == price else min(low + step, end)
                if candidate_above < price:
                    candidate_above = None
            if candidate_below is not None and (below is None or candidate_below > below):
                below = candidate_below
            if candidate_above is not None and (above is None or candidate_above < above):
                above = candidate_above
        return below, above
