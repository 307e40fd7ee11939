"""Real int8 kernels, chosen by measurement.

Candidates (each built from the quantized model's decoded weights, which lie on the int8 grid):

  ort-dynamic    ONNX Runtime dynamic quantization: int8 weights, activations quantized per batch
                 at run time (MatMulInteger / ConvInteger)
  ort-static     ONNX Runtime static quantization (QLinearConv / QLinearMatMul), activation ranges
                 calibrated on validation images; reduce_range (7-bit weights) because u8 x s8
                 products saturate on x86 CPUs without VNNI (full range cost 4 points on `cnn` on such
                 a CPU on 2026-11-25; nothing on the AVX-512 VNNI Zen 4 of 2026-11-30)
  ort-static-linear  the same, on the Linear layers (MatMul / Gemm) only; Conv layers run in float32
                 with the same 8-bit weights. Models with convolutions only. On a 2-core Zen 4 (AVX-512
                 VNNI) ONNX Runtime's int8 convolutions of these small CNNs were at best as fast as its
                 float32 ones (lenet5: 2.7x slower), while its int8 Linear layers were about 2x faster.
  torch-dynamic  PyTorch's dynamic int8 Linear (deprecated API); Conv2d stays float
  inductor-int8  torchao PT2E static int8 compiled by TorchInductor (oneDNN VNNI / AMX kernels),
                 timed against its own reference inductor-fp32, the float model torch.compile'd with
                 the same options (inductor_kernel.py); skipped with the reason without torchao, an
                 x86 CPU or a C++ compiler

`select_kernel` builds the candidates, times each once (a quick estimate) and rules out those
more than 1.5x slower than the fastest faithful one (whose predictions agree with the quantized
model on >= 99 % of up to 1,000 validation images), times the rest side by side at batch 256 (or
less for a large model; rounds interleaved with the float references, ONNX Runtime's spin-waiting
off so no runtime steals the other's cores) in the rounds SEARCH_SECONDS leaves, and picks the
fastest; each stage is reported, naming the candidate. The report gives the chosen kernel's speed-up against the
float32 of its own runtime (`runtime_reference`: ort-fp32, torch-fp32 or inductor-fp32) besides
PyTorch and ONNX Runtime float32. Only the CPU has these kernels here; elsewhere no kernel
runs and the result says latency is simulated. `with_int8_kernel` reads the choice from disk when
the same weights, config, dataset and machine were measured before (kernel_cache.py).
"""

from __future__ import annotations

import os
import tempfile
import time
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn

from compression.data import Dataset
from compression.models import clone_model
from compression.quantization.activations import detach_activation_quant
from compression.quantization.config import QuantConfig
from compression.runtimes import export_onnx as _export_onnx
from compression.runtimes import ort_session
from compression.quantization.kernel_timing import (TIMING_BATCH, SearchSteps, batch1_latency_ms,  # noqa: F401
                                                    images_for, interleaved_ms, timing_batch)
from compression.runtimes import quiet as _quiet

CANDIDATES = ("ort-dynamic", "ort-static", "ort-static-linear", "torch-dynamic")  # backend auto
# with the compile runtime (sidebar / --runtime compile) auto adds the Inductor kernel: it compiles two
# more models (20-30 s cold on 2 cores), a cost only a run that deploys with torch.compile should pay
COMPILE_CANDIDATES = (*CANDIDATES, "inductor-int8")


def auto_candidates(runtime: str | None) -> tuple[str, ...]:
    """The candidates backend auto measures for a run timed on `runtime`."""
    return COMPILE_CANDIDATES if runtime == "compile" else CANDIDATES
DESCRIPTIONS = {
    "ort-dynamic": "ONNX Runtime dynamic int8 (int8 weights, activations quantized per batch)",
    "ort-static": "ONNX Runtime static int8 (QLinear ops, calibrated activations, 7-bit reduce_range weights)",
    "ort-static-linear": "ONNX Runtime static int8 on the Linear layers (Conv layers in float32)",
    "torch-dynamic": "PyTorch dynamic int8 Linear (Conv2d layers stay float)",
    "inductor-int8": "PyTorch Inductor static int8 (torchao PT2E, oneDNN VNNI/AMX kernels, torch.compile)",
    "ort-fp32": "ONNX Runtime float32 (reference)",
    "torch-fp32": "PyTorch float32 (reference)",
    "inductor-fp32": "torch.compile float32, same options (reference)",
}
RUNTIME_REFERENCE = {"ort": "ort-fp32", "torch": "torch-fp32", "inductor": "inductor-fp32"}  # by name prefix
RUNTIME = {"ort": "onnxruntime", "torch": "eager", "inductor": "compile"}  # compression.runtimes names


