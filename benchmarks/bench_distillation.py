"""Knowledge distillation, teacher `cnn` -> LeNet-5 student from a seeded random init, no
augmentation, Adam lr 2e-3 with a cosine schedule, batch 128. Speed: the teacher's logits on the
55k training images (cold, then from the memory and the disk cache), the time from starting a
second run with another temperature to its first training step, and one student epoch over the
55k images (hard labels vs distillation loss; each includes the 5k-image validation pass), with the
CPU time the process used beside the wall time (on a shared machine the wall time is inflated).
Accuracy: each setting trained from the same init for seeds 0, 1, 2 (same data order for the
hard-label and the distilled student of one seed); test accuracy on all 10k test images, mean and
spread (sample standard deviation), gain = distilled - hard labels of the same seed.
With teacher `resnet` (issue 17): `resnet5k60`, the LeNet-5 student on 5k labels for 60 epochs,
seeds 0, 1, 2 as above; `resnet-students`, the `cnn` and `vit` architectures as students (scratch,
5k labels, 20 epochs, seed 0 only: one hard-label and one distilled student each).
Parts: `python -m benchmarks distillation:speed,5k,5k40,5k60,transfer,all,resnet5k60,resnet-students`
(default: all but the two resnet parts)."""

from __future__ import annotations

import os
import statistics
import sys
import time
from dataclasses import replace


from benchmarks import common
from compression.data import load_dataset
from compression.device import get_device, synchronize
from compression.distillation import (DistillConfig, StudentSpec, build_student, clear_memory_cache, teacher_logits,
                                      train_student)
from compression.models import load_pretrained
from compression.training import accuracy_on

SEEDS = (0, 1, 2)
TEACHER = "cnn"
STUDENT = StudentSpec("lenet5")


def _speed(data, teacher, device) -> list[dict]:
    import tempfile
    rows = []
    home = os.environ.get("COMPRESSION_HOME")
    os.environ["COMPRESSION_HOME"] = tempfile.mkdtemp(prefix="bench-distill-")  # empty logits cache
    clear_memory_cache()
    try:
        timings = {}
        for what in ("cold (teacher forward)", "memory cache", "disk cache"):
            if what == "disk cache":
                clear_memory_cache()
            synchronize(device)
            start = time.perf_counter()
            teacher_logits(teacher, data, device=device)
            timings[what] = time.perf_counter() - start
        rows += [{"what": f"teacher logits, 55k train images, {k}", "seconds": v} for k, v in timings.items()]

        # a first run (T=4) and a second with another temperature (T=8), each stopped after one
        # step: the second's time from the call to its first training step
        init = build_student(STUDENT, input_shape=data.input_shape, num_classes=data.num_classes, seed=0)
        for label, T in (("first run (T=4, process cold)", 4.0), ("second run (T=8, logits cached)", 8.0)):
            calls = [0]

            def after_first_step() -> bool:
                calls[0] += 1
                return calls[0] > 1
            run = train_student(init, [teacher], data, DistillConfig(temperature=T, alpha=0.9, epochs=1),
                                device=device, should_stop=after_first_step)
            rows.append({"what": f"{label}: call -> first training step", "seconds": run.setup_seconds})

        for label, cfg in (("hard labels (cross-entropy)", DistillConfig(alpha=0.0, epochs=1)),
                           ("distillation loss T=4, alpha=0.9", DistillConfig(temperature=4.0, alpha=0.9, epochs=1))):
            cpu = time.process_time()
            run = train_student(init, [teacher], data, cfg, device=device)
            rows.append({"what": f"one LeNet-5 epoch over 55k images, {label}", "seconds": run.train_seconds,
                         "process CPU s (all threads)": time.process_time() - cpu})
    finally:
        if home:
            os.environ["COMPRESSION_HOME"] = home
        clear_memory_cache()
    return rows


_DONE: dict[tuple, tuple[float, float]] = {}


def _accuracy(data, teacher, device, title: str, settings: list[tuple[str, DistillConfig]], *,
              student: StudentSpec = STUDENT, seeds: tuple[int, ...] = SEEDS, teacher_name: str = TEACHER) -> list[dict]:
    """settings[0] is the hard-label reference; gains are per seed against it."""
    acc: dict[str, list[float]] = {label: [] for label, _ in settings}
    secs: dict[str, list[float]] = {label: [] for label, _ in settings}
    for seed in seeds:
        init = build_student(student, input_shape=data.input_shape, num_classes=data.num_classes, seed=seed)
        for label, cfg in settings:
            key = (student, teacher_name if cfg.alpha > 0 else None, replace(cfg, seed=seed))
            if key not in _DONE:  # a setting shared by two tables is trained once (hard labels: any teacher)
                run = train_student(init, [teacher], data, key[2], device=device)
                _DONE[key] = (accuracy_on(run.model, data, "test", device), run.train_seconds)
                print(f"  {title}: {label}, seed {seed}: {100 * _DONE[key][0]:.2f} % "
                      f"({run.train_seconds:.0f} s)", file=sys.stderr, flush=True)
            acc[label].append(_DONE[key][0])
            secs[label].append(_DONE[key][1])
    ref = settings[0][0]
    rows = []
    for label, cfg in settings:
        gains = [a - b for a, b in zip(acc[label], acc[ref])]
        images = cfg.epochs * (cfg.train_subset or len(data.train) if cfg.transfer_set == "labeled" else len(data.train))
        rows.append({
            "what": f"{title}: {label}",
            "accuracy % (mean)": 100 * statistics.mean(acc[label]),
            "spread (sd, points)": 100 * statistics.stdev(acc[label]) if len(seeds) > 1 else None,
            "per seed %": " / ".join(f"{100 * a:.2f}" for a in acc[label]),
            "gain vs hard (points, mean)": None if label == ref else 100 * statistics.mean(gains),
            "gain min..max": None if label == ref else f"{100 * min(gains):+.2f}..{100 * max(gains):+.2f}",
            "images seen": images,
            "train s (mean)": statistics.mean(secs[label]),
        })
    return rows


