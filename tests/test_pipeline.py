"""Pipelines: parsing, composition rules refused before running, real artifacts that round-trip,
steps chained in the run store, Stop keeping finished steps, and the Deep Compression size."""

import pytest
import torch

from compression import CompressionError
from compression.models import load_pretrained, state_dict_hash
from compression.pipeline import (RECIPES, DistillStep, PipelineConfig, PruneStep, QuantizeStep, check_composition,
                                  load_artifact, parse_step, parse_steps, read_artifact, recipe_steps, run_and_store,
                                  run_pipeline, spec_of)
from compression.training import predict

QUICK = dict(subset=1000, monitor_images=200)  # train on 1k images, monitor on 200: seconds per step
LIMIT = 1000


# ---------------------------------------------------------------------------------------------
# parsing

def test_spec_round_trips_and_fills_defaults():
    steps = parse_steps("prune:unstructured:0.9:steps=3:epochs=4, finetune:3 ,distill:1:T=2,quantize:cluster-huffman:5")
    assert steps[0] == PruneStep("unstructured", 0.9, "global", 3, 4)
    assert steps[2] == DistillStep(epochs=1, T=2.0)
    assert steps[3] == QuantizeStep("cluster-huffman", 5)
    assert parse_steps(spec_of(steps)) == steps  # what is stored reproduces the pipeline
    for name in RECIPES:
        check_composition(recipe_steps(name))  # every named recipe composes


@pytest.mark.parametrize("text, named", [
    ("prune:unstructured:1.5", "1.5"),
    ("prune:diagonal:0.5", "diagonal"),
    ("quantize:uniform:9", "9"),
    ("quantize:cluster:16", "16"),
    ("finetune:0", "0"),
    ("distill:1:alpha=2", "2"),
    ("distill:1:teacher=nosuchmodel", "nosuchmodel"),
    ("squeeze:2", "squeeze"),
    ("finetune:x", "'x'"),
])
def test_bad_step_is_refused_naming_the_value(text, named):
    with pytest.raises(CompressionError, match=named) as err:
        parse_step(text)
    assert "\n" not in str(err.value)


@pytest.mark.parametrize("spec, reason", [
    ("quantize:uniform:8,finetune:1", "cannot follow quantize"),
    ("quantize:uniform:8,quantize:uniform:4", "cannot follow quantize"),
    ("prune:unstructured:0.5,quantize:cluster:4,prune:structured:0.5", "cannot follow quantize"),
    ("prune:unstructured:0.5,prune:structured:0.5", "structured pruning cannot follow unstructured"),
    ("distill:1,quantize:uniform:8", "needs a teacher different from the student"),
    ("prune:unstructured:0.5,quantize:binary:1", "binary weights have no zero"),
])
def test_incompatible_orders_are_refused_before_running(spec, reason):
    with pytest.raises(CompressionError, match=reason) as err:
        PipelineConfig(parse_steps(spec))
    assert str(err.value).startswith("step ")  # names the step that cannot follow


def test_early_exit_models_are_refused():
    from compression.models import build_from_card
    with pytest.raises(CompressionError, match="early-exit models are not supported"):
        check_composition(parse_steps("quantize:uniform:8"), build_from_card("lenet5_exits"))


def test_orders_that_compose_are_accepted():
    for spec in ("prune:structured:0.5,prune:unstructured:0.5,finetune:1,quantize:cluster-huffman:5",
                 "prune:unstructured:0.5,quantize:ternary",
                 "finetune:1,distill:1"):
        PipelineConfig(parse_steps(spec))


# ---------------------------------------------------------------------------------------------
# running: real artifacts

@pytest.fixture(scope="module")
def sparse_run(fmnist):
    """Unstructured 80 % with one epoch on 1k images, then 4-bit clustering + Huffman."""
    model = load_pretrained("mlp")
    before = state_dict_hash(model)
    cfg = PipelineConfig(parse_steps("prune:unstructured:0.8:epochs=1,quantize:cluster-huffman:4"), **QUICK)
    outcomes = list(run_pipeline("mlp", fmnist, cfg, limit=LIMIT, model=model))
    return outcomes, before, state_dict_hash(model)


def _same_predictions(outcome, fmnist):
    loaded = load_artifact(outcome.artifact)
    return torch.equal(predict(loaded, fmnist, limit=LIMIT), predict(outcome.model, fmnist, limit=LIMIT))


