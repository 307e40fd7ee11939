"""Streamlit-side helpers for the Search page: the studies in the storage, the background job, the
live view (trials, front, done / running / queued) and the final one (the choice, the front,
Optuna's views, the command line). The search itself is compression.search's."""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path

import streamlit as st

from compression.charts.format import fmt_bytes, fmt_change, fmt_count, fmt_ms, fmt_pct, fmt_points, plural
from compression.charts.search import (param_importances, parallel_coordinates, skipped_frame, trials_chart,
                                       trials_frame)
from compression.honesty import simulated_metrics
from compression.search import (SearchConfig, SearchOutcome, best, iter_search, skipped_rows, storage_url,
                                study_rows)
from ui import cache, jobs
from ui.downloads import model_download

JOB = "search_job"
FMT = {"size_bytes": fmt_bytes, "macs": fmt_count, "latency_ms": fmt_ms}
NAMES = {"size_bytes": "stored size", "macs": "MACs per image", "latency_ms": "batch-1 latency"}


def _storage_file() -> Path:
    """The SQLite file of the studies; on a PostgreSQL store a path that always exists (the database)."""
    url = storage_url()
    return Path(url.removeprefix("sqlite:///")) if url.startswith("sqlite:///") else Path("/")


def studies() -> dict[str, dict]:
    """The studies in the storage: name -> {"objective", "budget", "trials" (complete ones)}."""
    if not _storage_file().exists():  # no search yet: do not create the file just to list nothing
        return {}
    import optuna
    out = {}
    for s in optuna.get_all_study_summaries(storage_url(), include_best_trial=False):
        out[s.study_name] = {"objective": s.user_attrs.get("objective"), "budget": s.user_attrs.get("budget")}
    return out


def complete_rows(name: str) -> list[dict]:
    """The evaluated trials of a stored study ([] when there is no such study)."""
    return _rows(study_rows, name)


def not_evaluated(name: str) -> list[dict]:
    """The study's configurations predicted over its budget, never run ([] when there is no such study)."""
    return _rows(skipped_rows, name)


def _rows(read, name: str) -> list[dict]:
    import optuna
    if not _storage_file().exists():
        return []
    try:
        return read(name)
    except KeyError:  # optuna: no study of that name
        return []
    except optuna.exceptions.OptunaError:
        return []


def fresh_name(model: str, objective: str, taken) -> str:
    short = {"size_bytes": "bytes", "macs": "macs", "latency_ms": "latency"}[objective]
    k = 1
    while f"{model}-{short}-{k}" in taken:
        k += 1
    return f"{model}-{short}-{k}"


def command_line(model: str, dataset: str, cfg: SearchConfig, study: str, limit: int | None) -> str:
    """The CLI call that runs (or continues) the same study."""
    args = ["python", "-m", "compression", "search", "--model", model, "--dataset", dataset,
            "--objective", cfg.objective]
    if cfg.budget is not None:
        flag = {"size_bytes": "--max-bytes", "macs": "--max-macs", "latency_ms": "--max-latency-ms"}[cfg.objective]
        args += [flag, f"{cfg.budget:g}" if cfg.objective == "latency_ms" else str(int(cfg.budget))]
    args += ["--methods", ",".join(cfg.methods), "--trials", str(cfg.trials), "--sampler", cfg.sampler,
             "--study", study, "--seed", str(cfg.seed)]
    if cfg.finetune_epochs:
        args += ["--finetune-epochs", str(cfg.finetune_epochs)]
    if cfg.subset:
        args += ["--subset", str(cfg.subset)]
    if limit:
        args += ["--limit", str(limit)]
    if not cfg.grid_first:
        args.append("--no-grid")
    return shlex.join(args) + " --json"


@dataclass
class Live:
    """What the page shows while the job runs: the study's earlier trials, then this run's."""
    outcome: SearchOutcome
    model: str
    dataset: str
    base: dict                     # the uncompressed model's metrics
    prior: list[dict] = field(default_factory=list)
    limit: int | None = None
    prior_skipped: list[dict] = field(default_factory=list)

    @property
    def rows(self) -> list[dict]:
        return self.prior + self.outcome.trials

    @property
    def skipped(self) -> list[dict]:
        return self.prior_skipped + self.outcome.skipped


def start(model: str, dataset: str, device: str, cfg: SearchConfig, study: str, *, base: dict,
          limit: int | None, executor, runtime: str = "eager") -> None:
    """Run the search in the background: each trial is stored as a run when it finishes; Stop
    lets the running trials finish and keeps everything that finished."""
    cache.dataset(dataset)  # loaded once in the app process
    prior, prior_skipped = complete_rows(study), not_evaluated(study)

    def work(job) -> Live:
        live = Live(SearchOutcome(cfg, study), model, dataset, base, prior, limit, prior_skipped)
        job.result = live
        job.progress({"step": len(prior), "steps": cfg.trials})
        for _ in iter_search(model, dataset, cfg, study=study, device=device, limit=limit, executor=executor,
                             outcome=live.outcome, progress=job.progress, should_stop=job.should_stop,
                             runtime=runtime):
            pass
        return live
    jobs.start(JOB, f"search {model} ({study})", work, device=device)


def counts(done: int, target: int, width: int, finished: bool) -> tuple[int, int, int]:
    """(done, running, queued) trials: the search runs batches `width` wide until `target` are done."""
    running = 0 if finished else max(0, min(width, target - done))
    return done, running, max(0, target - done - running)


