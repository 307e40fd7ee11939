"""The Quantization page under streamlit.testing.v1.AppTest (its chart builders: test_quantization_charts.py)."""

import os

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

PAGE = str(ROOT / "pages/3_Quantization.py")


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_moving_the_bits_slider_gives_a_new_measured_result(home):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "lenet5"
    at.session_state["quant_bits"] = 4
    at.run()
    assert not at.exception, at.exception
    first = _metrics(at)
    assert "2 Conv2d, 3 Linear" in " ".join(m.value for m in at.markdown)  # what was quantized
    assert any("latency is simulated" in w.value and "dequantized float model" in w.value
               for w in at.warning)  # no 4-bit kernel: said so, by the one honesty sentence
    assert at.metric[1].label == "Stored size" and at.metric[1].delta.endswith("x smaller")
    assert at.metric[3].delta.endswith("(simulated)")
    at.select_slider(key="quant_bits").set_value(2).run()
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
    at.selectbox(key="quant_method").set_value("binary").run()
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
    at.run()
    assert not at.exception, at.exception
    assert any("Linear layers (Conv layers in float32)" in s.value for s in at.success)
    assert any("runs the 3 Linear layer(s) in int8 and the 2 convolution(s) in float32" in c.value
               for c in at.caption)
    assert any("with every layer in int8 (ort-static) the same batch took 2.00 ms against 1.00 ms" in c.value
               for c in at.caption)  # the comparison shown is the one the selection measured
    latency = next(m for m in at.metric if m.label == "Latency (batch 1)")
    assert latency.proto.help.endswith("int8 Linear, float conv")
