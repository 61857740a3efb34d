"""Commands the supervisor sends to stage actors, and the supervisor's own control messages."""

from __future__ import annotations

from messages.base import Message


class Describe(Message):
    """Ask a stage for the metadata of entering its state (built from its own facts)."""


class Connect(Message):
    """Do this stage's work; reply with StageSucceeded or StageFailed carrying ``generation``."""

    generation: int


class RunSync(Message):
    """Ask the sync stage for another sync (the periodic update syncs while READY)."""

    generation: int


class RefreshMarkets(Message):
    """Ask the orderbook stage to re-discover its markets (discovery mode, while READY):
    newly listed open markets are added, ones no longer trading are dropped."""

    generation: int


class RetryNow(Message):
    """The exchange is back from a pause: retry any dropped connection now, backoff reset.

    Told to every running stage when an exchange-scope pause ends; a stage with nothing to
    reconnect ignores it. Why: a stream's backoff grew through the pause's refused upgrades,
    and READY should follow the resume within a second or two, not after that backoff.
    """


class Report(Message):
    """Ask the orderbook stage for its current metrics (an ``OrderbookReport``)."""


class BookDigests(Message):
    """Ask the orderbook stage for every book's digest, after all frames received so far.

    Tests and operators compare these with the exchange's truth; the stage answers only
    after a round trip on the socket, so nothing already sent is still in flight.
    """

    timeout: float = 5.0


class Ping(Message):
    """Liveness probe; a live actor answers ``True`` at once."""


class Shutdown(Message):
    """Stop everything in reverse start order and enter SHUTDOWN."""

    reason: str = "requested"


class Query(Message):
    """A read-only question to a stage: answered at once, never slowed by an injected fault.

    The console asks these every second; they must neither consume a ``slow`` fault meant
    for the stage's work nor fail the stage (an unknown name is answered with None).
    """


class StageOwner(Query):
    """Ask a stage which supervisor started it (its parent's actor URN, a ``str``).

    Several supervisors can run in one process (tests do); a reader finds *its* stage by
    this, not by the first actor of the class in pykka's registry.
    """


class BookTops(Query):
    """Ask the orderbook stage for every book's top of book (a ``BookTopsReport``)."""


class BookLadders(Query):
    """Ask the orderbook stage for one book's ladders (a ``BookDepthReport``, None if unknown)."""

    ticker: str


class StreamHealth(Query):
    """Ask the orderbook stage for its stream's counters and last-frame age."""
