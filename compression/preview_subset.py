"""The preview subset: which test images a live slider's first numbers are measured on, and how many.

Which: a fixed, seeded, class-stratified order of the test split. Within each class the images are
shuffled (seed 0); the classes are interleaved in proportion: image r of a class with n_c images
sits at r / n_c, ties by class. So the first n images of the order hold every class in proportion
(each class's first image within the first `classes` places, even in a folder sorted by class),
the same images every time, and a larger preview holds every image of a smaller one. The full
evaluation that follows covers the whole test split in its own order: stored predictions stay
comparable image by image.

How many: as many as the uncompressed model evaluates in PREVIEW_SECONDS on this device (measured
once per model, dataset and device by evaluating it on the first images of the order, so nothing is
computed twice), at least MIN_IMAGES, rounded down to a round number. A model of any size gives its
first numbers in about a second: the baseline once, then the compressed model, each about
PREVIEW_SECONDS. COMPRESSION_PREVIEW_IMAGES fixes the count instead.
"""

from __future__ import annotations

import os
import threading
import time
import weakref

import torch

from compression import CompressionError

PREVIEW_SEED = 0
PREVIEW_SECONDS = 0.4   # one model's evaluation of the preview; the first numbers take the baseline's too (once)
MIN_IMAGES = 100        # fewer would give an interval too wide to read (about +-10 points at 50 %)
MAX_IMAGES = 5000
FIRST_CHUNK = 4         # images of the first timed step (a warm-up: its time is not counted in the rate)


def preview_order(labels: torch.Tensor, seed: int = PREVIEW_SEED) -> torch.Tensor:
    """Every test index, class-stratified: any first n hold every class in proportion."""
    labels = labels.to(torch.int64)
    gen = torch.Generator().manual_seed(seed)
    keys = torch.empty(len(labels), dtype=torch.float64)
    for c in torch.unique(labels).tolist():
        members = (labels == c).nonzero().flatten()
        shuffled = members[torch.randperm(len(members), generator=gen)]
        keys[shuffled] = torch.arange(len(members), dtype=torch.float64) / len(members)
    # sort by key, then by class (a stable sort of the class-sorted indices keeps ties in class order)
    by_class = torch.argsort(labels, stable=True)
    return by_class[torch.argsort(keys[by_class], stable=True)]


def preview_indices(labels: torch.Tensor, n: int) -> torch.Tensor:
    """The preview's n test indices, sorted (the first n of preview_order)."""
    return preview_order(labels)[:n].sort().values


def fixed_count() -> int | None:
    """COMPRESSION_PREVIEW_IMAGES when set (a positive integer), else None."""
    text = os.environ.get("COMPRESSION_PREVIEW_IMAGES", "").strip()
    if not text:
        return None
    if not text.isdigit() or int(text) < 1:
        raise CompressionError(f"COMPRESSION_PREVIEW_IMAGES={text!r} must be a positive integer")
    return int(text)


def count_for_rate(images_per_second: float, total: int, seconds: float = PREVIEW_SECONDS) -> int:
    """Images evaluated in `seconds` at that rate, rounded down (to 100 below 1,000, to 500 above),
    at least MIN_IMAGES, at most MAX_IMAGES and the split."""
    n = int(images_per_second * seconds)
    n = n // 100 * 100 if n < 1000 else n // 500 * 500
    return max(1, min(total, MAX_IMAGES, max(MIN_IMAGES, n)))


def measure_count(model: torch.nn.Module, dataset, device) -> tuple[int, torch.Tensor]:
    """(n, logits) for the preview of `model`: it is evaluated on the first images of the order in
    growing steps for about PREVIEW_SECONDS, n follows from its rate, and the logits are the model's
    on the n preview images (sorted by index, as preview_indices gives them)."""
    from compression.training import predict
    test = dataset.test
    order = preview_order(test.labels)
    parts, done, chunk = [], 0, FIRST_CHUNK
    warm_seconds, start = 0.0, time.perf_counter()
    while done < len(order):
        parts.append(predict(model, dataset, test.take(order[done:done + chunk]), device=device))
        done += len(parts[-1])
        elapsed = time.perf_counter() - start
        if done == len(parts[-1]):
            warm_seconds, warm_images = elapsed, done
        timed_images, timed_seconds = done - warm_images, elapsed - warm_seconds
        rate = timed_images / timed_seconds if timed_images and timed_seconds > 0 else done / max(elapsed, 1e-9)
        if elapsed >= PREVIEW_SECONDS:
            break
        chunk = max(FIRST_CHUNK, min(2 * chunk, int(rate * (PREVIEW_SECONDS - elapsed))))
    n = count_for_rate(rate, len(order))
    if n > done:  # a slow model: the minimum is more than it did in the time
        parts.append(predict(model, dataset, test.take(order[done:n]), device=device))
    logits = torch.cat(parts)[:n]
    return n, logits[torch.argsort(order[:n])]


