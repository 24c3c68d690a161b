"""End to end in Chromium: on the landscape page, a click on "Why momentum works"'s rate map
sets the learning rate and momentum sliders to the pair under the pointer (read from the
map's own tooltip there), and a click on the surface puts the start point there."""

from __future__ import annotations

import re

from playwright.sync_api import Locator, Page, expect

from keras_sgdplus.lab import landscape_charts
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    charts_in,
    open_page,
    wait_until_idle,
)

# Where to look for a cell of a heat map, as fractions of the chart's box (its plot area lies
# inside, between the title, the axes and the legends).
CANDIDATES = [(fx / 20, fy / 20) for fy in (4, 6, 8, 10, 3, 12) for fx in (5, 7, 9, 11, 13, 15)]


def slider(page: Page, label: str) -> Locator:
    """A slider (a range input; a select slider too), by its label."""
    return page.locator(f'input[type="range"][aria-label="{label}"]')


def slider_text(page: Page, label: str) -> str:
    """What a slider shows as its value (as it tells assistive technologies)."""
    return str(slider(page, label).get_attribute("aria-valuetext")).strip()


def tooltip(page: Page) -> dict[str, str]:
    """The fields of the Vega tooltip shown now, by title."""
    element = page.locator("#vg-tooltip-element")
    if not element.count() or not element.is_visible():
        return {}
    cells = [c.strip() for c in element.locator("td").all_inner_texts()]
    return dict(zip(cells[::2], cells[1::2], strict=False))


def hover_a_cell(page: Page, chart: Locator, needed: str) -> tuple[float, float, dict[str, str]]:
    """Moves the pointer over `chart` until the tooltip shows the field `needed` (a heat-map
    cell, not a path, a line or a marker); returns the pointer's place and the tooltip."""
    chart.scroll_into_view_if_needed()
    box = chart.bounding_box()
    assert box is not None
    for fx, fy in CANDIDATES:
        x, y = box["x"] + fx * box["width"], box["y"] + fy * box["height"]
        page.mouse.move(x, y)
        page.wait_for_timeout(300)
        shown = tooltip(page)
        if needed in shown:
            return x, y, shown
    raise AssertionError(f"no cell of the heat map found under the pointer ({needed!r})")


def number(text: str) -> float:
    return float(text.replace("\N{MINUS SIGN}", "-"))


def test_clicks_on_the_rate_map_and_the_surface_set_the_sliders(dashboard, page):
    open_page(page, f"{dashboard}/landscape")
    expect(charts_in(page)).to_have_count(3)  # the surface, the loss per step, the rate map
    assert (slider_text(page, "Learning rate"), slider_text(page, "Momentum μ")) == ("0.03", "0.80")

    # The button sets the optimal pair.
    button(page, "Set the optimal pair").click()
    wait_until_idle(page)
    assert (slider_text(page, "Learning rate"), slider_text(page, "Momentum μ")) == (
        "0.1111",
        "0.44",
    )

    # A click on a cell of the map: the pair shown in that cell's tooltip, as the controls allow.
    rate_map = charts_in(page).nth(2)
    x, y, cell = hover_a_cell(page, rate_map, "Rate per step")
    expected = landscape_charts.pair_from_click(
        number(cell[landscape_charts.LR_TITLE]), number(cell["Momentum β"])
    )
    assert expected != (1 / 9, 4 / 9)  # a change to see
    page.mouse.click(x, y)
    wait_until_idle(page)
    assert_no_exception(page)
    expect(slider(page, "Learning rate")).to_have_attribute(
        "aria-valuetext", f"{expected[0]:.4g}", timeout=30_000
    )
    assert slider_text(page, "Momentum μ") == f"{expected[1]:.2f}"
    note = page.get_by_text(re.compile(r"^At learning rate "))
    expect(note).to_contain_text(f"At learning rate {expected[0]:.4g} and momentum")

    # A click on the surface: the start point there, on the start sliders' 0.01 grid.
    surface = charts_in(page).first
    x, y, cell = hover_a_cell(page, surface, "Loss f(x, y)")
    clicked = (number(cell["x"]), number(cell["y"]))
    assert abs(clicked[0] - -8.0) > 0.05 or abs(clicked[1] - 1.5) > 0.05
    page.mouse.click(x, y)
    wait_until_idle(page)
    assert_no_exception(page)
    expect(slider(page, "Start x")).not_to_have_attribute("aria-valuetext", "-8.00")
    start = (number(slider_text(page, "Start x")), number(slider_text(page, "Start y")))
    # The tooltip shows 3 decimals of the cell's centre, the slider 2: one step apart at most.
    assert abs(start[0] - clicked[0]) <= 0.0051 + 1e-9
    assert abs(start[1] - clicked[1]) <= 0.0051 + 1e-9
