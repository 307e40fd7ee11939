"""Exits for any model: cut a network after chosen blocks into stages, put a small exit head after
each cut, and train only the heads (BranchyNet-style heads on a frozen backbone, as DeeBERT trains
its off-ramps after the backbone).

The cut is made on the traced graph (torch.fx): every node up to the block's last layer, plus the
plain operations right after it (a residual addition that closes the block), goes into the stage
before the cut. A cut where more than one tensor would cross (a skip connection spanning it) is
refused, naming the block. The result is a MultiExitNet, so the threshold sweep, real early exit
at batch 1 and the exit costs work on it as on the zoo's exit models; its backbone stays frozen
and in eval mode (BatchNorm statistics untouched), so after training it is bit-identical.
"""

from __future__ import annotations

from typing import Any, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.dynamic.exits import MultiExitNet
from compression.models import clone_model


class PooledHead(nn.Module):
    """An exit head for any feature shape: (B, C, H, W) average-pooled over space, (B, T, D)
    averaged over tokens, (B, F) as is; then one Linear layer."""

    def __init__(self, features: int, num_classes: int):
        super().__init__()
        self.linear = nn.Linear(features, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 4:
            x = F.adaptive_avg_pool2d(x, 1).flatten(1)
        elif x.dim() == 3:
            x = x.mean(dim=1)
        return self.linear(x.flatten(1))


class AttachedExits(MultiExitNet):
    """A frozen backbone cut into stages, with trainable exit heads; the last exit is the
    backbone's own classifier (inside the last stage)."""

    def __init__(self, stages: Sequence[nn.Module], heads: Sequence[nn.Module], blocks: Sequence[str]):
        super().__init__(stages, [*heads, nn.Identity()], distill=(0.5, 2.0))
        self.blocks = tuple(blocks)
        for p in self.stages.parameters():
            p.requires_grad_(False)
        self.train(False)

    def train(self, mode: bool = True) -> "AttachedExits":
        super().train(mode)
        self.stages.eval()  # frozen: BatchNorm statistics and dropout as in the model given
        return self


def block_candidates(model: nn.Module, depth: int = 3) -> list[str]:
    """Names a cut can follow, in order: the modules with weights, descending into stacks of blocks
    (Sequential, ModuleList) and the modules holding them: layer1, layer1.0, layer1.1 of a ResNet;
    encoder.layers.encoder_layer_2 of a torchvision ViT. A name here can still be refused by
    cut_stages when a skip connection spans it."""
    out: list[str] = []

    def walk(module: nn.Module, prefix: str, level: int) -> None:
        for name, child in module.named_children():
            full = f"{prefix}{name}"
            if not any(True for _ in child.parameters()):
                continue
            out.append(full)
            stack = isinstance(child, (nn.Sequential, nn.ModuleList)) or any(
                isinstance(c, (nn.Sequential, nn.ModuleList)) for c in child.children())
            if stack and level < depth:
                walk(child, full + ".", level + 1)
    walk(model, "", 1)
    return out


def default_blocks(model: nn.Module) -> list[str]:
    """A first choice of blocks to exit after: the model's top-level stacks of blocks but the last
    (layer1-3 of a ResNet), else two blocks a third and two thirds in; never the last block (the
    model's own classifier is the last exit)."""
    names = block_candidates(model)
    modules = dict(model.named_modules())
    stacks = [n for n in names if "." not in n and sum(1 for c in modules[n].children()
                                                         if any(True for _ in c.parameters())) > 1]
    pool = names[:-1]
    default = stacks[:-1] or ([pool[len(pool) // 3], pool[2 * len(pool) // 3]] if pool else [])
    return sorted(set(default), key=names.index)


def cut_stages(model: nn.Module, blocks: Sequence[str]) -> list[nn.Module]:
    """The model (a copy: the one given is not touched) as len(blocks) + 1 stages run in sequence:
    stage k ends after blocks[k]; the last stage ends with the model's output."""
    from torch.fx import symbolic_trace
    from torch.fx.passes.split_module import split_module

    if not blocks:
        raise CompressionError("give at least one block to attach an exit after")
    if len(set(blocks)) != len(blocks):
        raise CompressionError(f"blocks {list(blocks)} name one block twice")
    names = dict(model.named_modules())
    for b in blocks:
        if b not in names or not b:
            raise CompressionError(f"no block {b!r} in this model; blocks to cut after: "
                                   f"{', '.join(block_candidates(model))}")
    copy = clone_model(model).eval()
    try:
        gm = symbolic_trace(copy)
    except Exception as exc:  # data-dependent control flow and the like
        raise CompressionError(f"this model cannot be traced to cut it into stages "
                               f"({type(exc).__name__}: {str(exc)[:120]})") from None
    nodes = list(gm.graph.nodes)
    last = {}
    for i, n in enumerate(nodes):
        for b in blocks:
            if n.op == "call_module" and (n.target == b or str(n.target).startswith(b + ".")):
                last[b] = i
    missing = [b for b in blocks if b not in last]
    if missing:
        raise CompressionError(f"block {missing[0]!r} runs no layer in the traced forward; choose one of "
                               f"{', '.join(block_candidates(model))}")
    ends = [last[b] for b in blocks]
    if ends != sorted(ends):
        raise CompressionError(f"blocks {list(blocks)} are not in the order the model runs them")
    cuts = []
    for end in ends:  # absorb the plain operations that close the block (a residual add, a reshape)
        while end + 1 < len(nodes) and nodes[end + 1].op in ("call_function", "call_method"):
            end += 1
        cuts.append(end)
    part, k = {}, 0
    for i, n in enumerate(nodes):
        part[n] = k
        while k < len(cuts) and i == cuts[k]:
            k += 1
    split = split_module(gm, copy, lambda n: part[n])
    stages = [getattr(split, f"submod_{i}") for i in range(len(blocks) + 1) if hasattr(split, f"submod_{i}")]
    if len(stages) != len(blocks) + 1:
        raise CompressionError(f"cutting after {list(blocks)} left an empty stage; choose blocks further apart")
    for b, stage in zip(blocks, stages[1:]):
        inputs = [n for n in stage.graph.nodes if n.op == "placeholder"]
        if len(inputs) != 1:
            raise CompressionError(f"cannot cut after {b!r}: {len(inputs)} tensors cross that point (a skip "
                                   "connection spans it); choose the end of a residual block")
    return stages


@torch.no_grad()
def attach_exits(model: nn.Module, blocks: Sequence[str], input_shape: Sequence[int], num_classes: int, *,
                 seed: int = 0) -> AttachedExits:
    """The model (copied) with an exit head after each block; heads untrained (see train_heads),
    their initial weights drawn from `seed`."""
    from compression.training import seeded
    stages = cut_stages(model, blocks)
    x = torch.zeros(1, *input_shape, device=next(model.parameters()).device)
    heads = []
    for stage in stages[:-1]:
        x = stage(x)
        if not isinstance(x, torch.Tensor):
            raise CompressionError("a stage's output is not one tensor; choose another block")
        features = x.shape[1] if x.dim() in (2, 4) else x.shape[-1]
        with seeded(seed + len(heads), x.device):
            heads.append(PooledHead(int(features), num_classes).to(x.device))
    out = stages[-1](x)
    if out.shape[-1] != num_classes:
        raise CompressionError(f"the model's output has {out.shape[-1]} classes, the dataset {num_classes}")
    return AttachedExits(stages, heads, blocks)


def train_heads(model: AttachedExits, dataset, cfg, *, device: torch.device | str = "cpu",
                progress=None, should_stop=None):
    """Train the exit heads only (compression.dynamic.train_exits on a copy: each head learns the
    labels and the backbone's own softened output); the backbone stays frozen and in eval mode."""
    from compression.dynamic.exits import train_exits
    if not isinstance(model, AttachedExits):
        raise CompressionError("train_heads takes a model from attach_exits")
    return train_exits(model, dataset, cfg, device=device, progress=progress, should_stop=should_stop)


def attached(*, base: dict[str, Any], blocks: Sequence[str], input_shape: Sequence[int],
             num_classes: int) -> nn.Module:
    """The builder artifact headers name: the base architecture cut at the same blocks, heads
    untrained (the artifact's weights, backbone and heads, are loaded into it)."""
    from compression.refs import rebuild
    return attach_exits(rebuild(base), list(blocks), tuple(input_shape), int(num_classes))


def architecture_of(model: AttachedExits, base: dict[str, Any], input_shape: Sequence[int],
                    num_classes: int) -> dict[str, Any]:
    """The recipe that rebuilds an attached model (for its artifact)."""
    return {"name": f"{base.get('name', 'model')}+exits", "builder": "compression.dynamic.attach:attached",
            "kwargs": {"base": base, "blocks": list(model.blocks), "input_shape": list(input_shape),
                       "num_classes": int(num_classes)}}


def save_attached(model: AttachedExits, *, base: str, architecture: dict[str, Any], dataset,
                  name: str | None = None, device: torch.device | str = "cpu") -> dict[str, Any]:
    """Keep an attached model as a named model (a card and a plain state_dict under
    $COMPRESSION_HOME/models, like a user's own weights): it then shows in every model picker for
    its dataset, and the Dynamic page's threshold slider works on it as on the zoo's exit models."""
    import datetime as dt
    import json
    import os
    import uuid

    from compression.metrics import measure
    from compression.models import MODELS_DIR, NAME_PATTERN, state_dict_bytes, user_models_dir

    recipe = architecture_of(model, architecture, dataset.input_shape, dataset.num_classes)
    blob = state_dict_bytes(model)
    safe = "".join(c if c.isalnum() or c in "_.-" else "-" for c in base.replace("torchvision:", "tv-"))
    name = name or f"{safe[:40]}-exits-{'-'.join(b.replace('.', '') for b in model.blocks)}"[:64]
    if not NAME_PATTERN.match(name):
        raise CompressionError(f"model name {name!r} must be 1-64 letters, digits, '_', '-' or '.'")
    if (MODELS_DIR / f"{name}.json").is_file():
        raise CompressionError(f"model name {name!r} is taken by the zoo; choose another")
    metrics = measure(model.to(device).eval(), dataset, device=device, artifact=blob)
    folder = user_models_dir()
    folder.mkdir(parents=True, exist_ok=True)
    tmp = f"{os.getpid()}-{uuid.uuid4().hex[:8]}.tmp"
    (folder / f".{name}.pt.{tmp}").write_bytes(blob)
    os.replace(folder / f".{name}.pt.{tmp}", folder / f"{name}.pt")
    card = {
        "name": name, "description": f"{base} with exit heads after {', '.join(model.blocks)} "
                                     "(heads trained here, backbone frozen).",
        "builder": recipe["builder"], "builder_kwargs": recipe["kwargs"], "dataset": dataset.name,
        "checkpoint": f"{name}.pt", "source": "attached exits", "base": base, "recipe": None,
        "test_accuracy": metrics.accuracy, "accuracy_n": metrics.accuracy_n, "params": metrics.params,
        "size_bytes": metrics.size_bytes, "macs": metrics.macs, "train_time_s": None, "trained_on": None,
        "added_at": dt.datetime.now().isoformat(timespec="seconds"),
    }
    (folder / f".{name}.json.{tmp}").write_text(json.dumps(card, indent=2) + "\n")
    os.replace(folder / f".{name}.json.{tmp}", folder / f"{name}.json")
    return card
