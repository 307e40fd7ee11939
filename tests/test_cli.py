import json
import os
import subprocess
import sys

import pytest

from compression.paths import REPO_ROOT as ROOT
from support import cli_in_process

KEYS = {"accuracy", "accuracy_n", "params", "nonzero_params", "size_bytes", "macs", "latency_ms",
        "simulated", "simulated_metrics", "baseline", "model", "dataset", "method", "config", "device", "runtime"}


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
    out = cli_in_process(*args, home=tmp_path)
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
    out = cli_in_process("evaluate", "--model", "mlp", "--weights", str(path), home=tmp_path)
    assert out.returncode != 0 and "missing" in out.stderr and "unexpected" in out.stderr


# ---- runs kept on purpose: tag, star, hide, delete (hand-made runs, no training) --------------------

def _seed_runs(home, n=3):
    from compression.metrics import Metrics, Result
    from compression.store import RunStore
    store = RunStore(home / "runs.sqlite")
    m = Metrics(0.85, 1000, 10, 10, 400, 10.0, 0.1, False)
    return store, [store.add(Result("mlp", "fashion-mnist", "quantize", {"bits": b}, "cpu", m, m)) for b in range(2, 2 + n)]


def _lines(out) -> list[dict]:
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines()]


def test_runs_tag_star_name_and_filter(tmp_path):
    store, (a, b, c) = _seed_runs(tmp_path)
    (row,) = _lines(cli_in_process("runs", "--add-tag", str(a), "review", "--json", home=tmp_path))
    assert row["change"] == "add-tag" and row["run_id"] == a and row["tags"] == ["review"]
    _lines(cli_in_process("runs", "--add-tag", str(b), "review", "--add-tag", str(b), "int8", "--json", home=tmp_path))
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--tag", "review", "--json", home=tmp_path))] == [b, a]
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--tag", "int8", "--json", home=tmp_path))] == [b]
    (row,) = _lines(cli_in_process("runs", "--remove-tag", str(b), "int8", "--json", home=tmp_path))
    assert row["tags"] == ["review"]
    import sqlite3
    with sqlite3.connect(tmp_path / "runs.sqlite") as db:  # run c timed on torch.compile
        db.execute("UPDATE runs SET extra = json_set(extra, '$.runtime', 'compile') WHERE id = ?", (c,))
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--runtime", "compile", "--json", home=tmp_path))] == [c]
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--runtime", "eager", "--limit", "1", "--json",
                                                       home=tmp_path))] == [b]  # newest eager run, c left out first
    bad = cli_in_process("runs", "--runtime", "tensorrt", home=tmp_path)
    assert bad.returncode == 2 and "tensorrt" in bad.stderr

    changed = _lines(cli_in_process("runs", "--star", str(a), str(c), "--name", str(a), "8-bit, 4x smaller",
                                    "--json", home=tmp_path))
    assert [(r["change"], r["run_id"]) for r in changed] == [("name", a), ("star", a), ("star", c)]
    assert changed[0]["name"] == "8-bit, 4x smaller" and changed[-1]["starred"] is True
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--starred", "--json", home=tmp_path))] == [c, a]
    text = cli_in_process("runs", "--starred", home=tmp_path).stdout  # the readable line says it too
    assert f"run {a}  * '8-bit, 4x smaller' [review]" in text
    _lines(cli_in_process("runs", "--unstar", str(c), "--json", home=tmp_path))
    assert store.get(c)["starred"] is False


def test_runs_hide_and_unhide(tmp_path):
    store, (a, b, c) = _seed_runs(tmp_path)
    (row,) = _lines(cli_in_process("runs", "--hide", str(b), "--json", home=tmp_path))
    assert row["hidden"] is True and row["change"] == "hide"
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--json", home=tmp_path))] == [c, a]
    assert [r["run_id"] for r in _lines(cli_in_process("runs", "--hidden", "--json", home=tmp_path))] == [c, b, a]
    _lines(cli_in_process("runs", "--unhide", str(b), "--json", home=tmp_path))
    assert len(_lines(cli_in_process("runs", "--json", home=tmp_path))) == 3


def test_runs_delete_removes_the_artifact_file_too(tmp_path):
    from compression.metrics import Metrics, Result
    store, (a, b, c) = _seed_runs(tmp_path)
    (tmp_path / "artifacts").mkdir()
    kept = tmp_path / "artifacts" / "mlp-q4.cxp"
    kept.write_bytes(b"\x01" * 100)
    m = Metrics(0.85, 1000, 10, 10, 100, 10.0, 0.1, False)
    d = store.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 4}, "cpu", m, m), artifact_path=str(kept),
                  parent_id=a)
    e = store.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 4}, "cpu", m, m), parent_id=d)
    rows = _lines(cli_in_process("runs", "--delete", str(d), str(b), "--json", home=tmp_path))
    assert [(r["change"], r["run_id"]) for r in rows] == [("delete", d), ("delete", b)]
    assert rows[0]["artifact_removed"] is True and rows[0]["detached"] == [e] and not kept.exists()
    assert store.get(d) is None and store.get(e)["parent_id"] is None
    assert sorted(r["run_id"] for r in _lines(cli_in_process("runs", "--json", home=tmp_path))) == [a, c, e]


@pytest.mark.parametrize("args, named", [
    (["--delete", "1", "99"], "99"), (["--star", "abc"], "'abc'"), (["--name", "x", "hello"], "'x'"),
    (["--add-tag", "1", "a,b"], "'a,b'"), (["--add-tag", "1", ""], "''"), (["--add-tag", "1", "t" * 40], "t" * 40),
    (["--remove-tag", "1", "never"], "'never'"), (["--name", "1", "n" * 90], "90 characters"),
    (["--star", "1", "--unstar", "1"], "--unstar"), (["--delete", "1", "--tag", "x"], "--tag"),
    (["--hide", "2", "--delete", "2"], "--hide"),
])
def test_runs_refuses_bad_changes_naming_them_and_changes_nothing(tmp_path, args, named):
    store, ids = _seed_runs(tmp_path)
    before = store.runs(include_hidden=True)
    out = cli_in_process("runs", *args, home=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in out.stderr, out.stderr
    assert store.runs(include_hidden=True) == before
