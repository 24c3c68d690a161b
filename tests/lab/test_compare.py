"""keras_sgdplus.lab.compare: run labels, the default overlay, the runs-table filters, the
unreadable-run list, the settings-diff styling and the CSV export."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from keras_sgdplus.lab import charts, compare
from keras_sgdplus.lab.runs import RunStore, RunStoreError, RunSummary, exact_float_reading


def summary(run_id: str, name: str = "run", **kwargs) -> RunSummary:
    fields: dict[str, Any] = {"status": "completed", "created_at": "", "config": {}, "summary": {}}
    fields.update(kwargs)
    return RunSummary(run_id=run_id, name=name, **fields)


def unreadable(run_id: str, reason: str = "meta.json is missing") -> RunSummary:
    return summary(run_id, "", status="unreadable", readable=False, reason=reason)


def config(dataset: str = "digits", optimizer: str = "sgdplus", momentum: float = 0.0) -> dict:
    return {
        "dataset": dataset,
        "batch_size": 32,
        "optimizer": {"name": optimizer, "learning_rate": 0.01, "momentum": momentum},
    }


# --- labels and the default overlay --------------------------------------------------------------


def test_short_id_is_the_random_hex():
    assert compare.short_id("20261121-224501-3f9a2c") == "3f9a2c"


def test_labels_tell_runs_of_the_same_name_apart():
    runs = [
        summary("20261121-224501-3f9a2c", "baseline"),
        summary("20261121-224502-00ff11", "baseline"),
        unreadable("20261121-224503-abcdef"),
    ]
    assert compare.run_labels(runs) == {
        "20261121-224501-3f9a2c": "baseline (3f9a2c)",
        "20261121-224502-00ff11": "baseline (00ff11)",
        "20261121-224503-abcdef": "unreadable (abcdef)",
    }


def test_labels_fall_back_to_the_full_id_when_name_and_short_id_agree():
    runs = [summary("20261121-224501-3f9a2c", "a"), summary("20261122-000000-3f9a2c", "a")]
    labels = compare.run_labels(runs)
    assert labels == {
        "20261121-224501-3f9a2c": "a (20261121-224501-3f9a2c)",
        "20261122-000000-3f9a2c": "a (20261122-000000-3f9a2c)",
    }


def test_default_overlay_is_the_newest_readable_runs():
    runs = [
        unreadable("20261121-000004-000004"),
        summary("20261121-000003-000003"),
        summary("20261121-000002-000002"),
        summary("20261121-000001-000001"),
    ]
    assert compare.default_overlay(runs) == ["20261121-000003-000003", "20261121-000002-000002"]
    assert compare.default_overlay(runs[:2]) == ["20261121-000003-000003"]
    assert compare.default_overlay(runs[:1]) == []


def test_unreadable_runs_lists_ids_and_reasons_in_order():
    runs = [
        unreadable("20261121-000003-000003", "meta.json is not valid JSON"),
        summary("20261121-000002-000002"),
        unreadable("20261121-000001-000001", "batches.csv ends with a garbled line"),
    ]
    assert compare.unreadable_runs(runs) == [
        ("20261121-000003-000003", "meta.json is not valid JSON"),
        ("20261121-000001-000001", "batches.csv ends with a garbled line"),
    ]


# --- filters -------------------------------------------------------------------------------------


@pytest.fixture
def table() -> pd.DataFrame:
    runs = [
        summary("20261121-000005-000005", "Momentum 0.9", config=config(momentum=0.9)),
        summary("20261121-000004-000004", "plain", config=config(dataset="moons")),
        summary(
            "20261121-000003-000003",
            "adam-ish",
            status="failed",
            config=config(optimizer="sgd"),
        ),
        summary("20261121-000002-000002", "momentum 0.5", status="stopped", config=config()),
        unreadable("20261121-000001-000001"),
    ]
    return charts.runs_table(runs)


def ids(frame: pd.DataFrame) -> list[str]:
    return [run_id[-1] for run_id in frame["run_id"]]


def test_no_filter_keeps_every_row_in_order(table):
    assert ids(compare.filter_runs(table)) == ["5", "4", "3", "2", "1"]


def test_name_filter_is_a_case_insensitive_substring(table):
    assert ids(compare.filter_runs(table, "MOMENTUM")) == ["5", "2"]
    assert ids(compare.filter_runs(table, "  0.9 ")) == ["5"]
    assert ids(compare.filter_runs(table, "nothing like it")) == []
    # regex characters are plain text
    assert ids(compare.filter_runs(table, ".")) == ["5", "2"]


def test_multiselect_filters_keep_the_chosen_values(table):
    assert ids(compare.filter_runs(table, status=["failed", "unreadable"])) == ["3", "1"]
    assert ids(compare.filter_runs(table, dataset=["moons"])) == ["4"]
    assert ids(compare.filter_runs(table, optimizer=["sgdplus"])) == ["5", "4", "2"]
    assert ids(compare.filter_runs(table, "m", status=["completed"], dataset=["digits"])) == ["5"]


def test_filter_options_are_sorted_distinct_values_without_missing(table):
    assert compare.filter_options(table, "status") == [
        "completed",
        "failed",
        "stopped",
        "unreadable",
    ]
    assert compare.filter_options(table, "dataset") == ["digits", "moons"]
    assert compare.filter_options(table, "optimizer") == ["sgd", "sgdplus"]


# --- the settings diff's styling -----------------------------------------------------------------


def highlighted_rows(styler) -> set[int]:
    """Rows with the highlight in the Styler's computed CSS (``ctx``: (row, col) -> styles)."""
    styler._compute()
    css = {tuple(item.split(":", 1)) for item in compare.DIFF_HIGHLIGHT.split(";")}
    css = {(k.strip(), v.strip()) for k, v in css}
    rows = set()
    for (row, _column), styles in styler.ctx.items():
        if css <= {(k.strip(), v.strip()) for k, v in styles}:
            rows.add(row)
    return rows


