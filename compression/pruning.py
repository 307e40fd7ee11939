"""Network pruning: remove the least important weights (unstructured) or whole channels and
neurons (structured), fine-tune to recover, repeat.

Three separate roles, as in Torch-Pruning: *importance* (weight magnitude; a channel's group L1/L2
norm or first-order Taylor score, from Torch-Pruning), *schedule* (`ratio_schedule`, a pure
function ramping the ratio over the steps) and *mechanics* (zeroing weights here; physically
removing channels through Torch-Pruning's dependency graph, which adjusts BatchNorm, the next
conv/linear layer, residual additions and concatenations).

What the two granularities give, and what we measure:

- unstructured: the network keeps its shape with zeros inside. A dense kernel runs it exactly as
  fast as before, so the speed gain is *simulated*; only a sparse storage format (`sparse_bytes`:
  a bitmask or relative indices plus the nonzero values) makes it smaller, and that size is real.
- structured: a smaller dense network whose size, MACs and latency are all measured on it.

Every function copies the model it is given; the input is never modified.
"""

from __future__ import annotations

import contextlib
import io
import json
import math
import os
import struct
import threading
from dataclasses import asdict, dataclass, field
from typing import Callable, Iterable, Iterator

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.metrics import Metrics, Result, baseline_metrics, measure
from compression.models import clone_model, load_pretrained, state_dict_bytes
from compression.training import ProgressFn, StopFn, TrainConfig, accuracy_on, cross_entropy_loss, fit

METHODS = ("unstructured", "structured")
SCOPES = ("layer", "global")
IMPORTANCES = ("l1", "l2", "taylor")
SPLITS = ("val", "train")
PRUNABLE = (nn.Conv1d, nn.Conv2d, nn.Conv3d, nn.Linear)


@dataclass(frozen=True)
class PruneConfig:
    method: str = "unstructured"  # unstructured (single weights) | structured (channels/neurons)
    ratio: float = 0.5            # fraction removed: of weights, or of channels per layer / overall
    scope: str = "layer"          # layer: the ratio in every layer | global: one threshold for all
    importance: str = "l1"        # structured: l1 | l2 (group norm) | taylor; unstructured: |w|

    def __post_init__(self):
        if self.method not in METHODS:
            raise CompressionError(f"method must be one of {', '.join(METHODS)}, got {self.method!r}")
        if isinstance(self.ratio, bool) or not isinstance(self.ratio, (int, float)) or not 0 <= self.ratio < 1:
            raise CompressionError(f"pruning ratio must be in [0, 1), got {self.ratio!r}")
        if self.scope not in SCOPES:
            raise CompressionError(f"scope must be one of {', '.join(SCOPES)}, got {self.scope!r}")
        if self.importance not in IMPORTANCES:
            raise CompressionError(f"importance must be one of {', '.join(IMPORTANCES)}, got {self.importance!r}")
        if self.method == "unstructured" and self.importance == "taylor":
            raise CompressionError("importance 'taylor' is for structured pruning; unstructured uses |w| (l1 or l2)")


@dataclass(frozen=True)
class FinetuneConfig:
    epochs: int = 0           # fine-tuning epochs after each pruning step (0 = none)
    steps: int = 1            # prune -> fine-tune cycles; the ratio is ramped linearly over them
    lr: float = 1e-3          # Adam, cosine decay: half the cnn/lenet5 training peak (2e-3); 1e-4 recovers less
    split: str = "val"        # val (5k images, the default) | train (55k)
    subset: int | None = None  # only the first `subset` images of that split
    batch_size: int = 128
    augment: bool = False     # random 2-px shifts and flips, as the zoo's cnn/lenet5 were trained
    distill: float = 0.0      # weight of the unpruned model's soft labels (T=4) in the loss; 0 = labels only
    seed: int = 0
    monitor_images: int = 2000  # images for the live accuracy after each step and epoch

    def __post_init__(self):
        if isinstance(self.epochs, bool) or not isinstance(self.epochs, int) or not 0 <= self.epochs <= 100:
            raise CompressionError(f"fine-tuning epochs must be an integer in [0, 100], got {self.epochs!r}")
        if isinstance(self.steps, bool) or not isinstance(self.steps, int) or not 1 <= self.steps <= 20:
            raise CompressionError(f"iterative steps must be an integer in [1, 20], got {self.steps!r}")
        if not isinstance(self.lr, (int, float)) or not 0 < self.lr <= 1:
            raise CompressionError(f"fine-tuning learning rate must be in (0, 1], got {self.lr!r}")
        if isinstance(self.distill, bool) or not isinstance(self.distill, (int, float)) or not 0 <= self.distill <= 1:
            raise CompressionError(f"distillation weight must be in [0, 1], got {self.distill!r}")
        if self.split not in SPLITS:
            raise CompressionError(f"fine-tuning split must be one of {', '.join(SPLITS)}, got {self.split!r}")
        if isinstance(self.monitor_images, bool) or not isinstance(self.monitor_images, int) or self.monitor_images < 1:
            raise CompressionError(f"monitor images must be a positive integer, got {self.monitor_images!r}")
        TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                    split=self.split, subset=self.subset)  # the rest is checked by the training loop

    def train_config(self) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer="adam",
                           schedule="cosine", augment=self.augment, seed=self.seed, split=self.split,
                           subset=self.subset)


