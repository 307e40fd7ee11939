"""Readable by a stakeholder (issue 26): names written on the story chart in full and off the plot's
edges, parallel coordinates whose labels do not collide at 30 runs, numbers short enough for a
metric tile, and the glossary behind the help icons. Checked on the figures themselves: the
widths are estimated from the characters (about 0.6 em each in the sans-serif fonts plotly uses)."""

import html
import math

import pytest

from compression.charts.compare import LABEL_ANGLE, MAX_CATEGORIES, MAX_TICK_TEXT, parallel_chart
from compression.charts.format import fmt_count, fmt_short_count
from compression.charts.glossary import GLOSSARY, explain
from compression.charts.pareto import explorer_frame
from compression.charts.story import WRAP, story_chart
from story_runs import realistic_runs

EM = 0.6  # a character's mean width in em, Helvetica / Open Sans


def text_px(text: str, size: float) -> float:
    return len(text) * EM * size


@pytest.mark.parametrize("n", [15, 30])
def test_parallel_coordinates_stay_readable_at_30_runs(n):
    df = explorer_frame(realistic_runs(n))
    fig = parallel_chart(df)
    (pc,) = fig.data
    dims = list(pc.dimensions)
    assert fig.layout.title.text.startswith(f"{n} runs")
    # titles at a slant: neighbouring titles are parallel lines `spacing * sin(angle)` apart, which
    # must exceed the font's height for them never to touch, at the explorer's width (the main
    # column of a 1400-px window: about 1000 px) and at a narrow 800 px
    assert pc.labelangle == LABEL_ANGLE and pc.labelangle != 0
    margin = fig.layout.margin
    for width in (1000, 800):
        spacing = (width - margin.l - margin.r - 100) / (len(dims) - 1)  # 100 px: the colour bar
        assert spacing * math.sin(math.radians(abs(LABEL_ANGLE))) > 1.2 * pc.labelfont.size, (width, spacing)
    # the top margin holds the longest slanted title
    longest = max(text_px(d.label, pc.labelfont.size) for d in dims)
    assert longest * math.sin(math.radians(abs(LABEL_ANGLE))) < margin.t
    # tick texts beside each axis fit between it and the previous one (at 1000 px), categories are few
    spacing = (1000 - margin.l - margin.r - 100) / (len(dims) - 1)
    for d in dims[1:]:
        texts = list(d.ticktext or [])
        assert all(len(t) <= MAX_TICK_TEXT for t in texts), texts
        assert len(texts) <= MAX_CATEGORIES + 1, (d.label, texts)  # + the "–" of runs without the knob
        assert max((text_px(t, pc.tickfont.size) for t in texts), default=0) + 8 < spacing, (d.label, texts)
    labels = [d.label for d in dims]
    assert "pipeline" not in labels and all(":" not in t for d in dims for t in (d.ticktext or []))  # no specs


def test_story_names_are_whole_wrapped_and_kept_off_the_edges():
    runs = realistic_runs(7)
    runs[0]["name"] = "Half the channels, fine-tuned 1 epoch, then 8-bit weights per channel"
    runs[3]["accuracy"] = 0.95  # above the baseline's 92.29 %: the highest marker of the plot
    df = explorer_frame(runs)
    fig = story_chart(df, "size_bytes")
    (names,) = [t for t in fig.data if t.name == "names"]
    assert all(len(html.unescape(line)) <= WRAP for text in names.text for line in text.split("<br>"))
    assert names.text[0].replace("<br>", " ") == runs[0]["name"]  # wrapped, not cut
    assert all(p.split()[1] in ("left", "right") for p in names.textposition)  # never over the interval bar
    xs = [math.log10(v) for v in df["size_bytes"]]
    every = xs + [math.log10(b["size_bytes"]) for b in df["baseline"]]  # the plot spans the baselines too
    for x, pos in zip(xs, names.textposition):  # the names point into the plot
        frac = (x - min(every)) / (max(every) - min(every))
        assert pos.endswith("right") if frac < 0.2 else pos.endswith("left") if frac > 0.8 else True
    assert names.textposition[3].startswith("bottom")  # the highest: below its marker, inside the plot
    lo, hi = fig.layout.yaxis.range  # room above and below for names and intervals
    assert lo < df["ci_low"].min() * 100 and hi > df["ci_high"].max() * 100
    assert names.cliponaxis is False


def test_close_runs_write_their_names_on_either_side():
    from compression.charts.story import _positions
    pos = _positions([1000, 1050, 100, 10000], [90.0, 90.1, 80.0, 95.0], True)
    assert {pos[0].split()[1], pos[1].split()[1]} == {"left", "right"}


def test_counts_fit_a_metric_tile():
    assert fmt_short_count(266_610) == "266,610"          # exact while it fits
    assert fmt_short_count(11_181_642) == "11.18 M"       # resnet18: "11,181,…" in a tile before
    assert len(fmt_short_count(123_456_789)) <= 8


def test_counts_take_the_unit_they_round_to():
    assert fmt_count(999_999_999) == "1.00 G"             # was "1000.00 M"
    assert fmt_count(999_994_999) == "999.99 M"
    assert (fmt_count(999_999), fmt_count(999), fmt_count(1_820_000_000)) == ("1.00 M", "999", "1.82 G")


def test_the_glossary_explains_the_jargon():
    for word in ("Pareto frontier", "MACs", "interval (95 % CI)", "simulated", "no measurable change",
                 "latency baseline unreliable"):
        assert len(GLOSSARY[word].split()) >= 8, word
    assert explain("MACs").startswith("**MACs**: Multiply-accumulates")
