"""Centroid fine-tuning after weight clustering (Deep Compression's stage 2, Han et al. 2016): only
the codebooks train; the codes, the pruned zeros and the file size stay as clustering left them,
and the file loads back to the model that was measured."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from compression import CompressionError
from compression.knobs import describe, parse_spec, spec_of
from compression.models import load_pretrained, state_dict_hash
from compression.pruning import prune_weights
from compression.quantization import QuantConfig, load_artifact, quantize
from compression.training import predict

BITS = 2        # few clusters: clustering costs accuracy, so the centroids have something to recover
SUBSET = 2048   # training images for the fine-tuning (16 Adam steps at batch 128)


@pytest.fixture(scope="module")
def pruned():
    """mlp with 90 % of its weights set to zero (global magnitude), the Deep Compression start."""
    return prune_weights(load_pretrained("mlp", "cpu"), 0.9, scope="global").eval()


@pytest.fixture(scope="module")
def clustered(pruned, fmnist):
    """(plain clustering, clustering + 1 epoch of centroid fine-tuning), zeros kept exact."""
    before = state_dict_hash(pruned)
    plain = quantize(pruned, QuantConfig("cluster-huffman", BITS, keep_zeros=True), dataset=fmnist)
    tuned = quantize(pruned, QuantConfig("cluster-huffman", BITS, keep_zeros=True, centroid_epochs=1,
                                         centroid_lr=1e-3), dataset=fmnist, subset=SUBSET)
    assert state_dict_hash(pruned) == before  # the given model is never modified
    return plain, tuned


def test_codes_zeros_and_size_are_unchanged(clustered):
    plain, tuned = clustered
    assert plain.encoded.keys() == tuned.encoded.keys() and len(plain.encoded) == 3
    changed = 0
    for key, enc in plain.encoded.items():
        new = tuned.encoded[key]
        assert np.array_equal(enc.arrays["indices"], new.arrays["indices"])      # the same cluster of every weight
        assert np.array_equal(enc.arrays["positions"], new.arrays["positions"])  # the same stored positions
        changed += int(not np.array_equal(enc.arrays["codebook"], new.arrays["codebook"]))
        w_plain = dict(plain.model.named_parameters())[key].detach()
        w_tuned = dict(tuned.model.named_parameters())[key].detach()
        assert torch.equal(w_plain == 0, w_tuned == 0)                 # the pruned zeros stay exactly zero
        assert len(torch.unique(w_tuned[w_tuned != 0])) <= 2 ** BITS   # still at most 2^bits shared values
    assert changed == 3  # every layer's centroids moved
    # only the codebook's float32 values differ, so the file has the same length
    assert len(tuned.artifact) == len(plain.artifact)
    biases = {k: v for k, v in tuned.model.state_dict().items() if k not in tuned.encoded}
    assert all(torch.equal(v, plain.model.state_dict()[k]) for k, v in biases.items())  # only centroids train


def test_the_file_loads_back_to_the_same_predictions(clustered, pruned, fmnist):
    _, tuned = clustered
    loaded = load_artifact(tuned.artifact, pruned)
    assert torch.equal(predict(loaded, fmnist, limit=2000), predict(tuned.model, fmnist, limit=2000))


def test_training_loss_falls(clustered, fmnist):
    """The centroids are trained on these images' cross-entropy (gradient of each cluster = the sum
    of its weights' gradients), so their loss, measured the same way before and after, is lower."""
    plain, tuned = clustered
    data = fmnist.split("train").head(SUBSET)
    x, y = fmnist.normalize(data.images, "cpu"), data.labels

    def loss(model):
        with torch.no_grad():
            return float(F.cross_entropy(model.eval()(x), y))
    assert loss(tuned.model) < loss(plain.model)
    assert tuned.history and tuned.history[-1]["phase"] == "centroids"


def test_knob_is_described_parsed_and_refused_where_it_has_no_codebook():
    knobs = {k["name"]: k for k in describe("quantize")["knobs"]}
    assert knobs["centroid_epochs"]["min"] == 0 and knobs["centroid_epochs"]["max"] == 50
    assert knobs["centroid_epochs"]["default"] == 0 and "centroid" in knobs["centroid_epochs"]["help"]
    assert knobs["centroid_lr"]["min_open"] and knobs["centroid_lr"]["help"]
    text = "quantize:cluster-huffman:4:centroid_epochs=2:centroid_lr=0.001"
    _, cfg = parse_spec(text)
    assert (cfg.centroid_epochs, cfg.centroid_lr) == (2, 1e-3) and spec_of("quantize", cfg) == text
    with pytest.raises(CompressionError, match="centroid_epochs=1 needs a codebook"):
        QuantConfig("uniform", 4, centroid_epochs=1)
    with pytest.raises(CompressionError, match="51"):
        QuantConfig("cluster", 4, centroid_epochs=51)
    with pytest.raises(CompressionError, match="dataset"):
        quantize(torch.nn.Linear(4, 2), QuantConfig("cluster", 2, centroid_epochs=1))
