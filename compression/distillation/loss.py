"""The losses and soft labels: a teacher's softened distribution (one teacher or the mean of an
ensemble's) and the distillation loss over a transfer set where only some labels are known.
`distillation_loss` itself is shared by every family: it lives in compression.teacher."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """Log of the teacher's softened distribution, (B, C).

    teacher_logits is (B, C) for one teacher or (K, B, C) for an ensemble, whose distribution is
    the mean of the K softened distributions (computed in log space).
    """
    logp = F.log_softmax(teacher_logits / temperature, dim=-1)
    if logp.dim() == 3:
        logp = torch.logsumexp(logp, dim=0) - math.log(logp.shape[0])
    return logp


def softened_probabilities(logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """softmax(logits / T): T = 1 is the model's own output, larger T spreads the mass."""
    return soft_targets(logits, temperature).exp()


def entropy_bits(probs: torch.Tensor) -> torch.Tensor:
    """Entropy of each row of probabilities, in bits (0 = one-hot, log2(C) = uniform)."""
    return -(probs * probs.clamp_min(1e-30).log2()).sum(-1)


def masked_distillation_loss(student_logits: torch.Tensor, target_logp: torch.Tensor, labels: torch.Tensor,
                             *, temperature: float, alpha: float, hard_weight: torch.Tensor) -> torch.Tensor:
    """Per-batch estimate of  alpha * T^2 * mean_transfer KL + (1 - alpha) * mean_labeled CE.

    target_logp: (B, C) log soft targets (`soft_targets`). hard_weight: (B,) 0 where the label is
    unknown, N_transfer / N_labeled where it is known. Averaged over the batch, each term is an
    unbiased estimate of the mean over its own set, so alpha keeps its meaning whatever share of
    the transfer images carries a label, and an unknown label never reaches the loss. When every
    label is known (weights 1) this equals `distillation_loss`.
    """
    per_image = torch.zeros(student_logits.shape[0], device=student_logits.device)
    if alpha > 0:
        kl = F.kl_div(F.log_softmax(student_logits / temperature, dim=1), target_logp,
                      reduction="none", log_target=True).sum(1)
        per_image = per_image + alpha * temperature ** 2 * kl
    if alpha < 1:
        # unknown labels are replaced by class 0 before use and weighted 0: they cannot leak in
        ce = F.cross_entropy(student_logits, labels.masked_fill(hard_weight <= 0, 0), reduction="none")
        per_image = per_image + (1 - alpha) * hard_weight * ce
    return per_image.mean()
