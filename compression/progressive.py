"""Live answers: a slider's result in stages, the newest request first.

Accuracy on all 10,000 test images is what makes a slider slow, so a live result comes in stages:
`staged_compress` applies the method and yields its accuracy on the preview subset (a fixed,
seeded, class-stratified sample of the test split, as many images as the uncompressed model
evaluates in about PREVIEW_SECONDS: compression.preview_subset; with a 95 % Wilson interval), the
counts and the artifact's bytes, then measures the rest of the test set, MACs and latency (and a
method's own finish, e.g. the int8 kernel's latency) into the same Result
`compression.methods.compress` gives (the sample's logits are not computed twice).

`LatestRunner` runs such staged work in one background thread, the newest request first: a
request for another key cancels the older one at its next check (between stages, and between
chunks of the full evaluation); what a stage finished goes into a `StageCache` under its own key,
so an older request can never overwrite what a newer key shows, and coming back to a value already
seen is instant. The cache is bounded (least recently used out first) and thread-safe.

    cache = StageCache(64)
    runner = LatestRunner(cache)
    runner.submit(key, lambda cancelled: staged_compress(..., cancelled=cancelled))
    entry = cache.wait(key, lambda e: e.stages, timeout=1.0)   # the first stage, or None
"""

from __future__ import annotations

import threading
import time
import weakref
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any, Callable, Hashable, Iterable, Iterator

import torch

from compression.cancel import Cancelled  # noqa: F401  (re-exported: the live pages raise it)
from compression.preview_subset import preview_count, preview_indices, subset_accuracy  # noqa: F401  (the pages' too)

CHUNK = 2500         # test images per step of the full evaluation (a cancel is seen between steps)

CancelledFn = Callable[[], bool]
Work = Callable[[CancelledFn], Iterable["Stage"]]




@dataclass(frozen=True)
class Stage:
    name: str            # "subset", "full", ... (the work's own names)
    value: Any           # what the caller shows for it
    final: bool = False  # the last stage: the full result


@dataclass
class Entry:
    """What is known about one key: the stages done (oldest first), or the error that ended it."""
    stages: list[Stage] = field(default_factory=list)
    error: BaseException | None = None

    @property
    def latest(self) -> Stage | None:
        return self.stages[-1] if self.stages else None

    @property
    def done(self) -> bool:
        return self.error is not None or (bool(self.stages) and self.stages[-1].final)


class StageCache:
    """key -> Entry, bounded (least recently used out first), safe across threads; `wait` blocks
    until an entry satisfies a condition."""

    def __init__(self, max_entries: int = 64):
        self.max_entries = max_entries
        self._entries: OrderedDict[Hashable, Entry] = OrderedDict()
        self._claims: set[Hashable] = set()  # keys someone is computing now
        self._changed = threading.Condition()

    def claim(self, key: Hashable) -> bool:
        """Take the key to compute it: False while someone else (another session's runner, the warm
        start) is computing it; `release` when done."""
        with self._changed:
            if key in self._claims:
                return False
            self._claims.add(key)
            return True

    def release(self, key: Hashable) -> None:
        with self._changed:
            self._claims.discard(key)
            self._changed.notify_all()

    def get(self, key: Hashable) -> Entry | None:
        """A snapshot of the key's entry (None when nothing is known)."""
        with self._changed:
            entry = self._entries.get(key)
            if entry is None:
                return None
            self._entries.move_to_end(key)
            return Entry(list(entry.stages), entry.error)

    def add_stage(self, key: Hashable, stage: Stage) -> None:
        with self._changed:
            entry = self._entries.setdefault(key, Entry())
            entry.stages = [s for s in entry.stages if s.name != stage.name] + [stage]
            entry.error = None
            self._touch(key)

    def set_error(self, key: Hashable, error: BaseException) -> None:
        with self._changed:
            self._entries.setdefault(key, Entry()).error = error
            self._touch(key)

    def drop(self, key: Hashable) -> None:
        with self._changed:
            self._entries.pop(key, None)
            self._changed.notify_all()

    def clear(self) -> None:
        with self._changed:
            self._entries.clear()
            self._changed.notify_all()

    def __len__(self) -> int:
        with self._changed:
            return len(self._entries)

    def wait(self, key: Hashable, condition: Callable[[Entry], Any], timeout: float) -> Entry | None:
        """The key's entry once `condition(entry)` holds, or None after `timeout` seconds."""
        end = time.monotonic() + timeout
        with self._changed:
            while True:
                entry = self._entries.get(key)
                if entry is not None and condition(entry):
                    return Entry(list(entry.stages), entry.error)
                left = end - time.monotonic()
                if left <= 0:
                    return None
                self._changed.wait(left)

    def _touch(self, key: Hashable) -> None:
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)
        self._changed.notify_all()


