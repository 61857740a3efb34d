"""Benchmarks are not tests, but they must not rot: each one still imports the product's API.

A rename in the product (the handle moving to ``app.handle`` broke one silently) fails here,
in the suite, rather than the next time somebody runs the benchmark.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

BENCHMARKS = sorted(
    path.stem for path in (Path(__file__).parent.parent / "bench").glob("bench_*.py")
)


def test_benchmarks_when_listed_are_found() -> None:
    assert "bench_orderbook_stream" in BENCHMARKS and "bench_ready" in BENCHMARKS


@pytest.mark.parametrize("name", BENCHMARKS)
def test_benchmark_when_imported_resolves_every_name(name: str) -> None:
    module = importlib.import_module(f"bench.{name}")
    assert callable(getattr(module, "main", None)), f"bench/{name}.py has no main()"
