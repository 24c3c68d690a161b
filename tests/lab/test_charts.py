"""keras_sgdplus.lab.charts: smoothing, x axes, downsampling, the charts' specs and the tables."""

from __future__ import annotations

import json
import math
import re

import altair as alt
import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab import charts
from keras_sgdplus.lab.runs import BATCH_COLUMNS, RunStore, RunSummary

# --- helpers -----------------------------------------------------------------------------------


def make_batches(epochs: int = 2, per_epoch: int = 4, last: int | None = None, batch_size=10):
    """A batches frame as the store gives it; ``last`` batches in the last epoch (if given)."""
    rows = []
    step = 0
    for epoch in range(epochs):
        count = per_epoch if (last is None or epoch < epochs - 1) else last
        for batch in range(count):
            rows.append(
                {
                    "step": step,
                    "epoch": epoch,
                    "batch": batch,
                    "loss": 1.0 / (step + 1),
                    "learning_rate": 0.1 if step < 4 else 0.05,
                    "batch_size": batch_size,
                    "samples_seen": (step + 1) * batch_size,
                    "wall_time": 0.5 * (step + 1),
                    "grad_norm": 2.0 / (step + 1),
                }
            )
            step += 1
    return pd.DataFrame(rows)


def make_epochs(accuracy: bool = True) -> pd.DataFrame:
    data = {
        "epoch": [0, 1, 2],
        "loss": [1.0, 0.5, 0.25],
        "wall_time": [1.0, 2.0, 3.0],
        "samples_seen": [40, 80, 120],
        "val_loss": [1.2, 0.7, math.nan],
    }
    if accuracy:
        data["accuracy"] = [0.5, 0.7, 0.9]
        data["val_accuracy"] = [0.4, 0.6, 0.8]
    return pd.DataFrame(data)


def reference_smooth(values, weight):
    """An independent NumPy loop: TensorBoard's debiased EMA, skipping non-finite values.

    ``m_t = w * m_{t-1} + (1 - w) * x_t`` with ``m_{-1} = 0``, ``s_t = m_t / (1 - w**(t + 1))``,
    ``t`` counting the finite values; a non-finite value repeats the previous ``s``.
    """
    x = np.asarray(values, dtype=np.float64)
    out = np.full(len(x), np.nan)
    m, t, s = 0.0, 0, math.nan
    for i in range(len(x)):
        if np.isfinite(x[i]):
            m = weight * m + (1 - weight) * x[i]
            s = m / (1 - weight ** (t + 1))
            t += 1
        out[i] = s
    return out


def spec(chart) -> dict:
    return chart.to_dict()


def all_encodings(d: dict) -> list[dict]:
    if "layer" in d:
        return [layer["encoding"] for layer in d["layer"]]
    return [d["encoding"]]


def dataset(d: dict) -> list[dict]:
    (values,) = d["datasets"].values()
    return values


# --- smooth ------------------------------------------------------------------------------------


def test_smooth_by_hand():
    # w = 0.6 over [1, 2, 3]:
    # s0 = 0.4            -> 0.4 / 0.4 = 1
    # s1 = 0.24 + 0.8     = 1.04 -> / (1 - 0.36) = 1.625
    # s2 = 0.624 + 1.2    = 1.824 -> / (1 - 0.216) = 2.326530...
    out = charts.smooth([1.0, 2.0, 3.0], 0.6)
    np.testing.assert_allclose(out, [1.0, 1.625, 1.824 / 0.784], rtol=1e-12)


@pytest.mark.parametrize("weight", [0.0, 0.3, 0.6, 0.9, 0.99, 0.999])
def test_smooth_matches_an_independent_loop(weight):
    values = np.random.default_rng(1).lognormal(0.0, 1.0, size=3000)  # positive, as losses
    np.testing.assert_allclose(
        charts.smooth(values, weight), reference_smooth(values, weight), rtol=1e-12, atol=0
    )


@pytest.mark.parametrize("weight", [0.0, 0.6, 0.99])
def test_smooth_matches_the_loop_around_non_finite_values(weight):
    rng = np.random.default_rng(2)
    values = rng.normal(size=1000) + 5
    bad = rng.choice(len(values), 100, replace=False)
    values[bad] = rng.choice([math.nan, math.inf, -math.inf], len(bad))
    values[:3] = [math.nan, math.inf, math.nan]  # no finite value yet: NaN
    out = charts.smooth(values, weight)
    assert np.isnan(out[:3]).all()
    np.testing.assert_allclose(out, reference_smooth(values, weight), rtol=1e-12, atol=0)


