"""The Search page's plot builders (compression.charts.search), without a browser: trials greyed over
the budget, the front as a step line through the non-dominated trials, the tables, and Optuna's
views as Plotly figures or the reason they cannot be drawn."""

import optuna
import pytest

from compression.charts.search import param_importances, parallel_coordinates, trials_chart, trials_frame

# (accuracy, cost): trial 1 is dominated by trial 0 (cheaper and more accurate)
ROWS = [{"trial": i, "spec": s, "accuracy": a, "cost": c, "run_id": 10 + i}
        for i, (s, a, c) in enumerate([("prune:unstructured:0.5", 0.90, 300.0), ("quantize:uniform:8", 0.85, 400.0),
                                       ("prune:structured:0.5,quantize:uniform:4", 0.80, 100.0),
                                       ("quantize:uniform:2", 0.50, 50.0)])]


def test_trials_chart_greys_over_budget_and_draws_the_front_as_steps():
    fig = trials_chart(ROWS, "size_bytes", budget=250, best_trial=2)
    by_name = {t.name: t for t in fig.data}
    assert list(by_name["over budget"].x) == [300, 400] and by_name["over budget"].marker.color == "#bbbbbb"
    assert list(by_name["within budget"].x) == [100, 50]
    front = by_name["front (best accuracy at each cost)"]
    assert list(front.x) == [50, 100, 300] and front.line.shape == "hv"  # trial 1 is dominated
    assert list(front.y) == pytest.approx([50, 80, 90])
    assert list(by_name["chosen"].x) == [100]
    assert any(s.x0 == 250 for s in fig.layout.shapes)  # the budget line
    assert fig.layout.xaxis.type == "log"
    assert "prune:structured:0.5 -> quantize:uniform:4" in by_name["within budget"].hovertext[0]


def test_trials_chart_without_budget_or_trials():
    fig = trials_chart(ROWS, "latency_ms", log_x=False)
    assert {t.name for t in fig.data} == {"trial", "front (best accuracy at each cost)"} and not fig.layout.shapes
    assert len(trials_chart([], "macs").data) == 0
    with pytest.raises(ValueError):
        trials_chart(ROWS, "params")


def test_trials_frame_front_only_is_cheapest_first():
    df = trials_frame(ROWS, "size_bytes", budget=250, front_only=True)
    assert df["trial"].tolist() == [3, 2, 0] and df["within budget"].tolist() == [True, True, False]
    assert df["accuracy (%)"].tolist() == [50.0, 80.0, 90.0] and df["run id"].tolist() == [13, 12, 10]
    everything = trials_frame(ROWS, "size_bytes")
    assert len(everything) == 4 and everything["on the front"].sum() == 3 and everything["within budget"].all()
    assert trials_frame([], "macs").empty


def _study(n: int, *, params: bool = True):
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = optuna.create_study(directions=["maximize", "minimize"], sampler=optuna.samplers.RandomSampler(seed=0))
    for _ in range(n):
        t = study.ask()
        if params:
            bits, ratio = t.suggest_int("bits", 2, 8), t.suggest_float("ratio", 0.05, 0.95)
        else:
            bits, ratio = 8, 0.5
        study.tell(t, [bits / 8 - ratio / 10, bits * 1000.0])
    return study


def test_optuna_views_are_plotly_figures_with_enough_trials():
    study = _study(8)
    fig, why = parallel_coordinates(study)
    assert why is None and sum(t.mode == "lines" for t in fig.data) == 8  # a line per trial (Optuna 5: scatter)
    assert set(fig.layout.xaxis.ticktext) == {"accuracy", "bits", "ratio"}
    fig, why = param_importances(study)
    assert why is None and set(fig.data[0].y) == {"bits", "ratio"}


def test_optuna_views_say_why_not():
    fig, why = param_importances(_study(1))
    assert fig is None and "at least 2" in why
    fig, why = parallel_coordinates(_study(3, params=False))  # e.g. only the budget grid's trials
    assert fig is None and "grid" in why
    fig, why = param_importances(_study(3, params=False))
    assert fig is None and why


def test_configurations_not_evaluated_are_greyed_crosses_at_their_predicted_cost():
    from compression.charts.search import skipped_frame
    skipped = [{"trial": 7, "spec": "quantize:uniform:8", "label": "quantize:uniform:8", "predicted_cost": 269919,
                "over": 19919.0, "why": "not evaluated: 19,919 bytes over"}]
    fig = trials_chart(ROWS, "size_bytes", budget=250_000, skipped=skipped)
    (cross,) = [t for t in fig.data if t.name == "not evaluated (predicted over budget)"]
    assert list(cross.x) == [269919] and cross.yaxis == "y2" and cross.marker.color == "#bbbbbb"
    assert "not evaluated: 19,919 bytes over" in cross.hovertext[0]
    assert fig.layout.yaxis.title.text == "test accuracy (%)"  # the trials keep their own axis
    table = skipped_frame(skipped, "size_bytes")
    assert table["why"].tolist() == ["not evaluated: 19,919 bytes over"] and table["trial"].tolist() == [7]
    assert skipped_frame([], "size_bytes").empty
