"""A sweep's results: its runs grouped by configuration, seeds pooled, ranked, and the data of
its heat map and band curves; the number of runs and the time a sweep will take.

Pure pandas and NumPy: no Keras, no Streamlit. The runs come from the run store
(`RunStore.list_runs`, `load_curve`); the sweep's record and spec from `SweepStore`.

A run's score is its **best validation loss**: the lowest finite `val_loss` of its
`epochs.csv` (NaN while it has none: queued, just started, diverged at once, or trained
without a validation split). A configuration (one value per swept axis) pools its seeds:

    mean = (1 / n) * sum_i b_i
    std  = sqrt(sum_i (b_i - mean)^2 / (n - 1))

over the n runs of the configuration that have a score. The std is the **sample** standard
deviation (ddof = 1): the seeds are a small sample of the seeds one could have drawn, and the
question is how much the outcome varies from seed to seed, which the population formula
(dividing by n) underestimates, by a factor sqrt((n - 1) / n): 0.71 with two seeds. With one
scored run the spread is unknown, so the std is NaN (null in JSON), not 0.

Configurations are ranked by their mean, lowest first; those without a score come last, in
the grid's order.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from keras_sgdplus.lab import datasets
from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import LIVE_STATUSES, RunStore, RunStoreError, RunSummary
from keras_sgdplus.lab.sweeps import (
    SweepSpec,
    SweepStore,
    config_with,
    configurations,
    parse_axis_values,
    parse_seeds,
    runs_of,
    swept_settings,
)

__all__ = [
    "BANDS",
    "DEFAULT_STEPS_PER_S",
    "HEATMAP_RULE",
    "RUN_OVERHEAD_S",
    "SWEEP_STARTUP_S",
    "ConfigResult",
    "Estimate",
    "RunResult",
    "SweepResults",
    "as_json",
    "band_data",
    "best_val_loss",
    "estimate_time",
    "heatmap_data",
    "load_results",
    "settings_label",
    "spec_from_texts",
    "value_text",
]

#: The band around the mean curve: the seeds' extremes, or one sample std either side.
BANDS = {"minmax": "min to max across seeds", "std": "mean +/- one std across seeds"}
#: What a heat map cell shows when the sweep has axes beyond the two drawn.
HEATMAP_RULE = (
    "Each cell is the best (lowest) mean over seeds among the configurations with those two "
    "values, whatever the other swept settings: how good that pair can be when the others "
    "are chosen well."
)
#: Steps per second assumed for a configuration no completed run of the store matches, once
#: its run has started and compiled: a small MLP on one core of this project's 2-core test
#: machine with batches of 32 (digits: about 100 to 200 steps/s, fewer while other work
#: shares the cores).
DEFAULT_STEPS_PER_S = 100.0
#: Seconds each such run costs besides its steps: the model built, the step compiled.
RUN_OVERHEAD_S = 4.0
#: Seconds a sweep takes once before its first run: its worker processes started, Keras and
#: the backend imported in each.
SWEEP_STARTUP_S = 8.0
_DONE = ("completed", "stopped", "diverged", "failed", "interrupted")
_SHORT = {
    "learning_rate": "lr",
    "momentum": "momentum",
    "nesterov": "nesterov",
    "batch_size": "batch",
    "schedule": "schedule",
    "decay": "decay",
}


def value_text(value: Any) -> str:
    """A swept value as the tables and labels show it (full batch: "full")."""
    if value is None:
        return "full"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


def settings_label(settings: Mapping[str, Any]) -> str:
    """``lr=0.1, momentum=0.9``; "(all runs)" for a sweep over seeds only."""
    if not settings:
        return "(all runs)"
    return ", ".join(f"{_SHORT.get(axis, axis)}={value_text(v)}" for axis, v in settings.items())


def _key(settings: Mapping[str, Any]) -> str:
    return json.dumps(list(settings.values()))


def best_val_loss(epochs: pd.DataFrame) -> float:
    """The lowest finite `val_loss` of a run's epochs; NaN when there is none."""
    if "val_loss" not in epochs.columns or epochs.empty:
        return math.nan
    values = pd.to_numeric(epochs["val_loss"], errors="coerce").to_numpy(dtype=np.float64)
    values = values[np.isfinite(values)]
    return float(values.min()) if len(values) else math.nan


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    """Mean and sample std (ddof 1) of the finite values; NaN where undefined."""
    finite = np.asarray([v for v in values if math.isfinite(v)], dtype=np.float64)
    if len(finite) == 0:
        return math.nan, math.nan
    mean = float(finite.mean())
    std = float(finite.std(ddof=1)) if len(finite) > 1 else math.nan
    return mean, std