def show_live(job, width: int) -> None:
    live: Live | None = job.result
    if live is None:
        return
    cfg = live.outcome.config
    rows, skipped = live.rows, live.skipped
    done, running, queued = counts(len(rows), cfg.trials, width, job.finished)
    solver = live.outcome.solver
    st.caption(f"Trials: **{done} evaluated** · {running} running · {queued} queued (of {cfg.trials} in the study)"
               + (f" · {len(skipped)} not evaluated (predicted over the budget)" if skipped else "")
               + (f" · the budget solver proposed {solver['candidates']} configurations predicted to fit "
                  f"in {solver['seconds']:.1f} s" if solver.get("candidates") is not None and cfg.budget else ""))
    if rows or skipped:
        st.plotly_chart(trials_chart(rows, cfg.objective, cfg.budget, log_x=cfg.objective != "latency_ms",
                                     title="Trials so far, and the current front", skipped=skipped),
                        key="search_chart_live", width="stretch")


def _describe(row: dict, objective: str, base: dict) -> str:
    change = fmt_change(row["cost"], base.get(objective), objective, simulated=objective in simulated_metrics(row))
    return (f"**{row['spec'].replace(',', ' -> ')}** (trial {row['trial']}) — {fmt_pct(row['accuracy'])} "
            f"({fmt_points(row['accuracy'], base['accuracy'])}), {NAMES[objective]} "
            f"{FMT[objective](row['cost'])} ({change.text}) · run {row.get('run_id')}")


@st.cache_data(max_entries=16, show_spinner="Drawing Optuna's views…")
def _optuna_views(storage: str, name: str, complete: int):
    import optuna
    study = optuna.load_study(study_name=name, storage=storage)
    return parallel_coordinates(study), param_importances(study)


def show_final(job) -> None:
    """The study after the run (settings as the job ran, whatever the widgets say now)."""
    live: Live | None = job.result
    if live is None:
        return
    cfg = live.outcome.config
    name = live.outcome.study
    rows = complete_rows(name)
    simulated = {r["trial"]: (r.get("simulated", False), simulated_metrics(r)) for r in live.outcome.trials}
    rows = [{**r, "simulated": simulated.get(r["trial"], (False, []))[0],
             "simulated_metrics": simulated.get(r["trial"], (False, []))[1]} for r in rows]
    skipped = not_evaluated(name) or live.outcome.skipped
    chosen, fits = best(rows, cfg.budget)
    for spec, error in live.outcome.refused:
        st.caption(f"Refused: {spec} — {error}")
    if live.outcome.reason:
        st.info(live.outcome.reason)
    if chosen is None:
        st.warning("No trial finished: nothing to choose from yet. Run the search again to continue the study.")
        return
    if fits:
        st.success(("Best that fits the budget: " if cfg.budget is not None else "Most accurate: ")
                   + _describe(chosen, cfg.objective, live.base))
    else:
        st.warning(f"No trial fits {FMT[cfg.objective](cfg.budget)}. Best near miss (the cheapest trial): "
                   + _describe(chosen, cfg.objective, live.base))
    st.caption(f"Study **{name}**: {len(rows)} evaluated trials ({len(live.outcome.trials)} in this run); "
               "each is a stored run, on the Pareto explorer too."
               + (f" {plural(len(skipped), 'configuration')} predicted over the budget, not evaluated (greyed)."
                  if skipped else ""))
    run = cache.run_store().get(chosen["run_id"]) if chosen.get("run_id") else None
    if run is not None:
        model_download(f"search_best_{run['id']}", run, what="chosen model")
    st.plotly_chart(trials_chart(rows, cfg.objective, cfg.budget, best_trial=chosen["trial"],
                                 log_x=cfg.objective != "latency_ms", title="Every trial of the study, and its front",
                                 skipped=skipped),
                    key="search_chart_final", width="stretch")
    st.subheader("The front")
    st.dataframe(trials_frame(rows, cfg.objective, cfg.budget, front_only=True), hide_index=True, width="stretch",
                 key="search_front_table")
    with st.expander(f"All {plural(len(rows), 'trial')}"):
        st.dataframe(trials_frame(rows, cfg.objective, cfg.budget), hide_index=True, width="stretch")
    if skipped:
        with st.expander(f"Not evaluated: {plural(len(skipped), 'configuration')} predicted over the budget"):
            st.dataframe(skipped_frame(skipped, cfg.objective).style.set_properties(color="#999999"),
                         hide_index=True, width="stretch", key="search_skipped_table")
    (pc, pc_why), (imp, imp_why) = _optuna_views(storage_url(), name, len(rows))
    left, right = st.columns(2)
    with left:
        st.markdown("**Parallel coordinates** (accuracy)")
        st.plotly_chart(pc, key="search_parallel", width="stretch") if pc else st.caption(f"Not drawn: {pc_why}.")
    with right:
        st.markdown("**Parameter importances** (accuracy)")
        st.plotly_chart(imp, key="search_importance", width="stretch") if imp else st.caption(f"Not drawn: {imp_why}.")
    st.markdown("Reproduce or continue it from the command line:")
    st.code(command_line(live.model, live.dataset, cfg, name, live.limit), language="bash", wrap_lines=True)