def run() -> list[dict]:
    device = get_device()
    parts = common.parts(["speed", "5k", "5k40", "5k60", "transfer", "all"],
                         extra=["resnet5k60", "resnet-students"])
    data = load_dataset("fashion-mnist")
    teacher = load_pretrained(TEACHER, device)
    rows = [{"what": f"teacher {TEACHER}: test accuracy %", "accuracy % (mean)": 100 * accuracy_on(teacher, data, "test", device)}]
    if "speed" in parts:
        rows += _speed(data, teacher, device)
    hard5k = ("hard labels", DistillConfig(alpha=0.0, epochs=20, train_subset=5000))
    if "5k" in parts:
        rows += _accuracy(data, teacher, device, "5k labeled, 20 epochs", [
            hard5k,
            ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=20, train_subset=5000)),
            ("T=4, alpha=0.9", DistillConfig(temperature=4.0, alpha=0.9, epochs=20, train_subset=5000)),
        ])
    if "5k40" in parts:  # the same, trained twice as long: both students are still improving at 20 epochs
        rows += _accuracy(data, teacher, device, "5k labeled, 40 epochs", [
            ("hard labels", DistillConfig(alpha=0.0, epochs=40, train_subset=5000)),
            ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=40, train_subset=5000)),
            ("T=4, alpha=0.9", DistillConfig(temperature=4.0, alpha=0.9, epochs=40, train_subset=5000)),
        ])
    if "5k60" in parts:  # longer still: the hard-label student starts to overfit its 5k images
        rows += _accuracy(data, teacher, device, "5k labeled, 60 epochs", [
            ("hard labels", DistillConfig(alpha=0.0, epochs=60, train_subset=5000)),
            ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=60, train_subset=5000)),
        ])
    if "transfer" in parts:
        rows += _accuracy(data, teacher, device, "5k labeled + transfer set (all 55k)", [
            hard5k,
            ("T=4, alpha=0.9, 2 epochs (about the same steps)",
             DistillConfig(temperature=4.0, alpha=0.9, epochs=2, train_subset=5000, transfer_set="all")),
            ("T=4, alpha=0.9, 6 epochs",
             DistillConfig(temperature=4.0, alpha=0.9, epochs=6, train_subset=5000, transfer_set="all")),
        ])
    if "all" in parts:
        rows += _accuracy(data, teacher, device, "all 55k labeled, 6 epochs", [
            ("hard labels", DistillConfig(alpha=0.0, epochs=6)),
            ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=6)),
            ("T=4, alpha=0.9", DistillConfig(temperature=4.0, alpha=0.9, epochs=6)),
        ])
    if "resnet5k60" in parts or "resnet-students" in parts:
        rows += _resnet_teacher(data, device, parts)
    for r in rows:
        r["device"] = device.type
    return rows


def _resnet_teacher(data, device, parts) -> list[dict]:
    """Issue 17: the residual network as the teacher of LeNet-5 (3 seeds), cnn and vit students."""
    teacher = load_pretrained("resnet", device)
    rows = [{"what": "teacher resnet: test accuracy %", "accuracy % (mean)": 100 * accuracy_on(teacher, data, "test", device)}]
    if "resnet5k60" in parts:
        rows += _accuracy(data, teacher, device, "teacher resnet, 5k labeled, 60 epochs", [
            ("hard labels", DistillConfig(alpha=0.0, epochs=60, train_subset=5000)),
            ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=60, train_subset=5000)),
        ], teacher_name="resnet")
    if "resnet-students" in parts:
        for name in ("cnn", "vit"):
            rows += _accuracy(data, teacher, device, f"teacher resnet, student {name} (scratch), 5k labeled, 20 epochs", [
                ("hard labels", DistillConfig(alpha=0.0, epochs=20, train_subset=5000)),
                ("T=2, alpha=0.7", DistillConfig(temperature=2.0, alpha=0.7, epochs=20, train_subset=5000)),
            ], student=StudentSpec(name), seeds=(0,), teacher_name="resnet")
    return rows