_SUBSET_BASELINES: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
_PREVIEW_COUNTS: "weakref.WeakKeyDictionary[torch.nn.Module, dict]" = weakref.WeakKeyDictionary()
_SUBSET_LOCK = threading.Lock()


def _key(dataset, device) -> tuple:
    return (dataset.name, dataset.source, len(dataset.test), str(device))


def preview_count(model: torch.nn.Module, dataset, device) -> int:
    """How many test images the preview of `model` (the uncompressed one) uses: COMPRESSION_PREVIEW_IMAGES,
    else measured from its throughput once per model object, dataset and device (its logits on those
    images are kept, so subset_accuracy(..., remember=True) computes nothing more)."""
    fixed = fixed_count()
    if fixed is not None:
        return min(fixed, len(dataset.test))
    key = _key(dataset, device)
    with _SUBSET_LOCK:
        known = _PREVIEW_COUNTS.get(model, {}).get(key)
    if known is not None:
        return known
    n, logits = measure_count(model, dataset, device)
    labels = dataset.test.labels[preview_indices(dataset.test.labels, n)]
    acc = float((logits.argmax(1) == labels).float().mean())
    with _SUBSET_LOCK:
        _PREVIEW_COUNTS.setdefault(model, {})[key] = n
        _SUBSET_BASELINES.setdefault(model, {})[(*key, n)] = (acc, logits)
    return n


def remember_full(model: torch.nn.Module, dataset, device, logits: torch.Tensor, seconds: float) -> None:
    """Keep what an evaluation of `model` on the whole test split already measured (the home page's
    baseline): its rate sets the preview count and its logits give the preview's baseline, so the
    first slider move evaluates only the compressed model. Nothing when the count is fixed or known."""
    if fixed_count() is not None or seconds <= 0 or logits.shape[0] != len(dataset.test):
        return
    key = _key(dataset, device)
    n = count_for_rate(len(dataset.test) / seconds, len(dataset.test))
    sample = preview_indices(dataset.test.labels, n)
    acc = float((logits[sample].argmax(1) == dataset.test.labels[sample]).float().mean())
    with _SUBSET_LOCK:
        if key not in _PREVIEW_COUNTS.get(model, {}):
            _PREVIEW_COUNTS.setdefault(model, {})[key] = n
            _SUBSET_BASELINES.setdefault(model, {})[(*key, n)] = (acc, logits[sample])


def subset_accuracy(model: torch.nn.Module, dataset, n: int, device, *, remember: bool = False) -> tuple[float, torch.Tensor]:
    """(accuracy, logits) of `model` on the preview's n test images (preview_indices: sorted);
    `remember`: kept per model object (the uncompressed model, read by every stage of every slider move)."""
    from compression.training import predict
    key = (*_key(dataset, device), n)
    if remember:
        with _SUBSET_LOCK:
            known = _SUBSET_BASELINES.get(model, {}).get(key)
        if known is not None:
            return known
    sample = dataset.test.take(preview_indices(dataset.test.labels, n))
    logits = predict(model, dataset, sample, device=device)
    acc = float((logits.argmax(1) == sample.labels).float().mean())
    if remember:
        with _SUBSET_LOCK:
            _SUBSET_BASELINES.setdefault(model, {})[key] = (acc, logits)
    return acc, logits


def describe(n: int, of: int, classes: int | None = None) -> str:
    """'a stratified sample of 500 of 10,000 test images, every class' (a sample smaller than the
    number of classes in the test split, `classes`, holds one image of n of them)."""
    cover = "every class" if classes is None or n >= classes else f"{n:,} of its {classes:,} classes"
    return f"a stratified sample of {n:,} of {of:,} test images, {cover}"