class LatestRunner:
    """Staged work for one user, in one background thread, the newest request first.

    `submit(key, work)` asks for `key`; `work(cancelled)` yields Stages, each stored in the cache as
    it comes. Only the newest request waits: a request for another key cancels the running one at its
    next check (`cancelled()` inside a stage, and between stages here) and replaces any request still
    waiting. The thread exits when nothing is asked for and starts again on the next request."""

    def __init__(self, cache: StageCache, name: str = "live"):
        self.cache = cache
        self.name = name
        self._lock = threading.Condition()
        self._wanted: Hashable | None = None       # the newest key asked for
        self._pending: tuple[Hashable, Work] | None = None
        self._running: Hashable | None = None
        self._thread: threading.Thread | None = None

    def submit(self, key: Hashable, work: Work, *, retry_failed: bool = True) -> None:
        """Ask for `key`. Nothing to do when its entry is complete (or failed and not `retry_failed`),
        or when it is being computed now."""
        with self._lock:
            self._wanted = key
            entry = self.cache.get(key)
            if entry is not None and entry.done and (entry.error is None or not retry_failed):
                self._pending = None
                return
            if entry is not None and entry.error is not None:
                self.cache.drop(key)  # a failure is not cached: try again
            if self._running == key:
                self._pending = None
                return
            self._pending = (key, work)
            if self._thread is None:
                # the thread holds the runner weakly: a runner nobody holds (its session is gone) is
                # cancelled at the next check instead of finishing work nobody will see
                self._thread = threading.Thread(target=_loop, args=(weakref.ref(self),), name=f"{self.name}-runner",
                                                daemon=True)
                self._thread.start()

    @property
    def wanted(self) -> Hashable | None:
        return self._wanted

    def busy(self) -> bool:
        with self._lock:
            return self._thread is not None

    def wait_idle(self, timeout: float | None = None) -> bool:
        """Block until nothing is running or waiting; False after `timeout` seconds."""
        end = None if timeout is None else time.monotonic() + timeout
        with self._lock:
            while self._thread is not None:
                left = None if end is None else end - time.monotonic()
                if left is not None and left <= 0:
                    return False
                self._lock.wait(left)
            return True


def _loop(ref: "weakref.ref[LatestRunner]") -> None:
    while True:
        runner = ref()
        if runner is None:
            return
        with runner._lock:
            if runner._pending is None:
                runner._running, runner._thread = None, None
                runner._lock.notify_all()
                return
            (key, work), runner._pending = runner._pending, None
            runner._running, cache = key, runner.cache
        del runner  # no strong reference while the work runs
        _run(ref, cache, key, work)


def _wanted_elsewhere(ref: "weakref.ref[LatestRunner]", key: Hashable) -> bool:
    runner = ref()
    return runner is None or runner._wanted != key


def _run(ref: "weakref.ref[LatestRunner]", cache: StageCache, key: Hashable, work: Work) -> None:
    cancelled = lambda: _wanted_elsewhere(ref, key)  # noqa: E731
    while not cache.claim(key):  # computed elsewhere now: wait for it, or take over if it stops early
        if cancelled():
            return
        entry = cache.wait(key, lambda e: e.done, 0.05)
        if entry is not None:
            return
    stages = None
    try:
        entry = cache.get(key)
        if cancelled() or (entry is not None and entry.done and entry.error is None):
            return
        stages = iter(work(cancelled))
        for stage in stages:
            cache.add_stage(key, stage)
            if stage.final or cancelled():
                break
    except Cancelled:
        pass
    except Exception as exc:  # the page shows it (and logs it with its traceback)
        cache.set_error(key, exc)
    finally:
        try:
            close = getattr(stages, "close", None)
            if close is not None:
                close()  # a generator left between stages: its finally blocks run now
        finally:
            cache.release(key)


def run_to_end(cache: StageCache, key: Hashable, work: Work, *, timeout: float = 600,
               cancelled: CancelledFn = lambda: False) -> Entry | None:
    """Compute `key` here to its final stage (a warm-start thread), unless it is known already or
    computed elsewhere (then wait for that, up to `timeout` seconds). A failure is not kept: raised
    (Cancelled too, when `cancelled` says so: the warm start yields to a user waiting for the device)."""
    end = time.monotonic() + timeout
    while not cache.claim(key):
        entry = cache.wait(key, lambda e: e.done, 0.1)
        if entry is not None or time.monotonic() > end:
            return entry
    try:
        entry = cache.get(key)
        if entry is not None and entry.done and entry.error is None:
            return entry
        for stage in work(cancelled):
            cache.add_stage(key, stage)
            if stage.final:
                break
    except BaseException:
        cache.drop(key)
        raise
    finally:
        cache.release(key)
    return cache.get(key)


