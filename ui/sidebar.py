"""The sidebar every page shows: dataset, model, device and the job queue."""

from __future__ import annotations

import time
from dataclasses import dataclass

import streamlit as st

from compression import CompressionError
from compression.data import dataset_names
from compression.device import describe_device, device_queue, get_device, steady_allocator
from compression.models import expected_input, model_card, zoo_names


@dataclass(frozen=True)
class Selection:
    dataset: str
    model: str
    device: str


def _persistent_select(label: str, options: list[str], key: str, help: str | None = None) -> str:
    """A selectbox whose choice survives page switches (widget state does not, so keep a copy)."""
    keep = f"keep_{key}"
    if st.session_state.get(keep) not in options:
        st.session_state[keep] = options[0]
    st.session_state[key] = st.session_state[keep]
    return st.selectbox(label, options, key=key, help=help,
                        on_change=lambda: st.session_state.update({keep: st.session_state[key]}))


def compatible_models(dataset: str) -> list[str]:
    """Zoo models trained on this dataset first, then the rest."""
    names = zoo_names()
    own = [n for n in names if model_card(n)["dataset"] == dataset]
    return own or names


def sidebar() -> Selection:
    steady_allocator()  # once per server process: activations reuse pages (see its docstring)
    with st.sidebar:
        dataset = _persistent_select("Dataset", dataset_names(), "sidebar_dataset",
                                     help="Fashion-MNIST is installed locally; MNIST and CIFAR-10 download on first use.")
        models = compatible_models(dataset)
        model = _persistent_select("Model", models, "sidebar_model", help="Pretrained zoo models (assets/models/).")
        card = model_card(model)
        c, h, w, k = expected_input(model)
        st.caption(f"{card.get('description', '')} Input {c}x{h}x{w}, {k} classes; trained on {card['dataset']}.")
        device = get_device()
        st.markdown(f"**Device:** `{describe_device(device)}`")
        running, waiting = device_queue(device).status()
        if running is not None:  # a snapshot: the sidebar is drawn when the page (re)runs, not live
            st.caption(f"When this page loaded ({time.strftime('%H:%M:%S')}), the {device.type} was running: "
                       f"{running.label}" + (f" · {len(waiting)} waiting" if waiting else ""))
    return Selection(dataset=dataset, model=model, device=device.type)


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
