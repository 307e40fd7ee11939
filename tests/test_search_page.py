"""The Search page (pages/8_Budget_search.py, at the old /Budget_search URL) under AppTest: a tiny
search on mlp runs as a background job to the end, shows the trials, the front, the choice (or the
near miss) and the command line; every trial is a stored run; a study given again is continued; a
COMPRESSION_CLUSTER that cannot be reached is one line and the search runs in-process. The plot
builders: test_search_charts.py."""


from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT
from compression.search import skipped_rows, study_rows
from compression.store import RunStore
from ui.navigation import title, url_path

PAGE = str(ROOT / "pages" / "8_Budget_search.py")


def _page(trials: int = 3, *, budget: bool = True):
    at = AppTest.from_file(PAGE, default_timeout=180)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception, at.exception
    at.number_input(key="search_trials").set_value(trials)
    at.select_slider(key="search_limit").set_value("500")
    at.checkbox(key="search_use_budget").set_value(budget)
    return at.run()


def _search(at):
    at.button(key="search_run").click().run()
    at.session_state["search_job"].wait()
    return at.run()


def _figure(chart):
    import json

    import plotly.graph_objects as go
    return go.Figure(json.loads(chart.proto.spec))


def _texts(at) -> str:
    return " ".join(e.value for kind in ("success", "warning", "caption", "markdown", "error") for e in at.get(kind)
                    if isinstance(getattr(e, "value", None), str))


def test_a_tiny_search_runs_to_the_end_and_shows_the_front_and_the_choice(home):
    assert title("8_Budget_search.py") == "Search" and url_path("8_Budget_search.py") == "Budget_search"
    at = _page(3)
    assert at.title[0].value == "Search" and "Executor:" in _texts(at) and "in-process" in _texts(at)
    name = at.text_input(key="search_name_mlp_size_bytes").value
    assert name == "mlp-bytes-1"
    at = _search(at)
    assert not at.exception, at.exception
    job = at.session_state["search_job"]
    assert job.status == "done" and len(job.result.outcome.trials) == 3
    rows = study_rows(name)
    assert len(rows) == 3 and all(r["grid"] for r in rows)  # the budget solver's candidates run first
    texts = _texts(at)
    # the grid's points predicted over the budget (an eighth of the model): greyed, never run
    skipped = skipped_rows(name)
    assert skipped and "predicted over the budget, not evaluated (greyed)" in texts
    names = {t.name for c in at.get("plotly_chart") for t in _figure(c).data}
    assert "not evaluated (predicted over budget)" in names
    assert "Best that fits the budget:" in texts or "Best near miss" in texts
    assert "python -m compression search --model mlp" in at.code[0].value and f"--study {name}" in at.code[0].value
    assert "--trials 3" in at.code[0].value and "--limit 500" in at.code[0].value
    charts = at.get("plotly_chart")
    assert charts, "the trials chart"
    front = at.dataframe[0].value  # the front (the full table sits in a closed expander after it)
    assert 1 <= len(front) <= 3 and set(front["trial"]) <= {r["trial"] for r in rows}
    # every trial is a stored run, grouped under the study (the Pareto explorer lists them)
    runs = RunStore().runs()
    assert sorted(r["id"] for r in runs) == sorted(r["run_id"] for r in rows)
    # the study is listed and continued when picked again: trial numbers go on, nothing reruns
    at.selectbox(key="search_study_pick").set_value(name).run()
    assert f"Continues **{name}**" in _texts(at) and "3 complete trials so far" in _texts(at)
    at.number_input(key="search_trials").set_value(1)
    at = _search(at.run())
    assert not at.exception, at.exception
    rows = study_rows(name)
    assert [r["trial"] for r in rows] == [0, 1, 2, 3] and len({r["spec"] for r in rows}) == 4
    assert "--trials 4" in at.code[0].value and "4 evaluated trials (1 in this run)" in _texts(at)


def test_without_the_grid_the_sampler_draws_and_optuna_views_are_drawn(home):
    at = _page(4, budget=False)
    at.checkbox(key="search_grid").set_value(False)
    at = _search(at.run())
    assert not at.exception, at.exception
    assert "Most accurate:" in _texts(at)
    rows = study_rows(at.session_state["search_job"].result.outcome.study)
    assert len(rows) == 4 and not any(r["grid"] for r in rows) and all(r["params"] for r in rows)
    keys = {c.proto.id for c in at.get("plotly_chart")}
    assert any("search_parallel" in k for k in keys), "parallel coordinates drawn"
    assert any("search_importance" in k for k in keys) or "Not drawn:" in _texts(at)


def test_an_unreachable_scheduler_is_one_line_and_the_search_runs_in_process(home, monkeypatch):
    monkeypatch.setenv("COMPRESSION_CLUSTER", "tcp://127.0.0.1:9")
    monkeypatch.setenv("COMPRESSION_CLUSTER_TIMEOUT", "1")
    at = _page(1, budget=True)
    (error,) = at.error
    assert "cannot be reached" in error.value and "Running in-process" in error.value
    assert "\n" not in error.value
    at = _search(at)
    assert not at.exception and at.session_state["search_job"].status == "done"
