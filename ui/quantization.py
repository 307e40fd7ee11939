"""Cached core calls, staged live results and background jobs for the Quantization page (the core
does the work). A post-training run answers in stages (ui.live, like the Pruning page): accuracy on
a stratified sample of the test images with its interval, the packed file's bytes and bits per weight at once, then
all test images and latency (at 8 bits the int8 kernel, its choice on disk: kernel_cache.py)."""

from __future__ import annotations

import json
from typing import Any

import streamlit as st

from compression.charts.format import fmt_accuracy_ci, fmt_bytes, fmt_change, fmt_ms, fmt_pct, plural
from compression.charts.quantization import layer_table
from compression.device import heavy_job
from compression.honesty import simulated_metrics
from compression.methods import save_run
from compression.previews import to_preview
from compression.progressive import Stage
from compression.quantization import (QuantConfig, bit_configs, layer_sensitivity, quantizable_layers,
                                      quantize_zoo_model, staged_quantize, sweep, weight_histogram)
from ui import cache, jobs, live, results
from ui.downloads import model_download
from ui.keep import keep_button


def config_from(d: dict[str, Any]) -> QuantConfig:
    return QuantConfig(**d)


def _stored(result, artifact: bytes) -> dict[str, Any]:
    """A finished job's result, stored with its artifact file."""
    run_id = save_run(result, artifact, store=cache.run_store())
    return {"result": {**result.to_dict(), "run_id": run_id}, "artifact": artifact}


def _preview(result, artifact: bytes) -> dict[str, Any]:
    """A slider's result: shown and cached, stored only when kept (ui.keep)."""
    preview = to_preview(result, artifact)
    return {"result": {**preview["result"], "run_id": None}, "artifact": artifact, "preview": preview}


def subset_view(part, model: str, dataset: str, device: str) -> dict[str, Any]:
    """The first stage for the page: accuracy on the preview sample of test images (with its interval, against
    the float model on the same images), the packed file's bytes and bits per weight (the same
    bytes the full stage writes), the layer table; latency, Keep and the download come with the full
    result."""
    r = part.to_dict()
    weights = max(1, sum(row["params"] for row in r["layers"]))
    r.update(model=model, dataset=dataset, device=device, method="quantize", run_id=None,
             baseline={"accuracy": part.baseline_accuracy, "accuracy_n": part.accuracy_n},
             bits_per_weight=round(8 * part.size_bytes / weights, 3),  # as the full result's (method.py)
             simulated=True, simulated_metrics=["latency_ms"])
    return {"stage": "subset", "result": r}


_SEARCHING: dict[tuple, dict] = {}  # key -> the newest tick of its int8 kernel search (written by its worker)


def quant_work(model: str, dataset: str, device: str, config: dict[str, Any],
               runtime: str = "eager") -> tuple[tuple, Any]:
    """(key, work) of one post-training run in stages: what live_quantize asks for (ui.warm too).
    While its full stage searches the int8 kernel, each stage of that search (naming the candidate)
    is kept for the page's progress bar (kernel_search_bar, drawn by the page's poll)."""
    from compression.training import tick_sink
    data, base, cfg = cache.model_dataset(model, device, dataset), cache.model(model, device, dataset), config_from(config)
    key = (model, dataset, device, json.dumps(config, sort_keys=True, default=str))
    key = key if runtime == "eager" else (*key, runtime)  # eager: the key the warm start fills

    def view(stage: Stage) -> dict[str, Any]:
        if stage.final:
            result, qm = stage.value
            return _preview(result, qm.artifact)
        return subset_view(stage.value, model, dataset, device)

    def note(tick: dict) -> None:
        if tick["phase"].startswith("int8 kernel search"):
            _SEARCHING[key] = tick

    def work(cancelled):
        try:
            with tick_sink(note):  # this generator runs in the live runner's thread: its ticks come here
                yield from live.on_device(staged_quantize(model, cfg, dataset=data, device=device, model=base,
                                                          cancelled=cancelled, runtime=runtime),
                                          f"quantize {model} {cfg.label()}", device, view)
        finally:
            _SEARCHING.pop(key, None)
    return key, work


def kernel_search_bar(key: tuple) -> None:
    """The int8 kernel search of the result being measured, as a bar naming its candidate (nothing
    before the search starts, or without one): drawn by the page's poll while the result is pending."""
    tick = _SEARCHING.get(key)
    if tick and tick.get("total"):
        st.progress(min(1.0, tick["done"] / tick["total"]),
                    text=f"{tick['phase']} ({tick['done']} of {tick['total']})")


