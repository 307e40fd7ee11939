"""Cached core calls for the Dynamic computation page. The exit table (every exit's verdict on
every test image) is computed once per model and device; everything the threshold slider shows is
then a vectorized sweep over it (milliseconds), so the page answers the slider at once."""

from __future__ import annotations

import pandas as pd
import streamlit as st
import torch

from compression.device import heavy_job
from compression.dynamic import (EarlyExitConfig, ExitTable, MultiExitNet, SlimmableCNN, WidthConfig, choose_thresholds,
                                 curve_thresholds, exit_table, slim_to_static, sweep,
                                 sweep_shared, width_result)
from compression.evaluate import dataset_for
from compression.metrics import Result, measure
from compression.model_kinds import is_multi_exit, is_slimmable
from compression.models import build_from_card, model_card, zoo_names
from ui import cache, jobs
from ui.sidebar import show_error


@st.cache_data(max_entries=16)
def block_choices(name: str, dataset: str, device: str) -> tuple[list[str], list[str]]:
    """(blocks an exit can follow, a default choice): the default is the model's top-level stacks
    of blocks but the last (layer1-3 of a ResNet), else two blocks a third and two thirds in."""
    from compression.dynamic.attach import block_candidates, default_blocks
    model = cache.model(name, device, dataset)
    return block_candidates(model), default_blocks(model)


def start_attach(name: str, dataset: str, device: str, blocks: list[str], epochs: int):
    """Exit heads after `blocks` of any model, trained in the background (backbone frozen), then
    kept as a named model (compression.dynamic.attach.save_attached)."""
    from compression.dynamic.attach import attach_exits, save_attached, train_heads
    from compression.training import TrainConfig
    resolved = cache.resolved(name, device, dataset)
    data = resolved.dataset  # seen through the model's input contract

    def work(job):
        model = attach_exits(resolved.model, blocks, data.input_shape, data.num_classes)  # a copy: shared model untouched
        trained = train_heads(model, data, TrainConfig(epochs=epochs), device=device, progress=job.progress,
                              should_stop=job.should_stop)
        if not trained.history:
            return None
        card = save_attached(trained.model, base=name, architecture=resolved.architecture, dataset=data,
                             device=device)
        return {"card": card, "history": trained.history, "stopped": trained.stopped}
    return jobs.start(ATTACH_JOB, f"exit heads for {name} after {', '.join(blocks)}", work, device=device)


ATTACH_JOB = "dynamic_attach_job"


@st.cache_data(max_entries=8)
def models_of_kind(dataset: str, kind: str) -> list[str]:
    """Zoo models trained on `dataset` that have early exits (kind 'exits') or widths ('slim')."""
    cls = MultiExitNet if kind == "exits" else SlimmableCNN
    return [n for n in zoo_names() if model_card(n)["dataset"] == dataset and isinstance(build_from_card(n), cls)]


def has_kind(name: str, dataset: str, device: str, kind: str) -> bool:
    """Whether model reference `name` (of any kind) has early exits (kind 'exits') or widths ('slim')."""
    model = cache.model(name, device, dataset)
    return is_multi_exit(model) if kind == "exits" else is_slimmable(model)


@st.cache_resource(max_entries=16, show_spinner="Running every exit over the images (once per model)…")
def table(name: str, dataset: str, device: str, split: str = "test") -> ExitTable:
    """Read only: shared by every session."""
    dataset_for(name, dataset)
    data = cache.model_dataset(name, device, dataset)
    with heavy_job(f"exit table of {name}", device):
        return exit_table(cache.model(name, device, dataset), data, split=split, device=device)


@st.cache_data(max_entries=64)
def suggested(name: str, dataset: str, device: str, criterion: str, shared: bool) -> tuple[float, ...]:
    """Thresholds with the fewest mean MACs within 1 point of the full network, chosen on val."""
    return choose_thresholds(table(name, dataset, device, "val"), criterion, shared=shared)


@st.cache_data(max_entries=64)
def curve(name: str, dataset: str, device: str, criterion: str) -> pd.DataFrame:
    """The accuracy-vs-mean-MACs curve over 200 thresholds shared by every exit."""
    t = table(name, dataset, device)
    taus = curve_thresholds(t, criterion, 200)
    s = sweep_shared(t, criterion, taus)
    return pd.DataFrame({"threshold": taus.numpy(), "accuracy": s.accuracy.numpy(), "macs": s.macs.numpy()})


def point(name: str, dataset: str, device: str, cfg: EarlyExitConfig) -> dict:
    """Accuracy, mean MACs, per-exit shares and accuracy, and where each image left (a few ms)."""
    t = table(name, dataset, device)
    s = sweep(t, cfg.criterion, [cfg.per_exit(t.num_exits)])
    exits = pd.DataFrame({"exit": [f"exit {k + 1}" + (" (full)" if k == t.num_exits - 1 else "")
                                   for k in range(t.num_exits)],
                          "share": s.shares[0].numpy(), "accuracy": s.exit_accuracy[0].numpy(),
                          "macs": list(t.costs)})
    return {"accuracy": float(s.accuracy[0]), "macs": float(s.macs[0]), "exits": exits,
            "exit_index": s.exit_index[0], "n": t.n,
            "full": {"accuracy": float(t.correct[-1].float().mean()), "macs": float(t.full_macs)}}


