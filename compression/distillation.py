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
"""

from __future__ import annotations

import collections
import hashlib
import json
import math
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Iterator, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.device import eval_batch_size, inference_layout
from compression.evaluate import check_compatible
from compression.metrics import Metrics, Result, baseline_metrics, measure
from compression.models import (architecture_names, build_model, clone_model, load_pretrained, model_card,
                                state_dict_hash, takes_width, zoo_names)
from compression.paths import home_dir
from compression.training import ProgressFn, StopFn, TrainConfig, fit

TRANSFER_SETS = ("labeled", "all")
STUDENT_INITS = ("scratch", "pretrained")
MAX_TEMPERATURE = 100.0


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


# ---------------------------------------------------------------------------------------------
# configs

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
        if self.init == "pretrained":
            if self.architecture not in zoo_names():
                raise CompressionError(f"no pretrained checkpoint for student {self.architecture!r}; "
                                       f"choose one of {', '.join(zoo_names())} or init 'scratch'")
            if self.width != 1:
                raise CompressionError(f"a pretrained student has the checkpoint's width 1, got width {self.width}")

    @property
    def label(self) -> str:
        return self.architecture + (f" x{self.width:g}" if self.width != 1 else "")


def _builder_name(name: str) -> str:
    """The architecture behind a zoo name (its card's builder), else the name itself."""
    if name in zoo_names():
        return model_card(name)["builder"].partition(":")[2]
    return name


def build_student(spec: StudentSpec, *, input_shape: tuple[int, int, int], num_classes: int,
                  seed: int = 0, teacher: str | None = None) -> nn.Module:
    """The student, freshly initialized from `seed` (the global RNG is left as it was) or pretrained.

    Refuses a copy of the teacher that is wider than the teacher, and a student that cannot take
    the teacher's input shape or does not give its number of classes.
    """
    c, h, w = input_shape
    arch = _builder_name(spec.architecture)
    if teacher is not None and arch == _builder_name(teacher) and spec.width > 1:
        raise CompressionError(f"a student copy of the teacher {teacher!r} must not be wider than it: "
                               f"width must be in (0, 1], got {spec.width:g}")
    if spec.init == "pretrained":
        model = load_pretrained(spec.architecture, "cpu")
    elif arch in architecture_names() and not takes_width(arch):
        raise CompressionError(f"student {spec.architecture!r} is not a plain classifier with a width multiplier "
                               f"(its exits or widths would not be trained by distillation); choose one of "
                               f"{', '.join(a for a in architecture_names() if takes_width(a))}")
    else:
        with torch.random.fork_rng(devices=[]), warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # zero-size layers: refused just below
            torch.manual_seed(seed)
            model = build_model(arch, num_classes=num_classes, in_channels=c, image_size=h, width=spec.width)
    try:
        with torch.inference_mode():
            out = model.eval()(torch.zeros(2, c, h, w))
    except RuntimeError as exc:
        raise CompressionError(f"student {spec.label} cannot take {c}x{h}x{w} images "
                               f"({str(exc).splitlines()[0][:120]})") from None
    if tuple(out.shape) != (2, num_classes):
        raise CompressionError(f"student {spec.label} gives {out.shape[-1]} outputs, the teacher {num_classes} classes")
    return model.train()


# ---------------------------------------------------------------------------------------------
# teacher logits: computed once per (teacher weights, dataset), extended when more images are needed

_MEMORY: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
_MEMORY_ENTRIES = 8
_LOCK = threading.Lock()


def dataset_fingerprint(dataset: Dataset) -> str:
    """Identifies the training split: name, source, size, every label and a sample of the pixels."""
    h = hashlib.sha256(f"{dataset.name}|{dataset.source}|{len(dataset.train)}".encode())
    h.update(dataset.train.labels.numpy().tobytes())
    h.update(dataset.train.images[::97].contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


def _cache_file(key: str):
    return home_dir() / "cache" / "teacher_logits" / f"{key}.pt"


def clear_memory_cache() -> None:
    with _LOCK:
        _MEMORY.clear()


@torch.inference_mode()
def teacher_logits(teacher: nn.Module, dataset: Dataset, n: int | None = None, *,
                   device: torch.device | str = "cpu", batch_size: int | None = None) -> torch.Tensor:
    """Teacher logits for the first n training images (all when None), (n, C) float32 on the CPU.

    Looked up in memory, then on disk ($COMPRESSION_HOME/cache/teacher_logits), keyed by the hash
    of the teacher's weights and the dataset; only images not cached yet go through the teacher.
    The teacher is run in eval mode and never modified (a teacher in train mode is copied first).
    """
    total = len(dataset.train)
    n = total if n is None else min(n, total)
    batch_size = batch_size or eval_batch_size(device)
    key = f"{state_dict_hash(teacher)[:24]}-{dataset_fingerprint(dataset)}"
    with _LOCK:
        cached = _MEMORY.get(key)
        if cached is None:
            cached = _read_disk(key)
        if cached is not None and cached.shape[0] >= n:
            _MEMORY[key] = cached
            _MEMORY.move_to_end(key)
            return cached[:n]
        done = 0 if cached is None else cached.shape[0]
        model = teacher if not teacher.training else clone_model(teacher).eval()
        device = torch.device(device)
        parts = [] if cached is None else [cached]
        images = dataset.train.images
        runner, prepare = inference_layout(model, device)
        for start in range(done, n, batch_size):
            x = dataset.normalize(images[start:min(n, start + batch_size)], device)
            parts.append(runner(prepare(x)).float().cpu())
        logits = torch.cat(parts)
        _write_disk(key, logits)
        _MEMORY[key] = logits
        _MEMORY.move_to_end(key)
        while len(_MEMORY) > _MEMORY_ENTRIES:
            _MEMORY.popitem(last=False)
        return logits[:n]


def _read_disk(key: str) -> torch.Tensor | None:
    path = _cache_file(key)
    if not path.is_file():
        return None
    try:
        t = torch.load(path, map_location="cpu", weights_only=True)
        return t if isinstance(t, torch.Tensor) and t.dim() == 2 else None
    except Exception:
        path.unlink(missing_ok=True)  # half-written or corrupt: compute again
        return None


def _write_disk(key: str, logits: torch.Tensor) -> None:
    path = _cache_file(key)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
    torch.save(logits, tmp)
    os.replace(tmp, path)  # atomic: a reader never sees half a file


# ---------------------------------------------------------------------------------------------
# training one student

@dataclass
class StudentRun:
    model: nn.Module
    history: list[dict] = field(default_factory=list)  # fit's per-epoch entries (val_accuracy, loss)
    stopped: bool = False
    train_seconds: float = 0.0
    setup_seconds: float = 0.0    # from the call to the first training step (teacher logits ready)
    cached: bool = False          # a hard-label run read back from the cache, not retrained


def _hard_weights(idx: torch.Tensor, labeled: int, transfer: int) -> torch.Tensor:
    """(B,) N_transfer / N_labeled where the image's label is known (index < labeled), else 0."""
    return (idx < labeled).float() * (transfer / labeled)


def train_student(student: nn.Module, teachers: Sequence[nn.Module], dataset: Dataset, cfg: DistillConfig, *,
                  device: torch.device | str = "cpu", progress: ProgressFn | None = None,
                  should_stop: StopFn | None = None) -> StudentRun:
    """Train a copy of `student` with the teachers' soft labels (alpha > 0) or hard labels alone.

    Same init, seed and data order whatever alpha and T are, so runs differ only by the loss.
    """
    start = time.perf_counter()
    device = torch.device(device)
    tcfg = cfg.train_config()
    labeled = min(cfg.train_subset or len(dataset.train), len(dataset.train))
    transfer = labeled if cfg.transfer_set == "labeled" else len(dataset.train)
    first_step: list[float] = []
    if cfg.alpha > 0:
        if not teachers:
            raise CompressionError("alpha > 0 needs at least one teacher")
        logits = torch.stack([teacher_logits(t, dataset, transfer, device=device) for t in teachers])
        targets = (logits[0] if len(teachers) == 1 else logits.transpose(0, 1)).to(device)  # (N, C) | (N, K, C)

    def loss_fn(model: nn.Module, x: torch.Tensor, y: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        if not first_step:
            first_step.append(time.perf_counter())
        out = model(x)
        if cfg.alpha == 0:
            return F.cross_entropy(out, y)
        t = targets[idx.to(device)]
        target_logp = soft_targets(t if t.dim() == 2 else t.transpose(0, 1), cfg.temperature)
        return masked_distillation_loss(out, target_logp, y, temperature=cfg.temperature, alpha=cfg.alpha,
                                        hard_weight=_hard_weights(idx, labeled, transfer).to(device))

    result = fit(student, dataset, tcfg, device=device, loss_fn=loss_fn, progress=progress, should_stop=should_stop)
    setup = (first_step[0] if first_step else time.perf_counter()) - start
    return StudentRun(model=result.model, history=result.history, stopped=result.stopped,
                      train_seconds=result.seconds, setup_seconds=setup)


# hard-label runs do not depend on T, alpha or the teacher: keep them, so changing T trains one student
_BASELINES: "collections.OrderedDict[str, StudentRun]" = collections.OrderedDict()


def _baseline_key(student: nn.Module, dataset: Dataset, cfg: DistillConfig, device: torch.device) -> str:
    parts = [state_dict_hash(student), dataset_fingerprint(dataset),
             json.dumps(asdict(cfg.train_config()), sort_keys=True), device.type, torch.__version__]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:24]


def train_hard_label_baseline(student: nn.Module, dataset: Dataset, cfg: DistillConfig, *,
                              device: torch.device | str = "cpu", progress: ProgressFn | None = None,
                              should_stop: StopFn | None = None) -> StudentRun:
    """`train_student` with alpha = 0, read from the memory or disk cache when it was run before."""
    device = torch.device(device)
    cfg = cfg.hard_label_baseline()
    key = _baseline_key(student, dataset, cfg, device)
    path = home_dir() / "cache" / "distill_baselines" / f"{key}.pt"
    with _LOCK:
        hit = _BASELINES.get(key)
    if hit is None and path.is_file():
        try:
            saved = torch.load(path, map_location="cpu", weights_only=True)
            model = clone_model(student)
            model.load_state_dict(saved["state_dict"])
            hit = StudentRun(model=model.eval(), history=json.loads(saved["history"]),
                             train_seconds=float(saved["train_seconds"]))
        except Exception:
            path.unlink(missing_ok=True)
            hit = None
    if hit is not None:
        for entry in hit.history:
            if progress is not None:
                progress(dict(entry, cached=True))
        return StudentRun(model=clone_model(hit.model).to(device), history=list(hit.history),
                          train_seconds=hit.train_seconds, cached=True)
    run = train_student(student, [], dataset, cfg, device=device, progress=progress, should_stop=should_stop)
    if not run.stopped:  # a stopped run is kept by the caller but never reused as the baseline
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(f".tmp{os.getpid()}-{threading.get_ident()}")
        torch.save({"state_dict": {k: v.detach().cpu() for k, v in run.model.state_dict().items()},
                    "history": json.dumps(run.history), "train_seconds": float(run.train_seconds)}, tmp)
        os.replace(tmp, path)
        with _LOCK:
            _BASELINES[key] = StudentRun(model=clone_model(run.model).cpu(), history=list(run.history),
                                         train_seconds=run.train_seconds)
            while len(_BASELINES) > _MEMORY_ENTRIES:
                _BASELINES.popitem(last=False)
    return run


# ---------------------------------------------------------------------------------------------
# runs with results: the hard-label baseline, then one distilled student per setting

HARD_LABELS = "hard labels"
DISTILLED = "distilled"


@dataclass
class Outcome:
    result: Result
    model: nn.Module         # the trained student (CPU/`device`), for downloads
    role: str                # HARD_LABELS | DISTILLED
    cached: bool = False     # the hard-label run came from the cache (stored before, not retrained)


def run_label(cfg: DistillConfig) -> str:
    if cfg.alpha == 0:
        return "hard labels (no teacher)"
    return f"distilled T={cfg.temperature:g}, α={cfg.alpha:g}" + (", transfer all" if cfg.transfer_set == "all" else "")


def sweep_configs(cfg: DistillConfig, *, temperatures: Sequence[float] | None = None,
                  alphas: Sequence[float] | None = None) -> list[DistillConfig]:
    """One config per swept temperature or alpha (the other knobs as in cfg); cfg alone without a sweep."""
    if temperatures and alphas:
        raise CompressionError("sweep either temperatures or alphas, not both")
    if temperatures:
        return [replace(cfg, temperature=float(t)) for t in temperatures]
    if alphas:
        return [replace(cfg, alpha=float(a)) for a in alphas]
    return [cfg]


def distill(teachers: Sequence[str], student: StudentSpec, dataset: Dataset, cfg: DistillConfig, *,
            temperatures: Sequence[float] | None = None, alphas: Sequence[float] | None = None,
            baseline: bool = True, device: torch.device | str = "cpu", limit: int | None = None,
            progress: ProgressFn | None = None, should_stop: StopFn | None = None) -> Iterator[Outcome]:
    """Train the student on hard labels alone (the honest baseline), then with the teacher(s) for
    each setting; yield each measured student as it is done. Stop ends after the current student,
    which is yielded with what it learned so far.

    teachers: zoo names (more than one: an ensemble, the mean of their softened distributions).
    Every student starts from the same seeded init and sees the same data order.
    """
    if not teachers:
        raise CompressionError("name at least one teacher")
    device = torch.device(device)
    for name in teachers:
        model_card(name)  # unknown names fail here, with the zoo's names
        check_compatible(name, dataset)
    configs = sweep_configs(cfg, temperatures=temperatures, alphas=alphas)
    init = build_student(student, input_shape=dataset.input_shape, num_classes=dataset.num_classes,
                         seed=cfg.seed, teacher=teachers[0])
    teacher_models = [load_pretrained(name, device) for name in teachers]
    reference = baseline_metrics(teachers[0], dataset, device, limit=limit)
    # alpha = 0 is the hard-label baseline itself: trained once, first
    with_baseline = baseline or any(c.alpha == 0 for c in configs)
    plan = ([cfg.hard_label_baseline()] if with_baseline else []) + [c for c in configs if c.alpha > 0]
    total = cfg.epochs * len(plan)
    done = [0]
    hard_accuracy: float | None = None

    for run_cfg in plan:
        role = HARD_LABELS if run_cfg.alpha == 0 else DISTILLED
        label = run_label(run_cfg)

        def report(entry: dict, label=label, role=role, run_cfg=run_cfg) -> None:
            done[0] += 1
            if progress is not None:
                progress({**entry, "run": label, "role": role, "temperature": run_cfg.temperature,
                          "alpha": run_cfg.alpha, "step": done[0], "steps": total})

        if role == HARD_LABELS:
            run = train_hard_label_baseline(init, dataset, run_cfg, device=device, progress=report,
                                            should_stop=should_stop)
        else:
            run = train_student(init, teacher_models, dataset, run_cfg, device=device, progress=report,
                                should_stop=should_stop)
        metrics = measure(run.model, dataset, device=device, limit=limit)
        if role == HARD_LABELS and not run.stopped:
            hard_accuracy = metrics.accuracy
        yield Outcome(result=_result(teachers, student, run_cfg, run, metrics, reference, device, role,
                                     dataset, hard_accuracy),
                      model=run.model, role=role, cached=run.cached)
        if run.stopped:
            return


def _result(teachers: Sequence[str], student: StudentSpec, cfg: DistillConfig, run: StudentRun,
            metrics: Metrics, reference: Metrics, device: torch.device, role: str, dataset: Dataset,
            hard_accuracy: float | None) -> Result:
    labeled = min(cfg.train_subset or len(dataset.train), len(dataset.train))
    config = {"teachers": list(teachers), "student": student.architecture, "student_width": student.width,
              "student_init": student.init, "temperature": cfg.temperature if cfg.alpha > 0 else None,
              "alpha": cfg.alpha, "epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size,
              "seed": cfg.seed, "train_subset": cfg.train_subset, "transfer_set": cfg.transfer_set}
    extra = {"student": student.label, "role": role, "teacher_accuracy": reference.accuracy,
             "labeled_images": labeled,
             "transfer_images": labeled if cfg.transfer_set == "labeled" else len(dataset.train),
             "epochs_done": len(run.history), "stopped": run.stopped, "cached": run.cached,
             "train_seconds": round(run.train_seconds, 3), "setup_seconds": round(run.setup_seconds, 4),
             "history": [{k: (round(v, 5) if isinstance(v, float) else v) for k, v in h.items()}
                         for h in run.history]}
    if role == DISTILLED and hard_accuracy is not None:
        extra["gain_vs_hard_labels"] = metrics.accuracy - hard_accuracy
    return Result(model="+".join(teachers), dataset=dataset.name, method="distill", config=config,
                  device=device.type, metrics=metrics, baseline=reference, extra=extra)


def stored_run_id(store, result: Result) -> int | None:
    """The id of a stored run with the same model, dataset, device and config (a cached
    hard-label student is stored once), else None. `store`: a compression.store.RunStore."""
    config = json.loads(json.dumps(result.config, sort_keys=True, default=str))
    for row in store.runs(model=result.model, dataset=result.dataset, method=result.method):
        if row["config"] == config and row["device"] == result.device:
            return int(row["id"])
    return None
