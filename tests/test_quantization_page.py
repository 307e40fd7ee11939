"""The Quantization page under streamlit.testing.v1.AppTest (its chart builders: test_quantization_charts.py)."""

import os

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages/3_Quantization.py")


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def _full(at):
    """Run the page again once this session's live result is complete (ui.live)."""
    assert at.session_state["live_runner_quant"].wait_idle(300)
    return at.run()


def _captions(at) -> str:
    return " ".join(c.value for c in at.caption)


def test_moving_the_bits_slider_gives_a_new_measured_result(home):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "lenet5"
    at.session_state["quant_bits"] = 4
    _full(at.run())
    assert not at.exception, at.exception
    first = _metrics(at)
    assert "2 Conv2d, 3 Linear" in " ".join(m.value for m in at.markdown)  # what was quantized
    assert any("latency is simulated" in w.value and "dequantized float model" in w.value
               for w in at.warning)  # no 4-bit kernel: said so, by the one honesty sentence
    assert at.metric[1].label == "Stored size" and at.metric[1].delta.endswith("x smaller")
    assert at.metric[3].delta.endswith("(simulated)")
    _full(at.select_slider(key="quant_bits").set_value(2).run())
    assert not at.exception, at.exception
    second = _metrics(at)
    # 2-bit codes take half the bytes of 4-bit ones (plus the same float scales and biases)
    size = lambda m: float(m["Stored size"].split()[0])
    assert size(second) < 0.6 * size(first)
    assert second["Bits per weight"] != first["Bits per weight"]
    from compression.store import RunStore
    assert RunStore().count() == 0  # slider results are previews
    (keep,) = [b for b in at.button if b.label == "Keep this run"]
    keep.click().run()
    (run,) = RunStore().runs()
    assert run["config"]["bits"] == 2 and os.path.getsize(run["artifact_path"]) == run["size_bytes"]
    assert len(at.get("plotly_chart")) >= 2  # weight histogram and the stored-runs chart


def test_binary_method_stores_about_one_bit_per_weight(home):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    _full(at.selectbox(key="quant_method").set_value("binary").run())
    assert not at.exception
    assert _metrics(at)["Bits per weight"].startswith("1.")  # 1 bit + per-channel float scales


def test_sweep_job_stores_every_point_and_draws_both_charts(home):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["quant_bits"] = 4
    at.run()
    at.radio(key="quant_mode").set_value("Sweep").run()
    at.multiselect(key="quant_sweep_methods").set_value(["uniform", "cluster-huffman"])
    at.select_slider(key="quant_sweep_bits").set_value((3, 4))
    at.button(key="quant_sweep_start").click().run()
    at.session_state["quant_sweep_job"].wait(300)
    at.run()
    assert not at.exception, at.exception
    job = at.session_state["quant_sweep_job"]
    assert job.status == "done" and len(job.result) == 4  # 2 methods x 2 bit widths
    assert [r["config"]["bits"] for r in job.result] == [3, 4, 3, 4]
    from compression.store import RunStore
    assert RunStore().count() == 4  # the sweep's points (the single run shown before was a preview)
    titles = [c.proto.spec for c in at.get("plotly_chart")]
    assert sum("weight bits" in t for t in titles) == 1 and sum("stored bytes" in t for t in titles) == 1


def test_a_linear_only_int8_kernel_says_the_convolutions_ran_in_float(home, monkeypatch):
    import pytest
    from compression.quantization import kernels
    if not kernels.onnxruntime_available():
        pytest.skip("onnxruntime not installed")
    monkeypatch.setattr(kernels, "CANDIDATES", ("ort-static", "ort-static-linear"))
    # fixed timings so that the pick is the Linear-only kernel, as measured for lenet5 on the dev CPU
    monkeypatch.setattr(kernels, "interleaved_ms",
                        lambda fns, **kw: {k: 1.0 if k == "ort-static-linear" else 2.0 for k in fns})
    at = AppTest.from_file(PAGE, default_timeout=300)
    at.session_state["keep_sidebar_model"] = "lenet5"
    at.session_state["quant_bits"] = 8
    _full(at.run())
    assert not at.exception, at.exception
    assert any("Linear layers (Conv layers in float32)" in s.value for s in at.success)
    assert any("runs the 3 Linear layer(s) in int8 and the 2 convolution(s) in float32" in c.value
               for c in at.caption)
    assert any("with every layer in int8 (ort-static) the same batch took 2.00 ms against 1.00 ms" in c.value
               for c in at.caption)  # the comparison shown is the one the selection measured
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert latency.proto.help.endswith("int8 Linear, float conv")


def _held_full_evaluation(monkeypatch):
    """The full evaluation waits until the returned event is set (the first stage can be looked at)."""
    import threading
    from compression import progressive
    gate, original = threading.Event(), progressive.rest_logits

    def held(*args, **kwargs):
        gate.wait(120)
        return original(*args, **kwargs)
    monkeypatch.setattr(progressive, "rest_logits", held)
    return gate


def _until_refining(at):
    import time
    end = time.monotonic() + 120
    at.run()
    while "refining" not in _captions(at) and time.monotonic() < end:  # a slow machine: look again
        time.sleep(0.2)
        at.run()
    return at


