"""The Dynamic computation page's plot builders, without a browser."""

import math

import pandas as pd

from compression.charts.dynamic import exit_bars, exit_curve, width_chart


def test_charts_have_data():
    curve = pd.DataFrame({"threshold": [0.0, 0.5, 1.0], "accuracy": [0.8, 0.88, 0.9], "macs": [1e5, 2e5, 4e5]})
    fig = exit_curve(curve, current={"accuracy": 0.88, "macs": 2e5}, full={"accuracy": 0.9, "macs": 4e5})
    assert [len(t.x) for t in fig.data] == [3, 1, 1]
    exits = pd.DataFrame({"exit": ["exit 1", "exit 2 (full)"], "share": [0.7, 0.3],
                          "accuracy": [0.95, math.nan], "macs": [1e5, 4e5]})
    bars = exit_bars(exits)
    assert list(bars.data[0].y) == [70.0, 30.0] and bars.data[0].text[1] == "none"
    widths = pd.DataFrame({"width": [0.5, 1.0], "accuracy": [0.9, 0.92], "macs_ratio": [0.26, 1.0],
                           "latency_ratio": [0.5, 1.0], "macs": [5e5, 2e6], "latency_ms": [0.2, 0.4]})
    fig = width_chart(widths, current=0.5)
    assert len(fig.data) == 3 and list(fig.data[1].y) == [0.26, 1.0]
