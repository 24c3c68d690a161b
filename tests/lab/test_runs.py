"""The saved-runs store: round trips, crash safety, concurrency, corrupted runs, hostile input."""

import datetime as dt
import io
import json
import math
import os
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
    (row,) = store.list_runs()
    assert row.readable, row.reason
    assert (row.status, row.active) == ("running", False)
    run = store.load(run_id)
    pd.testing.assert_frame_equal(run.epochs, pd.DataFrame([epoch_row(e) for e in range(3)]))
    expected = pd.DataFrame([r for e in range(3) for r in batch_rows(e, 4, start_step=4 * e)])
    pd.testing.assert_frame_equal(run.batches.iloc[:12], expected)
    later = run.batches.iloc[12:]
    assert len(later) >= 20
    assert later["step"].tolist() == list(range(12, 12 + len(later)))
    assert (later["epoch"] == 3).all()


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
        lambda p: (p / "batches.csv").open("a").write("what,is,this,0,0,0,0,0\n"),
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
    lines[3] = "0,0,zero,0,0,0,0,0"
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


def test_update_after_delete_is_a_clear_error(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("doomed", {}, {})
    store.delete(writer.run_id)
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