def ratio_schedule(ratio: float, steps: int) -> list[float]:
    """Linear ramp to `ratio` over `steps` pruning steps: 0.9, 3 -> [0.3, 0.6, 0.9]."""
    return [ratio * k / steps for k in range(1, steps + 1)]


# ---------------------------------------------------------------------------------------------
# unstructured: zero the smallest |w|

def prunable_parameters(model: nn.Module) -> list[tuple[str, nn.Parameter]]:
    """Weights and biases of conv and linear layers (BatchNorm and other parameters stay)."""
    out = []
    for module_name, module in model.named_modules():
        if isinstance(module, PRUNABLE):
            for pname in ("weight", "bias"):
                p = getattr(module, pname, None)
                if isinstance(p, nn.Parameter):
                    out.append((f"{module_name}.{pname}" if module_name else pname, p))
    return out


def _zero_smallest_(tensors: list[torch.Tensor], ratio: float) -> None:
    """Zero exactly round(ratio * n) of the n entries of `tensors` with the smallest magnitude,
    ranked together (ties broken by position). Entries already zero rank first."""
    flat = torch.cat([t.detach().reshape(-1).abs().float() for t in tensors])
    k = int(round(ratio * flat.numel()))
    if k == 0:
        return
    drop = torch.zeros(flat.numel(), dtype=torch.bool, device=flat.device)
    drop[torch.argsort(flat, stable=True)[:k]] = True
    start = 0
    with torch.no_grad():
        for t in tensors:
            t.masked_fill_(drop[start:start + t.numel()].view_as(t), 0)
            start += t.numel()


def prune_weights(model: nn.Module, ratio: float, *, scope: str = "layer") -> nn.Module:
    """A copy of `model` with `ratio` of its conv/linear weights and biases set to zero, by
    magnitude: in every layer (scope='layer') or with one threshold over all of them ('global')."""
    PruneConfig(method="unstructured", ratio=ratio, scope=scope)  # validates
    model = clone_model(model)
    params = prunable_parameters(model)
    if scope == "global":
        _zero_smallest_([p for _, p in params], ratio)
    else:
        by_layer: dict[str, list[torch.Tensor]] = {}
        for name, p in params:
            by_layer.setdefault(name.rpartition(".")[0], []).append(p)
        for tensors in by_layer.values():
            _zero_smallest_(tensors, ratio)
    return model


def weight_masks(model: nn.Module) -> dict[str, torch.Tensor]:
    """{parameter name: bool mask of the entries kept} for the prunable parameters."""
    return {name: p.detach() != 0 for name, p in prunable_parameters(model)}


def apply_masks(model: nn.Module, masks: dict[str, torch.Tensor]) -> None:
    """Zero the masked-out entries in place (after each optimizer step while fine-tuning)."""
    with torch.no_grad():
        for name, p in prunable_parameters(model):
            if name in masks:
                p.mul_(masks[name].to(p.device))


def sparsity(model: nn.Module) -> float:
    """Fraction of the prunable entries (conv/linear weights and biases) that are zero."""
    params = prunable_parameters(model)
    total = sum(p.numel() for _, p in params)
    zeros = sum(int((p.detach() == 0).sum()) for _, p in params)
    return zeros / total if total else 0.0


# ---------------------------------------------------------------------------------------------
# structured: remove whole channels / neurons with Torch-Pruning's dependency graph

def output_layer(model: nn.Module) -> nn.Module:
    """The layer that produces the class scores (the last conv/linear): its outputs are kept."""
    layers = [m for m in model.modules() if isinstance(m, PRUNABLE)]
    if not layers:
        raise CompressionError("model has no conv or linear layer to prune")
    return layers[-1]