def test_style_highlights_exactly_the_differing_rows():
    diff = charts.settings_diff(
        {"a": config(momentum=0.9), "b": config(momentum=0.0, dataset="moons")}, as_text=True
    )
    styler = compare.style_settings_diff(diff)
    settings = list(diff.index)
    expected = {settings.index("dataset"), settings.index("optimizer.momentum")}
    assert highlighted_rows(styler) == expected
    assert styler.data.equals(diff)


def test_style_can_keep_only_the_differing_rows():
    diff = charts.settings_diff(
        {"a": config(momentum=0.9), "b": config(momentum=0.0, dataset="moons")}, as_text=True
    )
    styler = compare.style_settings_diff(diff, only_differing=True)
    assert list(styler.data.index) == ["dataset", "optimizer.momentum"]
    assert highlighted_rows(styler) == {0, 1}


def test_style_of_a_single_run_highlights_nothing():
    diff = charts.settings_diff({"a": config()}, as_text=True)
    assert highlighted_rows(compare.style_settings_diff(diff)) == set()
    assert compare.style_settings_diff(diff, only_differing=True).data.empty


# --- CSV export ----------------------------------------------------------------------------------


def test_curve_csv_holds_the_rows_written(tmp_path: Path):
    store = RunStore(tmp_path)
    rows = [
        {
            "step": i,
            "epoch": 0,
            "batch": i,
            "loss": 1.0 / (i + 1),
            "learning_rate": 0.1,
            "batch_size": 8,
            "samples_seen": 8 * (i + 1),
            "wall_time": 0.25 * (i + 1),
            "grad_norm": 0.5 / (i + 1),
        }
        for i in range(3)
    ]
    with store.create("csv", config(), {}) as writer:
        writer.append_batches(rows)
        writer.append_epoch({"epoch": 0, "loss": 0.6, "wall_time": 0.75, "samples_seen": 24})
    text = compare.curve_csv(store, writer.run_id, "batches")
    assert text.splitlines()[0] == ",".join(rows[0])
    read = pd.read_csv(io.StringIO(text), **exact_float_reading(pd.__version__))
    assert read.to_dict("records") == rows
    epochs = compare.curve_csv(store, writer.run_id, "epochs")
    assert epochs == "epoch,loss,wall_time,samples_seen\n0,0.6,0.75,24\n"


def test_curve_csv_of_an_unknown_run_is_a_store_error(tmp_path: Path):
    with pytest.raises(RunStoreError, match="unknown run id"):
        compare.curve_csv(RunStore(tmp_path), "20261121-000000-000000", "batches")