def runtime_of(name: str) -> str:
    """The compression.runtimes runtime a kernel runs on (its baseline is timed there too)."""
    return RUNTIME[name.split("-")[0]]


def runner_of(kernel: "Kernel") -> tuple:
    """(runtime, run, description[, compile options]) for compression.runtimes.time_result: an
    Inductor kernel's baseline (timed at batch 1) is compiled with its batch-1 options."""
    if kernel.name.startswith("inductor"):
        from compression.quantization.inductor_kernel import OPTIONS
        return (runtime_of(kernel.name), kernel.run, kernel.description, dict(OPTIONS))
    return (runtime_of(kernel.name), kernel.run, kernel.description)


MIN_AGREEMENT = 0.99
AGREEMENT_IMAGES = 1000
SEARCH_SECONDS = 10.0      # the search's target on a zoo model: the full timing gets what is left
QUICK_RULE_OUT = 1.5       # slower than the fastest faithful candidate by this, in the quick estimate: out
AGREEMENT_MACS = 2e10      # MACs the agreement check of one candidate may cost (>= 200 images)
ACCURACY_MACS = 5e10       # MACs the chosen kernel's own test accuracy may cost (>= 1,000 images)


def onnxruntime_available() -> bool:
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError:
        return False
    return True


def kernel_eligibility(config: QuantConfig, device: torch.device | str) -> tuple[bool, str]:
    """(a real int8 kernel can run this config here, why not)."""
    device = torch.device(device)
    bits = {config.bits, *(b for _, b in config.layer_bits)} - {32}
    if config.backend == "none":
        return False, "int8 kernel turned off (backend none)"
    if config.method != "uniform" or bits != {8}:
        what = config.method if config.method != "uniform" else f"{'/'.join(map(str, sorted(bits)))}-bit weights"
        return False, f"no low-precision kernel for {what} here"
    if any(b == 32 for _, b in config.layer_bits):
        return False, "mixed float/int8 layers are not run by the int8 kernels"
    if not config.symmetric:
        return False, "the int8 kernels take symmetric weights; asymmetric 8-bit is simulated"
    if config.activation_bits not in (None, 8):
        return False, f"no kernel for {config.activation_bits}-bit activations"
    if device.type != "cpu":
        return False, f"no int8 kernel wired up for {device.type}"
    if not onnxruntime_available():
        return False, "onnxruntime is not installed"
    return True, ""


def export_onnx(model: nn.Module, input_shape: tuple[int, ...], path: str) -> None:
    """compression.runtimes.export_onnx (the one ONNX export), with the activation fake-quant hooks
    detached first."""
    model = clone_model(model).cpu().eval()
    detach_activation_quant(model)
    _export_onnx(model, input_shape, path)


@dataclass
class Kernel:
    name: str
    run: Callable[[torch.Tensor], np.ndarray]   # normalized images (B, C, H, W) on the CPU -> logits
    size_bytes: int | None                      # bytes of the model file it runs (ONNX), if any

    @property
    def description(self) -> str:
        return DESCRIPTIONS[self.name]


def has_conv(model: nn.Module) -> bool:
    return any(isinstance(m, nn.modules.conv._ConvNd) for m in model.modules())


