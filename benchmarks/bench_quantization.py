"""Quantization, measured side by side in one run on the default device's CPU path.

1. int8 backends per zoo model: accuracy on all 10k test images, bytes of what each runs, median
   batch-256 and batch-1 times in interleaved rounds (ONNX Runtime's spin-waiting off): PyTorch
   float32, ONNX Runtime float32, ORT dynamic int8, ORT static int8 (reduce_range, as the app runs
   it, and without; and on the Linear layers only, convolutions in float32), PyTorch's dynamic int8 Linear, torchao's Int8DynamicActivationInt8WeightConfig
   and Int8WeightOnlyConfig (no torch.compile). Ratios are against the same run's float32 timings.
2. The issue's targets: 8-bit per-channel on every zoo model, 4-bit on mlp, clustering + Huffman at
   5 bits on mlp, binary/ternary, 2-bit with and without QAT: accuracy (10k test images) and the
   packed artifact's bytes, against float32.
3. Wall time of a post-training bit-width sweep 2..8 on lenet5 (10k test images each), with and
   without the int8 kernel measurement at 8 bits.
4. `staged` (`python -m benchmarks quantization:staged`): where the time of one Quantization page
   run goes (cnn, staged as the page runs it, compression.progressive): each phase's seconds and
   when each stage arrived, for 8 bits with an empty int8 kernel cache, 7 bits, and 8 bits again
   with the kernel choice on disk (a new process's live cache: nothing else remembered).
"""

from __future__ import annotations

import io
import os
import tempfile
import time
import warnings

import numpy as np
import torch

from benchmarks import common
from compression.data import load_dataset
from compression.models import clone_model, load_pretrained, state_dict_bytes
from compression.quantization import QuantConfig, bit_configs, quantize, sweep
from compression.quantization.kernels import (Kernel, build_kernel, has_conv, interleaved_ms, kernel_logits,
                                              onnxruntime_available, ort_session)
from compression.training import predict

MODELS = ("mlp", "lenet5", "cnn")


def _accuracy(logits: np.ndarray, data) -> float:
    return float((logits.argmax(1) == data.test.labels.numpy()[:len(logits)]).mean())


