"""Recording a search's trials in its Optuna study: the costs predicted before a trial runs
(compression.costs), and the configurations predicted over a hard budget, which are told to the
study as pruned and infeasible (Optuna's trial constraints: the samplers learn from them) without
being evaluated."""

from __future__ import annotations

from typing import Any

from compression.pareto import COSTS
from compression.search_space import grid_params


def over_budget(predicted: Any, cfg: Any) -> float | None:
    """How far `predicted` is over the hard budget, or None when it fits or cannot be predicted."""
    cost = predicted.cost(cfg.objective) if predicted is not None else None
    return cost - cfg.budget if cfg.budget is not None and cost is not None and cost > cfg.budget else None


def predicted_attrs(predicted: Any) -> dict[str, Any]:
    return {"size_bytes": predicted.size_bytes, "params": predicted.params, "macs": predicted.macs,
            "exact": predicted.exact}


def skip_words(over: float, objective: str) -> str:
    unit = {"size_bytes": "bytes", "macs": "MACs"}.get(objective, COSTS[objective][1])
    return f"not evaluated: {over:,.0f} {unit} over"


def skip_row(number: int, spec: str, predicted: Any, over: float, cfg: Any) -> dict[str, Any]:
    return {"trial": number, "spec": spec, "label": spec.replace(",", " -> "),
            "predicted_cost": predicted.cost(cfg.objective), "over": over, "why": skip_words(over, cfg.objective),
            "predicted": predicted_attrs(predicted)}


def add_skipped(study, cfg: Any, spec: str, predicted: Any) -> None:
    """Record a configuration predicted over the budget as a trial that was not evaluated (pruned,
    infeasible by its constraint): the samplers learn from it, nothing is run."""
    import optuna
    from compression.search_space import fixed
    spec, fixed_trial = fixed(grid_params(spec), cfg)
    over = over_budget(predicted, cfg)
    study.add_trial(optuna.trial.create_trial(
        state=optuna.trial.TrialState.PRUNED, params=fixed_trial.params, distributions=fixed_trial.distributions,
        user_attrs={"spec": spec, "skipped": True, "over_budget": over, "predicted": predicted_attrs(predicted),
                    "grid": spec}, constraints={"budget": over}))


def skip(study, trial, over: float) -> None:
    """Tell a trial predicted `over` the budget as pruned and infeasible, without running it."""
    import optuna
    trial.set_constraint("budget", over)
    trial.set_user_attr("skipped", True)
    trial.set_user_attr("over_budget", over)
    study.tell(trial, state=optuna.trial.TrialState.PRUNED)
