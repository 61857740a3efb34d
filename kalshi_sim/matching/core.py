"""The engine's state and the steps every operation is made of: finding books and orders,
holding and releasing cash, putting orders on and off a book, ending them.

:class:`EngineCore` holds the state; the operations (order entry, crossing, groups, market
lifecycle, reads, fixtures) are its subclasses in their own modules, and
:class:`~kalshi_sim.matching.engine.MatchingEngine` joins them. Nothing here raises once an
operation has been accepted: these steps only move state.
"""

from __future__ import annotations

import heapq
import random
from bisect import insort
from collections.abc import Callable
from fractions import Fraction

from kalshi_sim.engine_types import BookChange, EngineOptions, Reject
from kalshi_sim.matching.records import (
    CLOSED_STATUSES,
    DOLLAR,
    AccountRecord,
    Book,
    Changes,
    GroupRecord,
    OrderRecord,
    PositionRecord,
    leg_cost,
)

_UUID_KEEP = ~((0xF000 << 64) | (0xC000 << 48)) & ((1 << 128) - 1)
_UUID_SET = (0x4000 << 64) | (0x8000 << 48)
"""Version nibble 4 and RFC 4122 variant bits ``10`` of a random 128-bit id."""


class EngineCore:
    """All markets' books and all members' accounts, and the steps that move them."""

    def __init__(self, options: EngineOptions | None = None) -> None:
        self.options = options or EngineOptions()
        self._rng = random.Random(self.options.id_seed)
        self._books: dict[str, Book] = {}
        self._accounts: dict[str, AccountRecord] = {}
        self._orders: dict[str, OrderRecord] = {}
        """Every readable order by id (live and recently finished)."""
        self._groups: dict[str, GroupRecord] = {}
        self._expiries: list[tuple[int, int, OrderRecord]] = []
        self._pause_cancellable: dict[str, OrderRecord] = {}
        self._reduce_only_live: dict[str, OrderRecord] = {}
        self._positions_by_ticker: dict[str, list[PositionRecord]] = {}
        self._paused_shards: set[int] = set()
        self._all_paused = False
        self._cancels_refused = False
        self._loader: Callable[[str], object] | None = None
        self._fee_holds: dict[Fraction, int] = {}
        self._fees_collected = 0
        self._expiry_tick = 0

    # -- finding things ----------------------------------------------------------------------
    def _account(self, member: str) -> AccountRecord:
        account = self._accounts.get(member)
        if account is None:
            account = AccountRecord(member, self.options.fills_kept_per_member)
            self._accounts[member] = account
        return account

    def _book(self, ticker: str) -> Book:
        """The market's book with its queues (seeded orders made on first need)."""
        book = self._levels_book(ticker)
        if book.seed_member is not None:
            self._materialize(book)
        return book

    def _levels_book(self, ticker: str) -> Book:
        """The market's book, listing it through the loader if needed; its queues may still
        be seeded levels only (``book.yes``/``book.no`` are always right)."""
        book = self._books.get(ticker)
        if book is None and self._loader is not None:
            self._loader(ticker)  # lists it (and seeds its book) if the caller knows it
            book = self._books.get(ticker)
        if book is None:
            raise Reject(404, "market_not_found", f"market {ticker} not found")
        return book

    def _materialize(self, book: Book) -> None:
        """Turn a seeded book's levels into its member's resting orders (see seed_orders)."""
        member, now = book.seed_member, book.seed_ms
        assert member is not None
        book.seed_member = None
        account = self._accounts[member]
        rules = book.rules
        index = 0
        for side, levels in (("bid", book.yes), ("ask", book.no)):
            queues, prices = book.queues(side)
            for leg_price, size in levels.items():
                price = leg_price if side == "bid" else DOLLAR - leg_price
                index += 1
                account.seq += 1
                order_id = f"{rules.ticker}:{member}:{index}"
                order = OrderRecord.seeded(
                    order_id, account.seq, member, rules, side, price, size, now
                )
                self._add_order(account, order)
                account.live[order_id] = order
                queues[price] = {order_id: order}
            prices.extend(sorted(queues))

    def _add_order(self, account: AccountRecord, order: OrderRecord) -> None:
        """A new order becomes readable (before it rests or ends)."""
        self._orders[order.order_id] = order
        account.add_order(order)

    def _closed(self, message: str) -> Reject:
        return Reject(self.options.closed_status, self.options.closed_code, message)

    def _paused(self) -> Reject:
        return Reject(self.options.paused_status, self.options.paused_code, "trading is paused")

    def _tradable_book(self, ticker: str, *, ignore_pause: bool = False) -> Book:
        """The book, or the Reject a place/amend gets on a closed, inactive or paused market."""
        book = self._book(ticker)
        status = book.rules.status
        if status in CLOSED_STATUSES:
            raise self._closed("market is closed")
        if ignore_pause:
            return book
        if (
            status == "inactive"
            or self._all_paused
            or book.rules.exchange_index in self._paused_shards
        ):
            raise self._paused()
        return book

    def _check_cancel_allowed(self, ticker: str) -> None:
        book = self._book(ticker)
        if book.rules.status in CLOSED_STATUSES:
            raise self._closed("market is closed")
        if self._cancels_refused or (
            book.rules.status == "inactive" and not self.options.cancel_when_inactive
        ):
            raise self._paused()

    def _check_price(self, book: Book, price: int) -> None:
        if 0 < price < DOLLAR:
            for grid in book.grid:
                if grid.start_micros <= price <= grid.end_micros and not (
                    (price - grid.start_micros) % grid.step_micros
                ):
                    return
        raise Reject(400, "invalid_price", f"price {price / DOLLAR:.4f} is not on the market grid")

    def _member_group(self, member: str, group_id: str) -> GroupRecord:
        group = self._groups.get(group_id)
        if group is None or group.member != member:
            raise Reject(404, self.options.group_not_found_code, "order group not found")
        return group

    def _live_order(self, member: str, order_id: str, subaccount: int | None) -> OrderRecord:
        account = self._accounts.get(member)
        order = account.live.get(order_id) if account is not None else None
        if order is None or (subaccount is not None and order.subaccount != subaccount):
            raise Reject(404, "not_found", "order not found")
        return order

    def _reducible(self, account: AccountRecord, subaccount: int, ticker: str, side: str) -> int:
        """What a reduce-only order of ``side`` could still reduce of the position."""
        position = account.positions.get((subaccount, ticker))
        held = position.position if position is not None else 0
        return max(-held, 0) if side == "bid" else max(held, 0)

    # -- ids, cash ---------------------------------------------------------------------------
    def _new_id(self) -> str:
        """A version-4 UUID string from the seeded generator, formatted as ``uuid.UUID``
        would (by hand: it is on every order's and trade's path)."""
        bits = self._rng.getrandbits(128) & _UUID_KEEP | _UUID_SET
        h = f"{bits:032x}"
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"

    def _hold(self, book: Book, side: str, price: int, count: int) -> int:
        """What a resting order holds: its cost at its limit plus its worst-case fee."""
        return leg_cost(side, price, count) + count * book.fee_hold

    def _reserve(self, account: AccountRecord, order: OrderRecord, hold: int) -> None:
        if not self.options.reserve_resting_balance:
            return
        shard = order.exchange_index
        account.cash[shard] = account.cash.get(shard, 0) - hold
        account.reserved[shard] = account.reserved.get(shard, 0) + hold
        order.reserved_micros += hold

    def _release(self, account: AccountRecord, order: OrderRecord, amount: int) -> None:
        amount = min(amount, order.reserved_micros)
        if amount <= 0:
            return
        shard = order.exchange_index
        account.cash[shard] += amount
        account.reserved[shard] -= amount
        order.reserved_micros -= amount

    # -- on and off the book -------------------------------------------------------------------
    def _rest(
        self,
        book: Book,
        order: OrderRecord,
        account: AccountRecord,
        group: GroupRecord | None,
        changes: Changes,
    ) -> None:
        """Put an order at the back of its price's queue and into every live index."""
        price = order.price_micros
        levels, prices = book.queues(order.side)
        level = levels.get(price)
        if level is None:
            level = levels[price] = {}
            insort(prices, price)
        level[order.order_id] = order
        self._level_change(book, order, order.remaining_centi, changes)
        account.live[order.order_id] = order
        if group is not None:
            group.orders[order.order_id] = order
        if order.expiration_time_s is not None:
            self._push_expiry(order)
        if order.cancel_order_on_pause:
            self._pause_cancellable[order.order_id] = order
        if order.reduce_only:
            self._reduce_only_live[order.order_id] = order

    def _push_expiry(self, order: OrderRecord) -> None:
        """Queue the order's expiry; entries of orders that ended early are dropped when they
        come due, or all at once when they outnumber the live orders (memory stays bounded)."""
        assert order.expiration_time_s is not None
        heap = self._expiries
        self._expiry_tick += 1
        heapq.heappush(heap, (order.expiration_time_s * 1000, self._expiry_tick, order))
        if len(heap) > 1024 and len(heap) > 4 * len(self._orders):
            self._expiries = [entry for entry in heap if entry[2].status == "resting"]
            heapq.heapify(self._expiries)

    def _level_change(self, book: Book, order: OrderRecord, delta: int, changes: Changes) -> None:
        """Move the public level of ``order`` by ``delta`` and record it (a new version)."""
        leg, leg_price, public = book.leg(order.side, order.price_micros)
        left = public.get(leg_price, 0) + delta
        if left:
            public[leg_price] = left
        else:
            del public[leg_price]
        book.version += 1
        changes.book.append(
            BookChange(
                order.ticker,
                leg,  # type: ignore[arg-type]
                leg_price,
                order.price_micros,
                delta,
                order.member,
                order.client_order_id,
                order.order_id,
                order.subaccount,
                book.version,
            )
        )

    def _unrest(self, book: Book, order: OrderRecord, changes: Changes) -> None:
        """Take a resting order off the book and out of every index (status unchanged)."""
        price = order.price_micros
        levels, prices = book.queues(order.side)
        level = levels[price]
        del level[order.order_id]
        if not level:
            del levels[price]
            prices.remove(price)
        if order.remaining_centi:
            self._level_change(book, order, -order.remaining_centi, changes)
        self._accounts[order.member].live.pop(order.order_id, None)
        if order.order_group_id is not None:
            group = self._groups.get(order.order_group_id)
            if group is not None:
                group.orders.pop(order.order_id, None)
        self._pause_cancellable.pop(order.order_id, None)
        self._reduce_only_live.pop(order.order_id, None)

    def _shrink(self, book: Book, order: OrderRecord, by: int, now: int, changes: Changes) -> None:
        """Reduce a resting order in place (queue position kept)."""
        if by <= 0:
            order.last_update_ms = now
            return
        self._level_change(book, order, -by, changes)
        order.remaining_centi -= by
        order.initial_centi -= by  # the count shrinks: remaining + filled = initial still
        order.last_update_ms = now
        changes.orders[order.order_id] = order
        account = self._accounts[order.member]
        self._release(account, order, self._hold(book, order.side, order.price_micros, by))

    def _cancel_resting(
        self, order: OrderRecord, reason: str | None, now: int, changes: Changes
    ) -> None:
        book = self._books[order.ticker]
        self._unrest(book, order, changes)
        self._end(order, "canceled", reason, now, changes)

    def _cancel_book(self, book: Book, reason: str, now: int, changes: Changes) -> None:
        for levels in (book.bids, book.asks):
            for level in list(levels.values()):
                for order in list(level.values()):
                    self._cancel_resting(order, reason, now, changes)

    def _end(
        self, order: OrderRecord, status: str, reason: str | None, now: int, changes: Changes
    ) -> None:
        """Finish an order that is off the book: remaining to 0, hold released, kept readable
        until the member's dead-order budget forgets it."""
        order.status = status
        order.remaining_centi = 0
        order.last_update_ms = now
        order.last_update_reason = reason
        changes.orders[order.order_id] = order
        account = self._accounts[order.member]
        account.updated_ms = now
        self._release(account, order, order.reserved_micros)
        account.dead.append(order.order_id)
        kept = account.dead_kept
        if kept is None:
            kept = self.options.dead_orders_kept_per_member
        while len(account.dead) > kept:
            forgotten = account.dead.popleft()
            account.forget_order(forgotten)
            self._orders.pop(forgotten, None)