def test_smooth_debiased_start_and_weight_zero():
    values = [3.0, 1.0, 4.0, 1.0, 5.0]
    assert charts.smooth(values, 0.99)[0] == pytest.approx(3.0)
    np.testing.assert_array_equal(charts.smooth(values, 0.0), values)
    # a constant series stays constant at every step (no pull towards 0)
    np.testing.assert_allclose(charts.smooth([2.0] * 50, 0.9), 2.0)


def test_smooth_skips_non_finite_values():
    values = [math.nan, 1.0, 2.0, math.inf, math.nan, 3.0, -math.inf]
    out = charts.smooth(values, 0.6)
    assert math.isnan(out[0])
    np.testing.assert_allclose(out[1:3], [1.0, 1.625])
    assert out[3] == out[4] == out[2]  # the previous average is kept
    assert out[5] == pytest.approx(1.824 / 0.784)  # as if the bad values were not there
    assert out[6] == out[5]
    np.testing.assert_allclose(out[1:], reference_smooth(values, 0.6)[1:])
    zero = charts.smooth([1.0, math.nan, 2.0], 0.0)
    np.testing.assert_array_equal(zero, [1.0, 1.0, 2.0])


def test_smooth_edge_cases():
    assert charts.smooth([], 0.5).shape == (0,)
    values = np.array([1.0, math.inf, 3.0])
    out = charts.smooth(values, 0.5)
    assert out.dtype == np.float64
    assert out.flags.writeable  # the caller's own array
    np.testing.assert_array_equal(values, [1.0, math.inf, 3.0])  # the input is left alone
    np.testing.assert_allclose(charts.smooth(pd.Series([1.0, 2.0], index=[5, 9]), 0.5), [1, 5 / 3])
    assert np.isnan(charts.smooth([math.nan, math.nan], 0.5)).all()
    for bad in (-0.1, 1.0, 2):
        with pytest.raises(ValueError, match="`weight` must be in"):
            charts.smooth([1.0], bad)


# --- x axes ------------------------------------------------------------------------------------


def test_fractional_epochs():
    batches = make_batches(epochs=2, per_epoch=4)
    np.testing.assert_allclose(
        charts.fractional_epochs(batches), [0, 0.25, 0.5, 0.75, 1, 1.25, 1.5, 1.75]
    )


def test_fractional_epochs_of_an_unfinished_last_epoch():
    # the last epoch has 2 of its 4 batches: they sit at 1.0 and 1.25, not stretched to 1.5
    batches = make_batches(epochs=2, per_epoch=4, last=2)
    np.testing.assert_allclose(charts.fractional_epochs(batches), [0, 0.25, 0.5, 0.75, 1, 1.25])


@pytest.mark.parametrize(
    ("x_axis", "expected"),
    [
        ("step", [0, 1, 2, 3, 4, 5]),
        ("epoch", [0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3]),
        ("samples_seen", [10, 20, 30, 40, 50, 60]),
        ("wall_time", [0.5, 1.0, 1.5, 2.0, 2.5, 3.0]),
    ],
)
def test_batch_curve_x_axes(x_axis, expected):
    data = charts.batch_curve_data(make_batches(epochs=2, per_epoch=3), x_axis, 0.0)
    np.testing.assert_allclose(data["x"], expected)
    np.testing.assert_allclose(data["epoch"], [0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3])
    np.testing.assert_array_equal(data["step"], range(6))
    np.testing.assert_allclose(data["loss"], data["smoothed"])  # smoothing 0
    assert data.attrs["x_axis"] == x_axis


def test_batch_curve_smoothing_and_bad_x_axis():
    batches = make_batches()
    data = charts.batch_curve_data(batches, "step", 0.6)
    np.testing.assert_allclose(data["smoothed"], reference_smooth(batches["loss"], 0.6))
    with pytest.raises(ValueError, match="`x_axis` must be one of"):
        charts.batch_curve_data(batches, "time", 0.0)
    with pytest.raises(ValueError, match="lacks the columns"):
        charts.batch_curve_data(batches.drop(columns="batch"), "step", 0.0)


