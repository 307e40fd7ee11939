"""Quantization as a registered method: `quantize:<method>:<bits>:key=value...` over QuantConfig,
so every knob of the Quantization page (granularity, activation bits, QAT, per-layer bits,
backend) is reachable from the CLI, pipeline steps and sweeps."""

from __future__ import annotations

import dataclasses
import threading
import weakref

import torch.nn as nn

from compression.methods import Compressed, Context, register_method
from compression.quantization.config import (ACTIVATION_BITS, BACKENDS, GRANULARITIES, METHODS, QuantConfig)
from compression.quantization.core import quantize
from compression.quantization.kernels import kernel_eligibility, with_int8_kernel


def spec(cfg: QuantConfig) -> str:
    defaults = QuantConfig()
    rest = "".join(f":{f.name}={getattr(cfg, f.name)}" for f in dataclasses.fields(cfg)
                   if f.name not in ("method", "bits", "layer_bits") and getattr(cfg, f.name) != getattr(defaults, f.name))
    if cfg.layer_bits:
        import json
        rest += ":layer_bits=" + json.dumps([list(p) for p in cfg.layer_bits], separators=(",", ":"))
    return f"quantize:{cfg.method}:{cfg.bits}{rest}"


def kernel_words(kernel: dict) -> str:
    """The chosen int8 kernel, and how it compares with float32 in its own runtime (so that the
    runtime's share of the speed is not passed off as int8's) and with PyTorch float32."""
    text = f"Latency is real: measured on the int8 kernel chosen by measurement ({kernel['description']})"
    torch_x, ort_x = kernel.get("speedup_vs_torch_fp32"), kernel.get("speedup_vs_ort_fp32")
    same_x = kernel.get("speedup_vs_runtime_fp32")
    if kernel["chosen"].startswith("inductor") and same_x and torch_x:
        return text + (f"; at batch {kernel['batch']} it runs {same_x:.2f}x as fast as torch.compile float32 with the "
                       f"same options and {torch_x:.2f}x PyTorch eager float32.")
    if kernel["chosen"].startswith("torch") and torch_x:
        return text + f"; at batch {kernel['batch']} it runs {torch_x:.2f}x as fast as PyTorch float32."
    if ort_x and torch_x:
        return text + (f"; at batch {kernel['batch']} it runs {ort_x:.2f}x as fast as ONNX Runtime float32 "
                       f"and {torch_x:.2f}x PyTorch float32.")
    return text + "."


_MACS: "weakref.WeakKeyDictionary[nn.Module, dict]" = weakref.WeakKeyDictionary()
_MACS_LOCK = threading.Lock()


def same_graph_macs(model: nn.Module, input_shape: tuple[int, ...], device) -> int:
    """MACs per input of `model`, counted once per model object (a cached reference model: every
    slider move quantizes the same one). The quantized copy runs the same layers on dequantized
    weights (activation rounding adds no multiply-accumulate), so its count is this one: the
    FLOP counter took 0.14-0.6 s of each first answer on 2 cores."""
    from compression.metrics import count_macs
    key = (tuple(input_shape), str(device))
    with _MACS_LOCK:
        known = _MACS.get(model, {}).get(key)
    if known is None:
        known = count_macs(model, input_shape, device)
        with _MACS_LOCK:
            _MACS.setdefault(model, {})[key] = known
    return known


def apply(model: nn.Module, cfg: QuantConfig, ctx: Context) -> Compressed:
    sparse = ctx.state.get("sparse", False)
    if sparse and cfg.method.startswith("cluster") and not cfg.keep_zeros:
        cfg = dataclasses.replace(cfg, keep_zeros=True)  # the pruned zeros stay exact, stored as positions
    qm = quantize(model, cfg, dataset=ctx.dataset, device=ctx.device, progress=ctx.progress,
                  should_stop=ctx.should_stop, subset=ctx.subset)
    ctx.progress({"phase": "quantized", "step": 1, "steps": 1})

    def finish(metrics):
        kernel, runner = None, {}
        if not ctx.options.get("kernel", True):
            eligible, reason = kernel_eligibility(cfg, ctx.device)
            kernel = None if not eligible else {"chosen": None, "reason": "int8 kernel not measured for this run"}
        elif not sparse:  # a sparse model keeps simulated speed: dense kernels multiply its zeros
            from compression.runtimes import default_runtime
            metrics, report, reason = with_int8_kernel(qm.model, ctx.dataset, cfg, ctx.device, metrics,
                                                       limit=ctx.limit, runner=runner,
                                                       runtime=ctx.options.get("runtime") or default_runtime())
            kernel = report or {"chosen": None, "reason": reason}
        speed = bool(kernel and kernel.get("chosen"))
        words = (f"Size is real: weights stored as {cfg.label()}"
                 f"{' with the pruned zeros kept exact and their positions as relative gaps' if cfg.keep_zeros else ''}. "
                 + (kernel_words(kernel) if speed else "Latency is simulated: measured on the dequantized float model."))
        return metrics, {"kernel": kernel, "gain": words, "_latency_runner": runner.get("kernel"),
                         "bits_per_weight": round(8 * metrics.size_bytes / max(1, sum(r["params"] for r in qm.layers)), 3),
                         "latency_source": (kernel["description"] if speed else
                                            f"dequantized float model on {ctx.device.type}"
                                            + (f" ({kernel['reason']})" if kernel and kernel.get("reason") else ""))}

    extra = {"coverage": qm.coverage(), "label": cfg.label(), "layers": qm.layers, "qat_history": qm.history,
             "activation_ranges": {k: {kk: v[kk] for kk in ("bits", "scale", "zero_point")}
                                   for k, v in qm.activations.items()}}
    return Compressed(qm.model, payload=qm.artifact, kind="quantized", simulated=True,
                      macs=same_graph_macs(model, ctx.dataset.input_shape, ctx.device),
                      simulated_metrics=("latency_ms",), history=qm.history,
                      extra=extra, stopped=qm.stopped, finish=finish, state={"sparse": sparse, "quantized": True},
                      handle=qm)


register_method(
    "quantize", QuantConfig, apply, positional=("method", "bits"), spec=spec,
    units=lambda cfg: 1 + cfg.qat_epochs + cfg.centroid_epochs,
    help="store weights in fewer bits: uniform, k-means clustering (+ Huffman), binary, ternary; "
         "activations and QAT optional; the real int8 kernel's latency where one runs",
    knobs={"method": {"choices": list(METHODS)},
           "bits": {"min": 1, "max": 32, "help": "weight bits (1-8, 16 or 32)"},
           "granularity": {"choices": list(GRANULARITIES)},
           "activation_bits": {"choices": list(ACTIVATION_BITS)},
           "qat_epochs": {"min": 0, "max": 50, "help": "quantization-aware fine-tuning epochs"},
           "centroid_epochs": {"min": 0, "max": 50, "help": "cluster methods: epochs training the shared centroids "
                               "after clustering (codes and pruned zeros fixed; Han et al. 2016); same file size"},
           "centroid_lr": {"min": 0.0, "max": 1.0, "min_open": True, "help": "Adam learning rate of the centroids"},
           "backend": {"choices": list(BACKENDS), "help": "int8 kernel for 8-bit uniform weights"}})
