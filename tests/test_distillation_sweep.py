"""Distillation through the method registry and the sweep executor: the `student` method is listed
and runs like every method; a temperature sweep on a LocalCluster of 2 workers measures what this
process measures, and each student is stored once, by the caller."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from compression.artifact import load_artifact
from compression.distillation import DistillConfig, StudentSpec, distill
from compression.models import state_dict_hash
from compression.store import RunStore
from compression.sweep import InProcessExecutor, from_setting

PAGE_CONFIG_KEYS = {"teachers", "student", "student_width", "student_init", "temperature", "alpha", "epochs", "lr",
                    "batch_size", "seed", "train_subset", "transfer_set"}


def test_the_student_method_is_listed_with_its_knobs(capsys):
    from compression.cli import main
    assert main(["methods", "--json"]) == 0
    rows = {r["method"]: r for r in map(json.loads, capsys.readouterr().out.splitlines())}
    student = rows["student"]
    assert student["family"] == "distill"  # stored as the Distillation page's runs always were
    knobs = {k["name"]: k for k in student["knobs"]}
    assert PAGE_CONFIG_KEYS - {"teachers"} <= set(knobs) and "teachers" in knobs
    assert knobs["alpha"]["min"] == 0 and knobs["temperature"]["min_open"] and knobs["transfer_set"]["choices"]


def test_run_method_stores_a_student_of_the_given_teacher(fmnist, home):
    from compression.methods import run_method
    r = run_method("lenet5", fmnist, "student", "lenet5:student_width=0.5:epochs=1:train_subset=300:alpha=0.5",
                   device="cpu", limit=300)
    assert r.method == "distill" and set(r.config) == PAGE_CONFIG_KEYS and r.config["teachers"] == ["lenet5"]
    assert r.extra["role"] == "distilled" and r.extra["student"] == "lenet5 x0.5" and r.extra["epochs_done"] == 1
    assert r.baseline.params == 61706 and r.metrics.params < r.baseline.params  # the teacher is the baseline
    blob = Path(r.extra["artifact"]).read_bytes()
    assert len(blob) == r.metrics.size_bytes  # the file reloads as the student, not as the teacher
    assert sum(p.numel() for p in load_artifact(blob).parameters()) == r.metrics.params


def test_a_temperature_sweep_on_two_workers_measures_what_in_process_measures(fmnist, home):
    cfg = DistillConfig(epochs=1, train_subset=500, alpha=0.7)
    sweep = dict(temperatures=(2.0, 4.0), device="cpu", limit=500)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each worker runs (COMPRESSION_TORCH_THREADS): the same sums, bit for bit
    try:
        here = list(distill(["lenet5"], StudentSpec("mlp", width=0.5), fmnist, cfg, executor=InProcessExecutor(),
                            **sweep))
    finally:
        torch.set_num_threads(threads)
    store, events = RunStore(home / "cluster.sqlite"), []
    cluster = from_setting("local:2")
    try:
        workers = set(cluster.client.run(os.getpid).values())
        there = list(distill(["lenet5"], StudentSpec("mlp", width=0.5), fmnist, cfg, executor=cluster, store=store,
                             progress=events.append, **sweep))
    finally:
        cluster.close()

    assert [o.role for o in there] == ["hard labels", "distilled", "distilled"]
    assert [o.result.config["temperature"] for o in there] == [None, 2.0, 4.0]
    for a, b in zip(here, there):
        m, h = b.result.metrics, a.result.metrics
        assert (m.accuracy, m.accuracy_n, m.size_bytes, m.params) == (h.accuracy, h.accuracy_n, h.size_bytes, h.params)
        assert state_dict_hash(a.model) == state_dict_hash(b.model)  # the same student, trained on a worker
        assert b.result.extra.get("gain_vs_hard_labels") == a.result.extra.get("gain_vs_hard_labels")
    assert os.getpid() not in workers and {o.result.extra["worker_pid"] for o in there} <= workers
    # stored once each, here, with the file it measured; the page's query finds them
    rows = store.runs(model="lenet5", method="distill")
    assert store.count() == 3 and {r["id"] for r in rows} == {o.result.extra["run_id"] for o in there}
    assert all(set(r["config"]) == PAGE_CONFIG_KEYS and os.path.getsize(r["artifact_path"]) == r["size_bytes"]
               for r in rows)
    # the page's live chart still gets every student's epochs, each when its student is done
    assert sorted((e["run"], e["role"], e["epoch"], e["epochs"]) for e in events) == [
        ("distilled T=2, α=0.7", "distilled", 1, 1), ("distilled T=4, α=0.7", "distilled", 1, 1),
        ("hard labels (no teacher)", "hard labels", 1, 1)]
    assert [(e["step"], e["steps"]) for e in events] == [(1, 3), (2, 3), (3, 3)]
    assert all(0 < e["val_accuracy"] <= 1 for e in events)
