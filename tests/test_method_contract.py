"""The one method contract, end to end: a method registered from outside the core is found by every
path (description, CLI, pipeline parsing and running, sweeps, the run store); real torchvision
architectures and an entry-point model go through pruning, quantization, distillation and a
pipeline, each run stored with an artifact that loads back to the same predictions; bad model
references are refused in one line naming the bad value.

Kept fast for 2 shared cores: a 10-class 32x32 image folder of 120 train / 60 test images, one
epoch, and latency timed on 3 forwards instead of 60 (latency is not what these tests check).
"""

import dataclasses
import importlib.util
import json

import pytest
import torch

from compression import CompressionError
from support import quick_cpu_timing, write_tinted_folder
from compression.artifact import header_of, load_artifact
from compression.knobs import describe, knob_schema, parse_spec
from compression.methods import (Compressed, _REGISTRY, compress, method_names, register_method, run_method,
                                 save_run)
from compression.store import RunStore
from compression.training import predict

RESNET, MOBILENET = "torchvision:resnet18", "torchvision:mobilenet_v2"
LIMIT = 200  # Fashion-MNIST test images for the zoo / entry-point runs


@pytest.fixture(scope="module", autouse=True)
def quick_cpu():
    with quick_cpu_timing():
        yield


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    """imagefolder: 10 classes x 12 train + 6 test RGB 32x32 PNGs (class = tint, plus noise)."""
    return write_tinted_folder(tmp_path_factory.mktemp("tinyfolder"), classes=10, train=12, test=6,
                               tint=lambda c: (c % 3, 25 * c))


@pytest.fixture(scope="module")
def rgb(folder):
    from compression.data import load_dataset
    data = load_dataset(folder)
    assert (data.input_shape, data.num_classes) == ((3, 32, 32), 10)
    assert len(data.test.labels) == 60 and len(data.train.labels) + len(data.val.labels) == 120
    return data


def stored(result) -> dict:
    """The stored run of a result, checked to point at its artifact file."""
    row = RunStore().get(result.extra["run_id"])
    assert row is not None and row["artifact_path"] == result.extra["artifact"]
    return row


def same_predictions(result, model, data) -> torch.nn.Module:
    """The result's artifact file, loaded alone, predicts what the result's model predicts."""
    with open(result.extra["artifact"], "rb") as f:
        blob = f.read()
    assert len(blob) == result.metrics.size_bytes  # the size reported is the file's
    loaded = load_artifact(blob)
    ours, theirs = predict(model.cpu(), data, "test", limit=LIMIT), predict(loaded, data, "test", limit=LIMIT)
    assert torch.equal(ours.argmax(1), theirs.argmax(1))
    assert torch.allclose(ours, theirs, atol=1e-4)
    return loaded


def run_kept(reference, data, method, config=None, **kwargs):
    """run_method, keeping the model: `compress` + `save_run` (what run_method does)."""
    run = compress(reference, data, method, config, **kwargs)
    save_run(run.result, run.artifact)
    return run


# ---------------------------------------------------------------------------------------------
# 1. a method registered from outside the core is found everywhere

@dataclasses.dataclass(frozen=True)
class ScaleWeights:
    factor: float = 1.0

    def __post_init__(self):
        if not isinstance(self.factor, (int, float)) or not 0 < self.factor <= 10:
            raise CompressionError(f"scale factor must be in (0, 10], got {self.factor!r}")


def scale_weights(model, cfg: ScaleWeights, ctx) -> Compressed:
    from compression.models import clone_model
    scaled = clone_model(model)
    with torch.no_grad():
        for p in scaled.parameters():
            p.mul_(cfg.factor)
    return Compressed(scaled.eval(), extra={"gain": "none: a toy"})


@pytest.fixture(scope="module")
def toy():
    register_method("scale-weights", ScaleWeights, scale_weights, help="multiply every weight by a factor",
                    knobs={"factor": {"min": 0.0, "max": 10.0, "min_open": True}})
    yield "scale-weights"
    _REGISTRY.pop("scale-weights", None)


def test_registered_method_is_described(toy):
    assert toy in method_names()
    assert describe(toy)["family"] == toy and describe(toy)["help"].startswith("multiply")
    (knob,) = knob_schema(toy)
    assert knob["name"] == "factor" and knob["type"] == "float" and knob["default"] == 1.0 and knob["max"] == 10.0
    assert parse_spec("scale-weights:factor=0.5")[1] == ScaleWeights(0.5)
    with pytest.raises(CompressionError, match="'x'"):
        parse_spec("scale-weights:factor=x")


