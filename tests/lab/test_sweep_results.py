"""keras_sgdplus.lab.sweep_results: a sweep's configurations, heat map, bands and estimate.

The runs are written into a temporary store with `RunStore.create` (random curves, seeded);
every expectation is recomputed from the run folders' own files (`meta.json`, `epochs.csv`,
`batches.csv`) with pandas and NumPy, not through the code under test.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab import sweep_results
from keras_sgdplus.lab.config import OptimizerSpec, TrainingConfig
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore, expand

BASE = TrainingConfig(dataset="digits", epochs=4, batch_size=32)


def write_run(
    store: RunStore,
    config: TrainingConfig,
    rng: np.random.Generator,
    *,
    steps: int = 12,
    epochs: int = 4,
    val_loss: bool = True,
    finished: bool = True,
    open_writers: list | None = None,
) -> str:
    """A run with random batch losses (`steps` of them) and `epochs` epoch rows."""
    writer = store.create(config.sweep_name or "run", config.to_dict(), {"python": "3"})
    per_epoch = max(steps // max(epochs, 1), 1)
    writer.append_batches(
        [
            {
                "step": step,
                "epoch": step // per_epoch,
                "batch": step % per_epoch,
                "loss": float(rng.uniform(0.1, 2.0)),
                "learning_rate": config.optimizer.learning_rate,
                "batch_size": 32,
                "samples_seen": 32 * (step + 1),
                "wall_time": 0.01 * (step + 1),
                "grad_norm": 1.0,
            }
            for step in range(steps)
        ]
    )
    for epoch in range(epochs):
        row = {
            "epoch": epoch,
            "loss": float(rng.uniform(0.1, 2.0)),
            "wall_time": 0.1 * (epoch + 1),
            "samples_seen": 32 * per_epoch * (epoch + 1),
        }
        if val_loss:
            row["val_loss"] = float(rng.uniform(0.1, 2.0))
        writer.append_epoch(row)
    if finished:
        summary = {"epochs_completed": epochs, "steps": steps, "elapsed_s": 1.0}
        writer.update(status="completed", summary=summary)
        writer.close()
    elif open_writers is not None:
        open_writers.append(writer)  # held: the run stays live (a dropped writer closes)
    return writer.run_id


def make_sweep(root: Path, spec: SweepSpec, seed: int = 0, **run_options) -> tuple[str, list[str]]:
    """The sweep's record and one finished run per config of the grid."""
    sweep_id = SweepStore(root).create(spec)
    store = RunStore(root)
    rng = np.random.default_rng(seed)
    ids = [write_run(store, config, rng, **run_options) for config in expand(spec, sweep_id)]
    return sweep_id, ids


def three_axes() -> SweepSpec:
    return SweepSpec(
        "grid",
        BASE,
        {"learning_rate": (0.01, 0.1, 1.0), "momentum": (0, 0.9), "nesterov": (False, True)},
        seeds=(0, 1, 2),
    )


def stored_runs(root: Path, sweep_id: str) -> pd.DataFrame:
    """Every run of the sweep from its files: settings from meta.json, best val loss from
    epochs.csv (the lowest finite value)."""
    rows = []
    for meta_path in root.glob("*/meta.json"):
        meta = json.loads(meta_path.read_text())
        config = meta["config"]
        if config.get("sweep_id") != sweep_id:
            continue
        epochs = pd.read_csv(meta_path.parent / "epochs.csv")
        val = epochs["val_loss"] if "val_loss" in epochs else pd.Series(dtype=float)
        val = val[np.isfinite(val)]
        rows.append(
            {
                "run_id": meta["run_id"],
                "learning_rate": config["optimizer"]["learning_rate"],
                "momentum": config["optimizer"]["momentum"],
                "nesterov": config["optimizer"]["nesterov"],
                "best": val.min() if len(val) else math.nan,
            }
        )
    return pd.DataFrame(rows)


# --- configurations and their scores -----------------------------------------------------------