def test_the_first_test_images_answer_at_once_then_all_of_them(home, monkeypatch):
    """A bits move shows accuracy on the first test images (with its interval, against the float
    model on the same images), the packed file's bytes and bits per weight while the rest are
    measured; the full result replaces it with the same bytes, and only the full result can be kept
    or downloaded."""
    gate = _held_full_evaluation(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["quant_bits"] = 3  # a width no other test of this file caches
    try:
        _until_refining(at)
        assert not at.exception, at.exception
        assert "on a stratified sample of 500 of 10,000 test images, every class (refining…)" in _captions(at) and "95 % interval" in _captions(at)
        assert "the float model on the same images" in _captions(at)
        partial = _metrics(at)
        assert partial["Latency (batch 1)"] == "measuring…"
        assert "measuring…" not in (partial["Stored size"], partial["Bits per weight"])
        assert not [b for b in at.button if b.label == "Keep this run"] and not at.get("download_button")
    finally:
        gate.set()
    _full(at)
    assert not at.exception, at.exception
    assert "on all 10,000 test images" in _captions(at) and "refining" not in _captions(at)
    full = _metrics(at)
    assert full["Latency (batch 1)"] != "measuring…"
    # the first stage's bytes are the full result's (the same packed file): only accuracy and latency were pending
    assert (full["Stored size"], full["Bits per weight"]) == (partial["Stored size"], partial["Bits per weight"])
    assert [b for b in at.button if b.label == "Keep this run"] and at.get("download_button")


def test_a_newer_bit_width_is_not_overwritten_by_an_older_one(home, monkeypatch):
    """5 bits is still measuring its full result when the slider moves to 6: the 5-bit work is
    cancelled at its next check, the page ends on the 6-bit result, and the 5-bit key keeps only the
    stage it finished (coming back to it computes the rest)."""
    import json
    from ui import live
    gate = _held_full_evaluation(monkeypatch)
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["quant_bits"] = 5
    try:
        _until_refining(at)
        assert any(s.value.startswith("mlp: uniform 5-bit") for s in at.subheader)
        at.select_slider(key="quant_bits").set_value(6).run()
    finally:
        gate.set()
    _full(at)
    assert not at.exception, at.exception
    assert "refining" not in _captions(at)
    (title,) = [s.value for s in at.subheader if s.value.startswith("mlp:")]
    assert title.startswith("mlp: uniform 6-bit")
    keys = {json.loads(k[3])["bits"]: k for k in live.stage_cache("quant")._entries if k[0] == "mlp"}
    done = {bits: [s.name for s in live.stage_cache("quant").get(k).stages] for bits, k in keys.items()}
    assert done[6] == ["subset", "full"] and done[5] == ["subset"]


def test_the_warm_start_computes_the_page_as_it_opens(home, monkeypatch):
    """ui.warm's Quantization step asks for the config the page asks for with its widgets untouched,
    and only once the int8 kernel choice is on disk (else the search would hold the device ~20 s)."""
    from compression.quantization import QuantConfig
    from ui import quantization as q
    asked = []
    monkeypatch.setattr(q, "live_quantize",
                        lambda model, dataset, device, config, runtime="eager": asked.append((config, runtime)))
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception, at.exception
    assert asked == [(q.default_config(), "eager")]  # eager: the live key ui.warm fills
    assert q.kernel_on_disk("mlp", "fashion-mnist", "cpu", QuantConfig(bits=4).to_dict())  # needs no kernel
    assert not q.kernel_on_disk("mlp", "fashion-mnist", "cpu", q.default_config())  # a fresh home: not measured


def test_a_kernel_choice_read_from_disk_says_when_it_was_measured(home, monkeypatch):
    """The second time the same 8-bit weights are shown (here: after the live cache is emptied, as
    after a restart) only the chosen int8 kernel is built, and the note says the candidates' timings
    are from when they were measured."""
    import pytest
    from compression.quantization import kernels
    from ui import live
    if not kernels.onnxruntime_available():
        pytest.skip("onnxruntime not installed")
    monkeypatch.setattr(kernels, "CANDIDATES", ("ort-static", "ort-static-linear"))
    monkeypatch.setattr(kernels, "interleaved_ms",
                        lambda fns, **kw: {k: 1.0 if k == "ort-static-linear" else 2.0 for k in fns})
    built, real = [], kernels.build_kernel
    monkeypatch.setattr(kernels, "build_kernel", lambda name, *a, **k: built.append(name) or real(name, *a, **k))

    def note():
        at = AppTest.from_file(PAGE, default_timeout=300)
        at.session_state["keep_sidebar_model"] = "lenet5"
        _full(at.run())
        assert not at.exception, at.exception
        (text,) = [s.value for s in at.success if "Latency from a real int8 kernel" in s.value]
        return text

    live.clear("quant")  # an earlier test's lenet5 8-bit result (the live cache is per process)
    first = note()
    assert "chosen by measurement at batch 256" in first and "kept on disk" not in first
    assert sorted(built) == ["ort-fp32", "ort-static", "ort-static-linear", "torch-fp32"]
    live.clear("quant")
    built.clear()
    again = note()
    assert built == ["ort-static-linear"]  # the candidates were not built or timed again
    assert "chosen by measurement on 20" in again and "UTC and kept on disk" in again
    assert "the candidates were not re-timed now; the latency below was" in again


def test_the_sidebar_runtime_times_the_quantized_model_and_is_kept(home):
    """Without an int8 kernel (4 bits), the quantized model's latency is timed on the sidebar's
    runtime, beside its baseline on the same runtime, and the kept run says which."""
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.session_state["keep_sidebar_runtime"] = "onnxruntime"
    at.session_state["quant_bits"] = 4
    _full(at.run())
    assert not at.exception, at.exception
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert "ONNX Runtime" in latency.proto.help
    (keep,) = [b for b in at.button if b.label == "Keep this run"]
    keep.click().run()
    from compression.store import RunStore
    (run,) = RunStore().runs()
    assert run["extra"]["runtime"] == "onnxruntime" and run["extra"]["baseline_latency_ms"] > 0
