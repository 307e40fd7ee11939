"""The navigation in headless Chromium, on a server nobody has opened yet: a link straight to a page
(with a query string) gets app.py's navigation, not the pages/ folder's; the sidebar shows Home and
the three sections; a click in it opens the page at its old URL."""

from benchmarks.browser import exception_boxes, wait_until_idle

NAV = "[data-testid='stSidebarNav']"


def _nav_text(page) -> list[str]:
    page.wait_for_selector(NAV, timeout=90_000)
    return [line.strip() for line in page.inner_text(NAV).splitlines() if line.strip()]


def test_navigation_in_a_real_browser(app_url, page, screenshots):
    page.goto(f"{app_url}/Pareto_explorer?x=macs")  # the server's first run
    page.get_by_role("heading", name="Pareto explorer").wait_for(timeout=90_000)
    wait_until_idle(page)
    assert _nav_text(page) == ["Home", "Compress", "Pruning", "Distillation", "Quantization", "Architecture",
                               "Dynamic computation", "Combine", "Pipelines", "Search", "Review",
                               "Pareto explorer"]
    assert "x=macs" in page.url
    page.locator(".js-plotly-plot .xtitle", has_text="MACs per image").wait_for(timeout=30_000)  # the query kept
    assert not exception_boxes(page)
    page.screenshot(path=str(screenshots / "navigation.png"))

    page.locator(NAV).get_by_text("Dynamic computation", exact=True).click()
    page.get_by_role("heading", name="Dynamic computation").wait_for(timeout=90_000)
    wait_until_idle(page)
    assert page.url.rstrip("/").endswith("/Dynamic_computation") and not exception_boxes(page)

    page.locator(NAV).get_by_text("Home", exact=True).click()
    page.get_by_text("Test accuracy").first.wait_for(timeout=90_000)
    assert page.url.rstrip("/") == app_url.rstrip("/")
