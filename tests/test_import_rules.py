"""compression/ is the core library: no file in it imports streamlit or ui/, not even inside a
function (a lazy import escapes the fresh-interpreter check in test_boundaries.py until it runs)."""

import ast

import pytest

from compression.paths import REPO_ROOT as ROOT

FORBIDDEN = ("streamlit", "ui")  # top-level packages, and everything under them


def _forbidden(module: str | None) -> bool:
    return bool(module) and module.split(".")[0] in FORBIDDEN


def forbidden_imports(source: str) -> list[tuple[int, str]]:
    """(line, module) for each import of a forbidden package anywhere in `source`: module level,
    inside functions or `if` blocks, and importlib.import_module("...") / __import__("...")."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names if _forbidden(a.name)]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _forbidden(node.module):
            found.append((node.lineno, node.module))
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and _forbidden(str(node.args[0].value)):
                found.append((node.lineno, str(node.args[0].value)))
    return sorted(found)


@pytest.mark.parametrize("source, expected", [
    ("import streamlit as st", [(1, "streamlit")]),
    ("import os, streamlit.components.v1", [(1, "streamlit.components.v1")]),
    ("def f():\n    from ui.charts import x\n", [(2, "ui.charts")]),
    ("class A:\n    def f(self):\n        if True:\n            import ui\n", [(4, "ui")]),
    ("import importlib\nimportlib.import_module('streamlit')", [(2, "streamlit")]),
    ("from . import ui\nfrom .ui import x\nimport uikit\nfrom compression.charts import pareto", []),
])
def test_the_scanner_finds_imports_at_any_depth(source, expected):
    assert forbidden_imports(source) == expected


def test_compression_never_imports_streamlit_or_ui():
    files = sorted((ROOT / "compression").rglob("*.py"))
    assert len(files) > 20  # the scan really walked the package
    bad = [f"{path.relative_to(ROOT)}:{line} imports {module}"
           for path in files for line, module in forbidden_imports(path.read_text(encoding="utf-8"))]
    assert not bad, "compression/ must not import streamlit or ui/:\n" + "\n".join(bad)
