"""The home page under streamlit.testing.v1.AppTest: through app.py (the navigation's default page)
and, where a test clicks a button, as pages/0_Home.py. AppTest runs app.py through the pages/
folder's navigation first on every run (the folder sits beside it), and the switch to app.py's
navigation inside that run drops button clicks; a served app makes that switch once per process,
before anyone can click (ui/navigation.py)."""

from streamlit.testing.v1 import AppTest

from compression.paths import REPO_ROOT as ROOT

HOME_PAGE = str(ROOT / "pages" / "0_Home.py")


def _metrics(at):
    return {m.label: m.value for m in at.metric}


def test_home_renders_baseline_and_switches_model(home):
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    assert not at.exception
    first = _metrics(at)
    assert {"Test accuracy", "Parameters", "Size on disk", "MACs / image", "Latency (batch 1)", "Images / s"} <= set(first)
    at.sidebar.selectbox(key="sidebar_model").set_value("mlp").run()
    assert not at.exception
    second = _metrics(at)
    assert second["Parameters"] == "266,610" and second["Parameters"] != first["Parameters"]
    # empty run history says what to do first
    assert any("No compression runs stored yet" in i.value for i in at.info)


def test_home_shows_stored_runs(home):
    from compression.evaluate import evaluate
    from compression.store import RunStore
    RunStore().add(evaluate("mlp", limit=300))
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["keep_sidebar_model"] = "mlp"
    at.run()
    assert not at.exception
    assert not any("No compression runs" in i.value for i in at.info)
    assert len(at.get("plotly_chart")) == 1


def test_home_upload_own_weights(home):
    import io
    import torch
    from compression.models import load_pretrained
    buf = io.BytesIO()
    torch.save(load_pretrained("lenet5").state_dict(), buf)
    at = AppTest.from_file(HOME_PAGE, default_timeout=120).run()
    at.selectbox(key="home_byo_base").set_value("lenet5")
    at.file_uploader(key="home_byo_file").set_value(("mine.pt", buf.getvalue(), "application/octet-stream"))
    at.text_input(key="home_byo_name").set_value("lenet5-uploaded")
    at.run()
    at.button(key="home_byo_go").click().run()
    assert not at.exception and not at.error
    assert at.sidebar.selectbox(key="sidebar_model").value == "lenet5-uploaded"
    assert _metrics(at)["Test accuracy"] == "90.73 %"  # the zoo lenet5's weights, re-evaluated


def test_home_refuses_a_pickled_model(home):
    import io
    import torch
    buf = io.BytesIO()
    torch.save(torch.nn.Linear(2, 2), buf)
    at = AppTest.from_file(HOME_PAGE, default_timeout=120).run()
    at.file_uploader(key="home_byo_file").set_value(("model.pt", buf.getvalue(), "application/octet-stream"))
    at.run()
    at.button(key="home_byo_go").click().run()
    assert not at.exception
    assert any("pickled object" in e.value for e in at.error)
