"""Knowledge distillation: a student learns the teacher's softened output distribution.

A hard label says which class; the teacher's softmax at a temperature T (logits / T) also says
which classes look alike. The student is trained on
    alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE(student, label)
(Hinton et al. 2015). Teacher logits on the training images are computed once per teacher and
dataset and cached in memory and on disk, so changing T, alpha or the student never reruns the
teacher. Distillation runs use no augmentation: the cached logits are for the images as stored,
so the student must see exactly those images.

Labeled subset and transfer set: hard labels come only from the first `train_subset` training
images. With transfer_set="all", the soft term covers every training image while the hard term
is counted only where the label is known, reweighted so each term is the mean over its own set
(see `masked_distillation_loss`).

Modules, by role: config (DistillConfig, StudentSpec), loss (soft targets, the masked loss; the
plain `distillation_loss` is compression.teacher's, shared by every family), teacher_cache
(teacher logits in memory and on disk), student (building and training one student, cached
hard-label runs), method (the registered `student` method: one student trained from the model it
is given, measured and stored like every run), run (`distill`: the hard-label twin and each
distilled setting as sweep jobs of that method).
"""

from compression.distillation.config import MAX_TEMPERATURE, STUDENT_INITS, TRANSFER_SETS, DistillConfig, StudentSpec
from compression.distillation.loss import entropy_bits, masked_distillation_loss, soft_targets, softened_probabilities
from compression.distillation.method import DISTILLED, HARD_LABELS, StudentConfig, run_label
from compression.distillation.run import Outcome, distill, stored_run_id, sweep_configs
from compression.distillation.student import (StudentRun, build_student, train_hard_label_baseline,
                                              train_student)
from compression.distillation.teacher_cache import clear_memory_cache, dataset_fingerprint, teacher_logits
from compression.teacher import distillation_loss

__all__ = ["TRANSFER_SETS", "STUDENT_INITS", "MAX_TEMPERATURE", "DistillConfig", "StudentSpec",
           "distillation_loss", "soft_targets", "softened_probabilities", "entropy_bits", "masked_distillation_loss",
           "dataset_fingerprint", "clear_memory_cache", "teacher_logits",
           "StudentRun", "build_student", "train_student", "train_hard_label_baseline",
           "HARD_LABELS", "DISTILLED", "StudentConfig", "Outcome", "run_label", "sweep_configs", "distill", "stored_run_id"]
