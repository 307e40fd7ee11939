"""The compare view in headless Chromium: two real runs picked on the Pareto explorer, the
per-class chart and the flipped images drawn, the pair kept in the URL and reproduced by it."""

import re

from benchmarks.browser import exception_boxes, pick, wait_until_idle


def _pick(page, label: str, option: re.Pattern) -> None:
    """The last selectbox labelled exactly `label` (the compare picker's "Run" comes after Run details')."""
    pick(page, page.get_by_test_id("stSelectbox").filter(has=page.get_by_text(label, exact=True)).last,
         page.get_by_role("option", name=option))


def test_two_runs_compared_in_a_real_browser(app_url, page, screenshots, fmnist):
    from compression.methods import run_method
    from compression.store import RunStore
    a = run_method("mlp", fmnist, "prune", "unstructured:0.9", device="cpu", limit=500, store=RunStore()).extra["run_id"]
    b = run_method("mlp", fmnist, "quantize", "uniform:4", device="cpu", limit=500, store=RunStore()).extra["run_id"]

    page.goto(f"{app_url}/Pareto_explorer")
    page.get_by_text("Compare two runs").wait_for(timeout=120_000)
    wait_until_idle(page)
    _pick(page, "Run", re.compile(rf"^run {a} · unstructured 0.9 · mlp"))  # what each run did
    page.get_by_text("Per-class accuracy, sorted by the difference").first.wait_for(timeout=120_000)
    wait_until_idle(page, 120_000)
    assert "cmp=" in page.url and f"{a}%2Cbase" in page.url  # against its baseline by default
    _pick(page, "against", re.compile(rf"^run {b} · 4-bit per-channel · mlp"))
    page.wait_for_function(f"() => location.search.includes('cmp={a}%2C{b}')", timeout=60_000)
    wait_until_idle(page, 120_000)
    page.get_by_text("Per-class accuracy, sorted by the difference").first.wait_for(timeout=60_000)
    images = page.locator("[data-testid='stImage'] img, [data-testid='stFullScreenFrame'] img")
    images.first.wait_for(timeout=60_000)
    assert images.count() >= 1
    assert not exception_boxes(page)
    page.get_by_text("Flipped images").first.scroll_into_view_if_needed()
    page.screenshot(path=str(screenshots / "compare.png"), full_page=False)

    link = page.url
    page.goto("about:blank")
    page.goto(link)
    page.get_by_text("Per-class accuracy, sorted by the difference").first.wait_for(timeout=120_000)
    wait_until_idle(page, 120_000)
    # the idle check can pass before the reloaded page's script has drawn the images (seen once in a
    # fresh-clone run under load): wait for them as for the first pair
    images.first.wait_for(timeout=60_000)
    assert images.count() >= 1
    assert not exception_boxes(page)
