"""The landscape page's charts and tables: the ball rolling across a 2-D loss landscape.

Pure functions over what `keras_sgdplus.lab.landscapes` returns (no Streamlit here), so every
chart's data can be checked without a browser:

- `heat_map_data` / `landscape_chart`: the loss over the landscape's window as a heat map of
  `log10(f - min f + floor)` (`landscapes.log_scaled`), with the paths of the methods drawn
  over it as lines with points, the start point and the minima marked;
- `loss_data` / `loss_chart`: the loss per step of each method on a log axis, as the gap
  `f - f_min` to the landscape's minimum (or, where it has none, as `f` itself on a
  symmetric-log axis; see `loss_data`);
- `summarize_path` / `results_table`: each path's final loss, distance to the nearest
  minimum, the first step within a tolerance of one, and whether and when it diverged;
- `divergence_notes`: a sentence per diverged method, for a caption;
- `ball_data`: where each method's ball is at step k (the page's "Show step k"), drawn on
  `landscape_chart` as a large dot; `landscape_chart(select_start=True)` adds a click
  selection on the heat map (`START_SELECTION`), and `start_from_click` turns a clicked
  point into a start point for the page's sliders;
- `momentum_map_data` / `momentum_map_chart`: "Why momentum works" (Goh, Distill 2017) on
  the ravine: heavy-ball momentum's convergence rate over (learning rate, momentum) from
  `keras_sgdplus.lab.momentum_rates`, Goh's regions outlined, the current settings and the
  optimal pair marked, a click selection (`MAP_SELECTION`) that `pair_from_click` turns into
  values the page's controls allow; `clicked_point` reads either selection;
- the page's choices: `LEARNING_RATES` (log-spaced, with the ravine's optimal rate) with
  `nearest_learning_rate`, and the `LESSONS`: settings on the ravine that each show one
  thing about SGD and momentum.

Paths come as `landscapes.compare_methods` gives them: `{method: DataFrame}` with columns
`step`, `x`, `y`, `loss` and `attrs["diverged"]`, `attrs["diverged_at"]`.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import altair as alt
import numpy as np
import pandas as pd

from keras_sgdplus.lab import momentum_rates
from keras_sgdplus.lab.landscapes import (
    METHODS,
    RAVINE_STEEPNESS,
    Landscape,
    get_landscape,
    log_scaled,
    loss_grid,
)

__all__ = [
    "HEAT_MAP_RESOLUTION",
    "LEARNING_RATES",
    "LESSONS",
    "LOG_FLOOR",
    "MAP_SELECTION",
    "MAX_POINTS_PER_METHOD",
    "METHOD_COLORS",
    "METHOD_LABELS",
    "RAVINE_EIGENVALUES",
    "RAVINE_OPTIMUM",
    "RESULT_COLUMNS",
    "START_SELECTION",
    "TOLERANCE",
    "Lesson",
    "ball_data",
    "clicked_point",
    "divergence_notes",
    "heat_map_data",
    "landscape_chart",
    "loss_chart",
    "loss_data",
    "momentum_map_chart",
    "momentum_map_data",
    "momentum_note",
    "nearest_learning_rate",
    "pair_from_click",
    "path_data",
    "results_table",
    "start_from_click",
    "summarize_path",
]

METHOD_LABELS: dict[str, str] = {
    "sgd": "Plain SGD",
    "momentum": "Momentum",
    "nesterov": "Nesterov",
}
"""The name of each method (a key of `landscapes.METHODS`) in legends, tooltips and tables."""

METHOD_COLORS: dict[str, str] = {
    "sgd": "#ff3b30",
    "momentum": "#ff9f0a",
    "nesterov": "#ff2df0",
}
"""A fixed colour per method (red, orange, magenta): apart from each other and from the heat
map's viridis colours; the lines get a dark halo so they read on its light parts too."""

HEAT_MAP_RESOLUTION = 64
"""Grid points per side of the heat map: 64² = 4096 cells, under Altair's 5000-row limit."""

LOG_FLOOR = 1e-3
"""`floor` of the heat map's `log10(f - min f + floor)`: how deep the valleys look."""

MAX_POINTS_PER_METHOD = 1500
"""The most points of one path drawn (3 paths stay under Altair's 5000-row limit)."""

STAR = (
    "M0,-1L0.247,-0.34L0.951,-0.309L0.399,0.13L0.588,0.809L0,0.42L-0.588,0.809L-0.399,0.13"
    "L-0.951,-0.309L-0.247,-0.34Z"
)
"""A five-pointed star as a Vega symbol path (unit size, y down): the minima's marker."""

TOLERANCE = 1e-2
"""Default distance to a minimum that counts as having reached it (`summarize_path`)."""


def _labels(methods: Iterable[str] | None) -> list[str]:
    chosen = list(METHODS) if methods is None else list(methods)
    unknown = [m for m in chosen if m not in METHOD_LABELS]
    if unknown:
        raise ValueError(
            f"`methods` must be among {', '.join(METHOD_LABELS)}. Received: methods={chosen!r}"
        )
    return chosen


def _shown(paths: Mapping[str, pd.DataFrame], methods: Iterable[str] | None) -> list[str]:
    """The methods to draw: those asked for (all by default) that `paths` has, in METHODS order."""
    chosen = _labels(methods)
    return [m for m in METHODS if m in chosen and m in paths]


def _color(shown: Sequence[str], title: str = "Method") -> alt.Color:
    """Colour by method label, each method keeping its own colour whichever are shown."""
    return alt.Color(
        "method:N",
        title=title,
        scale=alt.Scale(
            domain=[METHOD_LABELS[m] for m in shown],
            range=[METHOD_COLORS[m] for m in shown],
        ),
        sort=[METHOD_LABELS[m] for m in shown],
    )


