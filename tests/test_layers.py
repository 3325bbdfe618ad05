"""The layers stay apart: ``core`` (the model side) never imports streamlit, the dashboard package
``ui`` or the pages in ``views``; ``ui``'s plain modules run without streamlit; and what a page
needs to start imports neither torch nor umap (they come with the first explanation or UMAP)."""
from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
UI_ONLY = ("streamlit", "ui", "views")
#: ui modules that are plain Python (tested without a server): they must not need streamlit
PLAIN_UI = ("ui.stamps", "ui.queries", "ui.commands", "ui.precomputed", "ui.models", "ui.labels", "ui.tables",
            "ui.contributions", "ui.slices",
            "ui.blame",
            "ui.story", "ui.report",
            "ui.saved_views",
            "ui.exports",
            "ui.figures")
#: The one narrow exception to "core never imports ui": the CLI is the application shell, and
#: ``fusionlens report`` draws the plain report package (inside its command's handler only).
CORE_UI_EXCEPTIONS = {("core/cli.py", "ui.report")}


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module a file imports, at any depth (function-level imports included), with its line."""
    tree = ast.parse(path.read_text(), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            found.append((node.lineno, node.module))
        elif (isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None))
              in ("import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant)):
            found.append((node.lineno, str(node.args[0].value)))
    return found


def test_core_never_imports_the_ui_or_streamlit():
    files = sorted((ROOT / "core").rglob("*.py"))
    assert len(files) > 20
    offending = [f"{path.relative_to(ROOT)}:{line} imports {name}" for path in files
                 for line, name in _imported_modules(path) if name.split(".")[0] in UI_ONLY
                 and (path.relative_to(ROOT).as_posix(), name) not in CORE_UI_EXCEPTIONS]
    assert offending == []


def test_the_cli_imports_the_report_only_inside_its_command():
    """The exception stays narrow: core/cli.py imports ui.report in ``cmd_report`` and nothing else of ui."""
    tree = ast.parse((ROOT / "core" / "cli.py").read_text())
    top_level = [n for n in tree.body if isinstance(n, (ast.Import, ast.ImportFrom))]
    assert not [n for n in top_level if isinstance(n, ast.ImportFrom) and (n.module or "").split(".")[0] in UI_ONLY]
    found = [(f.name, name) for f in ast.walk(tree) if isinstance(f, ast.FunctionDef)
             for n in ast.walk(f) if isinstance(n, ast.ImportFrom) and (name := n.module or "").split(".")[0] in UI_ONLY]
    assert found == [("cmd_report", "ui.report")]


def test_the_scan_sees_function_level_and_dynamic_imports(tmp_path):
    probe = tmp_path / "probe.py"
    probe.write_text("import os\n\ndef f():\n    from ui import queries\n    import streamlit as st\n"
                     "    __import__('views.x')\n")
    assert [name for _, name in _imported_modules(probe)] == ["os", "ui", "streamlit", "views.x"]


def _run(code: str) -> None:
    subprocess.run([sys.executable, "-c", code], check=True, cwd=str(ROOT))


def test_importing_every_core_module_loads_no_ui():
    _run("import pkgutil, importlib, sys, core\n"
         "for m in pkgutil.walk_packages(core.__path__, 'core.'):\n"
         "    if not m.name.endswith('__main__'):  # the CLI entry runs the CLI\n"
         "        importlib.import_module(m.name)\n"
         f"bad = sorted(n for n in sys.modules if n.split('.')[0] in {UI_ONLY!r})\n"
         "assert not bad, bad\n")


def test_plain_ui_modules_need_no_streamlit():
    _run(f"import sys\nfor m in {PLAIN_UI!r}: __import__(m)\n"
         "assert 'streamlit' not in sys.modules, 'a plain ui module imports streamlit'\n")


@pytest.mark.parametrize("modules", [("ui.sidebar", "ui.loaders", "ui.widgets", "ui.viewers", "ui.figures")])
def test_a_page_starts_without_torch_or_umap(modules):
    _run(f"import sys\nfor m in {modules!r}: __import__(m)\n"
         "heavy = sorted({'torch', 'umap', 'numba', 'transformers'} & set(sys.modules))\n"
         "assert not heavy, heavy\n")
