"""What every benchmark prints besides its figures: the machine, p90s, what it left behind."""

from __future__ import annotations

import os
import platform
import statistics
import threading
from collections.abc import Sequence
from pathlib import Path

import pykka


def machine_info() -> str:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (0.0, 0.0, 0.0)
    return (
        f"machine: {os.cpu_count()} cores ({usable} usable){f', {model}' if model else ''}; "
        f"Python {platform.python_version()} ({platform.python_implementation()}) on "
        f"{platform.system()} {platform.release()}; load average {load[0]:.2f}"
    )


def p90(values: Sequence[float]) -> float:
    if len(values) < 2:
        return values[0]
    return statistics.quantiles(values, n=10, method="inclusive")[8]


def quantile(values: Sequence[float], q: int) -> float:
    """The q-th percentile (1..99), inclusive method: what the latency benches print."""
    return statistics.quantiles(values, n=100, method="inclusive")[q - 1]


def latency_summary(values_s: Sequence[float]) -> str:
    """p50 / p90 / p99 / max of latencies given in seconds, printed in milliseconds."""
    ms = [v * 1000 for v in values_s]
    return (
        f"p50 {statistics.median(ms):6.2f} ms  p90 {p90(ms):6.2f} ms  "
        f"p99 {quantile(ms, 99):6.2f} ms  max {max(ms):6.2f} ms  (n={len(ms)})"
    )


def leaks(baseline: set[threading.Thread]) -> list[str]:
    """Threads and actors this benchmark left behind (there should be none)."""
    left = [t.name for t in threading.enumerate() if t not in baseline and t.is_alive()]
    actors = [ref.actor_class.__name__ for ref in pykka.ActorRegistry.get_all()]
    return left + [f"actor {name}" for name in actors]


def ws_text_frame(payload: bytes) -> bytes:
    """One unmasked server->client text frame (RFC 6455 §5.2), FIN set: the benchmarks'
    senders write pre-encoded frames to a raw socket so the sender is never the bottleneck."""
    size = len(payload)
    if size < 126:
        header = bytes((0x81, size))
    elif size < 1 << 16:
        header = bytes((0x81, 126)) + size.to_bytes(2, "big")
    else:
        header = bytes((0x81, 127)) + size.to_bytes(8, "big")
    return header + payload
