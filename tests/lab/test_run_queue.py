"""Runs that wait their turn (`lab/run_queue.py`), with real worker processes: one at a
time per device by default, first come first served, `side_by_side` at once when asked; a
queued worker killed with `kill -9` leaves no place taken and its run reads `interrupted`;
a stop request takes a run out of the queue."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from keras_sgdplus.lab import run_queue
from keras_sgdplus.lab.config import ModelSpec, TrainingConfig
from keras_sgdplus.lab.jobs import TrainingJob, request_stop, start_training
from keras_sgdplus.lab.runs import RunStore

TIMEOUT = 300.0


def config(name: str, epochs: int) -> TrainingConfig:
    return TrainingConfig(
        dataset="iris", model=ModelSpec(depth=1, width=8), epochs=epochs, device="cpu", name=name
    )


def statuses(store: RunStore, run_ids: list[str]) -> list[str]:
    return [store.load_meta(run_id)["status"] for run_id in run_ids]


def enqueue(store: RunStore, name: str, epochs: int, side_by_side: int) -> tuple[TrainingJob, str]:
    """A worker whose run is in its queue (holding a ticket or a place) when this returns,
    so runs enqueued one after another keep their order."""
    job = start_training(config(name, epochs), store.root, side_by_side=side_by_side)
    run_id = job.run_id(timeout=TIMEOUT)
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        if store.load_meta(run_id)["status"] != "queued":
            return job, run_id
        if run_queue.runs_ahead(store.root, "cpu", run_id) is not None:
            return job, run_id
        if _holds_place(store.root, job.process.pid):  # its turn came: Keras is loading
            return job, run_id
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} never reached its queue")


def _holds_place(root: Path, pid: int) -> bool:
    """Whether process `pid` holds a slot file of the cpu queue open (Linux /proc)."""
    slots = {str(p.resolve()) for p in (root / ".queue" / "cpu").glob("slot-*")}
    try:
        links = [os.readlink(f"/proc/{pid}/fd/{fd}") for fd in os.listdir(f"/proc/{pid}/fd")]
    except OSError:
        return False
    return bool(slots.intersection(links))


def watch(store: RunStore, run_ids: list[str], until) -> list[list[str]]:
    """The runs' statuses every 50 ms until `until(statuses)` holds; every reading."""
    readings = []
    deadline = time.monotonic() + TIMEOUT
    while time.monotonic() < deadline:
        readings.append(statuses(store, run_ids))
        if until(readings[-1]):
            return readings
        time.sleep(0.05)
    raise AssertionError(f"not reached in {TIMEOUT} s: {readings[-1]}")


def ended(now: list[str]) -> bool:
    return all(status not in ("queued", "running") for status in now)


def test_runs_train_one_at_a_time_in_the_order_they_came(tmp_path: Path):
    store = RunStore(tmp_path)
    started = [enqueue(store, f"run {k}", epochs=3, side_by_side=1) for k in range(3)]
    run_ids = [run_id for _, run_id in started]
    readings = watch(store, run_ids, ended)
    assert statuses(store, run_ids) == ["completed"] * 3
    assert all(reading.count("running") <= 1 for reading in readings)
    # each run trains only once the runs before it have ended
    for reading in readings:
        for k, status in enumerate(reading):
            if status in ("running", "completed"):
                assert reading[:k] == ["completed"] * k, reading
    for job, _ in started:
        assert job.wait(TIMEOUT) == 0


def test_side_by_side_lets_runs_train_at_once(tmp_path: Path):
    store = RunStore(tmp_path)
    started = [enqueue(store, f"run {k}", epochs=400, side_by_side=2) for k in range(2)]
    run_ids = [run_id for _, run_id in started]
    try:
        watch(store, run_ids, lambda now: now == ["running", "running"])
    finally:
        for run_id in run_ids:
            request_stop(store, run_id)
    watch(store, run_ids, ended)
    assert statuses(store, run_ids) == ["stopped", "stopped"]


def test_a_stop_request_takes_a_run_out_of_the_queue(tmp_path: Path):
    store = RunStore(tmp_path)
    _, first = enqueue(store, "first", epochs=400, side_by_side=1)
    job, waiting = enqueue(store, "waiting", epochs=3, side_by_side=1)
    try:
        watch(store, [first], lambda now: now == ["running"])
        assert run_queue.runs_ahead(store.root, "cpu", waiting) == 0
        assert request_stop(store, waiting)
        assert job.wait(60) == 0
        assert statuses(store, [first, waiting]) == ["running", "stopped"]
        assert store.load_curve(waiting, "batches").empty  # it never trained
    finally:
        request_stop(store, first)
    watch(store, [first], ended)


def test_a_queued_worker_killed_leaves_its_run_interrupted_and_the_queue_moving(
    tmp_path: Path,
):
    store = RunStore(tmp_path)
    _, first = enqueue(store, "first", epochs=400, side_by_side=1)
    killed_job, killed = enqueue(store, "killed while queued", epochs=3, side_by_side=1)
    _, last = enqueue(store, "last", epochs=2, side_by_side=1)
    watch(store, [first], lambda now: now == ["running"])
    killed_job.process.send_signal(signal.SIGKILL)
    killed_job.wait(60)
    meta = store.load_meta(killed)  # the first reader reconciles it
    assert meta["status"] == "interrupted"
    assert "waited for its turn" in meta["error"]
    assert run_queue.runs_ahead(store.root, "cpu", last) == 0  # its ticket is gone
    request_stop(store, first)
    watch(store, [first, last], ended)
    assert statuses(store, [first, killed, last]) == ["stopped", "interrupted", "completed"]


@pytest.mark.parametrize("bad", [0, -1, 65, 1.5, True, "2"])
def test_side_by_side_must_be_a_small_positive_integer(bad):
    with pytest.raises(ValueError, match="side_by_side"):
        run_queue.check_side_by_side(bad)


def test_the_queue_of_a_run_is_its_device(tmp_path: Path):
    assert run_queue.queue_of("cpu", gpu_here=True) == "cpu"
    assert run_queue.queue_of("gpu", gpu_here=False) == "gpu"
    assert run_queue.queue_of("auto", gpu_here=True) == "gpu"
    assert run_queue.queue_of("auto", gpu_here=False) == "cpu"
    with pytest.raises(ValueError, match="queue"):
        run_queue.wait_for_place(tmp_path, "tpu", "20260101-000000-abcdef")
