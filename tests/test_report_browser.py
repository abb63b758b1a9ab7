"""The report of a real ``colorquant run``, opened in a real headless Chromium.

Debian's ``chromium`` is driven by the ``playwright`` package through ``executable_path``;
nothing is downloaded (never ``playwright install``). Under CI a missing browser fails.
"""

import shutil
from pathlib import Path

import pytest

from tests.conftest import run_cli, skip_or_fail
from tests.report_helpers import BROKEN_REASON, make_inputs, palettes, quantized_run

#: Debian's package puts the browser here; CHROMIUM overrides it.
CHROMIUM_NAMES = ("chromium", "chromium-browser")

#: No sandbox (root in a container), no GPU, and nothing that phones home.
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--headless=new",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]

#: Milliseconds the browser may take for a page action; generous for loaded CI machines.
BROWSER_PATIENCE_MS = 60_000

ALL_IMAGES_LOADED = (
    "() => Array.from(document.images).every(image => image.complete && image.naturalWidth > 0)"
)


@pytest.fixture
def browser():
    chromium = next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        skip_or_fail("the playwright package is not installed (pip install playwright)")
    if chromium is None:
        skip_or_fail("chromium is not installed (apt-get install chromium)")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


def psnr_column(page) -> list[float]:
    headers = page.locator("#columns th").all_inner_texts()
    index = next(i for i, text in enumerate(headers) if text.startswith("PSNR"))
    cells = page.locator(f"#images tbody tr td:nth-child({index + 1})").all_inner_texts()
    return [float("inf") if text == "lossless" else float(text) for text in cells]


@pytest.mark.slow  # a real run, then a browser start
def test_the_report_works_in_a_real_browser(browser, tmp_path):
    folder, out = make_inputs(tmp_path / "in"), tmp_path / "out"
    quantized_run(folder, out)
    made = run_cli("report", out, "-o", tmp_path / "pages" / "report.html")
    assert made.returncode == 0, made.stderr
    report = Path(made.stdout.strip())

    page = browser.new_page(viewport={"width": 1280, "height": 600})
    page.set_default_timeout(BROWSER_PATIENCE_MS)
    problems = []
    page.on("console", lambda message: message.type == "error" and problems.append(message.text))
    page.on("pageerror", lambda error: problems.append(str(error)))
    page.on("requestfailed", lambda request: problems.append(f"failed: {request.url}"))
    page.goto(report.as_uri())

    rows = page.locator("#images tbody tr")
    assert rows.count() == len(palettes(out)) == 4
    for image in page.locator("img").all():  # lazy images load once they come into view
        image.scroll_into_view_if_needed()
    page.wait_for_function(ALL_IMAGES_LOADED)
    assert page.locator("img").count() == 2 * rows.count()

    worst_first = psnr_column(page)
    assert worst_first == sorted(worst_first) and len(set(worst_first)) > 1
    page.locator('#columns th[data-key="p"]').click()
    assert psnr_column(page) == sorted(worst_first, reverse=True)
    assert page.locator('#columns th[data-key="p"]').get_attribute("aria-sort") == "descending"

    failures = page.locator("#failures tbody tr")
    assert failures.count() == 1
    assert "broken.jpg" in failures.inner_text() and BROKEN_REASON in failures.inner_text()

    page.evaluate("window.scrollTo(0, 0)")
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    assert problems == []
