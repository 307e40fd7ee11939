"""The Pruning page's plot builders, without a browser."""

from compression.charts.pruning import accuracy_vs_ratio, pruning_frame, sensitivity_heatmap, steps_chart


def test_accuracy_vs_ratio_has_one_line_per_setting_and_the_baseline():
    runs = [{"id": i, "accuracy": a, "size_bytes": 100, "latency_ms": 0.1, "nonzero_params": 10, "simulated": True,
             "config": {"method": m, "scope": "layer", "ratio": r, "finetune_epochs": 0}, "extra": {}}
            for i, (m, r, a) in enumerate([("unstructured", 0.5, 0.9), ("unstructured", 0.9, 0.8),
                                           ("structured", 0.5, 0.5)])]
    fig = accuracy_vs_ratio(pruning_frame(runs), baseline_accuracy=0.9)
    assert len(fig.data) == 2 and list(fig.data[1].x) == [50, 90] and list(fig.data[1].y) == [90, 80]
    assert fig.layout.shapes[0].y0 == 90  # the unpruned line


def test_sensitivity_heatmap_is_layers_by_ratios():
    rows = [{"layer": l, "ratio": r, "accuracy": 0.9 - r / 10} for l in ("1", "3") for r in (0.2, 0.5, 0.9)]
    fig = sensitivity_heatmap(rows, baseline_accuracy=0.9)
    assert fig.data[0].z.shape == (2, 3) and list(fig.data[0].y) == ["1", "3"]


def test_steps_chart_marks_pruning_and_fine_tuning():
    events = [{"step": 1, "phase": "pruned", "ratio": 0.5, "accuracy": 0.4, "monitor": "test[:2000]"},
              {"step": 2, "phase": "fine-tuned", "ratio": 0.5, "accuracy": 0.8, "monitor": "test[:2000]"}]
    fig = steps_chart(events)
    assert [t.name for t in fig.data[1:]] == ["after pruned", "after fine-tuned"]
    assert len(steps_chart([]).data) == 0


def test_the_ratio_axis_spans_at_least_twenty_points_within_0_to_100():
    import pandas as pd
    from compression.charts.pruning import ratio_range
    assert ratio_range(pd.Series([50.0])) == [38.0, 62.0]  # one run: not Plotly's 49..51
    assert ratio_range(pd.Series([10.0, 90.0])) == [8.0, 92.0]
    assert ratio_range(pd.Series([99.0])) == [87.0, 100.0]
