"""Registers the ``slow`` marker here too, so these tests run clean before and after the
marker lands in pyproject.toml (registering a marker twice is harmless)."""

from __future__ import annotations

import pytest


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "slow: seconds per test; deselect with -m 'not slow'")