# --- the heat map ------------------------------------------------------------------------------


def heat_map_data(
    landscape: str | Landscape,
    resolution: int = HEAT_MAP_RESOLUTION,
    floor: float = LOG_FLOOR,
) -> pd.DataFrame:
    """One row per grid point of `landscapes.loss_grid`, for a heat map of rect cells.

    With `xs`, `ys` the `resolution` evenly spaced points across the window and
    `z[i, j] = f(xs[j], ys[i])`:

        log_loss[i, j] = log10(z[i, j] - min(z) + floor)       (landscapes.log_scaled)

    Each cell is centred on its grid point and as wide as the grid spacing
    `dx = (xmax - xmin) / (resolution - 1)` (`dy` likewise): `x_lo = x - dx / 2`,
    `x_hi = x + dx / 2`, so the cells tile the window (the half cells past its edges are
    clipped by the chart).

    Returns:
        Columns `x`, `y`, `x_lo`, `x_hi`, `y_lo`, `y_hi`, `loss` (the real `f`) and
        `log_loss`, row `i * resolution + j` for grid point `(xs[j], ys[i])`.
    """
    xs, ys, z = loss_grid(landscape, resolution)
    scaled = log_scaled(z, floor)
    grid_x, grid_y = np.meshgrid(xs, ys)
    dx = (xs[-1] - xs[0]) / (len(xs) - 1)
    dy = (ys[-1] - ys[0]) / (len(ys) - 1)
    x = grid_x.ravel()
    y = grid_y.ravel()
    return pd.DataFrame(
        {
            "x": x,
            "y": y,
            "x_lo": x - dx / 2,
            "x_hi": x + dx / 2,
            "y_lo": y - dy / 2,
            "y_hi": y + dy / 2,
            "loss": z.ravel(),
            "log_loss": scaled.ravel(),
        }
    )


def _thinned(frame: pd.DataFrame, max_points: int) -> pd.DataFrame:
    """All rows when there are at most `max_points`, else `max_points` evenly spread ones
    (the first and the last always among them)."""
    if len(frame) <= max_points:
        return frame
    keep = np.unique(np.round(np.linspace(0, len(frame) - 1, max_points)).astype(int))
    return frame.iloc[keep]


def path_data(
    paths: Mapping[str, pd.DataFrame],
    methods: Iterable[str] | None = None,
    max_points: int = MAX_POINTS_PER_METHOD,
) -> pd.DataFrame:
    """The paths of the chosen methods in long form, for the lines over the heat map.

    Columns `method` (its label, e.g. "Plain SGD"), `step`, `x`, `y`, `loss`: every point of
    each path (row 0 the start), in METHODS order. A path longer than `max_points` is drawn
    with `max_points` evenly spread points, the start and the last point among them.
    """
    if max_points < 2:
        raise ValueError(f"`max_points` must be >= 2. Received: max_points={max_points!r}")
    parts = []
    for method in _shown(paths, methods):
        frame = _thinned(paths[method], max_points)
        parts.append(
            pd.DataFrame(
                {
                    "method": METHOD_LABELS[method],
                    "step": frame["step"].to_numpy(dtype=np.int64),
                    "x": frame["x"].to_numpy(dtype=np.float64),
                    "y": frame["y"].to_numpy(dtype=np.float64),
                    "loss": frame["loss"].to_numpy(dtype=np.float64),
                }
            )
        )
    if not parts:
        return pd.DataFrame(
            {
                "method": pd.Series([], dtype=object),
                "step": pd.Series([], dtype=np.int64),
                **{c: pd.Series([], dtype=np.float64) for c in ("x", "y", "loss")},
            }
        )
    return pd.concat(parts, ignore_index=True)


