"""Costs predicted before a configuration is evaluated (compression.costs) against the run's own
measurement: the predicted bytes are the artifact's length, byte for byte, for one-shot
configurations; with training left out, fixed-width files keep their exact length (training keeps
the shapes and the pruned zeros) and Huffman-coded ones stay within TOLERANCE (the codes'
frequencies move as the weights train). Parameters and MACs are shapes: always exact."""

from __future__ import annotations

import pytest
import torch

from compression.search import SearchConfig, cost_model
from compression.sweep import Job, run_job

TOLERANCE = 0.05  # Huffman-coded files after training; measured -3.7 % on Deep Compression's grid point


def _measured(model: str, spec: str, subset: int | None = None):
    job = Job(model, None, spec, limit=200, subset=subset, kernel=False, pipeline=True)
    return run_job(job).result.metrics


@pytest.mark.parametrize("model, spec", [
    ("mlp", "prune:unstructured:0.8:scope=global,quantize:uniform:4"),      # the 56,855 B
    ("mlp", "prune:structured:0.75:scope=layer,quantize:uniform:2"),
    ("mlp", "prune:unstructured:0.7:scope=global,quantize:cluster-huffman:3"),
    ("mlp", "quantize:cluster-huffman:5"),
    ("mlp", "prune:unstructured:0.95:scope=layer"),
    ("lenet5", "prune:structured:0.5:scope=layer,quantize:uniform:4"),     # channels through convolutions
    ("lenet5", "quantize:uniform:8"),
])
def test_one_shot_predictions_are_the_files_own_bytes(model, spec):
    costs = cost_model(model, None, "cpu", SearchConfig())
    before = {k: v.clone() for k, v in costs.resolved.model.state_dict().items()}
    predicted = costs.predict(spec)
    measured = _measured(model, spec)
    assert predicted.exact
    assert (predicted.size_bytes, predicted.params, predicted.nonzero_params, predicted.macs) == \
        (measured.size_bytes, measured.params, measured.nonzero_params, measured.macs)
    after = costs.resolved.model.state_dict()  # the model it was given is untouched
    assert all(torch.equal(before[k], after[k]) for k in before)


@pytest.mark.parametrize("spec, tolerance", [
    ("prune:structured:0.5:scope=layer:epochs=1,quantize:uniform:4", 0.0),     # fixed-width codes, same shapes
    ("prune:unstructured:0.7:scope=global:epochs=1,quantize:uniform:8", 0.0),  # the same zeros, fixed width
    ("prune:unstructured:0.9:scope=global:steps=3:epochs=1,finetune:2,quantize:cluster-huffman:4:centroid_epochs=1",
     TOLERANCE),
])
def test_trained_configurations_are_estimates_within_the_tolerance(spec, tolerance):
    cfg = SearchConfig(subset=1000)
    predicted = cost_model("mlp", None, "cpu", cfg).predict(spec)
    measured = _measured("mlp", spec, subset=1000)
    assert not predicted.exact
    assert abs(predicted.size_bytes - measured.size_bytes) <= tolerance * measured.size_bytes
    assert (predicted.params, predicted.macs) == (measured.params, measured.macs)


def test_a_step_that_trains_new_layers_is_not_predicted():
    costs = cost_model("mlp", None, "cpu", SearchConfig())
    assert costs.predict("prune:structured:0.5:scope=layer,distill:1") is None
    assert costs.predict("quantize:uniform:4").cost("latency_ms") is None  # latency is never predicted
