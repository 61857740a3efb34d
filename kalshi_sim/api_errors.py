"""The exchange's REST error answers, in the three body shapes Kalshi uses (§8.3).

Why three: a client has to read ``error.code``, else a top-level ``code``, else keep the
text, so the exchange must produce each shape where Kalshi does:

* nested ``{"error": {"code", "message", "details"?}}``: the usual one;
* flat ``{"code": "bad_request", "message", "details"}``: unparseable JSON, a wrong type
  (a number where a fixed-point string belongs);
* bare ``{"msg": "..."}``: some parameter 400s, e.g. ``limit=1001``.

The 429 body (``{"error": "too many requests"}``) lives in :mod:`kalshi_sim.wire`.
"""

from __future__ import annotations

from typing import Any


class ApiError(Exception):
    """An error response: HTTP status plus Kalshi's ``{"error": {...}}`` body."""

    def __init__(self, status: int, code: str, message: str, details: str | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.code = code
        error: dict[str, str] = {"code": code, "message": message}
        if details:
            error["details"] = details
        self.body: dict[str, Any] = {"error": error}


def flat_bad_request(message: str, details: str = "") -> ApiError:
    """400 with the flat body Kalshi sends for unparseable JSON and wrong JSON types."""
    error = ApiError(400, "bad_request", message, details or None)
    error.body = {"code": "bad_request", "message": message, "details": details or message}
    return error


def bare_bad_request(text: str) -> ApiError:
    """400 with the bare ``{"msg": ...}`` body of some parameter checks (e.g. ``limit``)."""
    error = ApiError(400, "bad_request", text)
    error.body = {"msg": text}
    return error


def bad_request(message: str) -> ApiError:
    return ApiError(400, "bad_request", message)


def not_found(details: str) -> ApiError:
    return ApiError(404, "not_found", "not found", details)
