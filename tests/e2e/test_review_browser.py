"""The review path in headless Chromium (issue 20): make three runs on the Pruning page, keep two,
star one in the explorer, open the story view, download its artifact and the report. Previews are
not stored; what was kept is, once, with its file."""

import os
from pathlib import Path

from benchmarks.browser import exception_boxes, select_option, wait_until_idle
from compression.store import RunStore


def _store() -> RunStore:
    return RunStore(Path(os.environ["COMPRESSION_HOME"]) / "runs.sqlite")


def _keep(page) -> None:
    page.get_by_role("button", name="Keep this run").click()
    page.get_by_text("Kept as run").wait_for(timeout=60_000)
    wait_until_idle(page)


def _card(page) -> str:
    return page.get_by_test_id("stMetric").filter(has_text="Nonzero parameters").first.inner_text()


def _ratio_to(page, steps: int) -> None:
    """Move the pruning ratio slider `steps` notches right and wait for the new result's card."""
    before = _card(page)
    slider = page.get_by_test_id("stSlider").filter(has_text="Pruning ratio").get_by_role("slider")
    slider.focus()
    for _ in range(steps):
        page.keyboard.press("ArrowRight")
    _new_card(page, before)


def _new_card(page, before: str) -> None:
    page.wait_for_timeout(1500)  # let the rerun start before waiting for it to finish
    wait_until_idle(page, 120_000)
    page.wait_for_function(
        f"""() => {{
            const box = [...document.querySelectorAll('[data-testid=stMetric]')]
                .find(b => b.innerText.includes('Nonzero parameters'));
            return box && box.innerText !== {before!r};
        }}""", timeout=120_000)
    wait_until_idle(page)


def test_make_three_keep_two_star_one_then_review(app_url, page, screenshots):
    before = {r["id"] for r in _store().runs()}
    page.goto(f"{app_url}/Pruning")
    page.get_by_text("Nonzero parameters").first.wait_for(timeout=300_000)
    wait_until_idle(page, 120_000)
    cnn = _card(page)
    select_option(page, "Model", "mlp", sidebar=True)  # the quickest zoo model to prune
    _new_card(page, cnn)

    _keep(page)                      # run 1: ratio 0.50, kept
    _ratio_to(page, 2)               # run 2: ratio 0.60, a preview only
    _ratio_to(page, 4)               # run 3: ratio 0.80, kept
    _keep(page)
    assert not exception_boxes(page)
    kept = [r for r in _store().runs() if r["id"] not in before]
    assert sorted(r["config"]["ratio"] for r in kept) == [0.5, 0.8]  # two stored: the preview was not
    assert all(os.path.getsize(r["artifact_path"]) == r["size_bytes"] for r in kept)
    star = max(kept, key=lambda r: r["config"]["ratio"])

    # the explorer: the kept run's details, star it, then the story view shows it alone, by name
    page.goto(f"{app_url}/Pareto_explorer?run={star['id']}")
    page.get_by_role("button", name="Star", exact=True).wait_for(timeout=120_000)
    wait_until_idle(page)
    page.get_by_role("button", name="Star", exact=True).click()
    page.get_by_role("button", name="Unstar", exact=True).wait_for(timeout=60_000)
    wait_until_idle(page)
    assert _store().get(star["id"])["starred"] is True
    page.get_by_text("Story view: starred runs only").click()
    page.get_by_text("The story: starred runs against their baselines").wait_for(timeout=60_000)
    wait_until_idle(page)
    assert "story=1" in page.url and not exception_boxes(page)
    assert "1 of 3 runs shown" in page.inner_text("body")  # the starred run only
    page.screenshot(path=str(screenshots / "story.png"), full_page=True)

    # its artifact, twice (built when clicked: no expired file the second time), and the report
    button = page.get_by_role("button", name="Download the compressed model")
    for _ in range(2):
        with page.expect_download(timeout=60_000) as download:
            button.click()
        assert Path(download.value.path()).read_bytes() == Path(star["artifact_path"]).read_bytes()
        wait_until_idle(page)
    with page.expect_download(timeout=120_000) as download:
        page.get_by_role("button", name="Download a report").click()
    report = Path(download.value.path()).read_text()
    assert report.startswith("<!DOCTYPE html>") and "Starred runs (1)" in report
    assert not exception_boxes(page)
