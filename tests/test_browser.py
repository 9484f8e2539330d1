"""A person in a real browser: headless Chromium (Debian's) driven by Playwright.

Screenshots of each step are kept in test-artifacts/browser/ for a human to look at.
"""

import os
from pathlib import Path

import pytest

pytestmark = pytest.mark.platform

ARTIFACTS = Path(__file__).parent.parent / "test-artifacts" / "browser"
CHROMIUM = "/usr/bin/chromium"


@pytest.fixture(scope="module")
def browser():
    if not os.path.exists(CHROMIUM):
        pytest.fail(f"{CHROMIUM} is missing: the test setup (install.py --dev) installs Debian's chromium")
    from playwright.sync_api import sync_playwright

    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with sync_playwright() as pw:
        browser = pw.chromium.launch(
            executable_path=CHROMIUM,
            args=["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"],
        )
        yield browser
        browser.close()


def _login(page, platform, name):
    page.goto(f"{platform.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", platform.passwords[name])
    page.screenshot(path=ARTIFACTS / "01-login.png")
    page.click("#login_submit")


def test_login_page_refuses_a_wrong_password_visibly(browser, platform):
    name, _ = platform.add_user()
    page = browser.new_page()
    page.goto(f"{platform.url}/hub/login")
    page.fill("input[name=username]", name)
    page.fill("input[name=password]", "not-the-password")
    page.click("#login_submit")
    error = page.locator(".login_error")
    error.wait_for(timeout=30_000)
    assert "Invalid username or password" in error.inner_text()
    page.screenshot(path=ARTIFACTS / "00-login-refused.png")
    page.close()


def test_log_in_and_run_the_quickstart_notebook_in_jupyterlab(browser, platform):
    platform.wait_for_catalog()
    name, _ = platform.add_user()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(180_000)
    _login(page, platform, name)
    page.wait_for_url(f"**/user/{name}/lab**", timeout=240_000)
    page.locator(".jp-DirListing-item", has_text="quickstart.ipynb").wait_for()
    page.screenshot(path=ARTIFACTS / "02-jupyterlab.png")
    page.locator(".jp-DirListing-item", has_text="quickstart.ipynb").dblclick()
    page.locator(".jp-Notebook .jp-Cell").nth(4).wait_for()
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for()
    page.screenshot(path=ARTIFACTS / "03-notebook.png")
    # Run the first cells (intro, catalog, lazy load) as a person would: click the first, Shift-Enter on.
    page.locator(".jp-Notebook .jp-Cell").first.click()
    for _ in range(5):  # markdown, markdown, catalog, markdown, dataset
        page.keyboard.press("Shift+Enter")
    output = page.locator(".jp-OutputArea-output", has_text="air_temperature").first
    output.wait_for()
    page.locator(".jp-OutputArea-output .xr-wrap").first.wait_for()
    page.screenshot(path=ARTIFACTS / "04-catalog-and-dataset.png", full_page=True)
    assert "precip_monthly" in output.inner_text()
    page.close()