@pytest.mark.skipif(importlib.util.find_spec("compression.commands.methods") is None,
                    reason="the `methods` command is not there yet")
def test_registered_method_is_listed_by_the_cli(toy, capsys):
    from compression.cli import main
    assert main(["methods", "--json"]) == 0
    out = capsys.readouterr().out
    rows = [json.loads(line) for line in out.splitlines() if line.strip()]
    rows = rows[0] if len(rows) == 1 and isinstance(rows[0], list) else rows
    assert toy in {r.get("method", r.get("name")) for r in rows}


def test_registered_method_is_a_pipeline_step(toy, fmnist):
    from compression.pipeline import PipelineConfig, parse_steps, run_and_store, spec_of, step_kind
    steps = parse_steps("prune:unstructured:0.5,scale-weights:factor=0.5")
    assert [step_kind(s) for s in steps] == ["prune", toy] and steps[1] == ScaleWeights(0.5)
    assert parse_steps(spec_of(steps)) == steps
    store = RunStore()
    (first, id1), (second, id2) = run_and_store("lenet5", fmnist, PipelineConfig(steps), store, limit=LIMIT)
    for name, p in second.model.named_parameters():
        assert torch.equal(p, dict(first.model.named_parameters())[name] * 0.5)
    row = store.get(id2)
    assert row["parent_id"] == id1 and row["config"]["step_kind"] == toy and row["extra"]["final"]
    same_predictions(second.result, second.model, fmnist)


def test_step_values_may_hold_colons_and_commas(toy):
    from compression.finetune import DistillStep
    from compression.pipeline import parse_steps, spec_of
    from compression.quantization.config import QuantConfig
    steps = parse_steps('scale-weights:factor=2,distill:1:teacher=torchvision:resnet18:T=2,'
                        'quantize:uniform:8:layer_bits=[["conv1",4],["fc",6]]')
    assert steps == (ScaleWeights(2.0), DistillStep(epochs=1, T=2.0, teacher=RESNET),
                     QuantConfig("uniform", 8, layer_bits=(("conv1", 4), ("fc", 6))))
    assert parse_steps(spec_of(steps)) == steps  # what a run stores reproduces it


def test_registered_method_in_a_sweep_is_stored(toy, fmnist):
    from compression.sweep import default_executor
    from compression.refs import resolve
    original = resolve("lenet5", fmnist).model
    points = list(default_executor().map(
        lambda f: run_method("lenet5", fmnist, toy, {"factor": f}, limit=LIMIT), [0.5, 2.0, -1.0]))
    assert [p.index for p in points] == [0, 1, 2]
    assert "-1" in points[2].error and points[2].result is None  # the config refused: that point's error
    for point, factor in zip(points[:2], (0.5, 2.0)):
        result = point.result
        row = stored(result)
        assert row["method"] == toy and row["config"] == {"factor": factor}
        assert row["extra"]["spec"] == f"scale-weights:factor={factor:g}"
        with open(result.extra["artifact"], "rb") as f:
            loaded = load_artifact(f.read())
        assert header_of(open(result.extra["artifact"], "rb").read())["architecture"]["name"] == "lenet5"
        for name, p in loaded.named_parameters():
            assert torch.allclose(p, dict(original.named_parameters())[name].cpu() * factor)
    assert toy in {r["method"] for r in RunStore().runs(method=toy)}


# ---------------------------------------------------------------------------------------------
# 2. torchvision architectures on an image folder

def test_evaluate_is_the_reference_baseline(folder, rgb):
    from compression.evaluate import evaluate
    from compression.refs import baseline, resolve
    result = evaluate(RESNET, dataset=folder)
    assert result.metrics.accuracy_n == 60 and result.metrics.params == 11_181_642  # 10-class head
    # a random-init reference is one model: what evaluate reports is run_method's baseline
    assert result.metrics.accuracy == baseline(resolve(RESNET, folder), "cpu").accuracy