def build_kernel(name: str, model: nn.Module, dataset: Dataset, config: QuantConfig, workdir: str) -> Kernel:
    """One candidate (or a float reference) for `model`, files under `workdir`."""
    fp32 = os.path.join(workdir, "fp32.onnx")
    if name.startswith("ort") and not os.path.exists(fp32):
        export_onnx(model, dataset.input_shape, fp32)
    if name.startswith("inductor"):
        from compression.quantization import inductor_kernel
        return Kernel(name, inductor_kernel.build(name, model, dataset, config.calibration_size), None)
    if name in ("torch-fp32", "torch-dynamic"):
        m = clone_model(model).cpu().eval()
        detach_activation_quant(m)
        if name == "torch-dynamic":
            with _quiet():
                qconfig = (torch.ao.quantization.per_channel_dynamic_qconfig if config.granularity == "channel"
                           else torch.ao.quantization.default_dynamic_qconfig)
                m = torch.ao.quantization.quantize_dynamic(m, {nn.Linear: qconfig}, dtype=torch.qint8)

        def run_torch(x: torch.Tensor) -> np.ndarray:
            with torch.inference_mode():
                return m(x).numpy()
        return Kernel(name, run_torch, None)
    path = fp32
    if name in ("ort-dynamic", "ort-static", "ort-static-linear"):
        from onnxruntime.quantization import QuantFormat, QuantType, quantize_dynamic, quantize_static
        from onnxruntime.quantization.shape_inference import quant_pre_process
        pre = os.path.join(workdir, "pre.onnx")
        path = os.path.join(workdir, f"{name}.onnx")
        per_channel = config.granularity == "channel"
        with _quiet():
            if not os.path.exists(pre):
                quant_pre_process(fp32, pre)
            if name == "ort-dynamic":
                quantize_dynamic(pre, path, weight_type=QuantType.QInt8, per_channel=per_channel)
            else:
                only = {"op_types_to_quantize": ["MatMul", "Gemm"]} if name == "ort-static-linear" else {}
                quantize_static(pre, path, _CalibrationReader(dataset, config.calibration_size),
                                quant_format=QuantFormat.QOperator, per_channel=per_channel, reduce_range=True,
                                weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8, **only)
    session = ort_session(path)

    def run_ort(x: torch.Tensor) -> np.ndarray:
        return session.run(None, {"x": x.numpy()})[0]
    return Kernel(name, run_ort, os.path.getsize(path))


class _CalibrationReader:
    """onnxruntime.quantization.CalibrationDataReader over the first N validation images."""

    def __init__(self, dataset: Dataset, images: int):
        self._batches = iter([{"x": x.numpy()} for x, _ in dataset.batches("val", 128, limit=images)])

    def get_next(self):
        return next(self._batches, None)

    def __iter__(self):
        return self

    def __next__(self):
        item = self.get_next()
        if item is None:
            raise StopIteration
        return item


def kernel_logits(kernel: Kernel, dataset: Dataset, split: str = "test", limit: int | None = None) -> np.ndarray:
    return np.concatenate([kernel.run(x) for x, _ in dataset.batches(split, 1000, limit=limit)])


def _failure(exc: Exception) -> dict[str, str]:
    return {"error": f"{type(exc).__name__}: {str(exc)[:200]}"}


def with_int8_kernel(model: nn.Module, dataset: Dataset, config: QuantConfig, device: torch.device | str,
                     metrics, *, limit: int | None = None, runner: dict | None = None,
                     runtime: str | None = None,
                     progress: Callable[[dict], None] | None = None) -> tuple[Any, dict[str, Any] | None, str]:
    """(metrics, kernel report, why not): where a real int8 kernel can run `config` here, select one
    and put its measured batch-1 latency into `metrics` (simulated: False); otherwise `metrics`
    unchanged, with the reason. `runtime`: the run's (the compile runtime adds inductor-int8 to auto);
    `progress`: the search's stages (select_kernel). Used by the Quantization page's runs and by pipelines."""
    import dataclasses
    eligible, reason = kernel_eligibility(config, device)
    if not eligible:
        return metrics, None, reason
    from compression.quantization.kernel_cache import cached_select_kernel
    candidates = auto_candidates(runtime) if config.backend == "auto" else None
    report = cached_select_kernel(model, dataset, config, limit=limit, runner=runner,  # on disk across restarts
                                  candidates=candidates if candidates != CANDIDATES else None, progress=progress)
    if not report["chosen"]:
        return metrics, report, report.get("reason", "no int8 kernel ran")
    return dataclasses.replace(metrics, latency_ms=report["latency_ms"], simulated=False), report, ""