def examples(name: str, dataset: str, device: str, exit_index: torch.Tensor, k: int = 6) -> dict[str, list[dict]]:
    """Test images that left at the first exit and images that went all the way, with each exit's
    prediction and confidence (first k of each in test order)."""
    t = table(name, dataset, device)
    out = {}
    for group, where in (("first", 0), ("last", t.num_exits - 1)):
        idx = (exit_index == where).nonzero().flatten()[:k].tolist()
        out[group] = [{"index": i, "exit": where, "steps": [(int(t.preds[e, i]), float(t.confidence[e, i]))
                                                              for e in range(where + 1)]} for i in idx]
    return out


def measure_and_store(name: str, dataset: str, device: str, cfg: EarlyExitConfig, runtime: str = "eager") -> dict:
    """Time real early exit at batch 1 and batched against the full network; store the run (the
    registered `early-exit` method, as the CLI and pipelines run it, with the cached exit table).
    Early exit times itself in eager: another `runtime` is stored with that reason (runtime_fallback)."""
    from compression.methods import run_method
    with heavy_job(f"early-exit timing of {name}", device):
        result = run_method(name, cache.model_dataset(name, device, dataset), "early-exit", cfg, device=device,
                            model=cache.model(name, device, dataset), store=cache.run_store(),
                            options={"exit_table": table(name, dataset, device), "runtime": runtime})
    return {**result.to_dict(), "run_id": result.extra["run_id"]}


def store_width(name: str, dataset: str, device: str, width: float, runtime: str = "eager") -> int:
    """Keep one width as a run, with its file (the registered `width` method: the plain network
    at that width, as the CLI and pipelines store it), its latency timed on `runtime`."""
    from compression.methods import run_method
    with heavy_job(f"width {width} of {name}", device):
        result = run_method(name, cache.model_dataset(name, device, dataset), "width", {"width": width}, device=device,
                            model=cache.model(name, device, dataset), store=cache.run_store(),
                            options={"runtime": runtime})
    return result.extra["run_id"]


@st.cache_data(max_entries=8, show_spinner="Measuring every width (accuracy on the test set, MACs, latency)…")
def width_results(name: str, dataset: str, device: str) -> list[Result]:
    dataset_for(name, dataset)
    data = cache.model_dataset(name, device, dataset)
    model = cache.model(name, device, dataset)
    with heavy_job(f"widths of {name}", device):
        full = measure(slim_to_static(model, model.widths[-1]).to(device), data, device=device)
        return [width_result(model, data, WidthConfig(w), name=name, device=device, baseline=full)
                for w in model.widths]


def width_frame(results: list[Result]) -> pd.DataFrame:
    return pd.DataFrame([{"width": r.config["width"], "accuracy": r.metrics.accuracy, "macs": r.metrics.macs,
                          "latency_ms": r.metrics.latency_ms, "params": r.metrics.params,
                          "size_bytes": r.metrics.size_bytes, "macs_ratio": r.extra["macs_ratio"],
                          "latency_ratio": r.extra["latency_ratio"]} for r in results])


def attach_section(sel) -> None:
    """Exits for any model: heads after chosen blocks, trained with the backbone frozen (a job with
    a progress bar and Stop), kept as a named model the slider below then works on."""
    with st.expander(f"Attach exits to {sel.model}", expanded=True):
        st.caption("An exit head (average pool, one Linear layer) after each block you choose; only the heads "
                   "train, the model's own weights stay as they are. The model with its heads is kept under a "
                   "name in the model picker. CLI: `early-exit --attach BLOCKS`.")
        try:
            names, default = block_choices(sel.model, sel.dataset, sel.device)
        except Exception as exc:
            show_error(exc)
            return
        c1, c2, c3 = st.columns([4, 1, 2])
        blocks = c1.multiselect("Exit after", names, default=default, key="dynamic_attach_blocks",
                                help="Blocks in the order the model runs them; a cut inside a residual block is "
                                     "refused with its name.")
        epochs = c2.number_input("Epochs", 1, 20, 1, key="dynamic_attach_epochs", help="Heads only.")
        if c3.button("Attach and train the heads", key="dynamic_attach_start", type="primary", disabled=not blocks):
            try:
                start_attach(sel.model, sel.dataset, sel.device, sorted(blocks, key=names.index), int(epochs))
            except Exception as exc:
                show_error(exc)

        def show_result(job) -> None:
            out = job.result
            if not out:
                st.info("Stopped before the first epoch ended: nothing kept.")
                return
            card = out["card"]
            last = out["history"][-1]
            st.success(f"Kept as model **{card['name']}** ({len(out['history'])} epoch(s), validation accuracy of "
                       f"the heads' joint training {last['val_accuracy'] * 100:.2f} %).")
            st.button(f"Use {card['name']}", key="dynamic_attach_use", type="primary",
                      on_click=lambda: st.session_state.update(keep_sidebar_model=card["name"]))
        jobs.panel(ATTACH_JOB, lambda job: st.caption(
            f"Epoch {job.events[-1]['epoch']} of {job.events[-1]['epochs']}: validation accuracy "
            f"{job.events[-1]['val_accuracy'] * 100:.2f} %"), show_result)
