"""The app with sign-in, under AppTest: who sees which controls, what a forged change gets, the
sign-in screen, data roots, share links. AppTest cannot sign in: the tests set the one function
the app reads its user through (ui.auth.identity)."""

import pytest
from streamlit.testing.v1 import AppTest

from compression.access import User, acting_as
from compression.metrics import Metrics, Result
from compression.paths import REPO_ROOT as ROOT
from compression.store import RunStore

EXPLORER, PRUNING, APP = (str(ROOT / "pages" / "6_Pareto_explorer.py"), str(ROOT / "pages" / "1_Pruning.py"),
                          str(ROOT / "app.py"))
M = Metrics(accuracy=0.9, accuracy_n=1000, params=10, nonzero_params=5, size_bytes=40, macs=10.0,
            latency_ms=0.1, simulated=False)
ROLES = 'admin = ["boss@example.com"]\neditor = ["ana@example.com", "bo@example.com"]\n'


@pytest.fixture
def team(home, monkeypatch):
    """A roles file, two runs (one by ana, one by bo) and a way to say who is signed in."""
    (home / "roles.toml").parent.mkdir(parents=True, exist_ok=True)
    (home / "roles.toml").write_text(ROLES)
    store = RunStore()
    ids = {}
    for who in ("ana@example.com", "bo@example.com"):
        with acting_as(User(who, "editor")):
            ids[who] = store.add(Result("mlp", "fashion-mnist", "quantize", {"bits": 8}, "cpu", M, M),
                                 name=f"{who[:2]}'s run", starred=True)
    import ui.auth

    def sign_in(email):
        monkeypatch.setattr(ui.auth, "identity", lambda: email)
    return store, ids, sign_in


def explorer(run_id: int | None = None) -> AppTest:
    at = AppTest.from_file(EXPLORER, default_timeout=120)
    if run_id is not None:
        at.query_params["run"] = str(run_id)
    return at.run()


def keys(at) -> set[str]:
    return {w.key for kind in ("button", "text_input", "multiselect") for w in at.get(kind) if w.key}


def test_a_viewer_sees_runs_but_no_controls_and_a_forged_delete_changes_nothing(team, monkeypatch):
    store, ids, sign_in = team
    sign_in("carol@elsewhere.org")  # not in the roles file: the default role, viewer
    ana = ids["ana@example.com"]
    at = explorer(ana)
    assert not at.exception
    assert any("Signed in as **carol@elsewhere.org** · viewer" in m.value for m in at.markdown)
    assert not {k for k in keys(at) if k.startswith(("explorer_name_", "explorer_star_", "explorer_delete",
                                                       "explorer_hide_", "share_"))}
    assert any(f"owner **ana@example.com**" in m.value for m in at.markdown)
    from ui import run_manage
    with pytest.raises(Exception):  # no widget to click: the callback is what a forged event would reach
        at.button(key=f"explorer_delete_{ana}")
    state = {run_manage.CONFIRM: ana}  # forge the confirmation and call what the Yes button calls
    monkeypatch.setattr(run_manage.st, "session_state", state)
    run_manage._delete(store, ana)
    assert state[run_manage.FLASH] == ("error", f"deleting run {ana} (it belongs to ana@example.com) needs the "
                                                "admin role; you are carol@elsewhere.org (viewer)")
    assert store.get(ana) is not None and store.count() == 2


def test_a_viewer_cannot_open_a_page_that_runs_jobs(team):
    _, _, sign_in = team
    sign_in("carol@elsewhere.org")
    at = AppTest.from_file(PRUNING, default_timeout=120).run()
    assert not at.exception
    assert [w.value for w in at.warning] == ["the Pruning page needs the editor role; you are carol@elsewhere.org (viewer)"]
    assert not at.button and not at.slider
    from ui.navigation import pages
    assert list(pages()) == ["", "Review"]  # the navigation offers Home and the explorer only
    sign_in("ana@example.com")
    assert list(pages()) == ["", "Compress", "Combine", "Review"]


