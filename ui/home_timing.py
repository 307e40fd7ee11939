"""The home page's latency and images/s: timed on the sidebar's runtime when the page asks, in the
background (ui.live), never read from disk.

Accuracy, size and MACs of a baseline do not change and are kept on disk (compression.metrics);
a latency does change with the machine's load. The warm start measured it once at server start,
while the browser started beside it on 2 cores, and kept that on disk: the card read 1.32 ms for a
model that runs in 0.23 ms on a quiet machine. So the card times the model itself, once per server
(or when a person presses "Re-time"), shows each median with its spread (the half-width of its
95 % interval, compression.timing), when it was timed and how many cores other programs kept busy
meanwhile (compression.timing.OtherCpu: a steady load slows every round alike, which no spread
shows). A busy timing is shown at once, marked, and timed once more by itself RETIME_AFTER seconds
later. The page draws everything else first."""

from __future__ import annotations

import os
import time
from typing import Any

import streamlit as st

from compression.charts.format import fmt_ms, fmt_ms_spread
from compression.device import eval_batch_size, heavy_job
from compression.progressive import Stage
from compression.runtime_table import time_model
from ui import cache, live

PAGE = "home-timing"
BATCHES = (1, 256)   # batch 1, and the evaluation's batch (fewer for large images: batches())
NOISY = 0.25         # a spread above this share of its median: the machine was busy while timing
BUSY_CORES = 0.5     # other programs using more than this many cores while timing: busy too
RETIME_AFTER = 5.0   # seconds after a busy timing before it is timed once more, by itself
#                      (2 s was too soon on 2 cores: Chromium was still drawing the page it had just loaded)


def noisy(t: dict[str, Any]) -> bool:
    """A wide spread, or other programs busy meanwhile (that slows every round alike: no spread shows it)."""
    return (any(r["spread_ms"] > NOISY * r["median_ms"] for r in t["rows"])
            or (t.get("other_cores") or 0.0) > BUSY_CORES)


def batches(device: str, shape: tuple[int, ...]) -> tuple[int, int]:
    """Batch 1, and the batch the test set is evaluated in (256 up to 3 x 32 x 32; 16 for 224-px photos,
    whose activations at 256 took ~3 GB)."""
    return (1, min(BATCHES[-1], eval_batch_size(device, shape)))


def timing(name: str, dataset_name: str, device: str, runtime: str) -> dict[str, Any] | None:
    """The timing of the model on `runtime` ({runtime, fallback, rows, timed_at}), or None while it is
    being timed (the page reruns when it lands); an error raises here."""
    key = (name, dataset_name, device, runtime)

    def work(cancelled) -> Any:
        model = cache.model(name, device, dataset_name)
        shape = cache.model_dataset(name, device, dataset_name).input_shape

        def timed() -> dict[str, Any]:
            with heavy_job(f"time {name}", device):  # one heavy job at a time: nothing of ours runs beside it
                out = time_model(model, shape, device, runtime, batch_sizes=batches(device, shape))
            return {**out, "timed_at": time.strftime("%H:%M:%S %Z")}
        first = timed()
        if not noisy(first):
            yield Stage("timed", first, final=True)
            return
        yield Stage("noisy", first)  # shown, with its wide spread, while the machine settles
        end = time.monotonic() + RETIME_AFTER
        while time.monotonic() < end:
            if cancelled():
                return
            time.sleep(0.1)
        again = timed()
        yield Stage("timed", {**again, "first": first}, final=True)

    entry = live.result(PAGE, key, work, first_wait=0.0)
    if entry is None or entry.latest is None:
        if entry is not None and entry.error is not None:
            raise entry.error
        return None
    return entry.latest.value


def retime(name: str, dataset_name: str, device: str, runtime: str) -> None:
    """Forget the timing so the next run times again."""
    live.stage_cache(PAGE).drop((name, dataset_name, device, runtime))


def show(cols, below, name: str, dataset_name: str, device: str, runtime: str, runtime_label: str) -> None:
    """Fill the latency and images/s metrics in `cols` (two columns), and in the container `below`
    a line with both medians, their spreads and when they were timed, and a Re-time button."""
    t = timing(name, dataset_name, device, runtime)
    if t is None:
        cols[0].metric("Latency (batch 1)", "timing…", help=f"Being timed on {runtime_label}, {device}.")
        big = batches(device, cache.dataset(dataset_name).input_shape)[-1]
        cols[1].metric("Images / s", "timing…", help=f"Batch {big}, being timed on {runtime_label}, {device}.")
        return
    one, big = t["rows"]
    where = f"{runtime_label}, {device}"
    cols[0].metric("Latency (batch 1)", fmt_ms(one["median_ms"]),
                   help=f"Median over interleaved rounds on {where}; 95 % interval of the median "
                        f"{one['lo_ms']:.3f}–{one['hi_ms']:.3f} ms.")
    cols[1].metric("Images / s", f"{big['images_per_s']:,.0f}",
                   help=f"Batch {big['batch']} on {where}: {big['batch'] / big['hi_ms'] * 1000:,.0f}–"
                        f"{big['batch'] / big['lo_ms'] * 1000:,.0f} "
                        "images/s (the 95 % interval of the median batch time).")
    text, button = below.columns([8, 1], vertical_alignment="center")
    line = (f"Latency {fmt_ms_spread(one['median_ms'], one['spread_ms'])} at batch 1, "
            f"{fmt_ms_spread(big['median_ms'], big['spread_ms'])} per batch of {big['batch']}; timed at {t['timed_at']} on "
            f"{where} (± is the half-width of the 95 % interval of the median).")
    if t.get("other_cores") is not None:
        line += f" Other programs kept {t['other_cores']:.1f} of {os.cpu_count()} cores busy meanwhile."
    if t["fallback"]:
        line += f" {t['fallback']}."
    if "first" in t:
        f = t["first"]["rows"][0]
        line += (f" Timed twice: the machine was busy during the first timing, at {t['first']['timed_at']} "
                 f"({fmt_ms_spread(f['median_ms'], f['spread_ms'])} at batch 1"
                 + (f", other programs {t['first']['other_cores']:.1f} cores" if t["first"].get("other_cores") is not None
                    else "") + ").")
    if noisy(t):
        line += " :orange[The machine was busy while timing: Re-time when it is quiet.]"
    text.caption(line)
    from compression.access import allowed
    if allowed("run jobs") and button.button("Re-time", key="home_retime", help="Time latency and images/s again now."):
        retime(name, dataset_name, device, runtime)
        st.rerun()