def test_configs_pool_seeds_with_mean_and_sample_std(tmp_path):
    sweep_id, ids = make_sweep(tmp_path, three_axes())
    results = sweep_results.load_results(tmp_path, sweep_id)
    runs = stored_runs(tmp_path, sweep_id)

    assert len(results.configs) == 12
    assert sorted(run.run_id for c in results.configs for run in c.runs) == sorted(ids)
    for config in results.configs:
        assert len(config.runs) == 3
        mine = runs[
            (runs.learning_rate == config.settings["learning_rate"])
            & (runs.momentum == config.settings["momentum"])
            & (runs.nesterov == config.settings["nesterov"])
        ]
        assert sorted(mine.run_id) == sorted(run.run_id for run in config.runs)
        assert config.best_val_loss_mean == pytest.approx(statistics.fmean(mine.best), abs=1e-15)
        assert config.best_val_loss_std == pytest.approx(statistics.stdev(mine.best), abs=1e-15)
    means = [config.best_val_loss_mean for config in results.configs]
    assert means == sorted(means)
    assert [config.rank for config in results.configs] == list(range(1, 13))
    assert results.best is results.configs[0]
    assert results.progress() == {"total": 36, "done": 36, "running": 0, "queued": 0}


def test_heatmap_cells_equal_the_mean_of_best_val_losses_from_epochs_csv(tmp_path):
    sweep_id, _ = make_sweep(tmp_path, three_axes(), seed=3)
    results = sweep_results.load_results(tmp_path, sweep_id)
    runs = stored_runs(tmp_path, sweep_id)
    means = runs.groupby(["learning_rate", "momentum", "nesterov"])["best"].mean()
    # the third axis (nesterov): the best of its configurations' means (HEATMAP_RULE)
    expected = means.groupby(level=["learning_rate", "momentum"]).min()

    data = sweep_results.heatmap_data(results, "learning_rate", "momentum")
    assert len(data) == 6
    for row in data.itertuples():
        assert row.value == pytest.approx(expected[(float(row.x), float(row.y))], abs=1e-15)
    assert list(data.x.unique()) == ["0.01", "0.1", "1"]
    assert list(data.y.unique()) == ["0", "0.9"]

    # two axes of three: the cell over (lr, nesterov) takes the best over momentum
    other = sweep_results.heatmap_data(results, "nesterov", "learning_rate")
    over_momentum = means.groupby(level=["learning_rate", "nesterov"]).min()
    for row in other.itertuples():
        key = (float(row.y), row.x == "true")
        assert row.value == pytest.approx(over_momentum[key], abs=1e-15)


def test_heatmap_of_a_two_axis_sweep_is_the_plain_seed_mean(tmp_path):
    spec = SweepSpec("two", BASE, {"learning_rate": (0.01, 0.1), "batch_size": (16, None)}, (4, 5))
    sweep_id, _ = make_sweep(tmp_path, spec, seed=9)
    results = sweep_results.load_results(tmp_path, sweep_id)
    data = sweep_results.heatmap_data(results, "batch_size", "learning_rate")
    assert sorted(data.x) == ["16", "16", "full", "full"]
    for row in data.itertuples():
        config = results.config_of(row.config)
        bests = [
            pd.read_csv(tmp_path / run.run_id / "epochs.csv")["val_loss"].min()
            for run in config.runs
        ]
        assert row.value == pytest.approx(np.mean(bests), abs=1e-15)
        assert row.seeds == 2
    one_axis = sweep_results.heatmap_data(results, "learning_rate")
    assert list(one_axis.y) == ["", ""]
    with pytest.raises(ValueError, match="swept axis"):
        sweep_results.heatmap_data(results, "momentum", "learning_rate")
    with pytest.raises(ValueError, match="two different axes"):
        sweep_results.heatmap_data(results, "learning_rate", "learning_rate")


# --- bands ---------------------------------------------------------------------------------