def landscape_chart(
    landscape: str | Landscape,
    paths: Mapping[str, pd.DataFrame],
    methods: Iterable[str] | None = None,
    *,
    resolution: int = HEAT_MAP_RESOLUTION,
    width: int = 640,
    height: int = 420,
    title: str | None = None,
    step: int | None = None,
    select_start: bool = False,
) -> alt.LayerChart:
    """The landscape as a heat map with the methods' paths rolling across it.

    Layers, bottom to top:

    1. the heat map of `heat_map_data` (colour `log10(f - min f + 10⁻³)`, tooltip x, y and
       the real loss);
    2. each chosen method's path (`path_data`) as a line through its points, coloured by
       method with `METHOD_COLORS` and a legend, tooltip method, step, x, y, loss;
    3. the start point (a white circle ringed in black, labelled "start");
    4. the minima (white stars ringed in black), when the landscape has any;
    5. with `step`, each chosen method's ball at that step (`ball_data`): a large dot in the
       method's colour, ringed in black (drawn with the paths, on their colour scale).

    With `select_start`, the heat map carries a point selection named `START_SELECTION` on
    its cells' `x` and `y` (a click picks the cell under the pointer; `clicked_point` reads
    it from Streamlit's selection state).

    Both axes are fixed to the landscape's window; the parts of a path that leave it are
    clipped (`clip=True`), not allowed to stretch the axes. No zoom or pan: a scroll over the
    chart scrolls the page, and the window is the picture.
    """
    landscape = get_landscape(landscape)
    xmin, xmax, ymin, ymax = landscape.window
    x_scale = alt.Scale(domain=[xmin, xmax], nice=False, zero=False)
    y_scale = alt.Scale(domain=[ymin, ymax], nice=False, zero=False)
    shown = _shown(paths, methods)

    no_grid = alt.Axis(grid=False)
    heat = (
        alt.Chart(heat_map_data(landscape, resolution))
        .mark_rect(clip=True, strokeWidth=0.6, cursor="crosshair" if select_start else "default")
        .encode(
            x=alt.X("x_lo:Q", title="x", scale=x_scale, axis=no_grid),
            x2="x_hi:Q",
            y=alt.Y("y_lo:Q", title="y", scale=y_scale, axis=no_grid),
            y2="y_hi:Q",
            color=alt.Color(
                "log_loss:Q",
                title=["log10(f - min f", "+ 0.001)"],
                scale=alt.Scale(scheme="viridis"),
                legend=alt.Legend(orient="right", gradientLength=160),
            ),
            # Each cell's outline in its own colour: no hairline seams between the cells.
            stroke=alt.Stroke("log_loss:Q", scale=alt.Scale(scheme="viridis"), legend=None),
            tooltip=[
                alt.Tooltip("x:Q", title="x", format=".3~f"),
                alt.Tooltip("y:Q", title="y", format=".3~f"),
                alt.Tooltip("loss:Q", title="Loss f(x, y)", format=".4~g"),
            ],
        )
    )
    if select_start:
        heat = heat.add_params(
            alt.selection_point(name=START_SELECTION, fields=["x", "y"], on="click", clear=False)
        )
    layers: list[Any] = [heat]
    x = alt.X("x:Q", scale=x_scale, axis=no_grid)
    y = alt.Y("y:Q", scale=y_scale, axis=no_grid)

    points = path_data(paths, shown)
    if len(points):
        base = alt.Chart(points).encode(x=x, y=y, order=alt.Order("step:Q"))
        halo = base.mark_line(clip=True, strokeWidth=3.4, color="black", opacity=0.55).encode(
            detail="method:N"
        )
        colored = base.encode(
            color=_color(shown),
            tooltip=[
                alt.Tooltip("method:N", title="Method"),
                alt.Tooltip("step:Q", title="Step"),
                alt.Tooltip("x:Q", title="x", format=".4~g"),
                alt.Tooltip("y:Q", title="y", format=".4~g"),
                alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
            ],
        )
        path_marks = [
            halo,
            colored.mark_line(clip=True, strokeWidth=1.8),
            colored.mark_point(
                clip=True, filled=True, size=24, stroke="black", strokeWidth=0.6, opacity=1
            ),
        ]
        if step is not None:
            path_marks.append(
                alt.Chart(ball_data(paths, shown, step))
                .mark_point(
                    clip=True,
                    shape="circle",
                    size=260,
                    filled=True,
                    stroke="black",
                    strokeWidth=2,
                    opacity=1,
                )
                .encode(
                    x=x,
                    y=y,
                    color=_color(shown),
                    tooltip=[
                        alt.Tooltip("method:N", title="Ball"),
                        alt.Tooltip("step:Q", title="Step"),
                        alt.Tooltip("x:Q", title="x", format=".4~g"),
                        alt.Tooltip("y:Q", title="y", format=".4~g"),
                        alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
                    ],
                )
            )
        # One colour scale and one legend for the lines, their points and the balls.
        layers.append(alt.layer(*path_marks))
        start = points[points["step"] == 0].iloc[[0]][["x", "y"]].assign(label="start")
        start_base = alt.Chart(start).encode(
            x=x,
            y=y,
            tooltip=[
                alt.Tooltip("label:N", title="Point"),
                alt.Tooltip("x:Q", title="x", format=".4~g"),
                alt.Tooltip("y:Q", title="y", format=".4~g"),
            ],
        )
        layers.append(
            start_base.mark_point(
                clip=True,
                shape="circle",
                size=150,
                filled=True,
                fill="white",
                stroke="black",
                strokeWidth=1.5,
                opacity=1,
            )
        )
        layers.append(
            start_base.mark_text(
                clip=True,
                text="start",
                align="left",
                dx=9,
                dy=-10,
                color="black",
                fontSize=13,
                fontWeight="bold",
            )
        )

    if landscape.minima:
        minima = pd.DataFrame(
            {
                "x": [m[0] for m in landscape.minima],
                "y": [m[1] for m in landscape.minima],
                "loss": landscape.minimum_value,
                "label": "minimum",
            }
        )
        layers.append(
            alt.Chart(minima)
            .mark_point(
                clip=True,
                shape=STAR,
                size=300,
                filled=True,
                fill="white",
                stroke="black",
                strokeWidth=1.2,
                opacity=1,
            )
            .encode(
                x=x,
                y=y,
                tooltip=[
                    alt.Tooltip("label:N", title="Point"),
                    alt.Tooltip("x:Q", title="x", format=".4~g"),
                    alt.Tooltip("y:Q", title="y", format=".4~g"),
                    alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
                ],
            )
        )

    return (
        alt.layer(*layers)
        .resolve_scale(color="independent")
        .properties(width=width, height=height, title=title or landscape.title)
    )


def ball_data(
    paths: Mapping[str, pd.DataFrame], methods: Iterable[str] | None, step: int
) -> pd.DataFrame:
    """Where each chosen method's ball is after `step` steps: one row per method.

    Columns `method` (its label), `step`, `x`, `y`, `loss` (the path's row `step`: row 0 is
    the start) and `stopped` (True where the path ended before `step`, having diverged: the
    ball then stays at its last point, and `step` says which one that is).
    """
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or step < 0:
        raise ValueError(f"`step` must be an integer >= 0. Received: step={step!r}")
    rows = []
    for method in _shown(paths, methods):
        frame = paths[method]
        at = frame[frame["step"] <= step].iloc[-1]
        rows.append(
            {
                "method": METHOD_LABELS[method],
                "step": int(at["step"]),
                "x": float(at["x"]),
                "y": float(at["y"]),
                "loss": float(at["loss"]),
                "stopped": int(at["step"]) < step,
            }
        )
    return pd.DataFrame(rows, columns=["method", "step", "x", "y", "loss", "stopped"])


