"""The artifact container is a registry that points one way: compression/artifact.py imports no
family (not even inside a function), the families register how to read the payloads they write,
and no import circle runs through the container (before, artifact -> pruning/quantization ->
methods -> artifact was one circle of 17 modules). A fresh interpreter that imports only the
container still loads every payload kind."""

from __future__ import annotations

import subprocess
import sys

import pytest

from compression import CompressionError
from compression.paths import REPO_ROOT as ROOT
from tests.test_family_imports import family_of, imported_modules, module_name


def _import_graph() -> dict[str, set[str]]:
    """module -> the project modules it imports anywhere in its source (functions included)."""
    files = {module_name(p.relative_to(ROOT).as_posix()): p for p in (ROOT / "compression").rglob("*.py")}
    graph = {}
    for module, path in files.items():
        found = set()
        for _, name in imported_modules(path.read_text(encoding="utf-8"), module, is_package=path.name == "__init__.py"):
            while name and name not in files:  # `from compression.x import fn` -> compression.x
                name = name.rpartition(".")[0]
            if name and name != module:
                found.add(name)
        graph[module] = found
    return graph


def _reachable(graph: dict[str, set[str]], start: str) -> set[str]:
    seen, todo = set(), list(graph[start])
    while todo:
        m = todo.pop()
        if m not in seen:
            seen.add(m)
            todo += graph.get(m, ())
    return seen


def test_the_container_imports_no_family_and_no_family_is_in_a_circle_with_it():
    graph = _import_graph()
    assert len(graph) > 50  # the scan really walked the package
    assert not [m for m in graph["compression.artifact"] if family_of(m)], graph["compression.artifact"]
    # the modules in one import circle with the container: those it reaches that reach it back
    circle = {m for m in _reachable(graph, "compression.artifact") if "compression.artifact" in _reachable(graph, m)}
    assert not [m for m in circle if family_of(m)], f"families in an import circle with compression.artifact: {circle}"
    # and the families still register their readers: the registry depends on them only at run time
    assert "compression.artifact" in graph["compression.pruning.sparse_format"]
    assert "compression.artifact" in graph["compression.quantization.artifact"]


def test_a_fresh_interpreter_that_imports_only_the_container_loads_every_payload(tmp_path, fmnist):
    from compression.methods import compress
    files = {}
    for method, config in (("prune", "unstructured:0.7"), ("prune", "structured:0.5"), ("quantize", "uniform:4")):
        run = compress("mlp", fmnist, method, config, device="cpu", limit=200, options={"kernel": False})
        files[config] = tmp_path / f"{config.replace(':', '-')}.cxp"
        files[config].write_bytes(run.artifact)
    code = ("import sys\nfrom compression.artifact import load_artifact, read_artifact\n"
            "assert 'compression.pruning' not in sys.modules and 'compression.quantization' not in sys.modules\n"
            "for path in sys.argv[1:]:\n"
            "    blob = open(path, 'rb').read()\n"
            "    model = load_artifact(blob)\n"
            "    print(read_artifact(blob)[0]['payload'], sum(p.numel() for p in model.parameters()))\n")
    out = subprocess.run([sys.executable, "-c", code, *map(str, files.values())], cwd=ROOT, capture_output=True,
                         text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    kinds = [line.split()[0] for line in out.stdout.splitlines()]
    assert kinds == ["sparse", "dense", "quantized"]
    params = [int(line.split()[1]) for line in out.stdout.splitlines()]
    assert params[1] < params[0] == params[2]  # the structured file really loaded at its smaller shapes


def test_a_payload_kind_outside_the_container_is_refused():
    from compression.artifact import PayloadReader, register_payload
    with pytest.raises(CompressionError, match="'zipped' unknown"):
        register_payload("zipped", PayloadReader(lambda payload: {}))
