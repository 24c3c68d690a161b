"""Charts of a run's loss landscape (`lab/run_landscape.py`): pure functions over the stored
arrays (no Streamlit), so every chart's data can be checked without a browser.

- `surface_data` / `surface_chart`: the loss over the grid as a heat map of `log10(loss)`,
  the path of the weight snapshots on top (first snapshot ringed, the final weights, at
  the origin, a star); two runs side by side share one colour scale (`shared_domain`);
- `line_data` / `line_chart`: the loss along the straight line from the initial weights
  (t = 0) to the final ones (t = 1), training and validation subsets;
- `describe`: one sentence on what the surface shows (its plane, the variance explained).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab.landscape_charts import STAR

Array = np.ndarray
LOSS_FLOOR = 1e-12  # log10 of a loss of 0 is drawn at this


def surface_data(result: dict[str, Array]) -> pd.DataFrame:
    """One row per grid point: `alpha`, `beta`, the cell's edges (`a_lo`, `a_hi`, `b_lo`,
    `b_hi`: centred on the point, as wide as the grid spacing), `loss` and `log_loss` =
    log10(max(loss, LOSS_FLOOR)) (NaN where the loss is not finite). Row `i * R + j` is the
    point (alpha[j], beta[i])."""
    alpha, beta = np.asarray(result["alpha"]), np.asarray(result["beta"])
    loss = np.asarray(result["loss"], dtype="float64")
    grid_a, grid_b = np.meshgrid(alpha, beta)
    da = (alpha[-1] - alpha[0]) / (len(alpha) - 1)
    db = (beta[-1] - beta[0]) / (len(beta) - 1)
    a, b, values = grid_a.ravel(), grid_b.ravel(), loss.ravel()
    with np.errstate(invalid="ignore", divide="ignore"):
        log_loss = np.where(np.isfinite(values), np.log10(np.maximum(values, LOSS_FLOOR)), np.nan)
    return pd.DataFrame(
        {
            "alpha": a,
            "beta": b,
            "a_lo": a - da / 2,
            "a_hi": a + da / 2,
            "b_lo": b - db / 2,
            "b_hi": b + db / 2,
            "loss": values,
            "log_loss": log_loss,
        }
    )


def path_data(result: dict[str, Array]) -> pd.DataFrame:
    """The projected path: `step` (the optimizer steps before the snapshot), `alpha`,
    `beta`, `order` (0 = the first snapshot), and `point` ("start", "final" or "")."""
    path = np.asarray(result["path"], dtype="float64")
    steps = np.asarray(result["path_steps"])
    point = np.full(len(path), "", dtype=object)
    point[0], point[-1] = "start", "final"
    return pd.DataFrame(
        {
            "step": steps.astype("int64"),
            "alpha": path[:, 0],
            "beta": path[:, 1],
            "order": np.arange(len(path)),
            "point": point,
        }
    )


def shared_domain(results: Sequence[dict[str, Array]]) -> tuple[float, float]:
    """The `log_loss` range over all the results' grids: one colour scale for runs shown
    side by side."""
    values = np.concatenate([surface_data(r)["log_loss"].to_numpy() for r in results])
    finite = values[np.isfinite(values)]
    if not len(finite):
        return (0.0, 1.0)
    return float(finite.min()), float(finite.max())


def describe(result: dict[str, Array], info: dict[str, Any]) -> str:
    """What the surface shows, for a caption."""
    options = info.get("options") or {}
    samples = info.get("train_samples")
    on = f" on {samples} training samples" if samples else ""
    if options.get("directions") == "pca":
        r1, r2 = (float(v) for v in np.asarray(result["explained_variance"]))
        return (
            f"The plane of the weights' path: its first two principal components explain "
            f"{r1:.1%} and {r2:.1%} of the path's variance. Loss{on}; "
            f"{len(result['path'])} weight snapshots, the final weights at the origin."
        )
    return (
        "Two random Gaussian directions, filter-normalised (each filter scaled to the norm "
        f"of the weights' filter, Li et al. 2018), around the final weights. Loss{on}; the "
        "path is the snapshots' least-squares projection onto the plane."
    )


def surface_chart(
    result: dict[str, Array],
    *,
    title: str = "",
    domain: tuple[float, float] | None = None,
    width: int = 460,
    height: int = 400,
) -> alt.LayerChart:
    """The surface as a heat map (colour log10 of the loss, `domain` fixed when given) with
    the path on top: a line through the snapshots in step order, the first one a white
    circle, the final weights a white star; tooltips give the step and the loss."""
    cells = surface_data(result)
    a_scale = alt.Scale(domain=[float(cells.a_lo.min()), float(cells.a_hi.max())], nice=False)
    b_scale = alt.Scale(domain=[float(cells.b_lo.min()), float(cells.b_hi.max())], nice=False)
    color_scale = alt.Scale(scheme="viridis", domain=list(domain) if domain else alt.Undefined)
    no_grid = alt.Axis(grid=False)
    heat = (
        alt.Chart(cells)
        .mark_rect(clip=True, strokeWidth=0.6)
        .encode(
            x=alt.X("a_lo:Q", title="alpha (first direction)", scale=a_scale, axis=no_grid),
            x2="a_hi:Q",
            y=alt.Y("b_lo:Q", title="beta (second direction)", scale=b_scale, axis=no_grid),
            y2="b_hi:Q",
            color=alt.Color(
                "log_loss:Q",
                title="log10(loss)",
                scale=color_scale,
                legend=alt.Legend(orient="right", gradientLength=160),
            ),
            stroke=alt.Stroke("log_loss:Q", scale=color_scale, legend=None),
            tooltip=[
                alt.Tooltip("alpha:Q", title="alpha", format=".3~g"),
                alt.Tooltip("beta:Q", title="beta", format=".3~g"),
                alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
            ],
        )
    )
    path = path_data(result)
    x = alt.X("alpha:Q", scale=a_scale, axis=no_grid)
    y = alt.Y("beta:Q", scale=b_scale, axis=no_grid)
    tooltip = [
        alt.Tooltip("step:Q", title="Step"),
        alt.Tooltip("alpha:Q", title="alpha", format=".4~g"),
        alt.Tooltip("beta:Q", title="beta", format=".4~g"),
    ]
    line = alt.Chart(path).encode(x=x, y=y, order=alt.Order("order:Q"), tooltip=tooltip)
    layers: list[Any] = [
        heat,
        line.mark_line(clip=True, strokeWidth=3.4, color="black", opacity=0.55),
        line.mark_line(clip=True, strokeWidth=1.8, color="#ff3b30"),
        line.mark_point(clip=True, filled=True, size=18, color="#ff3b30", opacity=1),
    ]
    start = alt.Chart(path[path.point == "start"]).encode(x=x, y=y, tooltip=tooltip)
    layers.append(
        start.mark_point(
            clip=True, shape="circle", size=140, filled=True, fill="white", stroke="black"
        )
    )
    final = alt.Chart(path[path.point == "final"]).encode(x=x, y=y, tooltip=tooltip)
    layers.append(
        final.mark_point(clip=True, shape=STAR, size=300, filled=True, fill="white", stroke="black")
    )
    return alt.layer(*layers).properties(width=width, height=height, title=title)


def line_data(result: dict[str, Array]) -> pd.DataFrame:
    """The 1-D view in long form: `t`, `subset` ("training" or "validation"), `loss`."""
    t = np.asarray(result["line_t"], dtype="float64")
    return pd.concat(
        [
            pd.DataFrame({"t": t, "subset": name, "loss": np.asarray(result[key], "float64")})
            for name, key in (("training", "line_train"), ("validation", "line_validation"))
        ],
        ignore_index=True,
    )


def line_chart(
    result: dict[str, Array], *, title: str = "", width: int = 460, height: int = 260
) -> alt.LayerChart:
    """The loss along w0 + t·(w* − w0) (Goodfellow et al. 2015) for both subsets, on a log
    axis, with rules at t = 0 (the initial weights) and t = 1 (the final ones)."""
    data = line_data(result)
    positive = data[np.isfinite(data.loss) & (data.loss > 0)]
    curves = (
        alt.Chart(positive)
        .mark_line(point=alt.OverlayMarkDef(size=14))
        .encode(
            x=alt.X("t:Q", title="t (0: initial weights, 1: final weights)"),
            y=alt.Y("loss:Q", title="Loss", scale=alt.Scale(type="log")),
            color=alt.Color("subset:N", title="Subset"),
            tooltip=[
                alt.Tooltip("subset:N", title="Subset"),
                alt.Tooltip("t:Q", title="t", format=".3~g"),
                alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
            ],
        )
    )
    marks = pd.DataFrame({"t": [0.0, 1.0], "label": ["initial", "final"]})
    rules = alt.Chart(marks).mark_rule(strokeDash=[4, 3], color="gray").encode(x="t:Q")
    labels = (
        alt.Chart(marks)
        .mark_text(align="left", dx=4, dy=-4, baseline="top", color="gray")
        .encode(x="t:Q", y=alt.value(0), text="label:N")
    )
    return alt.layer(rules, labels, curves).properties(width=width, height=height, title=title)


def finite_share(result: dict[str, Array]) -> float:
    """The share of grid points whose loss is finite (a caption warns when some are not)."""
    loss = np.asarray(result["loss"], dtype="float64")
    return float(np.isfinite(loss).mean()) if loss.size else math.nan
