"""Hard limits on one HTTP exchange: a total deadline and a body size cap.

httpx's timeouts apply to each socket operation, so a server that trickles one byte just
inside the read timeout holds a request (its thread and socket) for as long as it likes.
:class:`DeadlineBackend` wraps httpcore's socket backend and clamps every connect, read
and write to what is left of the request's *total* deadline, headers included, so no
request outlives it. :func:`read_capped_body` reads a streamed response and decompresses
it itself, with the output length bounded, so neither a huge body nor a gzip bomb can
hold more than the cap in memory.
"""

from __future__ import annotations

import threading
import time
import zlib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any

import httpcore
from httpcore import NetworkBackend, NetworkStream
from httpcore._backends.sync import SyncBackend

_RAW_CHUNK = 64 * 1024


class DeadlineExceeded(httpcore.ReadTimeout):
    """The request's total deadline passed (mapped to ``httpx.ReadTimeout`` by httpx)."""


class BodyTooLarge(Exception):
    """The (decompressed) body passed the cap; the message is one line."""


class UnsupportedEncoding(Exception):
    """The server compressed the body with an encoding this client did not offer."""


class RequestDeadlines:
    """The current request's monotonic deadline, per thread (a client may be used by several)."""

    def __init__(self) -> None:
        self._local = threading.local()

    @contextmanager
    def within(self, seconds: float) -> Iterator[None]:
        """Everything on this thread inside the block must finish within ``seconds``."""
        self._local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = None

    def clamp(self, timeout: float | None) -> float | None:
        """``timeout`` shortened to the time left; raises once nothing is left."""
        deadline: float | None = getattr(self._local, "deadline", None)
        if deadline is None:
            return timeout
        left = deadline - time.monotonic()
        if left <= 0:
            raise DeadlineExceeded("total request deadline exceeded")
        return left if timeout is None else min(timeout, left)


class _DeadlineStream(NetworkStream):
    def __init__(self, inner: NetworkStream, deadlines: RequestDeadlines) -> None:
        self._inner = inner
        self._deadlines = deadlines

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, self._deadlines.clamp(timeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, self._deadlines.clamp(timeout))

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
        self._inner = SyncBackend()
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


def install_backend(transport: object, backend: NetworkBackend) -> bool:
    """Put ``backend`` under an httpx transport's connection pool; False if it has none.

    httpx does not expose httpcore's ``network_backend`` argument, so this sets the pool's
    attribute (httpcore 1.x reads it whenever it opens a connection).
    """
    pool = getattr(transport, "_pool", None)
    if pool is None or not hasattr(pool, "_network_backend"):
        return False
    pool._network_backend = backend
    return True


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