@dataclass(frozen=True)
class RunResult:
    """One run of a sweep: its seed, status, whether a worker holds it, and its score."""

    run_id: str
    seed: int
    status: str
    active: bool
    epochs_done: int
    best_val_loss: float  # NaN: no finite val_loss yet (or ever)

    @property
    def done(self) -> bool:
        return self.status in _DONE and not self.active


@dataclass(frozen=True)
class ConfigResult:
    """One configuration of the grid: its swept settings, its runs (every seed), and the mean
    and sample std of their best validation losses (NaN when undefined)."""

    settings: dict[str, Any]
    runs: tuple[RunResult, ...]
    best_val_loss_mean: float
    best_val_loss_std: float
    rank: int = 0  # 1 for the best; configurations without a score rank last

    @property
    def label(self) -> str:
        return settings_label(self.settings)

    @property
    def scored(self) -> int:
        return sum(math.isfinite(run.best_val_loss) for run in self.runs)


@dataclass(frozen=True)
class SweepResults:
    """A sweep's record and its configurations, ranked best first."""

    sweep_id: str
    record: dict[str, Any]
    spec: SweepSpec
    configs: tuple[ConfigResult, ...]

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def axes(self) -> tuple[str, ...]:
        return tuple(self.spec.axes)

    @property
    def best(self) -> ConfigResult | None:
        """The best configuration with a score; None while none has one."""
        first = self.configs[0] if self.configs else None
        return first if first is not None and math.isfinite(first.best_val_loss_mean) else None

    def progress(self) -> dict[str, int]:
        """Runs done (ended, whatever the outcome), running (training or waiting in a
        worker's queue) and queued (not started: the planned runs not yet in the store, and
        those waiting), out of `spec.run_count`."""
        runs = [run for config in self.configs for run in config.runs]
        done = sum(run.done for run in runs)
        running = sum(run.active and run.status == "running" for run in runs)
        total = self.spec.run_count
        return {
            "total": total,
            "done": done,
            "running": running,
            "queued": max(total - done - running, 0),
        }

    def table(self) -> pd.DataFrame:
        """The ranking: one row per configuration, best first. Columns: rank, each swept
        axis (as text), runs (how many exist), scored (how many have a best validation loss),
        best_val_loss_mean, best_val_loss_std, run_ids (comma-separated)."""
        rows = []
        for config in self.configs:
            row: dict[str, Any] = {"rank": config.rank}
            row.update({axis: value_text(v) for axis, v in config.settings.items()})
            row.update(
                runs=len(config.runs),
                scored=config.scored,
                best_val_loss_mean=config.best_val_loss_mean,
                best_val_loss_std=config.best_val_loss_std,
                run_ids=", ".join(run.run_id for run in config.runs),
            )
            rows.append(row)
        columns = ["rank", *self.axes, "runs", "scored", "best_val_loss_mean"]
        columns += ["best_val_loss_std", "run_ids"]
        return pd.DataFrame(rows, columns=columns)

    def config_of(self, label: str) -> ConfigResult:
        for config in self.configs:
            if config.label == label:
                return config
        raise ValueError(f"no configuration {label!r} in sweep {self.sweep_id}")

    def training_config(self, config: ConfigResult) -> TrainingConfig:
        """The configuration as a run of its own (the base with its settings, the first
        seed, no sweep): what "Open on the Train page" fills in."""
        built = config_with(self.spec.base, config.settings)
        return dataclasses.replace(built, seed=self.spec.seeds[0], sweep_id="", sweep_name="")


def _grid(spec: SweepSpec) -> list[dict[str, Any]]:
    """Every configuration's settings in the grid's order, each value as a run's config
    stores it (a spec's 0 is a config's 0.0), so that runs match them exactly."""
    return [swept_settings(config, spec.axes) for _, config in configurations(spec)]


def _run_result(store: RunStore, run: RunSummary) -> RunResult:
    try:
        best = best_val_loss(store.load_curve(run.run_id, "epochs"))
    except RunStoreError:  # deleted or broken meanwhile: shown, without a score
        best = math.nan
    summary = run.summary or {}
    return RunResult(
        run_id=run.run_id,
        seed=int(run.config.get("seed", 0)),
        status=run.status,
        active=bool(run.active and run.status in LIVE_STATUSES),
        epochs_done=int(summary.get("epochs_completed") or 0),
        best_val_loss=best,
    )


