"""Image folders on the home page: a folder uploaded as a .zip (compression.datasets_upload), kept
as a named dataset and selected in the sidebar; and what was left out of a folder while loading it
(compression.imagefolder: Dataset.warnings)."""

from __future__ import annotations

import streamlit as st

from compression import CompressionError
from compression.data import Dataset
from compression.datasets_upload import UploadLimits, add_zip, name_from_file

SHOWN = 20  # problems listed at most; the count says how many there are


def upload_limit_bytes() -> int:
    """The smaller of Streamlit's upload limit (server.maxUploadSize, MiB) and the library's."""
    return min(int(st.get_option("server.maxUploadSize")) << 20, UploadLimits().max_zip_bytes)


def dataset_upload_panel() -> None:
    """An expander: a zip of train/<class>/ and test/<class>/ becomes a dataset in the sidebar."""
    from compression.access import allowed
    with st.expander("Bring your own images (.zip of an image folder)"):
        if not allowed("upload"):  # a viewer: the library refuses it too (compression.datasets_upload)
            st.caption("Uploading a dataset needs the editor role.")
            return
        limit = upload_limit_bytes()
        st.caption(
            f"A .zip (up to {limit >> 20} MiB) holding `train/<class>/` and `test/<class>/` (or `val/`) folders of "
            "JPEG, PNG or WebP images of any size. It is kept on this server as a named dataset, usable on every "
            "page and as `--dataset NAME` on the command line. Links, paths outside the folder and zip bombs are "
            "refused.")
        upload = st.file_uploader("Zip file", type=["zip"], key="home_zip_file")
        suggested = name_from_file(upload.name) if upload is not None else ""
        name = st.text_input("Dataset name", key="home_zip_name", placeholder=suggested or "flowers")
        if st.button("Add the dataset", key="home_zip_go", disabled=upload is None):
            try:
                if upload.size > limit:
                    raise CompressionError(f"the zip file is {upload.size:,} bytes; the limit here is {limit:,}")
                chosen = name.strip() or suggested
                with st.spinner("Checking and extracting the zip…"):
                    add_zip(upload, chosen, limits=UploadLimits(max_zip_bytes=limit))
            except CompressionError as exc:  # AccessDenied too
                st.error(str(exc))
                return
            st.session_state["keep_sidebar_dataset"] = chosen
            st.session_state["home_zip_added"] = chosen
            st.rerun()
        added = st.session_state.get("home_zip_added")
        if added and st.session_state.get("keep_sidebar_dataset") == added:  # until another dataset is chosen
            st.success(f"Added the dataset **{added}**: it is selected in the sidebar.")


def dataset_problems(data: Dataset) -> None:
    """A warning with what was left out of an image folder (empty classes, files that are not images)."""
    if not data.warnings:
        return
    n = len(data.warnings)
    st.warning(f"{n} problem{'s' if n != 1 else ''} in `{data.source}`; the rest loaded "
               f"({len(data.train) + len(data.val):,} training and {len(data.test):,} test images): "
               + data.warnings[0], icon=":material/warning:")
    if n > 1:
        more = "\n".join(f"- `{w}`" for w in data.warnings[1:SHOWN])
        st.caption(more + (f"\n\n…and {n - SHOWN} more." if n > SHOWN else ""))
