"""The control calls' HTTP client and the rendezvous with a running supervisor, shared by
``inject``, ``halt`` and ``resume``.

Why a socket and not httpx: these commands answer in about the time the interpreter takes to
start (``bench/bench_cli.py``); see :func:`post_json`. The one-line, exit-code contract of
each command is its own; what they share is finding the supervisor (``--state-file``,
``--url``, ``--token``), sending one JSON request and reading one JSON reply.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any


def add_endpoint_arguments(parser: argparse.ArgumentParser, *, timeout: float = 5.0) -> None:
    """``--token``, ``--state-file``, ``--url``, ``--timeout``: how to reach the supervisor."""
    parser.add_argument(
        "--token",
        help="control token (overrides the state file's; visible to `ps`, prefer the file)",
    )
    parser.add_argument(
        "--state-file",
        type=Path,
        help="where the running supervisor published its endpoint "
        "(default: $XDG_STATE_HOME/kalshi-supervisor/control.json, "
        "else ~/.local/state/kalshi-supervisor/control.json)",
    )
    parser.add_argument("--url", help="console server URL (overrides the state file's)")
    parser.add_argument(
        "--timeout",
        type=float,
        default=timeout,
        help=f"seconds to wait for the reply (default: {timeout:g})",
    )


def post_json(
    url: str, path: str, body: dict[str, Any], token: str, timeout: float
) -> tuple[int, Any]:
    """POST ``body`` as JSON to ``url + path``; (status, decoded JSON or None).

    One HTTP/1.1 request on a plain socket, not httpx or ``http.client``: this command's
    budget is 150 ms from the shell, and importing either client (``http.client`` pulls in
    ``ssl`` and ``email``) costs a third of it. The console answers JSON with a
    Content-Length and closes on ``Connection: close``, which is all this reads; anything
    else is reported as a malformed reply. ``https://`` (a console behind a TLS proxy) goes
    through ``http.client`` instead. Raises ValueError for a URL that is not
    http(s)://host[:port].
    """
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("expected http://HOST:PORT")
    try:
        port = parts.port
    except ValueError as exc:
        raise ValueError(str(exc)) from None
    target = parts.path.rstrip("/") + path
    payload = json.dumps(body).encode()
    if parts.scheme == "https":
        return _post_tls(parts.hostname, port, target, payload, token, timeout)
    import socket

    host = parts.hostname
    host_header = f"[{host}]" if ":" in host else host
    request = (
        f"POST {target} HTTP/1.1\r\nHost: {host_header}:{port or 80}\r\n"
        f"Authorization: Bearer {token}\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(payload)}\r\nConnection: close\r\n\r\n"
    ).encode() + payload
    with socket.create_connection((host, port or 80), timeout=timeout) as sock:
        sock.sendall(request)
        raw = bytearray()
        while len(raw) <= _MAX_REPLY and (chunk := sock.recv(65536)):
            raw += chunk
    return _parse_reply(bytes(raw))


_MAX_REPLY = 1024 * 1024


def _parse_reply(raw: bytes) -> tuple[int, Any]:
    """Status and JSON body of a complete HTTP/1.1 response (Content-Length or close)."""
    head, separator, body = raw.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    fields = status_line.split(" ", 2)
    if (
        not separator
        or len(fields) < 2
        or not fields[0].startswith("HTTP/")
        or not fields[1].isdigit()
    ):
        raise ConnectionError("malformed reply (not HTTP)")
    headers = {
        name.strip().lower(): value.strip()
        for name, _, value in (line.partition(":") for line in header_lines)
    }
    if "chunked" in headers.get("transfer-encoding", "").lower():
        raise ConnectionError("malformed reply (chunked body)")
    length = headers.get("content-length")
    if length is not None and length.isdigit():
        body = body[: int(length)]
    try:
        return int(fields[1]), json.loads(body)
    except ValueError:
        return int(fields[1]), None


def _post_tls(
    host: str, port: int | None, target: str, payload: bytes, token: str, timeout: float
) -> tuple[int, Any]:
    import http.client

    connection = http.client.HTTPSConnection(host, port, timeout=timeout)
    try:
        connection.request(
            "POST",
            target,
            body=payload,
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )
        response = connection.getresponse()
        raw = response.read(_MAX_REPLY)
    except http.client.HTTPException as exc:
        raise ConnectionError(str(exc) or type(exc).__name__) from None
    finally:
        connection.close()
    try:
        return response.status, json.loads(raw)
    except ValueError:
        return response.status, None


def stale_hint(pid: int | None, state_file: Path | None) -> str:
    """Tell a stale state file (the supervisor died without cleaning up) from a hung one."""
    if pid is None or state_file is None or _pid_alive(pid):
        return ""
    return f" (pid {pid} named in {state_file} is not running; stale state file?)"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True  # exists but belongs to someone else (EPERM)
    return True
