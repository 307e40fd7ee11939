"""A bound on Torch-Pruning's channel-index mapping, so a graph it cannot follow is refused at once.

Torch-Pruning follows a layer's output channels through every reshape, assuming channels are
dimension 1 and a reshape flattens them with the dimensions after them (a CNN's (B, C, H, W) ->
(B, C*H*W) before its classifier). Where a model reshapes a channels-last tensor into attention
windows and heads (torchvision's Swin and MaxViT), that assumption multiplies the index list at
every such reshape (768 -> 1,024 -> 32,768 -> 1,048,576 -> ... on Swin-T) and building the groups
never ends. No index can be a real channel once it is at least the widest layer's width (a flatten
feeding a linear layer is bounded by that layer's in_features), so past that bound the group is
refused with the layer it started from.
"""

from __future__ import annotations

import contextvars

import torch.nn as nn

_BOUND: contextvars.ContextVar[int | None] = contextvars.ContextVar("tp_index_bound", default=None)


class IndexBlowUp(Exception):
    """Torch-Pruning mapped a channel index past every layer's width (`root`: the group's first layer)."""

    def __init__(self, root: nn.Module, through: str, size: int, bound: int):
        super().__init__(f"{size:,} channel indices at {through}, wider than any layer ({bound:,})")
        self.root = root


def widest(model: nn.Module) -> int:
    """The largest dimension of any parameter: no channel index can reach it."""
    return max((max(p.shape) for p in model.parameters() if p.dim()), default=1)


def install() -> None:
    """Wrap Torch-Pruning's Group.add_dep once (idempotent); it checks only inside `bounded`."""
    from torch_pruning.dependency import group as tp_group

    group_class = tp_group.Group
    if getattr(group_class.add_dep, "_index_guard", False):
        return
    plain = group_class.add_dep

    def add_dep(self, dep, idxs):
        bound = _BOUND.get()
        if bound is not None and len(idxs) > bound:
            root = self._group[0].dep.target.module if self._group else dep.target.module
            kind = type(dep.target.module)
            op = kind.__name__.removesuffix("Op").strip("_").lower()  # _ReshapeOp -> "a reshape"
            where = f"a {op}" if kind.__module__.startswith("torch_pruning") else str(dep.target.name)
            raise IndexBlowUp(root, where, len(idxs), bound)
        return plain(self, dep, idxs)
    add_dep._index_guard = True
    group_class.add_dep = add_dep


class bounded:
    """`with bounded(model):` Torch-Pruning's groups built inside stop at `widest(model)` indices."""

    def __init__(self, model: nn.Module):
        self.bound = widest(model)

    def __enter__(self):
        install()
        self.token = _BOUND.set(self.bound)
        return self

    def __exit__(self, *exc):
        _BOUND.reset(self.token)
        return False



def failed_mapping(graph, model: nn.Module) -> tuple[str, str] | None:
    """After build_dependency failed while mapping indices: (what Torch-Pruning could not map, the
    named layer just before it) for the first reshape or concatenation whose mapping fails, or None."""
    from torch_pruning import ops
    from torch_pruning.dependency import index_mapping

    why = {ops.OPTYPE.RESHAPE: (index_mapping.update_reshape_index_mapping,  # ShuffleNet
                                "a reshape that splits channels into groups, as a channel shuffle does"),
           ops.OPTYPE.CONCAT: (index_mapping.update_concat_index_mapping,  # Swin-S/B's patch merging
                               "a concatenation whose inputs' channel counts it cannot infer")}
    names = {m: n for n, m in model.named_modules()}
    for node in list(getattr(graph, "module2node", {}).values()):
        update, what = why.get(node.type, (None, ""))
        if update is None:
            continue
        try:
            update(graph, node)
        except Exception:
            seen, todo = set(), list(node.inputs)
            while todo:  # breadth-first back to the nearest layer of the model
                n = todo.pop(0)
                if n not in seen:
                    seen.add(n)
                    if n.module in names:
                        return what, names[n.module]
                    todo += n.inputs
            return what, "?"
    return None
