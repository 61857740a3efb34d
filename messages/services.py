"""Messages between the supervisor and its services, and the events services cause.

A *service* is an actor that lives while the system is READY (a recorder, an alert, a
strategy). The supervisor tells it what it needs to know with these frozen messages
(``tell`` only: a service never blocks the supervisor), and reports what happens to it
with the four ``service_*`` events.
"""

from __future__ import annotations

from pydantic import Field

from messages.base import Message
from messages.events import (
    Event,
    ServiceDropped,
    ServiceFailureReported,
    ServiceRestarted,
    ServiceStarted,
)
from messages.metadata import ReadyMetadata
from messages.results import SyncCompleted
from messages.states import State

SERVICE_NAME_PATTERN = r"^[a-z][a-z0-9_]{0,31}$"
"""Same shape as a fault target: a service name is what ``inject NAME`` takes."""

__all__ = [
    "BOOKS_CHANGED",
    "SERVICE_NAME_PATTERN",
    "AccountChanged",
    "BooksChanged",
    "EventNotice",
    "ServiceDropped",
    "ServiceEvent",
    "ServiceFailureReported",
    "ServiceHealth",
    "ServiceRestarted",
    "ServiceStarted",
    "SystemNotReady",
    "SystemReady",
]


# -- supervisor -> service -------------------------------------------------------------------
class SystemReady(Message):
    """The system is READY (again); ``metadata`` is that READY transition's metadata."""

    metadata: ReadyMetadata


class SystemNotReady(Message):
    """The system left READY for ``state``; the service lives on and is told when it is back."""

    state: State
    reason: str


class AccountChanged(Message):
    """A sync completed: the account as Kalshi reports it, and what changed since the last."""

    sync: SyncCompleted


class EventNotice(Message):
    """Any supervisor event, forwarded to every service (its ``on_event`` hook)."""

    event: Event


class BooksChanged(Message):
    """A nudge: some subscribed books changed. Carries nothing, so one shared instance is
    told every time (no allocation per notification); the service drains its pending set."""


BOOKS_CHANGED = BooksChanged()


# -- service -> supervisor (a failure is ``messages.results.ChildFailed``, as for stages) ------
class ServiceHealth(Message):
    """What a service says about itself when asked (and the ``bad_metadata`` fault corrupts)."""

    service: str = Field(pattern=SERVICE_NAME_PATTERN)
    generation: int
    notifications: int = Field(ge=0)
    coalesced: int = Field(ge=0)


# -- events (defined with the others, so they are part of ``SupervisorEvent``) --------------
ServiceEvent = ServiceStarted | ServiceFailureReported | ServiceRestarted | ServiceDropped
