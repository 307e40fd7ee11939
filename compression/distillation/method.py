"""The Distillation page's experiment as a registered method: `student` trains a new, smaller
network from the model it is given, the teacher (whose metrics are the run's baseline).

    student:mlp:student_width=0.5:temperature=4:alpha=0.7:epochs=2:train_subset=2000

alpha = 0 is the honest baseline: the same student (same seeded init, same data order) trained on
hard labels alone, without the teacher; it is read back from the cache of hard-label runs when it
was trained before (compression.distillation.student). `teachers` adds more teachers to the given
model: an ensemble, the mean of their softened distributions. Stored runs keep the method name
"distill" and the config keys the Distillation page has always written (`to_dict`).
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass

from compression import CompressionError
from compression.distillation.config import (MAX_TEMPERATURE, STUDENT_INITS, TRANSFER_SETS, DistillConfig,
                                             StudentSpec)
from compression.distillation.student import (build_student, seen_as, student_recipe, train_hard_label_baseline,
                                              train_student)
from compression.methods import Compressed, Context, register_method

HARD_LABELS = "hard labels"
DISTILLED = "distilled"


def run_label(cfg: DistillConfig) -> str:
    if cfg.alpha == 0:
        return "hard labels (no teacher)"
    return f"distilled T={cfg.temperature:g}, α={cfg.alpha:g}" + (", transfer all" if cfg.transfer_set == "all" else "")


@dataclass(frozen=True)
class StudentConfig:
    student: str = "lenet5"          # a plain registered architecture (lenet5, mlp, cnn, ...) or a zoo name
    student_width: float = 1.0       # width multiplier of the student
    student_init: str = "scratch"    # scratch: seeded random init; pretrained: its zoo checkpoint
    temperature: float = 2.0         # DistillConfig's knobs from here on
    alpha: float = 0.7               # 0: hard labels only, no teacher
    epochs: int = 10
    lr: float = 2e-3
    batch_size: int = 128
    seed: int = 0
    train_subset: int | None = None
    transfer_set: str = "labeled"
    teachers: tuple[str, ...] = ()   # more teachers beside the model given: an ensemble

    def __post_init__(self):
        if not isinstance(self.teachers, (list, tuple)) or not all(isinstance(t, str) for t in self.teachers):
            raise CompressionError(f"teachers must be a list of model references, got {self.teachers!r}")
        object.__setattr__(self, "teachers", tuple(self.teachers))
        from compression.refs import parse
        for t in self.teachers:
            parse(t)  # an unknown teacher is named here, before any work
        self.student_spec()
        self.distill_config()

    def student_spec(self) -> StudentSpec:
        return StudentSpec(self.student, width=self.student_width, init=self.student_init)

    def distill_config(self) -> DistillConfig:
        return DistillConfig(temperature=self.temperature, alpha=self.alpha, epochs=self.epochs, lr=self.lr,
                             batch_size=self.batch_size, seed=self.seed, train_subset=self.train_subset,
                             transfer_set=self.transfer_set)

    @classmethod
    def of(cls, spec: StudentSpec, cfg: DistillConfig, teachers=()) -> "StudentConfig":
        return cls(spec.architecture, spec.width, spec.init, **dataclasses.asdict(cfg), teachers=tuple(teachers))

    def to_dict(self) -> dict:
        """The config as the Distillation page has always stored it (the run's own teacher first in
        "teachers" is added by `apply`, which knows it)."""
        return {"teachers": list(self.teachers), "student": self.student, "student_width": self.student_width,
                "student_init": self.student_init, "temperature": self.temperature if self.alpha > 0 else None,
                "alpha": self.alpha, "epochs": self.epochs, "lr": self.lr, "batch_size": self.batch_size,
                "seed": self.seed, "train_subset": self.train_subset, "transfer_set": self.transfer_set}


def spec(cfg: StudentConfig) -> str:
    """Text parse_spec turns back into exactly `cfg`: floats written in full (repr), the teachers last
    (their references may hold ':')."""
    defaults = StudentConfig()
    parts = ["student", f"student={cfg.student}" if ":" in cfg.student else cfg.student]  # a reference holds ':'
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if f.name not in ("student", "teachers") and value != getattr(defaults, f.name):
            parts.append(f"{f.name}={value!r}" if isinstance(value, float) else f"{f.name}={value}")
    if cfg.teachers:
        parts.append("teachers=" + json.dumps(list(cfg.teachers), separators=(",", ":")))
    return ":".join(parts)


def apply(model, cfg: StudentConfig, ctx: Context) -> Compressed:
    """Build the seeded student, train it from `model` (the teacher, never modified) and the extra
    teachers, or on hard labels alone (alpha 0, cached), and return it with the page's numbers."""
    from compression.refs import baseline, resolve
    student, dcfg, data = cfg.student_spec(), cfg.distill_config(), ctx.dataset
    init = build_student(student, input_shape=data.input_shape, num_classes=data.num_classes, seed=dcfg.seed,
                         teacher=ctx.resolved.name, dataset=data)
    role, label = (HARD_LABELS if dcfg.alpha == 0 else DISTILLED), run_label(dcfg)

    def report(entry: dict) -> None:
        ctx.progress({**entry, "run": label, "role": role, "temperature": dcfg.temperature, "alpha": dcfg.alpha})

    if role == HARD_LABELS:
        run = train_hard_label_baseline(init, data, dcfg, device=ctx.device, progress=report,
                                        should_stop=ctx.should_stop)
    else:
        teachers = [model] + [seen_as(resolve(t, data, device=ctx.device), ctx.resolved.contract)
                              for t in cfg.teachers]  # each teacher fed its own normalization
        run = train_student(init, teachers, data, dcfg, device=ctx.device, progress=report,
                            should_stop=ctx.should_stop)
    labeled = min(dcfg.train_subset or len(data.train), len(data.train))
    teacher = baseline(ctx.resolved, ctx.device, limit=ctx.limit) if model is ctx.original else None
    extra = {"student": student.label, "role": role, "teacher_accuracy": teacher.accuracy if teacher else None,
             "labeled_images": labeled,
             "transfer_images": labeled if dcfg.transfer_set == "labeled" else len(data.train),
             "epochs_done": len(run.history), "cached": run.cached,
             "train_seconds": round(run.train_seconds, 3), "setup_seconds": round(run.setup_seconds, 4)}
    history = [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()} for h in run.history]
    return Compressed(run.model, history=history, extra=extra, stopped=run.stopped,
                      architecture={**student_recipe(student, data),  # trained on the teacher's view
                                    "contract": {**ctx.resolved.contract.to_json(), "source": "teacher's"}},
                      config={"teachers": [ctx.resolved.name, *cfg.teachers]})


