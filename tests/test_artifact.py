"""One artifact container, one loader: every method's file rebuilds its model from the bytes
alone, and the files written before the container (bare sparse, bare state_dict of a pruned
network, bare quantized file, pipeline container) still load with the same predictions."""

import pytest
import torch

from compression import CompressionError
from compression.artifact import header_of, load_artifact, payload_kind, read_artifact, write_artifact
from compression.models import load_pretrained, state_dict_bytes
from compression.training import predict

LIMIT = 500


def _same(a, b, data) -> bool:
    return bool((predict(a, data, limit=LIMIT).argmax(1) == predict(b, data, limit=LIMIT).argmax(1)).all())


@pytest.fixture(scope="module")
def mlp():
    return load_pretrained("mlp")


def test_files_written_before_the_container_still_load(mlp, fmnist):
    from compression.pruning import PruneConfig, prune, sparse_bytes
    from compression.quantization import QuantConfig, quantize
    from compression.refs import architecture_for, parse

    arch = architecture_for(parse("mlp"), fmnist)
    sparse = prune(mlp, PruneConfig("unstructured", 0.8), input_shape=fmnist.input_shape)
    old_sparse = sparse_bytes(sparse)                       # `prune --out` wrote this (CXSPARS1)
    assert payload_kind(old_sparse) == "sparse" and header_of(old_sparse) is None
    assert _same(load_artifact(old_sparse, architecture="mlp"), sparse, fmnist)

    smaller = prune(mlp, PruneConfig("structured", 0.5), input_shape=fmnist.input_shape)
    old_dense = state_dict_bytes(smaller)                   # structured: a bare, smaller state_dict
    assert payload_kind(old_dense) == "dense"
    assert _same(load_artifact(old_dense, architecture=arch), smaller, fmnist)

    qm = quantize(mlp, QuantConfig(bits=4), dataset=fmnist, architecture=arch)
    assert payload_kind(qm.artifact) == "quantized"         # the Quantization page's file (CEQ1)
    assert _same(load_artifact(qm.artifact), qm.model, fmnist)  # it records its architecture itself

    old_pipeline = write_artifact(old_sparse, "sparse", arch)  # pipelines wrote the container already
    assert _same(load_artifact(old_pipeline), sparse, fmnist)


def test_a_bare_file_without_its_architecture_is_refused_with_the_reason(mlp):
    from compression.pruning import sparse_bytes
    with pytest.raises(CompressionError, match="records no architecture"):
        load_artifact(sparse_bytes(mlp))
    with pytest.raises(CompressionError, match="not a model file"):
        load_artifact(b"\x89PNG\r\n\x1a\n....")


@pytest.mark.parametrize("method, config", [
    ("prune", "unstructured:0.7"), ("prune", "structured:0.5:scope=layer"), ("quantize", "cluster-huffman:4"),
    ("architecture", "low-rank:energy=0.8"),
])
def test_every_method_writes_the_container_and_it_loads_back(method, config, fmnist):
    from compression.methods import compress
    run = compress("mlp", fmnist, method, config, device="cpu", limit=LIMIT)
    header, _ = read_artifact(run.artifact)
    assert header["architecture"]["name"] == "mlp" and header["format"] == 1
    assert run.result.metrics.size_bytes == len(run.artifact)  # size_bytes is the file, header included
    assert _same(load_artifact(run.artifact), run.model, fmnist)


def test_header_from_the_future_is_refused():
    import json
    import struct
    import zlib
    head = zlib.compress(json.dumps({"format": 99, "payload": "dense", "architecture": {}}).encode())
    blob = b"CXPIPE1\0" + struct.pack("<I", len(head)) + head
    with pytest.raises(CompressionError, match="newer than this code"):
        read_artifact(blob)
