"""The "Compare runs" page (dashboard/app_pages/compare.py) in Streamlit's AppTest.

Runs are written straight into a temporary store with `RunStore.create` (the `runs_dir`
fixture points $SGDPLUS_RUNS_DIR at it); the page is then checked for what it shows: the runs
table and its filters, unreadable runs, the overlaid curves (the data inside the Vega-Lite
charts against the rows written), the settings diff, and rename, delete and download.
"""

from __future__ import annotations

import io
import json
import math
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from streamlit.runtime.media_file_manager import MediaFileManager
from streamlit.testing.v1 import AppTest

from keras_sgdplus.lab import charts
from keras_sgdplus.lab.config import OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.runs import RunStore, RunWriter

Page = Callable[[str], AppTest]
CORRUPT_META_ID = "20240101-000000-badbad"


# --- writing runs ----------------------------------------------------------------------------


def batch_rows(steps: int, per_epoch: int, scale: float, lr: float) -> list[dict]:
    return [
        {
            "step": step,
            "epoch": step // per_epoch,
            "batch": step % per_epoch,
            "loss": scale * (2.0 / (1 + 0.2 * step) + 0.1 * math.sin(step)),
            "learning_rate": lr,
            "batch_size": 16,
            "samples_seen": 16 * (step + 1),
            "wall_time": 0.01 * (step + 1),
            "grad_norm": scale / (1 + 0.1 * step),
        }
        for step in range(steps)
    ]


def epoch_rows(epochs: int, per_epoch: int, scale: float) -> list[dict]:
    return [
        {
            "epoch": epoch,
            "loss": scale / (epoch + 1),
            "wall_time": 0.01 * per_epoch * (epoch + 1),
            "samples_seen": 16 * per_epoch * (epoch + 1),
            "accuracy": 0.5 + 0.1 * epoch,
            "val_loss": 1.1 * scale / (epoch + 1),
            "val_accuracy": 0.45 + 0.1 * epoch,
        }
        for epoch in range(epochs)
    ]


class Written:
    """A run written into the store, with the rows that went into it."""

    def __init__(self, writer: RunWriter, batches: list[dict], epochs: list[dict]) -> None:
        self.writer = writer
        self.run_id = writer.run_id
        self.batches = pd.DataFrame(batches)
        self.epochs = pd.DataFrame(epochs)


def write_run(
    store: RunStore,
    name: str,
    config: TrainingConfig | None = None,
    *,
    epochs: int = 3,
    per_epoch: int = 5,
    scale: float = 1.0,
    status: str = "completed",
    error: str | None = None,
    keep_open: bool = False,
) -> Written:
    config = config or TrainingConfig()
    writer = store.create(name, config.to_dict(), {"python": "3", "device": "CPU"})
    batches = batch_rows(epochs * per_epoch, per_epoch, scale, config.optimizer.learning_rate)
    writer.append_batches(batches)
    rows = epoch_rows(epochs, per_epoch, scale)
    for row in rows:
        writer.append_epoch(row)
    if status != "running":
        summary = {
            "epochs_completed": epochs,
            "final_loss": rows[-1]["loss"],
            "best_loss": min(r["loss"] for r in rows),
            "final_accuracy": rows[-1]["accuracy"],
            "best_accuracy": max(r["accuracy"] for r in rows),
            "elapsed_s": 1.5,
            "samples_per_s": 800.0,
        }
        writer.update(status=status, summary=summary, error=error)
    if not keep_open:
        writer.close()
    return Written(writer, batches, rows)


def corrupt_meta_run(root: Path) -> str:
    """A run folder whose meta.json is garbage."""
    folder = root / CORRUPT_META_ID
    folder.mkdir()
    (folder / "meta.json").write_text("{not json at all", encoding="utf-8")
    return CORRUPT_META_ID