register_method(
    "student", StudentConfig, apply, positional=("student",), spec=spec, units=lambda c: c.epochs, family="distill",
    knobs={"student": {"help": "architecture (a plain classifier with a width multiplier) or zoo name of the student"},
           "student_width": {"min": 0.0, "max": 4.0, "min_open": True, "help": "width multiplier of the student"},
           "student_init": {"choices": list(STUDENT_INITS), "help": "scratch: seeded random init; pretrained: "
                                                                    "the student's zoo checkpoint"},
           "temperature": {"min": 0.0, "max": MAX_TEMPERATURE, "min_open": True, "help": "softmax(logits / T)"},
           "alpha": {"min": 0.0, "max": 1.0, "help": "weight of the soft labels; 0: hard labels only, no teacher"},
           "epochs": {"min": 1, "max": 1000},
           "lr": {"min": 0.0, "max": 10.0, "min_open": True, "help": "Adam, cosine schedule"},
           "batch_size": {"min": 1, "max": 65536},
           "seed": {"min": 0, "help": "student init and data order"},
           "train_subset": {"min": 1, "help": "labeled images: the first N of the train split (None: all)"},
           "transfer_set": {"choices": list(TRANSFER_SETS), "help": "soft labels on the labeled images only, "
                                                                    "or on all training images"},
           "teachers": {"help": "more teachers beside the model (an ensemble), as a JSON list of references"}},
    help="train a new student network from the model as teacher (Hinton et al. 2015), or on hard labels "
         "alone (alpha 0) as the baseline beside it")
