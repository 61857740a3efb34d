"""Text helpers for every layer above ``messages``: ``one_line`` is defined once, in
``kalshi_api.text`` (the protocol library imports nothing of ours, so it cannot import it
from here); this module is where the layers find it."""

from __future__ import annotations

from kalshi_api.text import ONE_LINE_LIMIT, one_line

__all__ = ["ONE_LINE_LIMIT", "one_line"]