@pytest.mark.parametrize("reference", [RESNET, MOBILENET])
def test_structured_pruning_removes_channels_across_residuals(reference, folder, rgb):
    from compression.models import state_dict_hash
    from compression.refs import resolve
    before = state_dict_hash(resolve(reference, folder).model)
    run = run_kept(reference, folder, "prune", "structured:0.5:scope=layer")
    result, model = run.result, run.model
    assert state_dict_hash(resolve(reference, folder).model) == before  # the cached reference is untouched
    assert result.method == "prune" and result.model == reference and not result.metrics.simulated
    assert result.extra["simulated_metrics"] == [] and stored(result)["extra"]["simulated_metrics"] == []
    assert result.metrics.macs <= 0.35 * result.baseline.macs
    assert result.metrics.params < 0.4 * result.baseline.params
    if reference == RESNET:  # each residual sum's channels pruned together with the stem's
        width = model.conv1.out_channels
        assert width < 64 and all(b.conv2.out_channels == width for b in model.layer1)
    assert stored(result)["method"] == "prune"
    loaded = same_predictions(result, model, rgb)
    assert [p.shape for p in loaded.parameters()] == [p.shape for p in model.parameters()]


@pytest.mark.parametrize("reference", [RESNET, MOBILENET])
def test_unstructured_pruning_stores_a_sparse_file(reference, folder, rgb):
    run = run_kept(reference, folder, "prune", "unstructured:0.5")
    result = run.result
    assert result.metrics.simulated and 0.45 <= result.extra["sparsity"] <= 0.55
    # the sparse file is real, its speed is not (dense kernels): only latency is simulated
    assert result.extra["simulated_metrics"] == ["latency_ms"] == result.to_dict()["simulated_metrics"]
    assert result.metrics.size_bytes < 0.75 * result.baseline.size_bytes
    assert header_of(run.artifact)["payload"] == "sparse"
    assert stored(result)["method"] == "prune"
    same_predictions(result, run.model, rgb)


def test_eight_bit_quantization(folder, rgb):
    # backend=none: choosing the int8 kernel by measurement takes minutes here; it is another test's
    run = run_kept(MOBILENET, folder, "quantize", "uniform:8:backend=none")
    result = run.result
    assert result.method == "quantize" and header_of(run.artifact)["payload"] == "quantized"
    assert result.metrics.size_bytes < 0.3 * result.baseline.size_bytes
    assert stored(result)["method"] == "quantize"
    same_predictions(result, run.model, rgb)


def test_distillation_from_another_reference(folder, rgb):
    from compression.finetune import DistillStep
    run = run_kept(MOBILENET, folder, "distill", {"epochs": 1, "teacher": RESNET})
    result = run.result
    assert result.method == "distill" and result.config["teacher"] == RESNET
    assert [h["epoch"] for h in result.extra["history"] if "epoch" in h][-1:] == [1]
    assert stored(result)["config"]["teacher"] == RESNET
    assert parse_spec(f"distill:{result.extra['spec'].partition(':')[2]}")[1] == DistillStep(epochs=1, teacher=RESNET)
    same_predictions(result, run.model, rgb)


def test_depthwise_conversion_of_a_torchvision_model(folder, rgb):
    """resnet18's 3x3 convolutions become depthwise-separable blocks (the 7x7 stem too): fewer
    parameters and MACs, and the file rebuilds the converted network alone (its header records
    which layers became blocks)."""
    from compression.architecture import SeparableConv2d
    run = run_kept(RESNET, folder, "architecture", "depthwise:min_in_channels=4")
    result = run.result
    blocks = [m for m in run.model.modules() if isinstance(m, SeparableConv2d)]
    assert result.method == "architecture" and len(blocks) >= 16  # the 16 3x3 convs of the basic blocks
    assert result.metrics.params < 0.25 * result.baseline.params and result.metrics.macs < result.baseline.macs
    assert header_of(run.artifact)["architecture"]["kwargs"]["base"]["name"] == RESNET
    assert stored(result)["method"] == "architecture"
    same_predictions(result, run.model, rgb)


def test_two_step_pipeline(folder, rgb):
    from compression.pipeline import PipelineConfig, parse_steps, run_and_store
    store = RunStore()
    cfg = PipelineConfig(parse_steps("prune:structured:0.5:scope=layer,quantize:uniform:8:backend=none"))
    (pruned, id1), (quantized, id2) = run_and_store(RESNET, rgb, cfg, store)
    assert quantized.result.metrics.macs <= 0.35 * quantized.result.baseline.macs
    assert store.get(id2)["parent_id"] == id1 and store.get(id2)["model"] == RESNET
    for outcome in (pruned, quantized):
        same_predictions(outcome.result, outcome.model, rgb)
    assert header_of(quantized.artifact)["payload"] == "quantized"


