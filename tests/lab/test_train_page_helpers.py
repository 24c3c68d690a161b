"""The engine parts behind the Train page: uploads, previews, the plan and live progress."""

import hashlib
import math

import numpy as np
import pytest

from keras_sgdplus.lab import datasets, live, preview_charts, training, uploads
from keras_sgdplus.lab.runs import RunStore

# --- the plan: training-set size and steps ----------------------------------------------------


@pytest.mark.parametrize(("name", "split"), [("iris", 0.2), ("wine", 0.33), ("digits", 0.05)])
def test_training_size_is_what_the_loader_keeps(name, split):
    data = datasets.load_dataset(name, validation_split=split)
    assert datasets.training_size(data.info.size, split) == len(data.x_train)
    assert len(data.x_train) + len(data.x_val) == data.info.size


@pytest.mark.parametrize(
    ("n", "batch_size", "epochs", "expected"),
    [(1437, 32, 20, 45 * 20), (100, None, 7, 7), (10, 1, 3, 30), (64, 32, 2, 4), (65, 32, 1, 3)],
)
def test_planned_steps_is_ceil_of_n_over_batch_size_per_epoch(n, batch_size, epochs, expected):
    assert training.planned_steps(n, batch_size, epochs) == expected
    assert expected == math.ceil(n / (batch_size or n)) * epochs


# --- uploads ----------------------------------------------------------------------------------


def test_upload_is_saved_once_by_content(tmp_path):
    data = b"a,b,target\n1,2,0\n3,4,1\n"
    first = uploads.save_upload("mine.CSV", data, tmp_path / "uploads")
    again = uploads.save_upload("other name.csv", data, tmp_path / "uploads")
    assert first == again
    assert first.read_bytes() == data
    assert first.suffix == ".csv"
    assert first.stem == hashlib.sha256(data).hexdigest()[:16]
    assert [p.name for p in (tmp_path / "uploads").iterdir()] == [first.name]  # no temp left
    assert uploads.csv_columns(first) == ["a", "b", "target"]


@pytest.mark.parametrize(
    ("file_name", "data", "message"),
    [
        ("x.exe", b"MZ", "file_name='x.exe'"),
        ("x.txt", b"a,b", ".csv or .npz"),
        ("x.npz", b"", "empty"),
    ],
)
def test_bad_uploads_are_refused_with_the_reason(tmp_path, file_name, data, message):
    with pytest.raises(datasets.DatasetError, match=message.replace(".", r"\.")):
        uploads.save_upload(file_name, data, tmp_path)
    assert not any(tmp_path.iterdir())


@pytest.mark.parametrize("content", [b"only_one_column\n1\n2\n", b"\xff\xfe\x00garbage\x00", b""])
def test_csv_columns_of_a_bad_file_is_a_dataset_error(tmp_path, content):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(datasets.DatasetError, match=r"bad\.csv"):
        uploads.csv_columns(path)


# --- previews ---------------------------------------------------------------------------------


def test_scatter_preview_holds_every_point_with_its_class():
    x, y = datasets.generate_2d("xor", 50, 0.1, seed=3)
    spec = preview_charts.scatter_preview(x, y, "binary").to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) == 50
    np.testing.assert_allclose([[r["x1"], r["x2"]] for r in rows], x)
    assert [r["target"] for r in rows] == [str(int(v)) for v in y]
    assert spec["encoding"]["color"]["type"] == "nominal"


def test_scatter_preview_colors_a_regression_target_by_value():
    x, y = datasets.generate_2d("plane", 30, 0.1, seed=0)
    spec = preview_charts.scatter_preview(x, y, "regression").to_dict()
    assert spec["encoding"]["color"]["type"] == "quantitative"
    with pytest.raises(ValueError, match="shape"):
        preview_charts.scatter_preview(np.zeros((3, 3)), np.zeros(3), "binary")


def test_schedule_preview_keeps_first_and_last_step_and_at_most_2000_points():
    rates = 0.1 / (1 + 1e-3 * np.arange(50_001))
    spec = preview_charts.schedule_preview(rates, steps_per_epoch=1000).to_dict()
    rows = next(iter(spec["datasets"].values()))
    assert len(rows) <= preview_charts.PREVIEW_POINTS
    assert rows[0]["step"] == 0
    assert rows[-1]["step"] == 50_000
    for row in rows:
        assert row["learning_rate"] == pytest.approx(0.1 / (1 + 1e-3 * row["step"]))
        assert row["epoch"] == pytest.approx(row["step"] / 1000)
    short = preview_charts.schedule_preview(np.array([0.5, 0.25, 0.125])).to_dict()
    assert [r["learning_rate"] for r in next(iter(short["datasets"].values()))] == [
        0.5,
        0.25,
        0.125,
    ]