def garble_last_line(store: RunStore, run_id: str) -> None:
    """Ends the run's batches.csv with a line that is not numbers (caught by the listing)."""
    with open(store.path_of(run_id) / "batches.csv", "a", encoding="utf-8") as f:
        f.write("this,is,not,a,row,of,numbers,!\n")


def garble_middle_line(store: RunStore, run_id: str) -> None:
    """Breaks a line inside batches.csv (the listing checks only the last; loading fails)."""
    path = store.path_of(run_id) / "batches.csv"
    lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
    lines[2] = "1,2\n"
    path.write_text("".join(lines), encoding="utf-8")


@pytest.fixture
def store(runs_dir: Path) -> RunStore:
    return RunStore(runs_dir)


@pytest.fixture
def two_runs(store: RunStore) -> tuple[Written, Written]:
    """An older plain-SGD run and a newer Nesterov-momentum one (the newest listed first)."""
    plain = write_run(store, "plain sgd", TrainingConfig(), scale=1.0)
    fast = write_run(
        store,
        "nesterov",
        TrainingConfig(optimizer=OptimizerSpec(momentum=0.9, nesterov=True)),
        scale=0.5,
    )
    return plain, fast


# --- reading the page ------------------------------------------------------------------------


def no_failures(at: AppTest) -> None:
    assert not at.exception, [e.value for e in at.exception]


def runs_table(at: AppTest) -> pd.DataFrame:
    (table,) = [d for d in at.dataframe if "status" in d.value.columns]
    return table.value


def settings_table(at: AppTest):
    (table,) = [d for d in at.dataframe if "differs" in d.value.columns]
    return table


def label_of(name: str, run_id: str) -> str:
    return f"{name} ({run_id[-6:]})"


def chart_data(at: AppTest) -> dict[str, pd.DataFrame]:
    """The data inside each Vega-Lite chart on the page, by chart title."""
    out = {}
    for element in at.get("vega_lite_chart"):
        spec = json.loads(element.proto.spec)
        frames = {
            dataset.name: pa.ipc.open_stream(dataset.data.data).read_pandas()
            for dataset in element.proto.datasets
        }
        out[spec["title"]] = frames[spec["data"]["name"]].reset_index(drop=True)
    return out


def button_keys(at: AppTest) -> set[str | None]:
    return {b.key for b in at.button}


def download_labels(at: AppTest) -> list[str]:
    return [b.proto.label for b in at.get("download_button")]


def errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


# --- the tests -------------------------------------------------------------------------------


def test_empty_store_points_to_the_train_page(page: Page):
    at = page("compare")
    no_failures(at)
    assert not errors(at)
    (info,) = at.info
    assert "No saved runs yet" in info.value
    assert "Train" in info.value
    assert not at.dataframe


def test_table_lists_every_run_with_unreadable_ones_and_their_reasons(
    page: Page, store: RunStore, runs_dir: Path
):
    ok = write_run(store, "fine", TrainingConfig(dataset="circle"))
    failed = write_run(store, "crashed", status="failed", error="ValueError: the data is empty")
    broken_csv = write_run(store, "broken csv")
    garble_last_line(store, broken_csv.run_id)
    bad_meta = corrupt_meta_run(runs_dir)

    at = page("compare")
    no_failures(at)
    table = runs_table(at).set_index("run_id")
    assert set(table.index) == {ok.run_id, failed.run_id, broken_csv.run_id, bad_meta}
    assert table.loc[ok.run_id, "name"] == "fine"
    assert table.loc[ok.run_id, "status"] == "completed"
    assert table.loc[ok.run_id, "dataset"] == "circle"
    assert table.loc[failed.run_id, "status"] == "failed"
    assert table.loc[failed.run_id, "reason"] == "ValueError: the data is empty"
    assert table.loc[bad_meta, "status"] == "unreadable"
    assert "meta.json is not valid JSON" in table.loc[bad_meta, "reason"]
    assert table.loc[broken_csv.run_id, "status"] == "unreadable"
    assert "batches.csv ends with a garbled line" in table.loc[broken_csv.run_id, "reason"]
    # results are numbers (so the column sorts), as written
    assert table.loc[ok.run_id, "best_loss"] == pytest.approx(ok.epochs["loss"].min())

    (warning,) = at.warning
    assert bad_meta in warning.value
    assert broken_csv.run_id in warning.value
    assert "meta.json is not valid JSON" in warning.value
    # the readable runs are still drawn; only readable runs can be overlaid
    overlay = at.multiselect(key="compare-overlay")
    assert set(overlay.options) == {label_of("fine", ok.run_id), label_of("crashed", failed.run_id)}
    assert "Loss per mini-batch" in chart_data(at)


