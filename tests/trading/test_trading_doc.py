"""docs/trading.md stays true: the names it gives exist, its tables list exactly the code's."""

from __future__ import annotations

import re
import typing
from pathlib import Path

import actors.context as context
import app.handle as handle
import kalshi_sim.exchange as sim_exchange
import messages.orders as orders
import supervision.config as config
import trading
from trading import halt, ids, lookup, order_state, pnl, reconcile, risk, tracker

ROOT = Path(__file__).resolve().parents[2]
DOC = (ROOT / "docs" / "trading.md").read_text()
MODULES = (
    orders, halt, ids, lookup, order_state, pnl, reconcile, risk, tracker, context, config, handle,
    sim_exchange,
)
"""Where the names it gives live (the gateway's and the trading stage's settings too, and the
handle's kill switch, the embedded exchange's test hooks)."""


def first_cells(heading: str) -> set[str]:
    """The backticked first cells of the table under ``heading``."""
    section = DOC.split(heading, 1)[1].split("\n## ", 1)[0]
    return set(re.findall(r"^\| `([A-Za-z_]+)` \|", section, flags=re.M))


def test_trading_doc_when_it_names_class_members_they_exist() -> None:
    named = re.findall(r"`([A-Z][A-Za-z]+)\.([a-z_]+)`", DOC)
    assert named, "the doc names no members: the check below would check nothing"
    for owner, attr in named:
        holders = [getattr(m, owner) for m in MODULES if hasattr(m, owner)]
        assert holders, owner
        assert any(hasattr(h, attr) or attr in getattr(h, "model_fields", {})
                   or attr in getattr(h, "__slots__", ()) for h in holders) or any(
            re.search(rf"self\.{attr}\b", Path(m.__file__).read_text()) for m in MODULES
        ), (owner, attr)


def test_trading_doc_when_it_tables_differences_lists_exactly_the_code() -> None:
    documented = first_cells("## Reconciliation")
    coded = {t.__name__ for t in typing.get_args(orders.Difference)}
    assert documented == coded


def test_trading_doc_when_it_tables_limits_lists_exactly_risk_limits_fields() -> None:
    assert first_cells("## Risk") - {"ACTIVE", "REDUCING", "HALTED"} == set(
        orders.RiskLimits.model_fields
    )
    assert {"ACTIVE", "REDUCING", "HALTED"} <= first_cells("## Risk")


def test_trading_doc_when_it_lists_modules_each_exists() -> None:
    for path in re.findall(r"^\| `((?:trading|messages)/[a-z_]+\.py)` \|", DOC, flags=re.M):
        assert (ROOT / path).is_file(), path
    assert trading.__doc__


def test_trading_doc_when_it_tables_halt_defaults_matches_the_policy() -> None:
    section = DOC.split("## Halting", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| `([a-z_]+)` \| `([A-Z]+)`", section, flags=re.M))
    assert rows == {r.value: s.name for r, s in halt.DEFAULT_ON.items()}
