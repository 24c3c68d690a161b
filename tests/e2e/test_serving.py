"""Safe from any folder, in Chromium: however the dashboard is started, only this machine can
use it unless the user asked for another address, and nothing the page loads leaves it.

- `streamlit run /abs/path/dashboard/app.py` from another folder reads the settings next to
  the app: loopback only, the Train page works, usage statistics off.
- A copy of the app without its settings binds every interface (Streamlit's default): the
  page shows how to start it safely, and nothing else.
- An address chosen with `--server.address` or `sgdplus dashboard --address` is served, with
  a warning on the page.

Every server runs with HOME in a temporary folder, so no `~/.streamlit/config.toml` of the
machine's user takes part, and without a display, as on a server.
"""

from __future__ import annotations

import shutil
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from keras_sgdplus.lab import serving
from tests.e2e.conftest import REPO, VIEWPORT
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    choose,
    click_radio,
    wait_until_idle,
)
from tests.serving import (
    assert_loopback_only,
    free_port,
    listening_addresses,
    other_addresses,
    served,
)

APP = REPO / "dashboard" / "app.py"
EVERY_INTERFACE = {"0.0.0.0", "::"}
LOCAL_SCHEMES = {"data", "blob", "about", "chrome-error"}
PAGE_TIMEOUT = 120_000  # ms: the Train page's first run imports TensorFlow


class Requests:
    """Every request a page makes (and every WebSocket it opens), as URLs."""

    def __init__(self, page: Page) -> None:
        self.urls: list[str] = []
        page.on("request", lambda request: self.urls.append(request.url))
        page.on("websocket", lambda socket: self.urls.append(socket.url))

    def leaving(self, *this_machine: str) -> list[str]:
        """The URLs that go anywhere but loopback (or the hosts in `this_machine`)."""
        return [
            url
            for url in self.urls
            if urlsplit(url).scheme not in LOCAL_SCHEMES
            and not serving.is_loopback(urlsplit(url).hostname or "")
            and urlsplit(url).hostname not in this_machine
        ]


class Started:
    """A dashboard server started from a folder that is not the repository."""

    def __init__(self, tmp_path: Path) -> None:
        self.cwd = tmp_path / "elsewhere"
        self.runs = tmp_path / "saved_runs"
        self.home = tmp_path / "home"
        self.log = tmp_path / "streamlit.log"
        self.cwd.mkdir()
        self.home.mkdir()
        self.port = free_port()

    def streamlit_run(self, app: Path, *flags: str) -> list[str]:
        port = f"--server.port={self.port}"
        return [sys.executable, "-m", "streamlit", "run", str(app), port, *flags]

    def serve(self, command: list[str], host: str = "127.0.0.1"):
        environment = {
            "SGDPLUS_RUNS_DIR": str(self.runs),
            "HOME": str(self.home),  # no ~/.streamlit/ of this machine's user
            "DISPLAY": None,  # headless even where nobody set it: no browser, no prompt
            "WAYLAND_DISPLAY": None,
        }
        return served(
            command, port=self.port, cwd=self.cwd, log=self.log, env=environment, host=host
        )

    def output(self) -> str:
        return self.log.read_text()


@pytest.fixture
def started(tmp_path: Path) -> Started:
    return Started(tmp_path)


@pytest.fixture
def new_page(browser: Browser) -> Iterator:
    """`new_page()`: a page in a fresh browser context (no storage, no cache)."""
    contexts = []

    def make() -> Page:
        context = browser.new_context(viewport=VIEWPORT)
        contexts.append(context)
        page = context.new_page()
        page.set_default_timeout(60_000)
        return page

    yield make
    for context in contexts:
        context.close()


def train_controls(page: Page):
    return [
        page.get_by_role("combobox", name="Dataset", exact=True),
        button(page, "Start training"),
    ]


def open_train_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.get_by_role("heading", name="Train", exact=True)).to_be_visible(
        timeout=PAGE_TIMEOUT
    )
    wait_until_idle(page)
    assert_no_exception(page)
    for control in train_controls(page):
        expect(control).to_be_visible()


def use_the_train_page(page: Page) -> None:
    """A few clicks, each a rerun: the page talks to the server while we watch."""
    click_radio(page, "Update", "Momentum")
    choose(page, "Dataset", "Upload a CSV or NPZ…")
    expect(page.get_by_test_id("stFileUploader")).to_be_visible()
    choose(page, "Dataset", "digits")
    page.wait_for_timeout(3000)  # anything sent late, e.g. batched usage events


