"""Latency timed side by side, noise is not a change, and the runtime people deploy.

compression.timing: medians with the 95 % interval of the median from interleaved rounds, the rule
that a ratio whose interval includes 1 is "no measurable change", and the re-time of a ratio the
MACs cannot explain (a fake timer stands in for the clock: no timing is asserted here, timings
belong to benchmarks/). compression.runtimes: eager / compile / onnxruntime, the baseline on the
same runtime as the result, and a runtime that cannot run the model falling back with its message.
"""

import json
import os

import pytest
import torch

import compression.runtimes as runtimes
import compression.timing as timing
from compression import CompressionError
from compression.charts.format import latency_change
from compression.cli import format_line
from compression.metrics import Metrics, Result
from compression.models import build_model, state_dict_hash
from compression.timing import Timing, implausible, interleaved, median_interval, time_against_baseline
from support import cli_in_process, quick_cpu_timing


@pytest.fixture
def quick():
    with quick_cpu_timing():
        yield


def T(ms: float, spread: float = 0.0) -> Timing:
    return Timing(ms, spread, ms - spread, ms + spread, 21)


# --------------------------------------------------------------------------------------------
# the interval of the median, and interleaved rounds

def test_median_interval_is_the_order_statistics_of_the_binomial():
    # 21 rounds: P(Binomial(21, 1/2) <= 5) = 1.3 % <= 2.5 % < P(<= 6) = 3.9 %: the 6th and 16th values
    assert median_interval(list(range(1, 22))) == (6, 16)
    assert median_interval([5, 1, 4, 2, 3]) == (1, 5)       # too few rounds for 95 %: the whole range
    assert median_interval([7.0]) == (7.0, 7.0)
    with pytest.raises(ValueError):
        median_interval([])


def test_interleaved_alternates_and_gives_median_and_spread():
    now, order = [0.0], []

    def fn(name, cost):
        def call():
            order.append(name)
            now[0] += cost
        return call
    # a takes 1 s per call, b 2 s, except b's 3rd round that took 5 s (a stall)
    costs = iter([2.0, 2.0, 5.0, 2.0, 2.0])

    def b():
        order.append("b")
        now[0] += next(costs)
    fns = {"a": fn("a", 1.0), "b": b}
    out = interleaved(fns, rounds=5, calls=1, warmup=0, clock=lambda: now[0])
    assert order[:4] == ["a", "b", "b", "a"]                  # the order alternates round by round
    assert out["a"].median_ms == 1000.0 and out["a"].spread_ms == 0.0
    assert out["b"].median_ms == 2000.0 and out["b"].hi_ms == 5000.0  # 5 rounds: the range
    assert out["b"].spread_ms == 3000.0 and out["b"].rounds == 5


# --------------------------------------------------------------------------------------------
# the noise rule: a ratio whose interval includes 1 reads "no measurable change"

def test_interval_across_one_is_no_measurable_change():
    # 1.0 +- 0.06 against 1.1 +- 0.06: the ratio's interval [0.96, 1.23] includes 1
    run = {"latency_ms": 1.0, "baseline_latency_ms": 1.1, "latency_spread_ms": 0.06,
           "baseline_latency_spread_ms": 0.06, "baseline": {"latency_ms": 2.0}, "simulated_metrics": []}
    change = latency_change(run)
    assert change.text == "no measurable change" and change.direction == "same"
    # the interleaved baseline is the one compared with, not the stored 2.0 ms (which would read 2x)


def test_clear_change_is_said_as_a_factor():
    run = {"latency_ms": 1.0, "baseline_latency_ms": 1.5, "latency_spread_ms": 0.05,
           "baseline_latency_spread_ms": 0.05, "baseline": {"latency_ms": 1.5}, "simulated_metrics": []}
    assert latency_change(run).text == "1.50x faster"
    slower = {**run, "latency_ms": 2.0, "baseline_latency_ms": 1.0}
    assert latency_change(slower).text == "2.00x slower"
    assert latency_change({**run, "simulated_metrics": ["latency_ms"]}).text == "1.50x faster (simulated)"