def test_a_run_whose_config_does_not_parse_is_listed_unreadable_with_the_reason(
    page: Page, store: RunStore
):
    good = write_run(store, "good")
    edited = write_run(store, "edited by hand")
    meta_file = store.path_of(edited.run_id) / "meta.json"
    meta = json.loads(meta_file.read_text(encoding="utf-8"))
    meta["config"]["optimizer"]["momentum"] = 1.5
    meta_file.write_text(json.dumps(meta), encoding="utf-8")

    at = page("compare")
    no_failures(at)
    table = runs_table(at).set_index("run_id")
    assert table.loc[good.run_id, "status"] == "completed"
    assert table.loc[edited.run_id, "status"] == "unreadable"
    reason = "meta.json has a bad config: `momentum` must be in [0, 1]. Received: momentum=1.5"
    assert reason in table.loc[edited.run_id, "reason"]
    (warning,) = at.warning
    assert edited.run_id in warning.value
    assert reason in warning.value
    assert at.multiselect(key="compare-overlay").options == [label_of("good", good.run_id)]


def test_a_run_broken_inside_its_csv_gives_an_error_not_a_traceback(page: Page, store: RunStore):
    good = write_run(store, "good")
    bad = write_run(store, "bad inside")
    garble_middle_line(store, bad.run_id)

    at = page("compare")
    no_failures(at)
    assert at.multiselect(key="compare-overlay").value == [bad.run_id, good.run_id]
    (error,) = [e for e in errors(at) if "cannot be shown" in e]
    assert label_of("bad inside", bad.run_id) in error
    assert "garbled" in error
    data = chart_data(at)["Loss per mini-batch"]
    assert set(data["run"]) == {label_of("good", good.run_id)}


def test_only_unreadable_runs_still_render(page: Page, runs_dir: Path):
    bad_meta = corrupt_meta_run(runs_dir)
    at = page("compare")
    no_failures(at)
    assert list(runs_table(at)["run_id"]) == [bad_meta]
    assert any("nothing to draw" in i.value for i in at.info)
    assert at.selectbox(key="compare-action-run").value == bad_meta
    assert any("cannot be read" in e for e in errors(at))


def test_filters_narrow_the_table(page: Page, store: RunStore, runs_dir: Path):
    a = write_run(store, "Momentum 0.9", TrainingConfig(dataset="circle"))
    b = write_run(store, "plain", TrainingConfig(optimizer=OptimizerSpec(name="adam")))
    c = write_run(store, "momentum 0.5", status="stopped")
    bad = corrupt_meta_run(runs_dir)
    at = page("compare")
    assert set(runs_table(at)["run_id"]) == {a.run_id, b.run_id, c.run_id, bad}

    at.text_input(key="compare-filter-name").input("MOMENTUM").run()
    assert set(runs_table(at)["run_id"]) == {a.run_id, c.run_id}
    at.text_input(key="compare-filter-name").input("").run()

    status = at.multiselect(key="compare-filter-status")
    assert status.options == ["completed", "stopped", "unreadable"]
    status.select("stopped").select("unreadable").run()
    assert set(runs_table(at)["run_id"]) == {c.run_id, bad}
    at.multiselect(key="compare-filter-status").set_value([]).run()

    at.multiselect(key="compare-filter-dataset").select("circle").run()
    assert list(runs_table(at)["run_id"]) == [a.run_id]
    at.multiselect(key="compare-filter-dataset").set_value([]).run()

    at.multiselect(key="compare-filter-optimizer").select("adam").run()
    assert list(runs_table(at)["run_id"]) == [b.run_id]
    no_failures(at)
    assert any("1 of 4 runs shown" in c.value for c in at.caption)