def channel_counts(model: nn.Module) -> dict[str, int]:
    """Output channels (conv) or neurons (linear) of every conv/linear layer, by name."""
    return {name: (m.out_channels if isinstance(m, nn.modules.conv._ConvNd) else m.out_features)
            for name, m in model.named_modules() if isinstance(m, PRUNABLE)}


def _importance(kind: str):
    import torch_pruning as tp
    if kind == "taylor":
        return tp.importance.GroupTaylorImportance()
    return tp.importance.GroupMagnitudeImportance(p=1 if kind == "l1" else 2)


def _taylor_gradients(model: nn.Module, calibration: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> None:
    """Accumulate d(loss)/d(weight) over the calibration batches (eval mode: BN statistics fixed)."""
    model.eval()
    model.zero_grad(set_to_none=True)
    seen = 0
    for x, y in calibration:
        F.cross_entropy(model(x), y).backward()
        seen += 1
    if seen == 0:
        raise CompressionError("taylor importance needs calibration batches (images with labels)")


def prune_channels(model: nn.Module, ratio: float, *, input_shape: tuple[int, ...], scope: str = "layer",
                   importance: str = "l1", calibration: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
                   original: dict[str, int] | None = None) -> nn.Module:
    """A copy of `model` with `ratio` of its channels/neurons physically removed.

    scope='layer' keeps round(n * (1 - ratio)) of the n channels of every layer (at least one);
    scope='global' ranks all channels together by their layer-normalized importance. The output
    layer's outputs (the classes) are never pruned. `original` gives the channel counts the ratio
    refers to (those of the unpruned model, when pruning iteratively); by default the current ones.
    """
    import torch_pruning as tp

    from compression.dynamic import refuse_slimmable
    PruneConfig(method="structured", ratio=ratio, scope=scope, importance=importance)  # validates
    refuse_slimmable(model, "structured pruning")
    model = clone_model(model)
    if ratio == 0:
        return model
    device = next(model.parameters()).device
    names = {m: n for n, m in model.named_modules()}
    graph = tp.DependencyGraph().build_dependency(model, example_inputs=torch.zeros(1, *input_shape, device=device))
    groups = list(graph.get_all_groups(ignored_layers=[output_layer(model)], root_module_types=list(PRUNABLE)))
    for m in model.modules():
        if isinstance(m, nn.modules.conv._ConvNd) and 1 < m.groups < m.out_channels:
            raise CompressionError(f"grouped convolution {names[m]!r} (groups={m.groups}) is not supported")
    if importance == "taylor":
        _taylor_gradients(model, calibration or [])
    scorer = _importance(importance)
    original = original or channel_counts(model)
    plans = []  # (root module, handler, scores, current n, target kept)
    with torch.no_grad():
        for group in groups:
            root, handler = group[0].dep.target.module, group[0].dep.handler
            n = graph.get_out_channels(root)
            scores = scorer(group)
            if scores is None or n is None or len(scores) != n:
                continue
            kept = max(1, round(original.get(names[root], n) * (1 - ratio)))
            plans.append((root, handler, scores.float().cpu(), n, kept))
    if scope == "global":
        plans = _global_targets(plans, ratio, original, names)
    for root, handler, scores, n, kept in plans:
        if kept < n:
            drop = torch.argsort(scores, stable=True)[: n - kept].tolist()
            graph.get_pruning_group(root, handler, sorted(drop)).prune()
    model.zero_grad(set_to_none=True)
    return model


def _global_targets(plans, ratio, original, names):
    """One threshold over every layer's normalized scores; each layer keeps at least its best."""
    total = sum(original.get(names[root], n) for root, _, _, n, _ in plans)
    keep_total = max(len(plans), round(total * (1 - ratio)))
    current = sum(n for _, _, _, n, _ in plans)
    if current <= keep_total:
        return [(r, h, s, n, n) for r, h, s, n, _ in plans]
    candidates = []  # (score, plan index): every channel except each layer's most important one
    for i, (_, _, scores, _, _) in enumerate(plans):
        order = torch.argsort(scores, stable=True)
        candidates += [(float(scores[j]), i) for j in order[:-1].tolist()]
    candidates.sort(key=lambda c: c[0])
    removed = [0] * len(plans)
    for _, i in candidates[: current - keep_total]:
        removed[i] += 1
    return [(r, h, s, n, n - removed[i]) for i, (r, h, s, n, _) in enumerate(plans)]


def prune(model: nn.Module, cfg: PruneConfig, *, input_shape: tuple[int, ...],
          calibration: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
          original: dict[str, int] | None = None) -> nn.Module:
    """Dispatch on cfg.method; returns a new model."""
    if cfg.method == "structured":
        return prune_channels(model, cfg.ratio, input_shape=input_shape, scope=cfg.scope,
                              importance=cfg.importance, calibration=calibration, original=original)
    return prune_weights(model, cfg.ratio, scope=cfg.scope)


# ---------------------------------------------------------------------------------------------
# artifacts: the bytes the user downloads

SPARSE_MAGIC = b"CXSPARS1"


def _np(t: torch.Tensor) -> np.ndarray:
    try:
        a = t.detach().cpu().contiguous().numpy()
    except TypeError:
        raise CompressionError(f"tensor dtype {t.dtype} cannot be stored in the sparse format") from None
    return a.astype(a.dtype.newbyteorder("<"), copy=False)


def _encode_gaps(a: np.ndarray, nz: np.ndarray) -> tuple[bytes, int]:
    """Relative indices (Han et al. 2015): one uint8 gap per nonzero; a gap over 255 is bridged by
    filler entries of value 0. Returns (gaps + values, number of entries)."""
    gaps = np.diff(np.concatenate([[-1], nz]))
    fillers = (gaps - 1) // 255
    entries = int(len(nz) + fillers.sum())
    out_gaps = np.full(entries, 255, dtype=np.uint8)
    values = np.zeros(entries, dtype=a.dtype)
    real = np.cumsum(fillers + 1) - 1
    out_gaps[real] = gaps - 255 * fillers
    values[real] = a[nz]
    return out_gaps.tobytes() + values.tobytes(), entries


def sparse_bytes(model: nn.Module) -> bytes:
    """The whole state_dict in a sparse container: per tensor the smallest of dense, bitmask +
    nonzero values, or uint8 relative indices + values. A JSON header names each tensor's
    encoding, shape, dtype and byte range; its length is the artifact's `size_bytes`."""
    header, payload, offset = [], [], 0
    for name, t in model.state_dict().items():
        a = _np(t).reshape(-1)
        nz = np.flatnonzero(a)
        options = {"dense": lambda: (a.tobytes(), None)}
        if np.issubdtype(a.dtype, np.floating) and a.size:
            options["bitmask"] = lambda: (np.packbits(a != 0, bitorder="little").tobytes() + a[nz].tobytes(), None)
            options["gaps"] = lambda: _encode_gaps(a, nz)
        encoded = {k: fn() for k, fn in options.items()}
        encoding = min(encoded, key=lambda k: len(encoded[k][0]))
        blob, entries = encoded[encoding]
        header.append({"name": name, "dtype": str(a.dtype.newbyteorder("=")), "shape": list(t.shape),
                       "encoding": encoding, "nnz": int(len(nz)), "entries": entries,
                       "offset": offset, "nbytes": len(blob)})
        payload.append(blob)
        offset += len(blob)
    head = json.dumps({"format": 1, "tensors": header}, separators=(",", ":")).encode()
    return SPARSE_MAGIC + struct.pack("<I", len(head)) + head + b"".join(payload)


def read_sparse(data: bytes) -> dict[str, torch.Tensor]:
    """Decode `sparse_bytes` back into a state_dict (dense tensors)."""
    if data[:8] != SPARSE_MAGIC or len(data) < 12:
        raise CompressionError("not a Compression Explorer sparse file (bad magic)")
    (n,) = struct.unpack("<I", data[8:12])
    try:
        header = json.loads(data[12:12 + n])
    except ValueError:
        raise CompressionError("sparse file header is corrupt") from None
    base = 12 + n
    state = {}
    for h in header["tensors"]:
        blob = data[base + h["offset"]: base + h["offset"] + h["nbytes"]]
        dtype = np.dtype(h["dtype"]).newbyteorder("<")
        size = math.prod(h["shape"])
        if h["encoding"] == "dense":
            a = np.frombuffer(blob, dtype=dtype, count=size)
        else:
            a = np.zeros(size, dtype=dtype)
            if h["encoding"] == "bitmask":
                nbits = (size + 7) // 8
                mask = np.unpackbits(np.frombuffer(blob[:nbits], np.uint8), count=size, bitorder="little")
                a[mask.astype(bool)] = np.frombuffer(blob[nbits:], dtype=dtype, count=h["nnz"])
            elif h["encoding"] == "gaps":
                m = h["entries"]
                pos = np.cumsum(np.frombuffer(blob[:m], np.uint8).astype(np.int64)) - 1
                a[pos] = np.frombuffer(blob[m:], dtype=dtype, count=m)
            else:
                raise CompressionError(f"unknown tensor encoding {h['encoding']!r} in sparse file")
        state[h["name"]] = torch.from_numpy(a.astype(dtype.newbyteorder("="))).reshape(h["shape"])
    return state


def load_sparse(data: bytes, builder: Callable[[], nn.Module]) -> nn.Module:
    """Rebuild a model from `sparse_bytes`: builder() gives the architecture (fresh weights)."""
    from compression.models import load_state_dict_checked
    model = builder()
    load_state_dict_checked(model, read_sparse(data), source="sparse file")
    return model.eval()


def resize_to(model: nn.Module, state: dict[str, torch.Tensor]) -> nn.Module:
    """Shrink conv/linear/BatchNorm layers of `model` (in place) to the shapes in `state`, so a
    structurally pruned state_dict loads into its unpruned architecture's builder."""
    for name, m in model.named_modules():
        w = state.get(f"{name}.weight" if name else "weight")
        if w is None:
            continue
        if isinstance(m, nn.modules.conv._ConvNd):
            depthwise = m.groups == m.in_channels == m.out_channels and m.groups > 1
            m.out_channels = w.shape[0]
            m.in_channels = w.shape[1] * (w.shape[0] if depthwise else m.groups)
            if depthwise:
                m.groups = w.shape[0]
        elif isinstance(m, nn.Linear):
            m.out_features, m.in_features = w.shape
        elif isinstance(m, nn.modules.batchnorm._BatchNorm):
            m.num_features = w.shape[0]
        else:
            continue
        for pname, p in list(m.named_parameters(recurse=False)):
            key = f"{name}.{pname}" if name else pname
            if key in state:
                setattr(m, pname, nn.Parameter(torch.empty_like(state[key], dtype=p.dtype)))
        for bname, b in list(m.named_buffers(recurse=False)):
            key = f"{name}.{bname}" if name else bname
            if b is not None and key in state:
                setattr(m, bname, torch.empty_like(state[key], dtype=b.dtype))
    return model


def load_structured(data: bytes, builder: Callable[[], nn.Module]) -> nn.Module:
    """Rebuild a structurally pruned model from its state_dict bytes and the original builder."""
    from compression.models import load_state_dict_checked
    try:
        state = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except Exception as exc:
        raise CompressionError(f"not a readable state_dict ({type(exc).__name__})") from None
    model = resize_to(builder(), state)
    load_state_dict_checked(model, state, source="pruned state_dict")
    return model.eval()


def export_program(model: nn.Module, input_shape: tuple[int, ...]) -> bytes:
    """A self-contained torch.export program (any batch size): loads without our builders."""
    model = clone_model(model).cpu().eval()
    ep = torch.export.export(model, (torch.zeros(2, *input_shape),),
                             dynamic_shapes=({0: torch.export.Dim.AUTO},))
    buffer = io.BytesIO()
    torch.export.save(ep, buffer)
    return buffer.getvalue()


def artifact_bytes(model: nn.Module, method: str) -> bytes:
    """What the user downloads: the sparse container (unstructured) or the smaller dense
    state_dict, in the same torch.save format as the baseline's (structured)."""
    return sparse_bytes(model) if method == "unstructured" else state_dict_bytes(model)


# ---------------------------------------------------------------------------------------------
# per-layer tables and theoretical sparse MACs

def layer_table(before: nn.Module, after: nn.Module) -> list[dict]:
    """Per conv/linear layer: weights and channels before/after, nonzero weights after."""
    old = dict(before.named_modules())
    rows = []
    for name, m in after.named_modules():
        if not isinstance(m, PRUNABLE) or name not in old:
            continue
        o = old[name]
        conv = isinstance(m, nn.modules.conv._ConvNd)
        rows.append({
            "layer": name, "kind": "conv" if conv else "linear",
            "shape_before": list(o.weight.shape), "shape_after": list(m.weight.shape),
            "channels_before": o.weight.shape[0], "channels_after": m.weight.shape[0],
            "weights_before": o.weight.numel(), "weights_after": m.weight.numel(),
            "nonzero_after": int(torch.count_nonzero(m.weight.detach())),
        })
    for r in rows:
        r["kept_weights"] = r["nonzero_after"] / r["weights_before"] if r["weights_before"] else 1.0
        r["kept_channels"] = r["channels_after"] / r["channels_before"] if r["channels_before"] else 1.0
    return rows


@torch.inference_mode()
def sparse_macs(model: nn.Module, input_shape: tuple[int, ...]) -> int:
    """MACs for one input if only nonzero weights were multiplied: what a sparse kernel could
    reach. Theoretical: the dense kernels we run still do every multiply."""
    total = 0
    hooks = []

    def count(m, _inp, out):
        nonlocal total
        nnz = int(torch.count_nonzero(m.weight))
        # a conv weight is used once per output position; a linear one once per leading row
        uses = out[0, 0].numel() if isinstance(m, nn.modules.conv._ConvNd) else out[0].numel() // out.shape[-1]
        total += nnz * uses

    for m in model.modules():
        if isinstance(m, PRUNABLE):
            hooks.append(m.register_forward_hook(count))
    was_training = model.training
    model.eval()
    try:
        device = next(model.parameters()).device
        model(torch.zeros(1, *input_shape, device=device))
    finally:
        for h in hooks:
            h.remove()
        model.train(was_training)
    return total


# ---------------------------------------------------------------------------------------------
# prune -> fine-tune -> repeat

@dataclass
class PruneRun:
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # progress entries, oldest first
    stopped: bool = False
    steps_done: int = 0
    ratio_reached: float = 0.0


@contextlib.contextmanager
def _seeded(seed: int):
    with torch.random.fork_rng(devices=[]):  # dropout draws do not disturb the caller's RNG
        torch.manual_seed(seed)
        yield


def monitor_split(ft: FinetuneConfig) -> tuple[str, int]:
    """Where the live accuracy is measured: held-out val images when fine-tuning on train, else
    the first test images (never trained on; the final number uses all test images)."""
    return ("val" if ft.split == "train" else "test"), ft.monitor_images


def _distill_loss(teacher: nn.Module, device: torch.device, alpha: float):
    """Fine-tuning loss with the unpruned model as teacher (Hinton et al. 2015, T = 4)."""
    from compression.distillation import distillation_loss
    teacher = clone_model(teacher).to(device).eval()

    def loss(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = teacher(x)
        return distillation_loss(model(x), soft, y, temperature=4.0, alpha=alpha)
    return loss


def prune_finetune(model: nn.Module, dataset: Dataset, cfg: PruneConfig, ft: FinetuneConfig = FinetuneConfig(), *,
                   device: torch.device | str = "cpu", progress: ProgressFn | None = None,
                   should_stop: StopFn | None = None) -> PruneRun:
    """Prune to cfg.ratio in ft.steps steps (linear ramp), fine-tuning ft.epochs after each.

    Unstructured masks are re-applied after every optimizer step, so pruned weights stay zero.
    Stop keeps what was done: the model as pruned (and fine-tuned) so far, with the ratio reached.
    """
    device = torch.device(device)
    current = clone_model(model).to(device).eval()
    original = channel_counts(current)
    split, limit = monitor_split(ft)
    monitor = lambda m: accuracy_on(m, dataset, split, device, limit=limit)  # noqa: E731
    run = PruneRun(model=current)
    ratios = ratio_schedule(cfg.ratio, ft.steps)
    units, done = ft.steps * (1 + ft.epochs), 0
    loss_fn = _distill_loss(model, device, ft.distill) if ft.distill > 0 else cross_entropy_loss

    def report(entry: dict) -> None:
        entry.update({"step": done, "steps": units, "monitor": f"{split}[:{limit}]"})
        run.history.append(entry)
        if progress is not None:
            progress(dict(entry))

    stop = should_stop or (lambda: False)
    with _seeded(ft.seed):
        for k, r in enumerate(ratios, start=1):
            if stop():
                run.stopped = True
                break
            calibration = (list(dataset.batches(ft.split, 64, device=device, limit=256))
                           if cfg.method == "structured" and cfg.importance == "taylor" else None)
            current = prune(current, PruneConfig(cfg.method, r, cfg.scope, cfg.importance),
                            input_shape=dataset.input_shape, calibration=calibration, original=original)
            run.model, run.steps_done, run.ratio_reached = current, k, r
            done += 1
            report({"phase": "pruned", "prune_step": k, "prune_steps": ft.steps, "ratio": r,
                    "epoch": 0, "accuracy": monitor(current) if ft.epochs else None})  # no FT: no live view
            if ft.epochs == 0:
                continue
            masks = weight_masks(current) if cfg.method == "unstructured" else None

            def epoch_done(entry: dict, k=k, r=r) -> None:
                nonlocal done
                done += 1
                report({"phase": "fine-tuned", "prune_step": k, "prune_steps": ft.steps, "ratio": r,
                        "epoch": entry["epoch"], "epochs": ft.epochs, "loss": entry["loss"],
                        "accuracy": entry["val_accuracy"], "partial": entry["partial"]})

            trained = fit(current, dataset, ft.train_config(), device=device, progress=epoch_done,
                          should_stop=stop, evaluate=monitor, loss_fn=loss_fn,
                          after_step=(lambda m: apply_masks(m, masks)) if masks else None)
            current = run.model = trained.model.eval()
            if trained.stopped:
                run.stopped = True
                break
    return run


# ---------------------------------------------------------------------------------------------
# measured results

@dataclass
class PruneOutcome:
    result: Result
    model: nn.Module         # the pruned (and fine-tuned) model, on `device`
    artifact: bytes          # what size_bytes measured: sparse container or dense state_dict
    history: list[dict]


def config_dict(cfg: PruneConfig, ft: FinetuneConfig) -> dict:
    """The run's settings as stored: the pruning config plus finetune_* and steps."""
    return {**asdict(cfg), "steps": ft.steps, **{f"finetune_{k}": v for k, v in asdict(ft).items() if k != "steps"}}


def describe_gain(method: str) -> str:
    """In words: is the gain real?"""
    if method == "structured":
        return ("Real gain: channels were removed, so this is a smaller dense network; its size, "
                "MACs and latency were measured on it.")
    return ("Size is real, speed is simulated: the zeros are stored in a sparse format (bitmask or "
            "relative indices + nonzero values), so the file is smaller, but the model still runs "
            "dense kernels that multiply every zero, so latency does not improve.")


def run_prune(name: str, dataset: Dataset, cfg: PruneConfig, ft: FinetuneConfig = FinetuneConfig(), *,
              device: torch.device | str = "cpu", limit: int | None = None,
              model: nn.Module | None = None, baseline: Metrics | None = None,
              progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> PruneOutcome:
    """Prune (and fine-tune) zoo model `name`, then measure it: one Result for the run store.

    `model` may be the zoo model already loaded (it is not modified)."""
    device = torch.device(device)
    base_model = model if model is not None else load_pretrained(name, device)
    run = prune_finetune(base_model, dataset, cfg, ft, device=device, progress=progress, should_stop=should_stop)
    pruned = run.model.eval()
    artifact = artifact_bytes(pruned, cfg.method)
    metrics = measure(pruned, dataset, device=device, artifact=artifact,
                      simulated=cfg.method == "unstructured", limit=limit)
    baseline = baseline or baseline_metrics(name, dataset, device, limit=limit)
    table = layer_table(base_model, pruned)
    hidden = table[:-1]  # the output layer's channels are the classes
    extra = {
        "sparsity": sparsity(pruned),
        "channels_removed": 1 - sum(r["channels_after"] for r in hidden) / max(1, sum(r["channels_before"] for r in hidden)),
        "ratio_reached": run.ratio_reached, "steps_done": run.steps_done, "stopped": run.stopped,
        "sparse_macs": sparse_macs(pruned, dataset.input_shape) if cfg.method == "unstructured" else None,
        "gain": describe_gain(cfg.method),
        "layers": table,
        "history": [{k: v for k, v in h.items() if k in ("phase", "prune_step", "epoch", "ratio", "accuracy", "monitor")}
                    for h in run.history],
    }
    result = Result(model=name, dataset=dataset.name, method="prune",
                    config=config_dict(cfg, ft),
                    device=device.type, metrics=metrics, baseline=baseline, extra=extra)
    return PruneOutcome(result=result, model=pruned, artifact=artifact, history=run.history)


def sweep(name: str, dataset: Dataset, cfg: PruneConfig, ratios: Iterable[float],
          ft: FinetuneConfig = FinetuneConfig(), *, device: torch.device | str = "cpu", limit: int | None = None,
          model: nn.Module | None = None, progress: ProgressFn | None = None,
          should_stop: StopFn | None = None) -> Iterator[PruneOutcome]:
    """One measured outcome per ratio (each from the unpruned model), as they finish."""
    ratios = list(ratios)
    for r in ratios:
        PruneConfig(cfg.method, r, cfg.scope, cfg.importance)  # refuse a bad ratio before any work
    device = torch.device(device)
    model = model if model is not None else load_pretrained(name, device)
    baseline = baseline_metrics(name, dataset, device, limit=limit)
    for i, r in enumerate(ratios, start=1):
        if should_stop is not None and should_stop():
            return
        outcome = run_prune(name, dataset, PruneConfig(cfg.method, r, cfg.scope, cfg.importance), ft,
                            device=device, limit=limit, model=model, baseline=baseline, should_stop=should_stop)
        if progress is not None:
            progress({"step": i, "steps": len(ratios), "ratio": r, "accuracy": outcome.result.metrics.accuracy})
        yield outcome


# ---------------------------------------------------------------------------------------------
# sensitivity: accuracy when only one layer is pruned

def sensitivity(model: nn.Module, dataset: Dataset, *, method: str, ratios: Iterable[float],
                importance: str = "l1", device: torch.device | str = "cpu", limit: int | None = 2000,
                progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> list[dict]:
    """Rows {layer, ratio, accuracy}: each prunable layer pruned alone at each ratio, accuracy on
    the first `limit` validation images. Structured skips the output layer (its outputs are
    the classes); unstructured includes it."""
    device = torch.device(device)
    model = clone_model(model).to(device).eval()
    layers = [n for n, m in model.named_modules() if isinstance(m, PRUNABLE)]
    if method == "structured":
        layers = layers[:-1]
    ratios = list(ratios)
    for r in ratios:
        PruneConfig(method, r, "layer", importance)
    calibration = (list(dataset.batches("val", 64, device=device, limit=256))
                   if method == "structured" and importance == "taylor" else None)
    rows, total = [], len(layers) * len(ratios)
    for layer in layers:
        for r in ratios:
            if should_stop is not None and should_stop():
                return rows
            pruned = _prune_one_layer(model, layer, r, method, importance, dataset.input_shape, calibration)
            rows.append({"layer": layer, "ratio": r,
                         "accuracy": accuracy_on(pruned, dataset, "val", device, limit=limit)})
            if progress is not None:
                progress({"step": len(rows), "steps": total, "layer": layer, "ratio": r})
    return rows


def _prune_one_layer(model, layer, ratio, method, importance, input_shape, calibration):
    if method == "unstructured":
        pruned = clone_model(model)
        tensors = [p for n, p in prunable_parameters(pruned) if n.rpartition(".")[0] == layer]
        _zero_smallest_(tensors, ratio)
        return pruned
    # every other layer keeps all its channels: their `original` count is what they have / (1 - ratio)
    counts = channel_counts(model)
    original = {n: (c if n == layer else c / (1 - ratio)) for n, c in counts.items()}
    return prune_channels(model, ratio, input_shape=input_shape, scope="layer", importance=importance,
                          calibration=calibration, original=original)


def cached_sensitivity(name: str, dataset: Dataset, *, method: str, ratios: tuple[float, ...],
                       importance: str = "l1", device: torch.device | str = "cpu", limit: int | None = 2000,
                       progress: ProgressFn | None = None, should_stop: StopFn | None = None,
                       only_cached: bool = False) -> list[dict] | None:
    """`sensitivity` of a zoo model, kept on disk per checkpoint, dataset, settings and device.
    With only_cached, returns None instead of computing what is not on disk yet."""
    from compression.models import checkpoint_path
    from compression.paths import home_dir
    from compression.store import file_sha256

    device = torch.device(device)
    key = "|".join(map(str, [name, file_sha256(checkpoint_path(name)), dataset.name, method, importance,
                             list(ratios), limit, device.type, torch.__version__]))
    cache = home_dir() / "cache" / "sensitivity.json"
    try:
        table = json.loads(cache.read_text()) if cache.is_file() else {}
    except (OSError, ValueError):
        table = {}
    if key in table or only_cached:
        return table.get(key)
    rows = sensitivity(load_pretrained(name, device), dataset, method=method, ratios=ratios,
                       importance=importance, device=device, limit=limit, progress=progress,
                       should_stop=should_stop)
    if should_stop is not None and should_stop():
        return rows  # incomplete: not cached
    table[key] = rows
    cache.parent.mkdir(parents=True, exist_ok=True)
    tmp = cache.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    tmp.write_text(json.dumps(table))
    os.replace(tmp, cache)
    return rows
