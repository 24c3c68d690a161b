"""A sweep's charts: the heat map of the best validation loss over two swept axes, and the
band curves (mean across seeds with a band) per configuration.

Altair only, no Streamlit; the data comes from `lab.sweep_results` (`heatmap_data`,
`band_data`). The pages export them as SVG and PNG with `charts.chart_image`, as every chart.
"""

from __future__ import annotations

import math

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab.charts import CATEGORY_SCALE, DEFAULT_MAX_POINTS, downsample_indices
from keras_sgdplus.lab.sweep_results import BANDS

__all__ = ["AXIS_TITLES", "band_chart", "heatmap_chart", "thin_bands"]

AXIS_TITLES = {
    "learning_rate": "Learning rate",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
    "batch_size": "Batch size",
    "schedule": "Schedule",
    "decay": "Decay",
}
MISSING_COLOR = "#e0e0e0"


def heatmap_chart(data: pd.DataFrame, title: str = "Best validation loss") -> alt.LayerChart:
    """Cells coloured by `value` (lower is better: dark), each annotated with its value
    (3 significant digits; "-" where no run has a score yet), from `heatmap_data`. The
    tooltip names the configuration that gives the cell and its scored seeds."""
    data = data.copy()
    finite = data["value"].where(np.isfinite(data["value"]))
    data["label"] = [f"{v:.3g}" if math.isfinite(v) else "-" for v in data["value"]]
    middle = float(finite.min() + finite.max()) / 2 if finite.notna().any() else 0.0
    data["dark"] = (finite < middle).fillna(False)  # text in white on the dark (low) cells
    data["value"] = finite
    x_axis, y_axis = data.attrs.get("x_axis", ""), data.attrs.get("y_axis", "")
    x_order = list(dict.fromkeys(data.sort_values("x_order")["x"]))
    y_order = list(dict.fromkeys(data.sort_values("y_order")["y"]))
    x = alt.X(
        "x:O", title=AXIS_TITLES.get(x_axis, x_axis), sort=x_order, axis=alt.Axis(labelAngle=0)
    )
    y = (
        alt.Y("y:O", title=AXIS_TITLES.get(y_axis, y_axis), sort=y_order)
        if y_axis
        else alt.Y("y:O", title=None, axis=None)
    )
    tooltip = [
        alt.Tooltip("config:N", title="Configuration"),
        alt.Tooltip("value:Q", title="Best val loss (mean over seeds)", format=".4~g"),
        alt.Tooltip("seeds:Q", title="Seeds scored"),
    ]
    base = alt.Chart(data).encode(x=x, y=y)
    empty = base.mark_rect(color=MISSING_COLOR).encode(tooltip=tooltip)
    cells = (
        base.mark_rect()
        .encode(
            color=alt.Color(
                "value:Q",
                title="Best val loss",
                scale=alt.Scale(scheme="viridis"),
                legend=alt.Legend(format=".3~g"),
            ),
            tooltip=tooltip,
        )
        .transform_filter("isValid(datum.value)")
    )
    text = base.mark_text(fontSize=13).encode(
        text="label:N",
        color=alt.condition("datum.dark", alt.value("white"), alt.value("black")),
    )
    return alt.layer(empty, cells, text).properties(title=title, height=alt.Step(44))


def thin_bands(
    data: pd.DataFrame, max_points: int = DEFAULT_MAX_POINTS, min_per_config: int = 300
) -> pd.DataFrame:
    """At most `max_points` rows in all (shared by the configurations, at least
    `min_per_config` each):
    per configuration, the first, lowest and highest mean of each bucket and the last point
    (`charts.downsample_indices`), so long runs stay fast and their spikes visible."""
    if data.empty:
        return data
    groups = list(data.groupby("config", sort=False))
    per_config = max(max_points // len(groups), min_per_config)
    parts = []
    for _, frame in groups:
        keep = downsample_indices(frame["mean"].to_numpy(dtype=np.float64), per_config)
        parts.append(frame.iloc[keep])
    thinned = pd.concat(parts, ignore_index=True)
    thinned.attrs.update(data.attrs)
    return thinned


def band_chart(
    data: pd.DataFrame,
    *,
    log_scale: bool = False,
    title: str | None = None,
) -> alt.LayerChart:
    """Per configuration (colour), the mean across seeds as a line over its band as a faint
    area (`band_data`'s lower to upper: min-max or mean +/- one std), with x zoom/pan."""
    data = data.copy()
    view = data.attrs.get("view", "batches")
    band = data.attrs.get("band", "minmax")
    metric = data.attrs.get("metric", "loss")
    if log_scale:
        for column in ("mean", "lower", "upper"):
            data[column] = data[column].where(data[column] > 0)
    name = "Validation loss" if (view == "epochs" and metric == "val_loss") else "Loss"
    x_title = "Step" if view == "batches" else "Epochs completed"
    scale = alt.Scale(type="log") if log_scale else alt.Scale(zero=False)
    y_title = f"{name} (log scale)" if log_scale else name
    color = alt.Color(
        "config:N",
        title="Configuration",
        scale=CATEGORY_SCALE,
        legend=alt.Legend(labelLimit=400, orient="bottom", columns=2),
    )
    x = alt.X("x:Q", title=x_title)
    tooltip = [
        alt.Tooltip("config:N", title="Configuration"),
        alt.Tooltip("x:Q", title=x_title),
        alt.Tooltip("mean:Q", title="Mean", format=".4~g"),
        alt.Tooltip("lower:Q", title="Lower", format=".4~g"),
        alt.Tooltip("upper:Q", title="Upper", format=".4~g"),
        alt.Tooltip("runs:Q", title="Seeds here"),
    ]
    base = alt.Chart(data).encode(x=x, color=color)
    area = base.mark_area(opacity=0.18).encode(
        y=alt.Y("lower:Q", title=y_title, scale=scale), y2="upper:Q"
    )
    line = base.mark_line(strokeWidth=2, point=view == "epochs").encode(
        y=alt.Y("mean:Q", title=y_title, scale=scale), tooltip=tooltip
    )
    what = "per mini-batch" if view == "batches" else "per epoch"
    title = title or f"{name} {what}: mean across seeds, band {BANDS[band]}"
    return alt.layer(area, line).properties(title=title).interactive(bind_y=False)