def clicked_point(
    selection: Mapping[str, Any], name: str, fields: Sequence[str]
) -> list[float] | None:
    """The values of `fields` at the point clicked in the selection `name`, or None.

    `selection` is the `selection` part of what `st.altair_chart(..., on_select=...)` returns
    (a mapping from each selection's name to its value); a point selection's value is a list
    of the selected points, each a mapping from field to value. None when nothing is selected
    (a click beside the cells, or the selection cleared) or a field is missing.
    """
    points = selection.get(name) if isinstance(selection, Mapping) else None
    if not isinstance(points, Sequence) or isinstance(points, str) or not points:
        return None
    point = points[-1]
    if not isinstance(point, Mapping):
        return None
    values = []
    for field in fields:
        value = point.get(field)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return None
        if not math.isfinite(value):
            return None
        values.append(float(value))
    return values


def _rounded(value: float, step: float) -> float:
    """`value` rounded to a multiple of `step`, without binary noise (0.03, not
    0.030000000000000002)."""
    return round(round(value / step) * step, 12)


def start_from_click(
    landscape: str | Landscape, x: float, y: float, step: float = 0.01
) -> tuple[float, float]:
    """A clicked point as a start point: clipped to the window, rounded to `step`.

    The window's edges are themselves multiples of every start step the page uses, so the
    rounded point stays inside it.
    """
    landscape = get_landscape(landscape)
    if not step > 0:
        raise ValueError(f"`step` must be > 0. Received: step={step!r}")
    xmin, xmax, ymin, ymax = landscape.window
    return (
        _rounded(min(max(float(x), xmin), xmax), step),
        _rounded(min(max(float(y), ymin), ymax), step),
    )


# --- why momentum works: the rate map (Goh 2017) -----------------------------------------------

RAVINE_EIGENVALUES: tuple[float, float] = (1.0, RAVINE_STEEPNESS)
"""The eigenvalues of the ravine's Hessian, diag(1, 25): along its floor (x) and across (y)."""

RAVINE_OPTIMUM = momentum_rates.optimal_momentum(RAVINE_EIGENVALUES)
"""Polyak's optimal (learning rate, momentum) on the ravine: (1/9, 4/9), rate 2/3 per step."""

MAP_SELECTION = "momentum_pair"
"""The name of the rate map's click selection (on `learning_rate` and `momentum`)."""

START_SELECTION = "start_point"
"""The name of the landscape chart's click selection (on `x` and `y`), with `select_start`."""

MAP_MAX_LEARNING_RATE = 0.17
"""The map's learning-rate axis ends here: past 4/25 = 0.16 every momentum diverges."""

MAP_COLUMNS = 68
"""Learning-rate cells across the map (0.0025 wide)."""

MAP_ROWS = 50
"""Momentum cells up the map (0.02 high, centred on 0.01, 0.03, ..., 0.99)."""

LR_TITLE = "Learning rate \N{GREEK SMALL LETTER ALPHA}"
OPTIMUM_LABEL = "optimum \N{GREEK SMALL LETTER ALPHA}*, β*"

REGION_EDGE_COLORS: dict[str, str] = {
    "ripples": "#e040fb",
    "oscillation": "#ff9f0a",
    "divergence": "#ff3b30",
}
"""The colour of each region's lower edge on the map (magenta, orange, red)."""