def test_default_overlay_is_the_newest_two_runs(page: Page, store: RunStore):
    oldest = write_run(store, "oldest")
    middle = write_run(store, "same name")
    newest = write_run(store, "same name")
    at = page("compare")
    overlay = at.multiselect(key="compare-overlay")
    assert overlay.value == [newest.run_id, middle.run_id]
    # runs of the same name get distinct labels
    assert overlay.options == [
        label_of("same name", newest.run_id),
        label_of("same name", middle.run_id),
        label_of("oldest", oldest.run_id),
    ]
    assert len(set(overlay.options)) == 3


def test_default_overlay_of_one_run_is_that_run(page: Page, store: RunStore):
    only = write_run(store, "only")
    at = page("compare")
    no_failures(at)
    assert at.multiselect(key="compare-overlay").value == [only.run_id]
    assert set(chart_data(at)["Loss per mini-batch"]["run"]) == {label_of("only", only.run_id)}


def test_charts_hold_the_curves_written(page: Page, two_runs):
    plain, fast = two_runs
    at = page("compare")
    no_failures(at)
    labels = {label_of("plain sgd", plain.run_id): plain, label_of("nesterov", fast.run_id): fast}
    data = chart_data(at)
    assert set(data) == {
        "Loss per mini-batch",
        "Loss per epoch",
        "Learning rate per step",
        "Accuracy per epoch",
    }

    # the mini-batch view: each run's own batch losses, step by step, as written
    batch = data["Loss per mini-batch"]
    for label, run in labels.items():
        drawn = batch[batch["run"] == label]
        assert drawn["step"].tolist() == run.batches["step"].tolist()
        assert drawn["loss"].tolist() == pytest.approx(run.batches["loss"].tolist())
    # and the same as the chart builder makes of the rows written, with the page's options
    smoothing = float(at.slider(key="compare-smooth").value)  # type: ignore[arg-type]
    expected = charts.batch_curve_data(
        {label: run.batches for label, run in labels.items()}, "step", smoothing
    )
    pd.testing.assert_frame_equal(
        batch.sort_values(["run", "step"]).reset_index(drop=True),
        expected.sort_values(["run", "step"]).reset_index(drop=True),
        check_dtype=False,
    )

    # the epoch view: train and validation loss per epoch, x = steps at the epoch's end
    epoch = data["Loss per epoch"]
    for label, run in labels.items():
        train = epoch[(epoch["run"] == label) & (epoch["split"] == "train")]
        validation = epoch[(epoch["run"] == label) & (epoch["split"] == "validation")]
        assert train["value"].tolist() == pytest.approx(run.epochs["loss"].tolist())
        assert validation["value"].tolist() == pytest.approx(run.epochs["val_loss"].tolist())
        assert train["x"].tolist() == [5.0, 10.0, 15.0]
    accuracy = data["Accuracy per epoch"]
    drawn = accuracy[
        (accuracy["run"] == label_of("plain sgd", plain.run_id)) & (accuracy["split"] == "train")
    ]
    assert drawn["value"].tolist() == pytest.approx(plain.epochs["accuracy"].tolist())

    # the learning rate of each step
    rate = data["Learning rate per step"]
    for label, run in labels.items():
        drawn = rate[rate["run"] == label]
        assert drawn["learning_rate"].tolist() == pytest.approx(run.batches["learning_rate"])