def default_config() -> dict[str, Any]:
    """The page's widgets as they open (uniform 8-bit, per channel, symmetric, no activation bits,
    512 calibration images, no QAT, no per-layer bits): what ui.warm computes ahead."""
    return QuantConfig(method="uniform", bits=8, granularity="channel", symmetric=True, activation_bits=None,
                       calibration_size=512, qat_epochs=0, layer_bits={}).to_dict()


def kernel_on_disk(model: str, dataset: str, device: str, config: dict[str, Any]) -> bool:
    """Whether the int8 kernel choice for this run is on disk already (kernel_cache.py), or the run
    needs none: then its full stage holds the device only to measure, not to time every candidate."""
    from compression.quantization import quantize
    from compression.quantization.kernel_cache import known
    from compression.quantization.kernels import kernel_eligibility
    cfg = config_from(config)
    if not kernel_eligibility(cfg, device)[0]:
        return True
    data = cache.model_dataset(model, device, dataset)
    return known(quantize(cache.model(model, device, dataset), cfg, dataset=data, device=device).model, data, cfg) is not None


def live_quantize(model: str, dataset: str, device: str, config: dict[str, Any], runtime: str = "eager"):
    """One post-training run (no QAT), in stages (ui.live): the entry now (None while nothing is
    ready; its latest stage's value a subset_view, then the full result, a preview)."""
    key, work = quant_work(model, dataset, device, config, runtime)
    return live.result("quant", key, work, pending=lambda: kernel_search_bar(key))


def start_qat(key: str, model: str, dataset: str, device: str, config: dict[str, Any], runtime: str = "eager") -> None:
    """QAT in the background: progress per epoch, Stop keeps the epochs done, result stored."""
    cfg = config_from(config)

    def work(job: jobs.Job) -> dict[str, Any]:
        result, qm = quantize_zoo_model(model, cfg, dataset=dataset, device=device, progress=job.progress,
                                        should_stop=job.should_stop, runtime=runtime)
        return _stored(result, qm.artifact)
    jobs.start(key, f"QAT {model}: {cfg.label()}", work, device=device)


def start_sweep(key: str, model: str, dataset: str, device: str, configs: list[dict[str, Any]],
                runtime: str = "eager") -> None:
    """Sweep in the background, each point a sweep job (compression.sweep: in-process, or on the
    configured cluster): one stored result per point, with its artifact; Stop keeps the points measured."""
    cfgs = [config_from(c) for c in configs]

    def work(job: jobs.Job) -> list[dict[str, Any]]:
        return [result.to_dict() for result in sweep(model, cfgs, dataset=dataset, device=device, progress=job.progress,
                                                     should_stop=job.should_stop, store=cache.run_store(),
                                                     runtime=runtime)]
    jobs.start(key, f"sweep {model}: {plural(len(cfgs), 'point')}", work, device=device)


def sweep_configs(base: dict[str, Any], methods: list[str], bits: list[int]) -> list[dict[str, Any]]:
    out = []
    for method in methods:
        cfg = QuantConfig(**{**base, "method": method, "bits": 8, "layer_bits": {}, "qat_epochs": 0})
        if method in ("binary", "ternary"):
            out.append(cfg.to_dict())
        else:
            out += [c.to_dict() for c in bit_configs(cfg, [b for b in bits if b <= 8 or method == "uniform"])]
    return out


@st.cache_data(max_entries=32)
def layers(model: str, dataset: str, device: str) -> list[dict[str, Any]]:
    return [{"layer": n, "type": type(m).__name__, "weights": int(m.weight.numel())}
            for n, m in quantizable_layers(cache.model(model, device, dataset))]


@st.cache_data(max_entries=64, show_spinner="Quantizing one layer at a time…")
def sensitivity(model: str, dataset: str, device: str, config: dict[str, Any]) -> list[dict[str, Any]]:
    with heavy_job(f"sensitivity {model}", device):
        return layer_sensitivity(cache.model(model, device, dataset), config_from(config), cache.model_dataset(model, device, dataset),
                                 device=device, limit=2000)


@st.cache_data(max_entries=64)
def histogram(model: str, dataset: str, device: str, layer: str, config: dict[str, Any]) -> dict[str, Any]:
    return weight_histogram(cache.model(model, device, dataset), layer, config_from(config))


