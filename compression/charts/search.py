"""Plot builders for the Search page (compression.search): pure functions from trial rows (dicts
with trial, spec, accuracy, cost) to figures and tables, plus Optuna's own views as Plotly figures
with the reason when one cannot be drawn."""

from __future__ import annotations

from typing import Any, Sequence

import pandas as pd
import plotly.graph_objects as go

from compression.honesty import simulated_metrics
from compression.pareto import frontier_mask

AXIS = {"size_bytes": "stored size (bytes)", "macs": "MACs per image", "latency_ms": "latency, batch 1 (ms)"}
FIT, OVER, FRONT, BEST = "#1f77b4", "#bbbbbb", "#111111", "#d62728"


def _frame(rows: Sequence[dict], budget: float | None, objective: str) -> pd.DataFrame:
    """`simulated`: the objective's number is simulated for that trial (compression.honesty)."""
    df = pd.DataFrame([{"trial": r.get("trial"), "spec": r.get("spec") or "", "accuracy": float(r["accuracy"]),
                        "cost": float(r["cost"]), "simulated": objective in simulated_metrics(r),
                        "run_id": r.get("run_id")} for r in rows])
    if df.empty:
        return df
    df["label"] = df["spec"].str.replace(",", " -> ")
    df["acc"] = 100 * df["accuracy"]
    df["fits"] = True if budget is None else df["cost"] <= budget
    df["front"] = frontier_mask(df["cost"].tolist(), df["acc"].tolist())
    return df


def trials_chart(rows: Sequence[dict], objective: str, budget: float | None = None, *,
                 best_trial: int | None = None, log_x: bool = True, title: str = "Trials",
                 skipped: Sequence[dict] = ()) -> go.Figure:
    """Every trial on the accuracy-cost plane: within budget in color, over it greyed; the front of
    all trials as a step line (the best accuracy at each cost); the budget as a vertical line; the
    chosen trial ringed. `skipped` (compression.search.skipped_rows): configurations predicted over
    the budget and not evaluated, greyed crosses at their predicted cost in a strip above the plane
    (they have no accuracy)."""
    if objective not in AXIS:
        raise ValueError(f"unknown objective {objective!r}")
    df = _frame(rows, budget, objective)
    fig = go.Figure()
    if not df.empty:
        for fits, part in df.groupby("fits", sort=False):
            fig.add_trace(go.Scatter(
                x=part["cost"], y=part["acc"], mode="markers",
                name=("within budget" if budget is not None else "trial") if fits else "over budget",
                hovertext=[f"trial {t}: {lab}" for t, lab in zip(part["trial"], part["label"])], hoverinfo="text+x+y",
                marker=dict(size=10, color=FIT if fits else OVER,
                            symbol=["circle-open" if s else "circle" for s in part["simulated"]],
                            line=dict(width=1.5, color=FIT if fits else "#999999"))))
        on = df[df["front"]].sort_values("cost")
        fig.add_trace(go.Scatter(x=on["cost"], y=on["acc"], mode="lines", name="front (best accuracy at each cost)",
                                 line=dict(shape="hv", dash="dash", color=FRONT), hoverinfo="skip"))
        if best_trial is not None and best_trial in set(df["trial"]):
            b = df[df["trial"] == best_trial]
            fig.add_trace(go.Scatter(x=b["cost"], y=b["acc"], mode="markers", name="chosen",
                                     marker=dict(size=22, color="rgba(0,0,0,0)", line=dict(color=BEST, width=3)),
                                     hovertext=b["label"], hoverinfo="text"))
    if skipped:
        fig.add_trace(go.Scatter(
            x=[r["predicted_cost"] for r in skipped], y=[0.5] * len(skipped), yaxis="y2", mode="markers",
            name="not evaluated (predicted over budget)", hoverinfo="text+x",
            hovertext=[f"trial {r['trial']}: {r['label']} — {r['why']}" for r in skipped],
            marker=dict(size=9, color=OVER, symbol="x-thin-open", line=dict(width=2, color=OVER))))
        fig.update_layout(yaxis=dict(domain=[0.0, 0.86]),
                          yaxis2=dict(domain=[0.91, 1.0], anchor="x", range=[0, 1], showticklabels=False,
                                      showgrid=False, zeroline=False, title=dict(text="not run", font=dict(size=10))))
    if budget is not None:
        fig.add_vline(x=budget, line=dict(color=BEST, dash="dot"), annotation_text="budget")
    fig.update_layout(height=460, margin=dict(l=10, r=10, t=40, b=10), title=title,
                      xaxis=dict(title=AXIS[objective] + (", log scale" if log_x else ""),
                                 type="log" if log_x else "linear", tickformat="~s",
                                 dtick="D2" if log_x else None),
                      yaxis_title="test accuracy (%)")
    return fig