def momentum_map_data(
    eigenvalues: Sequence[float] = RAVINE_EIGENVALUES,
    max_learning_rate: float = MAP_MAX_LEARNING_RATE,
    columns: int = MAP_COLUMNS,
    rows: int = MAP_ROWS,
) -> pd.DataFrame:
    """The rate map's cells: `momentum_rates.rate_grid` at the centres of a regular grid.

    Learning rates `(i + ½) · max_learning_rate / columns`, momenta `(j + ½) / rows`, each
    cell spanning `lr_lo..lr_hi` and `momentum_lo..momentum_hi` (they tile
    [0, max_learning_rate] × [0, 1]). Columns: `learning_rate`, `momentum`, `rate`,
    `region` (its title, `momentum_rates.REGION_TITLES`: the region of the direction that
    sets the rate), `regions` (each eigenvalue's region, for the tooltip), the cell edges and
    `diverges` (rate >= 1).
    """
    for name, value in (("columns", columns), ("rows", rows)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
            raise ValueError(f"`{name}` must be an integer >= 1. Received: {name}={value!r}")
    if not (isinstance(max_learning_rate, (int, float)) and max_learning_rate > 0):
        raise ValueError(
            "`max_learning_rate` must be a number > 0. "
            f"Received: max_learning_rate={max_learning_rate!r}"
        )
    width = max_learning_rate / columns
    height = 1.0 / rows
    learning_rates = (np.arange(columns) + 0.5) * width
    momenta = (np.arange(rows) + 0.5) * height
    grid = momentum_rates.rate_grid(eigenvalues, learning_rates, momenta)
    per_direction = [f"region_{i}" for i in range(len(tuple(eigenvalues)))]
    grid["regions"] = [
        ", ".join(f"λ = {lam:g}: {row[i]}" for i, lam in enumerate(eigenvalues))
        for row in grid[per_direction].itertuples(index=False)
    ]
    grid["region"] = grid["region"].map(momentum_rates.REGION_TITLES)
    grid["lr_lo"] = grid["learning_rate"] - width / 2
    grid["lr_hi"] = grid["learning_rate"] + width / 2
    grid["momentum_lo"] = grid["momentum"] - height / 2
    grid["momentum_hi"] = grid["momentum"] + height / 2
    grid["diverges"] = grid["rate"] >= 1
    return grid.drop(columns=per_direction)


def momentum_map_chart(
    learning_rate: float,
    momentum: float,
    eigenvalues: Sequence[float] = RAVINE_EIGENVALUES,
    *,
    max_learning_rate: float = MAP_MAX_LEARNING_RATE,
    width: int = 640,
    height: int = 380,
    title: str = "Convergence rate of momentum on the ravine",
) -> alt.LayerChart:
    """Goh's map: the rate of heavy-ball momentum over (learning rate, momentum).

    Layers, bottom to top:

    1. the cells of `momentum_map_data`, coloured by `rate` (the factor the distance to the
       minimum shrinks by per step; brighter is faster), grey where it is >= 1 (divergence);
       tooltip the pair, the rate, the region and each direction's region; a point selection
       `MAP_SELECTION` on `learning_rate` and `momentum` (a click picks the cell);
    2. the region edges of each eigenvalue (`momentum_rates.region_boundaries`) where the
       map converges, coloured by the region above the edge (`REGION_EDGE_COLORS`), dashed
       for the smallest eigenvalue;
    3. the optimal pair (a white star, labelled OPTIMUM_LABEL);
    4. the current settings (`learning_rate`, `momentum`; a white circle ringed in black,
       labelled "you", drawn at the map's edge when the learning rate is off it).
    """
    lams = tuple(eigenvalues)
    cells = momentum_map_data(lams, max_learning_rate)
    best = momentum_rates.optimal_momentum(lams)
    x_scale = alt.Scale(domain=[0, max_learning_rate], nice=False, zero=False)
    y_scale = alt.Scale(domain=[0, 1], nice=False, zero=False)
    no_grid = alt.Axis(grid=False)
    pick = alt.selection_point(
        name=MAP_SELECTION, fields=["learning_rate", "momentum"], on="click", clear=False
    )
    converging = cells.loc[~cells["diverges"], "rate"]
    rate_scale = alt.Scale(scheme="viridis", reverse=True, domain=[float(converging.min()), 1.0])
    rate_color = alt.Color(
        "rate:Q",
        title=["Rate per step", "(lower is faster)"],
        scale=rate_scale,
        legend=alt.Legend(orient="right", gradientLength=140),
    )
    heat = (
        alt.Chart(cells)
        .mark_rect(clip=True, strokeWidth=0.5, cursor="crosshair")
        .encode(
            x=alt.X("lr_lo:Q", title=LR_TITLE, scale=x_scale, axis=no_grid),
            x2="lr_hi:Q",
            y=alt.Y("momentum_lo:Q", title="Momentum β", scale=y_scale, axis=no_grid),
            y2="momentum_hi:Q",
            color=alt.condition("datum.diverges", alt.value("#c8c8c8"), rate_color),
            stroke=alt.condition(
                "datum.diverges",
                alt.value("#c8c8c8"),
                alt.Stroke("rate:Q", scale=rate_scale, legend=None),
            ),
            tooltip=[
                alt.Tooltip("learning_rate:Q", title=LR_TITLE, format=".4~f"),
                alt.Tooltip("momentum:Q", title="Momentum β", format=".2f"),
                alt.Tooltip("rate:Q", title="Rate per step", format=".4f"),
                alt.Tooltip("region:N", title="Region"),
                alt.Tooltip("regions:N", title="Each direction"),
            ],
        )
        .add_params(pick)
    )
    x = alt.X("learning_rate:Q", scale=x_scale, axis=no_grid)
    y = alt.Y("momentum:Q", scale=y_scale, axis=no_grid)

    edges = momentum_rates.region_boundaries(lams, np.linspace(0.0, 0.999, 200))
    # Past the largest eigenvalue's divergence edge every point diverges: no edges there.
    limit = 2 * (1 + edges["momentum"]) / max(lams)
    edges = edges[edges["learning_rate"] <= limit * (1 + 1e-9)]
    smallest = min(lams)
    edges["direction"] = [
        f"λ = {lam:g}" + (" (dashed)" if lam == smallest else "") for lam in edges["eigenvalue"]
    ]
    edge_kinds = list(REGION_EDGE_COLORS)
    lines = (
        alt.Chart(edges)
        .mark_line(clip=True, strokeWidth=2)
        .encode(
            x=x,
            y=y,
            order=alt.Order("momentum:Q"),
            detail="direction:N",
            color=alt.Color(
                "label:N",
                title="Region edges",
                scale=alt.Scale(
                    domain=[momentum_rates.BOUNDARIES[k] for k in edge_kinds],
                    range=[REGION_EDGE_COLORS[k] for k in edge_kinds],
                ),
                legend=alt.Legend(orient="bottom", direction="vertical", labelLimit=400),
            ),
            strokeDash=alt.condition(
                f"datum.eigenvalue == {smallest!r}", alt.value([5, 4]), alt.value([1, 0])
            ),
            tooltip=[
                alt.Tooltip("label:N", title="Edge"),
                alt.Tooltip("direction:N", title="Eigenvalue"),
            ],
        )
    )
    marks = pd.DataFrame(
        {
            "learning_rate": [best.learning_rate, min(float(learning_rate), max_learning_rate)],
            "momentum": [best.momentum, float(momentum)],
            "label": [OPTIMUM_LABEL, "you"],
            "rate": [
                best.rate,
                float(momentum_rates.convergence_rate(learning_rate, momentum, lams)),
            ],
        }
    )
    mark_tooltip = [
        alt.Tooltip("label:N", title="Point"),
        alt.Tooltip("learning_rate:Q", title=LR_TITLE, format=".4~f"),
        alt.Tooltip("momentum:Q", title="Momentum β", format=".4~f"),
        alt.Tooltip("rate:Q", title="Rate per step", format=".4f"),
    ]
    optimum = alt.Chart(marks.iloc[[0]]).encode(x=x, y=y, tooltip=mark_tooltip)
    current = alt.Chart(marks.iloc[[1]]).encode(x=x, y=y, tooltip=mark_tooltip)
    text = {"clip": True, "align": "left", "dx": 10, "color": "black", "fontWeight": "bold"}
    return (
        alt.layer(
            heat,
            lines,
            optimum.mark_point(
                clip=True,
                shape=STAR,
                size=320,
                filled=True,
                fill="white",
                stroke="black",
                strokeWidth=1.2,
                opacity=1,
            ),
            optimum.mark_text(dy=12, text=OPTIMUM_LABEL, fontSize=12, **text),
            current.mark_point(
                clip=True,
                shape="circle",
                size=170,
                filled=True,
                fill="white",
                stroke="black",
                strokeWidth=2,
                opacity=1,
            ),
            current.mark_text(dy=-12, text="you", fontSize=13, **text),
        )
        .resolve_scale(color="independent", strokeDash="independent")
        .properties(width=width, height=height, title=title)
    )


def momentum_note(
    learning_rate: float,
    momentum: float,
    eigenvalues: Sequence[float] = RAVINE_EIGENVALUES,
    shrink: float = 0.01,
) -> str:
    """A sentence on the current pair's place on the map, and the optimum's, for the page.

    The number of steps to shrink the distance to the minimum by `shrink` at the rate `r`
    is `ceil(log(shrink) / log(r))`.
    """
    lams = tuple(eigenvalues)
    best = momentum_rates.optimal_momentum(lams)
    rate = float(momentum_rates.convergence_rate(learning_rate, momentum, lams))
    where = momentum_rates.REGION_TITLES[str(momentum_rates.region(learning_rate, momentum, lams))]

    def steps(r: float) -> int:
        return math.ceil(math.log(shrink) / math.log(r)) if r > 0 else 1

    if rate >= 1:
        now = (
            f"At learning rate {learning_rate:.4g} and momentum {momentum:.4g} momentum "
            f"diverges: the distance to the minimum grows by a factor {rate:.3f} per step."
        )
    else:
        now = (
            f"At learning rate {learning_rate:.4g} and momentum {momentum:.4g} the distance "
            f"to the minimum shrinks by a factor {rate:.3f} per step ({where.lower()}): "
            f"to {shrink:.0%} of it in {steps(rate)} steps."
        )
    return (
        f"{now} The optimal pair, learning rate {best.learning_rate:.4g} and momentum "
        f"{best.momentum:.4g}, gives {best.rate:.3f} per step: {shrink:.0%} in "
        f"{steps(best.rate)} steps."
    )


def pair_from_click(
    learning_rate: float,
    momentum: float,
    learning_rates: Sequence[float] | None = None,
    momentum_step: float = 0.01,
    max_momentum: float = 0.99,
) -> tuple[float, float]:
    """A clicked (learning rate, momentum) as values the page's controls allow.

    The learning rate becomes the nearest of `learning_rates` (default `LEARNING_RATES`) in
    plain distance, as the map's axis is linear; the momentum is rounded to `momentum_step`
    and kept in [0, `max_momentum`].
    """
    options = np.asarray(LEARNING_RATES if learning_rates is None else learning_rates)
    rate = float(options[int(np.argmin(np.abs(options - float(learning_rate))))])
    mu = _rounded(min(max(float(momentum), 0.0), max_momentum), momentum_step)
    return rate, min(mu, max_momentum)


# --- the loss per step -------------------------------------------------------------------------


def loss_data(
    landscape: str | Landscape,
    paths: Mapping[str, pd.DataFrame],
    methods: Iterable[str] | None = None,
    max_points: int = MAX_POINTS_PER_METHOD,
) -> pd.DataFrame:
    """The loss per step of the chosen methods, in long form: `method`, `step`, `loss`, `gap`.

    A log axis cannot show a loss that is 0 or negative, so the chart plots

        gap = f(x_k, y_k) - f_min

    the height above the landscape's minimum `f_min` (`landscape.minimum_value`): it reaches
    0 only at a minimum and falls by orders of magnitude as a method converges, which is what
    a log axis shows well. A gap that is not > 0 (a point exactly at a minimum, in floating
    point) is NaN: not drawn. A landscape without a minimum (the saddle, whose loss falls
    without bound) has `gap` NaN throughout; `loss_chart` then plots `loss` itself on a
    symmetric-log axis, linear near 0 and logarithmic further out on both signs.
    """
    landscape = get_landscape(landscape)
    points = path_data(paths, methods, max_points)
    frame = points[["method", "step", "loss"]].copy()
    if landscape.minima:
        gap = frame["loss"] - landscape.minimum_value
        frame["gap"] = gap.where(gap > 0)
    else:
        frame["gap"] = math.nan
    return frame


def _symlog_ticks(values: pd.Series, most: int = 4) -> list[float]:
    """0 and ±10^k (every `step`-th k, at most `most` per sign) within the values' range."""
    finite = values[np.isfinite(values)]
    ticks: list[float] = [0.0]
    for sign in (1.0, -1.0):
        reach = float((sign * finite).max()) if len(finite) else 0.0
        if reach < 1:
            continue
        top = math.floor(math.log10(reach))
        step = max(1, math.ceil((top + 1) / most))
        ticks += [sign * 10.0**k for k in range(top, -1, -step)]
    return sorted(ticks)


def loss_chart(
    landscape: str | Landscape,
    paths: Mapping[str, pd.DataFrame],
    methods: Iterable[str] | None = None,
    *,
    width: int = 640,
    height: int = 300,
    title: str = "Loss per step",
) -> alt.Chart:
    """The loss per step of each method (`loss_data`), coloured as on the landscape chart.

    y is `f - f_min` on a log axis where the landscape has minima, else `f` on a
    symmetric-log axis (see `loss_data`). Tooltip method, step, loss (and the gap).
    No zoom: a scroll over the chart scrolls the page.
    """
    landscape = get_landscape(landscape)
    shown = _shown(paths, methods)
    data = loss_data(landscape, paths, shown)
    if landscape.minima:
        y = alt.Y(
            "gap:Q",
            title="f - f_min (log scale)",
            scale=alt.Scale(type="log"),
            axis=alt.Axis(format=".0e"),
        )
        tooltip_extra = [alt.Tooltip("gap:Q", title="f - f_min", format=".4~g")]
    else:
        y = alt.Y(
            "loss:Q",
            title="f (symmetric log scale)",
            scale=alt.Scale(type="symlog", nice=False),
            axis=alt.Axis(
                values=_symlog_ticks(data["loss"]),
                labelExpr="datum.value == 0 ? '0' : format(datum.value, '.0e')",
            ),
        )
        tooltip_extra = []
    return (
        alt.Chart(data)
        .mark_line(point=alt.OverlayMarkDef(size=12))
        .encode(
            x=alt.X("step:Q", title="Step"),
            y=y,
            color=_color(shown),
            tooltip=[
                alt.Tooltip("method:N", title="Method"),
                alt.Tooltip("step:Q", title="Step"),
                alt.Tooltip("loss:Q", title="Loss", format=".4~g"),
                *tooltip_extra,
            ],
        )
        .properties(width=width, height=height, title=title)
    )


# --- the results table -------------------------------------------------------------------------


def summarize_path(
    frame: pd.DataFrame, landscape: str | Landscape, tolerance: float = TOLERANCE
) -> dict[str, Any]:
    """What one path achieved, for the results table.

    With the path's points `p_0 = start, p_1, ..., p_K` (K the last step kept) and the
    landscape's minima `m_1, ..., m_n`:

        distance(p)   = min_i ||p - m_i||₂          (NaN when n = 0)
        final_loss    = f(p_K)
        reached_at    = min { k : distance(p_k) <= tolerance }   (None if no such k)

    Returns:
        A dict with `steps` (K), `final_x`, `final_y`, `final_loss`, `distance_to_minimum`
        (`distance(p_K)`), `reached_at`, `diverged` (bool) and `diverged_at` (the step that
        left the bounds, None otherwise), as in `frame.attrs`.
    """
    landscape = get_landscape(landscape)
    if not tolerance >= 0:
        raise ValueError(f"`tolerance` must be >= 0. Received: tolerance={tolerance!r}")
    if len(frame) == 0:
        raise ValueError("the path has no points")
    xy = frame[["x", "y"]].to_numpy(dtype=np.float64)
    last = frame.iloc[-1]
    if landscape.minima:
        minima = np.asarray(landscape.minima, dtype=np.float64)
        distances = np.min(np.linalg.norm(xy[:, None, :] - minima[None, :, :], axis=2), axis=1)
        final_distance = float(distances[-1])
        inside = np.flatnonzero(distances <= tolerance)
        reached_at = int(frame["step"].iloc[inside[0]]) if len(inside) else None
    else:
        final_distance = math.nan
        reached_at = None
    diverged_at = frame.attrs.get("diverged_at")
    return {
        "steps": int(last["step"]),
        "final_x": float(last["x"]),
        "final_y": float(last["y"]),
        "final_loss": float(last["loss"]),
        "distance_to_minimum": final_distance,
        "reached_at": reached_at,
        "diverged": bool(frame.attrs.get("diverged", False)),
        "diverged_at": None if diverged_at is None else int(diverged_at),
    }


RESULT_COLUMNS: dict[str, str] = {
    "steps": "Last step",
    "final_x": "Final x",
    "final_y": "Final y",
    "final_loss": "Final loss",
    "distance_to_minimum": "Distance to nearest minimum",
    "reached_at": "Within tolerance at step",
    "diverged": "Diverged",
    "diverged_at": "Diverged at step",
}
"""The results table's columns (after `Method`): `summarize_path`'s keys and their titles."""


def results_table(
    paths: Mapping[str, pd.DataFrame],
    landscape: str | Landscape,
    methods: Iterable[str] | None = None,
    tolerance: float = TOLERANCE,
) -> pd.DataFrame:
    """`summarize_path` of each chosen method, one row each, with readable column titles.

    Columns `Method` and then `RESULT_COLUMNS`' titles; the step columns are nullable
    integers (`<NA>` where `summarize_path` says None).
    """
    landscape = get_landscape(landscape)
    rows = []
    for method in _shown(paths, methods):
        summary = summarize_path(paths[method], landscape, tolerance)
        rows.append({"Method": METHOD_LABELS[method], **summary})
    table = pd.DataFrame(rows, columns=["Method", *RESULT_COLUMNS])
    for column in ("steps", "reached_at", "diverged_at"):
        table[column] = pd.array([pd.NA if v is None else v for v in table[column]], dtype="Int64")
    table["diverged"] = table["diverged"].astype(bool)
    return table.rename(columns=RESULT_COLUMNS)


def divergence_notes(
    paths: Mapping[str, pd.DataFrame],
    landscape: str | Landscape,
    methods: Iterable[str] | None = None,
) -> list[str]:
    """One sentence per chosen method whose path diverged (`attrs["diverged"]`), in order.

    On a landscape with a minimum that means the rate (with momentum: rate and momentum) is
    too large; on one without (the saddle) it means the ball rolled away downhill for good.
    """
    landscape = get_landscape(landscape)
    notes = []
    for method in _shown(paths, methods):
        attrs = paths[method].attrs
        if not attrs.get("diverged"):
            continue
        label = METHOD_LABELS[method]
        step = attrs.get("diverged_at")
        if landscape.minima:
            notes.append(
                f"{label} diverged at step {step}: the rate is too large for the steepest "
                "direction here, so each step overshoots the valley further than the last and "
                "the ball is thrown out. Lower the learning rate (or, with momentum, the "
                "momentum)."
            )
        else:
            notes.append(
                f"{label} left for good at step {step}: this landscape has no minimum, its "
                "loss falls without bound, so once the ball has escaped it keeps rolling "
                "away faster and faster."
            )
    return notes


# --- the page's choices ------------------------------------------------------------------------


def _log_spaced_rates() -> tuple[float, ...]:
    mantissas = ("1", "1.25", "1.5", "2", "2.5", "3", "4", "5", "6", "7.5")
    rates = [float(f"{m}e{exponent}") for exponent in range(-5, 0) for m in mantissas]
    return tuple(sorted({*rates, 1.0, RAVINE_OPTIMUM.learning_rate}))


LEARNING_RATES: tuple[float, ...] = _log_spaced_rates()
"""The learning rates to choose from: 1, 1.25, 1.5, 2, 2.5, 3, 4, 5, 6, 7.5 times 10^k for
k = -5..-1, and 1 (about evenly spaced on a log scale; every landscape's suggestion is one of
them), and the ravine's optimal rate `RAVINE_OPTIMUM.learning_rate` = 1/9 exactly, so that
"Set the optimal pair" can set it."""


def nearest_learning_rate(value: float) -> float:
    """The one of `LEARNING_RATES` nearest to `value` on a log scale (|log10 r - log10 v|)."""
    if not (isinstance(value, (int, float, np.integer, np.floating)) and value > 0):
        raise ValueError(f"`value` must be a number > 0. Received: value={value!r}")
    logs = np.log10(np.asarray(LEARNING_RATES))
    return LEARNING_RATES[int(np.argmin(np.abs(logs - math.log10(value))))]


@dataclass(frozen=True)
class Lesson:
    """Settings that show one thing about SGD on a landscape, and what to look for.

    Attributes:
        key: A short name.
        title: The button's label.
        look_for: What the chart shows with these settings.
        landscape: The landscape's key.
        learning_rate: One of `LEARNING_RATES`.
        momentum: For momentum and Nesterov.
        steps: How many steps.
        start: The start point.
        methods: The methods to show (keys of `landscapes.METHODS`).
    """

    key: str
    title: str
    look_for: str
    landscape: str
    learning_rate: float
    momentum: float
    steps: int
    start: tuple[float, float]
    methods: tuple[str, ...]


LESSONS: dict[str, Lesson] = {
    lesson.key: lesson
    for lesson in (
        Lesson(
            key="crawl",
            title="Too small a rate crawls",
            look_for=(
                "With lr = 0.0001 each step is tiny: after 300 steps plain SGD has not even "
                "reached the floor of the ravine, and x has barely moved from -8."
            ),
            landscape="ravine",
            learning_rate=1e-4,
            momentum=0.8,
            steps=300,
            start=(-8.0, 1.5),
            methods=("sgd",),
        ),
        Lesson(
            key="diverge",
            title="Too large a rate overshoots",
            look_for=(
                "Across the ravine the curvature is 25, so plain SGD is stable only for "
                "lr < 2/25 = 0.08. With lr = 0.1 each step multiplies y by 1 - 0.1·25 = -1.5: "
                "the ball jumps over the valley, further each time, and diverges."
            ),
            landscape="ravine",
            learning_rate=0.1,
            momentum=0.8,
            steps=100,
            start=(-8.0, 1.5),
            methods=("sgd",),
        ),
        Lesson(
            key="zigzag",
            title="Plain SGD zig-zags",
            look_for=(
                "With lr = 0.075, just under the 0.08 limit, y flips sign every step "
                "(y ← (1 - 0.075·25)·y = -0.875·y): the ball bounces from wall to wall while "
                "it slowly makes its way along the floor."
            ),
            landscape="ravine",
            learning_rate=0.075,
            momentum=0.8,
            steps=60,
            start=(-8.0, 1.5),
            methods=("sgd",),
        ),
        Lesson(
            key="overshoot",
            title="Momentum overshoots",
            look_for=(
                "With momentum 0.9 the ball gathers speed along the floor and is far ahead "
                "of plain SGD, but it arrives too fast: it rolls past the minimum at x = 0 "
                "(to x > 2) and has to come back."
            ),
            landscape="ravine",
            learning_rate=0.02,
            momentum=0.9,
            steps=150,
            start=(-8.0, 1.5),
            methods=("sgd", "momentum"),
        ),
        Lesson(
            key="nesterov",
            title="Nesterov corrects earlier",
            look_for=(
                "Nesterov takes the gradient where the momentum is about to carry the ball, "
                "so it brakes before the minimum instead of after it: it overshoots less "
                "than heavy-ball momentum and its wobble across the ravine dies out sooner."
            ),
            landscape="ravine",
            learning_rate=0.02,
            momentum=0.9,
            steps=150,
            start=(-8.0, 1.5),
            methods=("momentum", "nesterov"),
        ),
    )
}
"""The lessons the page offers as presets, each checked by the tests to show what it says."""
