"""Structured pruning: remove whole channels / neurons with Torch-Pruning's dependency graph (which
adjusts BatchNorm, the next conv/linear layer, residual additions and concatenations), and load
the smaller network back (`resize_to`, `load_structured`) or export it (`export_program`)."""

from __future__ import annotations

import io
import warnings
from typing import Callable, Iterable

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.artifact import register_reshape
from compression.model_kinds import refuse_multi_exit, refuse_slimmable
from compression.models import clone_model
from compression.pruning.config import PRUNABLE, PruneConfig
from compression.pruning.heads import attention_layers, match_heads_, prune_heads_
from compression.pruning.index_guard import IndexBlowUp, bounded, failed_mapping

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
    Attention modules lose round(heads * ratio) whole heads (at the layer ratio, in either scope)
    and keep the width of the residual stream; their MLPs are pruned like any other layer.
    """
    PruneConfig(method="structured", ratio=ratio, scope=scope, importance=importance)  # validates
    refuse_slimmable(model, "structured pruning")
    refuse_multi_exit(model, "structured pruning")
    model = clone_model(model)
    if ratio == 0:
        return model
    names = {m: n for n, m in model.named_modules()}
    where = "building the dependency graph"
    try:
        graph, groups = _dependency_groups(model, input_shape)
        where = "scoring channels"
        if importance == "taylor":
            _taylor_gradients(model, calibration or [])
        scorer = _importance(importance)
        original = original or channel_counts(model)
        plans = []  # (root module, handler, scores, current n, target kept, channel groups): n, kept, scores per group
        with torch.no_grad():
            for group in groups:
                root, handler = group[0].dep.target.module, group[0].dep.handler
                n = graph.get_out_channels(root)
                scores = scorer(group)
                if scores is None or n is None or len(scores) != n:
                    continue
                ch = _channel_groups(group)
                if n % ch:
                    continue
                scores = scores.float().cpu().view(ch, n // ch).mean(dim=0)  # one position of every conv group together
                kept = max(1, round(original.get(names[root], n) / ch * (1 - ratio)))
                plans.append((root, handler, scores, n // ch, kept, ch))
        if scope == "global":
            plans = _global_targets(plans, ratio, original, names)
        for root, handler, scores, n, kept, ch in plans:
            if kept < n:
                where = f"removing channels at layer {names.get(root, type(root).__name__)!r}"
                drop = torch.argsort(scores, stable=True)[: n - kept].tolist()
                idxs = sorted(g * n + p for g in range(ch) for p in drop)
                graph.get_pruning_group(root, handler, idxs).prune()
        where = "removing attention heads"
        prune_heads_(model, ratio, importance, original)  # attention: whole heads, at the layer ratio
        where = "the pruned model's forward pass"
        _runs(model, input_shape)
    except CompressionError:
        raise
    except Exception as exc:  # Torch-Pruning or the architecture's own code: one line, not a traceback
        first = (str(exc).strip().splitlines() or [""])[0][:160]
        raise CompressionError(
            f"structured pruning cannot prune this {type(model).__name__} ({where}: {type(exc).__name__}: {first}); "
            "unstructured pruning, quantization and low-rank conversion do not change its graph") from None
    model.zero_grad(set_to_none=True)
    return model


def _runs(model: nn.Module, input_shape: tuple[int, ...]) -> None:
    """One forward pass of a zero image in eval mode (no statistics move): a graph Torch-Pruning cut
    inconsistently (a reshape with a fixed width, a channel shuffle) fails here, not in the user's run."""
    was = model.training
    device = next(model.parameters()).device
    try:
        with torch.no_grad():
            model.eval()(torch.zeros(1, *input_shape, device=device))
    finally:
        model.train(was)