# ---------------------------------------------------------------------------------------------
# the stages of one compression: the preview sample of test images, then everything

@dataclass
class Partial:
    """The first stage: accuracy on the preview's `accuracy_n` of `of` test images (a stratified
    sample of `classes` classes), with its interval; the counts that need no test image; the model
    as it will be measured."""
    accuracy: float
    accuracy_n: int
    of: int
    interval: tuple[float, float]
    baseline_accuracy: float      # the uncompressed model on the same images
    params: int
    nonzero_params: int
    size_bytes: int               # the artifact the full stage writes: the same bytes
    macs: float
    model: torch.nn.Module
    extra: dict[str, Any]         # the method's own (per-layer tables, ...)
    config: dict[str, Any]
    classes: int | None = None    # classes in the test split (the sample holds each while accuracy_n >= classes)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "accuracy_n": self.accuracy_n, "of": self.of, "classes": self.classes,
                "interval": list(self.interval), "baseline_accuracy": self.baseline_accuracy,
                "params": self.params, "nonzero_params": self.nonzero_params, "size_bytes": self.size_bytes,
                "macs": self.macs,
                "config": dict(self.config), **{k: v for k, v in self.extra.items() if k not in ("config",)}}


def rest_logits(model: torch.nn.Module, dataset, rest: torch.Tensor, device, cancelled: CancelledFn,
                chunk: int = CHUNK) -> list[torch.Tensor]:
    """Logits of the test images `rest` (indices) in chunks, a cancel seen between chunks."""
    from compression.training import predict
    outs = []
    for lo in range(0, len(rest), chunk):
        if cancelled():
            raise Cancelled()
        outs.append(predict(model, dataset, dataset.test.take(rest[lo:lo + chunk]), device=device))
    return outs


def full_logits(model: torch.nn.Module, dataset, n: int, head: torch.Tensor, device, cancelled: CancelledFn) -> torch.Tensor:
    """Logits of every test image in test order, `head` being those of the preview's n images."""
    total = len(dataset.test)
    sample = preview_indices(dataset.test.labels, n)
    rest = torch.ones(total, dtype=torch.bool)
    rest[sample] = False
    rest = rest.nonzero().flatten()
    tail = rest_logits(model, dataset, rest, device, cancelled)
    out = torch.empty(total, head.shape[1], dtype=head.dtype)
    out[sample] = head
    if len(rest):
        out[rest] = torch.cat(tail)
    return out


def staged_compress(reference: Any, dataset: Any, method: str, config: Any = None, *,
                    device: torch.device | str = "cpu", model: torch.nn.Module | None = None,
                    baseline: Any = None, first: int | None = None, cancelled: CancelledFn = lambda: False,
                    **kwargs) -> Iterator[Stage]:
    """Stage "subset" (a Partial on the preview's `first` test images: preview_count when None),
    then stage "full" (the
    compression.methods.Run compress gives), a cancel seen between stages and inside the full
    evaluation; keyword arguments go to compression.methods.apply_to."""
    from compression.artifact import write_artifact
    from compression.methods import apply_to, config_dict, finish_run
    from compression.models import state_dict_bytes
    from compression.metrics import count_macs, count_nonzero, count_params, wilson_interval
    device = torch.device(device)
    applied = apply_to(reference, dataset, method, config, device=device, model=model, **kwargs)
    out, data = applied.out, applied.ctx.dataset
    total = len(data.test)
    original = applied.ctx.resolved.model
    if cancelled():
        raise Cancelled()
    n = min(first if first is not None else preview_count(original, data, device), total)
    if n >= total:  # a small test split: one stage
        yield Stage("full", finish_run(applied, baseline=baseline), final=True)
        return
    base_acc, _ = subset_accuracy(original, data, n, device, remember=True)
    acc, head = subset_accuracy(out.model, data, n, device)
    macs = out.macs if out.macs is not None else count_macs(out.model, data.input_shape, device)
    payload = out.payload if out.payload is not None else state_dict_bytes(out.model)
    size = len(write_artifact(payload, out.kind, out.architecture or applied.ctx.resolved.architecture))
    yield Stage("subset", Partial(acc, n, total, wilson_interval(acc, n), base_acc, count_params(out.model),
                                  count_nonzero(out.model), size, macs, out.model, dict(out.extra),
                                  config_dict(applied.config), len(data.test.labels.unique())))
    logits = full_logits(out.model, data, n, head, device, cancelled)
    if cancelled():
        raise Cancelled()
    yield Stage("full", finish_run(applied, baseline=baseline, logits=logits), final=True)
