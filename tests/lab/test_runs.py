"""The saved-runs store: round trips, crash safety, concurrency, corrupted runs, hostile input."""

import datetime as dt
import io
import itertools
import json
import math
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab import runs
from keras_sgdplus.lab.runs import (
    BATCH_COLUMNS,
    EPOCH_COLUMNS_BASE,
    RUN_ID_PATTERN,
    SCHEMA_VERSION,
    RunStore,
    RunStoreError,
    default_runs_dir,
    exact_float_reading,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = {
    "dataset": "digits",
    "batch_size": 32,
    "optimizer": {"learning_rate": 0.01, "momentum": 0.9},
}
ENVIRONMENT = {"python": sys.version.split()[0], "device": "CPU"}


def batch_rows(epoch, n=5, start_step=0, batch_size=32):
    rng = np.random.default_rng(epoch)
    return [
        {
            "step": start_step + i,
            "epoch": epoch,
            "batch": i,
            "loss": float(rng.random()) * 10.0 ** -rng.integers(0, 12),
            "learning_rate": 0.01 / (1.0 + 1e-3 * (start_step + i)),
            "batch_size": batch_size,
            "samples_seen": (start_step + i + 1) * batch_size,
            "wall_time": 0.1 * (start_step + i) + 1 / 3,
            "grad_norm": float(rng.random()) * 10.0 ** rng.integers(-3, 3),
        }
        for i in range(n)
    ]


def epoch_row(epoch):
    return {
        "epoch": epoch,
        "loss": 1 / (epoch + 3),
        "wall_time": epoch * 0.7 + 1e-9,
        "samples_seen": (epoch + 1) * 160,
        "accuracy": 0.5 + epoch / 97,
        "val_loss": 2 / (epoch + 7),
        "val_accuracy": 0.4 + epoch / 101,
    }


def write_run(store, name="run", epochs=3, per_epoch=5):
    writer = store.create(name, CONFIG, ENVIRONMENT)
    all_batches, all_epochs = [], []
    for e in range(epochs):
        rows = batch_rows(e, per_epoch, start_step=e * per_epoch)
        writer.append_batches(rows)
        writer.append_epoch(epoch_row(e))
        all_batches += rows
        all_epochs.append(epoch_row(e))
    writer.update(status="completed", summary={"final_loss": all_epochs[-1]["loss"]})
    writer.close()
    return writer.run_id, pd.DataFrame(all_batches), pd.DataFrame(all_epochs)


# --- round trip ------------------------------------------------------------------------------


def test_create_append_load_round_trip(tmp_path):
    store = RunStore(tmp_path / "runs")
    run_id, batches, epochs = write_run(store, "first run")
    assert RUN_ID_PATTERN.match(run_id)
    run = store.load(run_id)
    pd.testing.assert_frame_equal(run.batches, batches)
    pd.testing.assert_frame_equal(run.epochs, epochs)
    assert list(run.batches.columns) == list(BATCH_COLUMNS)
    assert tuple(run.epochs.columns[:4]) == EPOCH_COLUMNS_BASE
    meta = run.meta
    assert meta["schema_version"] == SCHEMA_VERSION
    assert (meta["run_id"], meta["name"], meta["status"]) == (run_id, "first run", "completed")
    assert run.name == "first run"
    assert run.status == "completed"
    assert meta["config"] == CONFIG
    assert meta["environment"] == ENVIRONMENT
    assert meta["summary"] == {"final_loss": epochs["loss"].iloc[-1]}
    assert meta["error"] is None
    dt.datetime.fromisoformat(meta["created_at"])
    assert meta["updated_at"] >= meta["created_at"]
    # plain files anyone can read
    on_disk = json.loads((store.path_of(run_id) / "meta.json").read_text())
    assert on_disk == meta
    (row,) = store.list_runs()
    assert (row.run_id, row.name, row.status, row.readable, row.reason) == (
        run_id,
        "first run",
        "completed",
        True,
        None,
    )
    assert row.config == CONFIG
    assert row.summary == meta["summary"]


@pytest.mark.parametrize(
    ("version", "exact_by_default"),
    [("2.1.4", False), ("2.3.3", False), ("3.0.0", False), ("3.0.2rc1", False),
     ("3.1.0", True), ("3.1.1", True), ("4.0.0.dev0+12.g3f2a", True)],
)  # fmt: skip
def test_pandas_before_3_1_is_asked_for_its_round_trip_float_converter(version, exact_by_default):
    """pandas 3.0.0's default converter read one in a few of 200k `repr`-written normal
    samples one ulp off (seen on the GPU machine's pandas, and in a side venv); 3.1 reads
    them exactly and deprecates `float_precision`."""
    assert exact_float_reading(version) == (
        {} if exact_by_default else {"float_precision": "round_trip"}
    )


def test_the_installed_pandas_reads_every_repr_written_float_back_exactly(tmp_path):
    values = np.random.default_rng(0).normal(size=200_000)
    path = tmp_path / "floats.csv"
    path.write_text("x\n" + "".join(f"{float(v)!r}\n" for v in values))
    read = pd.read_csv(path, **exact_float_reading(pd.__version__))["x"].to_numpy()
    np.testing.assert_array_equal(read.view(np.int64), values.view(np.int64))


def test_numbers_round_trip_exactly_with_nan_inf_and_numpy_scalars(tmp_path):
    store = RunStore(tmp_path)
    config = {"optimizer": {"learning_rate": np.float32(0.1)}, "epochs": np.int64(3)}
    writer = store.create("n", config, {})
    losses = [float("nan"), float("inf"), float("-inf"), 5e-324, 1.7976931348623157e308, 0.1]
    rows = []
    for i, loss in enumerate(losses):
        row = batch_rows(0, 1, start_step=i)[0]
        row["loss"] = loss
        rows.append(row)
    rows[-1]["learning_rate"] = np.float32(0.1)  # stored as float(np.float32(0.1)) exactly
    rows[-1]["batch_size"] = np.int64(32)
    writer.append_batches(rows)
    writer.update(status="diverged", summary={"final_loss": float("nan")})
    writer.close()
    run = store.load(writer.run_id)
    got = run.batches["loss"].tolist()
    assert math.isnan(got[0])
    assert got[1:] == losses[1:]
    assert run.batches["learning_rate"].iloc[-1] == float(np.float32(0.1))
    assert run.batches["batch_size"].dtype == np.int64
    assert run.meta["config"] == {
        "optimizer": {"learning_rate": float(np.float32(0.1))},
        "epochs": 3,
    }
    assert math.isnan(run.meta["summary"]["final_loss"])
    assert run.status == "diverged"


def test_new_run_is_running_with_empty_typed_curves(tmp_path):
    store = RunStore(tmp_path)
    with store.create("fresh", CONFIG, ENVIRONMENT) as writer:
        run = store.load(writer.run_id)
        assert run.status == "running"
        assert store.is_active(writer.run_id)
        assert store.list_runs()[0].active
        assert list(run.batches.columns) == list(BATCH_COLUMNS)
        assert run.batches.empty
        assert list(run.epochs.columns) == list(EPOCH_COLUMNS_BASE)
        assert run.epochs.empty
        assert run.batches["step"].dtype == np.int64
        assert run.batches["loss"].dtype == np.float64
    assert not store.is_active(writer.run_id)
    assert not store.list_runs()[0].active


def test_writer_rejects_bad_rows_and_statuses(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    row = batch_rows(0, 1)[0]
    with pytest.raises(RunStoreError, match="missing"):
        writer.append_batches([{k: v for k, v in row.items() if k != "loss"}])
    with pytest.raises(RunStoreError, match="unknown"):
        writer.append_batches([{**row, "extra": 1}])
    with pytest.raises(RunStoreError, match="'abc'"):
        writer.append_batches([{**row, "loss": "abc"}])
    with pytest.raises(RunStoreError, match="missing"):
        writer.append_epoch({"epoch": 0, "loss": 1.0})
    with pytest.raises(RunStoreError, match="column name"):
        writer.append_epoch({**epoch_row(0), "a,b": 1.0})
    writer.append_epoch(epoch_row(0))
    with pytest.raises(RunStoreError, match="new_metric"):
        writer.append_epoch({**epoch_row(1), "new_metric": 1.0})
    partial = {k: v for k, v in epoch_row(1).items() if k != "val_loss"}
    writer.append_epoch(partial)  # a metric left out is empty
    with pytest.raises(RunStoreError, match="'finished'"):
        writer.update(status="finished")
    with pytest.raises(RunStoreError, match="not a dict"):
        writer.update(summary=[1, 2])
    writer.update(status="failed", error="ValueError: boom")
    writer.close()
    run = store.load(writer.run_id)
    assert len(run.batches) == 0
    assert run.epochs["val_loss"].isna().tolist() == [False, True]
    assert (run.status, run.meta["error"]) == ("failed", "ValueError: boom")
    with pytest.raises(RunStoreError, match="closed"):
        writer.append_batches([row])
    with pytest.raises(RunStoreError, match="not a dict"):
        store.create("x", [1], {})
    with pytest.raises(RunStoreError, match="cannot store"):
        store.create("x", {"f": object()}, {})
    assert len(store.list_runs()) == 1


# --- crash safety ----------------------------------------------------------------------------


def test_stray_temp_file_from_a_crashed_meta_write_is_ignored(tmp_path):
    store = RunStore(tmp_path)
    run_id, batches, _ = write_run(store)
    path = store.path_of(run_id)
    (path / ".meta.json.abc123.tmp").write_text('{"schema_version": 1, "na')
    (tmp_path / ".creating-20260101-000000-abcdef").mkdir()  # a create that crashed
    assert [r.run_id for r in store.list_runs()] == [run_id]
    assert store.list_runs()[0].readable
    pd.testing.assert_frame_equal(store.load(run_id).batches, batches)


def test_failed_meta_write_leaves_the_old_meta_whole(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create("before", CONFIG, ENVIRONMENT)
    before = (writer.path / "meta.json").read_bytes()

    def crash(*args):
        raise OSError("disk died mid-replace")

    monkeypatch.setattr(runs.os, "replace", crash)
    with pytest.raises(OSError, match="disk died"):
        writer.update(status="completed", summary={"x": 1})
    with pytest.raises(OSError, match="disk died"):
        store.rename(writer.run_id, "after")
    monkeypatch.undo()
    assert (writer.path / "meta.json").read_bytes() == before
    assert not [p for p in writer.path.iterdir() if p.name.endswith(".tmp")]
    assert store.load(writer.run_id).status == "running"
    writer.close()


def test_half_written_last_line_is_dropped(tmp_path):
    store = RunStore(tmp_path)
    run_id, batches, epochs = write_run(store)
    path = store.path_of(run_id)
    with open(path / "batches.csv", "a") as f:
        f.write("15,3,0,0.12")
    with open(path / "epochs.csv", "a") as f:
        f.write("3,0.1,")
    (row,) = store.list_runs()
    assert row.readable, row.reason
    run = store.load(run_id)
    pd.testing.assert_frame_equal(run.batches, batches)
    pd.testing.assert_frame_equal(run.epochs, epochs)
    # a header cut short before any newline: no curve yet, not an error
    (path / "epochs.csv").write_text("epoch,lo")
    assert store.load(run_id).epochs.empty
    assert store.list_runs()[0].readable


KILLED_WRITER = textwrap.dedent(
    """
    import sys
    from keras_sgdplus.lab.runs import RunStore
    sys.path.insert(0, sys.argv[2])
    from test_runs import batch_rows, epoch_row

    writer = RunStore(sys.argv[1]).create("to be killed", {"epochs": 99}, {})
    step = 0
    for epoch in range(3):
        writer.append_batches(batch_rows(epoch, 4, start_step=step))
        step += 4
        writer.append_epoch(epoch_row(epoch))
    print(writer.run_id, flush=True)
    while True:  # mid-epoch 3, batch after batch until killed
        writer.append_batches(batch_rows(3, 1, start_step=step))
        step += 1
    """
)


def test_kill_9_of_a_writer_mid_epoch_keeps_the_store_readable(tmp_path):
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(root), str(Path(__file__).parent)],
        stdout=subprocess.PIPE,
        env=env,
        cwd=tmp_path,
    )
    try:
        run_id = proc.stdout.readline().decode().strip()
        assert RUN_ID_PATTERN.match(run_id), run_id
        store = RunStore(root)
        assert store.is_active(run_id)
        batches = root / run_id / "batches.csv"
        deadline = time.monotonic() + 10
        while batches.read_text().count("\n") < 1 + 12 + 20 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    assert proc.returncode == -signal.SIGKILL
    stored = json.loads((root / run_id / "meta.json").read_text())
    assert stored["status"] == "running"  # as the killed writer left it
    (row,) = store.list_runs()
    assert row.readable, row.reason
    # the first reader finds no writer holding the run: interrupted, and stored as such
    assert (row.status, row.active) == ("interrupted", False)
    stored = json.loads((root / run_id / "meta.json").read_text())
    assert stored["status"] == "interrupted"
    assert "ended without finishing" in stored["error"]
    run = store.load(run_id)
    pd.testing.assert_frame_equal(run.epochs, pd.DataFrame([epoch_row(e) for e in range(3)]))
    expected = pd.DataFrame([r for e in range(3) for r in batch_rows(e, 4, start_step=4 * e)])
    pd.testing.assert_frame_equal(run.batches.iloc[:12], expected)
    later = run.batches.iloc[12:]
    assert len(later) >= 20
    assert later["step"].tolist() == list(range(12, 12 + len(later)))
    assert (later["epoch"] == 3).all()
    # the summary, recomputed here from the rows the test wrote and the file's last line
    epochs = [epoch_row(e) for e in range(3)]
    last = run.batches.iloc[-1]
    assert run.meta["summary"] == {
        "total_steps": None,  # never planned by this writer
        "steps_per_epoch": None,
        "epochs_completed": 3,
        "steps": int(last["step"]) + 1,
        "samples_seen": int(last["samples_seen"]),
        "elapsed_s": float(last["wall_time"]),
        "samples_per_s": int(last["samples_seen"]) / float(last["wall_time"]),
        "final_loss": epochs[-1]["loss"],
        "best_loss": min(e["loss"] for e in epochs),
        "final_accuracy": epochs[-1]["accuracy"],
        "best_accuracy": max(e["accuracy"] for e in epochs),
        "final_val_loss": epochs[-1]["val_loss"],
        "best_val_loss": min(e["val_loss"] for e in epochs),
        "final_val_accuracy": epochs[-1]["val_accuracy"],
        "best_val_accuracy": max(e["val_accuracy"] for e in epochs),
    }
    assert store.load_meta(run_id) == run.meta  # reconciled once, then read as stored


def test_a_run_is_interrupted_only_when_no_writer_holds_it(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("live", {"epochs": 2}, {})
    writer.update(summary={"total_steps": 10, "steps_per_epoch": 5})
    writer.append_batches(batch_rows(0, 5))
    writer.append_epoch(epoch_row(0))
    for _ in range(2):  # readers leave a live run as it is
        assert store.load_meta(writer.run_id)["status"] == "running"
        assert store.list_runs()[0].status == "running"
    finished = store.create("finished", {"epochs": 1}, {})
    finished.update(status="stopped", summary={"steps": 0})
    finished.close()
    writer.close()  # the worker gone without a last word
    meta = store.load_meta(writer.run_id)
    assert meta["status"] == "interrupted"
    assert "after step 5 of 10" in meta["error"]
    summary = meta["summary"]
    assert (summary["total_steps"], summary["steps_per_epoch"]) == (10, 5)
    assert (summary["steps"], summary["epochs_completed"]) == (5, 1)
    assert summary["final_val_loss"] == epoch_row(0)["val_loss"]
    assert store.load_meta(finished.run_id)["status"] == "stopped"  # ended runs stay as they are


# --- concurrency -----------------------------------------------------------------------------

CREATOR = textwrap.dedent(
    """
    import sys
    from keras_sgdplus.lab.runs import RunStore

    store = RunStore(sys.argv[1])
    for i in range(10):
        with store.create(f"proc {sys.argv[2]} run {i}", {"seed": i}, {}) as writer:
            writer.append_batches([])
            print(writer.run_id, flush=True)
    """
)


def test_concurrent_creates_from_processes_never_clobber(tmp_path):
    root = tmp_path / "runs"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CREATOR, str(root), str(p)],
            stdout=subprocess.PIPE,
            env=env,
        )
        for p in range(4)
    ]
    ids = []
    for p in procs:
        out, _ = p.communicate(timeout=60)
        assert p.returncode == 0
        ids += out.decode().split()
    assert len(ids) == len(set(ids)) == 40
    listing = RunStore(root).list_runs()
    assert {r.run_id for r in listing} == set(ids)
    assert all(r.readable for r in listing)
    names = {r.name for r in listing}
    assert names == {f"proc {p} run {i}" for p in range(4) for i in range(10)}
    assert all(r.config == {"seed": int(r.name.split()[-1])} for r in listing)


