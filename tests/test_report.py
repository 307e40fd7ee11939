"""The HTML report: valid, self-contained HTML with every chart, the frontier tables and the configs;
`python -m compression report` and `runs --frontier`."""

import json
from html.parser import HTMLParser

import pytest

from benchmarks.bench_explorer import seed_store
from compression import CompressionError
from compression.charts.pareto import explorer_frame, frontier_ids
from compression.cli import main
from compression.metrics import Metrics, Result
from compression.pareto import COSTS, frontier_mask
from compression.report import report_html
from compression.store import RunStore

VOID = {"area", "base", "br", "col", "embed", "hr", "img", "input", "link", "meta", "source", "track", "wbr"}


class Checked(HTMLParser):
    """Parses a document, checking every element is closed in order, and collects what the tests need."""

    def __init__(self):
        super().__init__(convert_charrefs=True)
        self.stack, self.errors, self.tables = [], [], {}
        self.doctype, self.script_srcs, self.plot_divs, self.scripts = None, [], [], []
        self._table, self._row, self._cell, self._in_script = None, None, None, False

    def handle_decl(self, decl):
        self.doctype = decl

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        if tag not in VOID:
            self.stack.append(tag)
        if tag == "script":
            self._in_script = True
            self.scripts.append("")
            if a.get("src"):
                self.script_srcs.append(a["src"])
        if tag == "div" and "plotly-graph-div" in (a.get("class") or ""):
            self.plot_divs.append(a.get("id"))
        if tag == "table":
            self._table = a.get("id")
            self.tables[self._table] = []
        if tag == "tr" and self._table:
            self._row = []
        if tag in ("td", "th") and self._row is not None:
            self._cell = ""

    def handle_endtag(self, tag):
        if tag in VOID:
            return
        if not self.stack or self.stack[-1] != tag:
            self.errors.append(f"</{tag}> closes <{self.stack[-1] if self.stack else None}>")
            return
        self.stack.pop()
        if tag == "script":
            self._in_script = False
        if tag in ("td", "th") and self._row is not None:
            self._row.append(self._cell)
            self._cell = None
        if tag == "tr" and self._table:
            self.tables[self._table].append(self._row)
            self._row = None
        if tag == "table":
            self._table = None

    def handle_data(self, data):
        if self._in_script:
            self.scripts[-1] += data
        elif self._cell is not None:
            self._cell += data


def parse(text: str) -> Checked:
    p = Checked()
    p.feed(text)
    p.close()
    assert not p.errors, p.errors[:3]
    assert not p.stack, f"unclosed: {p.stack}"
    return p


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    path = tmp_path_factory.mktemp("report") / "runs.sqlite"
    seed_store(path, 80)
    store = RunStore(path)
    # a config that would break the page if it were not escaped
    m = Metrics(0.5, 100, 10, 10, 40, 10.0, 0.1, False)
    store.add(Result("mlp", "fashion-mnist", "prune", {"note": "</td><script>alert(1)</script>"}, "cpu", m, m))
    return store.runs()


def test_report_is_valid_self_contained_html_with_every_chart_and_the_frontier(seeded):
    text = report_html(seeded)
    doc = parse(text)
    assert doc.doctype.lower() == "doctype html"
    assert doc.script_srcs == []  # nothing fetched: plotly.js is inline, so it opens offline
    assert any("plotly" in s.lower() and len(s) > 1_000_000 for s in doc.scripts)  # the library itself
    assert doc.plot_divs == [f"chart-fashion-mnist-{c}" for c in COSTS]  # one chart per x-axis
    for div in doc.plot_divs:  # ... each drawn by a script that names it
        assert any(f'"{div}"' in s and "Plotly.newPlot" in s for s in doc.scripts), div
    df = explorer_frame(seeded)
    for cost in COSTS:
        rows = doc.tables[f"frontier-fashion-mnist-{cost}"]
        assert rows[0][0] == "run"
        assert [int(r[0]) for r in rows[1:]] == frontier_ids(df, cost)  # the frontier, cheapest first
    runs = doc.tables["runs-fashion-mnist"]
    assert len(runs) - 1 == len(seeded)
    configs = [r[3] for r in runs[1:]]
    assert all(json.loads(c) is not None for c in configs)  # full configs, as JSON
    assert "<script>alert(1)</script>" not in text and any("<script>alert(1)</script>" in c for c in configs)


def test_frontier_in_the_report_is_the_definition(seeded):
    """Spot-check the table against the definition: no shown run beats a frontier run on both axes."""
    real = [r for r in seeded if not r["simulated"]]
    front = set(frontier_ids(explorer_frame(seeded), "size_bytes"))
    mask = frontier_mask([r["size_bytes"] for r in real], [r["accuracy"] for r in real])
    assert front == {r["id"] for r, on in zip(real, mask) if on}
    for r in real:
        if r["id"] in front:
            assert not any(q["size_bytes"] <= r["size_bytes"] and q["accuracy"] > r["accuracy"] for q in real)


def test_one_section_per_dataset_and_nothing_to_report():
    m = Metrics(0.9, 100, 10, 10, 40, 10.0, 0.1, False)
    runs = [dict(id=i, created_at=0.0, model="mlp", dataset=d, method="prune", config={}, device="cpu",
                 code_version="x", parent_id=None, artifact_path=None, extra={}, baseline=None, **m.to_dict())
            for i, d in enumerate(["mnist", "fashion-mnist"], start=1)]
    doc = parse(report_html(runs, costs=["size_bytes"]))
    assert doc.plot_divs == ["chart-fashion-mnist-size_bytes", "chart-mnist-size_bytes"]
    with pytest.raises(CompressionError, match="no stored runs"):
        report_html([])
    with pytest.raises(CompressionError, match="'flops'"):
        report_html(runs, costs=["flops"])


