"""The V2 trading routes of the embedded exchange (§8.1, §8.2, §8.9): writes, reads, groups.

:class:`TradingRoutes` turns one authenticated request into a :class:`Reply`: a status, a
JSON body (None for 204), and what the server must do around it: the engine
:class:`~kalshi_sim.engine_types.Outcome` s whose private events go out before or after the
reply (:class:`~kalshi_sim.trading_faults.TradingSettings`), and the trading fault armed
for this write, if any (drop the connection, hold the reply, answer 5xx or a 2xx error).

Every write is billed to the member's Write bucket here (where the batch size is known) and
a batch that does not fit is refused whole (429). Engine refusals
(:class:`~kalshi_sim.engine_types.Reject`) become Kalshi's nested error body.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from kalshi_api.fixed_point import format_count, format_dollars
from kalshi_sim.api_errors import ApiError, bad_request, flat_bad_request, not_found
from kalshi_sim.engine_types import MemberTruth, Outcome, Reject
from kalshi_sim.matching.engine import MatchingEngine
from kalshi_sim.matching.reads import reduced_by_centi
from kalshi_sim.order_requests import (
    load_json,
    parse_amend,
    parse_create,
    parse_decrease,
    parse_group_limit,
    require_object,
)
from kalshi_sim.trading_desk import MICROS_PER_CENT, fees_of
from kalshi_sim.trading_faults import ArmedFault, TradingFault
from kalshi_sim.trading_wire import (
    amend_reply,
    cancel_reply,
    create_reply,
    decrease_reply,
    fill_json,
    group_json,
    group_list_json,
    iso_ms,
    settlement_json,
)
from kalshi_sim.wire import INTERNAL_ERROR, TOO_MANY_REQUESTS
from kalshi_sim.write_limits import (
    BATCH_CANCEL_ITEM_COST,
    BATCH_CREATE_ITEM_COST,
    CANCEL_COST,
    DEFAULT_COST,
)

if TYPE_CHECKING:
    from kalshi_sim.exchange import EmbeddedExchange

_RETIRED_V1: dict[str, Any] = {
    "error": {
        "code": "deprecated_v1_order_endpoint",
        "message": "Please switch to the V2 endpoints",
        "details": "https://docs.kalshi.com/api-reference/orders/create-order-v2",
    }
}
_ERROR_IN_2XX: dict[str, Any] = {
    "error": {"code": "internal_error", "message": "order could not be processed"}
}


@dataclass
class Reply:
    """What one request gets, and what the server does around it."""

    status: int
    body: Mapping[str, Any] | None
    """None answers with no body (204)."""
    events: list[Outcome] = field(default_factory=list)
    """Outcomes whose private and public WS events the server publishes around the reply."""
    drop: bool = False
    """Close the connection instead of replying (the write was applied)."""
    hold_s: float = 0.0
    """Hold the reply this long (past the client's timeout)."""


@dataclass(frozen=True, slots=True)
class Request:
    member: str
    method: str
    segments: tuple[str, ...]
    query: Mapping[str, str]
    body: bytes


def _reject(error: Reject) -> ApiError:
    return ApiError(error.status, error.code, error.message, error.details)


def _error_item(error: ApiError) -> dict[str, Any]:
    inner = error.body.get("error")
    if isinstance(inner, dict):
        return dict(inner)
    return {"code": error.code, "message": str(error)}


class TradingRoutes:
    """The V2 order-entry, portfolio-read and order-group routes."""

    def __init__(self, exchange: EmbeddedExchange) -> None:
        self.exchange = exchange
        self.desk = exchange.trading

    # -- dispatch --------------------------------------------------------------------------
    def handle(self, request: Request) -> Reply | None:
        """The reply, or None when no trading route matches (the read routes answer then)."""
        s, m = request.segments, request.method
        handler: Callable[[Request], Reply] | None = None
        args: tuple[str, ...] = ()
        if s[:3] == ("portfolio", "events", "orders"):
            rest = s[3:]
            if rest == () and m == "POST":
                handler = self._create
            elif rest == () and m == "DELETE":
                handler = self._cancel_all
            elif rest == ("batched",) and m == "POST":
                handler = self._batch_create
            elif rest == ("batched",) and m == "DELETE":
                handler = self._batch_cancel
            elif len(rest) == 1 and m == "DELETE":
                handler, args = self._cancel, rest
            elif len(rest) == 2 and rest[1] == "amend" and m == "POST":
                handler, args = self._amend, rest[:1]
            elif len(rest) == 2 and rest[1] == "decrease" and m == "POST":
                handler, args = self._decrease, rest[:1]
            if handler is None:
                raise not_found(f"no route for {m} /{'/'.join(s)}")
        elif s[:2] == ("portfolio", "order_groups"):
            handler, args = self._group_route(m, s[2:])
        elif s[:2] == ("portfolio", "orders") and m in ("POST", "DELETE", "PUT"):
            status = 200 if self.desk.settings.legacy_v1_in_2xx else 410
            return Reply(status, _RETIRED_V1)
        elif m == "GET":
            reads: dict[tuple[str, ...], Callable[[Request], Reply]] = {
                ("portfolio", "fills"): self._fills,
                ("portfolio", "settlements"): self._settlements,
                ("portfolio", "orders", "queue_positions"): self._queue_positions,
                ("account", "limits"): self._limits,
                ("account", "endpoint_costs"): self._costs,
                ("exchange", "user_data_timestamp"): self._user_data_timestamp,
            }
            handler = reads.get(s)
            if len(s) == 4 and s[:2] == ("portfolio", "orders") and s[3] == "queue_position":
                handler, args = self._queue_position, s[2:3]
            if handler is None and len(s) == 2 and s[0] == "series":
                handler, args = self._series, s[1:]
            if handler is None and len(s) == 2 and s[0] == "events":
                handler, args = self._event, s[1:]
        if handler is None:
            return None
        try:
            return handler(request, *args)  # type: ignore[call-arg]
        except Reject as error:
            raise _reject(error) from None

    def _group_route(
        self, method: str, rest: tuple[str, ...]
    ) -> tuple[Callable[..., Reply], tuple[str, ...]]:
        if rest == ("create",) and method == "POST":
            return self._group_create, ()
        if rest == () and method == "GET":
            return self._group_list, ()
        if len(rest) == 1 and method == "GET":
            return self._group_get, rest
        if len(rest) == 1 and method == "DELETE":
            return self._group_delete, rest
        if len(rest) == 2 and method == "PUT" and rest[1] in ("reset", "trigger", "limit"):
            return self._group_action, rest
        raise not_found(f"no route for {method} order_groups/{'/'.join(rest)}")

    # -- write plumbing ----------------------------------------------------------------------
    def _bill(self, member: str, cost: int) -> Reply | None:
        """429 (and nothing done) when the member's Write bucket cannot pay ``cost`` at once."""
        if self.exchange.write_limits.try_take(member, cost):
            return None
        return Reply(429, TOO_MANY_REQUESTS)

    def _write(
        self,
        member: str,
        op: str,
        apply: Callable[[MatchingEngine, int], tuple[int, dict[str, Any] | None, list[Outcome]]],
    ) -> Reply:
        """Run one write, with the fault armed for ``op`` (if any) around it."""
        fault = self.desk.faults.take(op)
        if fault is not None and not _applies(fault):
            status = 200 if fault.kind is TradingFault.ERROR_IN_2XX else fault.status
            body = _ERROR_IN_2XX if fault.kind is TradingFault.ERROR_IN_2XX else INTERNAL_ERROR
            self.exchange.oplog.record("trading_fault", f"{fault.kind} {op} (not applied)")
            return Reply(status, body)
        status, body, outcomes = self.desk.call(apply, publish=False)
        reply = Reply(status, body, events=outcomes)
        if fault is not None:
            self.exchange.oplog.record("trading_fault", f"{fault.kind} {op} (applied)")
            if fault.kind is TradingFault.DROP_WRITE:
                reply.drop = True
            elif fault.kind is TradingFault.HOLD_WRITE:
                reply.hold_s = fault.seconds
            elif fault.kind in (TradingFault.FAIL_WRITE, TradingFault.CANCEL_ALL_503):
                reply.status, reply.body = fault.status, INTERNAL_ERROR
                if fault.kind is TradingFault.CANCEL_ALL_503:
                    reply.body = {"error": {"code": "service_unavailable", "message": "try again"}}
            elif fault.kind is TradingFault.WRONG_ORDER and body is not None:
                other = self._another_order(member, body.get("order_id"))
                reply.body = {**body, "order_id": other}
        return reply

    def _another_order(self, member: str, order_id: object) -> str:
        """Some other order id: the member's newest other order, else a fresh one."""
        for order in reversed(self.desk.truth(member).orders):
            if order.order_id != order_id:
                return order.order_id
        return str(uuid.uuid4())

    def _shard_check(self, ticker: str, shard: int | None) -> None:
        try:
            market = self.exchange.markets.market(ticker)
        except KeyError:
            raise Reject(404, "market_not_found", "market not found", ticker) from None
        if shard is not None and market.exchange_index != shard:
            raise Reject(400, "invalid_parameters", "market is not on that exchange_index", ticker)

    def _place(self, engine: MatchingEngine, now: int, body: Any, member: str) -> list[Outcome]:
        """One create: the engine's outcome, plus the tail cancel of a recent cancel-all."""
        parsed = parse_create(body, member)
        self._shard_check(parsed.request.ticker, parsed.exchange_index)
        outcome = engine.place(parsed.request, now)
        outcomes = [outcome]
        order = outcome.order
        if (
            order is not None
            and order.status == "resting"
            and self.desk.in_cancel_all_tail(member, order.subaccount, now)
        ):
            outcomes.append(engine.cancel(member, order.order_id, now))
        return outcomes

    # -- writes ------------------------------------------------------------------------------
    def _create(self, request: Request) -> Reply:
        body = require_object(load_json(request.body))
        parse_create(body, request.member)  # refuse bad input before billing or faults
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            try:
                outcomes = self._place(engine, now, body, request.member)
            except Reject as error:
                raise _reject(error) from None
            return 201, create_reply(outcomes[0]), outcomes

        return self._write(request.member, "create", apply)

    def _cancel(self, request: Request, order_id: str) -> Reply:
        subaccount = _query_int(request.query, "subaccount", 0, 63)
        refused = self._bill(request.member, CANCEL_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            try:
                outcome = engine.cancel(request.member, order_id, now, subaccount)
            except Reject as error:
                raise _reject(error) from None
            order = outcome.order
            assert order is not None
            return 200, cancel_reply(outcome, reduced_by_centi(outcome)), [outcome]

        return self._write(request.member, "cancel", apply)

    def _amend(self, request: Request, order_id: str) -> Reply:
        amend = parse_amend(load_json(request.body))
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            try:
                outcome = engine.amend(
                    request.member,
                    order_id,
                    ticker=amend.ticker,
                    side=amend.side,
                    price_micros=amend.price_micros,
                    count_centi=amend.count_centi,
                    now_ms=now,
                    updated_client_order_id=amend.updated_client_order_id,
                    expiration_time_s=amend.expiration_time_s,
                )
            except Reject as error:
                raise _reject(error) from None
            return 200, amend_reply(outcome), [outcome]

        return self._write(request.member, "amend", apply)

    def _decrease(self, request: Request, order_id: str) -> Reply:
        reduce_by, reduce_to = parse_decrease(load_json(request.body))
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            try:
                outcome = engine.decrease(request.member, order_id, now, reduce_by, reduce_to)
            except Reject as error:
                raise _reject(error) from None
            return 200, decrease_reply(outcome), [outcome]

        return self._write(request.member, "decrease", apply)

    def _batch_items(self, request: Request) -> list[Any]:
        body = require_object(load_json(request.body))
        items = body.get("orders")
        if not isinstance(items, list):
            raise ApiError(400, "invalid_parameters", "orders must be a list")
        if not items:
            raise ApiError(400, "invalid_parameters", "orders must not be empty")
        limit = self.exchange.config.max_batch_size
        if len(items) > limit:
            raise ApiError(400, "invalid_parameters", f"at most {limit} orders per batch")
        return items

    def _batch_create(self, request: Request) -> Reply:
        items = self._batch_items(request)
        refused = self._bill(request.member, BATCH_CREATE_ITEM_COST * len(items))
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            results: list[dict[str, Any]] = []
            outcomes: list[Outcome] = []
            for item in items:
                try:
                    placed = self._place(engine, now, item, request.member)
                except Reject as error:
                    results.append(_failed_item(item, _reject(error)))
                except ApiError as error:
                    results.append(_failed_item(item, error))
                else:
                    results.append(create_reply(placed[0]))
                    outcomes.extend(placed)
            return 201, {"orders": results}, outcomes

        return self._write(request.member, "batch_create", apply)

    def _batch_cancel(self, request: Request) -> Reply:
        items = self._batch_items(request)
        refused = self._bill(request.member, BATCH_CANCEL_ITEM_COST * len(items))
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            results: list[dict[str, Any]] = []
            outcomes: list[Outcome] = []
            for item in items:
                order_id = item.get("order_id") if isinstance(item, dict) else None
                if not isinstance(order_id, str):
                    error = ApiError(400, "invalid_parameters", "order_id is required")
                    results.append(
                        {"order_id": None, "reduced_by": "0.00", "error": _error_item(error)}
                    )
                    continue
                subaccount = item.get("subaccount")
                try:
                    outcome = engine.cancel(
                        request.member,
                        order_id,
                        now,
                        subaccount if type(subaccount) is int else 0,
                    )
                except Reject as error:
                    results.append(
                        {
                            "order_id": order_id,
                            "reduced_by": "0.00",
                            "error": _error_item(_reject(error)),
                        }
                    )
                    continue
                order = outcome.order
                assert order is not None
                results.append(cancel_reply(outcome, reduced_by_centi(outcome)))
                outcomes.append(outcome)
            return 200, {"orders": results}, outcomes

        return self._write(request.member, "batch_cancel", apply)

    def _cancel_all(self, request: Request) -> Reply:
        subaccount = _query_int(request.query, "subaccount", None, 63)
        refused = self._bill(request.member, self.exchange.write_limits.cancel_all_cost)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, None, list[Outcome]]:
            outcome = engine.cancel_all(request.member, now, subaccount)
            self.desk.note_cancel_all(request.member, subaccount, now)
            return 204, None, [outcome]

        return self._write(request.member, "cancel_all", apply)  # type: ignore[arg-type]

    # -- order groups ------------------------------------------------------------------------
    def _group_create(self, request: Request) -> Reply:
        body = require_object(load_json(request.body))
        limit = parse_group_limit(body)
        subaccount = body.get("subaccount", 0)
        shard = body.get("exchange_index", 0)
        if type(subaccount) is not int or type(shard) is not int:
            raise flat_bad_request("invalid type", "subaccount and exchange_index are integers")
        if not 0 <= subaccount <= 63 or shard not in self.exchange.status.shards:
            raise ApiError(400, "invalid_parameters", "subaccount or exchange_index out of range")
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            group_id, outcome = engine.create_group(request.member, limit, now, subaccount, shard)
            body = {"order_group_id": group_id, "subaccount": subaccount, "exchange_index": shard}
            return 201, body, [outcome]

        return self._write(request.member, "group", apply)

    def _group_list(self, request: Request) -> Reply:
        groups = self.desk.read(lambda engine, now: engine.groups(request.member))
        subaccount = _query_int(request.query, "subaccount", None, 63)
        shard = _query_int(request.query, "exchange_index", None, 63)
        listed = [
            group_list_json(g)
            for g in groups
            if (subaccount is None or g.subaccount == subaccount)
            and (shard is None or g.exchange_index == shard)
        ]
        return Reply(200, {"order_groups": listed})

    def _group_get(self, request: Request, group_id: str) -> Reply:
        def read(engine: MatchingEngine, now: int) -> dict[str, Any]:
            group = engine.group(request.member, group_id)
            orders = [engine.order(request.member, oid) for oid in group.order_ids]
            return group_json(group, orders)

        return Reply(200, self.desk.read(read))

    def _group_delete(self, request: Request, group_id: str) -> Reply:
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            return 200, {}, [engine.delete_group(request.member, group_id, now)]

        return self._write(request.member, "group", apply)

    def _group_action(self, request: Request, group_id: str, action: str) -> Reply:
        limit = parse_group_limit(load_json(request.body)) if action == "limit" else None
        refused = self._bill(request.member, DEFAULT_COST)
        if refused is not None:
            return refused

        def apply(engine: MatchingEngine, now: int) -> tuple[int, dict[str, Any], list[Outcome]]:
            member = request.member
            if action == "reset":
                outcome = engine.reset_group(member, group_id, now)
            elif action == "trigger":
                outcome = engine.trigger_group(member, group_id, now)
            else:
                assert limit is not None
                outcome = engine.set_group_limit(member, group_id, limit, now)
            return 200, {}, [outcome]

        return self._write(request.member, "group", apply)

    # -- reads -------------------------------------------------------------------------------
    def _fills(self, request: Request) -> Reply:
        query = request.query
        view = self.desk.view(request.member)
        fills = list(view.fills)
        for name, attr in (("ticker", "ticker"), ("order_id", "order_id")):
            if query.get(name):
                fills = [f for f in fills if getattr(f, attr) == query[name]]
        subaccount = _query_int(query, "subaccount", None, 63)
        if subaccount is not None:
            fills = [f for f in fills if f.subaccount == subaccount]
        shard = _query_int(query, "exchange_index", None, 63)
        if shard is not None:
            fills = [f for f in fills if f.exchange_index == shard]
        min_ts = _query_int(query, "min_ts", None, None)
        max_ts = _query_int(query, "max_ts", None, None)
        if min_ts is not None:
            fills = [f for f in fills if f.ts_ms // 1000 >= min_ts]
        if max_ts is not None:
            fills = [f for f in fills if f.ts_ms // 1000 <= max_ts]
        keyed = [(f"{i:012d}", f) for i, f in enumerate(fills)]
        page, cursor = self.exchange.rest.page(keyed, query, "f")
        return Reply(200, {"fills": [fill_json(f) for _, f in page], "cursor": cursor})

    def _settlements(self, request: Request) -> Reply:
        query = request.query
        view = self.desk.view(request.member)
        settlements = list(view.settlements)
        if query.get("ticker"):
            settlements = [s for s in settlements if s.ticker == query["ticker"]]
        if query.get("event_ticker"):
            settlements = [s for s in settlements if s.event_ticker == query["event_ticker"]]
        shard = _query_int(query, "exchange_index", None, 63)
        if shard is not None:
            settlements = [s for s in settlements if s.exchange_index == shard]
        keyed = [(f"{i:012d}", s) for i, s in enumerate(settlements)]
        page, cursor = self.exchange.rest.page(keyed, query, "s")
        return Reply(200, {"settlements": [settlement_json(s) for _, s in page], "cursor": cursor})

    def _queue_position(self, request: Request, order_id: str) -> Reply:
        ahead = self.desk.read(lambda e, now: e.queue_position(request.member, order_id))
        return Reply(
            200, {"queue_position_fp": format_count(ahead), "queue_position": ahead // 100}
        )

    def _queue_positions(self, request: Request) -> Reply:
        tickers = [t for t in request.query.get("market_tickers", "").split(",") if t]
        if not tickers and not request.query.get("event_ticker"):
            raise bad_request("market_tickers or event_ticker is required")

        def read(engine: MatchingEngine, now: int) -> list[dict[str, Any]]:
            rows = []
            for order in engine.orders(request.member, status="resting"):
                if tickers and order.ticker not in tickers:
                    continue
                if request.query.get("event_ticker") and (
                    order.event_ticker != request.query["event_ticker"]
                ):
                    continue
                ahead = engine.queue_position(request.member, order.order_id)
                rows.append(
                    {
                        "order_id": order.order_id,
                        "market_ticker": order.ticker,
                        "queue_position_fp": format_count(ahead),
                    }
                )
            return rows

        return Reply(200, {"queue_positions": self.desk.read(read)})

    def _limits(self, request: Request) -> Reply:
        return Reply(200, self.exchange.write_limits.limits_body())

    def _costs(self, request: Request) -> Reply:
        return Reply(200, self.exchange.write_limits.costs_body())

    def _user_data_timestamp(self, request: Request) -> Reply:
        return Reply(200, {"as_of_time": iso_ms(self.desk.as_of_ms())})

    def _series(self, request: Request, series_ticker: str) -> Reply:
        markets = [m for m in self.exchange.markets.markets() if m.series_ticker == series_ticker]
        if not markets:
            raise not_found(f"series {series_ticker} not found")
        fee_type, multiplier = fees_of(series_ticker)
        title = markets[0].title.rsplit(" ", 1)[0]
        return Reply(
            200,
            {
                "series": {
                    "ticker": series_ticker,
                    "frequency": "daily",
                    "title": title,
                    "category": "Simulated",
                    "tags": [],
                    "settlement_sources": [],
                    "contract_url": "",
                    "contract_terms_url": "",
                    "fee_type": fee_type,
                    "fee_multiplier": float(multiplier)
                    if multiplier.denominator != 1
                    else int(multiplier),
                    "additional_prohibitions": [],
                }
            },
        )

    def _event(self, request: Request, event_ticker: str) -> Reply:
        markets = [m for m in self.exchange.markets.markets() if m.event_ticker == event_ticker]
        if not markets:
            raise not_found(f"event {event_ticker} not found")
        series = markets[0].series_ticker
        fee_type, multiplier = fees_of(series)
        market_bodies = [self.exchange.rest.market_body(m.ticker) for m in markets]
        return Reply(
            200,
            {
                "event": {
                    "event_ticker": event_ticker,
                    "series_ticker": series,
                    "title": markets[0].title.rsplit(" ", 1)[0],
                    "sub_title": event_ticker,
                    "mutually_exclusive": False,
                    "category": "Simulated",
                    "collateral_return_type": "",
                    "available_on_brokers": False,
                    "fee_type": fee_type,
                    "fee_multiplier": int(multiplier)
                    if multiplier.denominator == 1
                    else float(multiplier),
                },
                "markets": market_bodies,
            },
        )


# -- helpers ------------------------------------------------------------------------------------
def _applies(fault: ArmedFault) -> bool:
    """Whether the write goes through under ``fault`` (a 2xx error body never applies)."""
    if fault.kind is TradingFault.ERROR_IN_2XX:
        return False
    return fault.applied


def _failed_item(item: Any, error: ApiError) -> dict[str, Any]:
    result: dict[str, Any] = {"order_id": None, "error": _error_item(error)}
    if isinstance(item, dict) and isinstance(item.get("client_order_id"), str):
        result["client_order_id"] = item["client_order_id"]
    return result


def _query_int(
    query: Mapping[str, str], name: str, default: int | None, high: int | None
) -> int | None:
    text = query.get(name, "")
    if text == "":
        return default
    if not text.isdigit() or len(text) > 18:
        raise bad_request(f"{name} must be an integer")
    value = int(text)
    if high is not None and value > high:
        raise bad_request(f"{name} must be at most {high}")
    return value


def balance_body(view: MemberTruth, shard: int | None) -> dict[str, Any]:
    """``GET /portfolio/balance`` for a trading member (cash per shard from the engine)."""
    cash = view.cash_by_shard_micros
    shards = sorted(cash) if shard is None else [shard]
    total = sum(cash.get(s, 0) for s in shards)
    value = sum(p.cost_micros for p in view.positions if shard is None or p.exchange_index == shard)
    return {
        "balance": total // MICROS_PER_CENT,
        "balance_dollars": format_dollars(total),
        "portfolio_value": value // MICROS_PER_CENT,
        "updated_ts": max([o.last_update_ms for o in view.orders] + [0]) // 1000,
        "balance_breakdown": [
            {"exchange_index": s, "balance": format_dollars(cash.get(s, 0))} for s in shards
        ],
    }
