"""quantize(model, config) -> QuantizedModel: a new model with quantized Conv2d/Linear weights, the
packed artifact it is stored as, and a per-layer report. The input model is never modified."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.models import clone_model, with_own_metadata
from compression.quantization.activations import (QUANTIZABLE, attach_activation_quant, calibrate,
                                                  detach_activation_quant)
from compression.quantization.artifact import encode_blobs, write_artifact
from compression.quantization.config import QuantConfig
from compression.quantization.quantizers import (Encoded, quantize_affine, quantize_binary, quantize_cluster,
                                                 quantize_float, quantize_ternary, sqnr_db)


def quantizable_layers(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """Every Conv2d and Linear layer, in order: the layers whose weights are quantized."""
    return [(name, m) for name, m in model.named_modules() if isinstance(m, QUANTIZABLE)]


def layer_kinds(model: nn.Module) -> Counter:
    return Counter(type(m).__name__ for _, m in quantizable_layers(model))


def encode_weight(w: np.ndarray, bits: int, config: QuantConfig) -> Encoded:
    """Quantize one weight array with the config's method at `bits` (32/16: float storage)."""
    per_channel = config.granularity == "channel"
    if bits >= 16:
        return quantize_float(w, bits)
    if config.method == "uniform":
        clip = config.clipping if config.clipping != "auto" else ("mse" if bits < 8 else "max")
        return quantize_affine(w, bits, symmetric=config.symmetric, per_channel=per_channel, clip=clip)
    if config.method in ("cluster", "cluster-huffman"):
        return quantize_cluster(w, bits, keep_zeros=config.keep_zeros, huffman=config.method == "cluster-huffman")
    if config.method == "binary":
        return quantize_binary(w, per_channel=per_channel)
    return quantize_ternary(w, per_channel=per_channel)


@dataclass
class QuantizedModel:
    model: nn.Module                        # runs the decoded weights (+ activation fake-quant)
    artifact: bytes                         # the packed bytes: size_bytes is len(artifact)
    config: QuantConfig
    encoded: dict[str, Encoded]             # state_dict key -> what is stored
    layers: list[dict[str, Any]]            # per-layer report (name, kind, bits, bytes, SQNR ...)
    activations: dict[str, dict[str, Any]] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)  # QAT epochs
    stopped: bool = False

    @property
    def quantized_layers(self) -> list[dict[str, Any]]:
        return [r for r in self.layers if r["quantized"]]

    def coverage(self) -> str:
        """'5 of 5 layers: 2 Conv2d, 3 Linear' (what was quantized), and what was not."""
        done = Counter(r["kind"] for r in self.quantized_layers)
        parts = ", ".join(f"{n} {k}" for k, n in sorted(done.items()))
        text = f"{len(self.quantized_layers)} of {len(self.layers)} layers quantized" + (f": {parts}" if parts else "")
        kept = [r["name"] for r in self.layers if not r["quantized"]]
        if kept:
            text += f"; kept in float: {', '.join(kept)}"
        return text


def quantize(model: nn.Module, config: QuantConfig, *, dataset: Dataset | None = None,
             device: torch.device | str = "cpu", architecture: dict[str, Any] | None = None,
             progress: Callable[[dict], None] | None = None,
             should_stop: Callable[[], bool] | None = None, subset: int | None = None) -> QuantizedModel:
    """Quantize a copy of `model`. Needs `dataset` for activation calibration, QAT and centroid
    fine-tuning (which trains on the first `subset` training images, or all)."""
    if (config.activation_bits or config.qat_epochs or config.centroid_epochs) and dataset is None:
        raise CompressionError("activation quantization, QAT and centroid fine-tuning need a dataset "
                               "(validation/training images)")
    device = torch.device(device)
    model = clone_model(model).cpu().eval()
    detach_activation_quant(model)
    layers = quantizable_layers(model)
    names = {n for n, _ in layers}
    unknown = [n for n, _ in config.layer_bits if n not in names]
    if unknown:
        raise CompressionError(f"layer {unknown[0]!r} not in the model; its Conv2d/Linear layers are "
                               f"{', '.join(sorted(names))}")
    history, stopped = [], False
    if config.qat_epochs:
        from compression.quantization.qat import qat_finetune
        model, history, stopped = qat_finetune(model, config, dataset, device=device, progress=progress,
                                               should_stop=should_stop)
        model = model.cpu().eval()
        detach_activation_quant(model)
    state = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    encoded, report, originals, packed = {}, [], [], {}
    for name, module in layers:
        bits = config.bits_for(name)
        key = f"{name}.weight" if name else "weight"
        w = state[key].numpy()
        originals.append(w)
        quantized = bits < 32
        row = {"name": name, "kind": type(module).__name__, "shape": list(w.shape), "params": int(w.size),
               "bits": bits if quantized else 32, "quantized": quantized}
        if quantized:
            enc = encode_weight(w, bits, config)
            encoded[key] = enc
            decoded = enc.decode()
            state[key] = torch.from_numpy(decoded)
            packed[key] = (enc, encode_blobs(enc))  # packed once: the artifact below reuses it
            blobs = packed[key][1][0]
            row.update(encoding=enc.encoding, stored_bytes=sum(len(b) for b in blobs.values()),
                       sqnr_db=round(sqnr_db(w, decoded), 2), levels=int(len(enc.levels())))
        else:
            row.update(encoding="float32", stored_bytes=4 * int(w.size), sqnr_db=None, levels=None)
        row["bits_per_weight"] = round(8 * row["stored_bytes"] / max(1, w.size), 3)
        report.append(row)
    model.load_state_dict(with_own_metadata(model, state))
    if config.centroid_epochs and not stopped:
        from compression.quantization.centroids import finetune_centroids
        encoded, more, stopped = finetune_centroids(model, encoded, dataset, epochs=config.centroid_epochs,
                                                    lr=config.centroid_lr, seed=config.seed, subset=subset,
                                                    device=device, progress=progress, should_stop=should_stop)
        history += more
        for row, w in zip(report, originals):
            key = f"{row['name']}.weight" if row["name"] else "weight"
            if key in encoded and encoded[key].encoding == "codebook":  # new codebook values, same codes
                state[key] = torch.from_numpy(encoded[key].decode())
                row["sqnr_db"] = round(sqnr_db(w, state[key].numpy()), 2)
        model.load_state_dict(with_own_metadata(model, state))
    model = model.to(device).eval()
    activations = {}
    if config.activation_bits:
        quantized_names = [r["name"] for r in report if r["quantized"]]
        activations = calibrate(model, dataset, quantized_names, config.activation_bits,
                                images=config.calibration_size, device=device, seed=config.seed)
        attach_activation_quant(model, activations)
    artifact = write_artifact(state, encoded, activations=activations, architecture=architecture, packed=packed)
    return QuantizedModel(model=model, artifact=artifact, config=config, encoded=encoded, layers=report,
                          activations=activations, history=history, stopped=stopped)


