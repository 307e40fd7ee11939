"""The export menu in headless Chromium: a stored run's details offer its .cxp under its one name,
the ONNX export runs as a background job with a progress bar, then the re-check's sentence and the
.onnx download appear; the downloaded file runs in ONNX Runtime and carries the input contract."""

import json
import os
from pathlib import Path

from benchmarks.browser import exception_boxes, wait_until_idle


def test_export_a_run_in_a_real_browser(app_url, page, screenshots):
    from compression.data import load_dataset
    from compression.methods import run_method
    home = Path(os.environ["COMPRESSION_HOME"])
    data = load_dataset("fashion-mnist")
    run_id = run_method("cnn", data, "prune", "structured:0.5", device="cpu", limit=500).extra["run_id"]
    page.goto(f"{app_url}/Pareto_explorer?run={run_id}")
    button = page.get_by_role("button", name=f"cnn-prune-{run_id}.cxp")
    button.wait_for(timeout=90_000)
    wait_until_idle(page)
    assert "not a plain torch file" in page.inner_text("body")

    page.get_by_text("Export to run without this project").click()
    page.get_by_role("button", name="Export onnx and re-check").click()
    page.get_by_text("re-checked in ONNX Runtime").wait_for(timeout=180_000)
    wait_until_idle(page)
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "export-menu.png"), full_page=True)
    with page.expect_download(timeout=60_000) as download:
        page.get_by_role("button", name=f"cnn-prune-{run_id}.onnx").click()
    path = Path(download.value.path())
    assert download.value.suggested_filename == f"cnn-prune-{run_id}.onnx"

    import numpy as np
    import onnxruntime as ort
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    contract = json.loads(session.get_modelmeta().custom_metadata_map["input_contract"])
    assert contract["classes"] == list(data.classes)
    logits = session.run(None, {"input": data.normalize(data.test.images[:500]).numpy()})[0]
    from compression.store import RunStore
    stored = RunStore(home / "runs.sqlite").predictions(run_id).predicted[:500]
    assert float((logits.argmax(1) == stored).mean()) >= 0.999
