"""Knowledge distillation: a student learns the teacher's softened output distribution."""

from __future__ import annotations

import torch
import torch.nn.functional as F


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
