"""Exported files run without this project and predict what the run predicted.

Each format is loaded in a separate Python process started with -I (no PYTHONPATH, no repository
on sys.path) that imports only torch / onnxruntime / safetensors and the snippet the page shows,
and must end with `compression` absent from sys.modules. The bounds: a float file computes the
run's function up to float rounding, so at most 1 image in 1,000 may change class; int8 QDQ adds
rounding of every activation, so 99 % (compression.export.recheck.TOLERANCES). A deliberately
broken file (one layer's weights reversed after export) is caught by the re-check, which names
that layer; an export whose artifact is gone fails in one line."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compression import CompressionError
from tests.support import cli_in_process

LIMIT = 1000

# what a deployer writes, per format: load the file, read the input contract, predict the images
LOADERS = {
    "onnx": """
import onnxruntime as ort
session = ort.InferenceSession(path, providers=["CPUExecutionProvider"])
props = session.get_modelmeta().custom_metadata_map
contract, exit_rule = json.loads(props["input_contract"]), json.loads(props.get("exit_rule", "null"))
outputs = session.run(None, {session.get_inputs()[0].name: images})
""",
    "pt2": """
import torch
extra = {"input_contract.json": "", "exit_rule.json": ""}
program = torch.export.load(path, extra_files=extra)
contract, exit_rule = json.loads(extra["input_contract.json"]), json.loads(extra["exit_rule.json"] or "null")
out = program.module()(torch.from_numpy(images))
outputs = [o.detach().numpy() for o in (out if isinstance(out, (tuple, list)) else [out])]
""",
    "safetensors": """
import torch
from safetensors import safe_open
with safe_open(path, "pt") as f:
    contract = json.loads(f.metadata()["input_contract"])
side = json.load(open(path[:-len(".safetensors")] + ".json"))
assert side["input_contract"] == contract and side["rebuild"] == "torch", side["rebuild"]
exit_rule, scope = None, {}
exec(side["snippet"], scope)
with torch.no_grad():
    outputs = [scope["model"](torch.from_numpy(images)).numpy()]
""",
}
LOADERS["onnx-int8"] = LOADERS["onnx"]

# the exit rule as the metadata states it, applied by the deployer
TAIL = """
final = outputs[-1].astype(np.float64)
if exit_rule and exit_rule.get("thresholds"):
    left = np.zeros(len(final), bool)
    for logits, tau in zip(outputs[:-1], exit_rule["thresholds"]):
        z = logits.astype(np.float64) - logits.max(1, keepdims=True)
        e = np.exp(z)
        s = e.sum(1)
        score = 1 / s if exit_rule["criterion"] == "confidence" else (np.log(s) - (e * z).sum(1) / s) / np.log(z.shape[1])
        go = (score > tau if exit_rule["criterion"] == "confidence" else score < tau) & ~left
        final[go] = logits[go]
        left |= go