def test_started_from_another_folder_it_serves_loopback_only_and_nothing_leaves(started, new_page):
    with started.serve(started.streamlit_run(APP)):
        assert_loopback_only(started.port)
        page = new_page()
        requests = Requests(page)
        open_train_page(page, f"http://127.0.0.1:{started.port}")
        use_the_train_page(page)
        assert requests.urls, "no request recorded"
        assert requests.leaving() == []
    assert "usage statistics" not in started.output().lower()


def test_the_request_check_sees_usage_statistics_when_they_are_turned_on(started, new_page):
    """The check above can fail: with usage statistics on, the page reaches out at once."""
    command = started.streamlit_run(APP, "--browser.gatherUsageStats=true")
    with started.serve(command):
        page = new_page()
        requests = Requests(page)
        open_train_page(page, f"http://127.0.0.1:{started.port}")
        deadline = time.monotonic() + 30
        while not requests.leaving() and time.monotonic() < deadline:
            page.wait_for_timeout(250)
        assert requests.leaving(), "usage statistics on, yet the page reached no other host"


def refusal(page: Page):
    return page.get_by_test_id("stAlert").filter(has_text="every interface")


def assert_refused(page: Page, url: str) -> None:
    page.goto(url)
    message = refusal(page)
    expect(message).to_be_visible(timeout=PAGE_TIMEOUT)
    wait_until_idle(page)
    assert_no_exception(page)
    text = message.inner_text()
    assert "sgdplus dashboard" in text
    assert f"streamlit run {serving.app_path()} --server.address localhost" in text
    assert page.get_by_role("heading", name="Train").count() == 0
    assert page.get_by_test_id("stFileUploader").count() == 0
    assert page.get_by_role("combobox").count() == 0
    assert page.get_by_role("button", name="Start training").count() == 0
    assert page.get_by_test_id("stSidebarNav").count() == 0  # no way to the other pages


def test_a_copy_without_its_settings_shows_only_how_to_start_safely(started, new_page, tmp_path):
    copy = tmp_path / "copy" / "dashboard"
    shutil.copytree(REPO / "dashboard", copy, ignore=shutil.ignore_patterns(".streamlit", "__*"))
    assert not (copy / ".streamlit").exists()
    with started.serve(started.streamlit_run(copy / "app.py")):
        # Streamlit's default, as nobody chose an address: every interface
        assert listening_addresses(started.port) & EVERY_INTERFACE
        local = f"http://127.0.0.1:{started.port}"
        first = new_page()
        assert_refused(first, local)
        for page_url in ("compare", "landscape"):
            assert_refused(first, f"{local}/{page_url}")
        for address in other_addresses():  # what the network sees: the same refusal
            assert_refused(new_page(), f"http://{address}:{started.port}")
        # The app turned usage statistics off for every later session; the first one may have
        # been told before the app ran (Streamlit's default, as the settings were not read).
        later = new_page()
        requests = Requests(later)
        assert_refused(later, local)
        later.wait_for_timeout(3000)
        assert requests.leaving() == []
    assert not started.runs.exists() or not any(started.runs.iterdir())


def warning(page: Page):
    return page.get_by_test_id("stAlert").filter(has_text="as asked at start-up")


@pytest.mark.parametrize("how", ["sgdplus dashboard --address 0.0.0.0", "--server.address IP"])
def test_an_address_asked_for_is_served_with_a_warning(started, new_page, how):
    addresses = other_addresses()
    if how == "sgdplus dashboard --address 0.0.0.0":
        command = [
            sys.executable,
            *("-m", "keras_sgdplus.lab.cli", "dashboard", "--address", "0.0.0.0"),
            *("--port", str(started.port), "--runs-dir", str(started.runs)),
        ]
        host, shown = "127.0.0.1", "every interface"
        expected = {"0.0.0.0"}
    else:
        if not addresses:
            pytest.skip("this machine has no non-loopback address")
        command = started.streamlit_run(APP, f"--server.address={addresses[0]}")
        host = shown = addresses[0]
        expected = {addresses[0]}
    with started.serve(command, host=host):
        assert listening_addresses(started.port) == expected
        url = f"http://{addresses[0] if addresses else host}:{started.port}"
        page = new_page()
        requests = Requests(page)
        open_train_page(page, url)  # from the network: the Train page and its controls
        expect(warning(page)).to_be_visible()
        assert f"served on {shown}" in warning(page).inner_text()
        use_the_train_page(page)
        expect(warning(page)).to_be_visible()
        assert requests.leaving(*addresses) == []  # usage statistics stay off
