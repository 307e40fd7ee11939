"""Which layer's output first diverges between the run's model (PyTorch) and an exported file in its
own runtime, on a few test images.

Each runtime's probe gives (module scope, value) for its operations in execution order (ONNX node
scopes, a torch.export node's module stack, a rebuilt module's forward hooks). A module's value is
the last one inside its scope; PyTorch's is its forward output. Walking the modules in the order
they finish, the first whose relative error ||file - torch|| / ||torch|| passes the threshold is
named. A runtime may fold layers together (BatchNorm into the convolution before it): a module
whose following modules have no value of their own in the file is compared with whichever of them
it matches best, so folding is not mistaken for divergence. A module called more than once (one
ReLU reused) is left to the block around it."""

from __future__ import annotations

from collections import Counter
from typing import Any, Callable

import numpy as np
import torch
import torch.nn as nn


def torch_outputs(model: nn.Module, x: torch.Tensor, exits: bool) -> tuple[list[str], dict[str, np.ndarray]]:
    """(module names in the order their forward finished, name -> output) for modules called once."""
    order: list[str] = []
    outputs: dict[str, np.ndarray] = {}
    calls: Counter = Counter()

    def hook(name: str) -> Callable:
        def record(module, args, out) -> None:
            calls[name] += 1
            if isinstance(out, torch.Tensor):
                order.append(name)
                outputs[name] = out.detach().float().numpy().copy()
        return record
    handles = [m.register_forward_hook(hook(name)) for name, m in model.named_modules() if name]
    try:
        with torch.no_grad():
            model.forward_all(x) if exits else model(x)
    finally:
        for h in handles:
            h.remove()
    once = [n for n in order if calls[n] == 1]
    return once, {n: outputs[n] for n in once}


def values_by_module(items: list[tuple[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Module path -> the last value computed inside it (its own scope or any scope below it)."""
    out: dict[str, np.ndarray] = {}
    for scope, value in items:
        parts = scope.split(".")
        for i in range(1, len(parts) + 1):
            out[".".join(parts[:i])] = value
    return out


def relative_error(a: np.ndarray, b: np.ndarray) -> float:
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    return float(np.linalg.norm(a - b) / (np.linalg.norm(b) + 1e-12))


def first_divergence(model: nn.Module, probe: Callable[[np.ndarray], list], x: np.ndarray, *, exits: bool,
                     threshold: float) -> dict[str, Any]:
    """{"layer": the first module over `threshold` (None when none is), "relative_error", "layers":
    every compared module's error in order}."""
    order, ref = torch_outputs(model, torch.from_numpy(x), exits)
    got = values_by_module(probe(x))
    layers = []
    for i, name in enumerate(order):
        if name not in got:
            continue
        candidates = [name]
        for follower in order[i + 1:]:  # layers the runtime folded into this one
            if follower in got:
                break
            candidates.append(follower)
        errors = [relative_error(got[name], ref[c]) for c in candidates if np.shape(got[name]) == np.shape(ref[c])]
        if errors:
            layers.append({"layer": name, "relative_error": min(errors)})
    first = next((entry for entry in layers if entry["relative_error"] > threshold), None)
    return {"layer": first["layer"] if first else None,
            "relative_error": first["relative_error"] if first else None,
            "threshold": threshold, "compared": len(layers), "layers": layers}