def select_kernel(model: nn.Module, dataset: Dataset, config: QuantConfig, *, candidates=None,
                  limit: int | None = None, rounds: int = 7, runner: dict | None = None,
                  progress: Callable[[dict], None] | None = None) -> dict[str, Any]:
    """Measure the int8 candidates for `model` (the quantized model, float weights on the int8
    grid) and pick the fastest faithful one. Returns a JSON-able report; 'chosen' is None when no
    candidate is faithful or they all fail. `runner`, a dict, receives the chosen kernel as
    (runtime, run, description) under "kernel" (compression.runtimes.time_result times it beside
    its baseline on that runtime). `progress` gets each stage, naming the candidate.

    Bounded (SEARCH_SECONDS on a zoo model): every kernel built is timed once (a quick estimate); a
    candidate more than QUICK_RULE_OUT times slower than the fastest faithful one is ruled out
    there, with its estimate in the report; the rest are checked for agreement and timed side by
    side in as many rounds (3 to `rounds`) as the time left allows. Large models are timed at a
    smaller batch and checked on fewer images (TIMING_MACS, AGREEMENT_MACS, ACCURACY_MACS)."""
    from compression.metrics import count_macs
    start = time.perf_counter()
    names = list(candidates or (CANDIDATES if config.backend == "auto" else (config.backend,)))
    if not has_conv(model):  # without convolutions it would be ort-static again
        names = [n for n in names if n != "ort-static-linear"] or ["ort-static"]
    macs = float(count_macs(model, dataset.input_shape))
    batch = timing_batch(macs)
    report: dict[str, Any] = {"candidates": {}, "chosen": None, "batch": batch}
    if "inductor-int8" in names:
        from compression.quantization.inductor_kernel import unavailable
        why = unavailable()
        if why:  # said, not built
            report["candidates"]["inductor-int8"] = {"error": f"skipped: {why}"}
            names.remove("inductor-int8")
    references = ["torch-fp32", "ort-fp32", *(["inductor-fp32"] if "inductor-int8" in names else [])]
    step = SearchSteps(len(references) + 2 * len(names) + 3, progress)
    agree_n = images_for(macs, AGREEMENT_MACS, 200, AGREEMENT_IMAGES)
    with torch.inference_mode():
        reference = np.concatenate([model(x).cpu().numpy() for x, _ in
                                    dataset.batches("val", 1000, limit=agree_n)]).argmax(1)
    with tempfile.TemporaryDirectory(prefix="ce-int8-") as tmp:
        kernels: dict[str, Kernel] = {}
        for name in [*references, *names]:
            step("building", name)
            try:
                kernels[name] = build_kernel(name, model, dataset, config, tmp)
            except Exception as exc:  # a backend that cannot take this model is reported, not fatal
                report["candidates"][name] = _failure(exc)
        x = torch.randn(batch, *dataset.input_shape)
        step("quick estimate of every kernel")
        for name in list(kernels):  # the warm-up call: a kernel that cannot run this model is reported
            try:
                kernels[name].run(x)
            except Exception as exc:  # built, but cannot run it (e.g. a layer it swapped is sliced)
                report["candidates"][name] = _failure(exc)
                del kernels[name]
        quick = interleaved_ms({k: (lambda k=k: kernels[k].run(x)) for k in kernels}, rounds=1, calls=1, warmup=0)
        faithful = _faithful(names, kernels, quick, dataset, reference, agree_n, report, step)
        if not faithful:
            report["reason"] = f"no int8 candidate agreed with the quantized model on {MIN_AGREEMENT:.0%} of images"
            return report
        step.total = step.done + 2  # the agreement checks ruled out are not coming: the timing, the accuracy
        left = SEARCH_SECONDS - (time.perf_counter() - start)
        timed_names, rounds_now = _full_timing(faithful, kernels, quick, rounds, left)
        step(f"timing {', '.join(timed_names)} side by side ({rounds_now} rounds)")
        timed = interleaved_ms({k: (lambda k=k: kernels[k].run(x)) for k in timed_names}, rounds=rounds_now)
        for name, ms in timed.items():
            report["candidates"].setdefault(name, {"description": DESCRIPTIONS[name]})["batch_ms"] = ms
        if "torch-fp32" in kernels and "torch-fp32" not in timed:  # no time left for it: its quick estimate
            timed["torch-fp32"] = quick["torch-fp32"]
            report["candidates"]["torch-fp32"] = {"description": DESCRIPTIONS["torch-fp32"],
                                                  "quick_ms": quick["torch-fp32"]}
        chosen = min(faithful, key=lambda n: timed[n])
        kernel = kernels[chosen]
        if runner is not None:  # an ONNX Runtime session or torch module in memory: outlives the files
            runner["kernel"] = runner_of(kernel)
        step("its own test accuracy:", chosen)
        n_test = min(limit or len(dataset.test), images_for(macs, ACCURACY_MACS, 1000, len(dataset.test)))
        logits = kernel_logits(kernel, dataset, "test", n_test)
        labels = dataset.test.head(n_test).labels.numpy()
        report.update(
            chosen=chosen, description=kernel.description, size_bytes=kernel.size_bytes, rounds=rounds_now,
            accuracy=float((logits.argmax(1) == labels).mean()), accuracy_n=int(len(labels)),
            latency_ms=batch1_latency_ms(kernel, dataset.input_shape),
            speedup_vs_torch_fp32=timed["torch-fp32"] / timed[chosen] if "torch-fp32" in timed else None,
            speedup_vs_ort_fp32=timed["ort-fp32"] / timed[chosen] if "ort-fp32" in timed else None)
        same = RUNTIME_REFERENCE[chosen.split("-")[0]]
        report.update(runtime_reference=same,
                      speedup_vs_runtime_fp32=timed[same] / timed[chosen] if same in timed else None,
                      search_seconds=round(time.perf_counter() - start, 2))
    return report


