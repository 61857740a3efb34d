"""Connecting to Kalshi's WebSocket: connect options, and one-line reasons when it fails."""

from __future__ import annotations

import ipaddress
import socket
import ssl
from typing import Any
from urllib.parse import urlsplit

import orjson
from websockets.exceptions import ConnectionClosed, InvalidHandshake, InvalidStatus

from kalshi_api.text import one_line

DEFAULT_MAX_FRAME_BYTES = 2**20
"""Largest frame accepted (1 MiB). A full book with sub-cent ticks on both sides is a few
hundred KB; anything bigger is hostile or broken and closes the session (code 1009)."""


def connect_options(
    url: str,
    *,
    open_timeout: float = 5.0,
    ping_interval: float | None = 10.0,
    max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
    compression: bool = False,
) -> dict[str, Any]:
    """Keyword arguments for ``websockets.asyncio.client.connect``, shared with the benchmark.

    Loopback ``ws://`` URLs bypass any proxy from the environment (an HTTP proxy would
    break the embedded exchange); real ``wss://`` hosts keep the default proxy handling.
    Compression is off unless asked for: with permessage-deflate a small frame can inflate
    to ``max_size`` and memory follows the exchange, not us. ``max_queue`` bounds frames
    buffered ahead of the reader, so memory is at most ``max_queue * max_frame_bytes``.
    """
    return {
        "open_timeout": open_timeout,
        "ping_interval": ping_interval,
        "ping_timeout": 20.0 if ping_interval else None,
        "close_timeout": 1.0,
        "max_size": max_frame_bytes,
        "max_queue": 64,
        "compression": "deflate" if compression else None,
        "proxy": None if _is_loopback_ws(url) else True,
    }


def _is_loopback_ws(url: str) -> bool:
    parts = urlsplit(url)
    if parts.scheme != "ws":
        return False
    host = parts.hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def describe_connect_error(exc: BaseException, url: str, open_timeout: float) -> str:
    """One line saying why a connection attempt failed (never a traceback)."""
    parts = urlsplit(url)
    where = parts.netloc or url
    if isinstance(exc, InvalidStatus):
        status = exc.response.status_code
        detail = _error_detail(bytes(exc.response.body or b""))
        return f"WebSocket upgrade to {where} rejected: HTTP {status}{detail}"
    if isinstance(exc, socket.gaierror):
        return f"DNS lookup failed for {parts.hostname}: {exc.strerror or exc}"
    if isinstance(exc, ConnectionRefusedError):
        return f"connection refused by {where}"
    if isinstance(exc, TimeoutError):
        return f"timed out after {open_timeout:g}s connecting to {where}"
    if isinstance(exc, ssl.SSLError):
        return f"TLS handshake with {where} failed: {exc.reason or one_line(exc)}"
    if isinstance(exc, OSError):
        return f"cannot connect to {where}: {exc.strerror or one_line(exc)}"
    if isinstance(exc, InvalidHandshake):
        return f"WebSocket handshake with {where} failed: {one_line(exc)}"
    return f"cannot connect to {where}: {type(exc).__name__}: {one_line(exc)}"


def _error_detail(body: bytes) -> str:
    """Kalshi's ``{"error":{"code","message","details"}}`` body, squeezed to a suffix."""
    if not body:
        return ""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        return f" ({one_line(body.decode('utf-8', 'replace'))[:120]})"
    if isinstance(error, dict):
        parts = [str(error[key]) for key in ("code", "details") if error.get(key)]
        return f" ({': '.join(parts)})" if parts else ""
    return f" ({error})" if error else ""


def describe_close(exc: ConnectionClosed) -> str:
    if exc.rcvd is not None:
        why = f" {exc.rcvd.reason}" if exc.rcvd.reason else ""
        return f"connection closed by the exchange (code {exc.rcvd.code}{why})"
    if exc.sent is not None:
        return f"connection closed (code {exc.sent.code} {exc.sent.reason})".rstrip()
    return "connection lost (no close frame)"

