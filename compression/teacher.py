"""What every family shares when an unchanged model teaches a new one: the distillation loss
(Hinton et al. 2015) and a frozen teacher's soft labels computed inside a training loss.

Pruning fine-tunes with the unpruned model as teacher, architecture recovery distills from the
original, dynamic self-distills its early exits, and distillation is built on the loss: they all
import it from here, so no family imports another.
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression.models import clone_model
from compression.training import LossFn


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      *, temperature: float, alpha: float) -> torch.Tensor:
    """alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, labels).

    alpha weighs the soft-label term against the hard-label one: alpha = 0 is plain cross-entropy
    on the labels. The T^2 factor keeps the soft term's gradients on the same scale as T changes
    (Hinton et al. 2015). logits: (B, classes); labels: (B,).
    """
    hard = F.cross_entropy(student_logits, labels)
    if alpha == 0:
        return hard
    soft = F.kl_div(F.log_softmax(student_logits / temperature, dim=1),
                    F.log_softmax(teacher_logits / temperature, dim=1),
                    reduction="batchmean", log_target=True) * temperature ** 2
    return alpha * soft + (1 - alpha) * hard


def frozen_teacher_loss(teacher: nn.Module, device: torch.device | str, *, temperature: float,
                        alpha: float) -> LossFn:
    """A training loss (`fit`'s loss_fn) that distills from a copy of `teacher` in eval mode: its
    logits for the same batch are computed without gradients, then `distillation_loss`. The
    teacher given is never modified (it may be a model shared by every session)."""
    frozen = clone_model(teacher).to(device).eval()

    def loss(student: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            soft = frozen(x)
        return distillation_loss(student(x), soft, y, temperature=temperature, alpha=alpha)
    return loss
