"""The maps in docs/ stay true: faults.md against the fault matrix, states.md against the code."""

from __future__ import annotations

import re
from pathlib import Path

from tests.core.test_fault_matrix import CASES

ROOT = Path(__file__).resolve().parents[2]
SOURCES = [
    p
    for folder in ("core", "actors", "supervision", "messages")
    for p in (ROOT / folder).glob("*.py")
]


def fault_table() -> dict[tuple[str, str], set[str]]:
    rows: dict[tuple[str, str], set[str]] = {}
    for line in (ROOT / "docs" / "faults.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) != 5 or cells[0] in ("target", "---") or set(cells[0]) <= {"-"}:
            continue
        key = (cells[0], cells[1])
        assert key not in rows, f"docs/faults.md lists {key} twice"
        rows[key] = {s.strip() for s in cells[2].split(",")}
    return rows


def test_faults_doc_lists_exactly_the_faults_and_states_the_matrix_exercises() -> None:
    exercised: dict[tuple[str, str], set[str]] = {}
    for state, target, fault, _, _ in CASES:
        exercised.setdefault((target, fault), set()).add(state.name)
    documented = fault_table()
    assert set(documented) - set(exercised) == set(), "documented but not exercised"
    assert set(exercised) - set(documented) == set(), "exercised but not documented"
    for key, states in exercised.items():
        assert documented[key] == states, key


def test_states_and_faults_docs_name_only_code_that_exists() -> None:
    code = "\n".join(p.read_text() for p in SOURCES)
    for doc in ("states.md", "faults.md", "metadata.md"):
        text = (ROOT / "docs" / doc).read_text()
        for owner, attr in re.findall(r"`([A-Z][A-Za-z]+)\.([a-z_][a-z_]*)`", text):
            assert re.search(rf"class {owner}\b", code), (doc, owner)
            assert re.search(rf"def {attr}\b|\b{attr}\b\s*[:=]", code), (doc, owner, attr)
        for name in re.findall(r"`([a-z_]+)` \(`core/", text):
            assert re.search(rf"def {name}\b", code), (doc, name)
