"""Live answers in stages (compression.progressive): the first stage arrives before the full one, a
newer request cancels an older one and no older number lands on a newer key, a value seen before is
not computed again, and the staged result is the one compress gives."""

from __future__ import annotations

import threading

import pytest

from compression.progressive import Cancelled, LatestRunner, Stage, StageCache

WAIT = 10  # seconds: only ever reached when something is broken


def _gated(name: str, log: list, gate: threading.Event, *, checks_cancel: bool = False,
           inside: threading.Event | None = None):
    """Work that yields its subset at once, then waits for `gate` before its full stage (`inside`
    is set once it waits there)."""
    def work(cancelled):
        log.append(f"{name} start")
        yield Stage("subset", f"{name} subset")
        if inside is not None:
            inside.set()
        while not gate.wait(0.005):
            if checks_cancel and cancelled():
                log.append(f"{name} cancelled")
                raise Cancelled()
        log.append(f"{name} full")
        yield Stage("full", f"{name} full", final=True)
        log.append(f"{name} after final")  # never reached: the runner stops at the final stage
    return work


def test_the_subset_arrives_before_the_full_result():
    cache, gate, log = StageCache(), threading.Event(), []
    runner = LatestRunner(cache)
    runner.submit("a", _gated("a", log, gate))
    first = cache.wait("a", lambda e: e.stages, WAIT)
    assert [s.name for s in first.stages] == ["subset"] and not first.done
    gate.set()
    done = cache.wait("a", lambda e: e.done, WAIT)
    assert [s.value for s in done.stages] == ["a subset", "a full"] and done.latest.final
    assert runner.wait_idle(WAIT) and log == ["a start", "a full"]


def test_a_newer_request_cancels_the_older_and_skips_the_ones_in_between():
    cache, log = StageCache(), []
    gates = {k: threading.Event() for k in "abc"}
    runner = LatestRunner(cache)
    inside = threading.Event()
    runner.submit("a", _gated("a", log, gates["a"], checks_cancel=True, inside=inside))
    assert inside.wait(WAIT)  # a is in its full stage
    runner.submit("b", _gated("b", log, gates["b"]))  # replaced before it starts
    runner.submit("c", _gated("c", log, gates["c"]))
    assert cache.wait("c", lambda e: e.stages, WAIT)  # a saw the cancel inside its stage
    gates["c"].set()
    assert cache.wait("c", lambda e: e.done, WAIT).latest.value == "c full"
    assert runner.wait_idle(WAIT)
    assert log == ["a start", "a cancelled", "c start", "c full"]
    assert cache.get("b") is None and not cache.get("a").done  # a kept its subset, never a full result


def test_an_older_stage_that_finishes_late_never_lands_on_the_newer_key():
    """A stage cannot be cancelled halfway: the older one finishes into its own key, the runner stops
    it there, and the newer key shows only its own numbers."""
    cache, log = StageCache(), []
    gate_a, gate_b = threading.Event(), threading.Event()
    runner = LatestRunner(cache)
    inside = threading.Event()
    runner.submit("a", _gated("a", log, gate_a, inside=inside))  # does not look at cancelled() inside its stage
    assert inside.wait(WAIT)
    runner.submit("b", _gated("b", log, gate_b))
    gate_a.set()  # a's full stage finishes after b was asked for
    assert cache.wait("b", lambda e: e.stages, WAIT).latest.value == "b subset"
    assert [s.value for s in cache.get("b").stages] == ["b subset"]
    gate_b.set()
    assert [s.value for s in cache.wait("b", lambda e: e.done, WAIT).stages] == ["b subset", "b full"]
    assert runner.wait_idle(WAIT) and log == ["a start", "a full", "b start", "b full"]
    assert cache.get("a").latest.value == "a full"  # finished into its own key, not onto b's


def test_going_back_to_a_value_seen_before_computes_nothing():
    cache, gate, log = StageCache(), threading.Event(), []
    gate.set()
    runner = LatestRunner(cache)
    runner.submit("a", _gated("a", log, gate))
    assert cache.wait("a", lambda e: e.done, WAIT) and runner.wait_idle(WAIT)
    runner.submit("a", _gated("a", log, gate))
    assert not runner.busy() and log == ["a start", "a full"]


def test_two_sessions_asking_for_the_same_value_compute_it_once():
    """Another session (or the warm start) computing the same key: the second waits for its stages."""
    from compression.progressive import run_to_end
    cache, gate, inside, log = StageCache(), threading.Event(), threading.Event(), []
    one, two = LatestRunner(cache), LatestRunner(cache)
    one.submit("a", _gated("a", log, gate, inside=inside))
    assert inside.wait(WAIT)
    two.submit("a", _gated("a", log, gate))
    gate.set()
    assert one.wait_idle(WAIT) and two.wait_idle(WAIT)
    assert log == ["a start", "a full"] and cache.get("a").done
    assert run_to_end(cache, "a", _gated("a", log, gate)).latest.value == "a full"  # known: nothing run
    assert log == ["a start", "a full"]


