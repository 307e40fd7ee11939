"""The Quantization page's plot builders, without a browser."""

import numpy as np

from compression.charts.quantization import accuracy_vs_bits, accuracy_vs_bytes, sweep_frame, weight_histogram


def test_chart_builders_have_data():
    results = [{"config": {"method": m, "bits": b}, "accuracy": 0.8 + b / 100, "size_bytes": 1000 * b,
                "latency_ms": 0.1, "simulated": True, "bits_per_weight": b - 0.5}
               for m in ("uniform", "cluster-huffman") for b in (2, 4, 8)]
    df = sweep_frame(results)
    assert len(df) == 6 and df["accuracy"].max() == 88.0
    fig = accuracy_vs_bits(df, {"accuracy": 0.9, "size_bytes": 32000})
    assert len(fig.data) == 2 and list(fig.data[1].x) == [2, 4, 8]
    assert list(fig.data[0].x) == [1.5, 3.5, 7.5]  # Huffman: plotted at its stored bits per weight
    assert len(accuracy_vs_bytes(df, {"accuracy": 0.9, "size_bytes": 32000}).data) == 3
    hist = {"layer": "0", "weights": np.random.default_rng(0).normal(size=500), "levels": np.linspace(-1, 1, 8),
            "encoding": "codebook", "channel": None}
    fig = weight_histogram(hist)
    bars, lines = fig.data
    assert sum(bars.y) == 500 and len(bars.x) == 120  # binned here: every weight counted once
    assert len([x for x in lines.x if x is not None]) == 2 * 8 and "8 cluster centers" in fig.layout.title.text


def test_the_histogram_draws_every_shown_level_as_a_full_height_line():
    """255 levels of 8-bit weights: every 3rd one (255 // 64) at its value, from the bottom to the top
    of the plot, as one trace of vertical segments (no layout shapes for the browser to redraw)."""
    levels = np.linspace(-1, 1, 255)
    weights = np.random.default_rng(1).normal(size=1000)
    fig = weight_histogram({"layer": "fc1", "weights": weights, "levels": levels, "encoding": "affine", "channel": 3})
    bars, lines = fig.data
    shown = levels[::3]
    xs, ys = list(lines.x), list(lines.y)
    assert xs[0::3] == xs[1::3] == [float(v) for v in shown] and set(xs[2::3]) == {None}
    top = fig.layout.yaxis.range[1]
    assert set(ys[0::3]) == {0.0} and set(ys[1::3]) == {top} and top >= max(bars.y)
    assert not fig.layout.shapes
    assert "255 quantization levels (channel 3, the widest)" in fig.layout.title.text
