"""One download per run and the export menu beside it, on every result card and in the explorer.

The run's file downloads under one name everywhere (compression.export.download_name: `<name or
model>-<method>-<id>.cxp`) with a one-line hint of what it is and how to load it. Below it, the
export menu: ONNX, int8 ONNX (8-bit results), torch.export and safetensors, each exported and
re-checked in its own runtime as a background job (ui.jobs: a progress bar and Stop), then listed
with its size, the re-check's numbers and its download; a file that does not match the run shows
the red warning naming the first diverging layer. Streamlit glue only (compression.export does
the work)."""

from __future__ import annotations

import functools
from pathlib import Path
from typing import Any, Mapping

import streamlit as st

from compression import CompressionError
from compression.charts.format import fmt_bytes
from compression.export.notes import container_hint
from ui import jobs


def _read(path: Path) -> bytes:
    return Path(path).read_bytes()


def _run_id(run: Mapping[str, Any]) -> int | None:
    return run.get("id", run.get("run_id"))


def _artifact_path(run: Mapping[str, Any]) -> Path | None:
    from compression.run_labels import artifact_file
    path = run.get("artifact_path") or (run.get("artifact") if isinstance(run.get("artifact"), str) else None)
    return artifact_file(path)


def _payload(blob: bytes | None, path: Path | None) -> str | None:
    from compression.artifact import header_of, header_of_file
    try:
        header = header_of(blob) if blob is not None else header_of_file(path)
    except Exception:  # an unreadable header: the hint stays generic, the export will say what is wrong
        return None
    return header["payload"] if header else None


def model_download(key: str, run: Mapping[str, Any], *, artifact: bytes | None = None,
                   preview: Mapping[str, Any] | None = None, what: str = "model") -> None:
    """The run's file (bytes given, or its stored artifact) with its hint, then the export menu.
    `preview`: the page's unstored preview (compression.previews), exported from memory."""
    from compression.export import download_name
    from ui.keep import kept_run
    if preview is not None and _run_id(run) is None and kept_run(preview) is not None:
        run, preview = {**run, "run_id": kept_run(preview)}, None  # kept: the stored run from now on
    blob = bytes(artifact) if artifact is not None else None
    path = None if blob is not None else _artifact_path(run)
    if blob is None and path is None:
        gone = run.get("artifact_path") or (run.get("artifact") if isinstance(run.get("artifact"), str) else None)
        st.caption(f"The file `{gone}` is no longer on disk: nothing to download or export." if gone
                   else "No artifact file was kept for this run.")
        return
    payload = _payload(blob, path)
    size = len(blob) if blob is not None else path.stat().st_size
    hint = container_hint(payload)
    name = download_name(run)
    st.download_button(f"Download the {what}: {name} ({size:,} bytes)",
                       data=blob if blob is not None else functools.partial(_read, path),
                       file_name=name, mime="application/octet-stream", key=f"{key}_cxp",
                       on_click="ignore", icon=":material/download:", help=hint)
    st.caption(hint)
    export_menu(key, run, blob=blob, payload=payload, preview=preview)


def export_menu(key: str, run: Mapping[str, Any], *, blob: bytes | None, payload: str | None,
                preview: Mapping[str, Any] | None = None) -> None:
    """Each format: not offered (why), exported (size, re-check, download) or a button that exports it."""
    from compression import access
    from compression.export import format_names, get_format, offered, saved_reports
    run_id = _run_id(run)
    may = access.allowed("run jobs")  # an export is a job: editors and admins (viewers download what is there)
    job_key = f"{key}_export_job"
    with st.expander("Export to run without this project: ONNX, int8 ONNX, torch.export, safetensors"):
        st.caption("Each file carries the input contract (mean, std, input size, channels, classes) and is re-checked "
                   "at once: loaded in its own runtime and run on the run's test images against its predictions.")
        reports = saved_reports(run_id, blob if run_id is None else None)
        refused = offered({"method": run["method"], "config": run.get("config") or {}}, payload or "dense")
        running = jobs.get(job_key)
        busy = running is not None and not running.finished
        for fmt in format_names():
            st.markdown(f"**{fmt}** · {get_format(fmt).title}")
            if refused[fmt]:
                st.caption(f"Not offered: {refused[fmt]}")
            elif fmt in reports:
                show_report(f"{key}_{fmt}", reports[fmt])
            elif st.button(f"Export {fmt} and re-check", key=f"{key}_export_{fmt}", disabled=busy or not may,
                           icon=":material/ios_share:",
                           help=None if may else "Exporting runs a job: an editor or admin can; you can download "
                                                 "the files already exported."):
                try:
                    start(job_key, run, fmt, blob=blob, preview=preview)
                    busy = True
                except CompressionError as exc:  # the role check, or an unreadable run: one line, the page stays
                    st.error(str(exc))
        jobs.panel(job_key, lambda job: None, lambda job: None)


def start(job_key: str, run: Mapping[str, Any], fmt: str, *, blob: bytes | None,
          preview: Mapping[str, Any] | None) -> jobs.Job:
    """Export `fmt` and re-check it in the background (the CPU queue: every runtime here is the CPU's)."""
    from compression.export import export, source_of, source_of_preview, source_of_run
    from ui import cache
    run_id = _run_id(run)
    store = cache.run_store() if run_id is not None else None
    record = dict(run)

    def work(job: jobs.Job) -> dict:
        if run_id is not None:
            source = source_of_run(run_id, store=store)
        elif preview is not None:
            source = source_of_preview(preview)
        else:
            source = source_of(record, blob)
        return export(source, fmt, progress=job.progress, should_stop=job.should_stop)
    label = f"export {fmt} of {'run ' + str(run_id) if run_id is not None else 'this preview'}"
    return jobs.start(job_key, label, work, device="cpu")


def recheck_words(report: Mapping[str, Any]) -> str:
    """The re-check in one sentence: where, on how many images, accuracy, agreement, logits, latency."""
    rc = report["recheck"]
    text = (f"{fmt_bytes(report['size_bytes'])}; re-checked in {rc['runtime']} on {rc['images']:,} test images: "
            f"accuracy {rc['accuracy'] * 100:.2f} % (run {rc['run_accuracy'] * 100:.2f} %), agreement "
            f"{rc['agreement'] * 100:.2f} % with {rc['reference']}, largest logit difference {rc['max_logit_diff']:.2g}")
    lat = rc.get("latency_ms")
    if lat:
        text += "; latency there " + ", ".join(f"batch {k.split('_')[1]} {v:.2f} ms" for k, v in lat.items())
    return text + "."


def show_report(key: str, report: Mapping[str, Any]) -> None:
    """An exported file: its re-check (green, or the red warning), its downloads, its snippet."""
    if report.get("ok"):
        st.success(recheck_words(report), icon=":material/verified:")
    else:
        st.error(f"{report.get('warning')} ({recheck_words(report)})", icon=":material/error:")
    st.caption(f"Weights: {report['weights']}.")
    files = [Path(report["file"]), *map(Path, report.get("files") or [])]
    cols = st.columns(len(files))
    for i, (col, path) in enumerate(zip(cols, files)):
        if path.is_file():
            col.download_button(f"{path.name} ({fmt_bytes(path.stat().st_size)})", functools.partial(_read, path),
                                file_name=path.name, mime="application/octet-stream", key=f"{key}_file_{i}",
                                on_click="ignore", icon=":material/download:")
    snippet = (report.get("notes") or {}).get("snippet")
    if snippet:
        st.caption("Rebuild it and load the file (the re-check ran exactly this):")
        st.code(snippet, language="python")
