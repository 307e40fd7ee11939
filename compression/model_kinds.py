"""Kinds of model that not every method can take, and the checks that say so.

A multi-exit network (early exits) and a slimmable network (one set of weights run at several
widths) are built in compression.dynamic; the other families only need to recognise them. They do
so through the two marker bases here, which dynamic's MultiExitNet and SlimmableCNN derive from,
so no family imports another to ask what a model is.
"""

from __future__ import annotations

import torch.nn as nn

from compression import CompressionError


class MultiExitModel(nn.Module):
    """Marker base of networks with early exits (compression.dynamic.MultiExitNet): stages[k]
    followed by exits[k]; forward() is the full network."""


class SlimmableModel(nn.Module):
    """Marker base of networks whose widths slice one shared set of weights
    (compression.dynamic.SlimmableCNN)."""


def is_multi_exit(model: nn.Module) -> bool:
    return isinstance(model, MultiExitModel)


def is_slimmable(model: nn.Module) -> bool:
    return isinstance(model, SlimmableModel)


def refuse_slimmable(model: nn.Module, what: str) -> None:
    """Methods that rebuild or trace layers cannot work on shared-width weights: say so, naming
    the way out, instead of returning an unchanged model labelled as compressed."""
    if is_slimmable(model):
        raise CompressionError(f"{what} does not support slimmable models: every width slices the same "
                               "weights, so their layers cannot be rebuilt one by one; convert one width to a "
                               "static network first (compression.dynamic.slim_to_static)")


def refuse_multi_exit(model: nn.Module, what: str) -> None:
    """Structured pruning traces forward(), the full network only: the early exit heads would keep
    their input widths and fail when an image leaves early. Say so instead of returning a model
    whose exits are broken."""
    if is_multi_exit(model):
        raise CompressionError(f"{what} does not support multi-exit models yet: it traces the full network "
                               "only, so the early exits would keep the old channel counts and fail. Prune the "
                               "model without exits and attach exits to it (Dynamic page, `early-exit --attach`), "
                               "or use unstructured pruning")
