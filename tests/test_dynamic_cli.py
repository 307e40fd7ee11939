"""python -m compression early-exit: one JSON result per threshold or width, bad values named."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from compression.paths import REPO_ROOT as ROOT
from support import cli_in_process

KEYS = {"accuracy", "accuracy_n", "params", "nonzero_params", "size_bytes", "macs", "latency_ms",
        "simulated", "baseline", "model", "dataset", "method", "config", "device"}


@pytest.fixture(scope="module")
def shared_home(tmp_path_factory, fmnist):
    """A fresh app folder (empty run store) that reuses the session's decoded dataset cache."""
    home = tmp_path_factory.mktemp("cli-home")
    (home / "cache").mkdir()
    (home / "cache" / "datasets").symlink_to(Path(os.environ["COMPRESSION_HOME"]) / "cache" / "datasets")
    return home


def cli(*args, home):
    env = {**os.environ, "COMPRESSION_HOME": str(home)}
    return subprocess.run([sys.executable, "-m", "compression", *args], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=300)


def test_threshold_and_sweep_print_results_with_baseline(shared_home):
    out = cli("early-exit", "--model", "lenet5_exits", "--threshold", "0.9", "--limit", "1000",
              "--latency-images", "20", "--json", home=shared_home)
    assert out.returncode == 0, out.stderr
    (r,) = [json.loads(line) for line in out.stdout.splitlines()]
    assert KEYS <= set(r) and r["method"] == "early-exit" and r["threshold"] == 0.9
    assert r["accuracy_n"] == 1000 and len(r["exit_shares"]) == 2 and sum(r["exit_shares"]) == pytest.approx(1)
    # mean MACs lie between leaving first and running everything, as the shares say
    assert r["macs"] == pytest.approx(sum(s * c for s, c in zip(r["exit_shares"], r["exit_costs"])))
    assert r["baseline"]["macs"] == 416_520 and r["simulated"] is False
    out = cli("early-exit", "--model", "lenet5_exits", "--sweep", "--points", "4", "--limit", "500",
              "--latency-images", "5", "--no-store", "--json", home=shared_home)
    assert out.returncode == 0, out.stderr
    rows = [json.loads(line) for line in out.stdout.splitlines()]
    assert [r["threshold"] for r in rows][0] == 0.0 and rows[-1]["threshold"] == 1.0 and len(rows) == 4
    assert rows[0]["exit_shares"] == [1.0, 0.0] and rows[-1]["exit_shares"] == [0.0, 1.0]
    runs = cli("runs", "--method", "early-exit", "--json", home=shared_home)
    assert len(runs.stdout.splitlines()) == 1  # the first was stored, the --no-store sweep was not


def test_width(shared_home):
    out = cli_in_process("early-exit", "--model", "cnn_slim", "--width", "0.5,1.0", "--limit", "500", "--json",
                         home=shared_home)
    assert out.returncode == 0, out.stderr
    half, full = [json.loads(line) for line in out.stdout.splitlines()]
    assert half["method"] == "width" and half["config"] == {"width": 0.5}
    assert half["macs"] == 527_104 and full["macs"] == 1_994_240 and half["macs_ratio"] <= 0.3
    assert full["params"] == 98_554 == half["baseline"]["params"]


@pytest.mark.parametrize("args, named", [
    (["--model", "lenet5_exits", "--threshold", "1.5"], "1.5"),
    (["--model", "lenet5_exits", "--threshold", "0.5,0.5"], "2 thresholds"),
    (["--model", "cnn_slim", "--width", "0.3"], "0.3"),
    (["--model", "cnn_slim", "--width", "0"], "'0'"),
    (["--model", "lenet5", "--sweep"], "lenet5"),
    (["--model", "lenet5_exits", "--criterion", "margin"], "margin"),
])
def test_bad_values_are_named(args, named, shared_home):
    out = cli_in_process("early-exit", *args, "--limit", "10", home=shared_home)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in out.stderr, out.stderr