def _full_timing(faithful: list[str], kernels: dict, quick: dict[str, float], rounds: int,
                 left: float) -> tuple[list[str], int]:
    """(what is timed side by side, in how many rounds): the faithful candidates and their own
    runtime's float32 reference, PyTorch float32 too when 3 rounds of it fit in the `left` seconds;
    as many rounds (3 to `rounds`) as fit."""
    own = [*faithful, *{RUNTIME_REFERENCE[n.split("-")[0]] for n in faithful}]
    names = [n for n in dict.fromkeys([*own, "torch-fp32"]) if n in kernels]
    if "torch-fp32" not in own and 3 * 2 * sum(quick[n] for n in names) / 1000 > left:
        names.remove("torch-fp32")
    per_round = 2 * sum(quick[n] for n in names) / 1000  # 2 calls a round
    return names, max(min(3, rounds), min(rounds, int(left / max(per_round, 1e-6))))


def _faithful(names: list[str], kernels: dict[str, Kernel], quick: dict[str, float], dataset: Dataset,
              reference: np.ndarray, images: int, report: dict, step: Callable) -> list[str]:
    """The candidates worth the full timing: fastest first by the quick estimate, each checked for
    agreement until one is faithful; then the others within QUICK_RULE_OUT of it (checked too).
    Slower ones are ruled out unchecked, their estimate in the report."""
    faithful: list[str] = []
    for name in sorted((n for n in names if n in kernels), key=lambda n: quick[n]):
        entry = report["candidates"].setdefault(name, {"description": kernels[name].description,
                                                       "size_bytes": kernels[name].size_bytes})
        entry["quick_ms"] = quick[name]
        if faithful and quick[name] > QUICK_RULE_OUT * quick[faithful[0]]:
            entry["ruled_out"] = (f"{quick[name] / quick[faithful[0]]:.1f}x slower than {faithful[0]} in a quick "
                                  "estimate: not timed further")
            continue
        step("checking agreement of", name)
        try:
            predicted = kernel_logits(kernels[name], dataset, "val", images).argmax(1)
        except Exception as exc:  # built, but cannot run this model (e.g. a layer it swapped is sliced)
            report["candidates"][name] = _failure(exc)
            continue
        entry["agreement"] = float((predicted == reference).mean())
        entry["agreement_n"] = int(len(reference))
        if entry["agreement"] >= MIN_AGREEMENT:
            faithful.append(name)
    return faithful
