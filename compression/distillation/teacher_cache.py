"""Teacher logits: computed once per (teacher weights, dataset), kept in memory and on disk, and
extended when more images are needed, so changing T, alpha or the student never reruns the teacher."""

from __future__ import annotations

import collections
import hashlib
import os
import threading

import torch
import torch.nn as nn

from compression.data import Dataset
from compression.device import eval_batch_size, inference_layout
from compression.models import clone_model, state_dict_hash
from compression.paths import home_dir
from compression.training import new_span, tick

_MEMORY: "collections.OrderedDict[str, torch.Tensor]" = collections.OrderedDict()
_MEMORY_ENTRIES = 8
_LOCK = threading.Lock()


def dataset_fingerprint(dataset: Dataset) -> str:
    """Identifies the training split: name, source, size, every label, a sample of the pixels, and the
    normalization and size it is seen with (a model's contract view, compression.contract.model_view)."""
    h = hashlib.sha256(f"{dataset.name}|{dataset.source}|{len(dataset.train)}".encode())
    h.update(f"{tuple(dataset.mean)}|{tuple(dataset.std)}|{tuple(dataset.input_shape)}".encode())  # a model's view
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
    batch_size = batch_size or eval_batch_size(device, dataset.input_shape)
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
        span = new_span()
        for start in range(done, n, batch_size):
            tick(span, "teacher logits", start - done, n - done)
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
