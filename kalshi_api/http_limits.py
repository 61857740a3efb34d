"""Hard limits on one HTTP exchange: a total deadline, a body size cap, and "was it sent?".

httpx's timeouts apply to each socket operation, so a server that trickles one byte just
inside the read timeout holds a request (its thread and socket) for as long as it likes.
:class:`DeadlineTransport` is an httpx transport built only on public httpcore API
(``httpcore.ConnectionPool``/``HTTPProxy`` take a ``network_backend``): its
:class:`DeadlineBackend` wraps ``httpcore.SyncBackend`` and clamps every connect, read and
write to what is left of the request's *total* deadline, headers included, so no request
outlives it. The same wrapper records whether any byte of the request was handed to the
socket, which is what separates "never sent, safe to send again" from "may have reached
the exchange" when a write fails (protocol §8.10). :func:`read_capped_body` reads a
streamed response and decompresses it itself, with the output length bounded, so neither a
huge body nor a gzip bomb can hold more than the cap in memory.
"""

from __future__ import annotations

import ssl
import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from typing import Any

import httpcore
import httpx
from httpcore import NetworkBackend, NetworkStream

_RAW_CHUNK = 64 * 1024


class DeadlineExceeded(httpcore.ReadTimeout):
    """The request's total deadline passed (mapped to ``httpx.ReadTimeout``)."""


class BodyTooLarge(Exception):
    """The (decompressed) body passed the cap; the message is one line."""


class UnsupportedEncoding(Exception):
    """The server compressed the body with an encoding this client did not offer."""


@dataclass
class Attempt:
    """One request's total deadline and whether any of it reached a socket."""

    deadline: float
    sent: bool = False


class RequestDeadlines:
    """The current request's monotonic deadline and "sent" flag, per thread."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def within(self, seconds: float) -> Iterator[Attempt]:
        """Everything on this thread inside the block must finish within ``seconds``.

        The yielded record's ``sent`` turns true once any byte of a request was handed to
        a socket inside the block (a partial write counts: the peer may have read it).
        """
        attempt = Attempt(time.monotonic() + seconds)
        self._local.attempt = attempt
        try:
            yield attempt
        finally:
            self._local.attempt = None

    def _current(self) -> Attempt | None:
        return getattr(self._local, "attempt", None)

    def clamp(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to the time left; raises once nothing is left."""
        attempt = self._current()
        if attempt is None:
            return timeout
        left = attempt.deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("total request deadline exceeded")
        return left if timeout is None else min(timeout, left)

    def mark_sent(self) -> None:
        attempt = self._current()
        if attempt is not None:
            attempt.sent = True


class _DeadlineStream(NetworkStream):
    def __init__(self, inner: NetworkStream, deadlines: RequestDeadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadlines.clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        clamped = self._deadlines.clamp(timeout)
        if buffer:
            self._deadlines.mark_sent()
        self._inner.write(buffer, clamped)

    def close(self) -> None:
        self._inner.close()

    def start_tls(
        self,
        ssl_context: Any,
        server_hostname: str | None = None,
        timeout: float | None = None,
    ) -> NetworkStream:
        inner = self._inner.start_tls(ssl_context, server_hostname, self._deadlines.clamp(timeout))
        return _DeadlineStream(inner, self._deadlines)

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class DeadlineBackend(NetworkBackend):
    """httpcore's sync socket backend with every operation clamped to the request deadline."""

    def __init__(self, deadlines: RequestDeadlines) -> None:
        self._inner = httpcore.SyncBackend()
        self._deadlines = deadlines

    def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,
        local_address: str | None = None,
        socket_options: Iterable[Any] | None = None,
    ) -> NetworkStream:
        stream = self._inner.connect_tcp(
            host, port, self._deadlines.clamp(timeout), local_address, socket_options
        )
        return _DeadlineStream(stream, self._deadlines)

    def connect_unix_socket(
        self, path: str, timeout: float | None = None, socket_options: Iterable[Any] | None = None
    ) -> NetworkStream:
        stream = self._inner.connect_unix_socket(
            path, self._deadlines.clamp(timeout), socket_options
        )
        return _DeadlineStream(stream, self._deadlines)

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


# -- the transport -----------------------------------------------------------------------------
_EXCEPTIONS: tuple[tuple[type[Exception], type[httpx.HTTPError]], ...] = (
    # Most specific first: the first match wins.
    (httpcore.ConnectTimeout, httpx.ConnectTimeout),
    (httpcore.ReadTimeout, httpx.ReadTimeout),
    (httpcore.WriteTimeout, httpx.WriteTimeout),
    (httpcore.PoolTimeout, httpx.PoolTimeout),
    (httpcore.TimeoutException, httpx.TimeoutException),
    (httpcore.ConnectError, httpx.ConnectError),
    (httpcore.ReadError, httpx.ReadError),
    (httpcore.WriteError, httpx.WriteError),
    (httpcore.NetworkError, httpx.NetworkError),
    (httpcore.ProxyError, httpx.ProxyError),
    (httpcore.UnsupportedProtocol, httpx.UnsupportedProtocol),
    (httpcore.LocalProtocolError, httpx.LocalProtocolError),
    (httpcore.RemoteProtocolError, httpx.RemoteProtocolError),
    (httpcore.ProtocolError, httpx.ProtocolError),
)


