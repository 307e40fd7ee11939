"""Latency on the runtime people deploy: eager PyTorch, torch.compile, ONNX Runtime.

  eager        the model as given (PyTorch eager mode), what every number meant before runtimes
  compile      torch.compile(model, dynamic=False): TorchInductor, which on the CPU generates and
               compiles C++ (needs a C++ compiler); compiled and warmed up for the batch size timed,
               before any timing
  onnxruntime  the model exported with torch.onnx (TorchScript exporter, opset 17, dynamic batch
               axis) and run by an onnxruntime InferenceSession on the CPUExecutionProvider (intra-op
               threads = torch's, spin-waiting off so it does not steal the other side's cores while
               timed interleaved); the CPU only

`prepare(model, input_shape, device, runtime)` gives a `Runner`: the callable that is timed and the
runtime it really is. Where the requested runtime cannot run the model (no C++ compiler for
inductor, an op the ONNX exporter refuses, a CUDA device for ONNX Runtime here) it falls back to
eager and `fallback` says why, in one line; the result stores it as `runtime_fallback` and names
the runtime used in `runtime`. Only latency is timed on the runtime: accuracy is always measured in
eager PyTorch (the same weights; an exported or compiled graph computes the same function up to
float rounding).

The default runtime of this process (`default_runtime()`, "eager") is set by the CLI's --runtime
for one command (`using_runtime`); sweep jobs copy it when they are made, so a worker in another
process times on the runtime the caller asked for.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tempfile
import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import torch
import torch.nn as nn

from compression import CompressionError

RUNTIMES = ("eager", "compile", "onnxruntime")
DESCRIPTIONS = {
    "eager": "PyTorch eager",
    "compile": "torch.compile (TorchInductor)",
    "onnxruntime": "ONNX Runtime (CPUExecutionProvider)",
}
_DEFAULT = ["eager"]


def check_runtime(name: str | None) -> str:
    """The runtime's name, or a one-line error naming the bad value."""
    name = (name or "eager").strip().lower()
    if name not in RUNTIMES:
        raise CompressionError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
    return name


def default_runtime() -> str:
    return _DEFAULT[0]


@contextlib.contextmanager
def using_runtime(name: str | None) -> Iterator[str]:
    """Make `name` the default runtime while the block runs (the CLI: one command)."""
    previous = _DEFAULT[0]
    _DEFAULT[0] = check_runtime(name)
    try:
        yield _DEFAULT[0]
    finally:
        _DEFAULT[0] = previous


