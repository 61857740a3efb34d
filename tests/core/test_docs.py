"""The maps in docs/ stay true: faults.md against the fault matrix, states.md against the code."""

from __future__ import annotations

import functools
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


PACKAGES = (
    "actors",
    "app",
    "cli",
    "core",
    "messages",
    "supervision",
    "trading",
    "kalshi_api",
    "kalshi_sim",
)
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
ALL_CODE = "\n".join(
    p.read_text() for folder in (*PACKAGES, "webstack") for p in (ROOT / folder).rglob("*.py")
) + (ROOT / "supervisor.py").read_text()


EXTERNAL = {"Protocol", "NullHandler", "Origin", "Host"}
"""Names the docs mention that are not ours: ``typing``/``logging`` names, HTTP headers."""


def _checked_text(doc: Path) -> str:
    """What a doc says exists: planned work ("Still to come" sections) and quoted error
    messages about missing files are left out."""
    kept: list[str] = []
    planned = False
    for line in doc.read_text().splitlines():
        if line.startswith("#"):
            planned = "to come" in line.lower()
        if not planned and "no such file" not in line:
            kept.append(line)
    return "\n".join(kept)


def _defined(name: str, code: str = ALL_CODE) -> bool:
    """Defined (class, function, assignment) or imported into ``code``."""
    return name in _names_defined(code)


@functools.lru_cache(maxsize=8)
def _names_defined(code: str) -> frozenset[str]:
    """Every name ``code`` defines (``class``/``def``, an assignment at a line's start or
    ``name = ``) or imports (``from m import ...`` on the line): one pass per pattern.
    A regex of its own per name looked up scanned all our code each time, ~10 s a test."""
    names = {
        *re.findall(r"(?:class|def) (\w+)", code),
        *re.findall(r"^\s*(\w+)\s*[:=]", code, re.M),
        *re.findall(r"\b(\w+) = ", code),
    }
    for imported in re.findall(r"^from \S+ import ([^\n]*)", code, re.M):
        names.update(re.findall(r"\w+", imported))
    return frozenset(names)


@functools.lru_cache(maxsize=1)
def _members_defined() -> frozenset[str]:
    """Every name our code defines with ``def``, assigns or annotates (``name =``,
    ``name:``): what ``Owner.member`` in the docs may name."""
    return frozenset(
        {*re.findall(r"def (\w+)", ALL_CODE), *re.findall(r"\b(\w+)\s*[:=]", ALL_CODE)}
    )


def test_docs_when_naming_a_file_path_the_file_exists() -> None:
    top = "|".join((*PACKAGES, "webstack", "examples", "tests", "bench", "docs"))
    missing = [
        (doc.name, path)
        for doc in DOCS
        for path in re.findall(rf"\b((?:{top})/[\w/]+\.(?:py|md))\b", _checked_text(doc))
        if not (ROOT / path).exists()
    ]
    assert missing == []


def test_docs_when_naming_a_dotted_module_or_its_member_it_exists() -> None:
    """``core.ports.ExchangeFaultHook``: the longest prefix that is a module file, then the
    rest defined in it."""
    missing = []
    for doc in DOCS:
        text = _checked_text(doc)
        for dotted in set(re.findall(rf"`((?:{'|'.join(PACKAGES)})(?:\.\w+)+)`", text)):
            parts = dotted.split(".")
            for cut in range(len(parts), 0, -1):
                base = ROOT.joinpath(*parts[:cut])
                module = base.with_suffix(".py") if base.with_suffix(".py").exists() else (
                    base / "__init__.py"
                )
                if module.exists():
                    break
            else:
                missing.append((doc.name, dotted))
                continue
            rest = parts[cut:]
            if rest and not _defined(rest[0], module.read_text()):
                missing.append((doc.name, dotted))
    assert missing == []


def test_docs_when_naming_a_class_or_member_in_backticks_it_exists() -> None:
    """```StageSpec``` and ```ReadyWatch.enter```: the class (or function) is defined in our
    code, and so is the member."""
    missing = []
    for doc in DOCS:
        text = _checked_text(doc)
        for owner, attr in re.findall(r"`([A-Z][A-Za-z0-9]+)\.([a-z_][a-z_0-9]*)`", text):
            if not _defined(owner) or attr not in _members_defined():
                missing.append((doc.name, f"{owner}.{attr}"))
        for name in set(re.findall(r"`([A-Z][a-z][A-Za-z0-9]*)`", text)) - EXTERNAL:
            # an error_type (``Unresponsive``) is a string the code sets, not a class
            if not _defined(name) and f'"{name}"' not in ALL_CODE:
                missing.append((doc.name, name))
    assert missing == []
