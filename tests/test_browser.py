"""A person in a real browser: headless Chromium (Debian's) driven by Playwright.

Screenshots of each step are kept in test-artifacts/browser/ for a human to look at.
"""

import os
import time
from pathlib import Path

import pytest

from pangeohub.hubapi import HubAPI

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


@pytest.mark.timeout(1800)
def test_log_in_pick_a_profile_and_run_the_quickstart_in_jupyterlab(browser, platform):
    platform.wait_for_catalog()
    name, _ = platform.add_user()
    page = browser.new_page(viewport={"width": 1400, "height": 900})
    page.set_default_timeout(300_000)
    _login(page, platform, name)

    # The spawn page offers the hardware profiles; pick the last one listed.
    radios = page.locator("input[name=profile]")
    radios.first.wait_for()
    radios.last.check()
    chosen = radios.last.get_attribute("value")
    page.screenshot(path=ARTIFACTS / "02-profile.png")
    page.locator("#spawn_form [type=submit]").click()
    page.wait_for_url(f"**/user/{name}/lab**")
    page.locator(".jp-DirListing-item", has_text="quickstart.ipynb").wait_for()
    page.screenshot(path=ARTIFACTS / "03-jupyterlab.png")
    assert HubAPI(platform.rt).user(name)["servers"][""]["user_options"]["profile"] == chosen

    page.locator(".jp-DirListing-item", has_text="quickstart.ipynb").dblclick()
    page.locator(".jp-Notebook .jp-Cell").nth(12).wait_for()
    page.screenshot(path=ARTIFACTS / "04-notebook-open.png")
    page.locator(".jp-StatusBar-TextItem", has_text="Idle").first.wait_for()
    # Run every cell up to the map (the last one would shut the cluster down), as a person would.
    page.locator(".jp-Notebook .jp-Cell").first.click()
    for _ in range(13):
        page.keyboard.press("Shift+Enter")
    figure = page.locator(".jp-RenderedImage img").first
    error = page.locator(".jp-OutputArea-output[data-mime-type='application/vnd.jupyter.stderr']",
                         has_text="Traceback").first
    deadline = time.monotonic() + 900
    shots = 0
    while not figure.is_visible():
        if time.monotonic() > deadline - 900 + 30 * (shots + 1):
            shots += 1
            page.screenshot(path=ARTIFACTS / "04-progress.png")  # where it is, for whoever reads a failure
        if error.count():
            error.scroll_into_view_if_needed()
            page.screenshot(path=ARTIFACTS / "04-error.png")
            pytest.fail(f"a quickstart cell failed in the browser:\n{error.inner_text()[-2000:]}")
        if time.monotonic() > deadline:
            page.screenshot(path=ARTIFACTS / "04-stuck.png", full_page=True)
            pytest.fail("the quickstart's figure did not appear within 15 minutes")
        page.wait_for_timeout(2000)
    figure.scroll_into_view_if_needed()
    page.screenshot(path=ARTIFACTS / "04-figure.png")
    assert error.count() == 0, error.inner_text()[-2000:]
    assert figure.evaluate("img => img.naturalWidth") > 200

    # The dask-labextension panel shows the cluster's dashboard plots.
    page.locator("[data-id='dask-dashboard-launcher']").click()
    url_box = page.locator(".dask-URLInput-wrapper input")
    url_box.wait_for(timeout=60_000)
    plots = page.locator(".dask-DashboardListing-item")
    # A person pastes the dashboard link of their cluster (shown by the cluster's widget) into the panel.
    link = page.locator(".jp-OutputArea-output a[href*='/clusters/']").first.get_attribute("href")
    url_box.fill(link)
    url_box.press("Enter")
    try:
        plots.first.wait_for(timeout=120_000)
    finally:
        page.screenshot(path=ARTIFACTS / "05-dask-panel.png")
    assert "/clusters/" in url_box.input_value()
    assert plots.count() >= 5 and page.locator(".dask-DashboardListing-inactive").count() == 0
    page.close()
