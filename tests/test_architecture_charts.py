"""The Architecture page's plot builders: pure functions, checked without a browser."""

import pandas as pd
import pytest

from compression.architecture import ArchitectureConfig, compare_conv, convert, layer_table
from compression.charts.architecture import (architecture_pareto, layer_frame, recovery_chart, separable_diagram,
                                             weights_bars)
from compression.metrics import count_macs, count_params
from compression.models import load_pretrained


def test_weight_bars_split_the_separable_weights():
    fig = weights_bars(compare_conv(3, 2, 4, bias=True))
    by_name = {t.name: list(t.x) for t in fig.data}
    assert by_name["k·k·I·O (standard)"] == [72, 0]
    assert by_name["k·k·I (depthwise)"] == [0, 18] and by_name["I·O (pointwise)"] == [0, 8]
    assert by_name["bias"] == [4, 4]


@pytest.mark.parametrize("k, i, o", [(3, 2, 4), (1, 1, 1), (7, 512, 1024)])
def test_diagram_draws_one_filter_per_channel_up_to_six(k, i, o):
    fig = separable_diagram(k, i, o)
    texts = " ".join(a.text for a in fig.layout.annotations)
    assert f"input: {i} channel" in texts and f"output: {o} channel" in texts
    drawn = min(i, 6)
    # stacks: input + filtered maps (drawn each) + output; depthwise: k*k cells per drawn channel;
    # pointwise: one cell per drawn input channel in each drawn output filter
    assert len(fig.layout.shapes) == 2 * drawn + min(o, 6) + drawn * k * k + min(o, 6) * drawn
    if i > 6:
        assert f"(+{i - 6} more)" in texts


def test_layer_frame_totals_and_ratios():
    cnn = load_pretrained("cnn")
    converted = convert(cnn, ArchitectureConfig(convert=("depthwise", "low-rank"), rank=16))
    rows = layer_table(cnn, converted, (1, 28, 28))
    totals = {"params_before": count_params(cnn), "params_after": count_params(converted),
              "macs_before": count_macs(cnn, (1, 28, 28)), "macs_after": count_macs(converted, (1, 28, 28))}
    df = layer_frame(rows, totals)
    whole = df.iloc[-1]
    assert whole["layer"] == "whole model"
    assert whole["weights after"] == whole["predicted weights"] == 16_021
    assert whole["MACs after"] == whole["predicted MACs"] == 275_184
    assert df.loc[df["layer"] == "4", "weights ratio"].item() == pytest.approx(688 / 4608)


def test_recovery_chart_skips_matching_steps_and_marks_the_target():
    events = [{"stage": "match", "step": 1, "steps": 2}, {"stage": "matched", "epoch": 0, "val_accuracy": 0.84},
              {"epoch": 1, "val_accuracy": 0.87}, {"epoch": 2, "val_accuracy": 0.89}]
    fig = recovery_chart(events, original=0.9229, converted=0.1)
    line = next(t for t in fig.data if t.name.startswith("recovering"))
    assert list(line.x) == [0, 1, 2] and list(line.y) == pytest.approx([84, 87, 89])
    assert [s.y0 for s in fig.layout.shapes] == pytest.approx([92.29, 90.29])  # original and original - 2 points


def test_pareto_plots_runs_baseline_and_references():
    df = pd.DataFrame({"id": [1, 2], "method": ["architecture", "prune"], "simulated": [False, True],
                       "accuracy": [0.9, 0.8], "size_bytes": [1000, 2000], "params": [10, 20], "macs": [5, 6],
                       "label": ["a", "b"]})
    base = {"accuracy": 0.92, "size_bytes": 4000, "params": 40, "macs": 60}
    fig = architecture_pareto(df, "macs", baseline=base, references={"ds_cnn": {**base, "macs": 7, "accuracy": 0.89}})
    assert [t.name for t in fig.data] == ["architecture", "prune (MACs simulated)", "uncompressed", "ds_cnn"]  # an old row: every cost
    assert list(fig.data[0].x) == [5] and fig.data[3].x == (7,)
    with pytest.raises(ValueError, match="x must be one of"):
        architecture_pareto(df, "latency", baseline=base)
