"""Runs outlive the dashboard's server: Ctrl-C on the server's terminal (SIGINT to its
process group) ends the server at once and leaves the run training; a server started
again finds the run live, and its Stop button stops it."""

from __future__ import annotations

import os
import re
import signal
import sys
import time
from pathlib import Path

from playwright.sync_api import Browser, expect

from keras_sgdplus.lab.runs import RunStore
from tests.e2e.conftest import REPO, VIEWPORT
from tests.e2e.streamlit_ui import button, click_radio, expand, open_page, type_number, type_text
from tests.serving import end_live_runs, free_port, served

TRAINING_TIMEOUT = 300_000  # ms


def server_command(port: int) -> list[str]:
    return [sys.executable, "-m", "streamlit", "run", "dashboard/app.py", f"--server.port={port}"]


def batches_recorded(runs_dir: Path, run_id: str) -> int:
    return (runs_dir / run_id / "batches.csv").read_bytes().count(b"\n")


def test_ctrl_c_on_the_server_leaves_the_run_training_and_a_new_server_stops_it(
    browser: Browser, tmp_path: Path
):
    runs_dir = tmp_path / "runs"
    runs_dir.mkdir()
    store = RunStore(runs_dir)
    env = {"SGDPLUS_RUNS_DIR": str(runs_dir)}
    context = browser.new_context(viewport=VIEWPORT)
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        port = free_port()
        log = tmp_path / "first.log"
        first = served(server_command(port), port=port, cwd=REPO, log=log, env=env, end_runs=False)
        with first as server:
            open_page(page, f"http://127.0.0.1:{port}")
            expand(page, "New run")
            click_radio(page, "Batch size", "Online (1)")
            click_radio(page, "Update", "Plain SGD")
            type_number(page, "Learning rate", 0.01)
            type_number(page, "Epochs", 5000)  # minutes on either backend
            type_text(page, "Run name (optional)", "outlives its server")
            button(page, "Start training").click()
            expect(page.locator('[data-testid="stProgress"]')).to_be_visible(
                timeout=TRAINING_TIMEOUT
            )
            (run,) = store.list_runs()
            run_id = run.run_id
            os.killpg(server.pid, signal.SIGINT)  # what Ctrl-C in its terminal does
            started = time.monotonic()
            server.wait(30)  # does not wait for the run
            shutdown_s = time.monotonic() - started
        assert shutdown_s < 30
        assert store.is_active(run_id)
        before = batches_recorded(runs_dir, run_id)
        deadline = time.monotonic() + 60
        while batches_recorded(runs_dir, run_id) <= before and time.monotonic() < deadline:
            time.sleep(0.2)
        assert batches_recorded(runs_dir, run_id) > before  # still training, no server

        port = free_port()
        log = tmp_path / "second.log"
        with served(server_command(port), port=port, cwd=REPO, log=log, env=env):
            open_page(page, f"http://127.0.0.1:{port}")
            expect(page.get_by_text("outlives its server", exact=True)).to_be_visible()
            button(page, "Stop training").click()
            expect(page.get_by_text(re.compile("stopped before the last epoch"))).to_be_visible(
                timeout=TRAINING_TIMEOUT
            )
        meta = store.load_meta(run_id)
        assert meta["status"] == "stopped"
        assert 0 < meta["summary"]["steps"] < meta["summary"]["total_steps"]
    finally:
        context.close()
        end_live_runs(runs_dir)  # never leave a worker behind
