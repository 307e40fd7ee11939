"""python -m compression architecture: results as JSON lines, stored; bad values named."""

import json

import pytest

from compression.cli import main
from compression.store import RunStore


def _run(capsys, *args):
    code = main(["architecture", *args])
    out = capsys.readouterr()
    return code, [json.loads(line) for line in out.out.splitlines()], out.err


def test_low_rank_mlp_at_90_percent_energy(home, capsys):
    code, (result,), _ = _run(capsys, "--model", "mlp", "--convert", "low-rank", "--energy", "0.9",
                              "--limit", "1000", "--json")
    assert code == 0
    assert result["method"] == "architecture" and result["stage"] == "converted" and not result["simulated"]
    assert result["params"] == 141_724 and result["baseline"]["params"] == 266_610
    assert result["param_ratio"] == pytest.approx(141_724 / 266_610)
    assert [r["change"].split(" (")[0] for r in result["layers"]] == ["low-rank K=111", "low-rank K=50", "low-rank K=9"]
    # the artifact is the converted fp32 state_dict: 4 bytes per parameter plus torch.save's framing
    assert 4 * 141_724 < result["size_bytes"] < 4 * 141_724 + 4096
    assert result["config"]["energy"] == 0.9 and result["config"]["recover_epochs"] == 0
    assert RunStore().runs(method="architecture")[0]["params"] == 141_724


def test_depthwise_cnn_then_distill_recovers_and_stores_both(home, capsys):
    code, (converted, recovered), err = _run(
        capsys, "--model", "cnn", "--convert", "depthwise,low-rank", "--rank", "16", "--min-in-channels", "2",
        "--match-steps", "30", "--match-images", "256", "--recover-epochs", "1", "--recover", "distill",
        "--subset", "256", "--limit", "1000", "--json")
    assert code == 0
    assert "matched layer 4 (1/3)" in err and "distill epoch 1/1" in err  # progress on stderr
    assert converted["params"] == recovered["params"] == 16_138  # <= 0.25x of 98,554
    assert converted["macs"] == recovered["macs"] == 368_480       # <= 0.25x of 1,994,240
    assert converted["accuracy"] < 0.2  # new depthwise filters start untrained: about chance
    # each new layer was fitted to what the original layer computed: far above chance at once
    assert [m["layer"] for m in recovered["matched"]] == ["4", "8", "13"]
    assert all(m["relative_error"] < 0.8 for m in recovered["matched"])
    assert recovered["accuracy"] > 0.3
    assert recovered["config"]["recover"] == "distill" and recovered["config"]["recover_epochs"] == 1
    assert len(recovered["history"]) == 1 and recovered["stopped"] is False
    assert [r["extra"]["stage"] for r in RunStore().runs(method="architecture")] == ["recovered", "converted"]


@pytest.mark.parametrize("args, named", [
    (["--convert", "pruning"], "'pruning' is not a conversion"),
    (["--convert", "low-rank", "--rank", "0"], "'0' is out of range"),
    (["--convert", "low-rank", "--energy", "0"], "'0' is out of range: expected a number in (0, 1]"),
    (["--convert", "low-rank", "--energy", "1.5"], "'1.5' is out of range"),
    (["--convert", "low-rank", "--rank", "4", "--energy", "0.5"], "not allowed with argument"),
    (["--convert", "depthwise", "--recover", "prune"], "'prune'"),
])
def test_bad_arguments_exit_2_naming_the_value(home, capsys, args, named):
    with pytest.raises(SystemExit) as exit_:
        main(["architecture", "--model", "mlp", *args])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err


@pytest.mark.parametrize("args, named", [
    (["--convert", "low-rank"], "low-rank needs exactly one of rank or energy"),
    (["--convert", "depthwise", "--rank", "3"], "rank/energy apply only with the low-rank conversion"),
    (["--model", "resnet9000", "--convert", "depthwise"], "unknown model 'resnet9000'"),
])
def test_bad_combinations_exit_2_with_one_line(home, capsys, args, named):
    argv = args if "--model" in args else ["--model", "mlp", *args]
    assert main(["architecture", *argv]) == 2
    err = capsys.readouterr().err
    assert named in err and len(err.strip().splitlines()) == 1
