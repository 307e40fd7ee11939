"""How every view labels a run (issue 26): its name, else what it did in a few words, from the
configs exactly as the pages and the CLI store them; never a config dump, never cut."""

import pytest

from compression.knobs import parse_spec
from compression.methods import config_dict
from compression.run_labels import describe, run_choice, run_title


def spec(text: str) -> tuple[str, dict]:
    """(the stored method, the stored config) of a run made from this method spec (the CLI's / a step's)."""
    method, config = parse_spec(text)
    return method.family, config_dict(config)


@pytest.mark.parametrize("text, label", [
    ("prune:structured:0.5:epochs=1", "structured 0.5, 1 epoch"),
    ("prune:unstructured:0.9:scope=global:steps=3:epochs=4", "unstructured 0.9, 3 steps × 4 epochs"),
    ("prune:structured:0.3:importance=taylor", "structured 0.3 taylor"),
    ("quantize:uniform:8", "8-bit per-channel"),
    ("quantize:uniform:4:granularity=tensor:activation_bits=8:qat_epochs=2",
     "4-bit per-tensor, 8-bit activations, QAT 2 epochs"),
    ("quantize:cluster-huffman:5", "5-bit clustered + Huffman"),
    ("quantize:ternary:2", "ternary"),
    ("quantize:uniform:16", "float16"),
    ("student:lenet5:temperature=4", "student lenet5, T=4, 10 epochs"),
    ("student:mlp:student_width=0.5:alpha=0:epochs=3", "student mlp ×0.5, labels only, 3 epochs"),
    ("distill:2:T=4:alpha=0.7", "distilled 2 epochs, T=4"),
    ("finetune:1", "fine-tuned 1 epoch"),
    ("architecture:depthwise", "depthwise-separable"),
    ("architecture:low-rank:rank=8:recover=finetune", "low-rank rank 8, fine-tuned 3 epochs"),
    ("architecture:depthwise+low-rank:energy=0.9:recover=distill:recover_epochs=1",
     "depthwise-separable + low-rank 90 % energy, distilled 1 epoch"),
    ("early-exit:thresholds=[0.5,0.7]", "exit at confidence > 0.5/0.7"),
    ("early-exit:criterion=entropy:thresholds=[0.2]", "exit at entropy < 0.2"),
    ("width:0.5", "width ×0.5"),
])
def test_one_short_label_per_family(text, label):
    method, config = spec(text)
    assert describe(method, config) == label


def test_the_configs_the_pages_store_read_as_words():
    """Stored configs carry every knob (the issue's picker showed "finetune_augment=False,
    finetune_batch_size=128…" and cut off the method and ratio): only what matters is said."""
    page_prune = {"finetune_augment": False, "finetune_batch_size": 128, "finetune_distill": 0.0,
                  "finetune_epochs": 1, "finetune_lr": 0.001, "finetune_monitor_images": 2000, "finetune_seed": 0,
                  "finetune_split": "val", "finetune_subset": None, "importance": "l1", "method": "structured",
                  "ratio": 0.5, "scope": "layer", "steps": 1}
    assert describe("prune", page_prune) == "structured 0.5, 1 epoch"
    assert describe("baseline", {"limit": 2000, "weights": None}) == "uncompressed"
    assert describe("early-exit", {"attach": ["layer2"], "criterion": "confidence", "thresholds": [0.5, 0.5]}) \
        == "exit at confidence > 0.5"
    assert describe("width", {"multiplier": 0.25}) == "width ×0.25"  # older rows


def test_a_pipeline_says_its_steps_up_to_the_run():
    deep = "prune:unstructured:0.9:scope=global:steps=3:epochs=4,quantize:cluster-huffman:5"
    assert describe("pipeline", {"pipeline": deep, "step": 2}) == \
        "unstructured 0.9, 3 steps × 4 epochs → 5-bit clustered + Huffman"
    slim = "prune:structured:0.5:epochs=2,distill:2:T=4:alpha=0.7,quantize:uniform:8"
    assert describe("pipeline", {"pipeline": slim, "step": 1}) == "structured 0.5, 2 epochs (step 1 of 3)"
    assert describe("pipeline", {"pipeline": "prune:unstructured:0.8:epochs=1,quantize:uniform:4", "step": 2}) \
        == "unstructured 0.8, 1 epoch → 4-bit per-channel"


def test_an_unknown_method_or_config_gives_a_few_knobs_never_a_failure():
    assert describe("scale-weights", {"factor": 0.5}) == "scale-weights factor 0.5"
    assert describe("prune", {"note": "x"}) == "prune note x"  # no ratio: not "unstructured ?"
    assert describe("quantize", None) == "quantize"
    assert describe("pipeline", {"pipeline": "nosuchmethod:1", "step": 1}) == "nosuchmethod:1"


def test_the_name_wins_and_pickers_say_both():
    run = {"id": 12, "name": "Half the channels", "method": "prune", "model": "cnn", "accuracy": 0.91234,
           "config": {"method": "structured", "ratio": 0.5, "finetune_epochs": 1}}
    assert run_title(run) == "Half the channels"
    assert run_title({**run, "name": None}) == run_title({**run, "name": "  "}) == "structured 0.5, 1 epoch"
    assert run_choice(run) == "run 12 · “Half the channels” · structured 0.5, 1 epoch · cnn · 91.23 %"
    assert run_choice({**run, "name": None}) == "run 12 · structured 0.5, 1 epoch · cnn · 91.23 %"


def test_labels_of_realistic_runs_are_short_words():
    """Every label of 60 runs shaped like the pages' is words, not key=value, and no longer than a
    name may be (NAME_MAX): a run's full config stays in its details and the report."""
    from compression.run_labels import NAME_MAX
    from story_runs import realistic_runs
    for run in realistic_runs(60):
        label = describe(run["method"], run["config"])
        assert "=" not in label.replace("T=", "") and len(label) <= NAME_MAX, label


def test_compare_names_the_sides_by_their_names():
    from compression.compare import pair_names
    a = {"id": 8, "name": "Half the channels", "method": "prune", "model": "cnn", "config": {"ratio": 0.5}}
    b = {"id": 5, "name": None, "method": "quantize", "model": "cnn", "config": {"bits": 8}}
    assert pair_names(a, b) == ("Half the channels", "8-bit per-channel")
    assert pair_names({**a, "id": None, "method": "baseline"}, a) == ("uncompressed cnn", "Half the channels")
    twin = {**a, "id": 9}  # two sides that would read the same get their run ids
    assert pair_names(a, twin) == ("Half the channels (run 8)", "Half the channels (run 9)")
