"""The sweep executor the app uses (COMPRESSION_CLUSTER, compression.sweep.from_setting), started
once per server process: in-process by default, a Dask LocalCluster (`local`, `local:N`) or a
scheduler the user started (`tcp://HOST:8786`). A setting that cannot be used (a scheduler that
does not answer, a typo) leaves the app in-process, with the one-line reason for the page to show."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import streamlit as st

from compression import CompressionError
from compression.sweep import InProcessExecutor, from_setting, set_default_executor


@dataclass(frozen=True)
class Cluster:
    executor: Any           # a compression.sweep executor
    setting: str            # COMPRESSION_CLUSTER as given ("" when unset)
    describe: str           # one line: what runs the trials
    error: str | None       # why the setting was not used (then the executor is in-process)

    @property
    def width(self) -> int:
        """Trials run at once (compression.search runs batches this wide)."""
        if hasattr(self.executor, "workers"):
            return max(1, self.executor.workers())
        return max(1, getattr(self.executor, "max_pending", 2) // 2)


def setting() -> str:
    return os.environ.get("COMPRESSION_CLUSTER", "").strip()


@st.cache_resource(show_spinner="Starting the sweep executor (COMPRESSION_CLUSTER)…")
def _start(text: str) -> Cluster:
    try:
        executor = from_setting(text)
    except CompressionError as exc:
        executor, error = InProcessExecutor(), str(exc)
    else:
        error = None
    describe = getattr(executor, "describe", "") or "in-process (one trial at a time, in the app's process)"
    set_default_executor(executor)  # every sweep of this server process uses it
    return Cluster(executor, text, describe, error)


def cluster() -> Cluster:
    """The executor for this server process (started on first use, kept for the next calls)."""
    return _start(setting())


def show(c: Cluster) -> None:
    """The executor line (and the reason a configured cluster is not in use)."""
    if c.error:
        st.error(f"COMPRESSION_CLUSTER={c.setting}: {c.error}. Running in-process instead.")
    st.caption(f"**Executor:** {c.describe}" + (f" (COMPRESSION_CLUSTER={c.setting})" if c.setting and not c.error else ""))
