"""One vocabulary: each public name defined once, every logger under one root, one name per thing.

Why a test: twin helpers and twin types drift apart (two ``one_line`` with different limits, an
actor-internal ``StreamNotice`` beside the event of that name), and a logger outside the root
escapes the NullHandler and the CLI's level. These are read from the source, so a new module
that breaks the rule fails here, not in a review.
"""

from __future__ import annotations

import ast
import functools
from collections import defaultdict
from pathlib import Path

from messages import LOGGER_ROOT

ROOT = Path(__file__).resolve().parents[2]
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
    "webstack",
)
SUB_COMMAND_PROTOCOL = {"main", "build_parser"}
"""Every ``cli`` sub-command module defines these by design (``cli.main.COMMANDS``)."""


@functools.cache  # parsed once for every scan below (~1 s of CPU each time)
def _modules() -> list[tuple[str, ast.Module]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            dotted = ".".join(path.relative_to(ROOT).with_suffix("").parts)
            found.append((dotted.removesuffix(".__init__"), ast.parse(path.read_text())))
    return found


SIDE_LIBRARIES = ("kalshi_api", "kalshi_sim", "webstack")
"""Each side library is a vocabulary of its own (they import nothing of the product): the
protocol library names the wire's things as Kalshi does (``Fill``, ``Settlement``), the
embedded exchange names its side of the same wire, and the product translates both into its
own ``messages``. A twin *inside* one vocabulary is the drift this test is for."""


def _vocabulary(module: str) -> str:
    top = module.split(".", 1)[0]
    return top if top in SIDE_LIBRARIES else "product"


def test_scan_when_reading_every_package_each_public_name_is_defined_once() -> None:
    where: dict[tuple[str, str], list[str]] = defaultdict(list)
    for module, tree in _modules():
        for node in tree.body:
            if isinstance(node, ast.ClassDef | ast.FunctionDef) and not node.name.startswith("_"):
                where[(_vocabulary(module), node.name)].append(module)
    twins = {
        name: modules
        for (_, name), modules in where.items()
        if len(modules) > 1 and name not in SUB_COMMAND_PROTOCOL
    }
    assert twins == {}
    assert where[("kalshi_api", "one_line")] == ["kalshi_api.text"]
    assert ("product", "one_line") not in where  # the layers import kalshi_api's
    assert where[("product", "StreamNotice")] == ["messages.events"]
    assert where[("kalshi_api", "BookDepth")] == ["kalshi_api.book_view"]


def test_scan_when_reading_every_logger_it_is_named_root_dot_module() -> None:
    names: dict[str, list[str]] = {}
    for module, tree in _modules():
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
                and node.args[0].value.startswith(("kalshi", "actors", "core", "app"))
            ):
                names.setdefault(module, []).append(node.args[0].value)
            elif (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "getLogger"
                and node.args
                and isinstance(node.args[0], ast.Name)
                and node.args[0].id == "__name__"
            ):
                names.setdefault(module, []).append("__name__")
    assert len(names) > 20
    wrong = {
        module: found
        for module, found in names.items()
        if any(name != f"{LOGGER_ROOT}.{module}" for name in found)
    }
    assert wrong == {}


def test_scan_when_reading_the_source_the_console_server_has_one_name() -> None:
    stale = [
        str(path.relative_to(ROOT))
        for package in (*PACKAGES, "docs")
        for path in (ROOT / package).rglob("*")
        if path.suffix in {".py", ".md"} and "control server" in path.read_text().lower()
    ]
    assert stale == []