def test_pipeline_step_after_a_conversion_rebuilds_the_converted_layers(fmnist):
    from compression.pipeline import PipelineConfig, parse_steps, run_pipeline
    cfg = PipelineConfig(parse_steps("architecture:depthwise,quantize:uniform:8:backend=none"))
    converted, quantized = run_pipeline("cnn", fmnist, cfg, limit=LIMIT)
    assert header_of(quantized.artifact)["architecture"] == header_of(converted.artifact)["architecture"]
    for outcome in (converted, quantized):
        loaded = load_artifact(outcome.artifact)
        assert torch.equal(predict(loaded, fmnist, limit=LIMIT).argmax(1),
                           predict(outcome.model, fmnist, limit=LIMIT).argmax(1))


def test_pipeline_step_the_model_cannot_take_is_refused_in_one_line(fmnist):
    from compression.pipeline import PipelineConfig, parse_steps, run_pipeline
    with pytest.raises(CompressionError, match="width cannot be applied to lenet5: it is not slimmable") as err:
        list(run_pipeline("lenet5", fmnist, PipelineConfig(parse_steps("width:0.5")), limit=LIMIT))
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# 3. a model a team installs: an entry-point builder

TEAMNET = '''
import torch.nn as nn


def tiny(*, num_classes=10, in_channels=1, image_size=28):
    return nn.Sequential(nn.Conv2d(in_channels, 8, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                         nn.Conv2d(8, 16, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(1), nn.Flatten(),
                         nn.Linear(16, num_classes))


def nokwargs(classes):
    return tiny(num_classes=classes)
'''


@pytest.fixture
def teamnet(tmp_path, monkeypatch):
    site = tmp_path / "site"
    (site / "teamnet").mkdir(parents=True)
    (site / "teamnet" / "__init__.py").write_text(TEAMNET)
    info = site / "teamnet-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: teamnet\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text("[compression_explorer.models]\ntiny = teamnet:tiny\n"
                                           "nokwargs = teamnet:nokwargs\nnotinstalled = teamnet_gone:tiny\n")
    monkeypatch.syspath_prepend(str(site))
    yield "entry:tiny"
    import sys
    sys.modules.pop("teamnet", None)


def test_entry_point_model(teamnet, fmnist):
    from compression.refs import all_references
    assert teamnet in all_references()
    run = run_kept(teamnet, fmnist, "prune", "unstructured:0.5", limit=LIMIT)
    result = run.result
    assert result.model == teamnet and stored(result)["model"] == teamnet
    header = header_of(run.artifact)
    assert header["architecture"]["name"] == teamnet and header["architecture"]["builder"] == teamnet
    same_predictions(result, run.model, fmnist)
    # and through run_method itself, with the dataset the builder's default names
    assert run_method(teamnet, None, "prune", "structured:0.5", limit=LIMIT).method == "prune"


@pytest.mark.parametrize("name, says", [("nokwargs", "fn\\(\\*, num_classes, in_channels, image_size\\)"),
                                        ("notinstalled", "could not be loaded: ModuleNotFoundError")])
def test_broken_entry_point_is_named(teamnet, fmnist, name, says):
    with pytest.raises(CompressionError, match=f"entry point '{name}'.*{says}") as err:
        run_method(f"entry:{name}", fmnist, "prune", "unstructured:0.5", limit=LIMIT, store=False)
    assert "\n" not in str(err.value)


# ---------------------------------------------------------------------------------------------
# 4. bad references: one line naming the bad value

@pytest.mark.parametrize("reference, named", [
    ("torchvision:nosuch", "'nosuch'"),
    ("entry:nosuch", "'nosuch'"),
    ("nosuchmodel", "nosuchmodel"),
])
def test_bad_reference_is_named(reference, named, folder):
    with pytest.raises(CompressionError, match=named) as err:
        run_method(reference, folder, "prune", "unstructured:0.5")
    assert "\n" not in str(err.value)


def test_rgb_architecture_refuses_grayscale(fmnist):
    with pytest.raises(CompressionError, match="RGB") as err:
        run_method(RESNET, fmnist, "prune", "unstructured:0.5")
    assert "\n" not in str(err.value) and RESNET in str(err.value)
