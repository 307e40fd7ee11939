"""A torch.export program (.pt2): the compressed model as an ExportedProgram with a dynamic batch
axis, loadable with `torch.export.load(path).module()` and no code of ours. The input contract
rides along as the extra file input_contract.json (the run as run.json, an early-exit model's rule
as exit_rule.json): `torch.export.load(path, extra_files={"input_contract.json": ""})` reads it."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch

from compression import CompressionError
from compression.export.formats import ExportFormat, Opened, register_format
from compression.export.notes import metadata
from compression.export.onnx_float import PREFIX, exported_module
from compression.export.source import Source


def extra_file_names(source: Source) -> list[str]:
    return [f"{key}.json" for key in metadata(source, "pt2")]


def write(source: Source, path: Path) -> dict:
    from compression.runtimes import quiet
    module = exported_module(source, copy.deepcopy(source.model))
    example = torch.zeros(2, *source.dataset.input_shape)
    with quiet():
        program = torch.export.export(module, (example,), dynamic_shapes=({0: torch.export.Dim.AUTO},))
    for batch in (1, 3):  # a batch axis the tracer made static is said here, not by a deployer's crash
        try:
            with torch.no_grad():
                program.module()(torch.zeros(batch, *source.dataset.input_shape))
        except Exception as exc:
            raise CompressionError(f"torch.export fixed the batch size of this model ({type(exc).__name__}): "
                                   "export onnx instead") from None
    extra = {f"{key}.json": value for key, value in metadata(source, "pt2").items()}
    torch.export.save(program, str(path), extra_files=extra)
    return {"extra_files": sorted(extra)}


def _outputs(out) -> list[np.ndarray]:
    return [t.detach().numpy() for t in out] if isinstance(out, (tuple, list)) else [out.detach().numpy()]


def open_file(path: Path, source: Source) -> Opened:
    program = torch.export.load(str(path))
    module = program.module()
    prefix = PREFIX if source.exits > 1 else ""

    def run(x: np.ndarray) -> list[np.ndarray]:
        with torch.no_grad():
            return _outputs(module(torch.from_numpy(x)))

    def probe(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        found: list[tuple[str, np.ndarray]] = []

        class Recorder(torch.fx.Interpreter):
            def run_node(self, node):
                value = super().run_node(node)
                stack = node.meta.get("nn_module_stack") if node.op == "call_function" else None
                if stack and isinstance(value, torch.Tensor):
                    scope = list(stack.values())[-1][0]
                    if scope.startswith(prefix):
                        found.append((scope[len(prefix):], value.detach().numpy().copy()))  # before in-place ops
                return value
        with torch.no_grad():
            Recorder(module).run(torch.from_numpy(x))
        return found
    return Opened(run, probe)


FORMAT = register_format(ExportFormat(
    "pt2", ".pt2", "torch.export program (.pt2): torch.export.load(path).module(), no code of ours",
    "torch.export.load", write, open_file))
