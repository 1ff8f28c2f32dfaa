"""A live server on 127.0.0.1 and a real Chromium for browser tests."""

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
HERE = Path(__file__).parent
MISSING_KEY = pytest.StashKey[int]()
MISSING = "Browser tests not run: Chromium is not installed. To run them: apt-get install chromium (CI does)."


def pytest_collection_modifyitems(config, items):
    """Without Chromium (and outside CI) leave the browser tests out, said once instead of once a test."""
    if os.path.exists(CHROMIUM) or os.environ.get("CI"):
        return
    browser_tests = [item for item in items if HERE in item.path.parents]
    if browser_tests:
        config.hook.pytest_deselected(items=browser_tests)
        items[:] = [item for item in items if HERE not in item.path.parents]
        config.stash[MISSING_KEY] = len(browser_tests)


def pytest_terminal_summary(terminalreporter, config):
    if left_out := config.stash.get(MISSING_KEY, 0):
        terminalreporter.write_line(f"{MISSING} ({left_out} tests)")


@pytest.fixture(scope="session")
def playwright():
    """Playwright, for Debian's Chromium; missing Chromium fails in CI and skips elsewhere."""
    if not os.path.exists(CHROMIUM):
        if os.environ.get("CI"):
            pytest.fail("Chromium is not installed; .ci/run installs the chromium package")
        pytest.skip("Chromium is not installed (apt-get install chromium)")
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as playwright:
        yield playwright


@pytest.fixture(scope="session")
def browser(playwright):
    """Debian's Chromium, headless, without the background connections this closed network refuses."""
    browser = playwright.chromium.launch(
        executable_path=CHROMIUM,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking",
              "--disable-component-update", "--disable-sync", "--no-first-run"],
    )
    yield browser
    browser.close()


@pytest.fixture
def page(browser):
    """A fresh desktop-sized page that records console errors (CSP violations among them)."""
    context = browser.new_context(viewport={"width": 1366, "height": 900})
    page = context.new_page()
    page.errors = []
    page.on("console", lambda message: message.type == "error" and page.errors.append(message.text))
    page.on("pageerror", lambda error: page.errors.append(str(error)))
    yield page
    context.close()
