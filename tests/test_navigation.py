"""app.py's navigation: every page in a section, at the URL the pages/ folder gave it before."""

import json
from pathlib import Path

from streamlit.source_util import page_icon_and_name
from streamlit.testing.v1 import AppTest

from benchmarks.bench_explorer import seed_store
from compression.paths import REPO_ROOT as ROOT
from ui.navigation import HOME, SECTIONS, url_path

# the addresses people have (tests/e2e and benchmarks open them too)
URLS = ["Pruning", "Distillation", "Quantization", "Architecture", "Dynamic_computation", "Pareto_explorer",
        "Pipelines", "Budget_search"]


def test_every_page_file_is_in_one_section():
    listed = [f for files in SECTIONS.values() for f in files]
    assert sorted(listed) == sorted(p.name for p in (ROOT / "pages").glob("*.py"))
    assert SECTIONS[""] == [HOME] and list(SECTIONS)[1:] == ["Compress", "Combine", "Review"]


def test_urls_are_the_ones_the_pages_folder_gave():
    for files in SECTIONS.values():
        for file in files:
            assert url_path(file) == page_icon_and_name(Path(file))[1], file  # Streamlit's own rule
    assert sorted(url_path(f) for f in SECTIONS["Compress"] + SECTIONS["Combine"] + SECTIONS["Review"]) == sorted(URLS)


def test_app_opens_home_and_switches_to_a_page_keeping_its_query(home):
    seed_store(home / "runs.sqlite", 30)
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120).run()
    assert not at.exception and at.title[0].value == "Compression Explorer"  # Home, the default page
    at.switch_page("pages/6_Pareto_explorer.py")
    at.query_params["x"] = "macs"
    at.run()
    assert not at.exception and at.title[0].value == "Pareto explorer"
    assert at.selectbox(key="explorer_x").value == "macs" and at.query_params["x"] == "macs"
    chart = at.get("plotly_chart")[0]  # the Pareto chart comes first (parallel coordinates below it)
    assert "MACs" in json.loads(chart.proto.spec)["layout"]["xaxis"]["title"]["text"]