# --- live runs and progress -------------------------------------------------------------------


def test_newest_live_run_is_the_newest_run_a_writer_holds(tmp_path):
    store = RunStore(tmp_path)
    assert live.newest_live_run(store) is None
    older = store.create("older", {"epochs": 2}, {})
    newer = store.create("newer", {"epochs": 2}, {})
    done = store.create("done", {"epochs": 2}, {})
    done.update(status="completed")
    done.close()
    assert live.live_runs(store) == [newer.run_id, older.run_id]
    assert live.newest_live_run(store) == newer.run_id
    newer.close()  # a "running" run without a writer (its worker was killed) is not live
    assert live.newest_live_run(store) == older.run_id
    older.close()
    assert live.newest_live_run(store) is None


def test_progress_is_steps_done_over_the_planned_steps():
    meta = {"config": {"epochs": 4}, "summary": {"total_steps": 8, "steps_per_epoch": 2}}
    fifth = {"step": 4.0, "epoch": 2.0, "batch": 0.0, "loss": 0.5}  # steps count from 0
    progress = live.progress_of(meta, fifth)
    assert progress.fraction == 5 / 8
    assert progress.text == "Epoch 3 of 4 · step 5 of 8 · last batch loss 0.5"
    assert live.progress_of(meta, None).fraction == 0.0
    unknown = live.progress_of({"config": {"epochs": 4}, "summary": {}}, fifth)
    assert unknown.fraction is None
    assert "Loading" in unknown.text
    done = live.progress_of(meta, {**fifth, "step": 8.0})
    assert done.fraction == 1.0
    assert done.text.startswith("Epoch 4 of 4")


def test_progress_reads_the_last_batch_written_from_the_end_of_the_file(tmp_path):
    store = RunStore(tmp_path)
    writer = store.create("run", {"epochs": 2}, {})
    assert store.last_row(writer.run_id, "batches") is None
    rows = [
        {
            "step": i,
            "epoch": i // 5000,
            "batch": i % 5000,
            "loss": 1 / (i + 1),
            "learning_rate": 0.1,
            "batch_size": 1,
            "samples_seen": i + 1,
            "wall_time": i * 1e-3,
            "grad_norm": 2.0,
        }
        for i in range(9000)
    ]
    writer.append_batches(rows[:1])
    assert store.last_row(writer.run_id, "batches") == pytest.approx(rows[0])
    writer.append_batches(rows[1:])  # far past the 64 KiB read from the end
    with open(store.path_of(writer.run_id) / "batches.csv", "a") as f:
        f.write("9000,1,4000,0.5")  # a line still being written is not read
    assert store.last_row(writer.run_id, "batches") == pytest.approx(rows[-1])
    assert store.last_row(writer.run_id, "batches") == pytest.approx(
        store.load_curve(writer.run_id, "batches").iloc[-1].to_dict()
    )
    assert store.last_row(writer.run_id, "epochs") is None
    writer.close()


@pytest.mark.parametrize(
    ("n_batches", "cpu", "seconds"),
    [
        (10, 0.0, 2),
        (10, 0.1, 2),
        (10, 0.101, 4),
        (10, 0.2, 4),
        (10, 0.35, 8),
        (10, 5.0, 8),
        (300_000, 0.0, 2),
        (300_001, 0.0, 4),
        (1_000_000, 0.01, 8),
        (10_000_000, 0.0, 8),
    ],
)
def test_the_charts_refresh_less_often_as_a_run_grows_or_a_refresh_costs_more(
    n_batches, cpu, seconds
):
    # the first of 2, 4, 8 s at least max(n / 150k, cpu / 0.05): a refresh takes at most 5%
    # of its interval in the server's CPU
    assert live.refresh_seconds(n_batches, refresh_cpu_seconds=cpu) == seconds
    needed = max(n_batches / 150_000, cpu / 0.05)
    assert seconds == next((s for s in (2, 4, 8) if needed <= s + 1e-12), 8)
