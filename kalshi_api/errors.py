"""Typed errors for the Kalshi REST API, built from whatever body the exchange sent.

Callers decide by type, not by string matching: an actor retries a ``RateLimitedError``
or ``ServerError``, re-reads its key on ``AuthenticationError`` and gives up on
``RequestRejectedError``. A write that may have reached the exchange without an answer is
``OutcomeUnknownError``, never a refusal and never retried. Kalshi sends several error
body shapes (§8.3: nested, flat, bare ``msg``, 429's plain string) and proxies in front of
it send HTML or nothing at all, so parsing never raises: an odd body only makes the
message vaguer. The class comes from the exact ``error.code`` first, the status second.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from types import MappingProxyType
from typing import Any, ClassVar, Final

import orjson

from kalshi_api.text import one_line

_MAX_TEXT = 200


class KalshiError(Exception):
    """Base of every error the client raises; ``str()`` is always one line.

    ``status`` is the HTTP status (None when no response arrived), ``code`` the
    snake_case error code from the body when there was one, ``details`` Kalshi's free
    text (e.g. the gRPC cause of an auth failure), and ``attempts`` how many requests
    were made before giving up.
    """

    retryable: ClassVar[bool] = False
    """Whether trying the same request again later can succeed."""

    def __init__(
        self,
        message: str,
        *,
        status: int | None = None,
        code: str | None = None,
        details: str | None = None,
        method: str | None = None,
        path: str | None = None,
        attempts: int = 1,
    ) -> None:
        self.message = one_line(message, None)
        self.status = status
        self.code = code
        self.details = one_line(details, None) if details is not None else None
        self.method = method
        self.path = path
        self.attempts = attempts
        super().__init__(self.message)

    def __str__(self) -> str:
        parts: list[str] = []
        if self.status is not None:
            parts.append(f"HTTP {self.status}")
        if self.code and self.code != self.message:
            parts.append(f"{self.code}:")
        parts.append(self.message or type(self).__name__)
        if self.details:
            parts.append(f"({self.details})")
        if self.method and self.path:
            parts.append(f"[{self.method} {self.path}]")
        if self.attempts > 1:
            parts.append(f"after {self.attempts} attempts")
        return " ".join(parts)

    def __repr__(self) -> str:
        name = type(self).__name__
        return f"{name}(status={self.status!r}, code={self.code!r}, message={self.message!r})"


class RequestRejectedError(KalshiError):
    """The exchange answered and refused the request: nothing was done (any 4xx but 408,
    or a 2xx whose body holds ``error``). Subclasses name the refusals a caller acts on;
    they are chosen by ``error.code`` first and by the status only when the code is
    unknown (409 means "your id is spent" or "trading is paused" depending on the code)."""


class AuthenticationError(RequestRejectedError):
    """401/403: the key, its signature, its scope or its environment is wrong."""


class RateLimitedError(RequestRejectedError):
    """429: the token bucket is empty; Kalshi sends no Retry-After, so back off and retry."""

    retryable = True


class NotFoundError(RequestRejectedError):
    """404 (or a not-found code): unknown ticker, order id, order group or path. For a
    cancel this means the order is already gone (cancelled, executed or never placed)."""


class DuplicateOrderError(RequestRejectedError):
    """409 ``order_already_exists``: the ``client_order_id`` is spent, by an earlier try of
    this very order or by an older one. Never the original order: look it up by id."""


class TradingPausedError(RequestRejectedError):
    """Trading is paused on the market, shard or exchange: stop, do not retry (§8.6)."""


class MarketClosedError(RequestRejectedError):
    """The market is past its close time or inactive: every order operation is refused."""


class InsufficientBalanceError(RequestRejectedError):
    """The shard's collateral does not cover the order."""


class InvalidOrderError(RequestRejectedError):
    """The order itself is wrong: off-grid price, post-only cross, missing or bad fields."""


class FillOrKillUnfilledError(RequestRejectedError):
    """A fill-or-kill order could not fill completely; nothing traded, the id is spent."""


class RiskLimitError(RequestRejectedError):
    """An exchange risk limit refused the order (order group triggered, per-market limit,
    sell-position floor)."""


class RetiredEndpointError(RequestRejectedError):
    """410 ``deprecated_v1_order_endpoint``: a retired path (sometimes inside a 2xx)."""


class LocallyRefusedError(RequestRejectedError):
    """Refused by this client before sending (a batch that cannot fit the write bucket at
    once): the exchange never saw it."""


class ServerError(KalshiError):
    """5xx: the exchange (or a proxy in front of it) failed; usually transient."""

    retryable = True


