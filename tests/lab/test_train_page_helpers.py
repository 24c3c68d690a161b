"""The engine parts behind the Train page: uploads, previews, the plan and live progress."""

import hashlib
import io
import math
import tracemalloc
import zipfile

import numpy as np
import pytest

from keras_sgdplus.lab import datasets, live, preview_charts, training, uploads
from keras_sgdplus.lab.datasets import DatasetError
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


# --- upload limits ----------------------------------------------------------------------------


def zip_bomb(n_bytes: int) -> bytes:
    """An NPZ whose one float32 array of zeros takes `n_bytes` decompressed, written in
    chunks (never held whole): about a thousandth of that compressed."""
    out = io.BytesIO()
    count = n_bytes // 4
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (count,)}
    )
    chunk = bytes(64 << 20)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED, compresslevel=1) as archive:
        with archive.open("x.npy", "w", force_zip64=True) as member:
            member.write(header.getvalue())
            for start in range(0, 4 * count, len(chunk)):
                member.write(chunk[: min(len(chunk), 4 * count - start)])
        archive.writestr("y.npy", _npy(np.zeros(3, dtype="int64")))
    return out.getvalue()


def _npy(array: np.ndarray) -> bytes:
    out = io.BytesIO()
    np.save(out, array)
    return out.getvalue()


def test_an_npz_bomb_is_refused_from_its_zip_directory_before_it_expands(tmp_path):
    bomb = zip_bomb(uploads.MAX_NPZ_BYTES + (64 << 20))
    assert len(bomb) < uploads.MAX_NPZ_BYTES // 200  # small to upload, huge once expanded
    tracemalloc.start()
    try:
        with pytest.raises(DatasetError, match=r"bomb\.npz would take [\d,]+ bytes once"):
            uploads.save_upload("bomb.npz", bomb, tmp_path / "uploads")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 16 << 20  # nothing was decompressed (the bomb expands past 1 GiB)
    assert not (tmp_path / "uploads").exists() or not any((tmp_path / "uploads").iterdir())


def test_an_npz_whose_headers_declare_huge_arrays_is_refused(tmp_path):
    """NumPy allocates what a .npy header declares before reading the member: a few bytes
    that declare 2 GiB are refused by their header."""
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        header, {"descr": "<f4", "fortran_order": False, "shape": (1 << 29,)}
    )
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("x.npy", header.getvalue() + bytes(16))
        archive.writestr("y.npy", _npy(np.zeros(4, dtype="int64")))
    with pytest.raises(DatasetError, match=r"holds arrays of 2,147,483,680 bytes"):
        uploads.check_upload("liar.npz", out.getvalue())
    fine = io.BytesIO()
    np.savez_compressed(fine, x=np.ones((50, 3)), y=np.arange(50))
    uploads.check_upload("fine.npz", fine.getvalue())  # an ordinary file passes


def test_csv_uploads_have_row_and_column_limits(tmp_path):
    at_limit = b"a,b\n" + b"1,2\n" * uploads.MAX_CSV_ROWS
    uploads.check_upload("rows.csv", at_limit)
    uploads.check_upload("rows.csv", at_limit.rstrip(b"\n"))  # no final newline: the same rows
    with pytest.raises(DatasetError, match=r"rows\.csv has 1,000,001 rows, more than"):
        uploads.check_upload("rows.csv", at_limit + b"1,2")
    wide = ",".join(f"c{i}" for i in range(uploads.MAX_CSV_COLUMNS + 1)).encode() + b"\n"
    with pytest.raises(DatasetError, match=r"has 10,001 columns, more than the limit of 10,000"):
        uploads.save_upload("wide.csv", wide + b"0," * uploads.MAX_CSV_COLUMNS + b"1\n", tmp_path)
    assert list(tmp_path.iterdir()) == []  # nothing saved
