"""The five compression families never import each other, and no core module grows past 400 lines.

What two families share (the distillation loss, a frozen teacher, the model-kind checks) lives in
a shared module (compression.teacher, compression.model_kinds), so each family package can be read,
tested and replaced on its own. The scan walks every import at any depth: module level, inside
functions, relative imports and importlib.import_module("...").
"""

from __future__ import annotations

import ast

import pytest

from compression.paths import REPO_ROOT as ROOT

FAMILIES = ("pruning", "distillation", "quantization", "architecture", "dynamic")
MAX_LINES = 400
TOO_LONG_FOR_NOW: set[str] = set()  # none left: every core module is within the limit


def family_of(module: str) -> str | None:
    """'compression.pruning.schedule' -> 'pruning'; None outside the five families."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "compression" and parts[1] in FAMILIES else None


def module_name(rel_path: str) -> str:
    """'compression/pruning/run.py' -> 'compression.pruning.run'; a package's __init__ is the package."""
    parts = rel_path.removesuffix(".py").split("/")
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imported_modules(source: str, module: str, *, is_package: bool = False) -> list[tuple[int, str]]:
    """(line, absolute name) for every import in `source`, the source of `module`. `from X import n`
    gives X, or X.n where X is no family (`from compression import dynamic`); relative imports are
    resolved against the package."""
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[:len(package.split(".")) - (node.level - 1)]
                base = ".".join(anchor + ([base] if base else []))
            found += ([(node.lineno, base)] if family_of(base) else
                      [(node.lineno, f"{base}.{a.name}") for a in node.names])
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else getattr(node.func, "id", "")
            if name in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                found.append((node.lineno, node.args[0].value))
    return found


def cross_family_imports(source: str, rel_path: str) -> list[tuple[int, str]]:
    """(line, imported module) for each import of another family from the file at `rel_path`."""
    module = module_name(rel_path)
    own = family_of(module)
    if own is None:
        return []
    found = imported_modules(source, module, is_package=rel_path.endswith("__init__.py"))
    return sorted({(line, name) for line, name in found if family_of(name) not in (None, own)})


@pytest.mark.parametrize("source, path, expected", [
    ("from compression.dynamic import refuse_slimmable", "compression/pruning/structured.py",
     [(1, "compression.dynamic")]),
    ("def f():\n    import compression.distillation.loss as l\n", "compression/dynamic/exits.py",
     [(2, "compression.distillation.loss")]),
    ("from compression import quantization, teacher", "compression/architecture/run.py",
     [(1, "compression.quantization")]),
    ("from ...dynamic import exits", "compression/pruning/x/y.py", [(1, "compression.dynamic")]),
    ("import importlib\nimportlib.import_module('compression.pruning')", "compression/dynamic/zoo_models.py",
     [(2, "compression.pruning")]),
    # one's own family, the shared modules, and modules outside the families may import anything
    ("from . import config\nfrom compression.pruning.run import sweep\nfrom compression.teacher import x",
     "compression/pruning/__init__.py", []),
    ("from compression.pruning import sweep", "compression/pipeline.py", []),
    ("from ..model_kinds import refuse_slimmable", "compression/architecture/conversion.py", []),
])
def test_the_scanner_finds_cross_family_imports(source, path, expected):
    assert cross_family_imports(source, path) == expected


def _core_files():
    files = sorted((ROOT / "compression").rglob("*.py"))
    assert len(files) > 20  # the scan really walked the package
    return files


def test_no_family_imports_another():
    bad = []
    for path in _core_files():
        rel = path.relative_to(ROOT).as_posix()
        for line, name in cross_family_imports(path.read_text(encoding="utf-8"), rel):
            bad.append(f"{rel}:{line} ({family_of(module_name(rel))}) imports {name}")
    assert not bad, ("a family must not import another family; move what they share into a shared "
                     "module (compression.teacher, compression.model_kinds):\n" + "\n".join(bad))


def test_no_core_module_is_over_400_lines():
    too_long = {}
    for path in _core_files():
        rel = path.relative_to(ROOT).as_posix()
        lines = len(path.read_text(encoding="utf-8").splitlines())
        if lines > MAX_LINES and rel not in TOO_LONG_FOR_NOW:
            too_long[rel] = lines
    assert not too_long, f"split these by role (at most {MAX_LINES} lines each): {too_long}"