def test_every_shape_of_a_run_reads_the_same():
    extra = {"baseline_latency_ms": 0.30, "latency_spread_ms": 0.02, "baseline_latency_spread_ms": 0.02,
             "simulated_metrics": ["latency_ms"]}
    m = Metrics(0.9, 100, 10, 5, 100, 1000, 0.281, True)
    b = Metrics(0.9, 100, 10, 10, 200, 1000, 0.230, False)    # the cached baseline: 1.22x "slower"
    result = Result("cnn", "fashion-mnist", "prune", {}, "cpu", m, b, dict(extra))
    stored = {"latency_ms": 0.281, "baseline": b.to_dict(), "extra": dict(extra), "simulated": True}
    for run in (result, result.to_dict(), stored):
        assert latency_change(run).text == "no measurable change (simulated)"
    # a stored run without an interleaved baseline: its baseline latency is the shared timing, no ratio
    old = {"latency_ms": 0.281, "baseline": b.to_dict(), "simulated": False}
    assert latency_change(old).text == "latency baseline unreliable" and latency_change(old).ratio is None
    # a caller that timed the baseline itself passes it: the +-5 % rule
    assert latency_change(old, b).text == "1.22x slower"


def test_cli_line_says_the_latency_change_and_the_runtime():
    d = {"model": "cnn", "method": "prune", "accuracy": 0.9, "accuracy_n": 100, "params": 10, "nonzero_params": 5,
         "size_bytes": 100, "macs": 1e6, "latency_ms": 1.0, "simulated": False, "simulated_metrics": [],
         "device": "cpu", "baseline": {"size_bytes": 200, "latency_ms": 3.0}, "baseline_latency_ms": 1.02,
         "latency_spread_ms": 0.05, "baseline_latency_spread_ms": 0.05, "runtime": "onnxruntime"}
    line = format_line(d)
    assert "latency   1.000 ms (no measurable change)" in line and "[cpu, onnxruntime]" in line


# --------------------------------------------------------------------------------------------
# a ratio outside what the MACs allow is re-timed once

def fake_timer(*answers):
    calls = []

    def timer(fns, sync=None):
        calls.append(sorted(fns))
        result, baseline = answers[min(len(calls), len(answers)) - 1]
        return {"result": T(result, 0.01), "baseline": T(baseline, 0.01)}
    timer.calls = calls
    return timer


def test_implausible_ratios():
    assert implausible(0.1, 1.0, 1000, 1000)           # 10x faster with the same MACs
    assert implausible(0.5, 1.0, 1000, 1500) is None   # 2x faster, 1.5x fewer MACs: within 1.5x of it
    assert implausible(2.0, 1.0, 1000, 1000)           # 2x slower with no more MACs
    assert implausible(2.0, 1.0, 3000, 1000) is None   # slower, but it has more MACs
    assert implausible(1.0, 1.0, None, 1000) is None   # MACs unknown: nothing to compare with


def test_retime_rule_fires_on_an_implausible_ratio():
    timer = fake_timer((0.1, 1.0), (0.98, 1.0))
    out = time_against_baseline(lambda: None, lambda: None, result_macs=1000, baseline_macs=1000, timer=timer)
    assert len(timer.calls) == 2 and timer.calls[0] == ["baseline", "result"]
    assert out["latency_retimed"].startswith("re-timed: the first timing (0.1 ms against 1 ms)")
    assert out["latency_ms"] == 0.98 and out["baseline_latency_ms"] == 1.0   # the second timing is kept
    assert out["latency_spread_ms"] == out["baseline_latency_spread_ms"] == 0.01


def test_plausible_ratio_is_timed_once():
    timer = fake_timer((0.5, 1.0))
    out = time_against_baseline(lambda: None, lambda: None, result_macs=500, baseline_macs=1000, timer=timer)
    assert len(timer.calls) == 1 and "latency_retimed" not in out and out["latency_ms"] == 0.5


def test_retime_reaches_a_real_result(fmnist, quick, monkeypatch):
    from compression.methods import compress
    timer = fake_timer((0.01, 1.0), (0.9, 1.0))  # an unstructured prune "100x faster": impossible
    monkeypatch.setattr(timing, "interleaved", timer)
    run = compress("mlp", None, "prune", {"method": "unstructured", "ratio": 0.5}, limit=100)
    extra = run.result.extra
    assert "re-timed" in extra["latency_retimed"] and len(timer.calls) == 2
    assert run.result.metrics.latency_ms == 0.9 and extra["baseline_latency_ms"] == 1.0
    assert extra["runtime"] == "eager" and "runtime_fallback" not in extra


# --------------------------------------------------------------------------------------------
# runtimes

def cli(*args, **kw):
    done = cli_in_process(*args, **kw)
    return done.returncode, done.stdout, done.stderr


def test_unknown_runtime_is_named():
    with pytest.raises(CompressionError, match="'tensorrt'"):
        runtimes.check_runtime("tensorrt")
    assert runtimes.default_runtime() == "eager"
    with runtimes.using_runtime("onnxruntime"):
        assert runtimes.default_runtime() == "onnxruntime"
    assert runtimes.default_runtime() == "eager"


