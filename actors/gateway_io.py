"""The order gateway's REST I/O, done on threads of its own so the actor never blocks.

Why threads: a write may be held by the exchange for seconds (a timeout, a slow host) and
a halt loops until nothing of ours rests; an actor blocked on either would miss its
liveness pings and be restarted in the middle of an order. So the actor decides and
these threads talk: each job's result comes back to the actor as an ``IoDone`` message.

Each thread has its own REST client (``OrderApi`` is not shared between threads); all of
them share one ``WritePacer`` sized from ``/account/limits``, so together they stay inside
the account's write bucket.

The two loops that must not stop half way live here as plain functions of an ``OrderApi``:
``resolve_unknown`` (an outcome-unknown create: look it up by its ``client_order_id``,
resend the very same request only when the exchange's data provably covers the write and
still shows nothing; never a new id) and ``run_halt`` (cancel-all, then read and cancel
by id until none of ours rest).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from actors.gateway_config import GatewayConfig
from actors.gateway_facts import from_rest_fill, from_rest_order
from actors.gateway_messages import IoDone
from kalshi_api.account_limits import (
    get_account_limits,
    get_endpoint_costs,
    get_user_data_timestamp,
)
from kalshi_api.errors import (
    DuplicateOrderError,
    KalshiError,
    OutcomeUnknownError,
)
from kalshi_api.order_groups import OrderGroupApi
from kalshi_api.order_models import CancelTarget, CreateOrder, CreateOrderResult
from kalshi_api.orders import OrderApi
from kalshi_api.rest import KalshiRestClient
from kalshi_api.write_pacer import WritePacer
from messages.orders import ExchangeOrder, Fill, OrderIntent
from messages.text import one_line
from trading.halt import CancelAgain, HaltCheck, HaltDone, ReadAgain, ours, plan_halt_step
from trading.lookup import Escalate, Found, LookupPolicy, LookupResult, Resend, RetryLookup, plan
from trading.reconcile import ExchangeTruth

logger = logging.getLogger("kalshi_supervisor.actors.gateway_io")

BATCH_CANCEL_MAX = 20
CLOSE_WAIT = 2.0
"""At close, how long the pool's running jobs may take to end (their clients are closed, so
a request in flight fails at once; a job sleeping a backoff is what this bounds)."""


def now_ms() -> int:
    return int(time.time() * 1000)


class GatewayIo:
    """A small pool of I/O threads, each with its own ``OrderApi``."""

    def __init__(self, config: GatewayConfig) -> None:
        self.config = config
        self._local = threading.local()
        self._pool = ThreadPoolExecutor(max_workers=config.workers, thread_name_prefix="gateway-io")
        self._pacer: WritePacer | None = None
        self._pacer_lock = threading.Lock()
        self._clients: list[KalshiRestClient] = []
        self._closed = False
        self._dedicated: list[threading.Thread] = []
        self._dedicated_lock = threading.Lock()
        self._running = 0
        self._running_changed = threading.Condition()

    # -- clients ---------------------------------------------------------------------------
    def pacer(self) -> WritePacer | None:
        """Sized once from the account's limits; None if they cannot be read (the exchange's
        429s then pace us, and every write still goes out at most once)."""
        with self._pacer_lock:
            if self._pacer is None:
                probe = KalshiRestClient(
                    self.config.rest_url, self.config.signer, timeout=self.config.request_timeout
                )
                try:
                    limits = get_account_limits(probe)
                    try:
                        costs = get_endpoint_costs(probe)
                    except KalshiError:
                        costs = None
                    self._pacer = WritePacer.from_account(limits, costs)
                except (KalshiError, ValueError) as exc:
                    logger.warning("gateway: write budget unknown (%s); not pacing", exc)
                finally:
                    probe.close()
            return self._pacer

    @property
    def current_pacer(self) -> WritePacer | None:
        """The pacer if it was made (never reads the limits)."""
        return self._pacer

    def api(self) -> OrderApi:
        """This thread's ``OrderApi`` (made on first use)."""
        api = getattr(self._local, "api", None)
        if api is None:
            client = KalshiRestClient(
                self.config.rest_url,
                self.config.signer,
                timeout=self.config.request_timeout,
                write_pacer=self.pacer(),
            )
            self._clients.append(client)
            api = OrderApi(client)
            self._local.api = api
        return api

    def groups(self) -> OrderGroupApi:
        return OrderGroupApi(self.api().client)

    # -- jobs ------------------------------------------------------------------------------
    def submit(self, work: Callable[[OrderApi], Any], done: Callable[[Any, BaseException | None],
               None]) -> bool:
        """Run ``work(api)`` on an I/O thread; ``done(result, error)`` there after."""
        if self._closed:
            return False
        try:
            self._pool.submit(self._pooled, work, done)
        except RuntimeError:  # shut down meanwhile
            return False
        return True

    def run_dedicated(
        self, name: str, work: Callable[[OrderApi], Any],
        done: Callable[[Any, BaseException | None], None],
    ) -> None:
        """Run ``work(api)`` on a thread of its own (the halt must never queue behind held
        writes); ``done(result, error)`` there after."""
        thread = threading.Thread(target=self._call, args=(work, done), name=f"gateway-{name}",
                                  daemon=True)
        with self._dedicated_lock:  # the finished ones are dropped: bounded
            self._dedicated = [t for t in self._dedicated if t.is_alive()]
            self._dedicated.append(thread)
        thread.start()

    def _pooled(
        self, work: Callable[[OrderApi], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """A pool job, counted while it runs, so ``close`` knows when the pool is idle."""
        with self._running_changed:
            self._running += 1
        try:
            self._call(work, done)
        finally:
            with self._running_changed:
                self._running -= 1
                self._running_changed.notify_all()

    def _call(
        self, work: Callable[[OrderApi], Any], done: Callable[[Any, BaseException | None], None]
    ) -> None:
        """One job, on the thread that runs it: its result or error handed to ``done``."""
        try:
            result = work(self.api())
        except BaseException as exc:  # handed back to the actor, never lost
            done(None, exc)
            return
        done(result, None)

    def wait_dedicated(self, timeout: float) -> bool:
        """Wait up to ``timeout`` seconds in all for the dedicated threads (a halt begun
        when SHUTDOWN was announced); whether every one ended."""
        with self._dedicated_lock:
            threads = list(self._dedicated)
        deadline = time.monotonic() + timeout
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def run_job(
        self,
        tell: Callable[[IoDone], None],
        job: str,
        work: Callable[[OrderApi], Any],
        context: Any = None,
        *,
        dedicated: bool = False,
    ) -> None:
        """Run ``work(api)`` on an I/O thread (``dedicated``: a thread of its own); its
        result comes back through ``tell`` as ``IoDone(job, result, error, context)``."""

        def done(result: Any, error: BaseException | None) -> None:
            try:
                tell(IoDone(job, result, error, context))
            except Exception:  # the gateway stopped meanwhile: nothing to tell
                logger.debug("gateway: %s finished after the gateway stopped", job)

        if dedicated:  # the halt must never queue behind held writes
            self.run_dedicated(job, work, done)
        elif not self.submit(work, done):
            logger.warning("gateway: %s not run: the I/O threads are closed", job)

    def close(self) -> None:
        """Queued jobs dropped, clients closed (a request in flight fails at once), then the
        pool's threads joined once their running jobs end, within :data:`CLOSE_WAIT`: a
        stopped gateway leaves no thread behind (issue 17), and never waits without bound."""
        self._closed = True
        self._pool.shutdown(wait=False, cancel_futures=True)
        for client in list(self._clients):
            try:
                client.close()
            except Exception:  # closing must not raise
                logger.debug("gateway: closing a client failed", exc_info=True)
        with self._running_changed:
            idle = self._running_changed.wait_for(lambda: self._running == 0, CLOSE_WAIT)
        if idle:
            self._pool.shutdown(wait=True)
        else:
            logger.warning("gateway: %d I/O jobs still running %.0f s after close; left to end",
                           self._running, CLOSE_WAIT)


def create_request(intent: OrderIntent, client_order_id: str, group_id: str | None) -> CreateOrder:
    """The create a service's intent becomes, in the session's order group if there is one."""
    return CreateOrder(
        ticker=intent.ticker,
        side=intent.side,
        count=intent.count,
        price=intent.price,
        client_order_id=client_order_id,
        time_in_force=intent.time_in_force,
        expiration_time=intent.expiration_time,
        post_only=intent.post_only,
        reduce_only=intent.reduce_only,
        cancel_order_on_pause=intent.cancel_order_on_pause,
        order_group_id=group_id,
    )


def create_group(api: OrderApi, limit: Decimal) -> str:
    """The session's order group, when the trading stage made none."""
    return OrderGroupApi(api.client).create(limit).order_group_id


def open_private_channels(config: GatewayConfig, listener: Callable[[object], None]) -> Any:
    """The gateway's own private channels (``user_order``, ``fill``, order groups), started."""
    from kalshi_api.private_channels import PrivateChannels

    signer = config.signer
    path = "/trade-api/ws/v2"
    channels = PrivateChannels.connect(
        config.ws_url,
        auth_headers=lambda: signer.headers("GET", path),
        listener=listener,
    )
    channels.start()
    return channels


# -- reads -------------------------------------------------------------------------------------
def read_truth(
    api: OrderApi, fills_min_ts_ms: int | None, markets: Sequence[str] = ()
) -> ExchangeTruth:
    """The exchange's view for reconciliation: resting orders, fills since, positions,
    balance; and the shard of every market the reads name, plus of ``markets`` (read from
    their listing, in URL-budgeted batches) when the listing carries it."""
    orders = api.list_orders(status="resting")
    resting = tuple(from_rest_order(o) for o in orders)
    min_ts = None if fills_min_ts_ms is None else fills_min_ts_ms // 1000
    fills = tuple(from_rest_fill(f) for f in api.list_fills(min_ts=min_ts))
    listed = api.list_positions()
    positions = {p.ticker: p.position_fp for p in listed if p.position_fp != 0}
    balance = api.client.get_balance().balance
    shards = {o.ticker: o.exchange_index for o in orders if o.exchange_index is not None}
    shards |= {p.ticker: p.exchange_index for p in listed if p.exchange_index is not None}
    unknown = [t for t in markets if t not in shards]
    if unknown:
        for market in api.client.get_markets(status=None, tickers=unknown, mve_filter=None):
            if market.exchange_index is not None:
                shards[market.ticker] = market.exchange_index
    return ExchangeTruth(resting=resting, fills=fills, positions=positions, balance=balance,
                         shards=shards)


def lookup_order(api: OrderApi, order_id: str) -> tuple[ExchangeOrder, tuple[Fill, ...]]:
    """One order as it is now, with its fills (a vanished order's lookup)."""
    order = from_rest_order(api.get_order(order_id))
    fills = tuple(from_rest_fill(f) for f in api.list_fills(order_id=order_id))
    return order, fills


# -- an outcome-unknown create ------------------------------------------------------------------
def find_by_cid(
    api: OrderApi, client_order_id: str, ticker: str
) -> tuple[ExchangeOrder, tuple[Fill, ...]] | None:
    """An order known by its ``client_order_id`` (a 409 ``order_already_exists``: it is
    there; read it, never resend), with its fills; None if the exchange has no such order."""
    order = api.find_order(client_order_id, ticker=ticker)
    return None if order is None else lookup_order(api, order.order_id)


def find_in_flight(
    api: OrderApi, client_order_id: str, ticker: str, wait: float, stop: threading.Event
) -> tuple[ExchangeOrder, tuple[Fill, ...]] | None:
    """A create an earlier incarnation sent and never heard back about: looked up by its id
    twice, ``wait`` seconds (the in-flight window) apart; absent both times, it never
    landed (None)."""
    for attempt in range(2):
        order = api.find_order(client_order_id, ticker=ticker)
        if order is not None:
            return lookup_order(api, order.order_id)
        if attempt == 0 and stop.wait(wait):
            break
    return None


@dataclass(frozen=True)
class Resolution:
    """How resolving one unknown create ended: ``decision`` is ``Found`` or ``Escalate``, or
    ``accepted`` is the reply to a same-id resend; ``sends`` counts every send (≥ 1)."""

    client_order_id: str
    sends: int
    decision: Found | Escalate | None = None
    accepted: CreateOrderResult | None = None


def resolve_unknown(
    api: OrderApi,
    unknown: OutcomeUnknownError,
    ticker: str,
    policy: LookupPolicy,
    *,
    stop: threading.Event | None = None,
    sleep: Callable[[float], None] = time.sleep,
) -> Resolution:
    """Settle an unknown create by lookup (``trading.lookup.plan`` decides each step)."""
    cid = unknown.client_order_id
    if cid is None:
        raise ValueError("only a create with a client_order_id can be resolved")
    sends = 1
    lookups = 0
    sent_at_ms = int(unknown.given_up_at * 1000)
    while True:
        if stop is not None and stop.is_set():
            return Resolution(cid, sends, Escalate("gateway stopping"))
        lookups += 1
        as_of = get_user_data_timestamp(api.client)
        orders = tuple(
            from_rest_order(o) for o in api.list_orders(ticker=ticker) if o.client_order_id == cid
        )
        fills: tuple[Fill, ...] = ()
        for order in orders:
            fills += tuple(from_rest_fill(f) for f in api.list_fills(order_id=order.order_id))
        decision = plan(
            LookupResult(
                client_order_id=cid,
                orders=orders,
                fills=fills,
                sent_at_ms=sent_at_ms,
                checked_at_ms=now_ms(),
                lookups=lookups,
                sends=sends,
                data_as_of_ms=None if as_of is None else int(as_of.timestamp() * 1000),
            ),
            policy,
        )
        if isinstance(decision, (Found, Escalate)):
            return Resolution(cid, sends, decision)
        if isinstance(decision, RetryLookup):
            sleep(decision.after_ms / 1000)
            continue
        assert isinstance(decision, Resend) and decision.client_order_id == cid
        sends += 1
        lookups = 0
        try:
            accepted = api.resend_create(unknown)
        except DuplicateOrderError:
            continue  # it exists after all: look again
        except OutcomeUnknownError as again:
            unknown = again
            sent_at_ms = int(again.given_up_at * 1000)
            continue
        return Resolution(cid, sends, accepted=accepted)


# -- the kill switch ---------------------------------------------------------------------------
@dataclass(frozen=True)
class HaltOutcome:
    duration_ms: int
    cancel_all_calls: int
    verify_reads: int
    remaining: int


def _cancel_all(api: OrderApi) -> bool:
    try:
        api.cancel_all()
    except KalshiError as exc:
        logger.warning("halt: cancel-all failed: %s", exc)
        return False
    return True


def _cancel_ids(api: OrderApi, order_ids: tuple[str, ...]) -> None:
    for start in range(0, len(order_ids), BATCH_CANCEL_MAX):
        chunk = order_ids[start : start + BATCH_CANCEL_MAX]
        try:
            if len(chunk) == 1:
                api.cancel(chunk[0])
            else:
                api.batch_cancel([CancelTarget(order_id=oid) for oid in chunk])
        except KalshiError as exc:  # the next read says what still rests
            logger.info("halt: cancelling %d order(s) by id: %s", len(chunk), one_line(str(exc)))


def run_halt(
    api: OrderApi,
    *,
    prefix: str,
    view: Callable[[], tuple[set[str], int]],
    group_id: str | None = None,
    timeout: float = 30.0,
    sleep: Callable[[float], None] = time.sleep,
) -> HaltOutcome:
    """Trigger the group, cancel-all, then read and cancel by id until none of ours rest
    and none of our creates is still in flight (``trading.halt.plan_halt_step``).
    ``view()`` gives the order ids we track and how many creates are in flight now."""
    started = now_ms()
    deadline = time.monotonic() + timeout
    if group_id is not None:
        try:
            OrderGroupApi(api.client).trigger(group_id)
        except KalshiError as exc:
            logger.warning("halt: triggering order group %s failed: %s", group_id, exc)
    calls = 1
    last_ok = _cancel_all(api)
    reads = 0
    known, in_flight = view()
    remaining = len(known) + in_flight  # unverified: what we knew of, until a read says less
    while True:
        reads += 1
        try:
            resting = [(o.order_id, o.client_order_id) for o in api.list_orders(status="resting")]
        except KalshiError as exc:
            logger.warning("halt: reading resting orders failed: %s", exc)
            if time.monotonic() >= deadline:
                break
            sleep(0.1)
            continue
        known, in_flight = view()
        mine = ours(resting, known, prefix)
        remaining = len(mine)
        step = plan_halt_step(
            HaltCheck(started, now_ms(), mine, in_flight, reads, last_ok)
        )
        if isinstance(step, HaltDone):
            return HaltOutcome(step.elapsed_ms, calls, reads, 0)
        if time.monotonic() >= deadline:
            break
        if isinstance(step, CancelAgain):
            _cancel_ids(api, step.order_ids)
            if step.cancel_all:
                calls += 1
                last_ok = _cancel_all(api)
                if not last_ok:
                    sleep(0.1)  # an exchange failing cancel-alls is not asked again at once
        elif isinstance(step, ReadAgain):
            sleep(step.after_ms / 1000)
    return HaltOutcome(now_ms() - started, calls, reads, remaining)