@contextlib.contextmanager
def quiet():
    """ONNX export and torch.compile warn through `warnings` and the root logger: keep the core silent."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        logging.disable(previous)


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str) -> None:
    """Export a float model (a copy, on the CPU, in eval mode) with a dynamic batch axis (TorchScript
    exporter: 0.02-0.3 s here against 2-13 s for the dynamo one, same graph)."""
    from compression.models import clone_model
    model = clone_model(model).cpu().eval()
    with quiet():
        torch.onnx.export(model, (torch.zeros(1, *input_shape),), path, input_names=["x"], output_names=["y"],
                          dynamic_axes={"x": {0: "batch"}, "y": {0: "batch"}}, dynamo=False, opset_version=17)


def ort_session(path: str):
    import onnxruntime as ort
    options = ort.SessionOptions()
    options.intra_op_num_threads = torch.get_num_threads()
    options.inter_op_num_threads = 1
    options.add_session_config_entry("session.intra_op.allow_spinning", "0")
    options.log_severity_level = 3
    return ort.InferenceSession(path, options, providers=["CPUExecutionProvider"])


@dataclass
class Runner:
    """What is timed: `run(x)` on a batch already on the device, `runtime` the one it really runs on,
    `fallback` why the requested runtime did not run the model (None when it did)."""
    runtime: str
    run: Callable[[torch.Tensor], Any]
    fallback: str | None = None
    requested: str = "eager"


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}"


def _eager(model: nn.Module) -> Callable[[torch.Tensor], Any]:
    def run(x: torch.Tensor) -> Any:
        with torch.inference_mode():
            return model(x)
    return run


def _compiled(model: nn.Module, x: torch.Tensor, options: dict | None = None) -> Callable[[torch.Tensor], Any]:
    with quiet():
        compiled = torch.compile(model, dynamic=False)
    if options:  # Inductor config (e.g. freezing) around every call: compiling happens in the call
        import torch._inductor.config as inductor_config
        patch = lambda: inductor_config.patch(options)  # noqa: E731
    else:
        patch = contextlib.nullcontext
    with quiet(), patch(), torch.inference_mode():
        for _ in range(3):  # compile (first call) and warm up at the batch size that is timed
            compiled(x)

    def run(x: torch.Tensor) -> Any:
        with patch(), torch.inference_mode():
            return compiled(x)
    return run


def _onnxruntime(model: nn.Module, input_shape: tuple[int, ...], device: torch.device) -> Callable[[torch.Tensor], Any]:
    if device.type != "cpu":
        raise CompressionError(f"ONNX Runtime runs on the CPU here, not on {device.type}")
    import onnxruntime  # noqa: F401  (a missing package is the fallback's message)
    with tempfile.TemporaryDirectory(prefix="ce-runtime-") as tmp:
        path = os.path.join(tmp, "model.onnx")
        export_onnx(model, input_shape, path)
        session = ort_session(path)  # the graph is loaded into memory: the file can go

    def run(x: torch.Tensor) -> Any:
        return session.run(None, {"x": x.numpy()})[0]
    run(torch.zeros(1, *input_shape))
    return run


def prepare(model: nn.Module, input_shape: tuple[int, ...], device: torch.device | str = "cpu",
            runtime: str | None = None, *, batch_size: int = 1, compile_fn: Callable | None = None,
            export_fn: Callable | None = None) -> Runner:
    """A Runner for a copy of `model` (never the model itself: it may be a shared, cached one) in
    eval mode on `device`, on `runtime` (default: default_runtime()), ready to be timed at
    `batch_size` (torch.compile has compiled and warmed up for that shape). A runtime that cannot
    run the model falls back to eager with the reason. `compile_fn(model, x)` / `export_fn(model,
    input_shape, device)` replace the compile / ONNX steps (tests)."""
    from compression.models import clone_model
    device = torch.device(device)
    requested = check_runtime(runtime or default_runtime())
    m = clone_model(model).to(device).eval()
    if requested == "eager":
        return Runner("eager", _eager(m), None, requested)
    try:
        if requested == "compile":
            x = torch.zeros(batch_size, *input_shape, device=device)
            run = (compile_fn or _compiled)(m, x)
        else:
            run = (export_fn or _onnxruntime)(m, input_shape, device)
        return Runner(requested, run, None, requested)
    except Exception as exc:  # a runtime that cannot take this model is said, and eager is timed
        what = DESCRIPTIONS[requested]
        return Runner("eager", _eager(clone_model(model).to(device).eval()),
                      f"{what} could not run this model ({_one_line(exc)}); timed in PyTorch eager instead", requested)


def time_result(result_model: nn.Module | None, baseline_model: nn.Module, input_shape: tuple[int, ...],
                device: torch.device | str = "cpu", *, runtime: str | None = None, result_macs: float | None = None,
                baseline_macs: float | None = None, kernel: tuple[str, Callable, str] | None = None,
                timer: Callable | None = None) -> dict[str, Any]:
    """A result and its baseline timed at batch 1, interleaved, on the same runtime (compression.
    timing.time_against_baseline: medians, spreads, re-timed once when implausible), plus `runtime`
    (the one both ran on) and, where it is not the one requested, `runtime_fallback` (why).

    `kernel` = (runtime, run, description[, compile options]): what runs the result when it is not
    its model (the int8 kernel a quantized result was measured on); its baseline is timed on that
    kernel's runtime, torch.compile'd with the kernel's options where it gives them.
    Both sides get the same input tensor; neither model is modified (prepare copies)."""
    from compression.device import synchronize
    from compression.timing import time_against_baseline
    device = torch.device(device)
    requested = check_runtime(runtime or default_runtime())
    fallback = None
    if kernel is not None:
        used, result_run, what = kernel[:3]
        options = kernel[3] if len(kernel) > 3 else None
        base = prepare(baseline_model, input_shape, device, used,
                       compile_fn=(lambda m, x: _compiled(m, x, options)) if options else None)
        if requested != used:
            fallback = (f"the int8 kernel chosen by measurement ({what}) runs on {DESCRIPTIONS[used]}: "
                        f"timed there, and its baseline too")
        if base.fallback:
            fallback = f"{fallback + '; ' if fallback else ''}the baseline: {base.fallback}"
            used = f"{used} (baseline: {base.runtime})"
    else:
        res = prepare(result_model, input_shape, device, requested)
        base = prepare(baseline_model, input_shape, device, res.runtime)
        fallback = res.fallback
        if base.runtime != res.runtime:  # the baseline cannot run there: both in eager, like with like
            fallback = f"the baseline: {base.fallback}; the result timed in PyTorch eager too"
            res = prepare(result_model, input_shape, device, "eager")
        used, result_run = res.runtime, res.run
    x = torch.randn(1, *input_shape, device=device)
    out = time_against_baseline(lambda: result_run(x), lambda: base.run(x), result_macs=result_macs,
                                baseline_macs=baseline_macs, timer=timer, sync=lambda: synchronize(device))
    out["runtime"] = used
    if fallback:
        out["runtime_fallback"] = fallback
    return out