def _kernel_note(r: dict[str, Any]) -> str:
    """How the int8 kernel that timed the latency was chosen (measured now, or read from disk)."""
    k = r["kernel"]
    timings = ", ".join(f"{n} {c['batch_ms']:.2f} ms" for n, c in k["candidates"].items() if "batch_ms" in c)
    out = [f"{n} ({c['ruled_out'].split(' in a quick')[0]})" for n, c in k["candidates"].items() if "ruled_out" in c]
    timings += f"; ruled out by a quick estimate: {', '.join(out)}" if out else ""
    when = (f"chosen by measurement on {k.get('measured_at', 'an earlier run')} and kept on disk for these weights, "
            "config, dataset and machine (the candidates were not re-timed now; the latency below was)"
            if k.get("cached") else "chosen by measurement")
    return (f"Latency from a real int8 kernel: **{k['description']}**, {when} at batch {k['batch']} ({timings}). "
            f"Its own accuracy: {fmt_pct(k['accuracy'])} on {k['accuracy_n']:,} test images. At batch {k['batch']}, "
            f"against PyTorch float32: {fmt_change(1, k['speedup_vs_torch_fp32'], 'latency_ms').text}; against ONNX "
            f"Runtime float32: {fmt_change(1, k['speedup_vs_ort_fp32'], 'latency_ms').text}"
            + (f"; against torch.compile float32 with the same options: "
               f"{fmt_change(1, k['speedup_vs_runtime_fp32'], 'latency_ms').text}"
               if k.get("runtime_reference") == "inductor-fp32" and k.get("speedup_vs_runtime_fp32") else "") + ".")


def result_card(view: dict[str, Any], base: dict[str, Any]) -> None:
    """The measured numbers against the float32 model. A first stage (view["stage"] == "subset") says
    on how many test images its accuracy is, against the float model on the same images; latency
    says it is being measured; Keep and the download come with the full result."""
    r = view["result"]
    partial = view.get("stage") == "subset"
    b = base if partial else r["baseline"]
    st.subheader(f"{r['model']}: {r['label']}")
    cols = st.columns(4)
    if partial:
        results.accuracy_metric(cols[0], "Test accuracy", fmt_pct(r["accuracy"]), r, r["baseline"],
                                help=f"{fmt_accuracy_ci(r['accuracy'], r['accuracy_n'])}; the float model on the same "
                                     f"images: {fmt_pct(r['baseline']['accuracy'])}. All {r['of']:,} test images follow.")
    else:
        results.accuracy_metric(cols[0], "Test accuracy", fmt_pct(r["accuracy"]), r, b,
                                help=fmt_accuracy_ci(r["accuracy"], r["accuracy_n"]))
    results.cost_metric(cols[1], "Stored size", fmt_bytes(r["size_bytes"]), r, b, "size_bytes",
                        help=f"Length of the packed artifact (download below); float32: {fmt_bytes(b['size_bytes'])}.")
    cols[2].metric("Bits per weight", f"{r['bits_per_weight']:.2f} bits", help="8 x stored bytes / weights, all included")
    k = r.get("kernel") or {}
    linear_only = k.get("chosen") == "ort-static-linear"
    simulated = "latency_ms" in simulated_metrics(r)
    if partial:
        cols[3].metric("Latency (batch 1)", "measuring…", help="Timed with the full result (at 8 bits: the int8 kernel).")
    else:
        kernel = "" if simulated else (" · int8 Linear, float conv" if linear_only else " · int8 kernel")
        results.cost_metric(cols[3], "Latency (batch 1)", fmt_ms(r["latency_ms"]), r, b, "latency_ms",
                            help=results.latency_help(r, b, "float32 model") + kernel)
    results.accuracy_caption(r, partial, "the float model")
    results.sanity_note(r)
    st.markdown(f"**Quantized:** {r['coverage']}. Biases and BatchNorm stay float32.")
    if partial:
        pass
    elif simulated:
        results.honesty_note(r, f"Latency source: the {r['latency_source']}.")
    else:
        results.honesty_note(r, _kernel_note(r))
        if linear_only:
            kinds = [row["kind"] for row in r["layers"] if row["quantized"]]
            convs, linears = sum(x.startswith("Conv") for x in kinds), sum(x == "Linear" for x in kinds)
            whole = k["candidates"].get("ort-static", {})
            every, how = (whole["batch_ms"], "") if "batch_ms" in whole else (whole.get("quick_ms"), " in a quick estimate")
            mine = k["candidates"]["ort-static-linear"]
            st.caption(f"The stored file holds {len(kinds)} quantized layers. This kernel runs the {linears} "
                       f"Linear layer(s) in int8 and the {convs} convolution(s) in float32 with those same 8-bit "
                       "weights" + (f": with every layer in int8 (ort-static) the same batch took {every:.2f} ms{how} "
                                    f"against {mine['quick_ms' if how else 'batch_ms']:.2f} ms."
                                    if every else "."))
    st.dataframe(layer_table(r["layers"]), hide_index=True, width="stretch")
    if partial:
        return  # Keep and the download come with the full result
    if view.get("preview"):
        keep_button(view["preview"], what="quantized model")
    preview = view.get("preview") if not r.get("run_id") else None
    model_download(f"quant_{r.get('run_id') or (preview or {}).get('key')}", r, artifact=view["artifact"],
                   preview=preview, what="quantized model")