@contextmanager
def _httpx_errors() -> Iterator[None]:
    """httpcore's exceptions as the httpx ones callers of an httpx client expect."""
    try:
        yield
    except Exception as exc:
        for source, target in _EXCEPTIONS:
            if isinstance(exc, source):
                raise target(str(exc)) from exc
        raise


class _Body(httpx.SyncByteStream):
    def __init__(self, inner: Iterable[bytes]) -> None:
        self._inner = inner

    def __iter__(self) -> Iterator[bytes]:
        with _httpx_errors():
            yield from self._inner

    def close(self) -> None:
        close = getattr(self._inner, "close", None)
        if close is not None:
            close()


class DeadlineTransport(httpx.BaseTransport):
    """An httpx transport whose sockets honour :class:`RequestDeadlines` (HTTP/1.1).

    Built on httpcore's public pool classes with our network backend, so no private
    attribute of httpx or httpcore is touched. ``proxy`` (an ``http://`` or ``https://``
    proxy URL) routes every request through that proxy.
    """

    def __init__(
        self,
        deadlines: RequestDeadlines,
        *,
        ssl_context: ssl.SSLContext | None = None,
        proxy: str | None = None,
        max_connections: int = 10,
    ) -> None:
        backend = DeadlineBackend(deadlines)
        self._pool: httpcore.ConnectionPool
        if proxy:
            self._pool = httpcore.HTTPProxy(
                proxy_url=proxy,
                ssl_context=ssl_context,
                max_connections=max_connections,
                network_backend=backend,
            )
        else:
            self._pool = httpcore.ConnectionPool(
                ssl_context=ssl_context,
                max_connections=max_connections,
                network_backend=backend,
            )

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        assert isinstance(request.stream, httpx.SyncByteStream)
        core_request = httpcore.Request(
            method=request.method,
            url=httpcore.URL(
                scheme=request.url.raw_scheme,
                host=request.url.raw_host,
                port=request.url.port,
                target=request.url.raw_path,
            ),
            headers=request.headers.raw,
            content=request.stream,
            extensions=request.extensions,
        )
        with _httpx_errors():
            response = self._pool.handle_request(core_request)
        assert isinstance(response.stream, Iterable)
        return httpx.Response(
            status_code=response.status,
            headers=response.headers,
            stream=_Body(response.stream),
            extensions=response.extensions,
        )

    def close(self) -> None:
        self._pool.close()


def _decoder(content_encoding: str) -> Any:
    encodings = [e.strip().lower() for e in content_encoding.split(",") if e.strip()]
    encodings = [e for e in encodings if e != "identity"]
    if not encodings:
        return None
    if encodings == ["gzip"] or encodings == ["x-gzip"]:
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encodings == ["deflate"]:
        return zlib.decompressobj(zlib.MAX_WBITS)
    raise UnsupportedEncoding(f"unsupported Content-Encoding {content_encoding[:40]!r}")


def read_capped_body(
    raw_chunks: Iterable[bytes], content_encoding: str, cap: int, *, truncate: bool = False
) -> bytes:
    """The decoded body, never holding more than ``cap`` bytes of it.

    Past the cap: raise :class:`BodyTooLarge`, or with ``truncate`` return the first ``cap``
    bytes (enough to read an error message). Decompression is bounded per call
    (``max_length``), so a few KiB of gzip that would inflate to gigabytes never do.
    """
    decoder = _decoder(content_encoding)
    out = bytearray()
    for chunk in raw_chunks:
        data = chunk
        while data:
            if decoder is None:
                piece, data = data, b""
            else:
                piece = decoder.decompress(data, cap + 1 - len(out))
                data = decoder.unconsumed_tail
            out += piece
            if len(out) > cap:
                if truncate:
                    return bytes(out[:cap])
                what = "decompressed " if decoder is not None else ""
                raise BodyTooLarge(f"response body exceeds the {what}size cap of {cap} bytes")
            if decoder is not None and not piece and data:
                break  # defensive: no progress possible
    if decoder is not None:
        with suppress(zlib.error):
            out += decoder.flush()
        if len(out) > cap and not truncate:
            raise BodyTooLarge(f"response body exceeds the decompressed size cap of {cap} bytes")
    return bytes(out[:cap]) if truncate else bytes(out)


RAW_CHUNK = _RAW_CHUNK
"""Bytes read from the socket per step while streaming a body."""