def test_a_failure_is_kept_for_the_page_and_tried_again_on_request():
    cache, calls = StageCache(), []

    def failing(cancelled):
        calls.append(1)
        raise RuntimeError("disk on fire")
        yield  # a generator

    runner = LatestRunner(cache)
    runner.submit("a", failing)
    entry = cache.wait("a", lambda e: e.done, WAIT)
    assert isinstance(entry.error, RuntimeError) and runner.wait_idle(WAIT)
    runner.submit("a", failing, retry_failed=False)  # the page showing the error: no new attempt
    assert runner.wait_idle(WAIT) and len(calls) == 1
    runner.submit("a", failing)  # the user asked again
    assert runner.wait_idle(WAIT) and len(calls) == 2


def test_the_cache_is_bounded_least_recently_used_out_first():
    cache = StageCache(max_entries=2)
    cache.add_stage("a", Stage("full", 1, final=True))
    cache.add_stage("b", Stage("full", 2, final=True))
    cache.get("a")  # used: b is now the oldest
    cache.add_stage("c", Stage("full", 3, final=True))
    assert cache.get("b") is None and cache.get("a").latest.value == 1 and len(cache) == 2


# ---------------------------------------------------------------------------------------------
# the stages of a real compression

def _accuracy(model, data, split) -> float:
    from compression.training import predict
    return float((predict(model, data, split).argmax(1) == split.labels).float().mean())


def test_staged_prune_gives_the_subset_then_exactly_what_run_prune_gives(fmnist):
    from compression.models import load_pretrained, state_dict_hash
    from compression.pruning import PruneConfig, run_prune, staged_prune
    from compression.preview_subset import preview_indices
    model = load_pretrained("mlp")
    before = state_dict_hash(model)
    cfg = PruneConfig("unstructured", 0.7, "layer")
    subset, full = list(staged_prune("mlp", fmnist, cfg, model=model, first=500))
    assert (subset.name, subset.final, full.name, full.final) == ("subset", False, "full", True)
    part = subset.value
    assert (part.accuracy_n, part.of) == (500, len(fmnist.test))
    assert part.interval[0] <= part.accuracy <= part.interval[1] and part.interval[1] - part.interval[0] < 0.1
    sample = fmnist.test.take(preview_indices(fmnist.test.labels, 500))  # the stratified preview, not the first 500
    assert part.accuracy == pytest.approx(_accuracy(full.value.model, fmnist, sample))
    assert part.baseline_accuracy == pytest.approx(_accuracy(model, fmnist, sample))
    assert part.nonzero_params == full.value.result.metrics.nonzero_params
    assert part.size_bytes == full.value.result.metrics.size_bytes  # the same file, written once more
    assert part.config == full.value.result.config and part.config["ratio"] == 0.7
    direct = run_prune("mlp", fmnist, cfg, model=model).result
    got = full.value.result
    assert got.metrics.accuracy == direct.metrics.accuracy and got.metrics.accuracy_n == len(fmnist.test)
    assert got.metrics.size_bytes == direct.metrics.size_bytes == len(full.value.artifact)
    assert got.config == direct.config and got.predictions.to_bytes() == direct.predictions.to_bytes()
    assert state_dict_hash(model) == before  # the given model is never modified


def test_staged_prune_stops_at_the_next_check_once_cancelled(fmnist):
    from compression.models import load_pretrained
    from compression.pruning import PruneConfig, staged_prune
    asked = {"stop": False}
    stages = staged_prune("mlp", fmnist, PruneConfig("unstructured", 0.5, "layer"), model=load_pretrained("mlp"),
                          first=500, cancelled=lambda: asked["stop"])
    assert next(stages).name == "subset"
    asked["stop"] = True
    with pytest.raises(Cancelled):
        next(stages)


def test_a_runner_nobody_holds_any_more_stops_its_work():
    """A session that is gone (its runner dropped) does not keep the CPU busy with work nobody sees."""
    import gc
    import time
    cache, gate, inside, log = StageCache(), threading.Event(), threading.Event(), []
    runner = LatestRunner(cache)
    runner.submit("a", _gated("a", log, gate, checks_cancel=True, inside=inside))
    assert inside.wait(WAIT)
    del runner
    gc.collect()
    end = time.monotonic() + WAIT
    while "a cancelled" not in log and time.monotonic() < end:
        time.sleep(0.01)
    assert log == ["a start", "a cancelled"] and not cache.get("a").done
