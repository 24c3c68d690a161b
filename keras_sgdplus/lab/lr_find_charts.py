"""The chart of a learning-rate range test: each step's own loss and its smoothed curve
against the rate (log scale), the suggested rate marked, so the user can judge it."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab.lr_find import RangeTestResult

__all__ = ["TITLE", "range_test_chart"]

TITLE = "Learning-rate range test"


def range_test_chart(result: RangeTestResult, height: int = 260) -> alt.LayerChart:
    """Loss (light) and smoothed loss (solid) against the learning rate on a log axis, with
    a vertical rule and label at the suggestion. The y axis stops at 1.5x the first smoothed
    loss so that the blow-up at the end does not flatten the curve (the points above it are
    left out of the view, not of the data)."""
    rates = np.asarray(result.learning_rate, dtype="float64")
    if len(rates) == 0:
        raise ValueError("`result` holds no steps. Received: an empty range test")
    frame = pd.DataFrame(
        {
            "learning_rate": np.concatenate([rates, rates]),
            "loss": np.concatenate([result.loss, result.smoothed]),
            "curve": ["loss"] * len(rates) + ["smoothed"] * len(rates),
        }
    )
    top = float(np.nanmax([1.5 * result.smoothed[0], np.nanmin(result.loss)]))
    bottom = float(np.nanmin(result.loss))
    x = alt.X("learning_rate:Q", title="Learning rate", scale=alt.Scale(type="log"))
    y = alt.Y("loss:Q", title="Loss", scale=alt.Scale(domain=[bottom, top], clamp=True))
    curves = (
        alt.Chart(frame)
        .mark_line(clip=True)
        .encode(
            x=x,
            y=y,
            color=alt.Color(
                "curve:N",
                title=None,
                scale=alt.Scale(domain=["loss", "smoothed"], range=["#a6c8e8", "#1f5fa8"]),
            ),
            tooltip=[
                alt.Tooltip("learning_rate:Q", title="rate", format=".3g"),
                alt.Tooltip("loss:Q", format=".4g"),
                "curve:N",
            ],
        )
    )
    layers: list[alt.Chart] = [curves]
    if result.suggestion is not None:
        mark = pd.DataFrame(
            {
                "learning_rate": [result.suggestion],
                "label": [f"suggested {result.suggestion:.3g} ({result.rule})"],
            }
        )
        base = alt.Chart(mark).encode(x=alt.X("learning_rate:Q"))
        layers.append(base.mark_rule(color="#d62728", strokeDash=[4, 3]))
        layers.append(
            base.mark_text(align="left", dx=4, dy=-6, color="#d62728").encode(
                y=alt.value(12), text="label:N"
            )
        )
    return alt.layer(*layers).properties(title=TITLE, height=height)
