"""Pipelines and search accept the residual network and the vision transformer (issue 17): a
structured-pruning -> 6-bit pipeline runs on each, every step's file loads back to the same
predictions, and a search's trials on them all complete. (6 bits and pruning-only trials: no int8
kernel search, which times six runtimes at batch 256 and would take minutes here; the CLI's 8-bit
runs on both are in the README's benchmark table.)"""

import pytest
import torch

from compression.pipeline import PipelineConfig, load_artifact, parse_steps, run_pipeline
from compression.search import SearchConfig, search, study_rows
from compression.training import predict

LIMIT = 300
QUICK = dict(subset=500, monitor_images=100)


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_a_structured_then_int8_pipeline_runs_on_the_model(name, fmnist):
    cfg = PipelineConfig(parse_steps("prune:structured:0.5:scope=layer,quantize:uniform:6"), **QUICK)
    pruned, quantized = list(run_pipeline(name, fmnist, cfg, limit=LIMIT))
    # half the channels (resnet: residual groups together) or half the heads and MLP width (vit):
    # stem, patch embedding and classifier stay, so somewhat more than a quarter of the MACs is left
    assert pruned.result.metrics.macs < 0.6 * pruned.result.baseline.macs
    assert pruned.result.metrics.params < 0.6 * pruned.result.baseline.params
    assert quantized.result.metrics.size_bytes < 0.3 * pruned.result.metrics.size_bytes
    for outcome in (pruned, quantized):
        assert outcome.result.metrics.size_bytes == len(outcome.artifact)
        loaded = load_artifact(outcome.artifact)
        assert torch.equal(predict(loaded, fmnist, limit=LIMIT), predict(outcome.model, fmnist, limit=LIMIT))


@pytest.mark.parametrize("name", ["resnet", "vit"])
def test_a_search_runs_its_trials_on_the_model(name, tmp_path):
    cfg = SearchConfig(objective="size_bytes", methods=("prune",), trials=2, seed=0)
    storage = f"sqlite:///{tmp_path / 'search.sqlite'}"
    outcome = search(name, None, cfg, study=f"{name}-study", limit=LIMIT, store=False, storage=storage)
    rows = study_rows(f"{name}-study", storage=storage)
    assert len(rows) == len(outcome.trials) == 2 and not outcome.refused
    assert all(0 <= r["accuracy"] <= 1 and r["cost"] > 0 for r in rows)
