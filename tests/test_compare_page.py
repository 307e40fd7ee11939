"""The Pareto explorer's compare view under AppTest, on a store with two real runs (a 90% magnitude
prune of the mlp, and a 4-bit quantization) measured on the first 500 test images."""

import json
import os

import pytest
from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages" / "6_Pareto_explorer.py")


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory, fmnist):
    from compression.methods import run_method
    from compression.store import RunStore
    home = tmp_path_factory.mktemp("compare-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMPRESSION_HOME", str(home))
        a = run_method("mlp", fmnist, "prune", "unstructured:0.9", device="cpu", limit=500, store=RunStore())
        b = run_method("mlp", fmnist, "quantize", "uniform:4", device="cpu", limit=500, store=RunStore())
        yield home, a.extra["run_id"], b.extra["run_id"]


@pytest.fixture
def store_home(two_runs, monkeypatch):
    monkeypatch.setenv("COMPRESSION_HOME", str(two_runs[0]))
    return two_runs


def page(**query) -> AppTest:
    at = AppTest.from_file(PAGE, default_timeout=180)
    for k, v in query.items():
        at.query_params[k] = v
    return at.run()


def chart(at, key: str) -> dict:
    return json.loads(next(c for c in at.get("plotly_chart") if c.proto.id and key in c.proto.id).proto.spec)


def metrics(at) -> dict:
    return {m.label: m.value for m in at.metric}


def test_two_runs_compared_from_the_url(store_home):
    _, a, b = store_home
    at = page(cmp=f"{a},{b}")
    assert not at.exception and not at.error
    assert at.selectbox(key="explorer_cmp_a").value == a and at.selectbox(key="explorer_cmp_b").value == b
    m = metrics(at)
    assert m["Right → wrong"] != "0" or m["Wrong → right"] != "0"
    fig = chart(at, "explorer_cmp_per_class")
    diff = fig["data"][2]
    assert len(diff["x"]) == 10 and fig["layout"]["title"]["text"].startswith("Per-class accuracy")
    assert chart(at, "explorer_cmp_confusion")["data"][0]["type"] == "heatmap"
    (images,) = at.get("image")  # each side called by what it did (no names given)
    assert len(images.value) >= 1 and images.captions[0].startswith("#")
    assert " · A: " in images.captions[0] and " · B: " in images.captions[0]
    assert any(f"**A**: “unstructured 0.9” (run {a}, prune of mlp)" in t.value and "**B**: “4-bit per-channel”" in t.value
               for t in at.markdown)
    layers = next(d.value for d in at.dataframe if "layer" in d.value)
    assert list(layers["layer"]) == ["1", "3", "5"] and "4-bit per-channel: bits" in layers
    assert not [c for c in at.get("plotly_chart") if "explorer_parallel" in c.proto.id]  # folded until opened
    at.session_state["explorer_knobs"] = True
    at.run()
    assert chart(at, "explorer_parallel")["data"][0]["type"] == "parcoords"
    assert at.query_params["cmp"] == f"{a},{b}"

    # only right -> wrong images of one class
    at.radio(key="explorer_cmp_kind").set_value("wrong_to_right").run()
    at.selectbox(key="explorer_cmp_class").set_value("Shirt").run()
    assert not at.exception
    for cap in (at.get("image")[0].captions if at.get("image") else []):
        assert cap.split(" · ")[0].endswith(" Shirt")


def test_a_run_against_its_baseline_picked_on_the_page_goes_into_the_url(store_home):
    _, a, _ = store_home
    at = page()
    assert at.selectbox(key="explorer_cmp_a").value is None and not at.get("image")
    at.selectbox(key="explorer_cmp_a").set_value(a).run()
    assert not at.exception and not at.error
    assert at.query_params["cmp"] == f"{a},base"
    m = metrics(at)
    assert m["Accuracy of B"].startswith("65") or float(m["Accuracy of B"].split()[0]) < 80
    assert any("**A**: uncompressed mlp  \n**B**: “unstructured 0.9”" in t.value for t in at.markdown)
    assert len(chart(at, "explorer_cmp_per_class")["data"][2]["x"]) == 10
    assert at.get("image")  # 90% pruned without fine-tuning: many right -> wrong
    again = page(cmp=f"{a},base")  # the link reproduces the view
    assert metrics(again) == m


def test_the_compare_view_uses_the_names_the_engineer_gave(store_home):
    from compression.store import RunStore
    _, a, b = store_home
    store = RunStore()
    store.update(a, name="Pruned 90 %")
    store.update(b, name="4-bit mlp")
    try:
        at = page(cmp=f"{a},{b}")
        assert not at.exception
        assert any(f"**A**: “Pruned 90 %” (run {a}, prune of mlp)  \n**B**: “4-bit mlp” (run {b}, quantize of mlp)"
                   in t.value for t in at.markdown)
        assert {m.proto.help for m in at.metric if m.label.startswith("Accuracy of")} == {"Pruned 90 %", "4-bit mlp"}
        fig = chart(at, "explorer_cmp_per_class")  # and the charts
        assert [t["name"] for t in fig["data"][:2]] == ["Pruned 90 %", "4-bit mlp"]
        assert "4-bit mlp minus Pruned 90 %" in chart(at, "explorer_cmp_confusion")["layout"]["title"]["text"]
        picker = at.selectbox(key="explorer_cmp_a")  # the pickers too: name, then what it did
        assert any(o.startswith(f"run {a} · “Pruned 90 %” · unstructured 0.9 · mlp · ") for o in picker.options)
    finally:
        store.update(a, name="")
        store.update(b, name="")


def test_a_run_without_predictions_is_re_evaluated_from_its_artifact(store_home):
    from compression.store import RunStore
    home, a, b = store_home
    store = RunStore()
    kept = store.predictions(b)
    import sqlite3
    with sqlite3.connect(store.path) as db:
        db.execute("DELETE FROM predictions WHERE run_id = ?", (b,))
    at = page(cmp=f"{a},{b}")
    assert not at.exception
    assert any("no predictions stored" in w.value for w in at.warning) and not at.get("image")
    at.button(key=f"explorer_cmp_reeval_{b}").click().run()
    assert not at.exception and not at.error
    again = store.predictions(b)
    assert again is not None and (again.predicted == kept.predicted).all()  # the same model, the same images
    assert at.get("image") and metrics(at)


def test_the_report_compares_frontier_runs_with_their_baseline(store_home, fmnist):
    from compression.methods import run_method
    from compression.report import report_html
    from compression.store import RunStore
    store = RunStore()  # the two runs are simulated gains, off the frontier: add one that realizes it
    c = run_method("mlp", fmnist, "prune", "structured:0.3", device="cpu", limit=500, store=store).extra["run_id"]
    text = report_html(store.runs(), store=store)
    assert "Frontier runs compared with their baseline" in text
    assert f'id="compare-fashion-mnist-{c}"' in text
    assert "right → wrong" in text and 'class="compare"' in text
    assert "compared with" not in report_html(store.runs())  # without the store: no section
