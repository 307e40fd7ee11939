"""Centroid fine-tuning after weight clustering: Deep Compression's stage 2 (Han et al. 2016, sec. 3.1).

Each clustered layer keeps its codes (which centroid every weight uses) and its pruned zeros; only
the codebook is trained. The weight is computed as codebook[codes] inside the forward pass, so
autograd sums the gradient of every weight in a cluster into its centroid, which is exactly the
paper's update. A centroid that is exactly 0.0 stays 0.0. The file keeps its layout and its size:
the same codes, only the codebook's float32 values differ.
"""

from __future__ import annotations

import dataclasses
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
from torch.nn.modules.batchnorm import _BatchNorm

from compression.data import Dataset
from compression.quantization.quantizers import Encoded
from compression.training import TrainConfig, accuracy_on, fit


class _Lookup(torch.autograd.Function):
    """codebook[codes]; the backward sums each weight's gradient into its centroid (scatter_add:
    some 40x faster on the CPU than autograd's indexing backward, which sorts the indices)."""

    @staticmethod
    def forward(ctx, codebook: torch.Tensor, codes: torch.Tensor) -> torch.Tensor:
        ctx.save_for_backward(codes)
        ctx.k = codebook.numel()
        return codebook.index_select(0, codes)

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        (codes,) = ctx.saved_tensors
        return torch.zeros(ctx.k, dtype=grad.dtype, device=grad.device).scatter_add_(0, codes, grad), None


class SharedWeights(nn.Module):
    """`base` with each clustered weight replaced by codebook[codes] (scattered into its stored
    positions when the zeros are kept). Only the codebooks are parameters that train."""

    def __init__(self, base: nn.Module, encoded: dict[str, Encoded]):
        super().__init__()
        self.base = base
        for p in base.parameters():
            p.requires_grad_(False)
        self.keys = list(encoded)
        self.shapes = [tuple(encoded[k].shape) for k in self.keys]
        self.codebooks = nn.ParameterList()
        for i, key in enumerate(self.keys):
            a = encoded[key].arrays
            codebook = torch.from_numpy(np.asarray(a["codebook"], np.float32).copy())
            self.codebooks.append(nn.Parameter(codebook))
            self.register_buffer(f"codes{i}", torch.from_numpy(np.asarray(a["indices"], np.int64)))
            self.register_buffer(f"fixed{i}", codebook == 0)
            positions = a.get("positions")
            self.register_buffer(f"positions{i}", None if positions is None
                                 else torch.from_numpy(np.asarray(positions, np.int64)))

    def weight(self, i: int) -> torch.Tensor:
        cb = self.codebooks[i]
        cb = torch.where(getattr(self, f"fixed{i}"), torch.zeros_like(cb), cb)  # a zero centroid gets no gradient
        values = _Lookup.apply(cb, getattr(self, f"codes{i}"))
        positions = getattr(self, f"positions{i}")
        if positions is not None:
            values = torch.zeros(int(np.prod(self.shapes[i])), dtype=cb.dtype, device=cb.device).scatter(
                0, positions, values)
        return values.reshape(self.shapes[i])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weights = {key: self.weight(i) for i, key in enumerate(self.keys)}
        return torch.func.functional_call(self.base, weights, (x,), strict=False)

    def train(self, mode: bool = True):
        super().train(mode)
        for m in self.base.modules():  # BatchNorm statistics are stored as they were: only centroids change
            if isinstance(m, _BatchNorm):
                m.eval()
        return self

    def trained(self, encoded: dict[str, Encoded]) -> dict[str, Encoded]:
        """Copies of `encoded` with the trained codebooks (float32); codes and positions untouched."""
        out = {}
        for i, key in enumerate(self.keys):
            enc = encoded[key]
            cb = self.codebooks[i].detach().cpu().numpy().astype(np.float32)
            cb[getattr(self, f"fixed{i}").cpu().numpy()] = 0.0
            out[key] = dataclasses.replace(enc, arrays={**enc.arrays, "codebook": cb})
        return out


def finetune_centroids(model: nn.Module, encoded: dict[str, Encoded], dataset: Dataset, *, epochs: int,
                       lr: float, seed: int = 0, subset: int | None = None, device: torch.device | str = "cpu",
                       progress: Callable[[dict], None] | None = None,
                       should_stop: Callable[[], bool] | None = None) -> tuple[dict[str, Encoded], list[dict], bool]:
    """(encoded with trained codebooks, per-epoch history, stopped). Only codebook entries change;
    `model` (the clustered model, weights = the codebooks' values) and `encoded` are not modified."""
    from compression.models import clone_model
    keys = [k for k, enc in encoded.items() if enc.encoding == "codebook"]
    if not keys:
        return encoded, [], False
    device = torch.device(device)
    shared = SharedWeights(clone_model(model).cpu(), {k: encoded[k] for k in keys})
    cfg = TrainConfig(epochs=epochs, lr=lr, batch_size=128, optimizer="adam", schedule="cosine", seed=seed,
                      subset=subset, eval_split="val")
    run = fit(shared, dataset, cfg, device=device, progress=progress, should_stop=should_stop,
              evaluate=lambda m: accuracy_on(m, dataset, "val", device, limit=2000))
    history = [{**h, "phase": "centroids"} for h in run.history]
    return {**encoded, **run.model.trained(encoded)}, history, run.stopped
