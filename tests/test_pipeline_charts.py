"""The Pipelines and Budget search pages' plot builders, without a browser."""

import pytest

from compression.charts.pipeline import budget_chart, path_chart, steps_frame


def test_steps_frame_and_path_chart_from_plain_rows():
    base = {"accuracy": 0.9, "size_bytes": 1000, "macs": 100, "latency_ms": 1.0}
    rows = [{"accuracy": 0.89, "size_bytes": 100, "nonzero_params": 10, "macs": 100, "latency_ms": 1.0,
             "simulated": True, "baseline": base, "config": {"step_spec": "prune:unstructured:0.9"}, "step": 1},
            {"accuracy": 0.885, "size_bytes": 25, "nonzero_params": 10, "macs": 100, "latency_ms": 1.0,
             "simulated": True, "baseline": base, "config": {"step_spec": "quantize:cluster-huffman:5"}, "step": 2}]
    df = steps_frame(rows)
    assert df["size vs fp32"].tolist() == ["10.0x smaller (simulated)", "40.0x smaller (simulated)"]  # old rows
    assert df["simulated"].tolist() == ["size, MACs, latency"] * 2
    honest = [{**r, "simulated_metrics": ["latency_ms"]} for r in rows]
    assert steps_frame(honest)["size vs fp32"].tolist() == ["10.0x smaller", "40.0x smaller"]
    assert path_chart(honest).data[0].marker.symbol[1] == "circle"  # the file is real: filled on the size axis
    assert path_chart(honest, "latency_ms").data[0].marker.symbol[1] == "circle-open"
    assert df["change (points)"].tolist() == [-1.0, -1.5]
    fig = path_chart(rows)
    (trace,) = fig.data
    assert list(trace.x) == [1000, 100, 25] and list(trace.y) == pytest.approx([90, 89, 88.5])
    assert trace.marker.symbol[0] == "star" and trace.marker.symbol[1] == "circle-open"


def test_budget_chart_greys_the_points_over_budget():
    rows = [{"index": i, "accuracy": a, "size_bytes": s, "simulated": True, "label": f"p{i}"}
            for i, (a, s) in enumerate([(0.9, 300), (0.89, 150), (0.85, 70)])]
    fig = budget_chart(rows, "size_bytes", 200, best=1)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["over budget"].x) == [300] and by_name["over budget"].marker.color == "#bbbbbb"
    assert list(by_name["within budget"].x) == [150, 70]
    assert list(by_name["chosen: most accurate within budget"].x) == [150]
    assert fig.layout.shapes[0].x0 == 200  # the budget line
