"""One canonical digest of a book's levels, shared by the client book and the exchange's truth.

Equal digests mean equal books to the micro-dollar and the centi-contract, so a test can
compare a client's book with the exchange's in one assertion and print the difference
only when they disagree.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def book_digest(yes: Iterable[tuple[int, int]], no: Iterable[tuple[int, int]]) -> str:
    """SHA-256 over the sorted ``(price_micros, size_centi)`` bids of both sides (no-leg prices)."""
    hasher = hashlib.sha256()
    for tag, levels in ((b"Y", yes), (b"N", no)):
        hasher.update(tag)
        for price, size in sorted(levels):
            hasher.update(b"%d:%d;" % (price, size))
    return hasher.hexdigest()[:32]
