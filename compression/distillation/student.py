"""Training one student: build it (seeded, or a pretrained zoo model), train it on the teachers'
soft labels or on hard labels alone, and keep hard-label runs, which depend on neither T, alpha
nor the teacher, so changing T trains one student."""

from __future__ import annotations

import collections
import hashlib
import json
import os
import threading
import time
import warnings
from dataclasses import asdict, dataclass, field
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from compression import CompressionError
from compression.data import Dataset
from compression.distillation.config import DistillConfig, StudentSpec, is_reference
from compression.distillation.loss import masked_distillation_loss, soft_targets
from compression.distillation.teacher_cache import _LOCK, _MEMORY_ENTRIES, dataset_fingerprint, teacher_logits
from compression.models import (architecture_names, build_from_card, build_model, clone_model, load_pretrained,
                                model_card, state_dict_hash, takes_width, zoo_names)
from compression.paths import home_dir
from compression.training import ProgressFn, StopFn, fit

def _builder_name(name: str) -> str:
    """The architecture behind a zoo name (its card's builder), else the name itself."""
    if name in zoo_names():
        return model_card(name)["builder"].partition(":")[2]
    return name


def student_model(architecture: str, *, width: float = 1.0, init: str = "scratch", num_classes: int = 10,
                  in_channels: int = 1, image_size: int = 28) -> nn.Module:
    """The student's untrained module: the builder `build_student` uses, and the rebuild recipe its
    artifact names (compression.artifact), so a stored student loads from its file alone."""
    if init == "pretrained":
        return build_from_card(architecture)
    return build_model(_builder_name(architecture), num_classes=num_classes, in_channels=in_channels,
                       image_size=image_size, width=width)


def student_recipe(spec: StudentSpec, dataset: Dataset) -> dict:
    """The artifact's rebuild recipe for a student of `spec` built for `dataset`."""
    if is_reference(spec.architecture):
        from compression.refs import architecture_for, parse
        recipe = architecture_for(parse(spec.architecture), dataset)
        recipe.pop("contract", None)
        return recipe
    c, h, _ = dataset.input_shape
    return {"name": spec.label, "builder": "compression.distillation.student:student_model",
            "kwargs": {"architecture": spec.architecture, "width": spec.width, "init": spec.init,
                       "num_classes": dataset.num_classes, "in_channels": c, "image_size": h}}


def build_student(spec: StudentSpec, *, input_shape: tuple[int, int, int], num_classes: int,
                  seed: int = 0, teacher: str | None = None, dataset: Dataset | None = None) -> nn.Module:
    """The student, freshly initialized from `seed` (the global RNG is left as it was) or pretrained.

    Refuses a copy of the teacher that is wider than the teacher, and a student that cannot take
    the teacher's input shape or does not give its number of classes.
    """
    c, h, w = input_shape
    if is_reference(spec.architecture):
        model = _reference_student(spec, dataset, seed)
        return _checked(model, spec, input_shape, num_classes)
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
            model = student_model(spec.architecture, width=spec.width, num_classes=num_classes, in_channels=c,
                                  image_size=h)
    return _checked(model, spec, input_shape, num_classes)


def _reference_student(spec: StudentSpec, dataset: Dataset | None, seed: int) -> nn.Module:
    """A student named by a model reference: its untrained architecture (seeded), or with its own
    weights (init 'pretrained', or weights/pretrained given in the reference)."""
    from compression.refs import architecture_for, parse, rebuild, resolve
    if dataset is None:
        raise CompressionError(f"student {spec.architecture!r} is a model reference: it needs the dataset")
    ref = parse(spec.architecture)
    if spec.init == "pretrained" or ref.weights or ref.pretrained or ref.kind == "run":
        return clone_model(resolve(ref, dataset).model).cpu()
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return rebuild(architecture_for(ref, dataset))


def seen_as(resolved, contract) -> nn.Module:
    """`resolved.model` fed images normalized for `contract` (another model's view of the same data):
    its own normalization restored by a per-channel affine map (exact), and its own input size by
    resizing. The model itself is not copied or changed."""
    own = resolved.contract
    if tuple(own.mean) == tuple(contract.mean) and tuple(own.std) == tuple(contract.std) \
            and tuple(own.input_size) == tuple(contract.input_size):
        return resolved.model
    from compression.torchvision_models import Renormalize
    layers = [Renormalize(contract.mean, contract.std, own.mean, own.std)]
    if tuple(own.input_size) != tuple(contract.input_size):
        layers.append(nn.Upsample(size=tuple(own.input_size), mode="bilinear", align_corners=False))
    device = next(resolved.model.parameters()).device
    return nn.Sequential(*[m.to(device) for m in layers], resolved.model).eval()


def _checked(model: nn.Module, spec: StudentSpec, input_shape, num_classes: int) -> nn.Module:
    c, h, w = input_shape
    try:
        with torch.inference_mode():
            out = model.eval()(torch.zeros(2, c, h, w))
    except RuntimeError as exc:
        raise CompressionError(f"student {spec.label} cannot take {c}x{h}x{w} images "
                               f"({str(exc).splitlines()[0][:120]})") from None
    if tuple(out.shape) != (2, num_classes):
        raise CompressionError(f"student {spec.label} gives {out.shape[-1]} outputs, the teacher {num_classes} classes")
    return model.train()


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
