"""Activation quantization: each quantized layer's input is rounded to b bits (per tensor,
asymmetric, so ReLU outputs use the whole unsigned range), with ranges calibrated on validation
images. Implemented as forward pre-hooks, so the model's structure and state_dict keys stay as
they were; the straight-through estimator lets QAT train through the rounding."""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn as nn

from compression import CompressionError
from compression.data import Dataset
from compression.quantization.quantizers import CLIP_RATIOS, affine_params

QUANTIZABLE = (nn.Conv2d, nn.Linear)


class ActivationFakeQuant:
    """Forward pre-hook: x -> (clamp(round(x / scale) + zp, 0, 2^b - 1) - zp) * scale."""

    def __init__(self, bits: int, scale: float, zero_point: int):
        self.bits, self.scale, self.zero_point = int(bits), float(scale), int(zero_point)

    def __call__(self, module: nn.Module, args: tuple) -> tuple:
        x = args[0]
        q = torch.clamp(torch.round(x / self.scale) + self.zero_point, 0, (1 << self.bits) - 1)
        xq = (q - self.zero_point) * self.scale
        return (x + (xq - x).detach(),) + tuple(args[1:])  # straight-through in training

    def as_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "scale": self.scale, "zero_point": self.zero_point}


def attach_activation_quant(model: nn.Module, ranges: dict[str, dict[str, Any]]) -> None:
    """Register one ActivationFakeQuant per named layer (replacing any this code added before)."""
    modules = dict(model.named_modules())
    for name, r in ranges.items():
        module = modules[name]
        detach_activation_quant(module)
        module.register_forward_pre_hook(ActivationFakeQuant(r["bits"], r["scale"], r["zero_point"]))


def detach_activation_quant(model: nn.Module) -> None:
    for m in model.modules():
        for key, hook in list(m._forward_pre_hooks.items()):
            if isinstance(hook, ActivationFakeQuant):
                del m._forward_pre_hooks[key]


@torch.inference_mode()
def calibrate(model: nn.Module, dataset: Dataset, layers: list[str], bits: int, *, images: int = 512,
              device: torch.device | str = "cpu", sample: int = 200_000, seed: int = 0) -> dict[str, dict[str, Any]]:
    """Per-layer input ranges from the first `images` validation images: min/max at 8 bits; below 8
    bits the clip range with the least squared rounding error on a sample of the inputs (drawn from
    `seed`, the run's)."""
    modules = dict(model.named_modules())
    seen: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    handles = [modules[n].register_forward_pre_hook(
        lambda m, args, n=n: seen[n].append(args[0].detach().flatten().float().cpu())) for n in layers]
    try:
        model.eval()
        for x, _ in dataset.batches("val", 256, device=device, limit=images):
            model(x)
    finally:
        for h in handles:
            h.remove()
    # a multi-exit model's forward is the full network: its early exit heads do not run in it, so
    # their inputs keep float (weights are still quantized); any other layer the hooks did not see
    # is computed from its weights directly, and its activations could not be quantized
    early = tuple(f"exits.{k}." for k in range(getattr(model, "num_exits", 1) - 1))
    unseen = [n for n in layers if not seen[n] and not (n + ".").startswith(early)]
    if unseen:
        raise CompressionError(
            f"activation quantization needs every quantized layer to run as a module, but this model "
            f"computes {', '.join(unseen)} from their weights directly (a slimmable model slices them per "
            f"width); quantize the weights only (activation bits: none), or convert one width to a static "
            f"network first")
    layers = [n for n in layers if seen[n]]
    gen = np.random.default_rng(seed)
    ranges = {}
    for name in layers:
        values = torch.cat(seen[name]).numpy()
        lo, hi = np.array([values.min()], np.float32), np.array([values.max()], np.float32)
        ratio = 1.0
        if bits < 8:
            part = values if values.size <= sample else gen.choice(values, sample, replace=False)
            errs = []
            for r in CLIP_RATIOS:
                s, z = affine_params(lo * r, hi * r, bits, symmetric=False)
                q = np.clip(np.round(part / s[0]) + z[0], 0, (1 << bits) - 1)
                errs.append(float((((q - z[0]) * s[0] - part) ** 2).sum()))
            ratio = float(CLIP_RATIOS[int(np.argmin(errs))])
        scale, zp = affine_params(lo * ratio, hi * ratio, bits, symmetric=False)
        ranges[name] = {"bits": bits, "scale": float(scale[0]), "zero_point": int(zp[0]),
                        "min": float(lo[0]), "max": float(hi[0]), "clip_ratio": ratio}
    return ranges
