"""Distillation settings: the loss and training (DistillConfig) and the student (StudentSpec)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from compression import CompressionError
from compression.models import zoo_names
from compression.training import TrainConfig

TRANSFER_SETS = ("labeled", "all")
STUDENT_INITS = ("scratch", "pretrained")
MAX_TEMPERATURE = 100.0


@dataclass(frozen=True)
class DistillConfig:
    temperature: float = 2.0         # softmax(logits / T) for teacher and student, in (0, 100]
    alpha: float = 0.7               # weight of the soft-label term; 0 = hard labels only (no teacher)
    epochs: int = 10                 # passes over the transfer images
    lr: float = 2e-3                 # Adam, cosine schedule
    batch_size: int = 128
    seed: int = 0                    # student init and data order
    train_subset: int | None = None  # labeled images: the first N of the train split (None: all)
    transfer_set: str = "labeled"    # soft targets on the labeled images only, or on all training images

    def __post_init__(self):
        t = self.temperature
        if not isinstance(t, (int, float)) or isinstance(t, bool) or not 0 < t <= MAX_TEMPERATURE:
            raise CompressionError(f"temperature must be in (0, {MAX_TEMPERATURE:g}], got {t!r}")
        if not isinstance(self.alpha, (int, float)) or not 0 <= self.alpha <= 1:
            raise CompressionError(f"alpha must be in [0, 1], got {self.alpha!r}")
        if not isinstance(self.epochs, int) or not 1 <= self.epochs <= 1000:
            raise CompressionError(f"epochs must be an integer in [1, 1000], got {self.epochs!r}")
        if not isinstance(self.seed, int) or self.seed < 0:
            raise CompressionError(f"seed must be a non-negative integer, got {self.seed!r}")
        if self.train_subset is not None and (not isinstance(self.train_subset, int) or self.train_subset < 1):
            raise CompressionError(f"labeled training images must be a positive number, got {self.train_subset!r}")
        if self.transfer_set not in TRANSFER_SETS:
            raise CompressionError(f"transfer set must be one of {', '.join(TRANSFER_SETS)}, got {self.transfer_set!r}")
        if self.transfer_set == "all" and self.alpha == 0:
            raise CompressionError("transfer set 'all' needs alpha > 0: without the teacher the unlabeled "
                                   "images carry no signal (got alpha 0)")
        self.train_config()  # lr and batch size are checked by TrainConfig

    def train_config(self) -> TrainConfig:
        """The training loop's settings: no augmentation (cached teacher logits are for the stored images)."""
        subset = self.train_subset if self.transfer_set == "labeled" else None
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, optimizer="adam",
                           schedule="cosine", augment=False, seed=self.seed, split="train",
                           subset=subset, eval_split="val")

    def hard_label_baseline(self) -> "DistillConfig":
        """The same student, seed, data order and epochs on hard labels alone (alpha = 0)."""
        return replace(self, alpha=0.0, transfer_set="labeled")


def is_reference(architecture: str) -> bool:
    """A student named by a model reference (torchvision:, timm:, hf:, entry:, run:, options after '?',
    or a named model of such an architecture) rather than a registered builder with a width."""
    if not isinstance(architecture, str):
        return False
    if ":" in architecture or "?" in architecture:
        return True
    from compression.models import model_card
    return architecture in zoo_names() and not str(model_card(architecture).get("builder", "")).startswith("compression")


@dataclass(frozen=True)
class StudentSpec:
    architecture: str       # a registered architecture (lenet5, mlp, cnn, ...) or a zoo name
    width: float = 1.0      # width multiplier given to the builder
    init: str = "scratch"   # scratch: seeded random init; pretrained: the zoo checkpoint of that name

    def __post_init__(self):
        if not isinstance(self.width, (int, float)) or not 0 < self.width <= 4:
            raise CompressionError(f"student width must be in (0, 4], got {self.width!r}")
        if self.init not in STUDENT_INITS:
            raise CompressionError(f"student init must be one of {', '.join(STUDENT_INITS)}, got {self.init!r}")
        if not isinstance(self.architecture, str) or not self.architecture.strip():
            raise CompressionError(f"student architecture must be a name or model reference, got {self.architecture!r}")
        if is_reference(self.architecture):
            from compression.refs import parse
            parse(self.architecture)  # an unknown reference is named here
            if self.width != 1:
                raise CompressionError(f"student {self.architecture!r} is a model reference: its width is its own "
                                       f"(width 1), got width {self.width}")
        elif self.init == "pretrained":
            if self.architecture not in zoo_names():
                raise CompressionError(f"no pretrained checkpoint for student {self.architecture!r}; "
                                       f"choose one of {', '.join(zoo_names())} or init 'scratch'")
            if self.width != 1:
                raise CompressionError(f"a pretrained student has the checkpoint's width 1, got width {self.width}")

    @property
    def label(self) -> str:
        return self.architecture + (f" x{self.width:g}" if self.width != 1 else "")
