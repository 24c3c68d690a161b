"""Chart builders for the dashboard: the data behind each chart and the Altair chart itself.

Pure functions, no Streamlit: every function takes DataFrames (as ``RunStore.load`` gives
them) and returns a DataFrame or an ``alt.Chart``, so all of it is testable without a browser.

Curves of several runs are overlaid by passing a mapping ``{run label: DataFrame}`` (or one
frame with a ``run`` column) wherever a curve is taken; the charts then color by run.

Views (the Train and Compare pages, see docs/ARCHITECTURE.md):

- mini-batch view: each batch's own loss, optionally smoothed (``smooth``, debiased at the
  start), downsampled for drawing (``downsample_indices``) so that long runs stay fast;
- epoch-averaged view: train and validation loss, and accuracy where the run has it;
- the learning rate per step;
- the compare page's tables: ``runs_table`` (all runs) and ``settings_diff`` (the settings
  of the chosen runs, the differing ones marked).

x axes: ``"step"`` (optimizer steps), ``"epoch"`` (fractional epochs), ``"samples_seen"``,
``"wall_time"`` (seconds since the run started training).
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TypeAlias

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab.cli import flatten
from keras_sgdplus.lab.runs import BATCH_COLUMNS, EPOCH_COLUMNS_BASE, UNREADABLE, RunSummary

__all__ = [
    "IMAGE_FORMATS",
    "X_AXES",
    "batch_curve_data",
    "batch_loss_chart",
    "chart_image",
    "downsample_indices",
    "epoch_chart",
    "epoch_curve_data",
    "fractional_epochs",
    "learning_rate_chart",
    "learning_rate_data",
    "metrics_in",
    "placeholder_curves",
    "runs_table",
    "settings_diff",
    "smooth",
]

X_AXES: dict[str, str] = {
    "step": "Step",
    "epoch": "Epoch",
    "samples_seen": "Samples seen",
    "wall_time": "Wall time (s)",
}
"""The x-axis choices and their axis titles."""

DEFAULT_MAX_POINTS = 2000
#: Epoch lines longer than this are drawn without a point per epoch: hundreds of points
#: hide the line, and every point is a mark the browser draws again at each live refresh.
EPOCH_POINTS_UP_TO = 100
#: Distinct colours for runs and splits (Streamlit's theme would give shades of one hue).
CATEGORY_SCALE = alt.Scale(scheme="tableau10")
MIN_POINTS_PER_RUN = 300

Curves: TypeAlias = "pd.DataFrame | Mapping[str, pd.DataFrame]"
"""One run's curve, ``{run label: curve}``, or a concatenated frame with a ``run`` column."""

_BATCH_NEEDS = ("step", "epoch", "batch", "loss", "samples_seen", "wall_time")
_EPOCH_BASE = ("epoch", "wall_time", "samples_seen")


# --- checks and helpers ------------------------------------------------------------------------


def placeholder_curves(curves: Mapping[str, pd.DataFrame], kind: str) -> dict[str, pd.DataFrame]:
    """`curves` (``kind`` "batches" or "epochs") with each empty frame given the columns the
    charts need, so a live run with nothing recorded yet can be drawn as empty charts.

    An empty chart has the same Vega-Lite spec as the chart with data (a test checks it), so
    the browser builds the charts once, while the run's worker starts, and the first data
    only fills them in, instead of building them at the start of training.
    """
    columns = BATCH_COLUMNS if kind == "batches" else EPOCH_COLUMNS_BASE  # loss included
    empty = pd.DataFrame({column: pd.Series(dtype="float64") for column in columns})
    return {label: frame if len(frame) else empty for label, frame in curves.items()}


def _check_x_axis(x_axis: str, allowed: Iterable[str] = X_AXES) -> None:
    allowed = tuple(allowed)
    if x_axis not in allowed:
        raise ValueError(
            f"`x_axis` must be one of {', '.join(allowed)}. Received: x_axis={x_axis!r}"
        )


def _check_columns(df: pd.DataFrame, needed: Iterable[str], what: str) -> None:
    missing = [c for c in needed if c not in df.columns]
    if missing:
        raise ValueError(f"the {what} curve lacks the columns {missing}")


