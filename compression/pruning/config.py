"""Pruning settings: what to remove (PruneConfig), how to recover (FinetuneConfig), and the
settings of a run as stored."""

from __future__ import annotations

from dataclasses import asdict, dataclass, replace

import torch.nn as nn

from compression import CompressionError
from compression.data import VAL_SIZE, Dataset
from compression.training import TrainConfig

METHODS = ("unstructured", "structured")
SCOPES = ("layer", "global")
IMPORTANCES = ("l1", "l2", "taylor")
SPLITS = ("auto", "val", "train")
# auto: the val split when it holds the full VAL_SIZE (5,000) images (a dataset of >= 50,000 training
# images: the zoo's Fashion-MNIST), else train. A small image folder's val split is a tenth of its
# images (250 of 2,500): one epoch on it is 2 optimizer steps, which left a pruned ResNet-18 at chance.
SPLIT_HELP = (f"auto (default): val when it holds {VAL_SIZE:,} images (a training set of "
              f"{10 * VAL_SIZE:,} or more, as Fashion-MNIST), else train (a small image folder's val split "
              "is a tenth of its images); the split used is stored with the run")
BN_IMAGES = 2048  # images of the fine-tuning split whose statistics replace a pruned model's BatchNorm ones
BN_HELP = (f"structured pruning with fine-tuning: re-estimate BatchNorm statistics on {BN_IMAGES:,} fine-tuning "
           "images after each pruning step (on by default; a model's stale statistics left a pruned ResNet-18 at "
           "chance)")
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
    split: str = "auto"       # auto (val if it has 5k images, else train) | val (5k images) | train (55k)
    subset: int | None = None  # only the first `subset` images of that split
    batch_size: int = 128
    augment: bool = False     # random 2-px shifts and flips, as the zoo's cnn/lenet5 were trained
    distill: float = 0.0      # weight of the unpruned model's soft labels (T=4) in the loss; 0 = labels only
    recalibrate_bn: bool = True  # structured, before fine-tuning: BatchNorm statistics re-estimated on BN_IMAGES
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
        if not isinstance(self.recalibrate_bn, bool):
            raise CompressionError(f"recalibrate_bn must be true or false, got {self.recalibrate_bn!r}")
        TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=self.seed,
                    split="train" if self.split == "auto" else self.split, subset=self.subset)  # the rest: by fit

    def for_dataset(self, dataset: Dataset) -> "FinetuneConfig":
        """This config with split "auto" made the split it means on `dataset` (resolve_split)."""
        return replace(self, split=resolve_split(self.split, dataset))

    def train_config(self) -> TrainConfig:
        if self.split == "auto":
            raise CompressionError("fine-tuning split 'auto' must be resolved for a dataset first (for_dataset)")
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer="adam",
                           schedule="cosine", augment=self.augment, seed=self.seed, split=self.split,
                           subset=self.subset)


def resolve_split(split: str, dataset: Dataset) -> str:
    """The images "auto" fine-tunes on: val when it holds VAL_SIZE images, else train (SPLIT_HELP)."""
    if split != "auto":
        return split
    return "val" if len(dataset.val) >= VAL_SIZE else "train"


def config_dict(cfg: PruneConfig, ft: FinetuneConfig) -> dict:
    """The run's settings as stored: the pruning config plus finetune_* and steps."""
    return {**asdict(cfg), "steps": ft.steps, **{f"finetune_{k}": v for k, v in asdict(ft).items() if k != "steps"}}
