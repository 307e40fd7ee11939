"""The download menu on a run's details (the Pareto explorer; every result card uses the same ui.downloads):
the run's one file under its one name with what it is, then each export format: not offered (why),
or exported as a background job and listed with its size and re-check, or a red warning naming the
first diverging layer when the file does not match the run."""

from __future__ import annotations

import json

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "6_Pareto_explorer.py")


def _page(run_id: int) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.query_params["run"] = str(run_id)
    return at.run()


def test_export_from_the_run_details_rechecks_and_offers_the_file(home, fmnist):
    from compression.export import exports_dir
    from compression.methods import run_method
    run_id = run_method("cnn", fmnist, "prune", "structured:0.5", device="cpu", limit=300).extra["run_id"]
    at = _page(run_id)
    assert not at.exception
    labels = [b.proto.label for b in at.get("download_button")]
    assert any(f"cnn-prune-{run_id}.cxp" in label for label in labels), labels
    assert any("not a plain torch file" in c.value for c in at.caption)  # the hint claims no other format
    assert any("Not offered: int8 QDQ ONNX is for 8-bit" in c.value for c in at.caption)
    at.button(key=f"explorer_artifact_{run_id}_export_onnx").click().run()
    at.session_state[f"explorer_artifact_{run_id}_export_job"].wait(300)
    at.run()
    assert not at.exception and not at.error
    (verdict,) = [s.value for s in at.success if "re-checked in ONNX Runtime" in s.value]
    assert "on 300 test images" in verdict and "agreement 100.00 %" in verdict
    assert any(f"cnn-prune-{run_id}.onnx" in b.proto.label for b in at.get("download_button"))

    # a file that did not match: the red warning with the layer it names
    report_path = exports_dir(run_id) / "report-onnx.json"
    report = json.loads(report_path.read_text())
    report.update(ok=False, warning="The exported onnx file does not match the run: agreement 41.00 %; the first "
                                    "layer whose output diverges is '4' (relative error 1.2).")
    report_path.write_text(json.dumps(report))
    at = _page(run_id)
    assert any("first layer whose output diverges is '4'" in e.value for e in at.error)


def test_a_run_whose_file_is_gone_offers_nothing_and_says_so(home, fmnist):
    from compression.methods import run_method
    from compression.run_labels import artifact_file
    from compression.store import RunStore
    run_id = run_method("mlp", fmnist, "prune", "unstructured:0.5", device="cpu", limit=200).extra["run_id"]
    artifact_file(RunStore().get(run_id)["artifact_path"]).unlink()
    at = _page(run_id)
    assert not at.exception
    assert any("no longer on disk: nothing to download or export" in c.value for c in at.caption)
    assert not [b for b in at.button if "and re-check" in (b.label or "")]