def _by_run(curves: Curves) -> list[tuple[str, pd.DataFrame]]:
    """``[(label, frame), ...]`` from a frame, a frame with a ``run`` column, or a mapping."""
    if isinstance(curves, Mapping):
        return [(str(label), df) for label, df in curves.items()]
    if "run" in curves.columns:
        return [
            (str(label), df.drop(columns="run")) for label, df in curves.groupby("run", sort=False)
        ]
    return [("", curves)]


def _multi_run(data: pd.DataFrame) -> bool:
    return "run" in data.columns and data["run"].nunique() > 1


def _x_title(data: pd.DataFrame, x_axis: str | None) -> str:
    axis = x_axis or data.attrs.get("x_axis", "step")
    return X_AXES.get(axis, str(axis))


def _positive_or_nan(values: pd.Series) -> pd.Series:
    """For a log axis: non-positive values become NaN (not drawn; the line has a gap there)."""
    return values.where(values > 0)


# --- smoothing and downsampling ----------------------------------------------------------------


def smooth(values: Sequence[float] | np.ndarray | pd.Series, weight: float) -> np.ndarray:
    """Exponential moving average, debiased at the start (as TensorBoard and Adam do).

    With weight ``w`` and the finite values ``v_0, v_1, ...``::

        s_{-1} = 0
        s_t    = w * s_{t-1} + (1 - w) * v_t
        out_t  = s_t / (1 - w ** (t + 1))

    The debiasing divides out the weight the zero start still holds, so ``out_0 == v_0`` and
    early values are not pulled towards 0. ``w = 0`` returns the values unchanged. This is
    pandas' ``ewm(alpha=1 - w, adjust=True)``, which computes the same value as a weighted mean,
    ``sum_i w**i * v_{t-i} / sum_i w**i`` over ``i = 0..t`` (the sums of the formula above with
    the factor ``1 - w`` cancelled).

    Non-finite values (NaN, +-inf: a diverged batch) are skipped, not averaged in: at such a
    position the output repeats the previous output (NaN before the first finite value), and
    ``t`` counts finite values only, so one bad batch does not poison the rest of the curve.

    Args:
        values: the raw series, in time order.
        weight: ``w`` in [0, 1); larger is smoother.

    Returns:
        A float64 array as long as ``values``.
    """
    w = float(weight)
    if not 0.0 <= w < 1.0:
        raise ValueError(f"`weight` must be in [0, 1). Received: weight={weight!r}")
    v = np.asarray(values, dtype=np.float64)
    # +-inf becomes NaN; with ignore_na=True pandas leaves NaN out of the weights (t counts
    # finite values only) and repeats the previous output there (NaN before the first one).
    v = np.where(np.isfinite(v), v, np.nan)
    ewm = pd.Series(v, copy=False).ewm(alpha=1.0 - w, adjust=True, ignore_na=True)
    return ewm.mean().to_numpy(copy=True)  # a writable array (pandas' own view is read-only)


