"""No import cycles between our top-level packages, read from the real import graph.

import-linter's layers contract (``lint-imports``, in .ci/run) forbids upward imports in the
layered stack; this test covers every top-level package, including the side libraries
(``kalshi_api``, ``kalshi_sim``, ``webstack``) that are outside the stack, so a cycle such as
``kalshi_api -> kalshi_sim -> kalshi_api`` fails the suite too.
"""

from __future__ import annotations

from collections.abc import Mapping, Set

import grimp

PACKAGES = (
    "cli",
    "app",
    "core",
    "actors",
    "trading",
    "supervision",
    "messages",
    "kalshi_api",
    "kalshi_sim",
    "webstack",
)


def find_cycles(edges: Mapping[str, Set[str]]) -> list[list[str]]:
    """Every elementary cycle's first sighting by depth-first search (enough to report one)."""
    cycles: list[list[str]] = []
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        for nxt in sorted(edges.get(node, ())):
            if nxt in path:
                cycles.append([*path[path.index(nxt) :], nxt])
            elif nxt not in done:
                visit(nxt, [*path, nxt])
        done.add(node)

    for start in sorted(edges):
        if start not in done:
            visit(start, [start])
    return cycles


def package_edges() -> dict[str, set[str]]:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    return {
        importer: {
            imported
            for imported in PACKAGES
            if imported != importer
            and graph.direct_import_exists(importer=importer, imported=imported, as_packages=True)
        }
        for importer in PACKAGES
    }


def test_find_cycles_when_graph_has_a_cycle_reports_it() -> None:
    edges = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}

    assert find_cycles(edges) == [["a", "b", "c", "a"]]


def test_find_cycles_when_graph_is_layered_reports_none() -> None:
    assert find_cycles({"top": {"mid", "low"}, "mid": {"low"}, "low": set()}) == []


def test_top_level_packages_when_imports_read_have_no_cycle() -> None:
    edges = package_edges()

    assert find_cycles(edges) == [], edges


def test_kalshi_sim_when_imports_read_is_imported_only_by_app_bootstrap() -> None:
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    importers = {
        importer
        for module in graph.find_descendants("kalshi_sim") | {"kalshi_sim"}
        for importer in graph.find_modules_that_directly_import(module)
        if not importer.startswith("kalshi_sim")
    }

    assert importers == {"app.bootstrap"}