def test_overlay_follows_the_choice_and_the_x_axis(page: Page, two_runs):
    plain, _fast = two_runs
    at = page("compare")
    at.multiselect(key="compare-overlay").set_value([plain.run_id]).run()
    at.selectbox(key="compare-x").set_value("samples_seen").run()
    no_failures(at)
    batch = chart_data(at)["Loss per mini-batch"]
    assert set(batch["run"]) == {label_of("plain sgd", plain.run_id)}
    assert batch["x"].tolist() == plain.batches["samples_seen"].astype(float).tolist()
    assert settings_table(at).value.columns.tolist() == [
        label_of("plain sgd", plain.run_id),
        "differs",
    ]


def test_image_downloads_are_offered_for_the_charts(page: Page, two_runs):
    at = page("compare")
    labels = download_labels(at)
    assert labels.count("SVG") == 4
    assert labels.count("PNG") == 4


def test_settings_diff_marks_exactly_the_differing_settings(page: Page, two_runs):
    plain, fast = two_runs
    at = page("compare")
    no_failures(at)
    table = settings_table(at)
    diff = table.value
    assert diff.columns.tolist() == [
        label_of("nesterov", fast.run_id),
        label_of("plain sgd", plain.run_id),
        "differs",
    ]
    differing = {"optimizer.momentum", "optimizer.nesterov"}
    assert set(diff.index[diff["differs"]]) == differing
    assert diff.loc["optimizer.momentum"].tolist()[:2] == ["0.9", "0"]
    assert diff.loc["optimizer.nesterov"].tolist()[:2] == ["True", "False"]
    assert {"dataset", "batch_size", "optimizer.learning_rate"} <= set(diff.index)

    # the highlight in the Styler's CSS sits on exactly those rows
    styles = table.proto.arrow_data.styler.styles
    rows = {int(n) for n in re.findall(r"_row(\d+)_col\d+", styles)}
    assert {diff.index[r] for r in rows} == differing

    at.toggle(key="compare-only-differ").set_value(True).run()
    assert set(settings_table(at).value.index) == differing


def test_rename_changes_the_name_on_disk(page: Page, store: RunStore, two_runs):
    plain, fast = two_runs
    at = page("compare")
    assert at.selectbox(key="compare-action-run").value == fast.run_id
    at.selectbox(key="compare-action-run").set_value(plain.run_id).run()
    at.text_input(key=f"compare-rename-{plain.run_id}").input("  vanilla SGD ").run()
    at.button(key="compare-rename").click().run()
    no_failures(at)
    assert store.load_meta(plain.run_id)["name"] == "vanilla SGD"
    assert store.load_meta(fast.run_id)["name"] == "nesterov"
    assert any("vanilla SGD" in s.value for s in at.success)
    table = runs_table(at).set_index("run_id")
    assert table.loc[plain.run_id, "name"] == "vanilla SGD"


def test_a_bad_name_is_an_error_and_changes_nothing(page: Page, store: RunStore, two_runs):
    _plain, fast = two_runs
    at = page("compare")
    at.text_input(key=f"compare-rename-{fast.run_id}").input("   ").run()
    at.button(key="compare-rename").click().run()
    no_failures(at)
    (error,) = [e for e in errors(at) if e.startswith("Not renamed")]
    assert "bad run name" in error
    assert "empty" in error
    at.text_input(key=f"compare-rename-{fast.run_id}").input("x" * 201).run()
    at.button(key="compare-rename").click().run()
    assert any("longer than 200 characters" in e for e in errors(at))
    assert store.load_meta(fast.run_id)["name"] == "nesterov"


