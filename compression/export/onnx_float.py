"""ONNX (opset 17, dynamic batch axis): the compressed model as it runs, read back by ONNX Runtime.

Exported with torch.onnx's TorchScript exporter (0.02-0.3 s here against seconds for the dynamo one),
BatchNorm left unfused and constants unfolded, so every node keeps its module's scope name and
every weight its state_dict name: ONNX Runtime fuses the same layers when it loads the file, and
the re-check can compare each layer's output with PyTorch's (`probe`). An early-exit model is one
graph with every exit's logits as outputs (exit_0 ... exit_K, the last the full network's)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn as nn

from compression.export.formats import ExportFormat, Opened, register_format
from compression.export.notes import metadata
from compression.export.source import Source

OPSET = 17
INPUT = "input"


class AllExits(nn.Module):
    """A multi-exit model whose forward returns every exit's logits (the exported graph's outputs)."""

    def __init__(self, net: nn.Module):
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return tuple(self.net.forward_all(x))


PREFIX = "net."  # AllExits' module names: the model's own behind this prefix


def exported_module(source: Source, model: nn.Module | None = None) -> nn.Module:
    """What is exported: the model, or every exit's logits for a multi-exit model (eval, CPU)."""
    model = (model if model is not None else source.model).cpu().eval()
    return AllExits(model).eval() if source.exits > 1 else model


def output_names(source: Source) -> list[str]:
    return [f"exit_{k}" for k in range(source.exits)] if source.exits > 1 else ["logits"]


def export_graph(module: nn.Module, source: Source, path: Path) -> None:
    """torch.onnx (TorchScript exporter) with a dynamic batch axis, names kept."""
    from compression.runtimes import quiet
    names = output_names(source)
    axes = {INPUT: {0: "batch"}, **{n: {0: "batch"} for n in names}}
    with quiet(), torch.no_grad():
        torch.onnx.export(module, (torch.zeros(1, *source.dataset.input_shape),), str(path), input_names=[INPUT],
                          output_names=names, dynamic_axes=axes, dynamo=False, opset_version=OPSET,
                          training=torch.onnx.TrainingMode.PRESERVE, do_constant_folding=False)


def compact_names(model, *, initializers: bool) -> None:
    """Short tensor names ("t12") in place of the exporters' long ones, and no stored shape info
    (ONNX Runtime infers it): the int8 file's QDQ names ("/stage2/stage2.0/conv1/Conv_output_0_
    QuantizeLinear_Output") were a fifth of its bytes. Kept: the graph's input and output names,
    every node named by its module scope ("/stage2/stage2.0/conv1/Conv", which the re-check's probe
    reads) and, unless `initializers`, the weights' state_dict names."""
    graph = model.graph
    keep = {v.name for v in graph.input} | {v.name for v in graph.output}
    if not initializers:
        keep |= {t.name for t in graph.initializer}
    short: dict[str, str] = {}

    def rename(name: str) -> str:
        return name if not name or name in keep else short.setdefault(name, f"t{len(short)}")
    for tensor in graph.initializer:
        tensor.name = rename(tensor.name)
    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        if not node.name.startswith("/"):
            node.name = ""
    del graph.value_info[:]


def add_metadata(path: Path, source: Source, fmt: str, *, compact_initializers: bool = False) -> None:
    """The input contract (and the run, the exit rule) as metadata_props, written into the file
    (its names compacted: compact_names)."""
    import onnx
    model = onnx.load(str(path))
    compact_names(model, initializers=compact_initializers)
    del model.metadata_props[:]
    for key, value in metadata(source, fmt).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    model.producer_name = "compression-explorer"
    onnx.save(model, str(path))


def write(source: Source, path: Path) -> dict:
    import copy
    export_graph(exported_module(source, copy.deepcopy(source.model)), source, path)
    add_metadata(path, source, "onnx")
    return {}


def session(path: Path, *, optimized: bool = True):
    """An ONNX Runtime CPU session (compression.runtimes' settings); unoptimized for probing."""
    import onnxruntime as ort
    from compression.runtimes import ort_session
    if optimized:
        return ort_session(str(path))
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    options.intra_op_num_threads = torch.get_num_threads()
    options.log_severity_level = 3
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


def scope_of(node_name: str, prefix: str = "") -> str | None:
    """'/stage1/stage1.0/conv1/Conv' -> 'stage1.0.conv1': the module a node was traced in (the
    exporter writes each scope either as its full dotted path or relative to the one above)."""
    if not node_name.startswith("/"):
        return None
    parts = node_name.split("/")[1:-1]
    path: list[str] = []
    for part in parts:
        if path and part.startswith(".".join(path) + "."):
            path = part.split(".")
        else:
            path.append(part)
    scope = ".".join(path)
    if prefix:
        if not scope.startswith(prefix):
            return None
        scope = scope[len(prefix):]
    return scope or None


def probe_outputs(path: Path, *, prefix: str = ""):
    """probe(x) -> [(module scope, value)] for every node, in graph order, by an unoptimized ONNX
    Runtime session on a copy of the graph whose every node output is a graph output."""
    import onnx
    model = onnx.shape_inference.infer_shapes(onnx.load(str(path)))
    known = {v.name for v in model.graph.output}
    typed = {v.name: v for v in [*model.graph.value_info, *model.graph.output]}
    wanted: list[tuple[str, str]] = []
    for node in model.graph.node:
        scope = scope_of(node.name, prefix)
        if scope is None or not node.output or node.output[0] not in typed:
            continue
        wanted.append((scope, node.output[0]))
        if node.output[0] not in known:
            model.graph.output.append(typed[node.output[0]])
            known.add(node.output[0])
    import tempfile
    with tempfile.TemporaryDirectory(prefix="ce-probe-") as tmp:
        probe_path = Path(tmp) / "probe.onnx"
        onnx.save(model, str(probe_path))
        sess = session(probe_path, optimized=False)
    names = [o.name for o in sess.get_outputs()]

    def probe(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        values = dict(zip(names, sess.run(None, {INPUT: x})))
        return [(scope, values[name]) for scope, name in wanted]
    return probe


def open_file(path: Path, source: Source) -> Opened:
    sess = session(path)
    built: list = []

    def run(x: np.ndarray) -> list[np.ndarray]:
        return sess.run(None, {INPUT: x})

    def probe(x: np.ndarray) -> list[tuple[str, np.ndarray]]:
        if not built:  # made only when a file fails its re-check
            built.append(probe_outputs(path, prefix=PREFIX if source.exits > 1 else ""))
        return built[0](x)
    return Opened(run, probe)


FORMAT = register_format(ExportFormat(
    "onnx", ".onnx", "ONNX (opset 17, dynamic batch): runs in ONNX Runtime, TensorRT, OpenVINO, ...",
    "ONNX Runtime (CPUExecutionProvider)", write, open_file))