def test_band_edges_equal_per_step_extremes_and_std_from_batches_csv(tmp_path):
    spec = SweepSpec("bands", BASE, {"learning_rate": (0.01, 0.1)}, seeds=(0, 1, 2))
    sweep_id = SweepStore(tmp_path).create(spec)
    store = RunStore(tmp_path)
    rng = np.random.default_rng(7)
    lengths = [12, 9, 5, 12, 12, 12]  # unequal: the first configuration's seeds stop early
    for config, steps in zip(expand(spec, sweep_id), lengths, strict=True):
        write_run(store, config, rng, steps=steps)
    results = sweep_results.load_results(tmp_path, sweep_id)

    for band in ("minmax", "std"):
        data = sweep_results.band_data(store, results.configs, "batches", band)
        for config in results.configs:
            frames = [
                pd.read_csv(tmp_path / run.run_id / "batches.csv").set_index("step")["loss"]
                for run in config.runs
            ]
            table = pd.concat(frames, axis=1)  # NaN where a run has not reached the step
            mine = data[data.config == config.label].set_index("x")
            assert list(mine.index) == list(table.index)
            np.testing.assert_array_equal(mine["runs"], table.notna().sum(axis=1))
            np.testing.assert_allclose(mine["mean"], table.mean(axis=1), rtol=0, atol=1e-15)
            if band == "minmax":
                np.testing.assert_array_equal(mine["lower"], table.min(axis=1))
                np.testing.assert_array_equal(mine["upper"], table.max(axis=1))
            else:
                std = table.std(axis=1, ddof=1)  # pandas: NaN where one run reached the step
                np.testing.assert_allclose(mine["lower"], table.mean(axis=1) - std, atol=1e-15)
                np.testing.assert_allclose(mine["upper"], table.mean(axis=1) + std, atol=1e-15)
    short = sweep_results.band_data(store, results.configs, "batches", "std")
    first = short[short.config == results.config_of("lr=0.01").label]
    assert first[first.x >= 9]["runs"].eq(1).all()  # only the 12-step run got there
    assert first[first.x >= 9]["lower"].isna().all()


def test_epoch_bands_by_epochs_completed(tmp_path):
    spec = SweepSpec("epochs", BASE, {"momentum": (0.0, 0.9)}, seeds=(0, 1))
    sweep_id, _ = make_sweep(tmp_path, spec, seed=2)
    store = RunStore(tmp_path)
    results = sweep_results.load_results(tmp_path, sweep_id)
    data = sweep_results.band_data(store, results.configs, "epochs", "minmax", metric="val_loss")
    for config in results.configs:
        frames = [
            pd.read_csv(tmp_path / run.run_id / "epochs.csv").set_index("epoch")["val_loss"]
            for run in config.runs
        ]
        table = pd.concat(frames, axis=1)
        mine = data[data.config == config.label]
        np.testing.assert_array_equal(mine["x"], table.index + 1)
        np.testing.assert_array_equal(mine["lower"], table.min(axis=1))
        np.testing.assert_array_equal(mine["upper"], table.max(axis=1))
    with pytest.raises(ValueError, match="band"):
        sweep_results.band_data(store, results.configs, "epochs", "iqr")


# --- as_json and runs that are missing or unfinished -----------------------------------------


def test_as_json_format(tmp_path):
    spec = SweepSpec("json", BASE, {"learning_rate": (0.1, 0.01), "nesterov": (False, True)})
    sweep_id, ids = make_sweep(tmp_path, spec, seed=5)
    report = sweep_results.as_json(tmp_path, sweep_id)
    text = json.dumps(report, allow_nan=False)  # JSON-safe
    assert json.loads(text) == report
    assert report["sweep"] == sweep_id
    assert report["name"] == "json"
    assert report["axes"] == ["learning_rate", "nesterov"]
    assert len(report["configs"]) == 4
    runs = stored_runs(tmp_path, sweep_id).set_index("run_id")
    for entry in report["configs"]:
        assert set(entry) == {
            "learning_rate",
            "nesterov",
            "runs",
            "best_val_loss_mean",
            "best_val_loss_std",
        }
        assert isinstance(entry["nesterov"], bool)
        (run_id,) = entry["runs"]
        assert entry["best_val_loss_mean"] == runs.loc[run_id, "best"]
        assert entry["best_val_loss_std"] is None  # one seed: the spread is unknown
    means = [entry["best_val_loss_mean"] for entry in report["configs"]]
    assert means == sorted(means)
    assert sorted(run for entry in report["configs"] for run in entry["runs"]) == sorted(ids)