def test_delete_asks_first_and_removes_only_that_run(
    page: Page, store: RunStore, runs_dir: Path, two_runs
):
    plain, fast = two_runs
    bad = corrupt_meta_run(runs_dir)
    at = page("compare")
    at.selectbox(key="compare-action-run").set_value(plain.run_id).run()

    at.button(key="compare-delete").click().run()
    no_failures(at)
    assert any("cannot be undone" in w.value for w in at.warning)
    assert store.path_of(plain.run_id).is_dir()  # nothing deleted yet

    at.button(key="compare-delete-no").click().run()
    assert store.path_of(plain.run_id).is_dir()
    assert "compare-delete-yes" not in button_keys(at)
    assert not any("cannot be undone" in w.value for w in at.warning)

    at.button(key="compare-delete").click().run()
    at.button(key="compare-delete-yes").click().run()
    no_failures(at)
    assert not (runs_dir / plain.run_id).exists()
    assert store.load_meta(fast.run_id)["name"] == "nesterov"
    assert (runs_dir / bad / "meta.json").is_file()
    assert set(runs_table(at)["run_id"]) == {fast.run_id, bad}
    assert any("Deleted run" in s.value for s in at.success)
    assert at.multiselect(key="compare-overlay").value == [fast.run_id]


def test_deleting_the_only_run_a_filter_chose_keeps_the_page_working(page: Page, store: RunStore):
    keep = write_run(store, "digits run")
    circle = write_run(store, "circle run", TrainingConfig(dataset="circle"))
    at = page("compare")
    at.multiselect(key="compare-filter-dataset").select("circle").run()
    assert list(runs_table(at)["run_id"]) == [circle.run_id]
    at.selectbox(key="compare-action-run").set_value(circle.run_id).run()
    at.button(key="compare-delete").click().run()
    at.button(key="compare-delete-yes").click().run()
    no_failures(at)
    assert not errors(at)
    assert at.multiselect(key="compare-filter-dataset").value == []
    assert list(runs_table(at)["run_id"]) == [keep.run_id]
    assert at.multiselect(key="compare-overlay").value == [keep.run_id]
    assert at.selectbox(key="compare-action-run").value == keep.run_id


def test_an_unreadable_run_can_be_deleted(page: Page, store: RunStore, runs_dir: Path, two_runs):
    bad = corrupt_meta_run(runs_dir)
    at = page("compare")
    at.selectbox(key="compare-action-run").set_value(bad).run()
    at.button(key="compare-delete").click().run()
    at.button(key="compare-delete-yes").click().run()
    no_failures(at)
    assert not (runs_dir / bad).exists()
    assert len(store.list_runs()) == 2
    assert not at.warning


def test_csv_downloads_for_the_chosen_run(page: Page, two_runs, monkeypatch: pytest.MonkeyPatch):
    plain, _fast = two_runs
    # Spy on the deferred downloads the page registers, to read what a click would download.
    deferred: dict[str, Callable] = {}
    add_deferred = MediaFileManager.add_deferred

    def spy(self, data_callable, *args, **kwargs):
        file_id = add_deferred(self, data_callable, *args, **kwargs)
        deferred[file_id] = data_callable
        return file_id

    monkeypatch.setattr(MediaFileManager, "add_deferred", spy)
    at = page("compare")
    at.selectbox(key="compare-action-run").set_value(plain.run_id).run()
    no_failures(at)
    buttons = {b.proto.label: b.proto for b in at.get("download_button")}
    assert {"Batches CSV", "Epochs CSV"} <= set(buttons)
    batches = deferred[buttons["Batches CSV"].deferred_file_id]()
    epochs = deferred[buttons["Epochs CSV"].deferred_file_id]()
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(batches)), plain.batches)
    pd.testing.assert_frame_equal(pd.read_csv(io.StringIO(epochs)), plain.epochs)


def test_failed_run_shows_its_error(page: Page, store: RunStore):
    write_run(store, "ok")
    failed = write_run(store, "boom", status="failed", error="RuntimeError: out of memory")
    at = page("compare")
    at.selectbox(key="compare-action-run").set_value(failed.run_id).run()
    no_failures(at)
    assert any("failed: RuntimeError: out of memory" in e for e in errors(at))