def load_results(runs_dir: str | os.PathLike, sweep_id: str) -> SweepResults:
    """The sweep's configurations with their runs and scores, ranked best first (ValueError
    for an unknown sweep). Every configuration of the grid is listed, with the runs it has
    so far (none before they start)."""
    record = SweepStore(runs_dir).load(sweep_id)
    spec = SweepSpec.from_dict(record["spec"])
    store = RunStore(runs_dir)
    grid = _grid(spec)
    by_key: dict[str, list[RunResult]] = {_key(settings): [] for settings in grid}
    for run in runs_of(store.list_runs(), sweep_id):
        try:
            settings = swept_settings(run.config, spec.axes)
        except (KeyError, TypeError, ValueError):
            continue  # a config that does not hold the axes: not a run of this grid
        by_key.setdefault(_key(settings), []).append(_run_result(store, run))
    configs = []
    for settings in grid:
        runs = tuple(by_key[_key(settings)])
        mean, std = _mean_std([run.best_val_loss for run in runs])
        configs.append(ConfigResult(dict(settings), runs, mean, std))

    def place(i: int) -> tuple[bool, float, int]:
        mean = configs[i].best_val_loss_mean
        return (not math.isfinite(mean), mean if math.isfinite(mean) else 0.0, i)

    order = sorted(range(len(configs)), key=place)
    ranked = tuple(dataclasses.replace(configs[i], rank=rank + 1) for rank, i in enumerate(order))
    return SweepResults(sweep_id, record, spec, ranked)


