"""The base every published event derives from, on its own so that event modules (the
supervisor's ``messages.events``, trading's ``messages.trading_events``) can all derive from
it and ``messages.events`` can still name every one of them in its union."""

from __future__ import annotations

from datetime import UTC, datetime

from pydantic import Field

from messages.base import Message


def utc_now() -> datetime:
    return datetime.now(UTC)


class Event(Message):
    """Base of every published event."""

    timestamp: datetime = Field(default_factory=utc_now)
