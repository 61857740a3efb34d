"""The one base every message derives from: frozen, and strict about its fields.

``frozen=True`` makes metadata impossible to update after the fact and ``extra="forbid"``
makes it impossible to smuggle another stage's fields in. Together they are why the
seed's bug (trading balances showing up in ORDERBOOK_CONNECT) cannot come back silently.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Message(BaseModel):
    """Base of every message, metadata record and event in the product."""

    model_config = ConfigDict(frozen=True, extra="forbid")
