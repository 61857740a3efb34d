"""Typed errors for the Kalshi REST API, built from whatever body the exchange sent.

Callers decide by type, not by string matching: an actor retries a ``RateLimitedError``
or ``ServerError``, re-reads its key on ``AuthenticationError`` and gives up on
``RequestRejectedError``. Kalshi uses two error body shapes (``{"error": {...}}`` and
429's ``{"error": "too many requests"}``) and proxies in front of it send HTML or
nothing at all, so parsing never raises: an odd body only makes the message vaguer.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, ClassVar

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


class AuthenticationError(KalshiError):
    """401/403: the key, its signature, its scope or its environment is wrong."""


class RateLimitedError(KalshiError):
    """429: the token bucket is empty; Kalshi sends no Retry-After, so back off and retry."""

    retryable = True


class NotFoundError(KalshiError):
    """404: unknown ticker, order id or path."""


class ServerError(KalshiError):
    """5xx: the exchange (or a proxy in front of it) failed; usually transient."""

    retryable = True


class RequestRejectedError(KalshiError):
    """Any other 4xx (400 bad params, 409 duplicate client_order_id, 410 retired endpoint)."""


class UnexpectedResponseError(KalshiError):
    """The exchange answered, but not in a shape this client understands."""


class ProtocolViolationError(UnexpectedResponseError):
    """The response parsed but states something impossible (a negative balance or count)."""


class ResponseTooLargeError(UnexpectedResponseError):
    """The body passed the client's size cap (after decompression); it was not read further."""


class CursorLoopError(KalshiError):
    """Pagination handed back a cursor it had already given: following it would never end."""


class TransportError(KalshiError):
    """No HTTP response at all: connection refused, reset, DNS failure or timeout."""

    retryable = True


class ExchangePausedError(KalshiError):
    """The exchange is paused (``/exchange/status`` answered 503 with its status body).

    A condition to wait out, not a fault of the caller: ``resume_time`` is the exchange's
    own estimate (None when it gave none).
    """

    retryable = True

    def __init__(self, message: str, *, resume_time: datetime | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.resume_time = resume_time


def error_from_response(
    status: int,
    body: bytes,
    *,
    method: str | None = None,
    path: str | None = None,
    reason: str = "",
) -> KalshiError:
    """Classify a non-2xx response by status and pull code/message/details from its body."""
    code, message, details = parse_error_body(body)
    if not message:
        message = reason or "empty response body"
    kind = _class_for_status(status)
    return kind(message, status=status, code=code, details=details, method=method, path=path)


def parse_error_body(body: bytes) -> tuple[str | None, str, str | None]:
    """``(code, message, details)`` from any body; never raises.

    Handles ``{"error": {"code", "message", "details"}}``, ``{"error": "text"}``, other
    JSON, and non-JSON text (truncated to one short line).
    """
    if not body or not body.strip():
        return None, "", None
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        return None, _truncate(body.decode("utf-8", "replace")), None
    if isinstance(payload, dict):
        error = payload.get("error")
        if isinstance(error, dict):
            code = error.get("code")
            message = error.get("message")
            details = error.get("details")
            return (
                str(code) if code is not None else None,
                _truncate(str(message)) if message is not None else "",
                _truncate(_as_text(details)) if details not in (None, "") else None,
            )
        if isinstance(error, str):
            return None, _truncate(error), None
        message = payload.get("message")
        if isinstance(message, str):
            code = payload.get("code")
            return (str(code) if code is not None else None, _truncate(message), None)
    return None, _truncate(body.decode("utf-8", "replace")), None


def _class_for_status(status: int) -> type[KalshiError]:
    if status in (401, 403):
        return AuthenticationError
    if status == 429:
        return RateLimitedError
    if status == 404:
        return NotFoundError
    if 500 <= status <= 599:
        return ServerError
    if 400 <= status <= 499:
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
