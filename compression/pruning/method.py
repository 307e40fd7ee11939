"""Pruning as a registered method: `prune:<unstructured|structured>:<ratio>:key=value...`.

One config holds every knob of the Pruning page (granularity, ratio, scope, importance, the
prune -> fine-tune cycles) so pages, the CLI, pipeline steps and sweeps all reach them.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch.nn as nn

from compression.methods import Compressed, Context, register_method
from compression.pruning.config import (BN_HELP, IMPORTANCES, METHODS, SCOPES, SPLIT_HELP, SPLITS, FinetuneConfig,
                                        PruneConfig)
from compression.pruning.run import describe_gain, layer_table
from compression.pruning.schedule import prune_finetune
from compression.pruning.sparse_format import sparse_bytes
from compression.pruning.unstructured import sparse_macs, sparsity


@dataclass(frozen=True)
class PruneStep:
    method: str = "unstructured"   # unstructured (single weights, sparse file) | structured (channels)
    ratio: float = 0.5             # fraction removed, [0, 1)
    scope: str = "global"          # global: one threshold over all layers | layer: the ratio in each
    steps: int = 1                 # prune -> fine-tune cycles, the ratio ramped linearly
    epochs: int = 0                # fine-tuning epochs after each pruning cycle
    lr: float = 1e-3
    split: str = "train"
    importance: str = "l1"         # structured: l1 | l2 | taylor; unstructured: |w|
    distill: float = 0.0           # weight of the unpruned model's soft labels (T=4) while fine-tuning
    augment: bool = False          # random 2-px shifts and flips while fine-tuning
    recalibrate_bn: bool = True    # structured + fine-tuning: BatchNorm statistics re-estimated after each pruning step
    kind = "prune"

    def __post_init__(self):
        self.prune_config()
        self.finetune_config()

    def finetune_config(self, **context) -> FinetuneConfig:
        return FinetuneConfig(epochs=self.epochs, steps=self.steps, lr=self.lr, split=self.split,
                              distill=self.distill, augment=self.augment, recalibrate_bn=self.recalibrate_bn,
                              **context)

    def prune_config(self) -> PruneConfig:
        return PruneConfig(self.method, self.ratio, self.scope, self.importance)

    def to_dict(self) -> dict:
        """As the Pruning page stores its runs: the pruning knobs, then finetune_* (charts read them)."""
        return {"method": self.method, "ratio": self.ratio, "scope": self.scope, "importance": self.importance,
                "steps": self.steps, "finetune_epochs": self.epochs, "finetune_lr": self.lr,
                "finetune_split": self.split, "finetune_distill": self.distill, "finetune_augment": self.augment,
                "finetune_recalibrate_bn": self.recalibrate_bn}

    def spec(self) -> str:
        extra = "".join(f":{k}={getattr(self, k)}" for k, d in (("lr", 1e-3), ("split", "train"), ("importance", "l1"),
                                                               ("distill", 0.0), ("augment", False),
                                                               ("recalibrate_bn", True))
                        if getattr(self, k) != d)
        return (f"prune:{self.method}:{self.ratio:g}:scope={self.scope}:steps={self.steps}:epochs={self.epochs}"
                f"{extra}")


def apply(model: nn.Module, cfg: PruneStep, ctx: Context) -> Compressed:
    ft = cfg.finetune_config(seed=ctx.seed, subset=ctx.subset, monitor_images=ctx.monitor_images)
    run = prune_finetune(model, ctx.dataset, cfg.prune_config(), ft, device=ctx.device, progress=ctx.progress,
                         should_stop=ctx.should_stop)
    pruned = run.model.eval()
    sparse = ctx.state.get("sparse", False) or cfg.method == "unstructured"
    table = layer_table(model, pruned)
    hidden = table[:-1]  # the output layer's channels are the classes
    extra = {
        "sparsity": round(sparsity(pruned), 6),
        "channels_removed": 1 - sum(r["channels_after"] for r in hidden) / max(1, sum(r["channels_before"] for r in hidden)),
        "ratio_reached": run.ratio_reached, "steps_done": run.steps_done,
        "sparse_macs": sparse_macs(pruned, ctx.dataset.input_shape) if sparse else None,
        "gain": describe_gain("unstructured" if sparse else "structured"),
        "layers": table,
    }
    history = [{k: v for k, v in h.items() if k in ("phase", "prune_step", "epoch", "ratio", "accuracy", "monitor")}
               for h in run.history]
    return Compressed(pruned, payload=sparse_bytes(pruned) if sparse else None, kind="sparse" if sparse else "dense",
                      simulated=sparse, simulated_metrics=("latency_ms",), history=history, extra=extra, stopped=run.stopped,
                      state={"sparse": sparse}, config={"finetune_split": ft.for_dataset(ctx.dataset).split})


register_method(
    "prune", PruneStep, apply, positional=("method", "ratio"), spec=PruneStep.spec,
    units=lambda cfg: cfg.steps * (1 + cfg.epochs),
    help="remove single weights (unstructured: sparse file, simulated speed) or whole channels "
         "(structured, Torch-Pruning: a smaller dense network), fine-tune, repeat",
    knobs={"method": {"choices": list(METHODS), "help": "what is removed"},
           "ratio": {"min": 0.0, "max": 1.0, "max_open": True, "help": "fraction removed"},
           "scope": {"choices": list(SCOPES), "help": "the ratio in each layer, or one global threshold"},
           "steps": {"min": 1, "max": 20, "help": "prune -> fine-tune cycles, the ratio ramped"},
           "epochs": {"min": 0, "max": 100, "help": "fine-tuning epochs after each cycle"},
           "lr": {"min": 0.0, "max": 1.0, "min_open": True, "help": "fine-tuning learning rate (Adam, cosine)"},
           "split": {"choices": list(SPLITS), "help": "images to fine-tune on; " + SPLIT_HELP},
           "importance": {"choices": list(IMPORTANCES), "help": "channel score (structured)"},
           "distill": {"min": 0.0, "max": 1.0, "help": "weight of the unpruned model's soft labels while fine-tuning"},
           "recalibrate_bn": {"help": BN_HELP}})