assert "compression" not in sys.modules, "the exported file needed this project"
print(json.dumps({"predicted": final.argmax(1).tolist(), "contract": contract, "exits": len(outputs)}))
"""


def run_elsewhere(fmt: str, path: Path, images: np.ndarray, tmp_path: Path) -> dict:
    np.save(tmp_path / "images.npy", images)
    code = ("import json, sys\nimport numpy as np\n"
            f"path = {str(path)!r}\nimages = np.load({str(tmp_path / 'images.npy')!r})\n" + LOADERS[fmt] + TAIL)
    out = subprocess.run([sys.executable, "-I", "-c", code], cwd=path.parent, capture_output=True, text=True,
                         timeout=600, env={"OMP_NUM_THREADS": "1", "PATH": "/usr/bin:/bin"})
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, fmnist):
    """Stored runs in their own data folder: a structured prune of cnn, 8-bit mlp, early exit on lenet5_exits."""
    from compression.methods import run_method
    from compression.store import RunStore
    home = tmp_path_factory.mktemp("export-home")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("COMPRESSION_HOME", str(home))
        store = RunStore()
        ids = {key: run_method(model, fmnist, method, spec, device="cpu", limit=LIMIT, store=store,
                               options={"kernel": False}).extra["run_id"]
               for key, (model, method, spec) in {"pruned": ("cnn", "prune", "structured:0.5"),
                                                  "int8": ("mlp", "quantize", "uniform:8"),
                                                  "exits": ("lenet5_exits", "early-exit", "thresholds=0.8")}.items()}
        yield {"home": home, "store": store, "ids": ids, "mp": mp}


@pytest.fixture
def in_home(runs, monkeypatch):
    monkeypatch.setenv("COMPRESSION_HOME", str(runs["home"]))
    return runs


def _images(fmnist, n=LIMIT) -> np.ndarray:
    return fmnist.normalize(fmnist.test.images[:n]).numpy()


@pytest.mark.parametrize("fmt, run", [("onnx", "pruned"), ("pt2", "pruned"), ("safetensors", "pruned"),
                                      ("onnx-int8", "int8")])
def test_each_format_runs_without_this_project_and_predicts_what_the_run_did(fmt, run, in_home, fmnist, tmp_path):
    from compression.export import export_run
    run_id = in_home["ids"][run]
    report = export_run(run_id, fmt, tmp_path / f"model.{fmt}", timing=False)
    assert report["ok"], report["warning"]
    stored = in_home["store"].predictions(run_id).predicted
    got = run_elsewhere(fmt, Path(report["file"]), _images(fmnist), tmp_path)
    agreement = float((np.array(got["predicted"]) == stored[:LIMIT]).mean())
    assert agreement >= (0.99 if fmt == "onnx-int8" else 0.999)
    assert abs(agreement - report["recheck"]["agreement"]) < 1e-9  # the re-check saw what a deployer sees
    contract = got["contract"]
    assert contract["classes"] == list(fmnist.classes) and contract["channels"] == 1
    assert contract["mean"] == pytest.approx(list(fmnist.mean)) and contract["std"] == pytest.approx(list(fmnist.std))
    assert contract["input_size"] == [28, 28]


def test_int8_qdq_file_is_int8_and_smaller(in_home, tmp_path):
    import onnx
    from compression.export import export_run
    run_id = in_home["ids"]["int8"]
    float_file = export_run(run_id, "onnx", tmp_path / "f.onnx", timing=False)
    int8 = export_run(run_id, "onnx-int8", tmp_path / "q.onnx", timing=False)
    ops = {n.op_type for n in onnx.load(int8["file"]).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    weights = 784 * 300 + 300 * 100 + 100 * 10
    assert weights <= int8["notes"]["int8_weights"] <= weights + 500  # every weight int8 (+ zero points)
    assert int8["size_bytes"] <= 0.3 * float_file["size_bytes"]   # 1 byte per weight against 4, plus scales
    assert abs(int8["recheck"]["accuracy_change_points"]) <= 0.3


def test_an_early_exit_model_is_one_graph_with_every_exit_and_its_rule(in_home, fmnist, tmp_path):
    from compression.export import export_run
    run_id = in_home["ids"]["exits"]
    run = in_home["store"].get(run_id)
    report = export_run(run_id, "onnx", tmp_path / "exits.onnx", timing=False)
    assert report["ok"], report["warning"]
    got = run_elsewhere("onnx", Path(report["file"]), _images(fmnist, run["accuracy_n"]), tmp_path)
    assert got["exits"] == len(run["extra"]["exit_costs"]) >= 2  # every exit is an output
    labels = fmnist.test.labels[:run["accuracy_n"]].numpy()
    # the rule the metadata states, applied by the deployer, gives the run's accuracy on its images
    assert float((np.array(got["predicted"]) == labels).mean()) == pytest.approx(run["accuracy"], abs=0.001)


def test_a_broken_export_is_caught_and_the_layer_named(in_home, tmp_path):
    import onnx
    from onnx import numpy_helper

    from compression.export import export_run, get_format, recheck, source_of_run
    run_id = in_home["ids"]["pruned"]
    report = export_run(run_id, "onnx", tmp_path / "broken.onnx", timing=False)
    model = onnx.load(report["file"])
    weight = next(i for i in model.graph.initializer if i.name == "4.weight")  # cnn's second convolution
    weight.CopyFrom(numpy_helper.from_array(np.flip(numpy_helper.to_array(weight), 0).copy(), "4.weight"))
    onnx.save(model, report["file"])
    checked = recheck(source_of_run(run_id), get_format("onnx"), Path(report["file"]), timing=False)
    assert not checked["ok"]
    assert checked["divergence"]["layer"] == "4"
    assert "'4'" in checked["warning"] and "agreement" in checked["warning"]
    # the layers before it still match to float rounding: it is the first, not any
    before = [e for e in checked["divergence"]["layers"] if e["layer"] in ("0", "1", "2", "3")]
    assert before and all(e["relative_error"] < 1e-3 for e in before)


def test_a_broken_int8_file_is_caught_and_the_layer_named(in_home, tmp_path):
    import onnx
    from onnx import TensorProto, numpy_helper

    from compression.export import export_run, get_format, recheck, source_of_run
    run_id = in_home["ids"]["int8"]
    report = export_run(run_id, "onnx-int8", tmp_path / "broken-int8.onnx", timing=False)
    model = onnx.load(report["file"])
    # mlp's second Linear layer (module "3": 300 -> 100), its int8 weights reversed
    weight = next(i for i in model.graph.initializer if i.data_type == TensorProto.INT8 and 100 in i.dims and 300 in i.dims)
    weight.CopyFrom(numpy_helper.from_array(np.flip(numpy_helper.to_array(weight), 0).copy(), weight.name))
    onnx.save(model, report["file"])
    checked = recheck(source_of_run(run_id), get_format("onnx-int8"), Path(report["file"]), timing=False)
    assert not checked["ok"] and checked["divergence"]["layer"] == "3"
    # the layer before it carries int8 noise only: far under the 0.1 threshold
    assert next(e for e in checked["divergence"]["layers"] if e["layer"] == "1")["relative_error"] < 0.05


def test_a_broken_safetensors_file_is_caught_too(in_home, tmp_path):
    from safetensors import safe_open
    from safetensors.torch import load_file, save_file

    from compression.export import export_run, get_format, recheck, source_of_run
    run_id = in_home["ids"]["pruned"]
    report = export_run(run_id, "safetensors", tmp_path / "broken.safetensors", timing=False)
    with safe_open(report["file"], "pt") as f:
        meta = f.metadata()
    state = load_file(report["file"])
    state["13.weight"] = state["13.weight"].flip(0).contiguous()  # the first Linear layer
    save_file(state, report["file"], metadata=meta)
    checked = recheck(source_of_run(run_id), get_format("safetensors"), Path(report["file"]), timing=False)
    assert not checked["ok"] and checked["divergence"]["layer"] == "13"


def test_export_of_a_run_whose_artifact_is_gone_says_so_in_one_line(in_home, tmp_path):
    from compression.run_labels import artifact_file
    run_id = in_home["ids"]["pruned"]
    path = artifact_file(in_home["store"].get(run_id)["artifact_path"])
    moved = path.rename(tmp_path / "elsewhere.cxp")
    try:
        out = cli_in_process("export", str(run_id), "--format", "onnx", home=in_home["home"])
    finally:
        moved.rename(path)
    assert out.returncode == 2
    assert out.stderr.count("\n") == 1 and "is gone" in out.stderr and str(run_id) in out.stderr


def test_int8_is_offered_only_for_8_bit_results(in_home):
    from compression.export import offered
    store = in_home["store"]
    assert offered(store.get(in_home["ids"]["int8"]), "quantized")["onnx-int8"] is None
    why = offered(store.get(in_home["ids"]["pruned"]), "dense")["onnx-int8"]
    assert why and "8-bit" in why
    out = cli_in_process("export", str(in_home["ids"]["pruned"]), "--format", "onnx-int8", home=in_home["home"])
    assert out.returncode == 2 and "8-bit" in out.stderr


def test_cli_prints_the_recheck(in_home, tmp_path):
    out = cli_in_process("export", str(in_home["ids"]["pruned"]), "--format", "onnx", "--out", str(tmp_path / "c.onnx"),
                         "--no-timing", "--json", home=in_home["home"])
    assert out.returncode == 0, out.stderr
    report = json.loads(out.stdout)
    assert report["recheck"]["images"] == LIMIT and report["recheck"]["agreement"] >= 0.999
    assert report["size_bytes"] == (tmp_path / "c.onnx").stat().st_size


def test_the_download_name_is_one_name_everywhere():
    from compression.export import download_name
    run = {"id": 7, "model": "torchvision:resnet18", "method": "prune"}
    assert download_name(run) == "torchvision_resnet18-prune-7.cxp"
    assert download_name({**run, "name": "small one"}, ".onnx") == "small_one-prune-7.onnx"
    assert download_name({"run_id": None, "model": "cnn", "method": "quantize"}) == "cnn-quantize-preview.cxp"
    with pytest.raises(CompressionError, match="unknown export format 'tflite'"):
        from compression.export import get_format
        get_format("tflite")
