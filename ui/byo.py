"""Bring your own weights: upload a state_dict for a zoo architecture and use it like a zoo model."""

from __future__ import annotations

import streamlit as st

from compression.evaluate import add_user_model
from compression.models import model_card, zoo_names
from compression.weights import MAX_WEIGHTS_BYTES
from ui.sidebar import show_error


def upload_panel(device: str) -> None:
    with st.expander("Bring your own weights"):
        st.caption(
            "Upload a `state_dict` saved with `torch.save(model.state_dict(), 'x.pt')` (.pt/.pth) or a "
            f".safetensors file, up to {MAX_WEIGHTS_BYTES // 2**20} MiB, for one of the zoo architectures. "
            "Files are read without unpickling code: a pickled model or object is refused. "
            "The model is evaluated and then listed in the sidebar for every page.")
        bases = [n for n in zoo_names() if model_card(n).get("source") != "uploaded"]
        base = st.selectbox("Architecture", bases, key="home_byo_base")
        upload = st.file_uploader("Weights file", type=["pt", "pth", "safetensors"], key="home_byo_file")
        name = st.text_input("Name for the model", key="home_byo_name", placeholder=f"{base}-mine")
        if st.button("Load and evaluate", key="home_byo_go", disabled=upload is None):
            try:
                with st.spinner("Checking and evaluating the weights…"):
                    card = add_user_model(base, upload.getvalue(), name=name.strip() or None,
                                          filename=upload.name, device=device)
            except Exception as exc:
                show_error(exc)
                return
            st.session_state["keep_sidebar_model"] = card["name"]
            st.success(f"Added **{card['name']}**: {card['test_accuracy'] * 100:.2f} % on "
                       f"{card['accuracy_n']:,} test images. It is now selected in the sidebar.")
            st.rerun()
