"""python -m compression quantize: JSON results with every key, the artifact on disk, one-line errors."""

import json
import os
import subprocess
import sys

import pytest

from compression.paths import REPO_ROOT as ROOT

KEYS = {"accuracy", "accuracy_n", "params", "nonzero_params", "size_bytes", "macs", "latency_ms",
        "simulated", "baseline", "model", "dataset", "method", "config", "device", "coverage", "layers",
        "simulated_metrics"}


def cli(*args, home):
    env = {**os.environ, "COMPRESSION_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "compression", "quantize", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=600)


def in_process(capsys, *args):
    """main() in this interpreter (no start-up cost): (exit code, stdout, stderr)."""
    from compression.cli import main
    try:
        code = main(["quantize", *args])
    except SystemExit as exc:  # argparse errors
        code = exc.code
    out = capsys.readouterr()
    return code, out.out, out.err


def test_sweep_prints_one_stored_result_per_bit_width(home, capsys):
    code, stdout, stderr = in_process(capsys, "--model", "mlp", "--sweep-bits", "2,4", "--limit", "500", "--json")
    assert code == 0, stderr
    two, four = [json.loads(line) for line in stdout.splitlines()]
    assert KEYS <= set(two) and two["method"] == "quantize" and two["config"]["bits"] == 2
    assert two["coverage"] == "3 of 3 layers quantized: 3 Linear"
    assert two["simulated"] is True  # no 2- or 4-bit kernel
    assert two["simulated_metrics"] == four["simulated_metrics"] == ["latency_ms"]  # packed bytes: real
    # 2-bit codes take half the bytes of 4-bit ones; the float scales and biases are the same
    assert two["size_bytes"] < 0.55 * four["size_bytes"] and four["size_bytes"] < 0.15 * four["baseline"]["size_bytes"]
    assert two["run_id"] and four["run_id"] == two["run_id"] + 1
    from compression.store import RunStore
    groups = {RunStore().get(r["run_id"])["group_id"] for r in (two, four)}  # one sweep, one group
    assert len(groups) == 1 and groups.pop().startswith("sweep:")


def test_saved_artifact_is_what_size_bytes_counts(tmp_path, fmnist):
    from compression.quantization import load_artifact
    from compression.training import predict
    path = tmp_path / "mlp.ceq"
    out = cli("--model", "mlp", "--method", "cluster-huffman", "--bits", "5", "--limit", "1000",
              "--save", str(path), "--json", "--no-store", home=tmp_path)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert path.stat().st_size == result["size_bytes"]
    model = load_artifact(path.read_bytes())
    correct = int((predict(model, fmnist, limit=1000).argmax(1) == fmnist.test.labels[:1000]).sum())
    assert correct == round(result["accuracy"] * 1000)  # the file alone reproduces the reported accuracy


@pytest.mark.parametrize("args, named", [
    (["--bits", "9"], "'9'"), (["--bits", "four"], "'four'"), (["--activation-bits", "6"], "'6'"),
    (["--method", "cluster", "--bits", "16"], "16"), (["--sweep-bits", "2,12"], "'12'"),
    (["--layer-bits", "fc1=4"], "'fc1'"), (["--granularity", "row"], "'row'"),
])
def test_bad_arguments_exit_2_with_one_line(args, named, home, capsys):
    code, _, stderr = in_process(capsys, "--model", "mlp", "--limit", "100", "--no-store", *args)
    lines = stderr.strip().splitlines()
    assert code == 2 and len(lines) == 1 and named in lines[0] and "Traceback" not in stderr, stderr
