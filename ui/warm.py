"""Warm start: the pages' heavy one-time work begins when the server process starts, in one
background thread, not on the first visit of a page.

`start()` is called by the server's lifespan (app.py's st.App: when `streamlit run app.py` starts
the server, before anyone opens a page; before, it began with the first session's script run:
home page 5.4 s after `streamlit run`, now 4.4-4.7 s), and by app.py and the sidebar in a script run
(AppTest, a server that is not st.App); the first call in a process starts the thread, later ones
do nothing. The pages' defaults yield the device to a user (`yielding`). In order: the modules the
pages import (PyTorch, Torch-Pruning, ONNX Runtime, Plotly, pandas), the default dataset and model,
its baseline (what the home page shows; on disk across restarts, compression.metrics; not the home
card's latency and images/s, which the page times when it opens, ui.home_timing), then the
default results of the Pruning page (into its live cache, ui.live) and the Architecture page (its
conversion), so that opening them shows numbers at once; last the Quantization page's 8-bit default
(into its live cache), but only when its int8 kernel choice is on disk already
(compression/quantization/kernel_cache.py). It was left out before: the kernel search (~25 s for cnn
on 2 cores) held the device, and a slider moved meanwhile on another page waited for it (measured:
32 s to a pruning ratio's full result). With the choice on disk only the chosen kernel is built
(0.5 s), and the device is held for the full evaluation and latency like the Pruning default
(cnn on 2 cores shared with other work, load average ~8, 2026-12-02: held 4.6 s with the choice on
disk against 17.3 s with the search; looking the choice up, without the device, 1.0 s). On a machine that never measured it, the first visit of the page measures it (and keeps
it), and the next server start warms it. Each step runs through the same cached calls the pages
make, so a page that gets there first simply finds the value; a failure is logged and skipped (the
page then does the work itself and says what is wrong). COMPRESSION_WARM=0 turns it off.
"""

from __future__ import annotations

import contextlib
import importlib
import logging
import os
import threading
import time
from typing import AsyncIterator, Callable

log = logging.getLogger("compression.app")

MODULES = ("torch", "pandas", "plotly.graph_objects", "compression.pruning", "compression.quantization",
           "compression.quantization.kernels", "compression.architecture", "compression.dynamic",
           "compression.distillation", "compression.charts.runs", "compression.charts.pruning",
           "compression.charts.quantization", "ui.pruning", "ui.quantization")

_LOCK = threading.Lock()
_STATE: dict = {"thread": None, "done": [], "failed": [], "seconds": {}, "yielded": []}
QUIET = 1.0   # seconds the device must stay idle before a step that yielded to a user starts again
TRIES = 20    # a step that yielded this often is left to the page (it computes it when visited)


def enabled() -> bool:
    """On in a served app (`streamlit run`); off under AppTest (its Runtime is a stand-in: tests
    measure their own work) and with COMPRESSION_WARM=0."""
    if os.environ.get("COMPRESSION_WARM", "1") in ("0", "false", "no", ""):
        return False
    try:
        from streamlit.runtime import Runtime
        return Runtime.exists() and type(Runtime.instance()) is Runtime
    except (ImportError, RuntimeError):  # pragma: no cover
        return False