def test_report_command_writes_the_file_it_reports(home, capsys):
    seed_store(home / "runs.sqlite", 30)
    out = home / "out" / "report.html"
    assert main(["report", "--out", str(out), "--model", "cnn", "--json"]) == 0
    line = json.loads(capsys.readouterr().out)
    assert line["bytes"] == out.stat().st_size and line["runs"] == len(RunStore().runs(model="cnn"))
    doc = parse(out.read_text())
    assert len(doc.plot_divs) == len(COSTS)
    assert {r[1] for r in doc.tables["runs-fashion-mnist"][1:]} == {"cnn"}


def test_report_command_with_nothing_stored_says_so(home, capsys):
    assert main(["report", "--out", str(home / "r.html"), "--dataset", "mnist"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "no stored runs for dataset=mnist" in err[0]


def test_runs_frontier_command(home, capsys):
    seed_store(home / "runs.sqlite", 60)
    assert main(["runs", "--frontier", "--x", "macs", "--json"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    real = [r for r in RunStore().runs() if not r["simulated"]]
    mask = frontier_mask([r["macs"] for r in real], [r["accuracy"] for r in real])
    assert sorted(r["run_id"] for r in got) == sorted(r["id"] for r, on in zip(real, mask) if on)
    assert [r["macs"] for r in got] == sorted(r["macs"] for r in got)  # cheapest first
    assert all(not r["simulated"] for r in got)
    assert main(["runs", "--frontier", "--include-simulated", "--model", "mlp", "--json"]) == 0
    got = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert got and {r["model"] for r in got} == {"mlp"}


def test_runs_frontier_is_per_axis(home, capsys):
    """`runs --frontier`: an unstructured prune (simulated_metrics ["latency_ms"]) is on the size
    frontier and off the latency one; an old row (simulated, no list) is on neither; both are in the
    report's size column, said the one way."""
    base = Metrics(0.90, 1000, 1000, 1000, 4000, 1e4, 1.0, False)
    store = RunStore()
    plain = store.add(Result("mlp", "fashion-mnist", "baseline", {}, "cpu", base, base))
    sparse = store.add(Result("mlp", "fashion-mnist", "prune", {"method": "unstructured"}, "cpu",
                              Metrics(0.91, 1000, 1000, 100, 500, 1e4, 0.5, True), base,
                              extra={"simulated_metrics": ["latency_ms"]}))
    old = store.add(Result("mlp", "fashion-mnist", "prune", {}, "cpu",
                           Metrics(0.92, 1000, 1000, 100, 400, 1e4, 0.4, True), base))
    front = {}
    for cost in ("size_bytes", "latency_ms"):
        assert main(["runs", "--frontier", "--x", cost, "--json"]) == 0
        front[cost] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [r["run_id"] for r in front["size_bytes"]] == [sparse]
    assert front["size_bytes"][0]["simulated_metrics"] == ["latency_ms"]
    assert [r["run_id"] for r in front["latency_ms"]] == [plain]
    assert old not in {r["run_id"] for rows in front.values() for r in rows}
    doc = parse(report_html(store.runs(), costs=["size_bytes"]))
    rows = {int(r[0]): r for r in doc.tables["runs-fashion-mnist"][1:]}
    col = doc.tables["runs-fashion-mnist"][0].index
    assert rows[sparse][col("size vs uncompressed")] == "8.00x smaller" and rows[sparse][col("simulated")] == "latency"
    assert rows[old][col("size vs uncompressed")] == "10.0x smaller (simulated)"


def test_starred_runs_come_first_with_their_names_and_the_page_fits_its_window(seeded):
    import re

    starred = [dict(r, starred=True, name=f"kept {r['id']}" if i else None) for i, r in enumerate(seeded[:3])]
    runs = starred + seeded[3:]
    text = report_html(runs)
    doc = parse(text)
    assert doc.plot_divs == ["story-fashion-mnist"] + [f"chart-fashion-mnist-{c}" for c in COSTS]  # first
    table = doc.tables["starred-fashion-mnist"]
    assert table[0][:2] == ["run", "name"] and len(table) == 4
    from compression.run_labels import describe  # unnamed: what it did, in a few words
    assert sorted(r[1] for r in table[1:]) == sorted([describe(starred[0]["method"], starred[0]["config"]),
                                                      *(f"kept {r['id']}" for r in starred[1:])])
    story = next(s for s in doc.scripts if '"story-fashion-mnist"' in s)
    assert "kept " in story and '"mode":"markers+text"' in story  # the names are written on the chart
    # sized to the page: no fixed widths, margins that grow to fit the labels, a print stylesheet
    assert '"autosize":true' in story and '"automargin":true' in story and '"width":' not in story.split("Plotly.newPlot")[1][:200]
    assert "max-width: 100%" in text and "@media print" in text and "size: A4" in text and "beforeprint" in text
    assert re.search(r"Generated \d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", text)  # ISO 8601, UTC
    runs_table = doc.tables["runs-fashion-mnist"]
    assert runs_table[0][-1] == "created (UTC)" and re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ", runs_table[1][-1])
    at = runs_table[0].index("size vs uncompressed")
    smaller = [r[at] for r in runs_table[1:] if r[at] != "–"]
    figures = [s.split("x ")[0] for s in smaller if "x " in s]  # "14.4x smaller": 3 significant digits
    assert figures and all(len(f.replace(".", "").lstrip("0")) <= 3 for f in figures), smaller
    assert "starred-fashion-mnist" not in report_html(seeded)  # none starred: no such section