def trials_frame(rows: Sequence[dict], objective: str, budget: float | None = None, *,
                 front_only: bool = False) -> pd.DataFrame:
    """The trials as a table, cheapest first (units in the column names): on the front, within budget."""
    df = _frame(rows, budget, objective)
    cols = ["trial", "configuration", "accuracy (%)", AXIS[objective], "on the front", "within budget", "run id"]
    if df.empty:
        return pd.DataFrame(columns=cols)
    if front_only:
        df = df[df["front"]]
    out = pd.DataFrame({"trial": df["trial"], "configuration": df["label"], "accuracy (%)": df["acc"].round(2),
                        AXIS[objective]: df["cost"].round(4 if objective == "latency_ms" else 0),
                        "on the front": df["front"], "within budget": df["fits"], "run id": df["run_id"]})
    return out.sort_values([AXIS[objective], "accuracy (%)"], ascending=[True, False])[cols].reset_index(drop=True)


def skipped_frame(skipped: Sequence[dict], objective: str) -> pd.DataFrame:
    """The configurations not evaluated (predicted over the budget), cheapest first."""
    cols = ["trial", "configuration", f"predicted {AXIS[objective]}", "why"]
    if not skipped:
        return pd.DataFrame(columns=cols)
    df = pd.DataFrame({"trial": [r["trial"] for r in skipped], "configuration": [r["label"] for r in skipped],
                       f"predicted {AXIS[objective]}": [r["predicted_cost"] for r in skipped],
                       "why": [r["why"] for r in skipped]})
    return df.sort_values(cols[2]).reset_index(drop=True)[cols]


def parallel_coordinates(study: Any) -> tuple[go.Figure | None, str | None]:
    """Optuna's parallel-coordinate view of the accuracy, or (None, why not)."""
    import optuna
    if not any(t.params for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))):
        return None, "no complete trial drew its knobs from the sampler yet (the budget grid's trials have no parameters)"
    try:
        fig = optuna.visualization.plot_parallel_coordinate(study, target=lambda t: t.values[0],
                                                            target_name="accuracy")
    except Exception as exc:  # optuna refuses some studies (e.g. no shared parameter)
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no reason given'}"
    fig.update_layout(height=420, margin=dict(l=30, r=30, t=60, b=20))
    return fig, None


def param_importances(study: Any) -> tuple[go.Figure | None, str | None]:
    """Optuna's parameter importances for the accuracy, or (None, why not): they need at least two
    complete trials whose parameters vary."""
    import optuna
    done = [t for t in study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,)) if t.params]
    if len(done) < 2:
        return None, (f"{len(done)} complete trial(s) with sampled parameters; importances need at least 2 "
                      "whose parameters vary")
    import warnings
    try:  # Optuna's default evaluator (PED-ANOVA) ranks the knobs that lead to LOW target values:
        with warnings.catch_warnings():  # negate, so it is what gets high accuracy
            warnings.simplefilter("ignore", UserWarning)
            fig = optuna.visualization.plot_param_importances(study, target=lambda t: -t.values[0],
                                                              target_name="accuracy")
    except Exception as exc:  # e.g. every parameter constant, or no parameter shared by the trials
        return None, f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else 'no reason given'}"
    if not fig.data or not len(fig.data[0].x if fig.data[0].x is not None else []):
        return None, "no parameter is shared by the complete trials"
    fig.update_layout(height=360, margin=dict(l=10, r=10, t=60, b=10))
    return fig, None