class RequestTimeoutError(KalshiError):
    """408: the server gave up waiting for the request; a read may simply be repeated."""

    retryable = True


class UnexpectedResponseError(KalshiError):
    """The exchange answered, but not in a shape this client understands."""


class ProtocolViolationError(UnexpectedResponseError):
    """The response parsed but states something impossible (a negative balance or count)."""


class ResponseTooLargeError(UnexpectedResponseError):
    """The body passed the client's size cap (after decompression); it was not read further."""


class CursorLoopError(KalshiError):
    """Pagination handed back a cursor it had already given: following it would never end."""


class TransportError(KalshiError):
    """No HTTP response at all: connection refused, reset, DNS failure or timeout.

    For a write this is raised only when no byte of the request reached a socket (the
    connection was never made), so sending the same request again is safe; a failure after
    that is :class:`OutcomeUnknownError`.
    """

    retryable = True


@dataclass(frozen=True, slots=True)
class SentRequest:
    """A write as it was sent: what a caller needs to resolve it or to resend it unchanged.

    ``body`` is the exact JSON that went out (so a resend keeps the same
    ``client_order_id`` and fields), ``query`` its query parameters.
    """

    method: str
    path: str
    query: tuple[tuple[str, str], ...] = ()
    body: bytes | None = None
    client_order_id: str | None = None
    client_order_ids: tuple[str, ...] = ()
    """Every order's id, for a batch (``client_order_id`` is then None)."""
    sent_at: float = 0.0
    """Wall-clock time (Unix seconds) just before it was sent."""