def test_an_editor_manages_their_own_run_stars_any_and_an_admin_manages_all(team):
    store, ids, sign_in = team
    ana, bo = ids["ana@example.com"], ids["bo@example.com"]
    sign_in("ana@example.com")
    at = explorer(bo)  # someone else's run: star only
    assert {k for k in keys(at) if k.startswith("explorer_") and k.endswith(f"_{bo}")} == {f"explorer_star_{bo}"}
    at = explorer(ana)
    assert {f"explorer_name_{ana}", f"explorer_delete_{ana}", f"explorer_hide_{ana}"} <= keys(at)
    at.button(key=f"explorer_delete_{ana}").click().run()
    at.button(key="explorer_delete_yes").click().run()
    assert not at.exception and store.get(ana) is None
    sign_in("boss@example.com")
    at = explorer(bo)
    assert {f"explorer_name_{bo}", f"explorer_delete_{bo}"} <= keys(at)
    at.button(key=f"explorer_delete_{bo}").click().run()
    at.button(key="explorer_delete_yes").click().run()
    assert not at.exception and store.count() == 0


def test_nobody_signed_in_gets_the_sign_in_screen_only(team):
    _, _, sign_in = team
    sign_in("")
    at = explorer()
    assert not at.exception
    assert [b.label for b in at.button] == ["Sign in"] and not at.selectbox and not at.get("plotly_chart")


def test_local_mode_says_so(team):
    at = explorer()  # no sign-in configured (the real identity(): no [auth] in the secrets)
    assert not at.exception
    assert any("local mode" in c.value for c in at.sidebar.caption)


def test_folders_outside_the_data_roots_get_one_line_whether_they_exist_or_not(team, tmp_path, monkeypatch):
    _, _, sign_in = team
    sign_in("ana@example.com")
    monkeypatch.setenv("COMPRESSION_DATA_ROOTS", str(tmp_path / "data"))
    said = []
    for folder in ("/etc", "/no/such/folder"):
        at = AppTest.from_file(EXPLORER, default_timeout=120)
        at.query_params["dataset"] = f"imagefolder:{folder}"
        at.run()
        assert not at.exception
        said.append([e.value.replace(folder, "PATH") for e in at.sidebar.error])
    assert said[0] == said[1] == ["'PATH' is not an allowed data folder (the admin lists them in COMPRESSION_DATA_ROOTS)"]


def test_a_share_link_opens_the_story_read_only_and_nothing_once_revoked(team):
    store, ids, sign_in = team
    sign_in("ana@example.com")
    at = explorer()
    at.toggle(key="explorer_story").set_value(True).run()
    at.button(key="share_make").click().run()
    assert not at.exception
    (link,) = [c.value for c in at.code if "?share=" in c.value]
    token = link.split("?share=", 1)[1]

    sign_in("")  # the reviewer is not signed in
    shared = AppTest.from_file(APP, default_timeout=120)
    shared.query_params["share"] = token
    shared.run()
    assert not shared.exception and not shared.error
    (table,) = shared.dataframe
    assert sorted(table.value["run"]) == sorted(ids.values()) and "owner" in table.value.columns
    assert not shared.button and not shared.text_input  # read-only: nothing to press
    assert "shared by ana@example.com" in shared.caption[0].value

    from compression import share
    (made,) = share.links(store, user=User("boss@example.com", "admin"))
    share.revoke(store, made.id, user=User("ana@example.com", "editor"))
    shared.run()
    assert [e.value for e in shared.error] == ["This share link was revoked by its sender: ask them for a new one."]
    assert not shared.dataframe and not shared.get("plotly_chart")
    bad = AppTest.from_file(APP, default_timeout=120)
    bad.query_params["share"] = token[:-3] + "xyz"
    bad.run()
    assert [e.value for e in bad.error] == [share.INVALID] and not bad.dataframe
