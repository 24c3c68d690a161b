"""End to end in Chromium: train digits with momentum and watch both views grow, stop a
second run midway from another tab, compare the two, and roll the ball on the landscape.

The tests share one server and run store and build on each other in file order.
"""

from __future__ import annotations

import re
import time
from pathlib import Path

from playwright.sync_api import Page, expect

from keras_sgdplus.lab.runs import RunStore
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    charts_in,
    choose,
    click_radio,
    expand,
    open_page,
    type_number,
    type_text,
    wait_until_idle,
)

TRAINING_TIMEOUT = 300_000  # ms


def step_of(page: Page) -> int:
    """The step count the progress bar shows ("... step 123 of 900 ...")."""
    text = page.locator('[data-testid="stProgress"]').inner_text()
    match = re.search(r"step ([\d,]+) of", text)
    return int(match.group(1).replace(",", "")) if match else 0


def view(page: Page, title: str):
    """The column of the page that holds the view called `title`."""
    return page.locator('[data-testid="stColumn"]').filter(has=page.get_by_text(title, exact=True))


def test_train_digits_with_momentum_and_watch_both_views(dashboard, page, runs_dir, screenshot):
    open_page(page, dashboard)
    choose(page, "Dataset", "digits")
    click_radio(page, "Update", "Momentum")
    type_number(page, "Epochs", 300)  # long enough to watch live on JAX too (a few seconds)
    type_text(page, "Run name (optional)", "digits momentum")
    button(page, "Start training").click()

    progress = page.locator('[data-testid="stProgress"]')
    expect(progress).to_be_visible(timeout=TRAINING_TIMEOUT)
    expect(page.get_by_text("Mini-batch view", exact=True)).to_be_visible()
    first = step_of(page)
    deadline = time.monotonic() + 120
    while step_of(page) <= first and progress.is_visible() and time.monotonic() < deadline:
        time.sleep(0.3)  # the live view polls the store: its count grows while we watch
    expect(charts_in(view(page, "Mini-batch view")).first).to_be_visible()
    expect(charts_in(view(page, "Epoch-averaged view")).first).to_be_visible(
        timeout=TRAINING_TIMEOUT
    )
    expect(page.get_by_text(re.compile(r"^Completed: loss"))).to_be_visible(
        timeout=TRAINING_TIMEOUT
    )
    [run] = RunStore(runs_dir).list_runs()
    assert run.status == "completed"
    assert run.name == "digits momentum"
    assert run.config["optimizer"]["momentum"] == 0.9
    assert run.summary["steps"] == run.summary["total_steps"] == 300 * 45
    assert run.summary["final_val_accuracy"] > 0.9
    wait_until_idle(page)
    screenshot(page, "train")


def test_stop_a_second_run_midway_from_another_tab(dashboard, page, runs_dir, browser):
    open_page(page, dashboard)
    expand(page, "New run")
    click_radio(page, "Batch size", "Online (1)")
    click_radio(page, "Update", "Plain SGD")
    type_number(page, "Learning rate", 0.01)  # one sample per step: a shorter step
    type_number(page, "Epochs", 2000)  # long on any backend (JAX: about 60k steps/s here)
    type_text(page, "Run name (optional)", "digits online")
    button(page, "Start training").click()
    expect(page.locator('[data-testid="stProgress"]')).to_be_visible(timeout=TRAINING_TIMEOUT)

    other_tab = page.context.new_page()  # a second tab shows the job, not a blank form
    open_page(other_tab, dashboard)
    expect(other_tab.get_by_text("digits online", exact=True)).to_be_visible()
    deadline = time.monotonic() + 120
    while step_of(other_tab) < 300 and time.monotonic() < deadline:
        time.sleep(0.3)
    button(other_tab, "Stop training").click()
    expect(other_tab.get_by_text(re.compile("stopped before the last epoch"))).to_be_visible(
        timeout=TRAINING_TIMEOUT
    )
    expect(page.get_by_text(re.compile("stopped before the last epoch"))).to_be_visible(
        timeout=TRAINING_TIMEOUT
    )
    expect(button(page, "Stop training")).to_have_count(0)
    runs = {run.name: run for run in RunStore(runs_dir).list_runs()}
    stopped = runs["digits online"]
    assert stopped.status == "stopped"
    assert 300 <= stopped.summary["steps"] < stopped.summary["total_steps"]
    assert runs["digits momentum"].status == "completed"  # the first run is untouched


def test_a_broken_upload_is_a_message_and_harms_no_run(dashboard, page, runs_dir, tmp_path):
    before = {run.run_id: run.status for run in RunStore(runs_dir).list_runs()}
    open_page(page, dashboard)
    choose(page, "Dataset", "Upload a CSV or NPZ…")
    broken = tmp_path / "broken.npz"
    broken.write_bytes(b"this is not a zip archive")
    page.locator('[data-testid="stFileUploaderDropzoneInput"]').set_input_files(broken)
    wait_until_idle(page)
    expect(page.get_by_text(re.compile("This file cannot be used"))).to_be_visible()
    expect(page.locator('[data-testid="stException"]')).to_have_count(0)
    expect(button(page, "Start training")).to_have_count(0)
    after = {run.run_id: run.status for run in RunStore(runs_dir).list_runs()}
    assert after == before


def test_compare_the_two_runs_and_download_their_curves(dashboard, page, runs_dir, screenshot):
    store = RunStore(runs_dir)
    runs = {run.name: run for run in store.list_runs() if run.name.startswith("digits")}
    assert set(runs) == {"digits momentum", "digits online"}
    open_page(page, f"{dashboard}/compare")
    chosen = page.locator('[data-testid="stMultiSelect"]').filter(has_text="Runs to overlay")
    for name, run in runs.items():  # the newest two are overlaid by default
        expect(chosen.get_by_text(f"{name} ({run.run_id[-6:]})")).to_be_visible()
    expect(charts_in(view(page, "Mini-batch view")).first).to_be_visible()
    expect(charts_in(view(page, "Epoch-averaged view")).first).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ of \d+ settings differ"))).to_be_visible()
    page.get_by_text("Log loss axis", exact=True).click()
    wait_until_idle(page)
    assert_no_exception(page)

    with page.expect_download() as svg:
        button(page, "SVG").first.click()
    assert Path(svg.value.path()).read_text().lstrip().startswith(("<svg", "<?xml"))

    choose(page, "Run", f"digits online ({runs['digits online'].run_id[-6:]})")
    with page.expect_download() as csv:
        button(page, "Batches CSV").click()
    lines = Path(csv.value.path()).read_text().splitlines()
    assert lines[0].startswith("step,epoch,batch,loss")
    assert len(lines) - 1 == len(store.load_curve(runs["digits online"].run_id, "batches"))
    wait_until_idle(page)
    screenshot(page, "compare")


def test_the_ball_rolls_on_the_landscape(dashboard, page, screenshot):
    open_page(page, f"{dashboard}/landscape")
    expect(charts_in(page).first).to_be_visible()
    button(page, "Too large a rate overshoots").click()
    wait_until_idle(page)
    expect(page.get_by_text(re.compile(r"Plain SGD diverged at step \d+"))).to_be_visible()
    button(page, "Momentum overshoots").click()
    wait_until_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text(re.compile("diverged at step"))).to_have_count(0)
    choose(page, "Landscape", "Rosenbrock (a=1, b=100)")
    expect(charts_in(page).first).to_be_visible()
    assert_no_exception(page)
    choose(page, "Landscape", "Elongated ravine")
    button(page, "Nesterov corrects earlier").click()
    wait_until_idle(page)
    assert_no_exception(page)
    screenshot(page, "landscape")