def fake_quant_tensor(w: torch.Tensor, enc: Encoded, config: QuantConfig) -> torch.Tensor:
    """Differentiable-by-STE torch version of the layer's quantizer, with the clip ratios or
    codebook of `enc` (found once on the starting weights) re-applied to the current weights."""
    rows = w.reshape(w.shape[0], -1) if config.granularity == "channel" or enc.encoding == "codebook" \
        else w.reshape(1, -1)
    if enc.encoding == "affine":
        ratio = torch.as_tensor(enc.meta["clip_ratio"], device=w.device).view(-1, 1)
        qmin, qmax = enc.meta["qmin"], enc.meta["qmax"]
        lo = torch.clamp(rows.min(dim=1, keepdim=True).values * ratio, max=0)
        hi = torch.clamp(rows.max(dim=1, keepdim=True).values * ratio, min=0)
        if enc.meta["symmetric"]:
            scale = torch.maximum(-lo, hi) / qmax
            zp = torch.zeros_like(scale)
        else:
            scale = (hi - lo) / (qmax - qmin)
        scale = torch.where(scale > 0, scale, torch.ones_like(scale))
        if not enc.meta["symmetric"]:
            zp = torch.clamp(torch.round(-lo / scale), qmin, qmax)
        q = torch.clamp(torch.round(rows / scale) + zp, qmin, qmax)
        out = (q - zp) * scale
    elif enc.encoding == "binary":
        alpha = rows.abs().mean(dim=1, keepdim=True)
        out = torch.where(rows >= 0, alpha, -alpha)
    elif enc.encoding == "ternary":
        delta = 0.7 * rows.abs().mean(dim=1, keepdim=True)
        keep = rows.abs() > delta
        alpha = (rows.abs() * keep).sum(dim=1, keepdim=True) / keep.sum(dim=1, keepdim=True).clamp(min=1)
        out = torch.sign(rows) * keep * alpha
    elif enc.encoding == "codebook":
        codebook = torch.as_tensor(enc.arrays["codebook"], device=w.device)
        mids = (codebook[1:] + codebook[:-1]) / 2
        out = codebook[torch.bucketize(rows, mids)]
        if enc.meta.get("keep_zeros"):
            out = torch.where(rows == 0, torch.zeros_like(out), out)
    else:  # float16/32: nothing to learn around
        return w
    out = out.reshape(w.shape)
    return w + (out - w).detach()


def quantized_forward(model: nn.Module, x: torch.Tensor, encoded: dict[str, Encoded],
                      config: QuantConfig) -> torch.Tensor:
    """Forward pass with every quantized weight replaced by its STE fake-quantized value."""
    params = dict(model.named_parameters())
    swapped = {key: fake_quant_tensor(params[key], enc, config) for key, enc in encoded.items()}
    return torch.func.functional_call(model, swapped, (x,), strict=False)


def qat_loss(encoded: dict[str, Encoded], config: QuantConfig):
    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        return F.cross_entropy(quantized_forward(model, x, encoded, config), y)
    return loss_fn
