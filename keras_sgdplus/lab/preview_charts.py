"""Small charts the train page shows before a run: a 2-D data set and a learning-rate curve."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab.charts import downsample_indices

__all__ = ["scatter_preview", "schedule_preview"]

PREVIEW_POINTS = 2000  # the schedule curve is drawn with at most this many points


def scatter_preview(x: np.ndarray, y: np.ndarray, task: str) -> alt.Chart:
    """The points of a 2-D set (`x` of shape (n, 2)), colored by class, or by target value
    for a regression set."""
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != 2:
        raise ValueError(f"`x` must have shape (n, 2). Received: shape {x.shape}")
    frame = pd.DataFrame({"x1": x[:, 0], "x2": x[:, 1], "target": np.asarray(y).reshape(-1)})
    if task == "regression":
        color = alt.Color("target:Q", title="y", scale=alt.Scale(scheme="viridis"))
    else:
        frame["target"] = frame["target"].astype(int).astype(str)
        color = alt.Color("target:N", title="class")
    return (
        alt.Chart(frame, height=260)
        .mark_circle(size=22, opacity=0.8)
        .encode(
            x=alt.X("x1:Q", title="x1"),
            y=alt.Y("x2:Q", title="x2"),
            color=color,
            tooltip=["x1:Q", "x2:Q", "target"],
        )
    )


def schedule_preview(rates: np.ndarray, steps_per_epoch: int | None = None) -> alt.Chart:
    """The learning rate of each planned step (`rates[t]` for step t), downsampled to at most
    `PREVIEW_POINTS` points as the recorded curves are (`charts.downsample_indices`: first,
    lowest and highest step of each bucket, and the last step)."""
    rates = np.asarray(rates, dtype=np.float64)
    if rates.ndim != 1 or len(rates) == 0:
        raise ValueError(f"`rates` must be a non-empty 1-D array. Received: shape {rates.shape}")
    steps = downsample_indices(rates, PREVIEW_POINTS)
    frame = pd.DataFrame({"step": steps, "learning_rate": rates[steps]})
    tooltip = [alt.Tooltip("step:Q", title="step"), alt.Tooltip("learning_rate:Q", format=".4g")]
    if steps_per_epoch:
        frame["epoch"] = frame["step"] / steps_per_epoch
        tooltip.append(alt.Tooltip("epoch:Q", format=".2f"))
    return (
        alt.Chart(frame, height=170, title="Learning rate per step (planned)", padding={"top": 12})
        .mark_line()
        .encode(
            x=alt.X("step:Q", title="Step"),
            y=alt.Y("learning_rate:Q", title="Learning rate"),
            tooltip=tooltip,
        )
    )
