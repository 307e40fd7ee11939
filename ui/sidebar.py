"""The sidebar every page shows: dataset, model, device and the job queue."""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass

import streamlit as st

from compression import CompressionError
from compression.data import Dataset, dataset_names
from compression.data_status import dataset_availability
from compression.imagefolder import uploaded_names
from compression.device import describe_device, device_queue, get_device, steady_allocator
from compression.models import expected_input, model_card, zoo_names
from compression.refs import ENTRY, TORCHVISION, all_references, entry_points, parse, torchvision_architectures
from ui.navigation import use_app_navigation

IMAGE_FOLDER = "Image folder…"  # the dataset option that asks for a folder: imagefolder:<path>
TORCHVISION_FIRST = ("resnet18", "mobilenet_v2", "mobilenet_v3_small", "efficientnet_b0", "shufflenet_v2_x0_5",
                     "squeezenet1_1")  # small classifiers that run on 32x32 images; the rest follow


RUNTIME_LABELS = {"eager": "PyTorch eager", "compile": "torch.compile", "onnxruntime": "ONNX Runtime"}


@dataclass(frozen=True)
class Selection:
    dataset: str
    model: str
    device: str
    runtime: str = "eager"  # where latency is timed (compression.runtimes): pass it per call, never as a global


def _persistent_select(label: str, options: list[str], key: str, help: str | None = None, **kwargs) -> str:
    """A selectbox whose choice survives page switches (widget state does not, so keep a copy)."""
    keep = f"keep_{key}"
    if st.session_state.get(keep) not in options:
        st.session_state[keep] = options[0]
    st.session_state[key] = st.session_state[keep]
    return st.selectbox(label, options, key=key, help=help,
                        on_change=lambda: st.session_state.update({keep: st.session_state[key]}), **kwargs)


@st.cache_data(ttl=300, show_spinner=False)
def _availability() -> dict[str, tuple[bool, str]]:
    """Each registered dataset: usable here, in words (looked up every 5 minutes at most)."""
    return {name: dataset_availability(name) for name in dataset_names()}


def _persistent_text(label: str, key: str, **kwargs) -> str:
    """A text input whose value survives page switches (as _persistent_select)."""
    keep = f"keep_{key}"
    st.session_state.setdefault(keep, "")
    st.session_state[key] = st.session_state[keep]
    return st.text_input(label, key=key, on_change=lambda: st.session_state.update({keep: st.session_state[key]}),
                         **kwargs)


def _choose_dataset() -> str | None:
    """A registered dataset, or imagefolder:<path> from the folder typed in (None while empty)."""
    kept = st.session_state.get("keep_sidebar_dataset")
    if isinstance(kept, str) and kept.startswith("imagefolder:"):  # a shared link names the folder
        st.session_state.update({"keep_sidebar_folder": kept.split(":", 1)[1], "keep_sidebar_dataset": IMAGE_FOLDER})
    available = _availability()
    usable = [n for n in dataset_names() if available[n][0]] + uploaded_names()  # uploaded: compression.datasets_upload
    missing = [n for n in dataset_names() if not available[n][0]]
    choice = _persistent_select(
        "Dataset", usable + [IMAGE_FOLDER] + missing, "sidebar_dataset",
        format_func=lambda n: n if n not in available or available[n][0] else f"{n} (not installed)",
        help="; ".join(f"{n}: {available[n][1]}" for n in dataset_names())
             + "; an image folder holds train/<class>/ and test/<class>/ images of any size (resized to 32x32 "
               "unless its path ends in ?size=N); a zip of one can be uploaded on the home page.")
    if choice in missing:
        st.caption(f"{choice} is {available[choice][1]}.")
        return None
    if choice != IMAGE_FOLDER:
        return choice
    path = _persistent_text("Image folder", "sidebar_folder", placeholder="/data/flowers",
                            help="A folder with train/<class>/*.png and test/<class>/*.png (or val/); "
                                 "add ?size=224 for a larger side than 32.").strip()
    return f"imagefolder:{path}" if path else None


