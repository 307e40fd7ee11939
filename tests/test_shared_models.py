"""The baseline models cached for all sessions are never modified (issue 9).

Every page gets its zoo models from `ui.cache.model` (st.cache_resource: one object shared by all
sessions). Here we take those exact objects out of the cache first, drive every page under AppTest
with one cheap action each (including a background job that trains from the shared model), and
then check that the cache still hands out the same objects with the same state_dict hash, still in
eval mode, with no gradients left on them, and that the shared dataset tensors are unchanged."""

from __future__ import annotations

import hashlib

from streamlit.testing.v1 import AppTest

from compression.models import state_dict_hash
from compression.paths import REPO_ROOT as ROOT

DEVICE = "cpu"
MODELS = ("mlp", "lenet5_exits")  # the pages below run on these (the cheapest of each kind)


def _fingerprint(model) -> dict:
    return {"hash": state_dict_hash(model), "training": [m.training for m in model.modules()],
            "grads": sum(p.grad is not None for p in model.parameters()),
            "requires_grad": [p.requires_grad for p in model.parameters()]}


def _data_hash(data) -> str:
    h = hashlib.sha256()
    for split in (data.train, data.val, data.test):
        h.update(split.images.contiguous().numpy().tobytes())
        h.update(split.labels.contiguous().numpy().tobytes())
    return h.hexdigest()


def _page(name: str, model: str = "mlp") -> AppTest:
    at = AppTest.from_file(str(ROOT / name), default_timeout=240)
    at.session_state["keep_sidebar_model"] = model
    return at


def _ok(at: AppTest) -> AppTest:
    assert not at.exception, [e.value for e in at.exception]
    return at


def _wait_job(at: AppTest, key: str) -> None:
    job = at.session_state[key].wait(300)
    assert job.status == "done", job.error
    _ok(at.run())


def test_pages_never_modify_the_shared_models(home):
    import streamlit as st

    from ui import cache
    st.cache_data.clear()  # results cached by earlier tests would skip the core calls under test
    shared = {name: cache.model(name, DEVICE) for name in MODELS}
    before = {name: _fingerprint(m) for name, m in shared.items()}
    assert all(not f["training"][0] for f in before.values())  # served in eval mode
    data = cache.dataset("fashion-mnist")
    data_before = _data_hash(data)

    # home: baseline and predictions on the gallery
    _ok(_page("app.py").run())

    # pruning: move the ratio slider (unstructured), then structured channels, then a 1-epoch fine-tune job
    at = _ok(_page("pages/1_Pruning.py").run())
    _ok(at.slider(key="prune_ratio").set_value(0.8).run())
    _ok(at.radio(key="prune_method").set_value("structured").run())
    at.number_input(key="prune_epochs").set_value(1)
    at.radio(key="prune_split").set_value("val")
    _ok(at.run())
    _ok(at.button(key="prune_run").click().run())
    _wait_job(at, "prune_job")

    # distillation: the shared mlp is the teacher (soft labels on the gallery), a 1-epoch student on 1,000 labels
    at = _ok(_page("pages/2_Distillation.py").run())
    _ok(at.slider(key="distill_temperature").set_value(4.0).run())
    at.select_slider(key="distill_labeled").set_value(1000)
    at.slider(key="distill_epochs").set_value(1)
    _ok(at.button(key="distill_start").click().run())
    _wait_job(at, "distill_job")

    # quantization: 4 bits (histogram and layer list read the shared model)
    at = _ok(_page("pages/3_Quantization.py").run())
    _ok(at.select_slider(key="quant_bits").set_value(4).run())

    # architecture: convert (low rank from the shared model's SVD), then a short distill recovery from it
    at = _ok(_page("pages/4_Architecture.py").run())
    _ok(at.slider(key="architecture_energy").set_value(0.5).run())
    at.select_slider(key="architecture_match").set_value(50)
    at.radio(key="architecture_method").set_value("distill")
    at.slider(key="architecture_epochs").set_value(0)
    _ok(at.run())
    _ok(at.button(key="architecture_recover").click().run())
    _wait_job(at, "architecture_job")

    # dynamic computation: move the exit threshold, measure real early exit on the shared model
    at = _ok(_page("pages/5_Dynamic_computation.py", "lenet5_exits").run())
    _ok(at.slider(key="dynamic_threshold_confidence").set_value(0.5).run())
    _ok(at.button(key="dynamic_measure").click().run())
    assert "dynamic_last" in at.session_state

    # Pareto explorer over everything stored above: pick a run for its details
    from compression.store import RunStore
    runs = RunStore().runs(dataset="fashion-mnist")
    # the jobs' runs: pruned and fine-tuned, two students, recovered, early exit (slider results are previews)
    assert len(runs) >= 5
    at = _ok(_page("pages/6_Pareto_explorer.py").run())
    at.session_state["explorer_run"] = runs[0]["id"]
    _ok(at.run())
    assert at.selectbox(key="explorer_run").value == runs[0]["id"]

    for name, model in shared.items():
        assert cache.model(name, DEVICE) is model, f"the cache no longer serves the same {name} object"
        assert _fingerprint(model) == before[name], f"the shared {name} was modified"
    assert cache.dataset("fashion-mnist") is data and _data_hash(data) == data_before