def test_batch_curve_sorts_by_step_and_handles_empty():
    batches = make_batches()
    shuffled = batches.sample(frac=1.0, random_state=0)
    pd.testing.assert_frame_equal(
        charts.batch_curve_data(shuffled, "step", 0.5),
        charts.batch_curve_data(batches, "step", 0.5),
    )
    empty = charts.batch_curve_data(batches.iloc[:0], "epoch", 0.5)
    assert len(empty) == 0
    assert list(empty.columns) == ["run", "x", "step", "epoch", "loss", "smoothed"]
    charts.batch_loss_chart(empty).to_dict()  # draws an empty chart


# --- downsampling ------------------------------------------------------------------------------


def test_downsample_keeps_spikes_ends_and_budget():
    n = 10_000
    values = np.linspace(1.0, 0.1, n)
    values[3_333] = 50.0  # a spike
    values[7_777] = -5.0  # a dip
    values[5_000] = math.nan
    for max_points in (4, 10, 100, 2000):
        keep = charts.downsample_indices(values, max_points)
        assert len(keep) <= max_points
        assert keep[0] == 0
        assert keep[-1] == n - 1
        assert 3_333 in keep
        assert 7_777 in keep
        assert np.all(np.diff(keep) > 0)
    np.testing.assert_array_equal(charts.downsample_indices(values[:50], 50), np.arange(50))
    with pytest.raises(ValueError, match="max_points"):
        charts.downsample_indices(values, 3)