def _load_dataset(name: str | None) -> Dataset | None:
    """The dataset, or None with the reason in the sidebar: a missing folder is an error line; a
    dataset that is not installed here (and cannot be downloaded offline) a caption. With sign-in,
    a folder outside the data roots is refused before anything on disk is looked at."""
    from compression.access import check_data_folder
    from ui import cache
    if name is None:  # no folder typed yet (a dataset that is not installed said so already)
        if st.session_state.get("sidebar_dataset") == IMAGE_FOLDER:
            st.caption("Type the path of an image folder above.")
        return None
    try:
        if name.startswith("imagefolder:"):
            check_data_folder(name.split(":", 1)[1].split("?", 1)[0])
        return cache.dataset(name)
    except CompressionError as exc:
        if name.startswith("imagefolder:"):
            st.error(str(exc))
        else:
            st.caption(f"{name} is not available here: {exc}")
        return None


def _fits(name: str, data: Dataset) -> bool:
    c, h, w, classes = expected_input(name)
    return data.input_shape == (c, h, w) and data.num_classes == classes


def torchvision_options() -> list[str]:
    """Every torchvision classifier, the small ones that suit 32x32 images first."""
    archs = torchvision_architectures()
    return ([TORCHVISION + a for a in TORCHVISION_FIRST if a in archs]
            + [TORCHVISION + a for a in archs if a not in TORCHVISION_FIRST])


def model_options(data: Dataset) -> list[str]:
    """What the Model picker offers for a dataset: the zoo (and users') models trained on it (if
    none, those whose input and classes fit it), installed entry points (built for the dataset),
    then torchvision architectures when its images are RGB."""
    zoo = zoo_names()
    own = [n for n in zoo if model_card(n)["dataset"] == data.name] or [n for n in zoo if _fits(n, data)]
    entries = [r for r in all_references() if r.startswith(ENTRY)]
    return own + entries + (torchvision_options() if data.input_shape[0] == 3 else [])


def describe_model(reference: str, data: Dataset) -> str:
    """The caption under the picker: a zoo or named model's card, else what the reference is, with
    the input and classes it is built for (from the dataset)."""
    ref = parse(reference)
    if ref.kind == "run":
        return f"Stored run {reference[4:]}'s model (its artifact), continued from where that run left it."
    if ref.kind == "zoo":
        card = model_card(reference)
        c, h, w, k = expected_input(reference)
        own = "" if card.get("source") in (None, "zoo") else f" Named model ({card['source']}, {card.get('reference')})."
        return f"{card.get('description', '')}{own} Input {c}x{h}x{w}, {k} classes; trained on {card['dataset']}."
    c, h, w = data.input_shape
    shape = f"Input {c}x{h}x{w}, {data.num_classes} classes, from the dataset."
    if ref.kind == "torchvision":
        return (f"torchvision's {reference[len(TORCHVISION):]} with random weights (seeded, not trained): "
                f"the methods act on its architecture; its accuracy is chance until trained. {shape}")
    ep = entry_points()[reference[len(ENTRY):]]
    return f"Built by `{ep.value}`, an entry point of an installed package ({ep.group}). {shape}"


def sidebar() -> Selection:
    use_app_navigation()  # a link straight to a page, first after a restart
    from ui import auth, warm
    from ui.navigation import refuse_if_not_allowed
    user = auth.require_sign_in()  # with sign-in configured: nothing below runs for a stranger
    refuse_if_not_allowed(sys._getframe(1).f_code.co_filename, user)  # a page opened by its URL
    warm.start()  # once per process (app.py starts it first, unless a page was opened by a link)
    steady_allocator()  # once per server process: activations reuse pages (see its docstring)
    from ui.cache import CURRENT_DATASET
    with st.sidebar:
        auth.account_box(user)
        dataset = _choose_dataset()
        data = _load_dataset(dataset)
        if data is not None:
            st.session_state[CURRENT_DATASET] = dataset
            model = _persistent_select("Model", model_options(data), "sidebar_model",
                                       help="Zoo and named models (yours, added on the home page or with `models add`) "
                                            "for this dataset, installed entry-point models, and for RGB images "
                                            "torchvision architectures (random weights).")
            model = choose_start(model, dataset) or model
            st.caption(describe_model(model, data))
        device = get_device()
        st.markdown(f"**Device:** `{describe_device(device)}`")
        runtime = choose_runtime()
        running, waiting = device_queue(device).status()
        if running is not None:  # a snapshot: the sidebar is drawn when the page (re)runs, not live
            st.caption(f"When this page loaded ({time.strftime('%H:%M:%S')}), the {device.type} was running: "
                       f"{running.label}" + (f" · {len(waiting)} waiting" if waiting else ""))
        _show_executor()
    if data is None:  # the reason is in the sidebar; nothing on the page can run without data
        st.info("Choose a dataset in the sidebar that can be loaded here.")
        st.stop()
    return Selection(dataset=dataset, model=model, device=device.type, runtime=runtime)