def test_missing_and_unfinished_runs_are_shown_without_a_score(tmp_path):
    spec = SweepSpec("partial", BASE, {"learning_rate": (0.01, 0.1, 1.0)}, seeds=(0, 1))
    sweep_id = SweepStore(tmp_path).create(spec)
    store = RunStore(tmp_path)
    rng = np.random.default_rng(1)
    configs = expand(spec, sweep_id)
    done = [write_run(store, configs[0], rng), write_run(store, configs[1], rng)]
    writers: list = []
    running = write_run(
        store, configs[2], rng, val_loss=False, finished=False, open_writers=writers
    )
    # lr=1.0 (configs 4, 5): not started; configs[3]: lr=0.1 seed 1 not started either
    results = sweep_results.load_results(tmp_path, sweep_id)

    assert [c.settings["learning_rate"] for c in results.configs] == [0.01, 0.1, 1.0]
    first, second, third = results.configs
    assert {run.run_id for run in first.runs} == set(done)
    assert first.best_val_loss_mean == pytest.approx(
        np.mean([stored_runs(tmp_path, sweep_id).set_index("run_id").loc[r, "best"] for r in done])
    )
    assert [run.run_id for run in second.runs] == [running]
    assert math.isnan(second.runs[0].best_val_loss)
    assert second.runs[0].active
    assert math.isnan(second.best_val_loss_mean)
    assert second.rank == 2
    assert third.runs == ()
    assert third.rank == 3
    assert results.progress() == {"total": 6, "done": 2, "running": 1, "queued": 3}
    writers[0].close()
    report = sweep_results.as_json(tmp_path, sweep_id)
    assert report["configs"][1] == {
        "learning_rate": 0.1,
        "runs": [running],
        "best_val_loss_mean": None,
        "best_val_loss_std": None,
    }
    assert report["configs"][2]["runs"] == []
    table = results.table()
    assert list(table["runs"]) == [2, 1, 0]
    assert list(table["scored"]) == [2, 0, 0]
    data = sweep_results.band_data(store, results.configs, "epochs", "std", metric="val_loss")
    assert set(data.config) == {first.label}  # nothing to draw for the others
    cells = sweep_results.heatmap_data(results, "learning_rate")
    assert cells["value"].isna().sum() == 2
    with pytest.raises(ValueError, match="unknown sweep"):
        sweep_results.load_results(tmp_path, "sweep-20260101-000000-abcdef")


def test_a_run_deleted_by_hand_drops_out(tmp_path):
    spec = SweepSpec("gone", BASE, {"momentum": (0.0, 0.5)}, seeds=(0, 1))
    sweep_id, ids = make_sweep(tmp_path, spec)
    RunStore(tmp_path).delete(ids[0])
    results = sweep_results.load_results(tmp_path, sweep_id)
    assert [len(c.runs) for c in sorted(results.configs, key=lambda c: c.label)] == [1, 2]


# --- before Start ----------------------------------------------------------------------------


def test_estimate_from_finished_runs_else_the_default_pace(tmp_path):
    spec = SweepSpec("time", BASE, {"batch_size": (32, None)}, seeds=(0, 1, 2))
    n_train = sweep_results.training_samples(BASE)
    assert n_train == 1797 - math.ceil(0.2 * 1797)
    nothing = sweep_results.estimate_time(spec, [], workers=2)
    steps32, steps_full = math.ceil(n_train / 32) * 4, 4
    assert nothing.runs == spec.run_count == 6
    assert nothing.steps == 3 * (steps32 + steps_full)
    pace = sweep_results.DEFAULT_STEPS_PER_S
    overhead, startup = sweep_results.RUN_OVERHEAD_S, sweep_results.SWEEP_STARTUP_S
    assumed_32, assumed_full = steps32 / pace + overhead, steps_full / pace + overhead
    assert nothing.seconds == pytest.approx(startup + 3 * (assumed_32 + assumed_full) / 2)
    assert nothing.assumed == 2
    assert "no completed run" in nothing.text
    assert f"{pace:g} steps/s" in nothing.text

    store = RunStore(tmp_path)
    rng = np.random.default_rng(0)
    write_run(store, BASE, rng, steps=100)  # 100 steps in 1 s (write_run's summary): 100 steps/s
    write_run(store, BASE, rng, steps=300)  # 300 steps/s: the median of the two is 200
    write_run(store, dataclasses_replace(BASE, dataset="iris"), rng, steps=10)  # not digits
    measured = sweep_results.estimate_time(spec, store.list_runs(), workers=1)
    assert (measured.measured, measured.assumed) == (1, 1)
    expected = startup + 3 * (steps32 / 200) + 3 * assumed_full
    assert measured.seconds == pytest.approx(expected)
    with pytest.raises(ValueError, match="workers"):
        sweep_results.estimate_time(spec, [], workers=0)