class _NoContextWarning(logging.Filter):
    """Drop Streamlit's "missing ScriptRunContext" warning for this thread: it runs outside any
    session by design (its cached calls are shared by every session), six lines per server start."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != "warm-start"


def start() -> threading.Thread | None:
    """Start the warm-up thread once per process (None when turned off)."""
    if not enabled():
        return None
    with _LOCK:
        if _STATE["thread"] is None:
            logging.getLogger("streamlit.runtime.scriptrunner_utils.script_run_context").addFilter(_NoContextWarning())
            _STATE["thread"] = threading.Thread(target=_run, name="warm-start", daemon=True)
            _STATE["thread"].start()
        return _STATE["thread"]


@contextlib.asynccontextmanager
async def lifespan(app) -> AsyncIterator[None]:
    """The server's lifespan (app.py's st.App): the warm start begins when the server starts."""
    start()
    yield


def status() -> dict:
    """Steps done and failed, with their seconds (benchmarks, tests)."""
    return {k: (list(v) if isinstance(v, list) else dict(v) if isinstance(v, dict) else v) for k, v in _STATE.items()
            if k != "thread"}


def _run() -> None:
    for name, step in _steps():
        start = time.perf_counter()
        try:
            step()
        except Exception:  # never fatal: the page does the work itself and says what is wrong
            log.warning("warm start: %s failed", name, exc_info=True)
            _STATE["failed"].append(name)
            continue
        _STATE["seconds"][name] = round(time.perf_counter() - start, 3)
        _STATE["done"].append(name)


def yielding(name: str, device: str, compute: Callable[[Callable[[], bool]], object]) -> object:
    """`compute(cancelled)`, cancelled as soon as a user's job waits for the device: the warm start
    never holds up a slider (measured before: the Architecture default's full evaluation held the
    device while a Pruning ratio's full result waited, 4.2 s slider -> full instead of ~1 s). It
    starts again once the device has been idle for QUIET seconds."""
    from compression.cancel import Cancelled, cancel_when
    from compression.device import device_queue
    queue = device_queue(device)
    wanted = lambda: queue.waiting() > 0  # noqa: E731
    for _ in range(TRIES):
        try:
            with cancel_when(wanted):  # evaluation batches and timing rounds check it (compression.cancel)
                return compute(wanted)
        except Cancelled:
            _STATE["yielded"].append(name)
            log.info("warm start: %s yielded the device to a user", name)
            quiet_since = time.monotonic()
            while time.monotonic() - quiet_since < QUIET:
                time.sleep(0.1)
                if not queue.idle():
                    quiet_since = time.monotonic()
    raise Cancelled(f"{name}: yielded {TRIES} times; the page computes it when visited")


def _steps() -> list[tuple[str, Callable[[], object]]]:
    from compression.device import get_device

    device = get_device().type
    dataset = "fashion-mnist"
    selected: dict = {}

    def imports() -> None:
        for module in MODULES:
            importlib.import_module(module)

    def data() -> None:
        from ui import cache
        from ui.sidebar import model_options
        selected["model"] = model_options(cache.dataset(dataset))[0]

    def model() -> None:
        from ui import cache
        cache.resolved(selected["model"], device, dataset)

    def baseline() -> None:
        from ui import cache
        cache.baseline(selected["model"], dataset, device)

    def pruning() -> None:  # the page's defaults: unstructured, ratio 0.5, per layer, one step
        from ui import live
        from ui.pruning import prune_work
        key, work = prune_work(selected["model"], dataset, device, "unstructured", 0.5, "layer", "l1", 1)
        yielding("pruning", device, lambda cancelled: live.precompute("prune", key, work, cancelled=cancelled))

    def architecture() -> None:  # the page's defaults: depthwise + low-rank at 90 % kept energy
        from compression.architecture import ArchitectureConfig
        from ui import architecture as arch
        from ui import live
        cfg = ArchitectureConfig(convert=("depthwise", "low-rank"), rank=None, energy=0.9, min_in_channels=1, seed=0)
        arch.baseline(selected["model"], dataset, device)
        key, work = arch.converted_work(selected["model"], dataset, device, tuple(cfg.to_dict().items()))
        yielding("architecture", device, lambda cancelled: live.precompute("architecture", key, work, cancelled=cancelled))

    def quantization() -> None:  # the page's defaults: uniform 8-bit, only with the int8 kernel choice on disk
        from ui import live
        from ui.quantization import default_config, kernel_on_disk, quant_work
        config = default_config()
        if not kernel_on_disk(selected["model"], dataset, device, config):
            log.info("warm start: Quantization default skipped (its int8 kernel is not measured on this machine yet)")
            return
        key, work = quant_work(selected["model"], dataset, device, config)
        yielding("quantization", device, lambda cancelled: live.precompute("quant", key, work, cancelled=cancelled))

    return [("imports", imports), ("dataset", data), ("model", model), ("baseline", baseline),
            ("pruning", pruning), ("architecture", architecture), ("quantization", quantization)]
