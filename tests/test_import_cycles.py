"""No import cycles inside ``core``, and the explain package is used through its public names only.

The graph has an edge ``a -> b`` for every ``import`` in module ``a`` of a module
``b`` of ``core`` at any depth (function-level imports included, so an import
moved into a function to dodge a cycle still counts); ``if TYPE_CHECKING:``
blocks are left out (they never run).
"""
from __future__ import annotations

import ast
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

#: Packages allowed a cycle (none today: each registry lives in a module of its own, never in
#: the package ``__init__`` that imports the modules registering into it). A cycle anywhere else
#: fails; so does a package listed here that has none any more, so the list only shrinks.
KNOWN_CYCLE_PACKAGES: tuple[str, ...] = ()


def core_modules(root: Path = ROOT) -> dict[str, Path]:
    """Dotted name -> file of every module under ``core``."""
    out = {}
    for path in (root / "core").rglob("*.py"):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _type_checking_lines(tree: ast.AST) -> set[int]:
    lines: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            for child in node.body:
                lines.update(range(child.lineno, (child.end_lineno or child.lineno) + 1))
    return lines


def import_graph(modules: dict[str, Path]) -> dict[str, dict[str, int]]:
    """``{module: {imported core module: line}}``."""

    def resolve(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, dict[str, int]] = {}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        skip = _type_checking_lines(tree)
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: dict[str, int] = {}
        for node in ast.walk(tree):
            if getattr(node, "lineno", None) in skip:
                continue
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(parts + ([base] if base else []))
                targets = [base, *(f"{base}.{a.name}" for a in node.names)]
            for target in targets:
                found = resolve(target) if target.startswith("core") else None
                if found and found != name:
                    edges.setdefault(found, node.lineno)
        graph[name] = edges
    return graph


def cycles(graph: dict[str, dict[str, int]]) -> list[frozenset[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    out: list[frozenset[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in graph.get(v, {}):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.add(w)
                if w == v:
                    break
            if len(comp) > 1:
                out.append(frozenset(comp))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(graph):
        if v not in index:
            visit(v)
    return out


def _package_of(cycle: frozenset[str]) -> str | None:
    """The known package the whole cycle lies in, if any."""
    for package in KNOWN_CYCLE_PACKAGES:
        if all(m == package or m.startswith(package + ".") for m in cycle):
            return package
    return None


def test_core_has_no_import_cycles() -> None:
    graph = import_graph(core_modules())
    assert "core.explain._engine" in graph and graph["core.explain._engine"]
    found = cycles(graph)
    new = [sorted(c) for c in found if _package_of(c) is None]
    described = [" -> ".join(f"{a} (line {graph[a][b]}) -> {b}" for a in c for b in graph[a] if b in c)
                 for c in new]
    assert new == [], f"import cycles: {described}"
    gone = sorted(set(KNOWN_CYCLE_PACKAGES) - {_package_of(c) for c in found})
    assert gone == [], f"no cycle left in {gone}: remove them from KNOWN_CYCLE_PACKAGES"


def test_the_cycle_check_sees_function_level_imports(tmp_path) -> None:
    pkg = tmp_path / "core" / "pkg"
    pkg.mkdir(parents=True)
    (tmp_path / "core" / "__init__.py").write_text("")
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("from core.pkg.b import g\n\ndef f():\n    return g()\n")
    (pkg / "b.py").write_text("def g():\n    from core.pkg import a  # dodging the cycle\n    return a\n")
    (pkg / "c.py").write_text("from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from core.pkg.d import x\n")
    (pkg / "d.py").write_text("from core.pkg import c\n")
    graph = import_graph(core_modules(tmp_path))
    assert cycles(graph) == [frozenset({"core.pkg.a", "core.pkg.b"})]


def test_tests_and_benchmarks_use_the_public_explain_api() -> None:
    """No private module of core (``core.x._y``) is imported from tests or benchmarks: public names only."""
    private = re.compile(r"\bcore(\.\w+)*\._[a-z]\w*")
    offending = [f"{p.relative_to(ROOT)}:{i}: {line.strip()}"
                 for folder in ("tests", "benchmarks") for p in sorted((ROOT / folder).rglob("*.py"))
                 if p.name != Path(__file__).name
                 for i, line in enumerate(p.read_text().splitlines(), 1)
                 if private.search(line) and not line.lstrip().startswith("#")]
    assert offending == []


def _run(code: str) -> str:
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_settings_and_stored_explanations_load_without_torch() -> None:
    """The CLI builds its parser from the settings, and pages read stored explanations and the
    build's plan: none of that imports torch or the engine (the package loads names on use)."""
    out = _run("import sys\n"
               "from core.explain import (ExplainSettings, add_explain_arguments, class_share_table, "
               "load_explanations, explanation_for, select_build_runs, Explanation)\n"
               "import core.explain as E\n"
               "print(sorted({'torch', 'core.explain._engine', 'core.explain._game'} & set(sys.modules)))\n"
               "print(len(E.__all__), all(hasattr(E, n) for n in E.__all__))\n")
    heavy, names = out.splitlines()
    assert heavy == "[]"
    assert names.split()[1] == "True" and int(names.split()[0]) > 50


@pytest.mark.slow
def test_each_explain_module_imports_on_its_own() -> None:
    """Each module of the explain package imported first in a fresh process (an import order
    problem that the whole-package import hides shows up here)."""
    names = sorted(n for n in core_modules() if n.startswith("core.explain."))
    assert len(names) >= 12
    procs = {n: subprocess.Popen([sys.executable, "-c", f"import {n}"], cwd=ROOT, stderr=subprocess.PIPE, text=True)
             for n in names}
    failed = {n: p.communicate(timeout=300)[1][-500:] for n, p in procs.items() if p.wait(timeout=300) != 0}
    assert failed == {}
