import json
import os
import subprocess
import sys

import pytest

from compression.paths import REPO_ROOT as ROOT

KEYS = {"accuracy", "accuracy_n", "params", "nonzero_params", "size_bytes", "macs", "latency_ms",
        "simulated", "baseline", "model", "dataset", "method", "config", "device"}


def cli(*args, env=None, home=None):
    e = {**os.environ, **(env or {})}
    if home is not None:
        e["COMPRESSION_HOME"] = str(home)
    return subprocess.run([sys.executable, "-m", "compression", *args], cwd=ROOT, env=e,
                          capture_output=True, text=True, timeout=300)


def test_evaluate_prints_every_key_on_all_test_images(tmp_path):
    out = cli("evaluate", "--model", "lenet5", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    (line,) = out.stdout.strip().splitlines()
    result = json.loads(line)
    assert KEYS <= set(result)
    assert result["accuracy_n"] == 10000 and result["device"] == "cpu" and result["model"] == "lenet5"
    assert result["baseline"]["accuracy"] == result["accuracy"]
    # ... and it was stored
    runs = cli("runs", "--json", home=tmp_path)
    assert runs.returncode == 0 and json.loads(runs.stdout.splitlines()[0])["model"] == "lenet5"


def test_zoo_list(tmp_path):
    out = cli("zoo", "list", "--json", home=tmp_path)
    names = [json.loads(line)["name"] for line in out.stdout.splitlines()]
    assert {"mlp", "lenet5", "cnn"} <= set(names)


def test_evaluate_user_weights(tmp_path):
    import torch
    from compression.models import build_model
    torch.manual_seed(0)
    path = tmp_path / "mine.pt"
    torch.save(build_model("mlp").state_dict(), path)
    out = cli("evaluate", "--model", "mlp", "--weights", str(path), "--limit", "500", "--json", home=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["model"] == "mlp+mine.pt" and result["accuracy"] < 0.5  # random weights


@pytest.mark.parametrize("args, named", [
    (["evaluate", "--model", "resnet9000"], "resnet9000"),
    (["evaluate", "--model", "mlp", "--dataset", "imagenet"], "imagenet"),
    (["evaluate", "--model", "mlp", "--limit", "-3"], "-3"),
    (["evaluate", "--model", "mlp", "--device", "tpu"], "tpu"),
    (["evaluate", "--model", "mlp", "--weights", "/nonexistent.pt"], "/nonexistent.pt"),
    (["frobnicate"], "frobnicate"),
])
def test_bad_input_exits_non_zero_with_one_line(args, named, tmp_path):
    out = cli(*args, home=tmp_path)
    assert out.returncode != 0
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0], out.stderr
    assert "Traceback" not in out.stderr


def test_missing_data_folder(tmp_path):
    out = cli("evaluate", "--model", "mlp", env={"COMPRESSION_DATA": str(tmp_path / "nowhere")}, home=tmp_path)
    assert out.returncode != 0 and "nowhere" in out.stderr and "Traceback" not in out.stderr


def test_wrong_weights_list_the_mismatch(tmp_path):
    import torch
    from compression.models import build_model
    path = tmp_path / "lenet.pt"
    torch.save(build_model("lenet5").state_dict(), path)
    out = cli("evaluate", "--model", "mlp", "--weights", str(path), home=tmp_path)
    assert out.returncode != 0 and "missing" in out.stderr and "unexpected" in out.stderr