def test_batch_curve_downsamples_after_smoothing():
    n = 20_000
    batches = make_batches(epochs=40, per_epoch=n // 40)
    loss = np.full(n, 1.0)
    loss[12_345] = 1000.0
    batches["loss"] = loss
    full = charts.smooth(loss, 0.9)
    data = charts.batch_curve_data(batches, "step", 0.9, max_points=500)
    assert len(data) <= 500
    assert data["loss"].max() == 1000.0
    assert data["step"].iloc[0] == 0
    assert data["step"].iloc[-1] == n - 1
    # the smoothed values are those of the full series, taken at the kept steps
    np.testing.assert_allclose(data["smoothed"], full[data["step"].to_numpy()])


def test_batch_curve_budget_is_shared_by_runs():
    batches = make_batches(epochs=10, per_epoch=1000)
    batches["loss"] = np.random.default_rng(2).random(len(batches))  # 3 points per bucket
    data = charts.batch_curve_data({"a": batches, "b": batches}, "step", 0.0, max_points=2000)
    assert data.groupby("run").size().max() <= 1000
    # a run never drops below 300 points however many runs there are
    many = charts.batch_curve_data({str(i): batches for i in range(10)}, "step", 0.0, 2000)
    assert many.groupby("run").size().min() >= 250
    assert many.groupby("run").size().max() <= 300


# --- several runs ------------------------------------------------------------------------------


def test_runs_from_mapping_or_run_column_are_the_same():
    a, b = make_batches(), make_batches(epochs=3)
    from_mapping = charts.batch_curve_data({"a": a, "b": b}, "epoch", 0.5)
    joined = pd.concat([a.assign(run="a"), b.assign(run="b")], ignore_index=True)
    from_column = charts.batch_curve_data(joined, "epoch", 0.5)
    pd.testing.assert_frame_equal(from_mapping, from_column)
    assert list(from_mapping["run"].unique()) == ["a", "b"]
    # each run is smoothed on its own
    np.testing.assert_allclose(
        from_mapping.loc[from_mapping["run"] == "b", "smoothed"],
        reference_smooth(b["loss"], 0.5),
    )


# --- the epoch view ----------------------------------------------------------------------------


def test_epoch_curve_data_long_form():
    data = charts.epoch_curve_data(make_epochs(), "epoch")
    assert set(data.columns) == {"run", "x", "epoch", "metric", "split", "value"}
    assert charts.metrics_in(data) == ["loss", "accuracy"]
    train = data[(data.metric == "loss") & (data.split == "train")]
    np.testing.assert_allclose(train["x"], [1, 2, 3])  # epochs completed
    np.testing.assert_allclose(train["value"], [1.0, 0.5, 0.25])
    val = data[(data.metric == "loss") & (data.split == "validation")]
    np.testing.assert_allclose(val["value"], [1.2, 0.7])  # the NaN is left out
    acc = data[(data.metric == "accuracy") & (data.split == "validation")]
    np.testing.assert_allclose(acc["value"], [0.4, 0.6, 0.8])
    assert charts.metrics_in(charts.epoch_curve_data(make_epochs(accuracy=False))) == ["loss"]


@pytest.mark.parametrize(
    ("x_axis", "expected"),
    [("epoch", [1, 2, 3]), ("samples_seen", [40, 80, 120]), ("wall_time", [1, 2, 3])],
)
def test_epoch_curve_x_axes(x_axis, expected):
    data = charts.epoch_curve_data(make_epochs(), x_axis)
    train = data[(data.metric == "loss") & (data.split == "train")]
    np.testing.assert_allclose(train["x"], expected)


def test_epoch_curve_by_step_needs_batches():
    epochs, batches = make_epochs(), make_batches(epochs=3, per_epoch=4)
    with pytest.raises(ValueError, match="needs the runs' batches"):
        charts.epoch_curve_data(epochs, "step")
    data = charts.epoch_curve_data({"r": epochs}, "step", batches={"r": batches})
    train = data[(data.metric == "loss") & (data.split == "train")]
    np.testing.assert_allclose(train["x"], [4, 8, 12])


# --- chart specs -------------------------------------------------------------------------------


def test_batch_loss_chart_spec():
    data = charts.batch_curve_data(make_batches(), "epoch", 0.6)
    d = spec(charts.batch_loss_chart(data, log_scale=False))
    assert d["title"] == "Loss per mini-batch"
    encodings = all_encodings(d)
    assert [e["y"]["field"] for e in encodings] == ["loss", "smoothed"]
    for e in encodings:
        assert e["x"]["field"] == "x"
        assert e["x"]["title"] == "Epoch"
        assert e["y"]["scale"].get("type") != "log"
        assert "field" not in e["color"]  # one run: no color by run
    # one tooltip, on the smoothed line, naming both losses (none computed for the raw line)
    assert "tooltip" not in encodings[0]
    assert {t["field"] for t in encodings[1]["tooltip"]} >= {"step", "epoch", "loss", "smoothed"}
    # x zoom and pan bound to the scales
    params = [p for layer in d["layer"] for p in layer.get("params", [])] + d.get("params", [])
    assert any(p.get("bind") == "scales" and p["select"]["encodings"] == ["x"] for p in params)
    only_smoothed = spec(charts.batch_loss_chart(data, show_raw=False))
    assert [e["y"]["field"] for e in all_encodings(only_smoothed)] == ["smoothed"]


def test_batch_loss_chart_log_scale_drops_non_positive():
    batches = make_batches()
    batches.loc[2, "loss"] = 0.0
    batches.loc[3, "loss"] = -1.0
    d = spec(charts.batch_loss_chart(charts.batch_curve_data(batches, "step", 0.0), True))
    for e in all_encodings(d):
        assert e["y"]["scale"]["type"] == "log"
        assert e["y"]["title"] == "Loss (log scale)"
    rows = dataset(d)
    assert rows[2]["loss"] is None
    assert rows[3]["loss"] is None
    assert all(r["loss"] is None or r["loss"] > 0 for r in rows)


def test_batch_loss_chart_colors_by_run():
    data = charts.batch_curve_data({"sgd": make_batches(), "momentum": make_batches()}, "step", 0)
    d = spec(charts.batch_loss_chart(data))
    for e in all_encodings(d):
        assert e["color"]["field"] == "run"
    assert "run" in {t["field"] for t in all_encodings(d)[-1]["tooltip"]}
    assert {r["run"] for r in dataset(d)} == {"sgd", "momentum"}


def test_non_finite_losses_serialise():
    batches = make_batches()
    batches.loc[5, "loss"] = math.nan
    batches.loc[7, "loss"] = math.inf
    d = spec(charts.batch_loss_chart(charts.batch_curve_data(batches, "step", 0.5)))
    json.dumps(d, allow_nan=False)  # valid JSON for the browser


def test_epoch_chart_spec():
    data = charts.epoch_curve_data(make_epochs(), "samples_seen")
    d = spec(charts.epoch_chart(data, log_scale=True))
    assert d["title"] == "Loss per epoch"
    e = d["encoding"]
    assert e["x"]["field"] == "x"
    assert e["x"]["title"] == "Samples seen"
    assert e["y"]["field"] == "value"
    assert e["y"]["scale"]["type"] == "log"
    assert e["color"]["field"] == "split"
    assert {t["field"] for t in e["tooltip"]} >= {"split", "epoch", "value"}
    assert {r["metric"] for r in dataset(d)} == {"loss"}
    acc = spec(charts.epoch_chart(data, log_scale=False, metric="accuracy"))
    assert acc["title"] == "Accuracy per epoch"
    assert acc["encoding"]["y"]["title"] == "Accuracy"
    assert "type" not in acc["encoding"]["y"]["scale"]
    assert {r["metric"] for r in dataset(acc)} == {"accuracy"}


def test_epoch_chart_several_runs():
    epochs = make_epochs()
    data = charts.epoch_curve_data({"a": epochs, "b": epochs.assign(loss=epochs.loss * 2)})
    e = spec(charts.epoch_chart(data))["encoding"]
    assert e["color"]["field"] == "run"
    assert e["strokeDash"]["field"] == "split"
    assert "run" in {t["field"] for t in e["tooltip"]}


def test_epoch_chart_log_drops_non_positive():
    epochs = make_epochs()
    epochs.loc[1, "loss"] = 0.0
    d = spec(charts.epoch_chart(charts.epoch_curve_data(epochs), log_scale=True))
    assert all(r["value"] > 0 for r in dataset(d))


def test_learning_rate_chart_spec():
    batches = make_batches()
    d = spec(charts.learning_rate_chart(batches, "samples_seen"))
    assert d["title"] == "Learning rate per step"
    e = d["encoding"]
    assert e["x"]["title"] == "Samples seen"
    assert e["y"]["field"] == "learning_rate"
    assert {t["field"] for t in e["tooltip"]} >= {"step", "learning_rate"}
    assert [r["learning_rate"] for r in dataset(d)] == list(batches["learning_rate"])
    several = spec(charts.learning_rate_chart({"a": batches, "b": batches}, "step", True))
    assert several["encoding"]["color"]["field"] == "run"
    assert several["encoding"]["y"]["scale"]["type"] == "log"


def test_charts_are_altair_objects():
    data = charts.batch_curve_data(make_batches(), "step", 0.0)
    assert isinstance(charts.batch_loss_chart(data), alt.TopLevelMixin)
    assert isinstance(charts.epoch_chart(charts.epoch_curve_data(make_epochs())), alt.Chart)


# --- tables ------------------------------------------------------------------------------------


def test_settings_diff_marks_exactly_the_differences():
    base = {
        "dataset": "digits",
        "optimizer": {"name": "sgdplus", "momentum": 0.9, "schedule": {"name": "constant"}},
        "batch_size": 32,
        "seed": 0,
    }
    other = json.loads(json.dumps(base))
    other["optimizer"]["momentum"] = 0.0
    other["batch_size"] = None
    third = json.loads(json.dumps(base))
    third["optimizer"]["nesterov"] = True
    diff = charts.settings_diff({"a": base, "b": other, "c": third})
    assert list(diff.columns) == ["a", "b", "c", "differs"]
    assert diff.index.name == "setting"
    assert list(diff.index) == sorted(diff.index)
    assert set(diff.index[diff["differs"]]) == {
        "optimizer.momentum",
        "batch_size",
        "optimizer.nesterov",
    }
    assert diff.loc["optimizer.momentum", "b"] == 0.0
    assert diff.loc["optimizer.schedule.name", "a"] == "constant"
    assert diff.loc["optimizer.nesterov", "a"] is None
    assert diff["differs"].dtype == bool
    text = charts.settings_diff({"a": base, "b": other}, as_text=True)
    assert text.loc["batch_size", "b"] == "-"
    assert text.loc["optimizer.momentum", "a"] == "0.9"


def test_settings_diff_one_run_and_nan():
    diff = charts.settings_diff({"a": {"x": math.nan, "y": 1}})
    assert not diff["differs"].any()
    diff = charts.settings_diff({"a": {"x": math.nan}, "b": {"x": math.nan}})
    assert not diff["differs"].any()
    with pytest.raises(ValueError, match="differs"):
        charts.settings_diff({"differs": {}})


def summary_of(name="run", status="completed", **overrides) -> RunSummary:
    config = {
        "dataset": "digits",
        "model": {"kind": "mlp"},
        "optimizer": {
            "name": "sgdplus",
            "learning_rate": 0.1,
            "momentum": 0.9,
            "nesterov": True,
            "schedule": {"name": "cosine"},
        },
        "batch_size": 32,
        "epochs": 5,
    }
    summary = {
        "epochs_completed": 5,
        "final_loss": 0.2,
        "best_loss": 0.15,
        "final_val_accuracy": 0.9,
        "best_val_accuracy": 0.93,
        "elapsed_s": 12.5,
        "samples_per_s": 800.0,
    }
    fields = {
        "run_id": "20261121-224501-3f9a2c",
        "name": name,
        "status": status,
        "created_at": "2026-11-21T22:45:01+00:00",
        "config": config,
        "summary": summary,
    }
    fields.update(overrides)
    return RunSummary(**fields)


def test_runs_table():
    unreadable = RunSummary(
        run_id="20261121-224502-aaaaaa",
        name="",
        status="unreadable",
        created_at="",
        config={},
        summary={},
        readable=False,
        reason="meta.json is not valid JSON",
    )
    failed = summary_of("broken", "failed", error="ValueError: boom", summary={})
    full_batch = summary_of("full")
    full_batch.config = {**full_batch.config, "batch_size": None}
    table = charts.runs_table([summary_of(), unreadable, failed, full_batch])
    assert list(table.columns) == list(charts.RUNS_TABLE_COLUMNS)
    assert len(table) == 4
    first = table.iloc[0]
    assert first["name"] == "run"
    assert first["dataset"] == "digits"
    assert first["model"] == "mlp"
    assert first["optimizer"] == "sgdplus"
    assert first["learning_rate"] == 0.1
    assert first["momentum"] == 0.9
    assert bool(first["nesterov"]) is True
    assert first["batch_size"] == "32"
    assert first["schedule"] == "cosine"
    assert first["final_loss"] == 0.2
    assert first["best_val_accuracy"] == 0.93
    assert first["elapsed_s"] == 12.5
    assert first["samples_per_s"] == 800.0
    assert math.isnan(first["final_accuracy"])
    assert pd.isna(first["reason"])
    bad = table.iloc[1]
    assert bad["status"] == "unreadable"
    assert bad["reason"] == "meta.json is not valid JSON"
    assert pd.isna(bad["dataset"])
    assert math.isnan(bad["final_loss"])
    assert table.iloc[2]["reason"] == "ValueError: boom"
    assert table.iloc[3]["batch_size"] == "full"
    assert table["final_loss"].dtype == np.float64
    assert table.sort_values("final_loss")["name"].iloc[0] == "run"  # sortable


def test_runs_table_empty_and_odd_configs():
    assert list(charts.runs_table([]).columns) == list(charts.RUNS_TABLE_COLUMNS)
    odd = summary_of(config={"optimizer": "sgd", "model": 3}, summary={"final_loss": "x"})
    row = charts.runs_table([odd]).iloc[0]
    assert pd.isna(row["optimizer"])
    assert math.isnan(row["final_loss"])


def test_a_stored_run_end_to_end(tmp_path):
    store = RunStore(tmp_path)
    config = {"dataset": "circle", "optimizer": {"name": "sgdplus", "momentum": 0.9}}
    with store.create("stored", config, {}) as writer:
        batches = make_batches(epochs=2, per_epoch=3)
        writer.append_batches(batches.to_dict("records"))
        for row in make_epochs().iloc[:2].to_dict("records"):
            writer.append_epoch(row)
        writer.update(status="completed", summary={"final_loss": 0.5})
    run_id = store.list_runs()[0].run_id
    run = store.load(run_id)
    data = charts.batch_curve_data({run.name: run.batches}, "epoch", 0.6)
    np.testing.assert_allclose(data["x"], [0, 1 / 3, 2 / 3, 1, 4 / 3, 5 / 3])
    charts.batch_loss_chart(data, log_scale=True).to_dict()
    epoch_data = charts.epoch_curve_data({run.name: run.epochs}, "step", {run.name: run.batches})
    train = epoch_data[(epoch_data.metric == "loss") & (epoch_data.split == "train")]
    np.testing.assert_allclose(train["x"], [3, 6])
    charts.epoch_chart(epoch_data, metric="accuracy").to_dict()
    charts.learning_rate_chart(run.batches, "wall_time").to_dict()
    table = charts.runs_table(store.list_runs())
    assert table.iloc[0]["final_loss"] == 0.5
    assert table.iloc[0]["momentum"] == 0.9
    diff = charts.settings_diff({"x": run.meta["config"], "y": {**config, "dataset": "digits"}})
    assert list(diff.index[diff["differs"]]) == ["dataset"]


def test_epoch_without_batches_is_left_out_by_step():
    batches = make_batches(epochs=2, per_epoch=4)  # epoch 2 has no batches
    data = charts.epoch_curve_data(make_epochs(), "step", batches)
    assert sorted(set(data["x"])) == [4, 8]


# --- speed -------------------------------------------------------------------------------------


def test_100k_batches_are_drawn_from_a_bounded_sample():
    n, per_epoch = 100_000, 500
    steps = np.arange(n)
    batches = pd.DataFrame(
        {
            "step": steps,
            "epoch": steps // per_epoch,
            "batch": steps % per_epoch,
            "loss": np.exp(-steps / 3e4) + np.random.default_rng(0).random(n) * 0.1,
            "learning_rate": 0.01,
            "batch_size": 32,
            "samples_seen": (steps + 1) * 32,
            "wall_time": steps * 1e-3,
        }
    )
    data = charts.batch_curve_data(batches, "epoch", 0.9)
    d = charts.batch_loss_chart(data, log_scale=True).to_dict()
    # what the browser gets stays small however long the run (speed is not asserted here)
    assert len(dataset(d)) <= charts.DEFAULT_MAX_POINTS


# --- placeholders for a live run with nothing recorded yet --------------------------------------


def _without_names(chart) -> str:
    """The chart's Vega-Lite spec without its data and generated names (dataset hashes,
    Altair's generated param and view names), which the browser does not compare when it
    updates a chart."""
    d = chart.to_dict()
    d.pop("datasets", None)
    text = json.dumps(d, sort_keys=True)
    text = re.sub(r'"data-[0-9a-f]+"', '"DATA"', text)
    return re.sub(r'"(param|view)_[0-9a-f_]+"', r'"\1"', text)


@pytest.mark.parametrize("x_axis", sorted(charts.X_AXES))
@pytest.mark.parametrize("log_scale", [False, True])
def test_an_empty_placeholder_chart_has_the_spec_of_the_chart_with_data(x_axis, log_scale):
    empty_batches = charts.placeholder_curves({"run": make_batches().iloc[:0]}, "batches")
    empty_epochs = charts.placeholder_curves({"run": pd.DataFrame()}, "epochs")
    batches, epochs = {"run": make_batches()}, {"run": make_epochs()}
    assert len(empty_batches["run"]) == len(empty_epochs["run"]) == 0
    for empty, full in [
        (
            charts.batch_loss_chart(charts.batch_curve_data(empty_batches, x_axis), log_scale),
            charts.batch_loss_chart(charts.batch_curve_data(batches, x_axis), log_scale),
        ),
        (
            charts.learning_rate_chart(empty_batches, x_axis, log_scale),
            charts.learning_rate_chart(batches, x_axis, log_scale),
        ),
        (
            charts.epoch_chart(
                charts.epoch_curve_data(empty_epochs, x_axis, batches=empty_batches), log_scale
            ),
            charts.epoch_chart(charts.epoch_curve_data(epochs, x_axis, batches=batches), log_scale),
        ),
    ]:
        assert _without_names(empty) == _without_names(full)
        assert not dataset(spec(empty))  # no rows: nothing drawn yet


def test_placeholders_leave_curves_with_rows_alone():
    batches = make_batches()
    filled = charts.placeholder_curves({"a": batches, "b": batches.iloc[:0]}, "batches")
    assert filled["a"] is batches
    assert list(filled["b"].columns) == list(BATCH_COLUMNS)
    assert filled["b"].empty
