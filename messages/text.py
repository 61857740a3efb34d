"""Text helpers shared by every layer above ``messages`` (it is the bottom layer)."""

from __future__ import annotations

ONE_LINE_LIMIT = 300


def one_line(text: object, limit: int = ONE_LINE_LIMIT) -> str:
    """Collapse any message to one bounded line for metadata, events, logs and terminals.

    Why: reasons travel into frozen metadata, JSON event lines and a person's terminal;
    a multi-line or megabyte exception text must never break any of them.
    """
    flat = " ".join(str(text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "…"
