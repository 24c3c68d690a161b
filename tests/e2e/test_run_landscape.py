"""End to end in Chromium: two runs trained by `sgdplus train` (online and full batch), their
landscapes computed from the "Landscape of a run" page by real workers and drawn side by
side, a chart downloaded as SVG."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from playwright.sync_api import expect

from keras_sgdplus.lab import compare
from keras_sgdplus.lab.runs import RunStore
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    charts_in,
    open_page,
    wait_until_idle,
)

COMPUTE_TIMEOUT = 240_000  # ms


def train(runs_dir, name: str, batch_size: str, epochs: int, rate: float) -> None:
    command = [sys.executable, "-m", "keras_sgdplus.lab.cli", "train", "--dataset", "iris"]
    command += ["--batch-size", batch_size, "--epochs", str(epochs), "--momentum", "0.9"]
    command += ["--learning-rate", str(rate)]
    command += ["--name", name, "--runs-dir", str(runs_dir)]
    subprocess.run(command, check=True, capture_output=True, timeout=300)


def test_two_runs_landscapes_side_by_side(dashboard, page, runs_dir, screenshot):
    train(runs_dir, "iris online", "online", 3, 0.05)
    train(runs_dir, "iris full batch", "full", 60, 0.5)
    store = RunStore(runs_dir)
    labels = compare.run_labels(store.list_runs())
    open_page(page, f"{dashboard}/run-landscape")
    runs = page.get_by_role("combobox", name="Runs (one, or two side by side)")
    runs.click()
    other = next(label for label in labels.values() if "online" in label)
    page.get_by_role("option", name=other).click()
    page.keyboard.press("Escape")
    wait_until_idle(page)
    button(page, "Compute both landscapes").click()
    # two surfaces and two lines once both workers have stored their results
    expect(charts_in(page)).to_have_count(4, timeout=COMPUTE_TIMEOUT)
    wait_until_idle(page)
    assert_no_exception(page)
    expect(page.get_by_text("Both surfaces share one colour scale", exact=False)).to_be_visible()
    for run_id in labels:
        assert store.landscape_progress(run_id, "pca")["state"] == "done"
        assert store.load_landscape(run_id, "pca") is not None
    with page.expect_download() as svg:
        button(page, "SVG").first.click()
    assert svg.value.suggested_filename.startswith("landscape-")
    assert Path(svg.value.path()).read_text().lstrip().startswith(("<svg", "<?xml"))
    screenshot(page, "run_landscape", height=1500)