def starting_points(model: str, dataset: str) -> list[dict]:
    """Kept runs of `model` on `dataset` (starred or named ones) with an artifact: what a page can
    continue from (`run:<id>`), newest first."""
    from ui import cache
    try:
        return cache.run_store().runs(model=model, dataset=dataset, kept=True, limit=20)  # newest first
    except Exception:  # an unreadable store: no starting points, the page still works
        return []


def choose_start(model: str, dataset: str) -> str | None:
    """'Start from': the model itself, or one of its kept runs (run:<id>); None for the model."""
    runs = starting_points(model, dataset)
    if not runs:
        return None
    labels = {"": "the model itself"}
    for r in runs:
        labels[f"run:{r['id']}"] = (f"run {r['id']}: {r.get('name') or r['method']}"
                                    f"{' *' if r.get('starred') else ''} ({r['accuracy'] * 100:.1f} %)")
    import hashlib
    key = hashlib.sha256(f"{model}|{dataset}".encode()).hexdigest()[:10]  # stable across server restarts
    choice = _persistent_select("Start from", list(labels), f"sidebar_start_{key}",
                                format_func=labels.get,
                                help="Continue from a kept (starred or named) run of this model: every page then "
                                     "compresses that run's model, and the new runs record it as their parent.")
    return choice or None


def choose_runtime() -> str:
    """The runtime latency is timed on (eager, compile, onnxruntime), kept across pages like the model."""
    from compression.runtimes import RUNTIMES
    return _persistent_select(
        "Latency runtime", list(RUNTIMES), "sidebar_runtime", format_func=RUNTIME_LABELS.get,
        help="Where every latency on these pages is timed, the baseline on the same runtime as the result: "
             "PyTorch eager (the module as given), torch.compile (TorchInductor: compiles C++ for each model, "
             "6-36 s here) or ONNX Runtime (the exported graph, CPU only). Accuracy is always measured in "
             "eager. A runtime that cannot run a model falls back to eager and the result says why.")


def _show_executor() -> None:
    """Where sweeps and search trials run. With COMPRESSION_CLUSTER set, the cluster is started (or
    joined) here, on whichever page opens first, so every page's sweeps use it."""
    from ui import cluster as ui_cluster
    if not ui_cluster.setting():
        st.caption("**Sweeps:** in-process (set COMPRESSION_CLUSTER for a Dask cluster)")
        return
    c = ui_cluster.cluster()
    if c.error:
        st.caption(f"**Sweeps:** in-process; COMPRESSION_CLUSTER={c.setting} is not in use: {c.error}")
    else:
        st.caption(f"**Sweeps:** {c.describe}")


def cli_dataset(sel: Selection) -> str:
    """' --dataset X' for a command line that should run on the sidebar's dataset, when the
    model's own default is another (torchvision references have none)."""
    import shlex

    from compression.refs import default_dataset
    return "" if default_dataset(parse(sel.model)) == sel.dataset else f" --dataset {shlex.quote(sel.dataset)}"


def load_selection(sel: Selection):
    """The chosen dataset and the model's baseline metrics (both cached); if they cannot be had
    (missing data, a model that does not fit the dataset), the message, and the page stops there."""
    from compression.evaluate import dataset_for
    from ui import cache
    try:
        data = cache.dataset(sel.dataset)
        dataset_for(sel.model, sel.dataset)
        return data, cache.baseline(sel.model, sel.dataset, sel.device)
    except Exception as exc:  # keep the app usable: say what is wrong
        show_error(exc)
        st.stop()


def show_error(exc: Exception) -> None:
    """User errors as a one-line message; anything else logged server side, short message here."""
    if isinstance(exc, CompressionError):
        st.error(str(exc))
    else:
        import logging
        logging.getLogger("compression.app").error("unexpected error on a page", exc_info=exc)
        st.error(f"Something went wrong ({type(exc).__name__}: {str(exc)[:200]}). The details are in the server log.")
