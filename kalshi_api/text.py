"""Text helpers: the project's one ``one_line``.

Why here: ``kalshi_api`` imports nothing of ours, so the lowest place every layer (and the
protocol library itself) can share one definition is inside it.
"""

from __future__ import annotations

ONE_LINE_LIMIT = 300


def one_line(text: object, limit: int | None = ONE_LINE_LIMIT) -> str:
    """Collapse any message to one bounded line for metadata, events, logs and terminals.

    Why: reasons travel into frozen metadata, JSON event lines and a person's terminal;
    a multi-line or megabyte exception text must never break any of them. ``limit`` None
    keeps the whole (flattened) text, for callers that bound it themselves.
    """
    flat = " ".join(str(text).split())
    return flat if limit is None or len(flat) <= limit else flat[: limit - 1] + "…"
