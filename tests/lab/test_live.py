"""Following a run's curves as they grow: each update reads only what was appended, and the
frame kept always equals a full read of the curve at that moment."""

import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab import live
from keras_sgdplus.lab.runs import BATCH_COLUMNS, BackgroundBatchWriter, RunStore, RunStoreError

CONFIG = {"dataset": "digits", "batch_size": 32}


def columns(start, count, seed):
    rng = np.random.default_rng(seed)
    step = np.arange(start, start + count, dtype=np.int64)
    return {
        "step": step,
        "epoch": step // 100,
        "batch": step % 100,
        "loss": rng.random(count).astype(np.float32).astype(np.float64),
        "learning_rate": 0.1 / (1 + 1e-3 * step),
        "batch_size": np.full(count, 32),
        "samples_seen": 32 * (step + 1),
        "wall_time": step * 1e-4,
        "grad_norm": np.where(rng.random(count) < 0.2, np.nan, rng.random(count)),
    }


def epoch_row(epoch, with_val=True):
    row = {"epoch": epoch, "loss": 1 / (epoch + 2), "wall_time": epoch + 0.5}
    row["samples_seen"] = 3200 * (epoch + 1)
    row["accuracy"] = 0.5 + epoch / 100
    if with_val:
        row["val_loss"] = 2 / (epoch + 3)
    return row


def assert_same(follower, store, run_id, curve):
    pd.testing.assert_frame_equal(
        follower.update(), store.load_curve(run_id, curve), check_exact=True
    )


def test_followers_keep_what_a_full_read_gives_while_a_run_is_written(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("live", CONFIG, {})
    batches = live.CurveFollower(store, writer.run_id, "batches")
    epochs = live.CurveFollower(store, writer.run_id, "epochs")
    assert batches.frame.empty
    assert list(batches.frame.columns) == list(BATCH_COLUMNS)
    assert_same(epochs, store, writer.run_id, "epochs")  # no epochs.csv yet
    rng = np.random.default_rng(0)
    step, sizes = 0, []
    with BackgroundBatchWriter(writer) as sink:
        for epoch in range(6):
            for _ in range(3):
                count = int(rng.integers(0, 150))
                sink.put(columns(step, count, step))
                step += count
                sink.flush()
                assert_same(batches, store, writer.run_id, "batches")
            writer.append_epoch(epoch_row(epoch, with_val=epoch % 2 == 0))
            assert_same(epochs, store, writer.run_id, "epochs")
            sizes.append(batches.offset)
        # a half-written line at the end is left for the next update
        with open(writer.path / "batches.csv", "a") as f:
            f.write("12,0,12,0.5")
        assert_same(batches, store, writer.run_id, "batches")
        assert batches.offset == sizes[-1]
    writer.close()
    assert len(batches.frame) == step
    assert batches.frame["step"].tolist() == list(range(step))
    assert (batches.restarts, epochs.restarts) == (0, 0)
    assert sizes == sorted(sizes)


def test_a_follower_reads_a_replaced_file_from_its_start(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("run", CONFIG, {})
    writer.append_batch_columns(columns(0, 50, 0))
    for epoch in range(3):
        writer.append_epoch(epoch_row(epoch))
    writer.close()
    path = writer.path
    batches = live.CurveFollower(store, writer.run_id, "batches")
    epochs = live.CurveFollower(store, writer.run_id, "epochs")
    assert_same(batches, store, writer.run_id, "batches")
    assert_same(epochs, store, writer.run_id, "epochs")
    # truncated to fewer lines
    text = (path / "batches.csv").read_text()
    (path / "batches.csv").write_text("".join(text.splitlines(keepends=True)[:11]))
    assert_same(batches, store, writer.run_id, "batches")
    assert (len(batches.frame), batches.restarts) == (10, 1)
    # another header of the same length, the same lines and one more: replaced, although a
    # line ends where the last read stopped
    old = (path / "epochs.csv").read_text()
    renamed = old.replace("val_loss", "val_lss2", 1)
    (path / "epochs.csv").write_text(renamed + "3,0.2,3.5,12800,0.53,0.4\n")
    assert_same(epochs, store, writer.run_id, "epochs")
    assert "val_lss2" in epochs.frame.columns
    assert len(epochs.frame) == 4
    assert epochs.restarts == 1


def test_a_follower_knows_what_it_follows(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("run", CONFIG, {})
    follower = live.CurveFollower(store, writer.run_id, "batches")
    assert follower.follows(store, writer.run_id, "batches")
    assert follower.follows(RunStore(tmp_path), writer.run_id, "batches")
    assert not follower.follows(store, writer.run_id, "epochs")
    assert not follower.follows(RunStore(tmp_path / "other"), writer.run_id, "batches")
    writer.close()
    store.delete(writer.run_id)
    with pytest.raises(RunStoreError, match="unknown run id"):
        follower.update()
