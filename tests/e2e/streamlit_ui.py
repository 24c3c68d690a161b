"""Driving Streamlit widgets in a real browser, by their labels as a user sees them."""

from __future__ import annotations

import re
import time

from playwright.sync_api import Locator, Page, expect


def wait_until_idle(page: Page, timeout: float = 120.0) -> None:
    """Waits for the app to be connected and its script not running (reruns finished)."""
    app = page.locator('[data-testid="stApp"]')
    expect(app).to_have_attribute("data-test-connection-state", "CONNECTED", timeout=timeout * 1e3)
    deadline = time.monotonic() + timeout
    calm_since = None
    while time.monotonic() < deadline:
        state = app.get_attribute("data-test-script-state")
        if state == "notRunning":
            calm_since = calm_since or time.monotonic()
            if time.monotonic() - calm_since > 0.5:
                return
        else:
            calm_since = None
        time.sleep(0.1)
    raise AssertionError(f"the app was still running after {timeout} s")


def assert_no_exception(page: Page) -> None:
    shown = page.locator('[data-testid="stException"]')
    assert shown.count() == 0, "the page shows a traceback:\n" + "\n".join(shown.all_inner_texts())


def open_page(page: Page, url: str) -> None:
    page.goto(url)
    expect(page.locator("h1").first).to_be_visible(timeout=120_000)  # the page is drawn
    wait_until_idle(page)
    assert_no_exception(page)


def widget(page: Page, test_id: str, label: str) -> Locator:
    return page.locator(f'[data-testid="{test_id}"]').filter(
        has=page.get_by_text(label, exact=True)
    )


def choose(page: Page, label: str, option: str) -> None:
    """Picks `option` in the selectbox labelled `label`."""
    box = page.get_by_role("combobox", name=label, exact=True)
    if box.input_value() == option:
        return  # already chosen (a chosen value's list opens filtered to itself)
    box.click()
    page.get_by_role("option", name=option, exact=True).click()
    wait_until_idle(page)


def click_radio(page: Page, label: str, option: str) -> None:
    group = widget(page, "stRadio", label).first
    group.get_by_text(option, exact=True).click()
    wait_until_idle(page)


def type_number(page: Page, label: str, value: float | int) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(str(value))
    field.press("Enter")
    wait_until_idle(page)


def type_text(page: Page, label: str, value: str) -> None:
    field = page.get_by_label(label, exact=True)
    field.fill(value)
    field.press("Enter")
    wait_until_idle(page)


def button(page: Page, name: str) -> Locator:
    """A button of the app (not of Streamlit's own header, which has a Stop of its own)."""
    main = page.get_by_test_id("stMainBlockContainer")
    return main.get_by_role("button", name=re.compile(rf"^{re.escape(name)}$"))


def charts_in(scope: Locator | Page) -> Locator:
    return scope.locator('[data-testid="stVegaLiteChart"]')


def expand(page: Page, label: str) -> None:
    """Opens the expander labelled `label` if it is closed."""
    details = page.locator('[data-testid="stExpander"] details').filter(
        has=page.get_by_text(label, exact=True)
    )
    if details.get_attribute("open") is None:
        details.locator("summary").click()
