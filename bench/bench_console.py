"""The console's event feed: memory with 100 connected clients, and event-to-client latency.

Usage::

    .venv/bin/python bench/bench_console.py [--clients 100]

A real ``kalshi-supervisor run`` (embedded exchange, ``--status-port 0``) is the server; this
process is the clients, so the server's RSS (``/proc/PID/status``) counts only the server.

* **memory**: RSS after READY, then with ``--clients`` WebSocket feed clients connected
  (each has received its hello and the history), beside the floor: the same number of idle
  TCP connections to the same server, which costs uvicorn a connection object each.
* **latency**: an in-process :class:`ConsoleServer`; time from ``recorder(event)`` to the
  event arriving at a WebSocket client on loopback, beside the floor of a plain loopback
  WebSocket echo round trip measured in the same run. The browser's own figure (event to
  rendered card) is ``bench/bench_console_page.py``.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from websockets.sync.client import connect
from websockets.sync.server import serve

from app.console_server import ConsoleServer
from app.event_log import EventRecorder
from messages.events import StageFailureReported
from messages.states import State

SCRIPT = Path(sys.executable).with_name("kalshi-supervisor")
CONSOLE_LINE = re.compile(r"console at (http://\S+?)/(?:\s|$)")


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise RuntimeError("no VmRSS")


def memory(clients: int) -> None:
    env = dict(os.environ, XDG_STATE_HOME=tempfile.mkdtemp(prefix="bench-console-"))
    proc = subprocess.Popen(
        [str(SCRIPT), "run", "--status-port", "0", "--exchange-rate", "5"],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stderr is not None
    try:
        url = ""
        for line in proc.stderr:
            if match := CONSOLE_LINE.search(line):
                url = match.group(1)
                break
        ws_url = url.replace("http://", "ws://") + "/ws"
        with connect(ws_url) as ws:
            while json.loads(ws.recv(timeout=20)).get("to_state") != "ready":
                pass
        host, port = url.removeprefix("http://").rsplit(":", 1)
        base = rss_kib(proc.pid)
        with ExitStack() as stack:
            address = (host, int(port))
            socks = [stack.enter_context(socket.create_connection(address)) for _ in range(clients)]
            for sock in socks:  # a request each, so the server has really accepted them
                sock.sendall(f"GET /alive HTTP/1.1\r\nHost: {host}:{port}\r\n\r\n".encode())
                sock.recv(4096)
            idle = rss_kib(proc.pid)
        with ExitStack() as stack:
            feeds = [stack.enter_context(connect(ws_url)) for _ in range(clients)]
            for feed in feeds:
                json.loads(feed.recv(timeout=20))  # hello
            with connect(f"{ws_url}?since=0") as probe:  # everyone has had the history by now
                probe.recv(timeout=20)
            feeding = rss_kib(proc.pid)
        print(f"server RSS after READY: {base / 1024:.1f} MiB")
        print(
            f"{clients} idle keep-alive HTTP connections (floor): +{(idle - base) / 1024:.2f} MiB"
        )
        print(
            f"{clients} connected event-feed clients: +{(feeding - base) / 1024:.2f} MiB "
            f"({(feeding - base) / clients:.0f} KiB per client)"
        )
    finally:
        proc.send_signal(2)
        proc.wait(10)


def latency(samples: int = 300) -> None:
    recorder = EventRecorder()
    server = ConsoleServer(recorder, port=0, token="x" * 32, inject=lambda fault: {}).start()
    feed: list[float] = []
    try:
        with connect(f"ws://{server.address}/ws") as ws:
            ws.recv(timeout=10)
            for n in range(samples):
                start = time.perf_counter()
                recorder(
                    StageFailureReported(
                        stage="s", state=State.READY, error_type="E", reason=str(n)
                    )
                )
                ws.recv(timeout=10)
                feed.append((time.perf_counter() - start) * 1000)
    finally:
        server.stop()
    echo: list[float] = []

    def handler(conn: object) -> None:
        for message in conn:  # type: ignore[attr-defined]
            conn.send(message)  # type: ignore[attr-defined]

    with serve(handler, "127.0.0.1", 0) as echo_server:
        port = echo_server.socket.getsockname()[1]
        import threading

        thread = threading.Thread(target=echo_server.serve_forever, daemon=True)
        thread.start()
        with connect(f"ws://127.0.0.1:{port}") as ws:
            for n in range(samples):
                start = time.perf_counter()
                ws.send(str(n))
                ws.recv(timeout=10)
                echo.append((time.perf_counter() - start) * 1000)
        echo_server.shutdown()
    print(
        f"event recorded -> WebSocket client: median {statistics.median(feed):.2f} ms, "
        f"p95 {sorted(feed)[int(samples * 0.95)]:.2f} ms"
    )
    print(
        f"floor, loopback WebSocket echo round trip: median {statistics.median(echo):.2f} ms, "
        f"p95 {sorted(echo)[int(samples * 0.95)]:.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clients", type=int, default=100)
    args = parser.parse_args()
    memory(args.clients)
    latency()


if __name__ == "__main__":
    main()