def test_concurrent_creates_from_threads_and_forced_id_collisions(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    ids, errors = [], []

    def create_some():
        try:
            for _ in range(5):
                with store.create("thread", {}, {}) as w:
                    ids.append(w.run_id)
        except Exception as e:  # pragma: no cover - reported below
            errors.append(e)

    threads = [threading.Thread(target=create_some) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert len(set(ids)) == 40 == len(store.list_runs())

    # the same time and hex twice: the second create takes a new id
    fixed = dt.datetime(2026, 11, 21, 22, 45, 1, tzinfo=dt.timezone.utc)
    hexes = iter(["aaaaaa", "aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(runs, "_utcnow", lambda: fixed)
    monkeypatch.setattr(runs, "_random_hex", lambda: next(hexes))
    first = store.create("a", {}, {})
    second = store.create("b", {}, {})
    assert (first.run_id, second.run_id) == ("20261121-224501-aaaaaa", "20261121-224501-bbbbbb")
    assert store.load(first.run_id).name == "a"
    assert store.load(second.run_id).name == "b"


def test_rename_racing_update_keeps_both_changes(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("start", CONFIG, ENVIRONMENT)
    other = store.create("other", CONFIG, ENVIRONMENT)
    n = 60

    def renamer(run_id, prefix):
        for i in range(n):
            store.rename(run_id, f"{prefix} {i}")

    def updater():
        for i in range(n):
            writer.update(summary={"epochs_done": i})

    threads = [
        threading.Thread(target=renamer, args=(writer.run_id, "name")),
        threading.Thread(target=renamer, args=(other.run_id, "other")),
        threading.Thread(target=updater),
    ]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    meta = store.load(writer.run_id).meta
    assert meta["name"] == f"name {n - 1}"
    assert meta["summary"] == {"epochs_done": n - 1}
    assert store.load(other.run_id).name == f"other {n - 1}"
    writer.update(status="completed")
    assert store.load(writer.run_id).name == f"name {n - 1}"  # the writer kept the rename
    writer.close()
    other.close()


# --- corrupted runs --------------------------------------------------------------------------


def _set_meta(path, **changes):
    meta = json.loads((path / "meta.json").read_text())
    meta.update(changes)
    (path / "meta.json").write_text(json.dumps(meta))


CORRUPTIONS = {
    "invalid json": (lambda p: (p / "meta.json").write_text('{"schema_version": 1,'), "JSON"),
    "empty meta": (lambda p: (p / "meta.json").write_text(""), "JSON"),
    "missing meta": (lambda p: (p / "meta.json").unlink(), "missing"),
    "binary meta": (lambda p: (p / "meta.json").write_bytes(b"\xff\xfe\x00garbage"), "UTF-8"),
    "meta is a list": (lambda p: (p / "meta.json").write_text("[1, 2]"), "list"),
    "newer schema": (lambda p: _set_meta(p, schema_version=SCHEMA_VERSION + 1), "newer"),
    "bad schema": (lambda p: _set_meta(p, schema_version="one"), "schema_version"),
    "config not a dict": (lambda p: _set_meta(p, config=[1, 2]), "config"),
    # a config that does not parse as a TrainingConfig: the stored run's entry (lab/config.py)
    "config out of range": (
        lambda p: _set_meta(p, config={"optimizer": {"momentum": 1.5}}),
        "meta.json has a bad config: `momentum` must be in [0, 1]. Received: momentum=1.5",
    ),
    "config unknown setting": (
        lambda p: _set_meta(p, config={**CONFIG, "lr": 0.1}),
        "meta.json has a bad config: `config` has unknown settings: 'lr'",
    ),
    "config bad section": (
        lambda p: _set_meta(p, config={"model": "mlp"}),
        "meta.json has a bad config: `model` must be a mapping of settings",
    ),
    "unknown status": (lambda p: _set_meta(p, status="exploded"), "exploded"),
    "wrong run id": (lambda p: _set_meta(p, run_id="20000101-000000-000000"), "folder"),
    "garbage batches header": (
        lambda p: (p / "batches.csv").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(range(256))),
        "batches.csv",
    ),
    "garbage batches line": (
        lambda p: (p / "batches.csv").open("a").write("what,is,this,0,0,0,0,0,0\n"),
        "batches.csv",
    ),
    "wrong field count": (
        lambda p: (p / "epochs.csv").open("a").write("1,2,3\n"),
        "epochs.csv",
    ),
    "epochs header": (lambda p: (p / "epochs.csv").write_text("a,b\n1,2\n"), "epochs.csv"),
}


@pytest.mark.parametrize("kind", list(CORRUPTIONS))
def test_corrupted_run_is_listed_unreadable_and_others_still_load(tmp_path, kind):
    corrupt, reason_word = CORRUPTIONS[kind]
    store = RunStore(tmp_path)
    good_id, good_batches, _ = write_run(store, "good")
    bad_id, _, _ = write_run(store, "bad")
    corrupt(store.path_of(bad_id))
    listing = {r.run_id: r for r in store.list_runs()}
    assert set(listing) == {good_id, bad_id}
    bad = listing[bad_id]
    assert not bad.readable
    assert reason_word in bad.reason
    assert bad.status == runs.UNREADABLE
    dt.datetime.fromisoformat(bad.created_at)
    assert listing[good_id].readable
    pd.testing.assert_frame_equal(store.load(good_id).batches, good_batches)
    with pytest.raises(RunStoreError, match=f"{bad_id} is unreadable") as info:
        store.load(bad_id)
    assert reason_word in str(info.value)
    store.delete(bad_id)  # an unreadable run can still be removed
    assert [r.run_id for r in store.list_runs()] == [good_id]


def test_live_only_listing_reads_only_the_runs_a_writer_holds(tmp_path):
    store = RunStore(tmp_path)
    done_id, _, _ = write_run(store, "done")
    corrupt_id, _, _ = write_run(store, "corrupt")
    (store.path_of(corrupt_id) / "meta.json").write_text("{ not json")
    held = store.create("held", CONFIG, ENVIRONMENT)
    try:
        [live] = store.list_runs(live_only=True)
        assert live.run_id == held.run_id
        assert live.active
        assert live.status == "running"
        assert {r.run_id for r in store.list_runs()} == {done_id, corrupt_id, held.run_id}
    finally:
        held.close()
    assert store.list_runs(live_only=True) == []


def test_garbage_in_the_middle_of_a_curve_is_found_on_load(tmp_path):
    store = RunStore(tmp_path)
    run_id, _, _ = write_run(store)
    path = store.path_of(run_id) / "batches.csv"
    lines = path.read_text().split("\n")
    lines[3] = "0,0,zero,0,0,0,0,0,0"
    path.write_text("\n".join(lines))
    with pytest.raises(RunStoreError, match=r"batches\.csv"):
        store.load(run_id)


def test_listing_ignores_files_that_are_not_runs(tmp_path):
    store = RunStore(tmp_path)
    run_id, _, _ = write_run(store)
    (tmp_path / "README.md").write_text("# saved runs")
    (tmp_path / "notes").mkdir()
    (tmp_path / "20260101-000000-abcdef").write_text("a file with a run-like name")
    outside = tmp_path.parent / f"{tmp_path.name}-outside"
    outside.mkdir()
    (tmp_path / "20260101-000000-fedcba").symlink_to(outside)
    (tmp_path / "99999999-999999-abcdef").mkdir()  # a run-like name with no real date
    listing = store.list_runs()
    assert [r.run_id for r in listing] == [run_id, "99999999-999999-abcdef"]
    assert listing[1].reason == "meta.json is missing"
    with pytest.raises(RunStoreError, match="unknown run id"):
        store.load("20260101-000000-fedcba")


def test_listing_is_newest_first(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    times = [dt.datetime(2026, 1, d, tzinfo=dt.timezone.utc) for d in (2, 1, 3)]
    ids = []
    for t in times:
        monkeypatch.setattr(runs, "_utcnow", lambda t=t: t)
        with store.create(t.isoformat(), {}, {}) as w:
            ids.append(w.run_id)
    (store.path_of(ids[0]) / "meta.json").write_text("broken")  # ordered by its id's time
    assert [r.run_id for r in store.list_runs()] == [ids[2], ids[0], ids[1]]


# --- hostile input ---------------------------------------------------------------------------

HOSTILE_NAMES = [
    "../../x",
    "/etc/passwd",
    "a/b\\c",
    "..",
    ".",
    "~root",
    "名前 🚀 émoji",
    "$(rm -rf ~); `id`",
    '<script>alert("x")</script>',
    "20261121-224501-3f9a2c",
]


def test_hostile_names_stay_names(tmp_path):
    root = tmp_path / "root"
    store = RunStore(root)
    ids = {}
    for name in HOSTILE_NAMES:
        with store.create(name, {}, {}) as w:
            ids[w.run_id] = name
    assert list(tmp_path.iterdir()) == [root]
    assert sorted(p.name for p in root.iterdir()) == sorted(ids)
    for run_id, name in ids.items():
        assert store.load(run_id).name == name
    assert {r.name for r in store.list_runs()} == set(HOSTILE_NAMES)
    run_id = next(iter(ids))
    store.rename(run_id, "../../../renamed")
    assert store.load(run_id).name == "../../../renamed"
    assert sorted(p.name for p in root.iterdir()) == sorted(ids)
    with store.create("  padded  ", {}, {}) as w:
        assert store.load(w.run_id).name == "padded"


@pytest.mark.parametrize(
    "name", ["", "   ", "a" * 201, "line\nbreak", "nul\x00", "tab\tname", "\u2028", 42, None]
)
def test_bad_names_are_rejected_naming_the_value(tmp_path, name):
    store = RunStore(tmp_path)
    with pytest.raises(RunStoreError, match="bad run name") as info:
        store.create(name, {}, {})
    assert repr(name)[:20] in str(info.value)
    assert list(tmp_path.iterdir()) == []
    run_id, _, _ = write_run(store, "ok")
    with pytest.raises(RunStoreError, match="bad run name"):
        store.rename(run_id, name)
    assert store.load(run_id).name == "ok"


@pytest.mark.parametrize(
    "run_id",
    [
        "../x",
        "..",
        "",
        "/etc",
        "20261121-224501-3f9a2c/../..",
        "20261121-224501-3F9A2C",
        "20261121-224501-3f9a2c\n",
        " 20261121-224501-3f9a2c",
        None,
    ],
)
def test_bad_run_ids_are_rejected(tmp_path, run_id):
    store = RunStore(tmp_path)
    for call in (
        store.load,
        store.delete,
        store.path_of,
        store.is_active,
        lambda r: store.rename(r, "n"),
        lambda r: store.export_csv(r, "batches", io.StringIO()),
    ):
        with pytest.raises(RunStoreError, match="bad run id") as info:
            call(run_id)
        assert repr(run_id) in str(info.value)


def test_unknown_run_id(tmp_path):
    store = RunStore(tmp_path)
    with pytest.raises(RunStoreError, match="unknown run id '20261121-224501-3f9a2c'"):
        store.load("20261121-224501-3f9a2c")
    with pytest.raises(RunStoreError, match="unknown run id"):
        store.delete("20261121-224501-3f9a2c")
    assert store.path_of("20261121-224501-3f9a2c", must_exist=False) == (
        tmp_path / "20261121-224501-3f9a2c"
    )


# --- rename, delete, export, default folder --------------------------------------------------


def test_rename_delete_and_export(tmp_path):
    store = RunStore(tmp_path)
    run_id, batches, epochs = write_run(store, "old")
    other_id, _, _ = write_run(store, "other")
    store.rename(run_id, "  new name  ")
    assert store.load(run_id).name == "new name"
    assert store.path_of(run_id).name == run_id

    for curve, expected in (("batches", batches), ("epochs", epochs)):
        out = io.StringIO()
        store.export_csv(run_id, curve, out)
        pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(out.getvalue())), expected)
    with pytest.raises(RunStoreError, match="'losses'"):
        store.export_csv(run_id, "losses", io.StringIO())

    store.delete(run_id)
    assert [r.run_id for r in store.list_runs()] == [other_id]
    assert sorted(p.name for p in tmp_path.iterdir()) == [other_id]
    with pytest.raises(RunStoreError, match="unknown run id"):
        store.load(run_id)
    with pytest.raises(RunStoreError, match="unknown run id"):
        store.rename(run_id, "x")


def test_update_after_its_folder_went_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("doomed", {}, {})
    shutil.rmtree(tmp_path / writer.run_id)  # by hand: the store itself refuses (see below)
    with pytest.raises(RunStoreError, match="deleted"):
        writer.update(status="stopped")
    writer.close()


def test_default_runs_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("SGDPLUS_RUNS_DIR", str(tmp_path / "elsewhere"))
    assert default_runs_dir() == tmp_path / "elsewhere"
    store = RunStore()
    assert store.root == tmp_path / "elsewhere"
    assert store.root.is_dir()
    monkeypatch.delenv("SGDPLUS_RUNS_DIR")
    monkeypatch.chdir(tmp_path)
    assert default_runs_dir() == tmp_path / "saved_runs"
    assert RunStore().root.resolve() == (tmp_path / "saved_runs").resolve()
    (tmp_path / "a-file").write_text("")
    with pytest.raises(RunStoreError, match="a-file"):
        RunStore(tmp_path / "a-file")


# --- schema 1 runs ---------------------------------------------------------------------------


def _as_schema_1(path):
    """Rewrite a run as schema 1 wrote it: meta schema_version 1, batches without grad_norm."""
    _set_meta(path, schema_version=1)
    lines = (path / "batches.csv").read_text().split("\n")
    (path / "batches.csv").write_text("\n".join(line.rsplit(",", 1)[0] for line in lines))


def test_a_schema_1_run_loads_with_grad_norm_nan(tmp_path):
    store = RunStore(tmp_path)
    run_id, batches, epochs = write_run(store)
    path = store.path_of(run_id)
    _as_schema_1(path)
    assert (path / "batches.csv").read_text().startswith(",".join(BATCH_COLUMNS[:-1]) + "\n")
    (row,) = store.list_runs()
    assert row.readable, row.reason
    run = store.load(run_id)
    assert run.meta["schema_version"] == 1
    expected = batches.assign(grad_norm=math.nan)
    pd.testing.assert_frame_equal(run.batches, expected)
    pd.testing.assert_frame_equal(run.epochs, epochs)
    tail = store.read_curve_since(run_id, "batches", 0)
    pd.testing.assert_frame_equal(tail.rows, expected)
    text = (path / "batches.csv").read_text()
    after_six_lines = len("".join(text.splitlines(keepends=True)[:6]))  # header + 5 rows
    later = store.read_curve_since(run_id, "batches", after_six_lines)
    assert (later.offset, later.restarted) == (len(text), False)
    pd.testing.assert_frame_equal(later.rows, expected.iloc[5:].reset_index(drop=True))
    # an empty schema 1 batches file: the column is there, float64
    (path / "batches.csv").write_text(",".join(BATCH_COLUMNS[:-1]) + "\n")
    empty = store.load_curve(run_id, "batches")
    assert list(empty.columns) == list(BATCH_COLUMNS)
    assert empty["grad_norm"].dtype == np.float64
    assert store.read_curve_since(run_id, "batches", 0).rows.columns.tolist() == list(BATCH_COLUMNS)


# --- columnar appends ------------------------------------------------------------------------

SPECIAL_FLOATS = [
    math.nan,
    math.inf,
    -math.inf,
    0.0,
    -0.0,
    5e-324,  # the smallest subnormal
    -2.2250738585072014e-308,
    1.7976931348623157e308,
    1e16,  # where repr switches to an exponent
    9999999999999998.0,
    1e-4,
    1e-5,
    0.1,
    -1.5,
    float(np.float32(0.1)),
]


def random_columns(n, seed, float_dtype=np.float64, int_dtype=np.int64):
    """Batch columns of ``n`` rows mixing every kind of value a writer must keep exactly:
    specials, subnormals, float32-cast values, every magnitude, negatives, and runs of equal
    values (and distinct ones) in every column."""
    rng = np.random.default_rng(seed)

    def floats():
        with np.errstate(over="ignore"):
            x = rng.standard_normal(n) * 10.0 ** rng.integers(-320, 300, n)
            x32 = rng.standard_normal(n).astype(np.float32).astype(np.float64)
        kind = rng.integers(0, 3, n)
        x = np.where(kind == 1, x32, x)
        x = np.where(kind == 2, rng.choice(SPECIAL_FLOATS, n), x)
        if rng.random() < 0.5:  # runs: each value repeated a few times
            x = np.repeat(x, rng.integers(1, 6, n))[:n]
        with np.errstate(over="ignore"):
            return x.astype(float_dtype)  # float32: large values become inf

    def ints(low, high):
        x = rng.integers(low, high, n)
        if rng.random() < 0.5:
            x = np.repeat(x, rng.integers(1, 6, n))[:n]
        return x.astype(int_dtype)

    step = np.arange(n, dtype=int_dtype)
    return {
        "step": step,
        "epoch": ints(0, 4),
        "batch": ints(-5, 10**6),
        "loss": floats(),
        "learning_rate": floats(),
        "batch_size": np.full(n, 32, dtype=int_dtype),
        "samples_seen": ints(-(2**31), 2**31 - 1),
        "wall_time": floats(),
        "grad_norm": floats(),
    }


def rows_of(columns):
    """The same values as rows of scalars, the elements' own types (NumPy scalars)."""
    n = len(columns["step"])
    return [{c: columns[c][i] for c in BATCH_COLUMNS} for i in range(n)]


@pytest.mark.parametrize(
    ("float_dtype", "int_dtype"), [(np.float64, np.int64), (np.float32, np.int32)]
)
def test_append_batch_columns_writes_the_bytes_append_batches_writes(
    tmp_path, float_dtype, int_dtype
):
    store = RunStore(tmp_path)
    by_rows = store.create("rows", CONFIG, ENVIRONMENT)
    by_columns = store.create("columns", CONFIG, ENVIRONMENT)
    chunks = [
        random_columns(n, seed, float_dtype, int_dtype)
        for seed, n in enumerate([1, 7, 20000, 0, 3000])
    ]
    for chunk in chunks:
        by_rows.append_batches(rows_of(chunk))
        assert by_columns.append_batch_columns(chunk) == len(chunk["step"])
    by_rows.close()
    by_columns.close()
    written = (by_columns.path / "batches.csv").read_bytes()
    assert written == (by_rows.path / "batches.csv").read_bytes()
    # independently: Python's repr and str, and pandas reads back the same float64 bits
    merged = {c: np.concatenate([chunk[c] for chunk in chunks]) for c in BATCH_COLUMNS}
    lines = written.decode().split("\n")
    assert lines[0] == ",".join(BATCH_COLUMNS)
    for i in (0, 1, 7, 12345, len(merged["step"]) - 1):
        expected = [
            repr(float(merged[c][i])) if c not in runs._INT_COLUMNS else str(int(merged[c][i]))
            for c in BATCH_COLUMNS
        ]
        assert lines[i + 1] == ",".join(expected)
    df = pd.read_csv(by_columns.path / "batches.csv", **exact_float_reading(pd.__version__))
    for c in BATCH_COLUMNS:
        want = merged[c].astype(np.float64 if c not in runs._INT_COLUMNS else np.int64)
        got = df[c].to_numpy()
        assert got.dtype == want.dtype, c
        np.testing.assert_array_equal(got.view(np.int64), want.view(np.int64), err_msg=c)
    loaded = store.load_curve(by_columns.run_id, "batches")
    pd.testing.assert_frame_equal(loaded, df)


def test_append_batch_columns_takes_lists_and_checks_what_it_is_given(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    good = {c: [1, 2] for c in BATCH_COLUMNS}
    assert writer.append_batch_columns(good) == 2
    cases = [
        ({c: v for c, v in good.items() if c != "loss"}, "missing \\['loss'\\]"),
        ({**good, "extra": [1, 2]}, "unknown \\['extra'\\]"),
        ({**good, "loss": [1.0]}, "'loss' has 1 values, 'step' has 2"),
        ({**good, "loss": [[1.0, 2.0]]}, "'loss': 2-D"),
        ({**good, "step": [1.5, 2.5]}, "'step': float64, not integers"),
        ({**good, "epoch": [True, False]}, "'epoch': bool, not integers"),
        ({**good, "loss": ["a", "b"]}, "'loss': <U1, not numbers"),
        ({**good, "loss": [1.0, None]}, "'loss': object, not numbers"),
        ({**good, "batch": np.array([2**64 - 1, 1], dtype=np.uint64)}, "beyond int64"),
        ([1, 2], "not a mapping"),
    ]
    for columns, message in cases:
        with pytest.raises(RunStoreError, match=message):
            writer.append_batch_columns(columns)
    assert writer.append_batch_columns({c: [] for c in BATCH_COLUMNS}) == 0
    writer.close()
    with pytest.raises(RunStoreError, match="closed"):
        writer.append_batch_columns(good)
    batches = store.load_curve(writer.run_id, "batches")
    assert batches.to_dict("list") == {
        c: [1, 2] if c in runs._INT_COLUMNS else [1.0, 2.0] for c in BATCH_COLUMNS
    }
    assert batches["loss"].dtype == np.float64  # integers given for a float column: floats


# --- tail reads ------------------------------------------------------------------------------


def test_tail_reads_in_random_pieces_add_up_to_the_file(tmp_path):
    store = RunStore(tmp_path)
    source = store.create("source", CONFIG, ENVIRONMENT)
    source.append_batch_columns(random_columns(3000, 1))
    source.close()
    content = (source.path / "batches.csv").read_bytes()
    writer = store.create("follow", CONFIG, ENVIRONMENT)
    path = writer.path / "batches.csv"
    path.write_bytes(b"")
    rng = np.random.default_rng(0)
    cuts = sorted(rng.choice(len(content), 40, replace=False).tolist())
    cuts[:3] = [3, 20, content.index(b"\n") + 1]  # inside the header, then right after it
    offset, pieces = 0, []
    for cut in [*sorted(cuts), len(content)]:
        with open(path, "ab") as f:
            f.write(content[path.stat().st_size : cut])
        tail = store.read_curve_since(writer.run_id, "batches", offset)
        assert not tail.restarted
        complete = content[: content.rfind(b"\n", 0, cut) + 1]
        assert tail.offset == len(complete)  # a half-written line is not consumed
        assert list(tail.rows.columns) == list(BATCH_COLUMNS)
        pieces.append(tail.rows)
        offset = tail.offset
        so_far = pd.concat(pieces, ignore_index=True)
        if complete.count(b"\n") > 1:  # pandas itself, on the complete lines
            pd.testing.assert_frame_equal(so_far, pd.read_csv(io.BytesIO(complete)))
        pd.testing.assert_frame_equal(so_far, store.load_curve(writer.run_id, "batches"))
    assert offset == len(content)
    writer.close()


def test_a_tail_read_of_a_replaced_or_truncated_file_starts_over(tmp_path):
    store = RunStore(tmp_path)
    run_id, batches, _ = write_run(store)
    path = store.path_of(run_id)
    text = (path / "batches.csv").read_text()
    end = store.read_curve_since(run_id, "batches", 0).offset
    assert end == len(text)
    (path / "batches.csv").write_text("".join(text.splitlines(keepends=True)[:4]))  # shorter
    tail = store.read_curve_since(run_id, "batches", end)
    assert tail.restarted
    pd.testing.assert_frame_equal(tail.rows, batches.iloc[:3])
    # as long as before, but no line ends where the last read stopped: replaced
    header, first_step = text.split("\n", 1)
    swapped = f"{header}\n0{first_step}"  # step "00": the same rows, one byte later
    (path / "batches.csv").write_text(swapped)
    replaced = store.read_curve_since(run_id, "batches", end)
    assert (replaced.restarted, replaced.offset) == (True, end + 1)
    pd.testing.assert_frame_equal(replaced.rows, batches)
    # a header longer than the offset: replaced too
    (path / "epochs.csv").write_text((path / "epochs.csv").read_text())
    epochs_end = store.read_curve_since(run_id, "epochs", 0).offset
    assert store.read_curve_since(run_id, "epochs", 5).restarted
    assert store.read_curve_since(run_id, "epochs", epochs_end).rows.empty
    # the file gone: an empty curve, started over if something had been read
    (path / "epochs.csv").unlink()
    gone = store.read_curve_since(run_id, "epochs", epochs_end)
    assert (gone.offset, gone.restarted, list(gone.rows.columns)) == (
        0,
        True,
        list(EPOCH_COLUMNS_BASE),
    )
    assert not store.read_curve_since(run_id, "epochs", 0).restarted


def test_tail_reads_check_their_arguments_and_the_new_lines(tmp_path):
    store = RunStore(tmp_path)
    run_id, _, _ = write_run(store)
    for curve, offset, message in [
        ("losses", 0, "bad curve 'losses'"),
        ("batches", -1, "bad offset -1"),
        ("batches", True, "bad offset True"),
        ("batches", 1.5, "bad offset 1.5"),
    ]:
        with pytest.raises(RunStoreError, match=message):
            store.read_curve_since(run_id, curve, offset)
    with pytest.raises(RunStoreError, match="bad run id"):
        store.read_curve_since("../x", "batches", 0)
    path = store.path_of(run_id) / "batches.csv"
    end = path.stat().st_size
    with open(path, "a") as f:
        f.write("1,2,3\n")
    with pytest.raises(RunStoreError, match=f"line 1 after byte {end} is garbled: '1,2,3'"):
        store.read_curve_since(run_id, "batches", end)
    with pytest.raises(RunStoreError, match="line 17 is garbled"):
        store.read_curve_since(run_id, "batches", 0)
    assert store.read_curve_since(run_id, "batches", path.stat().st_size).rows.empty


@pytest.mark.parametrize("first_long", [True, False])
def test_lines_that_compensate_each_others_field_count_are_garbled(tmp_path, first_long):
    # one line a field short, another a field long: the totals of commas still add up
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    ok = ",".join(["1"] * len(BATCH_COLUMNS))
    long, short = ok + ",1", ok.rsplit(",", 1)[0]
    lines = [long, ok, short] if first_long else [ok, short, long]
    with open(writer.path / "batches.csv", "a") as f:
        f.write("\n".join(lines) + "\n")
    bad_line = 2 if first_long else 3
    for read in (
        lambda: store.load_curve(writer.run_id, "batches"),
        lambda: store.read_curve_since(writer.run_id, "batches", 0),
    ):
        with pytest.raises(RunStoreError, match=f"line {bad_line} is garbled"):
            read()
    writer.close()


@pytest.mark.parametrize("bad", ['1,"2",3,4,5,6,7,8,9', "1,2,3,4,5,6,7,8,9\r", ""])
def test_quotes_carriage_returns_and_blank_lines_are_garbled(tmp_path, bad):
    store = RunStore(tmp_path)
    run_id, _, _ = write_run(store)
    with open(store.path_of(run_id) / "batches.csv", "a", newline="") as f:
        f.write(bad + "\n")
    with pytest.raises(RunStoreError, match="line 17 is garbled"):
        store.load_curve(run_id, "batches")


# --- the background batch writer -------------------------------------------------------------


def _wait_until(condition, what, seconds=30.0):
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.005)


def test_a_million_rows_put_in_chunks_reload_equal_to_the_arrays(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("million", CONFIG, ENVIRONMENT)
    n = 1_000_000
    rng = np.random.default_rng(0)
    step = np.arange(n, dtype=np.int64)
    columns = {
        "step": step,
        "epoch": step // 7919,
        "batch": step % 7919,
        "loss": rng.random(n).astype(np.float32).astype(np.float64),
        "learning_rate": 0.01 / (1.0 + 1e-4 * step),
        "batch_size": np.where(step % 7919 == 7918, 5, 32),
        "samples_seen": np.cumsum(np.where(step % 7919 == 7918, 5, 32)),
        "wall_time": step * 1e-5 + rng.random(n) * 1e-6,
        "grad_norm": np.where(rng.random(n) < 0.01, np.nan, rng.random(n) * 3),
    }
    bounds = np.unique(np.concatenate([[0, n], rng.integers(0, n, 300)]))
    with runs.BackgroundBatchWriter(writer) as batches:
        for start, stop in itertools.pairwise(bounds):
            batches.put({c: v[start:stop] for c, v in columns.items()})
    writer.close()
    pd.testing.assert_frame_equal(
        store.load_curve(writer.run_id, "batches"), pd.DataFrame(columns), check_exact=True
    )


class _Blocking:
    """Stands in for RunWriter.append_batch_columns: records the rows of each call, and
    blocks each call until released."""

    def __init__(self, append):
        self.append = append
        self.calls = []
        self.release = threading.Event()
        self.entered = threading.Event()

    def __call__(self, columns, **kwargs):
        self.entered.set()
        self.release.wait(30)
        self.calls.append(columns["step"].tolist())
        return self.append(columns, **kwargs)


def _blocked_writer(store):
    """A new run's writer whose batch appends block until `blocking.release` is set."""
    writer = store.create("w", CONFIG, ENVIRONMENT)
    blocking = _Blocking(writer.append_batch_columns)
    writer.append_batch_columns = blocking
    return writer, blocking


def test_put_returns_while_the_disk_is_busy_and_queued_chunks_are_written_together(tmp_path):
    store = RunStore(tmp_path)
    writer, blocking = _blocked_writer(store)
    columns = random_columns(10, 0)
    chunk = lambda a, b: {c: v[a:b] for c, v in columns.items()}  # noqa: E731
    batches = runs.BackgroundBatchWriter(writer)
    batches.put(chunk(0, 2))
    assert blocking.entered.wait(30)  # the thread is inside its first append, blocked
    batches.put(chunk(2, 5))  # returns although the thread cannot write
    batches.put(chunk(5, 10))
    assert blocking.calls == []
    blocking.release.set()
    batches.flush()
    assert blocking.calls == [[0, 1], [2, 3, 4, 5, 6, 7, 8, 9]]  # the queued two, as one
    batches.close()
    writer.close()
    pd.testing.assert_frame_equal(
        store.load_curve(writer.run_id, "batches"), pd.DataFrame(columns), check_exact=True
    )


def test_an_action_runs_after_the_chunks_put_before_it_without_the_caller_waiting(tmp_path):
    """`after`: the action runs in the writer's thread once the chunks put before it are in
    the file (each action sees the file's rows of exactly those), and returns at once while
    the disk is busy; chunks put after an action are written after it."""
    store = RunStore(tmp_path)
    writer, blocking = _blocked_writer(store)
    columns = random_columns(10, 1)
    chunk = lambda a, b: {c: v[a:b] for c, v in columns.items()}  # noqa: E731
    seen = []
    rows_in_file = lambda: len(store.load_curve(writer.run_id, "batches"))  # noqa: E731
    batches = runs.BackgroundBatchWriter(writer)
    batches.put(chunk(0, 3))
    assert blocking.entered.wait(30)
    batches.after(lambda: seen.append(("first", threading.current_thread().name, rows_in_file())))
    batches.put(chunk(3, 4))
    batches.put(chunk(4, 7))
    batches.after(lambda: seen.append(("second", threading.current_thread().name, rows_in_file())))
    batches.put(chunk(7, 10))
    assert seen == []  # nothing could be written yet: the caller did not wait
    blocking.release.set()
    batches.close()
    writer.close()
    thread = f"batches of {writer.run_id}"
    assert seen == [("first", thread, 3), ("second", thread, 7)]
    assert blocking.calls == [[0, 1, 2], [3, 4, 5, 6], [7, 8, 9]]
    pd.testing.assert_frame_equal(
        store.load_curve(writer.run_id, "batches"), pd.DataFrame(columns), check_exact=True
    )


def test_a_failing_action_stops_the_writer_and_is_reported(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    batches = runs.BackgroundBatchWriter(writer)
    batches.put(random_columns(4, 2))

    def fail():
        raise OSError("disk full")

    batches.after(fail)
    with pytest.raises(RunStoreError, match="disk full"):
        batches.flush()
    with pytest.raises(RunStoreError, match="disk full"):
        batches.after(lambda: None)
    batches.close()  # already reported
    writer.close()


def _record_fsyncs(monkeypatch):
    """Sizes of batches.csv at each fsync of it."""
    sizes = []
    real = os.fsync

    def fsync(fd):
        real(fd)
        if os.readlink(f"/proc/self/fd/{fd}").endswith("batches.csv"):
            sizes.append(os.fstat(fd).st_size)

    monkeypatch.setattr(runs.os, "fsync", fsync)
    return sizes


def test_flush_returns_once_everything_put_is_on_disk(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    fsyncs = _record_fsyncs(monkeypatch)
    path = writer.path / "batches.csv"
    header = path.stat().st_size
    columns = random_columns(500, 3)
    batches = runs.BackgroundBatchWriter(writer, sync_seconds=3600.0)
    batches.put({c: v[:200] for c, v in columns.items()})
    batches.put({c: v[200:] for c, v in columns.items()})
    # written at once for readers, but not fsynced: the next sync is due in an hour
    _wait_until(lambda: len(store.load_curve(writer.run_id, "batches")) == 500, "500 rows")
    assert fsyncs == []
    batches.flush()
    assert fsyncs == [path.stat().st_size]
    assert fsyncs[0] == header + _size_of_rows(columns, 0, 500)
    batches.flush()  # nothing new: no fsync
    assert len(fsyncs) == 1
    batches.close()
    batches.close()
    writer.close()
    pd.testing.assert_frame_equal(
        store.load_curve(writer.run_id, "batches"), pd.DataFrame(columns), check_exact=True
    )


def test_flush_without_sync_returns_once_written_and_leaves_the_fsync_to_later(
    tmp_path, monkeypatch
):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    fsyncs = _record_fsyncs(monkeypatch)
    columns = random_columns(300, 4)
    batches = runs.BackgroundBatchWriter(writer, sync_seconds=3600.0)
    batches.put(columns)
    batches.flush(sync=False)
    assert len(store.load_curve(writer.run_id, "batches")) == 300  # in the file at return
    assert fsyncs == []  # the next sync is due in an hour
    batches.flush()
    assert len(fsyncs) == 1
    batches.close()
    writer.close()


def _size_of_rows(columns, start, stop):
    return len(runs._batch_lines(runs._batch_arrays(columns), start, stop))


def test_lines_reach_the_disk_without_flush_when_no_more_come(tmp_path, monkeypatch):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    fsyncs = _record_fsyncs(monkeypatch)
    with runs.BackgroundBatchWriter(writer, sync_seconds=0.05) as batches:
        for k in range(3):
            batches.put(random_columns(10, k))
        _wait_until(lambda: fsyncs[-1:] == [(writer.path / "batches.csv").stat().st_size], "sync")
    writer.close()
    assert len(store.load_curve(writer.run_id, "batches")) == 30


def test_put_checks_and_copies_its_columns_and_refuses_after_close(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)
    columns = random_columns(5, 0)
    expected = pd.DataFrame(columns).copy()
    with runs.BackgroundBatchWriter(writer) as batches:
        with pytest.raises(RunStoreError, match="missing \\['loss'\\]"):
            batches.put({c: v for c, v in columns.items() if c != "loss"})
        batches.put(columns)
        for values in columns.values():
            values[:] = 0  # the caller reuses its buffers at once
    with pytest.raises(RunStoreError, match="closed"):
        batches.put(columns)
    batches.flush()  # nothing left: returns
    writer.close()
    pd.testing.assert_frame_equal(
        store.load_curve(writer.run_id, "batches"), expected, check_exact=True
    )


def test_an_error_in_the_thread_is_raised_by_the_next_call(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("w", CONFIG, ENVIRONMENT)

    def disk_full(columns, **kwargs):
        raise OSError(28, "No space left on device")

    writer.append_batch_columns = disk_full
    batches = runs.BackgroundBatchWriter(writer)
    batches.put(random_columns(3, 0))  # returns: the failure comes later
    message = f"writing the batches of run {writer.run_id} failed: OSError: .*No space left"
    with pytest.raises(RunStoreError, match=message) as info:
        batches.flush()
    assert isinstance(info.value.__cause__, OSError)
    with pytest.raises(RunStoreError, match=message):
        batches.put(random_columns(3, 1))  # and every call after it
    batches.close()  # already reported: close only ends the thread
    assert not batches._thread.is_alive()

    # a failure first seen by close: close raises it (here the RunWriter was closed first)
    other = store.create("other", CONFIG, ENVIRONMENT)
    batches = runs.BackgroundBatchWriter(other)
    other.close()
    batches.put(random_columns(3, 0))
    with pytest.raises(RunStoreError, match=r"failed: the writer of run .* is closed"):
        batches.close()
    writer.close()


# --- stop requests and deleting a live run ---------------------------------------------------


def test_a_stop_request_reaches_the_writer_through_the_folder(tmp_path):
    store = RunStore(tmp_path)
    ended = store.create("ended", {"epochs": 1}, {})
    ended.update(status="completed")
    ended.close()
    assert not store.request_stop(ended.run_id)
    assert not (tmp_path / ended.run_id / "stop-requested").exists()
    writer = store.create("live", {"epochs": 1}, {})
    assert not writer.stop_requested
    assert store.request_stop(writer.run_id)
    assert writer.stop_requested
    request = json.loads((tmp_path / writer.run_id / "stop-requested").read_text())
    assert request["pid"] == os.getpid()
    writer.close()


def test_deleting_a_live_run_is_refused_unless_forced(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("live", {"epochs": 1}, {})
    writer.append_batches(batch_rows(0, 3))
    with pytest.raises(runs.RunIsLiveError, match="still training"):
        store.delete(writer.run_id)
    writer.append_batches(batch_rows(0, 2, start_step=3))  # untouched, still writable
    assert len(store.load(writer.run_id).batches) == 5
    # forced: asked to stop, but this writer never lets go
    with pytest.raises(runs.RunIsLiveError, match=r"was still training after 0\.3 s"):
        store.delete(writer.run_id, force=True, wait_s=0.3)
    assert writer.stop_requested
    assert len(store.load(writer.run_id).batches) == 5

    def worker():  # lets go once asked, as a training worker does after its chunk
        while not writer.stop_requested:
            time.sleep(0.01)
        writer.update(status="stopped")
        writer.close()

    stopping = threading.Thread(target=worker)
    stopping.start()
    store.delete(writer.run_id, force=True, wait_s=10)  # waits for the writer to let go
    stopping.join()
    assert store.list_runs() == []
    assert not (tmp_path / writer.run_id).exists()
