"""Bring your own model: any architecture (the zoo's, every torchvision classifier, timm, a Hugging
Face folder, installed entry points) with your weights, or published weights fine-tuned for your
classes; evaluated with progress, kept as a named model, then selected in the sidebar."""

from __future__ import annotations

import streamlit as st

from compression.weights import MAX_WEIGHTS_BYTES
from ui.sidebar import show_error

FAMILIES = ("Zoo architecture", "torchvision", "timm", "Hugging Face folder", "Entry point")
NORMALIZE = {"the architecture's own": None, "the dataset's mean/std": "dataset", "ImageNet's": "imagenet",
             "none (pixels in [0, 1])": "none"}


@st.cache_data(show_spinner=False)
def architectures(family: str) -> list[str]:
    """The references a family offers (searchable in the select box: type to filter)."""
    from compression.models import model_card, zoo_names
    from compression.refs import sources
    if family == "Zoo architecture":
        return [n for n in zoo_names() if model_card(n).get("source") in (None, "zoo")]
    kind = {"torchvision": "torchvision", "timm": "timm", "Entry point": "entry"}[family]
    try:
        return sources()[kind].references()
    except Exception:  # timm not installed: the family offers nothing, the caption says so
        return []


def _reference(family: str) -> str | None:
    if family == "Hugging Face folder":
        path = st.text_input("Folder saved with save_pretrained", key="home_byo_hf",
                             placeholder="/models/my-vit").strip()
        return f"hf:{path}" if path else None
    options = architectures(family)
    if not options:
        st.caption(f"No {family} architectures are available here.")
        return None
    return st.selectbox("Architecture", options, key="home_byo_base",
                        help="Type to search; torchvision and timm list every classification architecture.")


def upload_panel(device: str, dataset: str | None = None) -> None:
    with st.expander("Bring your own model"):
        st.caption(
            "Any architecture with your `state_dict` (saved with `torch.save(model.state_dict(), 'x.pt')`, or a "
            f".safetensors file, up to {MAX_WEIGHTS_BYTES // 2**20} MiB; read without unpickling code: a pickled "
            "model is refused), or torchvision/timm's published weights fine-tuned for this dataset's classes. "
            "It is evaluated on the sidebar's dataset, kept as a named model, and listed in the sidebar for "
            "every page.")
        family = st.radio("Architecture from", FAMILIES, key="home_byo_family", horizontal=True)
        reference = _reference(family)
        start = "Your weights file"
        if family in ("torchvision", "timm"):
            start = st.radio("Weights", ("Your weights file", "Published weights, fine-tuned here"),
                             key="home_byo_start", horizontal=True)
        upload, epochs = None, 0
        if start == "Your weights file" and family != "Hugging Face folder":
            upload = st.file_uploader("Weights file", type=["pt", "pth", "safetensors"], key="home_byo_file")
        elif family != "Hugging Face folder":
            epochs = st.number_input("Fine-tuning epochs", 1, 50, 1, key="home_byo_epochs")
        norm = st.selectbox("Normalization the weights expect", list(NORMALIZE), key="home_byo_norm",
                            help="torchvision and timm weights usually expect ImageNet's mean/std; a model trained "
                                 "on pixels in [0, 1] expects none. A wrong choice shows as accuracy near chance.")
        name = st.text_input("Name for the model", key="home_byo_name",
                             placeholder=f"{(reference or 'model').split(':')[-1].split('/')[-1]}-mine")
        ready = reference is not None and (upload is not None or epochs > 0 or family == "Hugging Face folder")
        if st.button("Load and evaluate", key="home_byo_go", disabled=not ready and upload is None):
            _add(reference, upload, epochs, NORMALIZE[norm], name.strip(), family, dataset, device)


def _add(reference, upload, epochs, normalize, name, family, dataset, device) -> None:
    from compression.evaluate import add_user_model
    from compression.models.named import add_named_model
    bar, line = st.progress(0.0, text="Checking the weights…"), st.empty()

    def progress(e: dict) -> None:
        if e.get("stage") == "fine-tuning":
            bar.progress(min(1.0, e["epoch"] / e["epochs"]),
                         text=f"Fine-tuning: epoch {e['epoch']} of {e['epochs']}, validation "
                              f"{e['val_accuracy'] * 100:.1f} %, about {e['eta_s']:.0f} s left")
        elif e.get("stage") == "evaluating":
            bar.progress(1.0, text="Evaluating on the test images…")
    options = {"normalize": normalize, "progress": progress}
    if family != "Zoo architecture":
        options["dataset"] = dataset
    try:
        if reference is None:
            raise _user_error("choose an architecture first")
        if upload is not None:
            card = add_user_model(reference, upload.getvalue(), name=name or None, filename=upload.name,
                                  device=device, **options)
        else:
            card = add_named_model(name or f"{reference.split(':')[-1].split('/')[-1]}-mine", reference,
                                   pretrained=epochs > 0, finetune_epochs=int(epochs), device=device, **options)
    except Exception as exc:
        bar.empty()
        show_error(exc)
        return
    line.empty()
    st.session_state["keep_sidebar_model"] = card["name"]
    if card["dataset"].startswith("imagefolder:"):  # select its dataset too
        st.session_state["keep_sidebar_dataset"] = card["dataset"]
    st.success(f"Added **{card['name']}**: {card['test_accuracy'] * 100:.2f} % on "
               f"{card['accuracy_n']:,} test images. It is now selected in the sidebar.")
    st.rerun()


def _user_error(text: str) -> Exception:
    from compression import CompressionError
    return CompressionError(text)


def contract_line(sel) -> None:
    """The input contract in use under the home card; near chance, a warning that names it and says
    how to set another (a wrong normalization is the usual cause)."""
    from compression.contract import chance_warning
    from ui import cache
    try:
        resolved = cache.resolved(sel.model, sel.device, sel.dataset)
        base = cache.baseline(sel.model, sel.dataset, sel.device)
    except Exception:  # the card above already said what is wrong
        return
    st.caption(f"Input contract: {resolved.contract.describe()}.")
    warning = chance_warning(base["accuracy"], resolved.dataset.num_classes, resolved.contract)
    ref = resolved.ref
    trained = ref.weights or ref.pretrained or ref.kind in ("zoo", "hf", "run")  # random inits are at chance by design
    if warning and trained:
        st.warning(warning.replace("--normalize", "`--normalize`").replace("on the home page: the normalization "
                                   "of the uploaded model", "here: add the model again under 'Bring your own model' "
                                   "with the normalization its training used"))