def test_each_step_is_measured_and_the_input_model_is_untouched(sparse_run):
    outcomes, before, after = sparse_run
    assert before == after
    assert [o.index for o in outcomes] == [1, 2]
    pruned, packed = outcomes
    assert pruned.result.method == packed.result.method == "pipeline"
    assert packed.result.extra["final"] and not pruned.result.extra["final"]
    # 80 % of the weights and biases removed; clustering keeps every zero exact
    assert pruned.result.extra["sparsity"] == pytest.approx(0.8, abs=1e-4)
    assert packed.result.extra["sparsity"] >= pruned.result.extra["sparsity"]
    assert packed.result.metrics.simulated and pruned.result.metrics.simulated  # dense kernels run the zeros
    # ... but only their speed: the sparse and the packed files are real bytes
    assert pruned.result.extra["simulated_metrics"] == packed.result.extra["simulated_metrics"] == ["latency_ms"]
    assert packed.result.extra["kernel"] is None  # sparse: no int8 kernel is tried


def test_artifacts_round_trip_to_the_same_predictions_and_their_bytes_are_size_bytes(sparse_run, fmnist):
    for outcome in sparse_run[0]:
        assert outcome.result.metrics.size_bytes == len(outcome.artifact)
        assert _same_predictions(outcome, fmnist)
    header, _ = read_artifact(sparse_run[0][-1].artifact)
    assert header["payload"] == "quantized" and header["architecture"]["builder"] == "compression.models:mlp"


def test_clustering_the_sparse_model_stores_about_bits_per_nonzero(sparse_run):
    pruned, packed = sparse_run[0]
    nonzero = packed.result.metrics.nonzero_params
    # per nonzero weight: <= 4 bits of Huffman-coded index + <= 8 bits of gap, + biases and codebooks
    assert packed.result.metrics.size_bytes < nonzero * 12 / 8 + 4 * 410 + 2000
    # the sparse float file stores >= 4 bytes per nonzero: clustering must beat it by > 2.5x
    assert packed.result.metrics.size_bytes * 2.5 < pruned.result.metrics.size_bytes


def test_structured_distill_int8_pipeline_round_trips_with_smaller_layers(fmnist):
    cfg = PipelineConfig(parse_steps("prune:structured:0.5:scope=layer,distill:1,quantize:uniform:8"), **QUICK)
    outcomes = list(run_pipeline("mlp", fmnist, cfg, limit=LIMIT))
    pruned, distilled, quantized = outcomes
    # 300-100 hidden -> 150-50: 784*150+150 + 150*50+50 + 50*10+10 parameters, real MACs
    assert pruned.result.metrics.params == 784 * 150 + 150 + 150 * 50 + 50 + 50 * 10 + 10
    assert pruned.result.metrics.macs < 0.5 * pruned.result.baseline.macs
    assert not pruned.result.metrics.simulated and pruned.result.extra["simulated_metrics"] == []
    assert distilled.result.extra["simulated_metrics"] == []
    # dense and 8-bit: a real int8 kernel runs it, chosen by measurement, and its latency is reported
    from compression.quantization.kernels import onnxruntime_available
    kernel = quantized.result.extra["kernel"]
    if onnxruntime_available():
        assert kernel["chosen"] and not quantized.result.metrics.simulated
        assert quantized.result.extra["simulated_metrics"] == []  # the int8 kernel's latency is real
        assert quantized.result.metrics.latency_ms == kernel["latency_ms"]
        assert "Latency is real" in quantized.result.extra["gain"]
    else:  # said so, and the speed stays simulated
        assert quantized.result.metrics.simulated and "onnxruntime" in kernel["reason"]
        assert quantized.result.extra["simulated_metrics"] == ["latency_ms"]
    # 8-bit codes: a quarter of the float32 bytes, plus per-channel scales and the float biases
    assert quantized.result.metrics.size_bytes < 0.27 * distilled.result.metrics.size_bytes
    for outcome in outcomes:
        assert outcome.result.metrics.size_bytes == len(outcome.artifact)
        assert _same_predictions(outcome, fmnist)