def _ort_static_full_range(model, data, cfg, tmp) -> Kernel:
    """ORT static int8 with full 8-bit weights (no reduce_range): shows the u8 x s8 saturation."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from compression.quantization.kernels import _CalibrationReader, _quiet
    build_kernel("ort-static", model, data, cfg, tmp)  # writes fp32.onnx and pre.onnx
    path = os.path.join(tmp, "ort-static-full.onnx")
    with _quiet():
        quantize_static(os.path.join(tmp, "pre.onnx"), path, _CalibrationReader(data, cfg.calibration_size),
                        quant_format=QuantFormat.QOperator, per_channel=True, reduce_range=False,
                        weight_type=QuantType.QInt8, activation_type=QuantType.QUInt8)
    session = ort_session(path)
    return Kernel("ort-static", lambda x: session.run(None, {"x": x.numpy()})[0], os.path.getsize(path))


def _torchao(model, config_name: str) -> tuple[Kernel | None, str]:
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            import torchao.quantization as tq
            m = clone_model(model).eval()
            tq.quantize_(m, getattr(tq, config_name)())
    except Exception as exc:  # not installed, or it refuses this model
        return None, f"{type(exc).__name__}: {str(exc)[:120]}"
    converted = [type(mod).__name__ for mod in m.modules()
                 if hasattr(mod, "weight") and type(mod.weight).__name__ not in ("Parameter", "Tensor")]
    kept = [type(mod).__name__ for mod in m.modules()
            if isinstance(mod, (torch.nn.Conv2d, torch.nn.Linear)) and type(mod.weight).__name__ == "Parameter"]
    buffer = io.BytesIO()
    try:
        torch.save(m.state_dict(), buffer)
        size = len(buffer.getvalue())
    except Exception:
        size = None

    def run(x: torch.Tensor) -> np.ndarray:
        with torch.inference_mode():
            return m(x).numpy()
    note = f"int8: {len(converted)} layers ({', '.join(sorted(set(converted)))}); float: {len(kept)}"
    if kept:
        note += f" ({', '.join(sorted(set(kept)))} left float by its Linear-only default)"
    return Kernel("torch-fp32", run, size), note


def backends(data) -> list[dict]:
    rows = []
    for name in (*MODELS, "ds_cnn"):
        model = load_pretrained(name)
        cfg = QuantConfig(bits=8)
        qm = quantize(model, cfg)  # the app's int8 weights: ORT re-derives exactly these codes
        with tempfile.TemporaryDirectory() as tmp:
            kernels: dict[str, Kernel] = {"PyTorch fp32": build_kernel("torch-fp32", model, data, cfg, tmp)}
            notes: dict[str, str] = {"PyTorch fp32": "", "ours: packed artifact (simulated run)": ""}
            sizes = {"PyTorch fp32": len(state_dict_bytes(model))}
            if onnxruntime_available():
                quantized, full = os.path.join(tmp, "q"), os.path.join(tmp, "f")
                os.makedirs(quantized)
                os.makedirs(full)
                kernels["ORT fp32"] = build_kernel("ort-fp32", model, data, cfg, tmp)
                kernels["ORT dynamic int8"] = build_kernel("ort-dynamic", qm.model, data, cfg, quantized)
                kernels["ORT static int8 (reduce_range)"] = build_kernel("ort-static", qm.model, data, cfg, quantized)
                kernels["ORT static int8 (full range)"] = _ort_static_full_range(qm.model, data, cfg, full)
                notes["ORT static int8 (full range)"] = "u8 x s8 can saturate on CPUs without VNNI"
                if has_conv(model):
                    label = "ORT static int8, Linear layers only"
                    kernels[label] = build_kernel("ort-static-linear", qm.model, data, cfg, quantized)
                    notes[label] = "Conv layers fp32 (same 8-bit weights)"
            kernels["PyTorch dynamic int8"] = build_kernel("torch-dynamic", qm.model, data, cfg, tmp)
            notes["PyTorch dynamic int8"] = "Linear only; Conv2d float"
            for ao in ("Int8DynamicActivationInt8WeightConfig", "Int8WeightOnlyConfig"):
                k, note = _torchao(model, ao)
                label = f"torchao {ao.replace('Config', '')}"
                notes[label] = note
                if k is not None:
                    kernels[label] = k
            x256, x1 = torch.randn(256, *data.input_shape), torch.randn(1, *data.input_shape)
            t256 = interleaved_ms({k: (lambda k=k: kernels[k].run(x256)) for k in kernels}, rounds=9)
            t1 = interleaved_ms({k: (lambda k=k: kernels[k].run(x1)) for k in kernels}, rounds=9, calls=20)
            ours = _accuracy(predict(qm.model, data).numpy(), data)
            rows.append({"what": "int8 backends", "model": name, "backend": "ours: packed artifact (simulated run)",
                         "accuracy %": ours * 100, "bytes": len(qm.artifact), "note": "decodes to float32"})
            for label, k in kernels.items():
                same_runtime = "ORT fp32" if label.startswith("ORT") else "PyTorch fp32"
                rows.append({
                    "what": "int8 backends", "model": name, "backend": label,
                    "accuracy %": _accuracy(kernel_logits(k, data), data) * 100,
                    "bytes": k.size_bytes or sizes.get(label), "batch-256 ms": t256[label], "batch-1 ms": t1[label],
                    "x vs PyTorch fp32 (b256)": t256["PyTorch fp32"] / t256[label],
                    "x vs same-runtime fp32 (b256)": t256[same_runtime] / t256[label] if same_runtime in t256 else None,
                    "note": notes.get(label, "")})
            for label, note in notes.items():
                if label.startswith("torchao") and label not in kernels:
                    rows.append({"what": "int8 backends", "model": name, "backend": label, "note": f"failed: {note}"})
    return rows


TARGETS = [  # (model, config, what the issue asks)
    *[(m, QuantConfig(bits=8), "acc within 0.5 pt, size <= 0.27x") for m in MODELS],
    ("mlp", QuantConfig(bits=4), "acc within 2 pt, size <= 0.15x"),
    ("mlp", QuantConfig(method="cluster-huffman", bits=5), ">= 6.5x smaller, acc within 1 pt"),
    ("mlp", QuantConfig(method="cluster", bits=5), "(fixed-width indices, for comparison)"),
    ("lenet5", QuantConfig(bits=4), ""), ("cnn", QuantConfig(bits=4), ""),
    ("mlp", QuantConfig(method="binary"), ""), ("mlp", QuantConfig(method="ternary"), ""),
    ("mlp", QuantConfig(bits=2), ""), ("mlp", QuantConfig(bits=2, qat_epochs=2), "QAT: 2 epochs, 55k images"),
    ("cnn", QuantConfig(bits=8, activation_bits=8), "weights and activations 8-bit (simulated)"),
]


def targets(data) -> list[dict]:
    from compression.artifact import write_artifact
    from compression.pipeline import architecture_of
    rows = []
    for name, cfg, goal in TARGETS:
        model = load_pretrained(name)
        fp32_acc = _accuracy(predict(model, data).numpy(), data)
        fp32_bytes = len(state_dict_bytes(model))
        start = time.perf_counter()
        qm = quantize(model, cfg, dataset=data)
        seconds = time.perf_counter() - start
        acc = _accuracy(predict(qm.model, data).numpy(), data)
        # the downloadable file: the artifact container (header naming the model) + the packed payload
        size = len(write_artifact(qm.artifact, "quantized", architecture_of(name)))
        rows.append({"what": "targets", "model": name, "config": cfg.label(), "accuracy %": acc * 100,
                     "Δ accuracy (points)": (acc - fp32_acc) * 100, "bytes": size,
                     "size ratio": size / fp32_bytes, "x smaller": fp32_bytes / size,
                     "bits / weight": 8 * size / sum(r["params"] for r in qm.layers),
                     "seconds": seconds, "note": goal})
    return rows


def sweep_time(data) -> list[dict]:
    from compression.metrics import baseline_metrics
    baseline_metrics("lenet5", data, "cpu")  # measured once and cached on disk, as in the app
    rows = []
    for kernel in (True, False):
        start = time.perf_counter()
        results = list(sweep("lenet5", bit_configs(QuantConfig(), range(2, 9)), device="cpu", kernel=kernel))
        rows.append({"what": "sweep lenet5 bits 2..8 (post-training, 10k test images)",
                     "seconds": time.perf_counter() - start,
                     "note": ("with" if kernel else "without") + " the int8 kernel measurement at 8 bits; "
                             + ", ".join(f"{r.config['bits']}b {r.metrics.accuracy * 100:.1f}%" for r in results)})
    return rows


PHASES = (("compression.quantization.method", "quantize", "quantize (encode, pack, write the packed file)"),
          ("compression.artifact", "write_artifact", "container around the packed file"),
          ("compression.progressive", "subset_accuracy", "accuracy on the preview sample (2nd: float model)"),
          ("compression.metrics", "count_macs", "count MACs"),
          ("compression.progressive", "rest_logits", "the other test images"),
          ("compression.quantization.kernels", "select_kernel", "int8 kernel selection (every candidate)"),
          ("compression.quantization.kernels", "build_kernel", "build one int8 kernel / reference"),
          ("compression.runtimes", "time_result", "latency, interleaved with the baseline"))


def staged(data) -> list[dict]:
    import importlib
    from unittest import mock
    from compression.quantization import staged_quantize
    from compression.refs import baseline, resolve
    rows, seconds = [], {}

    def timed(label, real):
        def call(*args, **kwargs):
            start = time.perf_counter()
            try:
                return real(*args, **kwargs)
            finally:
                seconds.setdefault(label, []).append(time.perf_counter() - start)
        return call
    with common.temporary_home("bench-staged-"), mock.patch.multiple("compression.preview_subset", _SUBSET_BASELINES={}, _PREVIEW_COUNTS={}):
        resolved = resolve("cnn", data, device=torch.device("cpu"))
        baseline(resolved, torch.device("cpu"))  # on disk, as after the app's first start
        patches = [mock.patch.object(importlib.import_module(m), f, timed(label, getattr(importlib.import_module(m), f)))
                   for m, f, label in PHASES]
        for p in patches:
            p.start()
        try:
            for what, bits in (("8 bits, empty kernel cache", 8), ("7 bits", 7), ("8 bits, kernel choice on disk", 8)):
                seconds.clear()
                start, arrived = time.perf_counter(), {}
                for stage in staged_quantize("cnn", QuantConfig(bits=bits), dataset=data, device="cpu",
                                             model=resolved.model):
                    arrived[stage.name] = time.perf_counter() - start
                rows += [{"what": f"staged cnn {what}: stage {name}", "seconds": s} for name, s in arrived.items()]
                rows += [{"what": f"staged cnn {what}: {label}", "seconds": sum(v),
                          "note": ", ".join(f"{x:.3f}" for x in v)} for label, v in seconds.items()]
        finally:
            for p in patches:
                p.stop()
    return rows


def run() -> list[dict]:
    data = load_dataset("fashion-mnist")
    parts = {"sweep": sweep_time, "targets": targets, "backends": backends, "staged": staged}
    return [row for part in common.parts(list(parts)) for row in parts[part](data)]
