"""A market's price grid (``price_ranges``): which YES prices an order may carry.

Why: an off-grid price is refused with 400 ``invalid_price`` (protocol §8.3), and the grids
are no longer one cent everywhere: four-decimal ticks at the edges of ``center_*``
structures, a uniform $0.0001 on combos (§7.1). Checking before sending spends no write
token on an order the exchange would refuse; snapping is the caller's decision, so this
module only answers "is it on the grid".
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
            start <= price <= end and (price - start) % step == 0 for start, end, step in self.bands
        )
