"""End to end in Chromium: start a small sweep from the Sweeps page (the real coordinator,
`sweep_runner.start_sweep`, and its Dask workers), watch it finish, and read its results: the
ranking, the heat map, the band curves. With SGDPLUS_UPDATE_SCREENSHOTS=1 the page is kept
as docs/screenshots/sweep.png.
"""

from __future__ import annotations

import json
import re

from playwright.sync_api import expect

from keras_sgdplus.lab import sweep_results
from keras_sgdplus.lab.sweeps import SweepStore
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    charts_in,
    choose,
    open_page,
    type_number,
    type_text,
    wait_until_idle,
)

SWEEP_TIMEOUT = 400_000  # ms: 12 short runs on two cores, the workers' start-up included


def test_start_a_sweep_and_read_its_results(dashboard, page, runs_dir, screenshot):
    open_page(page, f"{dashboard}/sweeps")
    choose(page, "Dataset", "digits")
    type_number(page, "Epochs", 3)
    type_text(page, "Learning rate", "0.003,0.03,0.3")
    type_text(page, "Momentum", "0,0.9")
    type_text(page, "Seeds", "2")
    type_text(page, "Sweep name", "digits lr x momentum")
    grid = re.compile(r"12 runs\*?\*? \(3 learning_rate x 2 momentum x 2 seeds\)")
    expect(page.get_by_text(grid)).to_be_visible()
    expect(page.get_by_text(re.compile(r"About [\d.]+ (s|min): 12 runs"))).to_be_visible()
    button(page, "Start sweep").click()

    expect(page.get_by_text(re.compile(r"Completed: 12 of 12 runs done"))).to_be_visible(
        timeout=SWEEP_TIMEOUT
    )
    wait_until_idle(page)
    assert_no_exception(page)
    (record,) = SweepStore(runs_dir).list_sweeps()
    assert record["status"] == "completed"
    report = sweep_results.as_json(runs_dir, record["id"])
    assert len(report["configs"]) == 6
    assert all(len(entry["runs"]) == 2 for entry in report["configs"])
    best = report["configs"][0]
    assert best["best_val_loss_mean"] == min(e["best_val_loss_mean"] for e in report["configs"])
    json.dumps(report, allow_nan=False)

    ranking = page.locator('[data-testid="stDataFrame"]').first
    expect(ranking).to_be_visible()
    expect(charts_in(page)).to_have_count(2)  # the heat map and the band curves
    page.get_by_text("Best validation loss", exact=True).first.scroll_into_view_if_needed()
    screenshot(page, "sweep", height=2000)