def _dependency_groups(model: nn.Module, input_shape: tuple[int, ...]):
    """Torch-Pruning's dependency graph and its groups of layers whose output channels go together
    (a residual addition couples every layer that writes into it). Left out: the output layer's
    group (its outputs are the classes) and every group that touches an attention module's qkv or
    proj: heads are removed whole (compression.pruning.heads), the residual stream is kept; an
    nn.MultiheadAttention (torchvision's ViT) is kept whole, with the residual stream."""
    import torch_pruning as tp

    device = next(model.parameters()).device
    graph = tp.DependencyGraph()
    with warnings.catch_warnings():  # a ViT's class token and position embeddings: Torch-Pruning's
        warnings.filterwarnings("ignore", message="Unwrapped parameters")  # default (last dim) is right
        try:
            graph.build_dependency(model, example_inputs=torch.zeros(1, *input_shape, device=device))
        except Exception as exc:
            found = failed_mapping(graph, model)
            if found is None:
                raise
            raise CompressionError(
                f"structured pruning cannot prune this {type(model).__name__}: Torch-Pruning cannot map channels "
                f"after layer {found[1]!r} through {found[0]} ({type(exc).__name__}); unstructured pruning, "
                "quantization and low-rank conversion do not change its graph") from None
    skip = attention_layers(model) | {m for m in model.modules() if isinstance(m, nn.MultiheadAttention)}
    try:
        with bounded(model):
            groups = [g for g in graph.get_all_groups(ignored_layers=[output_layer(model)], root_module_types=list(PRUNABLE))
                      if not any(dep.target.module in skip for dep, _ in g)]
    except IndexBlowUp as exc:
        layer = {m: n for n, m in model.named_modules()}.get(exc.root, type(exc.root).__name__)
        raise CompressionError(
            f"structured pruning cannot prune this {type(model).__name__}: the output channels of layer {layer!r} "
            f"cannot be followed ({exc}); Torch-Pruning takes channels as dimension 1 and this model reshapes "
            "channels-last tensors into attention windows; unstructured pruning, quantization and low-rank "
            "conversion do not change its graph") from None
    return graph, groups


def _channel_groups(group) -> int:
    """How many convolution groups the channels of a dependency group are split into: a grouped
    convolution (1 < groups < channels, as in ResNeXt and RegNet) keeps its groups, so the same
    positions are removed from every group (Torch-Pruning's rule), each group getting narrower."""
    found = 1
    for dep, _ in group:
        m = dep.target.module
        if isinstance(m, nn.modules.conv._ConvNd) and 1 < m.groups and not m.groups == m.in_channels == m.out_channels:
            found = max(found, m.groups)
    return found


def channel_groups(model: nn.Module, input_shape: tuple[int, ...]) -> list[list[str]]:
    """The conv/linear layers whose output channels structured pruning removes together, one list
    per dependency group, in the model's module order. In a plain stack every layer is its own
    group; in a residual network the layers that write into one addition are one group."""
    order = {n: i for i, (n, _) in enumerate(model.named_modules())}
    names = {m: n for n, m in model.named_modules()}
    _, groups = _dependency_groups(model, input_shape)
    found = []
    for group in groups:
        members = {names[dep.target.module] for dep, _ in group
                   if isinstance(dep.target.module, PRUNABLE) and dep.handler.__name__ == "prune_out_channels"}
        members.add(names[group[0].dep.target.module])
        found.append(sorted(members, key=order.__getitem__))
    return sorted(found, key=lambda g: order[g[0]])


def _global_targets(plans, ratio, original, names):
    """One threshold over every layer's normalized scores; each layer keeps at least its best.
    Counts are per conv group (a position of a grouped conv stands for `ch` channels)."""
    total = sum(original.get(names[root], n * ch) / ch for root, _, _, n, _, ch in plans)
    keep_total = max(len(plans), round(total * (1 - ratio)))
    current = sum(n for _, _, _, n, _, _ in plans)
    if current <= keep_total:
        return [(r, h, s, n, n, ch) for r, h, s, n, _, ch in plans]
    candidates = []  # (score, plan index): every channel except each layer's most important one
    for i, (_, _, scores, _, _, _) in enumerate(plans):
        order = torch.argsort(scores, stable=True)
        candidates += [(float(scores[j]), i) for j in order[:-1].tolist()]
    candidates.sort(key=lambda c: c[0])
    removed = [0] * len(plans)
    for _, i in candidates[: current - keep_total]:
        removed[i] += 1
    return [(r, h, s, n, n - removed[i], ch) for i, (r, h, s, n, _, ch) in enumerate(plans)]



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
    match_heads_(model)
    return model


register_reshape(resize_to)  # the artifact loader shrinks a rebuilt model to a pruned state's shapes


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