def test_a_live_run_is_shown_live_and_cannot_be_deleted(
    page: Page, store: RunStore, runs_dir: Path
):
    done = write_run(store, "done")
    live = write_run(store, "training", status="running", keep_open=True)
    try:
        assert store.list_runs()[0].active
        at = page("compare")
        no_failures(at)
        table = runs_table(at).set_index("run_id")
        assert bool(table.loc[live.run_id, "live"]) is True
        assert bool(table.loc[done.run_id, "live"]) is False
        assert at.multiselect(key="compare-overlay").value == [live.run_id, done.run_id]
        assert any("Live" in c.value and "update every" in c.value for c in at.caption)
        assert set(chart_data(at)["Loss per mini-batch"]["run"]) == {
            label_of("training", live.run_id),
            label_of("done", done.run_id),
        }

        at.selectbox(key="compare-action-run").set_value(live.run_id).run()
        at.button(key="compare-delete").click().run()
        no_failures(at)
        assert any("still training" in e for e in errors(at))
        assert (runs_dir / live.run_id).is_dir()
        assert "compare-delete-yes" not in button_keys(at)
        # Stop beside Delete: the request the worker polls, whichever host it runs on
        assert not live.writer.stop_requested
        at.button(key="compare-stop").click().run()
        no_failures(at)
        assert live.writer.stop_requested
        assert any("stops after its current chunk" in s.value for s in at.success)
        at.selectbox(key="compare-action-run").set_value(done.run_id).run()
        assert "compare-stop" not in button_keys(at)  # an ended run has nothing to stop
    finally:
        live.writer.close()

    # once the writer is gone the run is no longer live
    at = page("compare")
    assert not any("update every" in c.value for c in at.caption)


def test_continue_extends_a_completed_run_in_a_worker(page: Page, store: RunStore):
    """A run trained 2 epochs, continued to 4 from Compare: the same run goes on from its
    checkpoint (steps numbered on, 4 epoch rows), trained by a real worker."""
    import time

    from keras_sgdplus.lab.config import ModelSpec
    from keras_sgdplus.lab.training import run_training

    config = TrainingConfig(dataset="iris", model=ModelSpec(depth=1, width=8), epochs=2)
    run_id = run_training(config, store)
    first = store.load(run_id)
    at = page("compare")
    at.selectbox(key="compare-action-run").set_value(run_id).run()
    no_failures(at)
    at.number_input(key=f"compare-continue-epochs-{run_id}").set_value(4).run()
    at.button(key="compare-continue").click().run()
    no_failures(at)
    assert any("continues" in s.value for s in at.success)
    deadline = time.monotonic() + 180
    while (
        store.load_meta(run_id)["status"] in ("queued", "running") and time.monotonic() < deadline
    ):
        time.sleep(0.2)
    run = store.load(run_id)
    assert run.meta["status"] == "completed"
    assert run.meta["config"]["epochs"] == 4
    assert run.epochs.epoch.tolist() == [0, 1, 2, 3]
    assert run.batches.step.tolist() == list(range(2 * len(first.batches)))
    pd.testing.assert_frame_equal(run.batches.iloc[: len(first.batches)], first.batches)


def test_a_queued_run_says_so_and_can_be_taken_out_of_the_queue(
    page: Page, store: RunStore, runs_dir: Path
):
    write_run(store, "done")
    waiting = store.create("waits", TrainingConfig().to_dict(), {"queue": "cpu"}, status="queued")
    try:
        at = page("compare")
        no_failures(at)
        at.selectbox(key="compare-action-run").set_value(waiting.run_id).run()
        no_failures(at)
        assert any("is queued" in i.value for i in at.info)
        at.button(key="compare-delete").click().run()
        assert any("still training" in e for e in errors(at))  # a live run is not deleted
        assert (runs_dir / waiting.run_id).is_dir()
        at.button(key="compare-stop").click().run()
        no_failures(at)
        assert waiting.stop_requested  # what its worker polls while it waits
    finally:
        waiting.close()


# --- warnings about runs that went wrong (lab/run_health.py) ----------------------------------


