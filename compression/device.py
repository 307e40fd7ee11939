"""Which device the work runs on, and one heavy job at a time per device.

Streamlit serves every browser session from threads of one process, so a process-wide FIFO
queue per device is enough to keep two users from thrashing one GPU. The queue is visible
(`queue_status`) so a page can say what runs and where a waiting job stands.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import threading
import time
from dataclasses import dataclass
from typing import Iterator

import torch

from compression import CompressionError

DEVICE_CHOICES = ("cuda", "mps", "cpu")


def get_device() -> torch.device:
    """CUDA when present, then MPS, then CPU; $COMPRESSION_DEVICE overrides."""
    wanted = os.environ.get("COMPRESSION_DEVICE", "").strip().lower()
    if wanted:
        return parse_device(wanted)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def parse_device(name: str) -> torch.device:
    """Validate a device name; refuse one this machine does not have."""
    kind = name.split(":")[0]
    if kind not in DEVICE_CHOICES:
        raise CompressionError(f"unknown device {name!r}; choose one of {', '.join(DEVICE_CHOICES)}")
    if kind == "cuda" and not torch.cuda.is_available():
        raise CompressionError(f"device {name!r} requested but CUDA is not available on this machine")
    if kind == "mps" and not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
        raise CompressionError(f"device {name!r} requested but MPS is not available on this machine")
    return torch.device(name)


def describe_device(device: torch.device) -> str:
    """Human-readable device name for the sidebar, e.g. 'cuda (NVIDIA H100 80GB HBM3)'."""
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        n = torch.get_num_threads()
        return f"cpu ({n} thread{'s' * (n != 1)})"
    return device.type


def eval_batch_size(device: torch.device | str, input_shape: tuple[int, ...] | None = None) -> int:
    """Images per forward pass when evaluating a split. On a CPU, 256: at 1,000 a conv model's
    activations (lenet5: 19 MB after the first conv) miss the caches and are fresh pages from the
    allocator on every call; measured on 2 cores, 10k test images take lenet5 0.51 s at 1,000 and
    0.23 s at 256, cnn 1.00 s and 0.76 s, mlp 0.037 s and 0.043 s. Elsewhere, 1,000.

    Images larger than 3 x 32 x 32 (`input_shape`: photos from an image folder) get fewer per batch,
    in proportion to their values, down to 16 (CPU) or 64: a ResNet-18 at 224 px in batches of 256
    peaked at 2.9 GB (bench_imagefolder, 220 test images); a batch of 16 is still ~29 GMACs of work
    per forward, enough to keep a CPU's cores busy (its throughput is not measured here yet)."""
    cpu = torch.device(device).type == "cpu"
    top, floor = (256, 16) if cpu else (1000, 64)
    if input_shape is None:
        return top
    values = 1
    for v in input_shape:
        values *= int(v)
    return max(floor, min(top, top * 3 * 32 * 32 // max(1, values)))


def inference_layout(model: torch.nn.Module, device: torch.device | str):
    """(runner, prepare) for evaluating `model` on `device`: on the CPU a model with 2-D
    convolutions runs as a channels_last copy (the caller's model is not touched) and inputs are
    made channels_last by `prepare`; elsewhere, or without convolutions, the model itself.

    Measured on 2 cores, 10k Fashion-MNIST test images in batches of 256: cnn 0.735 -> 0.357 s,
    ds_cnn 0.640 -> 0.237 s, lenet5 0.247 -> 0.209 s, with the same prediction for every image of
    every zoo model (logits within 1e-5). oneDNN's NCHW kernels and PyTorch's NCHW max-pooling are
    the slow part in the default layout."""
    identity = lambda x: x  # noqa: E731
    if torch.device(device).type != "cpu" or not any(isinstance(m, torch.nn.Conv2d) for m in model.modules()):
        return model, identity
    import copy
    try:
        runner = copy.deepcopy(model).to(memory_format=torch.channels_last)
    except (RuntimeError, TypeError, ValueError, copy.Error):  # cannot be copied or take the layout: as given
        return model, identity
    return runner, (lambda x: x.contiguous(memory_format=torch.channels_last) if x.dim() == 4 else x)


_ALLOCATOR = {"state": "default"}
_ALLOCATOR_LOCK = threading.Lock()


def steady_allocator() -> str:
    """Keep freed memory in the process instead of handing it back to the OS (glibc: mmap
    threshold 64 MiB, trim threshold 256 MiB), so a forward pass reuses the pages of the previous
    one. Once per process; what was set is returned (and kept for the benchmarks' records).

    With glibc's defaults a conv model's activations (a few MB per batch) are unmapped after each
    forward and come back as fresh pages. Measured on 2 cores, 10k cnn test images in batches of
    256 (NCHW): 240,000-376,000 page faults and 1.25-1.43 s per evaluation with the defaults, 0 and
    0.79-0.95 s with this. It also made side-by-side timings depend on the process's history: the
    cnn at batch 64 paid 2,329 faults per forward in one process and none in another. Elsewhere
    than glibc (no mallopt), nothing is changed."""
    with _ALLOCATOR_LOCK:
        if _ALLOCATOR["state"] == "default":
            import ctypes
            import ctypes.util
            m_trim_threshold, m_mmap_threshold = -1, -3
            try:
                libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
                ok = (libc.mallopt(m_mmap_threshold, 64 << 20) == 1
                      and libc.mallopt(m_trim_threshold, 256 << 20) == 1)
            except (OSError, AttributeError):
                ok = False
            _ALLOCATOR["state"] = ("glibc mallopt: mmap_threshold 64 MiB, trim_threshold 256 MiB" if ok
                                   else "system default (no mallopt)")
        return _ALLOCATOR["state"]


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


@dataclass(frozen=True)
class Ticket:
    number: int
    label: str
    device: str
    queued_at: float


class DeviceQueue:
    """A FIFO of heavy jobs for one device; `run(label)` blocks until it is this job's turn."""

    def __init__(self, device: str):
        self.device = device
        self._cond = threading.Condition()
        self._waiting: list[Ticket] = []
        self._running: Ticket | None = None
        self._numbers = itertools.count(1)

    @contextlib.contextmanager
    def run(self, label: str, timeout: float | None = None) -> Iterator[Ticket]:
        ticket = Ticket(next(self._numbers), label, self.device, time.time())
        with self._cond:
            self._waiting.append(ticket)
            try:
                ok = self._cond.wait_for(
                    lambda: self._running is None and self._waiting[0] is ticket, timeout)
                if not ok:
                    raise CompressionError(f"{self.device} busy for more than {timeout:.0f} s; try again")
            except BaseException:
                self._waiting.remove(ticket)
                self._cond.notify_all()
                raise
            self._waiting.pop(0)
            self._running = ticket
        try:
            yield ticket
        finally:
            with self._cond:
                self._running = None
                self._cond.notify_all()

    def waiting(self) -> int:
        """How many jobs wait for the device now (a background job yields to them: ui.warm)."""
        with self._cond:
            return len(self._waiting)

    def idle(self) -> bool:
        """Nothing runs on the device and nothing waits for it."""
        with self._cond:
            return self._running is None and not self._waiting

    def status(self) -> tuple[Ticket | None, list[Ticket]]:
        """(running job, waiting jobs in order)."""
        with self._cond:
            return self._running, list(self._waiting)


_QUEUES: dict[str, DeviceQueue] = {}
_QUEUES_LOCK = threading.Lock()


def device_queue(device: torch.device | str) -> DeviceQueue:
    key = str(torch.device(device).type)
    with _QUEUES_LOCK:
        if key not in _QUEUES:
            _QUEUES[key] = DeviceQueue(key)
        return _QUEUES[key]


def heavy_job(label: str, device: torch.device | str | None = None, timeout: float | None = None):
    """Context manager: hold the device for one heavy job (training, a sweep, an evaluation)."""
    return device_queue(device if device is not None else get_device()).run(label, timeout)