def test_deep_compression_stores_30x_fewer_bytes_than_float32(fmnist):
    """The recipe's storage without its fine-tuning (accuracy is the benchmark's job): 90 % zeros,
    5-bit Huffman-coded clusters, relative positions. Han et al.'s 40x on LeNet-300-100."""
    steps = (PruneStep("unstructured", 0.9, "global"), QuantizeStep("cluster-huffman", 5))
    outcomes = list(run_pipeline("mlp", fmnist, PipelineConfig(steps), limit=200))
    final = outcomes[-1].result
    assert final.baseline.size_bytes / final.metrics.size_bytes >= 30
    assert final.metrics.nonzero_params <= 0.1 * final.metrics.params + 10


def test_steps_are_stored_as_a_chain_with_their_artifacts(fmnist, home):
    from compression.pareto import pipeline_path
    from compression.store import RunStore
    store = RunStore()
    cfg = PipelineConfig(parse_steps("prune:unstructured:0.5,quantize:uniform:4"), **QUICK)
    pairs = list(run_and_store("mlp", fmnist, cfg, store, limit=200))
    ids = [run_id for _, run_id in pairs]
    path = pipeline_path(ids[-1], store.get)
    assert [r["id"] for r in path] == ids
    assert path[0]["parent_id"] is None and path[1]["parent_id"] == ids[0]
    for row in path:
        from pathlib import Path
        assert Path(row["artifact_path"]).stat().st_size == row["size_bytes"]
        assert row["config"]["pipeline"] == cfg.spec


def test_stop_keeps_the_finished_steps(fmnist):
    events = []
    stop = lambda: any(e.get("stage") == 2 for e in events)  # noqa: E731  stop once step 2 reports
    cfg = PipelineConfig(parse_steps("prune:unstructured:0.5,finetune:2,quantize:uniform:8"), **QUICK)
    outcomes = list(run_pipeline("mlp", fmnist, cfg, limit=200, progress=events.append, should_stop=stop))
    assert [o.index for o in outcomes] == [1]  # step 2 was interrupted: dropped; step 3 never started
    total = sum([1, 2, 1]) + 3  # each step's units, plus one per step for measuring its result
    assert max(e["step"] for e in events) < total
    assert all(e["steps"] == total and e["stages"] == 3 for e in events)


def test_the_bar_counts_the_work_left_until_the_last_step_is_measured(fmnist):
    """The issue's pipeline bar read '100 % · about 0 s left' for 114 s while step 2 was measured
    (the int8 kernel search): the bar now reaches its end only when the last step's result is
    measured, and its time left comes from the steps done."""
    events = []
    cfg = PipelineConfig(parse_steps("prune:unstructured:0.5,quantize:uniform:8"), **QUICK)
    outcomes = list(run_pipeline("mlp", fmnist, cfg, limit=200, progress=events.append))
    assert len(outcomes) == 2
    steps = [e["step"] / e["steps"] for e in events]
    assert steps == sorted(steps) and steps[-1] == 1.0  # never goes back, ends at the end
    full = [i for i, e in enumerate(events) if e["step"] == e["steps"]]
    assert full == [len(events) - 1]  # 100 % only once the last step is measured
    measuring = [e for e in events if e.get("phase", "").startswith("measuring step 2")]
    assert measuring and measuring[0]["step"] < measuring[0]["steps"]
    assert all(e["seconds_left"] is None for e in events if e["stage"] == 1 and "done" not in e["phase"])
    after_first = [e for e in events if e["stage"] == 2 or e["phase"] == "step 1 of 2 done"]
    assert any(e["seconds_left"] is not None for e in after_first)  # estimated from step 1's duration


def test_a_job_past_its_own_estimate_does_not_say_zero_seconds_left():
    import time

    from ui.jobs import Job
    job = Job(label="pipeline", device="cpu")
    job.started_at = time.time() - 10
    job.progress({"phase": "measuring step 2 of 2", "step": 3, "steps": 4, "seconds_left": 0.5})
    job._event_at = time.time() - 5  # the estimate ran out 4.5 s ago
    phase, fraction, left = job.now()
    assert fraction == 0.75 and left is None and phase.startswith("measuring step 2")
    job.progress({"phase": "prune", "step": 1, "steps": 4, "seconds_left": 30.0})
    assert 25 < job.now()[2] <= 30


def test_unknown_artifact_is_refused():
    with pytest.raises(CompressionError, match="not a model file this app writes"):
        load_artifact(b"GIF89a not ours")
    with pytest.raises(CompressionError, match="records no architecture"):
        load_artifact(b"PK\x03\x04 a bare state_dict")