def write_exploded_run(store: RunStore, name: str, *, judged: bool = True) -> Written:
    """A run like issue 11's: online on digits at rate 0.05 and momentum 0.9; its loss jumps
    to millions after 30 steps and its validation accuracy sits at chance (10 balanced
    classes). Its summary is judged as `run_training` judges a run at its end; with
    `judged=False` it is stored as runs were before that (no warnings in its summary)."""
    from keras_sgdplus.lab import run_health, run_summary

    config = TrainingConfig(batch_size=1, optimizer=OptimizerSpec(learning_rate=0.05, momentum=0.9))
    writer = store.create(name, config.to_dict(), {"python": "3", "device": "CPU"})
    steps, per_epoch = 200, 100
    losses = 2.3 * np.random.default_rng(0).uniform(0.5, 1.5, steps)
    losses[30:45] = 7e6
    batches = [
        {
            "step": step,
            "epoch": step // per_epoch,
            "batch": step % per_epoch,
            "loss": float(losses[step]),
            "learning_rate": 0.05,
            "batch_size": 1,
            "samples_seen": step + 1,
            "wall_time": 0.01 * (step + 1),
            "grad_norm": 1.0,
        }
        for step in range(steps)
    ]
    writer.append_batches(batches)
    epochs = [
        {
            "epoch": epoch,
            "loss": float(losses[epoch * per_epoch : (epoch + 1) * per_epoch].mean()),
            "wall_time": 1.0 * (epoch + 1),
            "samples_seen": per_epoch * (epoch + 1),
            "accuracy": 0.1,
            "val_loss": 2.31,
            "val_accuracy": 0.1,
        }
        for epoch in range(2)
    ]
    for row in epochs:
        writer.append_epoch(row)
    summary = run_summary.summarize(
        epochs,
        total_steps=steps,
        steps_per_epoch=per_epoch,
        steps=steps,
        samples_seen=steps,
        elapsed=2.0,
    )
    if judged:
        facts = {
            **run_health.loss_stats(np.arange(steps), losses, steps),
            **run_health.validation_facts(np.repeat(np.arange(10), 36), "multiclass"),
        }
        summary = run_health.judged_summary(summary, config.to_dict(), "completed", facts)
    writer.update(status="completed", summary=summary)
    writer.close()
    return Written(writer, batches, epochs)


def warning_texts(at: AppTest) -> list[str]:
    return [w.value for w in at.warning]


def test_the_table_flags_a_run_that_went_wrong_and_the_chosen_run_says_what_to_try(
    page: Page, store: RunStore, two_runs
):
    plain, fast = two_runs
    bad = write_exploded_run(store, "online at 0.05")
    at = page("compare")
    no_failures(at)
    table = runs_table(at).set_index("run_id")
    assert "The loss exploded" in table.loc[bad.run_id, "warning"]
    assert "At chance level" in table.loc[bad.run_id, "warning"]
    assert table.loc[plain.run_id, "warning"] == ""
    assert table.loc[fast.run_id, "warning"] == ""
    # the newest two are chosen by default: the bad run's warnings, with what to try
    assert at.multiselect(key="compare-overlay").value == [bad.run_id, fast.run_id]
    shown = warning_texts(at)
    label = label_of("online at 0.05", bad.run_id)
    exploded = [w for w in shown if f"{label}: The loss exploded" in w]
    assert len(exploded) == 1
    assert f"{7e6:.3g}" in exploded[0]
    assert "sgdplus lr-find" in exploded[0]
    assert any(f"{label}: At chance level" in w for w in shown)
    assert not any(label_of("nesterov", fast.run_id) in w for w in shown)


def test_a_run_stored_before_warnings_is_judged_from_its_files_when_chosen(
    page: Page, store: RunStore
):
    old = write_exploded_run(store, "old online run", judged=False)
    at = page("compare")
    no_failures(at)
    assert runs_table(at).set_index("run_id").loc[old.run_id, "warning"] == ""  # not judged
    label = label_of("old online run", old.run_id)
    shown = warning_texts(at)
    assert any(f"{label}: The loss exploded" in w for w in shown)
    assert any(f"{label}: At chance level" in w for w in shown)
