"""Parsing V2 order bodies into engine requests, with Kalshi's refusals for bad input (§8.1).

Why strict: Kalshi rejects numeric JSON for counts and prices (a flat 400 ``bad_request``,
[FORT]) and a client that sends ``"count": 1`` must see that here, not on the real
exchange. Every refusal is an :class:`~kalshi_sim.api_errors.ApiError` with one line of
text; nothing here can raise anything else on any JSON.

Which code a missing field gets is UNCONFIRMED (§8.3 lists ``missing_parameters`` and
``invalid_order``): here ``ticker``, ``side``, ``time_in_force`` and
``self_trade_prevention_type`` missing are ``missing_parameters``; ``count`` and ``price``
missing are ``invalid_order``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from kalshi_api.fixed_point import FixedPointError, parse_count, parse_dollars
from kalshi_sim.api_errors import ApiError, flat_bad_request
from kalshi_sim.engine_types import STP_TYPES, TIME_IN_FORCE, OrderRequest

MAX_BODY_BYTES = 1 << 20
MAX_CLIENT_ORDER_ID = 64
_CLIENT_ORDER_ID = re.compile(r"^[\-\w:+=/]*$", re.ASCII)
"""FIX's ClOrdID rule [FIXOE]; the REST rule is UNCONFIRMED, the simulator applies FIX's."""
MAX_SUBACCOUNT = 63


def load_json(body: bytes) -> Any:
    """The request body as JSON; unparseable -> flat 400 ``bad_request``."""
    if len(body) > MAX_BODY_BYTES:
        raise flat_bad_request("request body too large")
    try:
        return orjson.loads(body or b"null")
    except orjson.JSONDecodeError:
        raise flat_bad_request("invalid JSON body", "could not parse the request body") from None


def require_object(value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise flat_bad_request("invalid request body", "the body must be a JSON object")
    return value


def _missing(name: str, code: str) -> ApiError:
    return ApiError(400, code, f"missing parameter {name}", f"{name} is required")


def _string(body: dict[str, Any], name: str, missing_code: str) -> str:
    value = body.get(name)
    if value is None:
        raise _missing(name, missing_code)
    if not isinstance(value, str):
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be a string")
    return value


def parse_count_field(body: dict[str, Any], name: str, *, required: bool = True) -> int | None:
    """A positive fp count string (0-2 decimals) -> centi-contracts; numbers are refused."""
    value = body.get(name)
    if value is None:
        if required:
            raise _missing(name, "invalid_order")
        return None
    if not isinstance(value, str):
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be a fixed-point string")
    try:
        centi = parse_count(value)
    except FixedPointError:
        raise ApiError(400, "invalid_order", f"invalid {name}", value[:40]) from None
    if centi < 0:
        raise ApiError(400, "invalid_order", f"{name} must not be negative")
    return centi


def parse_price_field(body: dict[str, Any], name: str = "price") -> int:
    """A dollar string (up to 4 decimals) -> micro-dollars; strictly inside (0, 1)."""
    value = body.get(name)
    if value is None:
        raise _missing(name, "invalid_order")
    if not isinstance(value, str):
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be a dollar string")
    try:
        micros = parse_dollars(value)
    except FixedPointError:
        raise ApiError(400, "invalid_price", "invalid price", value[:40]) from None
    if micros % 100 or not 0 < micros < 1_000_000:
        raise ApiError(400, "invalid_price", "invalid price", value[:40])
    return micros


def _bool(body: dict[str, Any], name: str) -> bool:
    value = body.get(name, False)
    if value is None:
        return False
    if type(value) is not bool:
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be a boolean")
    return value


def optional_int(
    body: dict[str, Any], name: str, *, low: int, high: int | None = None
) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    if type(value) is not int:
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be an integer")
    if value < low or (high is not None and value > high):
        raise ApiError(400, "invalid_parameters", f"{name} out of range", str(value))
    return value


def client_order_id(body: dict[str, Any], name: str = "client_order_id") -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str):
        raise flat_bad_request(f"invalid type for {name}", f"{name} must be a string")
    if not value or len(value) > MAX_CLIENT_ORDER_ID or not _CLIENT_ORDER_ID.match(value):
        raise ApiError(400, "invalid_order", f"invalid {name}", "64 characters of [-\\w:+=/]")
    return value


def side_field(body: dict[str, Any]) -> str:
    side = _string(body, "side", "missing_parameters")
    if side not in ("bid", "ask"):
        raise ApiError(400, "invalid_order", "invalid side", "side must be bid or ask")
    return side


@dataclass(frozen=True, slots=True)
class CreateOrder:
    """A parsed create body; ``exchange_index`` None (or -1 on the wire) auto-routes."""

    request: OrderRequest
    exchange_index: int | None


def parse_create(body: Any, member: str) -> CreateOrder:
    """``POST /portfolio/events/orders`` body (or one batch item) -> an engine request."""
    fields = require_object(body)
    ticker = _string(fields, "ticker", "missing_parameters")
    side = side_field(fields)
    count = parse_count_field(fields, "count")
    assert count is not None
    if count == 0:
        raise ApiError(400, "invalid_order", "count must be positive")
    price = parse_price_field(fields)
    tif = _string(fields, "time_in_force", "missing_parameters")
    if tif not in TIME_IN_FORCE:
        raise ApiError(400, "invalid_order", "invalid time_in_force", tif[:40])
    stp = _string(fields, "self_trade_prevention_type", "missing_parameters")
    if stp not in STP_TYPES:
        raise ApiError(400, "invalid_order", "invalid self_trade_prevention_type", stp[:40])
    expiration = optional_int(fields, "expiration_time", low=0)
    if expiration is not None and tif != "good_till_canceled":
        raise ApiError(400, "invalid_order", "expiration_time is for good_till_canceled only")
    group = fields.get("order_group_id")
    if group is not None and not isinstance(group, str):
        raise flat_bad_request("invalid type for order_group_id", "must be a string")
    shard = optional_int(fields, "exchange_index", low=-1, high=63)
    request = OrderRequest(
        member=member,
        ticker=ticker,
        side=side,  # type: ignore[arg-type]
        count_centi=count,
        price_micros=price,
        time_in_force=tif,  # type: ignore[arg-type]
        self_trade_prevention_type=stp,  # type: ignore[arg-type]
        client_order_id=client_order_id(fields),
        expiration_time_s=expiration or None,
        post_only=_bool(fields, "post_only"),
        reduce_only=_bool(fields, "reduce_only"),
        cancel_order_on_pause=_bool(fields, "cancel_order_on_pause"),
        order_group_id=group,
        subaccount=optional_int(fields, "subaccount", low=0, high=MAX_SUBACCOUNT) or 0,
    )
    return CreateOrder(request, None if shard in (None, -1) else shard)


@dataclass(frozen=True, slots=True)
class AmendOrder:
    ticker: str
    side: str
    price_micros: int
    count_centi: int
    client_order_id: str | None
    updated_client_order_id: str | None
    expiration_time_s: int | None


def parse_amend(body: Any) -> AmendOrder:
    """``POST …/{id}/amend``: ``ticker, side, price, count`` required; ``count`` is the total."""
    fields = require_object(body)
    ticker = _string(fields, "ticker", "missing_parameters")
    side = side_field(fields)
    price = parse_price_field(fields)
    count = parse_count_field(fields, "count")
    assert count is not None
    return AmendOrder(
        ticker=ticker,
        side=side,
        price_micros=price,
        count_centi=count,
        client_order_id=client_order_id(fields),
        updated_client_order_id=client_order_id(fields, "updated_client_order_id"),
        expiration_time_s=optional_int(fields, "expiration_time", low=0),
    )


def parse_decrease(body: Any) -> tuple[int | None, int | None]:
    """``POST …/{id}/decrease``: exactly one of ``reduce_by`` / ``reduce_to``."""
    fields = require_object(body)
    reduce_by = parse_count_field(fields, "reduce_by", required=False)
    reduce_to = parse_count_field(fields, "reduce_to", required=False)
    if (reduce_by is None) == (reduce_to is None):
        raise ApiError(400, "invalid_parameters", "exactly one of reduce_by and reduce_to")
    if reduce_by == 0:
        raise ApiError(400, "invalid_parameters", "reduce_by must be positive")
    return reduce_by, reduce_to


def parse_group_limit(body: Any) -> int:
    """``contracts_limit`` (integer) or ``contracts_limit_fp`` (string), 1-1,000,000 contracts."""
    fields = require_object(body)
    whole = fields.get("contracts_limit")
    if whole is not None:
        if type(whole) is not int:
            raise flat_bad_request("invalid type for contracts_limit", "must be an integer")
        centi = whole * 100
    else:
        parsed = parse_count_field(fields, "contracts_limit_fp", required=False)
        if parsed is None:
            raise ApiError(400, "missing_parameters", "missing parameter contracts_limit")
        centi = parsed
    if not 100 <= centi <= 100_000_000:
        raise ApiError(400, "invalid_parameters", "contracts_limit must be 1 to 1,000,000")
    return centi
