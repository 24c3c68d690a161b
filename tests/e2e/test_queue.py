"""End to end in Chromium: while a run trains, the Train page queues the next one, shows it
below the watched run with its place in the CPU's queue, and Cancel takes it out of the
queue before it trains, leaving the training run alone.

The first run is started from this process in the store the served dashboard reads, as
another tab or `sgdplus train` would start it.
"""

from __future__ import annotations

import time

from playwright.sync_api import Page, expect

from keras_sgdplus.lab.config import ModelSpec, OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.jobs import request_stop, start_training
from keras_sgdplus.lab.runs import RunStore
from tests.e2e.streamlit_ui import (
    assert_no_exception,
    button,
    choose,
    expand,
    open_page,
    type_text,
    wait_until_idle,
)

WORKER_TIMEOUT = 300.0  # s: a worker imports Keras and its backend on a slow machine
QUEUED_NAME = "iris waits its turn"


def long_run_config() -> TrainingConfig:
    return TrainingConfig(
        dataset="digits",
        model=ModelSpec(depth=4, width=512),  # wide, online: trains far longer than the test
        optimizer=OptimizerSpec(learning_rate=0.001, momentum=0.9),
        batch_size=1,
        epochs=200,
        name="long online run",
    )


def wait_for_status(store: RunStore, run_id: str, status: str) -> dict:
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        meta = store.load_meta(run_id)
        if meta["status"] == status:
            return meta
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} is {meta['status']!r}, not {status!r}, after waiting")


def wait_until_finished(store: RunStore, run_id: str) -> dict:
    """The run's metadata once no worker holds it any more."""
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        if not store.is_active(run_id):
            meta = store.load_meta(run_id)
            if meta["status"] not in ("running", "queued"):
                return meta
        time.sleep(0.2)
    raise AssertionError(f"run {run_id} still live after {WORKER_TIMEOUT} s")


def queued_run_id(store: RunStore) -> str:
    deadline = time.monotonic() + WORKER_TIMEOUT
    while time.monotonic() < deadline:
        found = [run for run in store.list_runs() if run.name == QUEUED_NAME]
        if found:
            [run] = found
            return run.run_id
        time.sleep(0.2)
    raise AssertionError(f"no run named {QUEUED_NAME!r} in the store")


def test_a_run_queued_while_another_trains_can_be_cancelled(dashboard, page: Page, runs_dir):
    store = RunStore(runs_dir)
    job = start_training(long_run_config(), runs_dir, side_by_side=1)
    running = job.run_id(timeout=WORKER_TIMEOUT)
    try:
        wait_for_status(store, running, "running")
        open_page(page, dashboard)
        expect(page.get_by_text("long online run", exact=True).first).to_be_visible()
        expand(page, "New run")  # folded while a run trains
        wait_until_idle(page)
        choose(page, "Dataset", "iris")
        type_text(page, "Run name (optional)", QUEUED_NAME)
        expect(button(page, "Start training")).to_have_count(0)
        button(page, "Queue this run").click()

        expect(page.get_by_text("Also live: training or queued (1)")).to_be_visible(
            timeout=WORKER_TIMEOUT * 1e3
        )
        expect(page.get_by_text("Queued for the CPU: 0 runs before it")).to_be_visible(
            timeout=WORKER_TIMEOUT * 1e3
        )
        assert_no_exception(page)
        queued = queued_run_id(store)
        assert store.load_meta(queued)["status"] == "queued"
        assert store.is_active(queued)  # its worker holds it and waits
        assert store.load_curve(queued, "batches").empty
        assert store.load_meta(running)["status"] == "running"
        expect(page.get_by_role("heading", name="long online run")).to_be_visible()  # watched

        wait_until_idle(page)
        button(page, "Cancel").click()
        meta = wait_until_finished(store, queued)
        assert meta["status"] == "stopped"
        assert store.load_curve(queued, "batches").empty  # it never trained
        assert store.load_meta(running)["status"] == "running"
        assert store.is_active(running)
        expect(page.get_by_text("Queued for the CPU: 0 runs before it")).to_have_count(
            0, timeout=WORKER_TIMEOUT * 1e3
        )
        expect(button(page, "Cancel")).to_have_count(0)
        assert_no_exception(page)
    finally:
        request_stop(store, running)
        wait_until_finished(store, running)
        job.wait(WORKER_TIMEOUT)
    runs = {run.name: run for run in store.list_runs()}
    assert set(runs) == {"long online run", QUEUED_NAME}
    assert not any(run.active for run in runs.values())  # no worker left behind