def dataclasses_replace(config: TrainingConfig, **changes) -> TrainingConfig:
    import dataclasses

    return dataclasses.replace(config, **changes)


def test_training_config_of_a_configuration_leaves_the_sweep(tmp_path):
    spec = SweepSpec(
        "again",
        TrainingConfig(optimizer=OptimizerSpec(learning_rate=0.5), epochs=3),
        {"learning_rate": (0.01, 0.1), "nesterov": (True,)},
        seeds=(7, 8),
    )
    sweep_id, _ = make_sweep(tmp_path, spec)
    results = sweep_results.load_results(tmp_path, sweep_id)
    config = results.training_config(results.configs[0])
    assert (config.sweep_id, config.sweep_name, config.seed) == ("", "", 7)
    assert config.optimizer.nesterov is True
    assert config.epochs == 3
    assert config.optimizer.learning_rate == results.configs[0].settings["learning_rate"]


# --- the charts ------------------------------------------------------------------------------


def test_charts_carry_the_data_and_export(tmp_path):
    from keras_sgdplus.lab import charts, sweep_charts

    sweep_id, _ = make_sweep(tmp_path, three_axes(), seed=4)
    results = sweep_results.load_results(tmp_path, sweep_id)
    cells = sweep_results.heatmap_data(results, "learning_rate", "nesterov")
    heat = sweep_charts.heatmap_chart(cells)
    spec = heat.to_dict()
    (values,) = spec["datasets"].values()
    assert sorted(row["label"] for row in values) == sorted(f"{v:.3g}" for v in cells["value"])
    svg = charts.chart_image(heat, "svg").decode()
    assert "<svg" in svg
    assert f"{cells['value'].min():.3g}" in svg  # the annotation is drawn

    store = RunStore(tmp_path)
    data = sweep_results.band_data(store, results.configs[:2], "batches", "std")
    band = sweep_charts.band_chart(data, log_scale=True)
    (drawn,) = band.to_dict()["datasets"].values()
    assert len(drawn) == len(data)
    assert charts.chart_image(band, "png")[:4] == b"\x89PNG"
    thinned = sweep_charts.thin_bands(data, max_points=8, min_per_config=4)
    assert len(thinned) < len(data)
    assert set(thinned.config) == set(data.config)


def test_spec_from_the_pages_texts():
    spec = sweep_results.spec_from_texts(
        "texts",
        BASE,
        {"learning_rate": "1e-3:1:4log", "momentum": "0.5", "nesterov": "false,true"},
        "0,5",
    )
    assert dict(spec.axes) == {"learning_rate": (0.001, 0.01, 0.1, 1.0), "nesterov": (False, True)}
    assert spec.base.optimizer.momentum == 0.5  # one value: fixed, not swept
    assert spec.seeds == (0, 5)
    assert spec.run_count == 16
    with pytest.raises(ValueError, match="momentum"):
        sweep_results.spec_from_texts("bad", BASE, {"momentum": "0,1.5"}, "1")
    with pytest.raises(ValueError, match="seeds"):
        sweep_results.spec_from_texts("bad", BASE, {}, "zero")


# --- sgdplus sweep-results -------------------------------------------------------------------


def test_sweep_results_command(tmp_path, capsys):
    from keras_sgdplus.lab import cli

    sweep_id, _ = make_sweep(tmp_path, three_axes(), seed=6)
    assert cli.main(["sweep-results", sweep_id, "--runs-dir", str(tmp_path), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == sweep_results.as_json(tmp_path, sweep_id)

    assert cli.main(["sweep-results", sweep_id, "--runs-dir", str(tmp_path)]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith(f"grid ({sweep_id}): running, 36 of 36 runs done")
    assert lines[1].split()[:4] == ["rank", "learning_rate", "momentum", "nesterov"]
    best = sweep_results.load_results(tmp_path, sweep_id).configs[0]
    assert lines[2].split()[4:6] == ["3/3", f"{best.best_val_loss_mean:.6g}"]

    missing = "sweep-20260101-000000-abcdef"
    assert cli.main(["sweep-results", missing, "--runs-dir", str(tmp_path)]) == 2
    assert "unknown sweep" in capsys.readouterr().err
