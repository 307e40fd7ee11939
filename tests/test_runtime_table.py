"""'Time on every runtime': a result and its baseline on eager, torch.compile and ONNX Runtime at
each batch size (compression.runtime_table), a runtime that cannot run a model saying why instead
of numbers, and the table's words and units (ui.runtime_table.frame). No timing is asserted: a fake
timer or three quick rounds stand in; timings belong to benchmarks/."""

import pytest
import torch

import compression.runtimes as runtimes
from compression import CompressionError
from compression.models import build_model, state_dict_hash
from compression.runtime_table import all_runtimes
from compression.timing import Timing
from support import quick_cpu_timing

SHAPE = (1, 28, 28)


def eager_as_compiled(model, x):
    """Stands in for TorchInductor (compiling takes seconds to minutes here): the plumbing is what is tested."""
    def run(x):
        with torch.inference_mode():
            return model(x)
    return run


def fake_timer(baseline_ms, result_ms, spread=0.01):
    def timer(fns, sync=None):
        for fn in fns.values():
            fn()  # each runner really runs once
        return {"baseline": Timing(baseline_ms, spread, baseline_ms - spread, baseline_ms + spread, 21),
                "result": Timing(result_ms, spread, result_ms - spread, result_ms + spread, 21)}
    return timer


def models():
    torch.manual_seed(0)
    base, result = build_model("mlp").eval(), build_model("mlp").eval()
    return base, result


def test_every_runtime_at_every_batch_size_with_spreads():
    base, result = models()
    before = (state_dict_hash(base), state_dict_hash(result))
    seen = []
    with quick_cpu_timing():  # three real interleaved rounds per row
        rows = all_runtimes(base, result, SHAPE, batch_sizes=(1, 8), compile_fn=eager_as_compiled,
                            progress=seen.append)
    assert [(r["runtime"], r["batch"]) for r in rows] == [(rt, b) for rt in ("eager", "compile", "onnxruntime")
                                                           for b in (1, 8)]
    for r in rows:
        assert r["fallback"] is None
        assert r["baseline_ms"] > 0 and r["result_ms"] > 0
        assert r["baseline_spread_ms"] >= 0 and r["result_spread_ms"] >= 0
        assert r["ratio"] == pytest.approx(r["baseline_ms"] / r["result_ms"])
        assert r["change"].endswith(("faster", "slower")) or r["change"] == "no measurable change"
    assert (state_dict_hash(base), state_dict_hash(result)) == before  # neither model was touched
    assert seen[0]["steps"] == 6 and seen[-1]["step"] == 6


def test_ratio_words_follow_the_noise_rule():
    base, result = models()
    clear = all_runtimes(base, result, SHAPE, batch_sizes=(1,), runtimes=("eager",), timer=fake_timer(2.0, 1.0))
    assert clear[0]["change"] == "2.00x faster" and clear[0]["ratio"] == pytest.approx(2.0)
    noisy = all_runtimes(base, result, SHAPE, batch_sizes=(1,), runtimes=("eager",),
                         timer=fake_timer(1.0, 0.95, spread=0.05))
    assert noisy[0]["change"] == "no measurable change"
    sparse = all_runtimes(base, result, SHAPE, batch_sizes=(1,), runtimes=("eager",), simulated=True,
                          timer=fake_timer(1.0, 0.5))
    assert sparse[0]["change"].endswith("(simulated)")


def test_a_runtime_that_cannot_run_gives_its_message_instead_of_numbers(monkeypatch):
    def refused(model, input_shape, device):
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported")

    def no_compiler(model, x):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
    monkeypatch.setattr(runtimes, "_onnxruntime", refused)
    monkeypatch.setattr(runtimes, "_compiled", no_compiler)
    base, result = models()
    rows = {r["runtime"]: r for r in all_runtimes(base, result, SHAPE, batch_sizes=(1,), timer=fake_timer(1.0, 0.5))}
    assert rows["eager"]["fallback"] is None and rows["eager"]["result_ms"] == 0.5
    for name, words in (("onnxruntime", "aten::foo"), ("compile", "No working C++ compiler")):
        r = rows[name]
        assert words in r["fallback"] and "the baseline:" in r["fallback"] and "the result:" in r["fallback"]
        assert r["baseline_ms"] is r["result_ms"] is r["ratio"] is None and r["change"] == "n/a"
    from ui.runtime_table import frame
    table = frame(list(rows.values()))
    onnx = table[table["runtime"].str.startswith("ONNX Runtime")].iloc[0]
    assert onnx["result vs baseline"] == "could not run" and "aten::foo" in onnx["note"]
    assert onnx["baseline"] == "–"
    eager = table[table["runtime"] == "PyTorch eager"].iloc[0]
    assert eager["result"] == "0.500 ± 0.010 ms" and eager["result vs baseline"] == "2.00x faster"


@pytest.mark.parametrize("bad, words", [((0,), "0"), ((1, 2.5), "2.5"), ((), "at least one")])
def test_bad_batch_sizes_are_named(bad, words):
    base, result = models()
    with pytest.raises(CompressionError, match=words):
        all_runtimes(base, result, SHAPE, batch_sizes=bad, timer=fake_timer(1.0, 1.0))


def test_unknown_runtime_is_named():
    base, result = models()
    with pytest.raises(CompressionError, match="'tensorrt'"):
        all_runtimes(base, result, SHAPE, runtimes=("eager", "tensorrt"), timer=fake_timer(1.0, 1.0))


def test_one_model_alone_gives_each_batch_its_median_spread_and_images_per_second():
    from compression.runtime_table import time_model
    base, _ = models()
    before = state_dict_hash(base)
    calls = []

    def timer(fns, sync=None, calls_per_round=None, **kwargs):
        (fn,) = fns.values()
        out = fn()
        calls.append(out.shape[0])
        ms = 2.0 if out.shape[0] == 1 else 10.0
        return {"model": Timing(ms, 0.5, ms - 0.4, ms + 0.5, 21)}
    t = time_model(base, SHAPE, batch_sizes=(1, 256), timer=timer)
    assert calls == [1, 256]  # the model really ran at each batch size
    assert t["runtime"] == "eager" and t["fallback"] is None
    one, big = t["rows"]
    assert (one["batch"], one["median_ms"], one["spread_ms"], one["lo_ms"], one["hi_ms"]) == (1, 2.0, 0.5, 1.6, 2.5)
    assert one["images_per_s"] == pytest.approx(500.0) and big["images_per_s"] == pytest.approx(25_600.0)
    assert state_dict_hash(base) == before
    with quick_cpu_timing():  # real rounds: a positive median inside its own interval
        real = time_model(base, SHAPE, batch_sizes=(1,))["rows"][0]
    assert 0 < real["lo_ms"] <= real["median_ms"] <= real["hi_ms"] and real["spread_ms"] >= 0


def test_one_model_on_a_runtime_that_cannot_run_it_is_timed_in_eager_with_the_reason(monkeypatch):
    from compression.runtime_table import time_model
    from support import without_a_cxx_compiler
    without_a_cxx_compiler(monkeypatch)
    base, _ = models()
    t = time_model(base, SHAPE, runtime="compile", batch_sizes=(1,), timer=lambda fns, **kw: {
        "model": Timing(1.0, 0.1, 0.9, 1.1, 21)})
    assert t["runtime"] == "eager" and "No working C++ compiler" in t["fallback"]
    assert t["rows"][0]["median_ms"] == 1.0