@pytest.mark.parametrize("runtime", ["eager", "onnxruntime"])
def test_runner_computes_the_model_and_leaves_it_alone(runtime):
    model = build_model("lenet5").train()
    before = state_dict_hash(model)
    runner = runtimes.prepare(model, (1, 28, 28), "cpu", runtime)
    assert runner.runtime == runtime and runner.fallback is None
    x = torch.randn(4, 1, 28, 28)
    with torch.inference_mode():
        expected = model.eval()(x).numpy()
    got = runner.run(x)
    got = got.numpy() if isinstance(got, torch.Tensor) else got
    assert abs(got - expected).max() < 1e-4
    model.train()
    assert state_dict_hash(model) == before and model.training


def test_a_runtime_that_cannot_run_falls_back_with_its_message(monkeypatch):
    def no_compiler(model, x):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")

    def refused(model, input_shape, device):
        raise RuntimeError("Exporting the operator 'aten::foo' to ONNX opset version 17 is not supported")
    monkeypatch.setattr(runtimes, "_compiled", no_compiler)
    monkeypatch.setattr(runtimes, "_onnxruntime", refused)
    model = build_model("mlp")
    compiled = runtimes.prepare(model, (1, 28, 28), "cpu", "compile")
    assert compiled.runtime == "eager" and compiled.requested == "compile"
    assert "torch.compile (TorchInductor) could not run this model" in compiled.fallback
    assert "No working C++ compiler" in compiled.fallback and "timed in PyTorch eager instead" in compiled.fallback
    onnx = runtimes.prepare(model, (1, 28, 28), "cpu", "onnxruntime")
    assert onnx.runtime == "eager" and "aten::foo" in onnx.fallback
    # the result and its baseline: both on the runtime actually used, with the reason
    out = runtimes.time_result(model, model, (1, 28, 28), "cpu", runtime="onnxruntime", timer=fake_timer((1.0, 1.0)))
    assert out["runtime"] == "eager" and "aten::foo" in out["runtime_fallback"]


def test_runtime_is_stored_and_shown_in_runs_json(tmp_path, quick):
    code, out, err = cli("prune", "--model", "mlp", "--method", "structured", "--ratio", "0.5",
                                    "--limit", "100", "--runtime", "onnxruntime", "--json", home=tmp_path)
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d["runtime"] == "onnxruntime" and "runtime_fallback" not in d
    for key in ("latency_spread_ms", "baseline_latency_ms", "baseline_latency_spread_ms"):
        assert d[key] >= 0
    assert d["latency_ms"] > 0 and d["baseline_latency_ms"] > 0
    code, out, err = cli("runs", "--json", home=tmp_path)
    (row,) = [json.loads(line) for line in out.strip().splitlines()]
    assert code == 0 and row["runtime"] == "onnxruntime" and row["extra"]["baseline_latency_ms"] > 0
    code, out, err = cli("runs", home=tmp_path)  # the plain line names the runtime too
    assert "[cpu, onnxruntime]" in out


def test_cli_run_falls_back_and_says_so(tmp_path, quick, monkeypatch):
    def no_compiler(model, x):
        raise RuntimeError("InvalidCxxCompiler: No working C++ compiler found")
    monkeypatch.setattr(runtimes, "_compiled", no_compiler)
    code, out, err = cli("prune", "--model", "mlp", "--method", "structured", "--ratio", "0.5",
                                    "--limit", "100", "--runtime", "compile", "--no-store", "--json", home=tmp_path)
    assert code == 0, err
    d = json.loads(out.strip().splitlines()[-1])
    assert d["runtime"] == "eager" and "No working C++ compiler" in d["runtime_fallback"]
    code, out, err = cli("prune", "--model", "mlp", "--ratio", "0.5", "--runtime", "tpu", home=tmp_path)
    assert code == 2 and "'tpu'" in err


@pytest.mark.skipif(not os.path.exists("/proc/stat"), reason="OtherCpu reads Linux's /proc/stat")
def test_other_cpu_counts_another_process_busy():
    import subprocess
    import sys
    import time as _time
    from compression.timing import OtherCpu
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        _time.sleep(0.3)  # it is running
        with OtherCpu() as other:
            _time.sleep(0.6)
    finally:
        spinner.kill()
        spinner.wait()
    assert other.cores is not None and other.cores >= 0.5  # a spinning process keeps about one core busy
    with OtherCpu() as short:
        pass
    assert short.cores is None  # too short a block to say
