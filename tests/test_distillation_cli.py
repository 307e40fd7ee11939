"""python -m compression distill: results as JSON lines, stored runs, one-line errors."""

import json

import pytest

from tests.test_cli import KEYS, cli


def test_distill_prints_the_hard_label_student_then_the_distilled_one(tmp_path):
    args = ("distill", "--teacher", "cnn", "--student", "lenet5", "--student-width", "0.5", "--epochs", "1",
            "--train-subset", "400", "--temperature", "3", "--alpha", "0.8", "--limit", "300", "--json")
    out = cli(*args, home=tmp_path)
    assert out.returncode == 0, out.stderr
    hard, soft = (json.loads(line) for line in out.stdout.strip().splitlines())
    assert KEYS <= set(hard) and KEYS <= set(soft)
    assert hard["config"]["alpha"] == 0 and soft["config"]["temperature"] == 3 and soft["config"]["alpha"] == 0.8
    assert soft["model"] == "cnn" and soft["method"] == "distill" and soft["student"] == "lenet5 x0.5"
    assert soft["params"] < hard["baseline"]["params"] and soft["accuracy_n"] == 300
    assert "epoch 1/1" in out.stderr  # progress goes to stderr, results to stdout
    # a second run with another T: the hard-label student is read back, printed, not stored again
    again = cli(*args[:-5], "--temperature", "6", "--limit", "300", "--json", "--quiet", home=tmp_path)
    assert again.returncode == 0, again.stderr
    first, second = (json.loads(line) for line in again.stdout.strip().splitlines())
    assert first["cached"] and first["run_id"] == hard["run_id"] and first["accuracy"] == hard["accuracy"]
    runs = [json.loads(line) for line in cli("runs", "--method", "distill", "--json", home=tmp_path).stdout.splitlines()]
    assert len(runs) == 3  # hard labels once, two distilled students


@pytest.mark.parametrize("args, named", [
    (["--temperature", "0"], "'0'"),
    (["--alpha", "1.5"], "'1.5'"),
    (["--student", "cnn", "--student-width", "2"], "width must be in (0, 1], got 2"),
])
def test_bad_input_is_one_line_naming_the_value(args, named, tmp_path):
    out = cli("distill", *args, "--epochs", "1", "--train-subset", "100", home=tmp_path)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and named in lines[0] and "Traceback" not in out.stderr, out.stderr
