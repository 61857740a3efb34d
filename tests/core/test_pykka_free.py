"""The decision core is pykka-free: importing it (and the spec types) loads no pykka.

Why at run time too (``lint-imports`` checks the static graph): an import hidden behind a
function or a re-export would pass the contract and still drag pykka into a process that
only wants to decide (a test rig, a simulation, a future non-pykka shell).
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DECISION_MODULES = (
    "core.supervisor_core",
    "core.ports",
    "core.services",
    "actors.stage_spec",
    "actors.service_spec",
    "actors.controls",
)


def _loads_pykka(modules: tuple[str, ...]) -> bool:
    code = f"import sys\nfor m in {list(modules)!r}: __import__(m)\nprint('pykka' in sys.modules)"
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip() == "True"


def test_import_when_loading_the_decision_core_pykka_stays_unloaded() -> None:
    assert _loads_pykka(DECISION_MODULES) is False


def test_import_when_loading_the_shell_pykka_is_loaded() -> None:
    """The check itself can fail: the shell does load pykka."""
    assert _loads_pykka(("core.supervisor_actor",)) is True