def _json_number(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def as_json(runs_dir: str | os.PathLike, sweep_id: str) -> dict[str, Any]:
    """`sgdplus sweep-results SWEEP --json`: ``{"sweep": id, "name", "status", "axes",
    "seeds", "configs": [{<each swept setting>: value, ..., "runs": [run ids],
    "best_val_loss_mean": x, "best_val_loss_std": s}, ...]}``, best first; NaN as null."""
    results = load_results(runs_dir, sweep_id)
    configs = []
    for config in results.configs:
        entry: dict[str, Any] = dict(config.settings)
        entry.update(
            runs=[run.run_id for run in config.runs],
            best_val_loss_mean=_json_number(config.best_val_loss_mean),
            best_val_loss_std=_json_number(config.best_val_loss_std),
        )
        configs.append(entry)
    return {
        "sweep": results.sweep_id,
        "name": results.name,
        "status": results.record.get("status"),
        "axes": list(results.axes),
        "seeds": list(results.spec.seeds),
        "configs": configs,
    }


# --- the heat map ------------------------------------------------------------------------------


def heatmap_data(results: SweepResults, x_axis: str, y_axis: str | None = None) -> pd.DataFrame:
    """One row per cell of the heat map over two swept axes (`y_axis` None: one row of
    cells, for a sweep of one axis).

    Columns: ``x``, ``y`` (the values as text; "" for no y), ``x_order``, ``y_order`` (the
    grid's order of the values), ``value`` (the cell's best validation loss: see
    `HEATMAP_RULE`, ``min`` over the configurations of the cell of their seed means; NaN
    when none has a score), ``config`` (the label of the configuration that gives it) and
    ``seeds`` (its scored runs).
    """
    for axis in (x_axis, y_axis):
        if axis is not None and axis not in results.axes:
            raise ValueError(
                f"`axis` must be a swept axis of this sweep ({', '.join(results.axes)}). "
                f"Received: axis={axis!r}"
            )
    if x_axis == y_axis:
        raise ValueError(f"the heat map needs two different axes. Received: {x_axis!r} twice")
    grid = _grid(results.spec)
    x_values = list(dict.fromkeys(value_text(settings[x_axis]) for settings in grid))
    y_values = list(dict.fromkeys(value_text(s[y_axis]) for s in grid)) if y_axis else [""]
    cells: dict[tuple[str, str], ConfigResult] = {}
    for config in results.configs:
        y = value_text(config.settings[y_axis]) if y_axis else ""
        cell = (value_text(config.settings[x_axis]), y)
        held = cells.get(cell)
        mean = config.best_val_loss_mean
        if held is None or (math.isfinite(mean) and not mean >= held.best_val_loss_mean):
            cells[cell] = config
    rows = []
    for (x, y), best in cells.items():
        rows.append(
            {
                "x": x,
                "y": y,
                "x_order": x_values.index(x),
                "y_order": y_values.index(y),
                "value": best.best_val_loss_mean,
                "config": best.label,
                "seeds": best.scored,
            }
        )
    frame = pd.DataFrame(rows, columns=["x", "y", "x_order", "y_order", "value", "config", "seeds"])
    frame = frame.sort_values(["y_order", "x_order"], ignore_index=True)
    frame.attrs.update(x_axis=x_axis, y_axis=y_axis or "")
    return frame


# --- the band curves ---------------------------------------------------------------------------


def band_data(
    store: RunStore,
    configs: Iterable[ConfigResult],
    view: str = "batches",
    band: str = "minmax",
    *,
    metric: str = "loss",
    smoothing: float = 0.0,
) -> pd.DataFrame:
    """The mean curve of each configuration across its seeds, with a band.

    `view` "batches": each step's own training loss (`batches.csv`, by `step`);
    "epochs": the epoch rows' `metric` ("loss" or "val_loss", by epochs completed). The runs
    are aligned by step (or epoch); at each x the n runs that have reached it count, so
    runs of unequal length (one still training, one stopped) pool where they overlap.

        mean  = (1 / n) * sum_i y_i
        band "minmax": lower = min_i y_i, upper = max_i y_i
        band "std":    lower = mean - s, upper = mean + s,
                       s = sqrt(sum_i (y_i - mean)^2 / (n - 1))  (sample std; NaN for n = 1)

    Non-finite values (a diverged step) are left out of a step's pool. `smoothing` (in
    [0, 1)) smooths each run's batch losses first (`charts.smooth`, TensorBoard's debiased
    moving average); 0 keeps them as they are.

    Columns: ``config`` (its label), ``x``, ``mean``, ``lower``, ``upper``, ``runs`` (n).
    """
    if view not in ("batches", "epochs"):
        raise ValueError(f"`view` must be batches or epochs. Received: view={view!r}")
    if band not in BANDS:
        raise ValueError(f"`band` must be one of {', '.join(BANDS)}. Received: band={band!r}")
    parts = []
    for config in configs:
        series = []
        for run in config.runs:
            try:
                curve = store.load_curve(run.run_id, view)
            except RunStoreError:
                continue  # deleted meanwhile
            column = "loss" if view == "batches" else metric
            if curve.empty or column not in curve.columns:
                continue
            x = curve["step"] if view == "batches" else curve["epoch"] + 1
            y = pd.to_numeric(curve[column], errors="coerce").to_numpy(dtype=np.float64)
            if smoothing and view == "batches":
                from keras_sgdplus.lab.charts import smooth

                y = smooth(y, smoothing)
            series.append(pd.Series(y, index=x.to_numpy(), name=run.run_id))
        if not series:
            continue
        table = pd.concat(series, axis=1).sort_index()
        values = table.to_numpy(dtype=np.float64)
        values = np.where(np.isfinite(values), values, np.nan)
        count = np.sum(~np.isnan(values), axis=1)
        keep = count > 0
        values, count = values[keep], count[keep]
        mean = np.nanmean(values, axis=1)
        if band == "minmax":
            lower, upper = np.nanmin(values, axis=1), np.nanmax(values, axis=1)
        else:
            spread = np.full(len(count), np.nan)
            several = count > 1
            spread[several] = np.nanstd(values[several], axis=1, ddof=1)
            lower, upper = mean - spread, mean + spread
        parts.append(
            pd.DataFrame(
                {
                    "config": config.label,
                    "x": table.index.to_numpy(dtype=np.float64)[keep],
                    "mean": mean,
                    "lower": lower,
                    "upper": upper,
                    "runs": count,
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "config": pd.Series([], dtype=object),
                **{c: pd.Series([], dtype=float) for c in ("x", "mean", "lower", "upper")},
                "runs": pd.Series([], dtype=int),
            }
        )
    data = pd.concat(parts, ignore_index=True)
    data.attrs.update(view=view, band=band, metric=metric)
    return data


# --- before Start: the spec, the number of runs and the time -----------------------------------


def spec_from_texts(
    name: str, base: TrainingConfig, values: Mapping[str, str], seeds: str
) -> SweepSpec:
    """A sweep from the Sweeps page's text fields: for each axis its values as
    `sweeps.parse_axis_values` reads them ("0.01,0.1", "1e-3:1:4log"); an axis given one
    value is fixed (set in the base), two or more sweep it; `seeds` a count or a list.
    ValueError naming the setting for a bad one."""
    axes: dict[str, tuple[Any, ...]] = {}
    fixed: dict[str, Any] = {}
    for axis, text in values.items():
        parsed = parse_axis_values(axis, text)
        for value in parsed:  # each value checked now, as a config's setting
            config_with(base, {axis: value})
        if len(parsed) == 1:
            fixed[axis] = parsed[0]
        else:
            axes[axis] = parsed
    return SweepSpec(name, config_with(base, fixed), axes, parse_seeds(seeds))


@dataclass(frozen=True)
class Estimate:
    """How long a sweep should take: `seconds` in all with `workers` runs at once, from
    `steps` optimizer steps; `measured` configurations' pace came from finished runs of the
    store, the others from `DEFAULT_STEPS_PER_S`."""

    runs: int
    steps: int
    seconds: float
    workers: int
    measured: int
    assumed: int

    @property
    def text(self) -> str:
        when = f"{self.seconds:.0f} s" if self.seconds < 90 else f"{self.seconds / 60:.1f} min"
        measured = "the pace of completed runs with the same dataset and batch size"
        assumed = (
            f"{DEFAULT_STEPS_PER_S:g} steps/s and {RUN_OVERHEAD_S:g} s of compiling a run "
            "(no completed run with the same dataset and batch size to measure)"
        )
        if not self.assumed:
            source = measured
        elif not self.measured:
            source = assumed
        else:
            source = f"{measured} for {self.measured} configurations, else {assumed}"
        return (
            f"About {when}: {self.runs} runs, {self.steps:,} steps, {self.workers} at once; "
            f"from {source}."
        )


def _pace(summaries: Iterable[RunSummary]) -> dict[tuple[Any, Any], float]:
    """Median steps per second of the completed runs, by (dataset, batch size)."""
    paces: dict[tuple[Any, Any], list[float]] = {}
    for run in summaries:
        if not run.readable or run.status != "completed":
            continue
        summary = run.summary or {}
        steps, elapsed = summary.get("steps"), summary.get("elapsed_s")
        if not (isinstance(steps, int | float) and isinstance(elapsed, int | float)):
            continue
        if steps > 0 and elapsed > 0:
            key = (run.config.get("dataset"), run.config.get("batch_size"))
            paces.setdefault(key, []).append(steps / elapsed)
    return {key: float(np.median(values)) for key, values in paces.items()}


def _steps(config: TrainingConfig, n_train: int) -> int:
    batch = config.batch_size or n_train
    return math.ceil(n_train / batch) * config.epochs


def training_samples(config: TrainingConfig) -> int | None:
    """The training-set size of a built-in dataset with the config's split (None for the
    user's own files: the caller knows it)."""
    info = datasets.DATASETS.get(config.dataset)
    if info is None:
        return None
    size = config.n_samples if (info.source == "generated" and config.n_samples) else info.size
    return datasets.training_size(size, config.validation_split)


def estimate_time(
    spec: SweepSpec,
    summaries: Iterable[RunSummary],
    *,
    workers: int,
    n_train: int | None = None,
) -> Estimate:
    """The sweep's time before it starts, from each run's steps (`ceil(n_train / batch) *
    epochs`). A configuration with completed runs of the same dataset and batch size in the
    store takes their median pace, steps / elapsed_s from their summaries (elapsed from the
    run's creation to its end, so compiling is in it); any other takes
    `DEFAULT_STEPS_PER_S` plus `RUN_OVERHEAD_S`. The runs are shared by `workers`
    processes, started once (`SWEEP_STARTUP_S`):

        seconds = SWEEP_STARTUP_S + sum_r t_r / workers
        t_r     = steps_r / pace_measured                     (measured)
                  steps_r / DEFAULT_STEPS_PER_S + RUN_OVERHEAD_S  (assumed)

    A rough figure: runs side by side share the machine's cores and memory bandwidth, so
    each may go slower than alone."""
    if workers < 1:
        raise ValueError(f"`workers` must be >= 1. Received: workers={workers!r}")
    paces = _pace(summaries)
    n_train = n_train or training_samples(spec.base)
    if not n_train:
        raise ValueError("the training-set size of this dataset is unknown: pass `n_train`")
    total_steps, seconds, measured, assumed = 0, 0.0, 0, 0
    for _, config in configurations(spec):
        steps = _steps(config, n_train)
        pace = paces.get((config.dataset, config.batch_size))
        if pace is None:
            each, assumed = steps / DEFAULT_STEPS_PER_S + RUN_OVERHEAD_S, assumed + 1
        else:
            each, measured = steps / pace, measured + 1
        runs = len(spec.seeds)
        total_steps += steps * runs
        seconds += runs * each
    return Estimate(
        runs=spec.run_count,
        steps=total_steps,
        seconds=SWEEP_STARTUP_S + seconds / workers,
        workers=workers,
        measured=measured,
        assumed=assumed,
    )