def downsample_indices(values: Sequence[float] | np.ndarray, max_points: int) -> np.ndarray:
    """The indices of the points to draw, at most ``max_points`` of ``n`` (sorted, unique).

    With ``n <= max_points`` all of them. Otherwise the series is cut into
    ``b = (max_points - 1) // 3`` buckets of equal length (``k = ceil(n / b)``), and each
    bucket keeps its first point and the points of its minimum and maximum value; the last
    point is always kept. So spikes (a NaN counts as neither; +inf is a maximum) stay
    visible, and the first and last point are exact.
    """
    if max_points < 4:
        raise ValueError(f"`max_points` must be >= 4. Received: max_points={max_points!r}")
    v = np.asarray(values, dtype=np.float64)
    n = len(v)
    if n <= max_points:
        return np.arange(n)
    buckets = (max_points - 1) // 3
    size = -(-n // buckets)
    buckets = -(-n // size)
    pad = buckets * size - n
    nan = np.isnan(v)
    high = np.concatenate([np.where(nan, -np.inf, v), np.full(pad, -np.inf)])
    low = np.concatenate([np.where(nan, np.inf, v), np.full(pad, np.inf)])
    starts = np.arange(buckets) * size
    top = starts + np.argmax(high.reshape(buckets, size), axis=1)
    bottom = starts + np.argmin(low.reshape(buckets, size), axis=1)
    keep = np.concatenate([starts, top, bottom, [n - 1]])
    return np.unique(np.minimum(keep, n - 1))


def _points_per_run(max_points: int, runs: int) -> int:
    return max(max_points // max(runs, 1), min(MIN_POINTS_PER_RUN, max_points))


# --- x axes ------------------------------------------------------------------------------------


def fractional_epochs(batches: pd.DataFrame) -> np.ndarray:
    """``epoch + batch / n_epoch`` for each batch row, with ``n_epoch`` batches in that epoch.

    ``n_epoch`` is the epoch's highest batch index + 1. The last epoch may still be running
    (or was stopped), so it uses the largest ``n`` of all epochs: its batches then sit where
    they belong instead of being stretched over the whole epoch.
    """
    if batches.empty:
        return np.zeros(0)
    epoch = batches["epoch"].to_numpy()
    batch = batches["batch"].to_numpy(dtype=np.float64)
    counts = batches.groupby("epoch")["batch"].max() + 1
    last = counts.index.max()
    counts.loc[last] = counts.max()
    return epoch + batch / counts.reindex(epoch).to_numpy(dtype=np.float64)


def _x_values(batches: pd.DataFrame, x_axis: str) -> np.ndarray:
    if x_axis == "epoch":
        return fractional_epochs(batches)
    return batches[x_axis].to_numpy(dtype=np.float64)


def _in_step_order(batches: pd.DataFrame) -> pd.DataFrame:
    if batches["step"].is_monotonic_increasing:
        return batches
    return batches.sort_values("step", kind="stable")


# --- the mini-batch view -----------------------------------------------------------------------


def batch_curve_data(
    batches: Curves,
    x_axis: str = "step",
    smoothing: float = 0.0,
    max_points: int = DEFAULT_MAX_POINTS,
) -> pd.DataFrame:
    """The data of the mini-batch view: one row per drawn batch per run.

    Columns: ``run``, ``x`` (by ``x_axis``), ``step``, ``epoch`` (fractional,
    ``epoch + batch / batches_in_epoch``), ``loss`` (the batch's own loss) and ``smoothed``
    (``smooth(loss, smoothing)``). ``attrs["x_axis"]`` names the x axis.

    Smoothing runs on each run's full series; then, when a run has more batches than its share
    of ``max_points`` (``max_points // runs``, at least 300), it is downsampled with
    ``downsample_indices`` (first, min and max loss per bucket, and the last batch).
    """
    _check_x_axis(x_axis)
    runs = _by_run(batches)
    per_run = _points_per_run(max_points, len(runs))
    parts = []
    for label, df in runs:
        _check_columns(df, _BATCH_NEEDS, "batches")
        df = _in_step_order(df)
        loss = df["loss"].to_numpy(dtype=np.float64)
        epoch = fractional_epochs(df)
        x = epoch if x_axis == "epoch" else df[x_axis].to_numpy(dtype=np.float64)
        smoothed = smooth(loss, smoothing)
        keep = downsample_indices(loss, per_run)
        parts.append(
            pd.DataFrame(
                {
                    "run": label,
                    "x": x[keep],
                    "step": df["step"].to_numpy()[keep],
                    "epoch": epoch[keep],
                    "loss": loss[keep],
                    "smoothed": smoothed[keep],
                }
            )
        )
    data = _concat(parts, ["run", "x", "step", "epoch", "loss", "smoothed"])
    data.attrs["x_axis"] = x_axis
    return data


def _concat(parts: list[pd.DataFrame], columns: list[str]) -> pd.DataFrame:
    parts = [p for p in parts if len(p)]
    if not parts:
        return pd.DataFrame(
            {c: pd.Series([], dtype=object if c == "run" else float) for c in columns}
        )
    return pd.concat(parts, ignore_index=True)


def batch_loss_chart(
    data: pd.DataFrame,
    log_scale: bool = False,
    *,
    show_raw: bool = True,
    x_axis: str | None = None,
    title: str = "Loss per mini-batch",
) -> alt.LayerChart:
    """The mini-batch view from ``batch_curve_data``: the smoothed loss as a line over the raw
    loss (faint), colored by run when there are several, with tooltips and x zoom/pan.

    ``log_scale`` draws the loss axis on a log scale; non-positive losses cannot be drawn
    there and are dropped (the line has a gap).
    """
    data = data.copy()
    if log_scale:
        data["loss"] = _positive_or_nan(data["loss"])
        data["smoothed"] = _positive_or_nan(data["smoothed"])
    multi = _multi_run(data)
    x = alt.X("x:Q", title=_x_title(data, x_axis))
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    y_title = "Loss (log scale)" if log_scale else "Loss"
    tooltip = [
        *([alt.Tooltip("run:N", title="Run")] if multi else []),
        alt.Tooltip("step:Q", title="Step"),
        alt.Tooltip("epoch:Q", title="Epoch", format=".2f"),
        alt.Tooltip("x:Q", title=_x_title(data, x_axis), format=",.4~g"),
        alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
        alt.Tooltip("smoothed:Q", title="Smoothed", format=".4~g"),
    ]
    color: Any = (
        alt.Color("run:N", title="Run", scale=CATEGORY_SCALE) if multi else alt.value("#1f77b4")
    )
    # The tooltip (which names both losses) on the smoothed line only: the browser computes
    # a tooltip for every point of a line at every redraw of a live chart.
    base = alt.Chart(data).encode(x=x, color=color)
    smoothed = base.mark_line(strokeWidth=2).encode(
        y=alt.Y("smoothed:Q", title=y_title, scale=scale), tooltip=tooltip
    )
    layers = []
    if show_raw:
        layers.append(
            base.mark_line(opacity=0.3, strokeWidth=1).encode(
                y=alt.Y("loss:Q", title=y_title, scale=scale)
            )
        )
    layers.append(smoothed)
    return alt.layer(*layers).properties(title=title).interactive(bind_y=False)


# --- the epoch-averaged view -------------------------------------------------------------------


def _steps_at_epoch_end(batches: pd.DataFrame, epochs: pd.Series) -> np.ndarray:
    """Optimizer steps done at the end of each epoch: the batches recorded up to it."""
    per_epoch = batches.groupby("epoch").size().sort_index().cumsum()
    return per_epoch.reindex(epochs.to_numpy()).to_numpy(dtype=np.float64)


def epoch_curve_data(
    epochs: Curves,
    x_axis: str = "epoch",
    batches: Curves | None = None,
) -> pd.DataFrame:
    """The data of the epoch-averaged view in long form: one row per run, epoch and series.

    Columns: ``run``, ``x``, ``epoch`` (epochs completed, ``epoch + 1``, as each row is
    recorded at the end of its epoch), ``metric`` (``loss``, ``accuracy``, ...), ``split``
    (``train`` for a column ``m``, ``validation`` for ``val_m``) and ``value``.

    x by ``"epoch"`` (epochs completed), ``"samples_seen"``, ``"wall_time"`` or ``"step"``
    (steps done at the epoch's end; needs the run's ``batches`` too, as a matching mapping or
    frame). Non-finite values, and epochs without an x value, are left out.
    """
    _check_x_axis(x_axis)
    runs = _by_run(epochs)
    batch_runs: dict[str, pd.DataFrame] = dict(_by_run(batches)) if batches is not None else {}
    if x_axis == "step" and batches is None:
        raise ValueError("`x_axis` 'step' for epochs needs the runs' batches")
    parts = []
    for label, df in runs:
        _check_columns(df, (*_EPOCH_BASE, "loss"), "epochs")
        if x_axis == "step":
            if label not in batch_runs:
                raise ValueError(f"no batches given for run {label!r}")
            x = _steps_at_epoch_end(batch_runs[label], df["epoch"])
        elif x_axis == "epoch":
            x = df["epoch"].to_numpy(dtype=np.float64) + 1
        else:
            x = df[x_axis].to_numpy(dtype=np.float64)
        for column in df.columns:
            if column in _EPOCH_BASE:
                continue
            split = "validation" if column.startswith("val_") else "train"
            metric = column.removeprefix("val_")
            value = pd.to_numeric(df[column], errors="coerce").to_numpy(dtype=np.float64)
            part = pd.DataFrame(
                {
                    "run": label,
                    "x": x,
                    "epoch": df["epoch"].to_numpy() + 1,
                    "metric": metric,
                    "split": split,
                    "value": value,
                }
            )
            parts.append(part[np.isfinite(part["value"]) & np.isfinite(part["x"])])
    data = _concat(parts, ["run", "x", "epoch", "metric", "split", "value"])
    data.attrs["x_axis"] = x_axis
    return data


def metrics_in(data: pd.DataFrame) -> list[str]:
    """The metrics present in ``epoch_curve_data`` output, loss first."""
    found = list(dict.fromkeys(data["metric"])) if len(data) else []
    return sorted(found, key=lambda m: (m != "loss", m))


def epoch_chart(
    data: pd.DataFrame,
    log_scale: bool = False,
    metric: str = "loss",
    *,
    x_axis: str | None = None,
    title: str | None = None,
) -> alt.Chart:
    """The epoch-averaged view of one metric from ``epoch_curve_data``: train and validation
    as lines, with a point at each epoch while a line has at most ``EPOCH_POINTS_UP_TO``
    epochs; with several runs, color by run and dash by split.

    ``log_scale`` puts the y axis on a log scale, dropping non-positive values.
    """
    data = data[data["metric"] == metric].copy()
    if log_scale:
        data["value"] = _positive_or_nan(data["value"])
        data = data[data["value"].notna()]
    multi = _multi_run(data)
    name = metric.replace("_", " ").capitalize()
    x_title = _x_title(data, x_axis)
    if x_title == "Epoch":
        x_title = "Epochs completed"
    y_scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    y_title = f"{name} (log scale)" if log_scale else name
    tooltip = [
        *([alt.Tooltip("run:N", title="Run")] if multi else []),
        alt.Tooltip("split:N", title="Split"),
        alt.Tooltip("epoch:Q", title="Epochs completed"),
        alt.Tooltip("x:Q", title=x_title, format=",.4~g"),
        alt.Tooltip("value:Q", title=name, format=".4~g"),
    ]
    encoding: dict[str, Any] = {
        "x": alt.X("x:Q", title=x_title),
        "y": alt.Y("value:Q", title=y_title, scale=y_scale, axis=alt.Axis(format="~g")),
        "tooltip": tooltip,
    }
    if multi:
        encoding["color"] = alt.Color("run:N", title="Run", scale=CATEGORY_SCALE)
        encoding["strokeDash"] = alt.StrokeDash("split:N", title="Split")
        encoding["shape"] = alt.Shape("split:N", title="Split")
        encoding["detail"] = alt.Detail("split:N")
    else:
        encoding["color"] = alt.Color("split:N", title="Split", scale=CATEGORY_SCALE)
    per_line = data.groupby(["run", "split"]).size().max() if len(data) else 0
    chart = (
        alt.Chart(data)
        .mark_line(point=bool(per_line <= EPOCH_POINTS_UP_TO))
        .encode(**encoding)
        .properties(title=title or f"{name} per epoch")
    )
    return chart.interactive(bind_y=False)


# --- the learning rate -------------------------------------------------------------------------


def learning_rate_data(
    batches: Curves, x_axis: str = "step", max_points: int = DEFAULT_MAX_POINTS
) -> pd.DataFrame:
    """Columns ``run``, ``x``, ``step``, ``learning_rate``: the rate of each step, downsampled
    like the loss (first, min and max per bucket, and the last step)."""
    _check_x_axis(x_axis)
    runs = _by_run(batches)
    per_run = _points_per_run(max_points, len(runs))
    parts = []
    for label, df in runs:
        _check_columns(df, (*_BATCH_NEEDS, "learning_rate"), "batches")
        df = _in_step_order(df)
        rate = df["learning_rate"].to_numpy(dtype=np.float64)
        keep = downsample_indices(rate, per_run)
        parts.append(
            pd.DataFrame(
                {
                    "run": label,
                    "x": _x_values(df, x_axis)[keep],
                    "step": df["step"].to_numpy()[keep],
                    "learning_rate": rate[keep],
                }
            )
        )
    data = _concat(parts, ["run", "x", "step", "learning_rate"])
    data.attrs["x_axis"] = x_axis
    return data


def learning_rate_chart(
    batches: Curves,
    x_axis: str = "step",
    log_scale: bool = False,
    *,
    max_points: int = DEFAULT_MAX_POINTS,
    title: str = "Learning rate per step",
) -> alt.Chart:
    """The learning rate of each step (``learning_rate_data``), colored by run when several.
    ``log_scale`` drops non-positive rates."""
    data = learning_rate_data(batches, x_axis, max_points)
    if log_scale:
        data = data[data["learning_rate"] > 0]
    multi = _multi_run(data)
    x_title = _x_title(data, x_axis)
    tooltip = [
        *([alt.Tooltip("run:N", title="Run")] if multi else []),
        alt.Tooltip("step:Q", title="Step"),
        alt.Tooltip("x:Q", title=x_title, format=",.4~g"),
        alt.Tooltip("learning_rate:Q", title="Learning rate", format=".4~g"),
    ]
    encoding: dict[str, Any] = {
        "x": alt.X("x:Q", title=x_title),
        "y": alt.Y(
            "learning_rate:Q",
            title="Learning rate (log scale)" if log_scale else "Learning rate",
            scale=alt.Scale(type="log") if log_scale else alt.Scale(),
        ),
        "tooltip": tooltip,
    }
    if multi:
        encoding["color"] = alt.Color("run:N", title="Run", scale=CATEGORY_SCALE)
    return (
        alt.Chart(data)
        .mark_line(interpolate="step-after")
        .encode(**encoding)
        .properties(title=title)
        .interactive(bind_y=False)
    )


# --- the compare page's tables -----------------------------------------------------------------


def _same(values: list[Any]) -> bool:
    texts = {json.dumps(v, sort_keys=True, default=str) for v in values}
    return len(texts) <= 1


def _text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def settings_diff(configs: Mapping[str, Mapping[str, Any]], as_text: bool = False) -> pd.DataFrame:
    """The runs' settings side by side: one row per setting, one column per run, and
    ``differs`` (bool) where the runs do not all have the same value.

    Nested configs are flattened to ``"optimizer.momentum"`` style keys (``cli.flatten``),
    sorted. A setting missing from a run is None there (and differs from any value). Values
    compare as JSON text, so ``1`` and ``1.0`` differ but two NaNs are the same.
    ``as_text`` formats every value as text (``-`` for missing), for a display table whose
    columns would otherwise mix types.
    """
    labels = [str(label) for label in configs]
    if "differs" in labels:
        raise ValueError("a run label cannot be 'differs'")
    flat = [flatten(dict(config)) for config in configs.values()]
    keys = sorted({key for config in flat for key in config})
    table: dict[str, list[Any]] = {}
    for label, config in zip(labels, flat, strict=True):
        column = [config.get(key) for key in keys]
        table[label] = [_text(v) for v in column] if as_text else column
    differs = [not _same([config.get(key) for config in flat]) for key in keys]
    frame = pd.DataFrame(table, index=pd.Index(keys, name="setting"), dtype=object)
    frame["differs"] = pd.Series(differs, index=frame.index, dtype=bool)
    return frame


# The summary's results: numbers, float64 with NaN where missing, so the columns sort.
_RESULT_COLUMNS = (
    "final_loss",
    "best_loss",
    "final_val_loss",
    "best_val_loss",
    "final_accuracy",
    "best_accuracy",
    "final_val_accuracy",
    "best_val_accuracy",
    "elapsed_s",
    "samples_per_s",
)
RUNS_TABLE_COLUMNS = (
    "run_id",
    "name",
    "status",
    "live",
    "created_at",
    "dataset",
    "model",
    "optimizer",
    "learning_rate",
    "momentum",
    "nesterov",
    "batch_size",
    "schedule",
    "epochs",
    "epochs_completed",
    *_RESULT_COLUMNS,
    "reason",
)
_FLOAT_COLUMNS = {"learning_rate", "momentum", *_RESULT_COLUMNS}


def _number(value: Any) -> float:
    if isinstance(value, bool):
        return float("nan")
    try:
        return float(value)
    except (TypeError, ValueError):
        return float("nan")


def _section(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _batch_size_text(value: Any) -> str:
    if value is None:
        return "full"
    return str(value)


def runs_table(summaries: Iterable[RunSummary]) -> pd.DataFrame:
    """One row per run from ``RunStore.list_runs()``, in the columns ``RUNS_TABLE_COLUMNS``.

    Settings come from the run's config (``optimizer.learning_rate``, ``.momentum``,
    ``.nesterov``, ``.schedule.name``; ``batch_size`` as text, ``full`` for the whole set),
    results from its summary (``final_*``/``best_*`` losses and accuracies, ``elapsed_s``,
    ``samples_per_s``; NaN where the run has none). ``live`` is True while a worker writes the
    run. ``reason`` holds why a run is unreadable (status ``unreadable``), or a failed run's
    error; an unreadable run has its id, status and reason and nothing else.
    """
    rows = []
    for run in summaries:
        row: dict[str, Any] = dict.fromkeys(RUNS_TABLE_COLUMNS)
        row.update(run_id=run.run_id, created_at=run.created_at, live=bool(run.active))
        if not run.readable:
            row.update(name=run.name, status=UNREADABLE, reason=run.reason or "unreadable")
            rows.append(row)
            continue
        config = _section(run.config)
        summary = _section(run.summary)
        optimizer = _section(config.get("optimizer"))
        schedule = _section(optimizer.get("schedule"))
        model = _section(config.get("model"))
        row.update(
            name=run.name,
            status=run.status,
            dataset=config.get("dataset"),
            model=model.get("kind"),
            optimizer=optimizer.get("name"),
            learning_rate=optimizer.get("learning_rate"),
            momentum=optimizer.get("momentum"),
            nesterov=optimizer.get("nesterov"),
            batch_size=_batch_size_text(config.get("batch_size")) if config else None,
            schedule=schedule.get("name"),
            epochs=config.get("epochs"),
            epochs_completed=summary.get("epochs_completed"),
            reason=run.error,
        )
        for key in RUNS_TABLE_COLUMNS:
            if key.startswith(("final_", "best_")) or key in ("elapsed_s", "samples_per_s"):
                row[key] = summary.get(key)
        rows.append(row)
    frame = pd.DataFrame(rows, columns=list(RUNS_TABLE_COLUMNS))
    for column in _FLOAT_COLUMNS:
        frame[column] = frame[column].map(_number).astype(np.float64)
    for column in ("epochs", "epochs_completed"):
        frame[column] = pd.to_numeric(frame[column], errors="coerce").astype("Int64")
    frame["live"] = frame["live"].fillna(False).astype(bool)
    frame["nesterov"] = frame["nesterov"].astype("boolean")
    for column in ("run_id", "name", "status", "created_at", "dataset", "model", "optimizer"):
        frame[column] = frame[column].astype("string")
    for column in ("batch_size", "schedule", "reason"):
        frame[column] = frame[column].astype("string")
    return frame


IMAGE_FORMATS = {"svg": "image/svg+xml", "png": "image/png"}
"""The formats ``chart_image`` writes, with their MIME types."""


def chart_image(chart: alt.TopLevelMixin, fmt: str, scale: float = 2.0) -> bytes:
    """The chart rendered as an SVG or PNG file, by Altair's own exporter (vl-convert).

    ``scale`` multiplies the PNG's pixel size (2: sharp on high-density screens)."""
    if fmt not in IMAGE_FORMATS:
        raise ValueError(f"`fmt` must be one of {', '.join(IMAGE_FORMATS)}. Received: fmt={fmt!r}")
    import vl_convert

    spec = chart.to_json()
    if fmt == "svg":
        return vl_convert.vegalite_to_svg(spec).encode("utf-8")
    return bytes(vl_convert.vegalite_to_png(spec, scale=scale))
