"""Dynamic computation as registered methods.

    early-exit:thresholds=0.9:criterion=confidence   a multi-exit model at these exit thresholds:
                                                     accuracy and mean MACs from its exit table,
                                                     batch-1 latency with real early exit
    width:0.5                                        a slimmable model cut to one width: the plain
                                                     network it becomes, measured

Both apply only to models built for them (exit heads, switchable widths) and say so otherwise.
"""

from __future__ import annotations

import torch.nn as nn

from compression.dynamic.exit_results import early_exit_result
from compression.dynamic.exit_rule import CRITERIA, EarlyExitConfig
from compression.dynamic.slimmable import WidthConfig, slim_to_static
from compression.methods import Compressed, Context, register_method
from compression.model_kinds import is_multi_exit, is_slimmable


def _no_exits(model: nn.Module) -> str | None:
    return None if is_multi_exit(model) else ("it has no early exits; use a model with exit heads "
                                              "(lenet5_exits, cnn_exits)")


def _not_slimmable(model: nn.Module) -> str | None:
    return None if is_slimmable(model) else "it is not slimmable (one set of weights at several widths, e.g. cnn_slim)"


def apply_early_exit(model: nn.Module, cfg: EarlyExitConfig, ctx: Context) -> Compressed:
    # options["exit_table"]: the model's per-exit test-set table already computed (the page caches it)
    result = early_exit_result(model, ctx.dataset, cfg, name=ctx.resolved.name, device=ctx.device,
                               table=ctx.options.get("exit_table"))
    # the file is the multi-exit model itself; the thresholds are how it is run
    return Compressed(model, metrics=result.metrics, extra=dict(result.extra),
                      baseline=result.baseline, finish=None, predictions=result.predictions)


def apply_width(model: nn.Module, cfg: WidthConfig, ctx: Context) -> Compressed:
    model.check_width(cfg.width)
    static = slim_to_static(model, cfg.width).to(ctx.device)
    architecture = {"name": ctx.resolved.name, "builder": "compression.models:cnn",
                    "kwargs": {"num_classes": model.num_classes, "in_channels": model.convs[0].in_channels,
                               "image_size": model.image_size, "width": cfg.width}}
    from compression.metrics import measure
    full_model = slim_to_static(model, model.widths[-1]).to(ctx.device)
    full = measure(full_model, ctx.dataset, device=ctx.device,
                   limit=ctx.limit)  # the baseline: the same weights at full width, as a plain network
    return Compressed(static, architecture=architecture, baseline=full, baseline_model=full_model,
                      extra={"width": cfg.width, "channels": list(model.channels(cfg.width))})



register_method("early-exit", EarlyExitConfig, apply_early_exit, refuses=_no_exits,
                knobs={"criterion": {"choices": list(CRITERIA)},
                       "thresholds": {"min": 0.0, "max": 1.0, "help": "one for every exit, or one per exit"}},
                help="dynamic depth: an image leaves at the first exit whose confidence (or entropy) passes "
                     "the threshold; mean MACs over the test set, batch-1 latency with real early exit")
register_method("width", WidthConfig, apply_width, positional=("width",), refuses=_not_slimmable,
                knobs={"width": {"min": 0.0, "max": 1.0, "min_open": True,
                                 "help": "share of every hidden layer's channels (one of the model's widths)"}},
                help="dynamic width: a slimmable network cut to one width, measured as the plain network it becomes")