class OutcomeUnknownError(KalshiError):
    """A write may or may not have happened: timeout, dropped connection, 408 or 5xx after
    the request could have reached the exchange.

    Never retried by the client and never to be resent under a new ``client_order_id``:
    resolve it by looking the order up (``client_order_id``, then its fills), and only if
    it is still absent after the read lag resend ``request`` unchanged (protocol §8.10).
    """

    def __init__(
        self, message: str, *, request: SentRequest, given_up_at: float | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.request = request
        self.given_up_at = time.time() if given_up_at is None else given_up_at
        """Wall-clock time (Unix seconds) the client stopped waiting: a portfolio read as of
        this moment or later shows the write if the exchange carried it out in time."""
        self.client_order_id = request.client_order_id
        self.client_order_ids = request.client_order_ids or (
            (request.client_order_id,) if request.client_order_id else ()
        )

    def __str__(self) -> str:
        text = super().__str__()
        if self.client_order_ids:
            shown = ", ".join(self.client_order_ids[:3])
            more = len(self.client_order_ids) - 3
            text += f" (client_order_id {shown}{f' +{more} more' if more > 0 else ''})"
        return text


class ExchangePausedError(KalshiError):
    """The exchange is paused (``/exchange/status`` answered 503 with its status body).

    A condition to wait out, not a fault of the caller: ``resume_time`` is the exchange's
    own estimate (None when it gave none).
    """

    retryable = True

    def __init__(self, message: str, *, resume_time: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.resume_time = resume_time


# -- classification -----------------------------------------------------------------------------
def _codes(kind: type[KalshiError], *codes: str) -> dict[str, type[KalshiError]]:
    return dict.fromkeys(codes, kind)


CODE_CLASSES: Final[Mapping[str, type[KalshiError]]] = MappingProxyType(
    {
        **_codes(DuplicateOrderError, "order_already_exists", "ORDER_ALREADY_EXISTS"),
        **_codes(
            TradingPausedError,
            "trading_is_paused",
            "trading_paused",
            "exchange_paused",
            "TRADING_PAUSED",
            "EXCHANGE_PAUSED",
        ),
        **_codes(MarketClosedError, "market_inactive", "market_closed", "MARKET_INACTIVE"),
        **_codes(InsufficientBalanceError, "insufficient_balance", "INSUFFICIENT_BALANCE"),
        **_codes(
            InvalidOrderError,
            "invalid_price",
            "invalid_order",
            "missing_parameters",
            "invalid_parameters",
            "bad_request",
        ),
        **_codes(
            FillOrKillUnfilledError,
            "fill_or_kill_insufficient_resting_volume",
            "FILL_OR_KILL_INSUFFICIENT_RESTING_VOLUME",
        ),
        **_codes(
            RiskLimitError,
            "exceeded_order_group_risk_limit",
            "EXCEEDED_ORDER_GROUP_RISK_LIMIT",
            "EXCEEDED_PER_MARKET_RISK_LIMIT",
            "EXCEEDED_SELL_POSITION_FLOOR",
            "order_group_triggered",
        ),
        **_codes(
            NotFoundError,
            "not_found",
            "market_not_found",
            "order_group_not_found",
            "MARKET_NOT_FOUND",
            "ORDER_GROUP_NOT_FOUND",
            "ORDER_NOT_FOUND",
        ),
        **_codes(RetiredEndpointError, "deprecated_v1_order_endpoint"),
        **_codes(AuthenticationError, "authentication_error", "unauthorized", "forbidden"),
        **_codes(RateLimitedError, "too_many_requests"),
    }
)
"""Exact ``error.code`` -> refusal class. Matched exactly, never case-folded: the engine
codes that arrive UPPER case are listed as such (§8.3)."""

OUTCOME_UNKNOWN_CODES: Final = frozenset({"EXCHANGE_UNAVAILABLE", "exchange_unavailable"})
"""Codes saying the engine may not have answered (FIX ``EXCHANGE_UNAVAILABLE``): a write
that meets one is outcome-unknown, whatever the status."""

RATE_LIMIT_TEXT: Final = "too many requests"
"""429's body is ``{"error": "too many requests"}``, a plain string."""


def error_from_response(
    status: int,
    body: bytes,
    *,
    method: str | None = None,
    path: str | None = None,
    reason: str = "",
) -> KalshiError:
    """Classify a refused response by its ``error.code`` (exactly), else its status."""
    code, message, details = parse_error_body(body)
    if not message:
        message = reason or "empty response body"
    kind = class_for(status, code, message)
    return kind(message, status=status, code=code, details=details, method=method, path=path)


def class_for(status: int, code: str | None, message: str = "") -> type[KalshiError]:
    """The error class of a response: a known code decides, else the status.

    A 2xx status with an error body is a refusal (``RequestRejectedError`` unless its code
    says more); 5xx stays a server error whatever its code says.
    """
    if 500 <= status <= 599:
        return ServerError
    if status == 408:
        return RequestTimeoutError
    if code is not None and code in CODE_CLASSES:
        return CODE_CLASSES[code]
    if code is None and message == RATE_LIMIT_TEXT:
        return RateLimitedError
    return _class_for_status(status)


def parse_error_body(body: bytes) -> tuple[str | None, str, str | None]:
    """``(code, message, details)`` from any body; never raises.

    The shapes of §8.3: nested ``{"error": {"code", "message", "details"}}``, flat
    ``{"code", "message", "details"}``, bare ``{"msg": "..."}``, 429's
    ``{"error": "too many requests"}``; other JSON and non-JSON text are kept as a short
    one-line message.
    """
    if not body or not body.strip():
        return None, "", None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, _truncate(body.decode("utf-8", "replace")), None
    if isinstance(payload, dict):
        found = error_fields(payload)
        if found is not None:
            return found
    return None, _truncate(body.decode("utf-8", "replace")), None


def error_fields(payload: Mapping[str, Any]) -> tuple[str | None, str, str | None] | None:
    """``(code, message, details)`` if a decoded JSON object is an error body, else None."""
    error = payload.get("error")
    if isinstance(error, dict):
        return _fields(error)
    if isinstance(error, str) and error:
        return None, _truncate(error), None
    if isinstance(payload.get("code"), str) and (
        "message" in payload or "details" in payload or len(payload) == 1
    ):
        return _fields(payload)
    msg = payload.get("msg")
    if isinstance(msg, str) and len(payload) == 1:
        return None, _truncate(msg), None
    if isinstance(payload.get("message"), str) and "code" in payload:
        return _fields(payload)
    return None


def _fields(error: Mapping[str, Any]) -> tuple[str | None, str, str | None]:
    code = error.get("code")
    message = error.get("message")
    if message is None:
        message = error.get("msg")
    details = error.get("details")
    return (
        str(code) if code not in (None, "") else None,
        _truncate(str(message)) if message is not None else "",
        _truncate(_as_text(details)) if details not in (None, "") else None,
    )


def _class_for_status(status: int) -> type[KalshiError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitedError
    if status == 404:
        return NotFoundError
    if status == 410:
        return RetiredEndpointError
    if 500 <= status <= 599:
        return ServerError
    if 400 <= status <= 499 or 200 <= status <= 299:
        return RequestRejectedError
    return UnexpectedResponseError


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    try:
        return orjson.dumps(value).decode()
    except TypeError:
        return repr(value)


def _truncate(text: str) -> str:
    text = one_line(text, None)
    return text if len(text) <= _MAX_TEXT else text[: _MAX_TEXT - 3] + "..."
