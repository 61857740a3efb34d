"""Loading services: MODULE:CLASS (dotted or a .py path), entry points, options; one-line errors."""

from __future__ import annotations

import sys
from decimal import Decimal
from pathlib import Path

import pytest

from app.service_loader import ServiceLoadError, load_class, parse_value, specs_from_cli
from examples.spread_alert import SpreadAlert

ROOT = Path(__file__).resolve().parents[2]
ALERT = str(ROOT / "examples" / "spread_alert.py") + ":SpreadAlert"


def test_reference_when_a_py_path_loads_the_class_with_its_default_name() -> None:
    (spec,) = specs_from_cli([ALERT], ["spread_alert.threshold=0.03", 'spread_alert.tickers=["A"]'])
    assert spec.name == "spread_alert"
    assert spec.actor_class.__name__ == "SpreadAlert"
    assert spec.options.threshold == Decimal("0.03")
    assert spec.options.tickers == ("A",)


def test_reference_when_dotted_loads_the_same_class() -> None:
    assert load_class("examples.spread_alert:SpreadAlert") is SpreadAlert


def test_reference_when_named_uses_that_name() -> None:
    a, b = specs_from_cli([f"wide={ALERT}", f"narrow={ALERT}"], ["narrow.threshold=0.01"])
    assert (a.name, b.name) == ("wide", "narrow")
    assert b.options.threshold == Decimal("0.01")


@pytest.mark.parametrize(
    ("reference", "message"),
    [
        ("", "empty service reference"),
        ("nothing_here", "expected MODULE:CLASS, or the name of an installed"),
        ("no_such_module_xyz:Thing", "no module named 'no_such_module_xyz'"),
        ("examples/missing.py:Thing", "no such file examples/missing.py"),
        ("examples.spread_alert:Nope", "has no 'Nope'"),
        ("examples.spread_alert:logging", "logging is not a ServiceActor subclass"),
        ("actors.service:ServiceActor", "subclass ServiceActor"),
        ("./README.md:X", "is not a .py file"),
        (":X", "expected MODULE:CLASS"),
    ],
)
def test_reference_when_bad_raises_one_line(reference: str, message: str) -> None:
    with pytest.raises(ServiceLoadError) as info:
        specs_from_cli([reference])
    assert message in str(info.value)
    assert "\n" not in str(info.value)


def test_reference_when_module_raises_on_import_is_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("raise RuntimeError('boom\\nsecond line')\n")
    with pytest.raises(ServiceLoadError, match=r"loading .*broken.py failed: RuntimeError: boom"):
        load_class(f"{broken}:X")


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (["spread_alert.threshold=2"], "option threshold: Input should be less than 1"),
        (["spread_alert.nope=1"], "option nope: Extra inputs are not permitted"),
        (["spread_alert=1"], "expected NAME.KEY=VALUE"),
        (["other.threshold=0.1"], "options for unknown service(s): other"),
    ],
)
def test_options_when_bad_raise_one_line(options: list[str], message: str) -> None:
    with pytest.raises(ServiceLoadError) as info:
        specs_from_cli([ALERT], options)
    assert message in str(info.value)


def test_names_when_duplicated_or_reserved_are_refused() -> None:
    with pytest.raises(ServiceLoadError, match="already used"):
        specs_from_cli([ALERT, ALERT])
    with pytest.raises(ServiceLoadError, match="already used"):
        specs_from_cli([f"exchange={ALERT}"])


def test_entry_point_when_installed_loads_by_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dist = tmp_path / "demo_services-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: demo-services\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[kalshi_supervisor.services]\nalerts = examples.spread_alert:SpreadAlert\n"
        "broken = no_such_module_xyz:Thing\n"
    )
    monkeypatch.syspath_prepend(str(tmp_path))
    assert load_class("alerts") is SpreadAlert
    (spec,) = specs_from_cli(["alerts"])
    assert spec.name == "spread_alert"
    with pytest.raises(ServiceLoadError, match="loading entry point no_such_module_xyz:Thing"):
        load_class("broken")
    assert str(tmp_path) in sys.path


def test_option_values_parse_json_and_keep_decimals_exact() -> None:
    assert parse_value("0.1") == "0.1"
    assert parse_value("3") == 3
    assert parse_value('["A", "B"]') == ["A", "B"]
    assert parse_value("true") is True
    assert parse_value("out.csv") == "out.csv"
