"""The dashboard served by `streamlit run dashboard/app.py` on a loopback port, and Debian's
Chromium driven by Playwright (it cannot download its own browsers here).

Screenshots go to the test's temporary folder; with SGDPLUS_UPDATE_SCREENSHOTS=1 they are
also written to docs/screenshots/, where the README shows them.
"""

from __future__ import annotations

import os
import shutil
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.serving import free_port, served

REPO = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
SCREENSHOTS = REPO / "docs" / "screenshots"
VIEWPORT = {"width": 1400, "height": 1000}


@pytest.fixture(scope="module")
def runs_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("saved_runs")


@pytest.fixture(scope="module")
def dashboard(runs_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The URL of a dashboard server on 127.0.0.1, on its own run store."""
    port = free_port()
    log = tmp_path_factory.mktemp("server") / "streamlit.log"
    # From the repository root, as a developer starts it; Streamlit reads the settings next to
    # the app (dashboard/.streamlit/config.toml): localhost only, headless, XSRF on.
    app = "dashboard/app.py"
    command = [sys.executable, "-m", "streamlit", "run", app, f"--server.port={port}"]
    with served(command, port=port, cwd=REPO, log=log, env={"SGDPLUS_RUNS_DIR": str(runs_dir)}):
        yield f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser: Browser) -> Iterator[Page]:
    context = browser.new_context(viewport=VIEWPORT, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


@pytest.fixture
def screenshot(tmp_path: Path):
    """`screenshot(page, "train")`: a full-page PNG, kept for the README when asked."""

    def take(page: Page, name: str, height: int = 1900) -> Path:
        path = tmp_path / f"{name}.png"
        page.mouse.move(0, 0)  # no tooltip in the picture
        page.set_viewport_size({"width": VIEWPORT["width"], "height": height})
        page.get_by_test_id("stMain").evaluate("main => main.scrollTo(0, 0)")
        page.wait_for_timeout(1500)  # charts re-laid out at the new size
        page.screenshot(path=path)
        page.set_viewport_size(VIEWPORT)
        if os.environ.get("SGDPLUS_UPDATE_SCREENSHOTS") == "1":
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, SCREENSHOTS / path.name)
        return path

    return take
