"""keras_sgdplus/lab/landscape_charts.py: the heat map's numbers, the paths and losses in the chart
specs, the results table, the learning-rate choices and the lessons, each against values
computed here with NumPy (not with the code under test)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import altair as alt
import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab import landscape_charts as lc
from keras_sgdplus.lab.charts import chart_image
from keras_sgdplus.lab.landscapes import LANDSCAPES, Landscape, compare_methods, trajectory
from tests.lab.landscape_reference import numpy_reference

NAMES = list(LANDSCAPES)
LABELS = {"sgd": "Plain SGD", "momentum": "Momentum", "nesterov": "Nesterov"}


# --- independent references ----------------------------------------------------------------


def reference_log_grid(landscape: Landscape, resolution: int, floor: float) -> np.ndarray:
    """log10(f - min f + floor) on the window's grid, rows y and columns x, flattened."""
    xmin, xmax, ymin, ymax = landscape.window
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, resolution), np.linspace(ymin, ymax, resolution))
    f = landscape.loss(gx, gy)
    return np.log10(f - f.min() + floor).ravel()


def layers(spec: dict, inherited: dict | None = None) -> list[dict]:
    """The leaf layers of a (nested) layered spec, each with the data it draws (its own, or
    the nearest enclosing layer's: Altair lifts data shared by sub-layers up)."""
    data = spec.get("data", inherited)
    if "layer" not in spec:
        return [{**spec, "data": data}]
    return [leaf for layer in spec["layer"] for leaf in layers(layer, data)]


def layer_data(spec: dict, layer: dict) -> pd.DataFrame:
    return pd.DataFrame(spec["datasets"][layer["data"]["name"]])


def mark_type(layer: dict) -> str:
    mark = layer["mark"]
    return mark if isinstance(mark, str) else mark["type"]


def path_layers(spec: dict) -> list[dict]:
    return [
        layer
        for layer in layers(spec)
        if mark_type(layer) in ("line", "point") and "method" in json.dumps(layer["encoding"])
    ]


@pytest.fixture(scope="module")
def ravine_paths() -> dict[str, pd.DataFrame]:
    return compare_methods("ravine", 0.02, 0.9, 60, None)


# --- the heat map ------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_heat_map_data_is_log_of_the_shifted_loss_on_the_grid(name):
    landscape = LANDSCAPES[name]
    data = lc.heat_map_data(name, resolution=21, floor=1e-2)
    xmin, xmax, ymin, ymax = landscape.window
    gx, gy = np.meshgrid(np.linspace(xmin, xmax, 21), np.linspace(ymin, ymax, 21))
    assert len(data) == 21 * 21
    np.testing.assert_allclose(data["x"], gx.ravel(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(data["y"], gy.ravel(), rtol=0, atol=1e-12)
    np.testing.assert_allclose(data["loss"], landscape.loss(gx, gy).ravel(), rtol=1e-12)
    np.testing.assert_allclose(
        data["log_loss"], reference_log_grid(landscape, 21, 1e-2), rtol=1e-12, atol=1e-12
    )
    # Cells centred on the grid points, one grid spacing wide: they tile the window.
    dx, dy = (xmax - xmin) / 20, (ymax - ymin) / 20
    np.testing.assert_allclose(data["x_hi"] - data["x_lo"], dx, rtol=1e-12)
    np.testing.assert_allclose(data["y_hi"] - data["y_lo"], dy, rtol=1e-12)
    np.testing.assert_allclose((data["x_lo"] + data["x_hi"]) / 2, data["x"], atol=1e-12)
    assert data["log_loss"].min() == pytest.approx(-2.0)


@pytest.mark.parametrize("name", NAMES)
def test_heat_map_layer_holds_the_default_grid_under_altairs_row_limit(name):
    landscape = LANDSCAPES[name]
    spec = lc.landscape_chart(name, {}).to_dict()  # to_dict validates and checks the row limit
    (heat,) = [layer for layer in layers(spec) if mark_type(layer) == "rect"]
    data = layer_data(spec, heat)
    assert lc.HEAT_MAP_RESOLUTION**2 == len(data) < 5000
    np.testing.assert_allclose(
        data["log_loss"],
        reference_log_grid(landscape, lc.HEAT_MAP_RESOLUTION, 1e-3),
        rtol=1e-12,
        atol=1e-12,
    )
    assert heat["mark"]["clip"] is True
    assert heat["encoding"]["color"]["field"] == "log_loss"
    tooltip_fields = [t["field"] for t in heat["encoding"]["tooltip"]]
    assert tooltip_fields == ["x", "y", "loss"]


# --- the paths over it -------------------------------------------------------------------------


def test_path_layers_hold_exactly_the_trajectory_points(ravine_paths):
    landscape = LANDSCAPES["ravine"]
    spec = lc.landscape_chart("ravine", ravine_paths).to_dict()
    found = path_layers(spec)
    assert {mark_type(layer) for layer in found} == {"line", "point"}
    for layer in found:
        data = layer_data(spec, layer)
        assert list(data["method"].unique()) == ["Plain SGD", "Momentum", "Nesterov"]
        for method, label in LABELS.items():
            rows = data[data["method"] == label].sort_values("step")
            expected = numpy_reference(landscape, method, 0.02, 0.9, 60, landscape.start)
            assert list(rows["step"]) == list(range(61))
            np.testing.assert_allclose(rows[["x", "y"]].to_numpy(), expected, rtol=1e-10)
            np.testing.assert_allclose(
                rows["loss"], 0.5 * (expected[:, 0] ** 2 + 25 * expected[:, 1] ** 2), rtol=1e-9
            )


def test_paths_are_coloured_by_method_with_fixed_colours_and_tooltips(ravine_paths):
    spec = lc.landscape_chart("ravine", ravine_paths, ["nesterov", "sgd"]).to_dict()
    colored = [layer for layer in path_layers(spec) if "color" in layer["encoding"]]
    assert colored
    for layer in colored:
        color = layer["encoding"]["color"]
        assert color["field"] == "method"
        # Only the methods shown, in the fixed order, each with its own colour.
        assert color["scale"]["domain"] == ["Plain SGD", "Nesterov"]
        assert color["scale"]["range"] == [lc.METHOD_COLORS["sgd"], lc.METHOD_COLORS["nesterov"]]
        tooltip = [t["field"] for t in layer["encoding"]["tooltip"]]
        assert tooltip == ["method", "step", "x", "y", "loss"]
        assert set(layer_data(spec, layer)["method"]) == {"Plain SGD", "Nesterov"}
    assert len(set(lc.METHOD_COLORS.values())) == 3


@pytest.mark.parametrize("name", NAMES)
def test_axes_fixed_to_the_window_and_every_mark_clipped(name):
    landscape = LANDSCAPES[name]
    paths = {"sgd": trajectory(name, method="sgd", learning_rate=1e-3, steps=5)}
    spec = lc.landscape_chart(name, paths).to_dict()
    xmin, xmax, ymin, ymax = landscape.window
    for layer in layers(spec):
        assert layer["mark"]["clip"] is True
        assert layer["encoding"]["x"]["scale"]["domain"] == [xmin, xmax]
        assert layer["encoding"]["y"]["scale"]["domain"] == [ymin, ymax]


@pytest.mark.parametrize("name", NAMES)
def test_start_and_minima_are_marked(name):
    landscape = LANDSCAPES[name]
    start = (landscape.start[0] + 0.25, landscape.start[1])
    paths = compare_methods(name, landscape.learning_rate, landscape.momentum, 5, start)
    spec = lc.landscape_chart(name, paths).to_dict()
    marked = {}
    for layer in layers(spec):
        data = layer_data(spec, layer)
        if "label" in data and mark_type(layer) == "point":
            marked[data["label"].iloc[0]] = data[["x", "y"]].to_numpy()
    np.testing.assert_array_equal(marked["start"], [start])
    if landscape.minima:
        np.testing.assert_array_equal(marked["minimum"], np.array(landscape.minima))
    else:
        assert "minimum" not in marked


def test_the_chart_renders_to_svg_with_the_star_markers(ravine_paths):
    svg = chart_image(lc.landscape_chart("ravine", ravine_paths), "svg").decode()
    assert svg.startswith("<svg")
    assert "Plain SGD" in svg
    assert "Nesterov" in svg


def test_a_long_path_is_thinned_keeping_start_and_end():
    frame = pd.DataFrame(
        {"step": np.arange(2001), "x": np.linspace(-1, 1, 2001), "y": 0.0, "loss": 1.0}
    )
    data = lc.path_data({"sgd": frame}, max_points=500)
    assert len(data) == 500
    assert data["step"].iloc[0] == 0
    assert data["step"].iloc[-1] == 2000
    assert np.all(np.diff(data["step"]) > 0)
    assert len(lc.path_data({"sgd": frame.iloc[:500]}, max_points=500)) == 500


def test_no_methods_shown_gives_the_heat_map_alone(ravine_paths):
    spec = lc.landscape_chart("ravine", ravine_paths, []).to_dict()
    assert [mark_type(layer) for layer in layers(spec)] == ["rect", "point"]  # heat, minimum
    assert len(lc.path_data(ravine_paths, [])) == 0


def test_unknown_method_raises(ravine_paths):
    with pytest.raises(ValueError, match="`methods`"):
        lc.path_data(ravine_paths, ["adam"])


# --- the loss per step -------------------------------------------------------------------------


def test_loss_chart_plots_the_gap_to_the_minimum_on_a_log_axis():
    landscape = LANDSCAPES["himmelblau"]
    paths = compare_methods("himmelblau", 0.005, 0.8, 40, None)
    spec = lc.loss_chart("himmelblau", paths).to_dict()
    encoding = spec["encoding"]
    assert encoding["y"]["field"] == "gap"
    assert encoding["y"]["scale"]["type"] == "log"
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    for method, label in LABELS.items():
        rows = data[data["method"] == label].sort_values("step")
        expected = numpy_reference(landscape, method, 0.005, 0.8, 40, landscape.start)
        f = (expected[:, 0] ** 2 + expected[:, 1] - 11) ** 2 + (
            expected[:, 0] + expected[:, 1] ** 2 - 7
        ) ** 2
        np.testing.assert_allclose(rows["gap"], f - 0.0, rtol=1e-9)
        np.testing.assert_allclose(rows["loss"], f, rtol=1e-9)


def test_a_gap_that_is_not_positive_is_not_drawn():
    frame = pd.DataFrame({"step": [0, 1, 2], "x": [1.0, 0.0, 0.0], "y": 0.0, "loss": [0.5, 0, 0]})
    data = lc.loss_data("ravine", {"sgd": frame})
    assert data["gap"].iloc[0] == 0.5
    assert data["gap"].iloc[1:].isna().all()


def test_saddle_loss_is_drawn_on_a_symmetric_log_axis():
    paths = compare_methods("saddle", 0.02, 0.9, 150, None)
    spec = lc.loss_chart("saddle", paths).to_dict()
    y = spec["encoding"]["y"]
    assert y["field"] == "loss"
    assert y["scale"]["type"] == "symlog"
    data = pd.DataFrame(spec["datasets"][spec["data"]["name"]])
    assert data["gap"].isna().all()
    assert data["loss"].min() < 0  # the saddle's loss goes negative: no log axis possible
    ticks = y["axis"]["values"]
    assert 0.0 in ticks
    assert min(ticks) <= -1
    assert min(ticks) >= data["loss"].min()


# --- the results table ------------------------------------------------------------------------


def test_summarize_path_against_hand_computed_numbers():
    landscape = LANDSCAPES["himmelblau"]
    minima = np.array(landscape.minima)
    m = minima[1]
    xs = np.array([0.0, m[0] + 0.5, m[0] + 0.005, m[0] + 0.001])
    ys = np.array([0.0, m[1], m[1], m[1]])
    frame = pd.DataFrame({"step": [0, 1, 2, 3], "x": xs, "y": ys, "loss": landscape.loss(xs, ys)})
    summary = lc.summarize_path(frame, landscape, tolerance=0.01)
    nearest = min(math.hypot(xs[-1] - a, ys[-1] - b) for a, b in landscape.minima)
    assert summary["distance_to_minimum"] == pytest.approx(nearest, rel=1e-12)
    assert summary["distance_to_minimum"] == pytest.approx(0.001, rel=1e-6)
    assert summary["reached_at"] == 2
    assert summary["final_loss"] == pytest.approx(float(landscape.loss(xs[-1], ys[-1])))
    assert (summary["final_x"], summary["final_y"]) == (xs[-1], ys[-1])
    assert summary["steps"] == 3
    assert summary["diverged"] is False
    assert summary["diverged_at"] is None
    assert lc.summarize_path(frame, landscape, tolerance=1e-4)["reached_at"] is None


def test_summary_of_real_runs_and_the_saddle():
    landscape = LANDSCAPES["ravine"]
    frame = trajectory("ravine", method="momentum", learning_rate=0.02, momentum=0.9, steps=300)
    expected = numpy_reference(landscape, "momentum", 0.02, 0.9, 300, landscape.start)
    distances = np.hypot(expected[:, 0], expected[:, 1])  # the minimum is (0, 0)
    summary = lc.summarize_path(frame, "ravine")
    assert summary["distance_to_minimum"] == pytest.approx(distances[-1], rel=1e-8, abs=1e-15)
    assert summary["reached_at"] == int(np.argmax(distances <= 0.01))
    saddle = lc.summarize_path(trajectory("saddle", method="sgd", learning_rate=0.02), "saddle")
    assert math.isnan(saddle["distance_to_minimum"])
    assert saddle["reached_at"] is None


def test_summary_reports_divergence():
    frame = trajectory("ravine", method="sgd", learning_rate=0.1, steps=100)
    summary = lc.summarize_path(frame, "ravine")
    assert summary["diverged"] is True
    assert summary["diverged_at"] == frame.attrs["diverged_at"] == len(frame)
    assert summary["steps"] == len(frame) - 1


def test_results_table_one_row_per_shown_method(ravine_paths):
    table = lc.results_table(ravine_paths, "ravine", ["momentum", "sgd"])
    assert list(table["Method"]) == ["Plain SGD", "Momentum"]
    assert list(table.columns) == ["Method", *lc.RESULT_COLUMNS.values()]
    assert str(table["Diverged at step"].dtype) == "Int64"
    assert table["Diverged at step"].isna().all()
    end = ravine_paths["momentum"].iloc[-1]
    row = table.iloc[1]
    assert row["Final x"] == end["x"]
    assert row["Distance to nearest minimum"] == pytest.approx(math.hypot(end["x"], end["y"]))


def test_divergence_notes_name_the_method_and_the_step():
    paths = compare_methods("ravine", 0.1, 0.9, 100, None)
    notes = lc.divergence_notes(paths, "ravine", ["sgd"])
    assert notes == [notes[0]]
    assert notes[0].startswith(f"Plain SGD diverged at step {paths['sgd'].attrs['diverged_at']}")
    assert "too large" in notes[0]
    calm = compare_methods("ravine", 0.02, 0.9, 50, None)
    assert lc.divergence_notes(calm, "ravine") == []
    saddle = compare_methods("saddle", 0.02, 0.9, 200, None)
    assert any("no minimum" in note for note in lc.divergence_notes(saddle, "saddle"))


# --- the page's choices ------------------------------------------------------------------------


def test_learning_rates_are_log_spaced_and_hold_every_suggestion():
    rates = np.array(lc.LEARNING_RATES)
    assert np.all(np.diff(rates) > 0)
    assert rates[0] == 1e-5
    assert rates[-1] == 1.0
    assert np.max(np.diff(np.log10(rates))) < 0.23  # no gap wider than a factor of 1.7
    for landscape in LANDSCAPES.values():
        assert landscape.learning_rate in lc.LEARNING_RATES
    for lesson in lc.LESSONS.values():
        assert lesson.learning_rate in lc.LEARNING_RATES


def test_nearest_learning_rate():
    assert lc.nearest_learning_rate(0.03) == 0.03
    assert lc.nearest_learning_rate(0.021) == 0.02
    assert lc.nearest_learning_rate(1e-9) == 1e-5
    assert lc.nearest_learning_rate(50) == 1.0
    with pytest.raises(ValueError, match="`value`"):
        lc.nearest_learning_rate(0)


def lesson_paths(key: str) -> tuple[lc.Lesson, dict[str, pd.DataFrame]]:
    lesson = lc.LESSONS[key]
    return lesson, compare_methods(
        lesson.landscape, lesson.learning_rate, lesson.momentum, lesson.steps, lesson.start
    )


def test_lessons_fit_the_controls():
    assert list(lc.LESSONS) == ["crawl", "diverge", "zigzag", "overshoot", "nesterov"]
    for lesson in lc.LESSONS.values():
        landscape = LANDSCAPES[lesson.landscape]
        xmin, xmax, ymin, ymax = landscape.window
        assert xmin <= lesson.start[0] <= xmax
        assert ymin <= lesson.start[1] <= ymax
        assert 1 <= lesson.steps <= 1000
        assert 0 <= lesson.momentum <= 0.99
        assert set(lesson.methods) <= set(LABELS)


def test_lesson_too_small_a_rate_crawls():
    _lesson, paths = lesson_paths("crawl")
    plain = paths["sgd"]
    # x shrinks by (1 - lr) per step: after 300 steps at lr 1e-4 it has moved about 3 %.
    assert plain["x"].iloc[-1] == pytest.approx(-8.0 * (1 - 1e-4) ** 300, rel=1e-5)
    assert abs(plain["x"].iloc[-1] - plain["x"].iloc[0]) < 0.3
    assert plain["loss"].iloc[-1] > 0.5 * plain["loss"].iloc[0]


def test_lesson_too_large_a_rate_overshoots_and_diverges():
    _lesson, paths = lesson_paths("diverge")
    plain = paths["sgd"]
    assert plain.attrs["diverged"] is True
    y = plain["y"].to_numpy()
    assert np.all(np.sign(y[1:]) == -np.sign(y[:-1]))  # over the valley every step
    assert np.all(np.abs(y[1:]) > np.abs(y[:-1]))  # further each time


def test_lesson_plain_sgd_zig_zags():
    _lesson, paths = lesson_paths("zigzag")
    plain = paths["sgd"]
    y = plain["y"].to_numpy()
    assert plain.attrs["diverged"] is False
    assert np.all(np.sign(y[1:]) == -np.sign(y[:-1]))
    assert np.all(np.abs(y[1:]) < np.abs(y[:-1]))


def test_lesson_momentum_overshoots():
    _lesson, paths = lesson_paths("overshoot")
    momentum, plain = paths["momentum"], paths["sgd"]
    assert momentum["x"].max() > 1.0  # past the minimum at x = 0
    assert plain["x"].max() < 0.0  # plain SGD never gets past it
    assert momentum["loss"].iloc[-1] < 1e-2 * plain["loss"].iloc[-1]


def test_lesson_nesterov_corrects_earlier():
    _lesson, paths = lesson_paths("nesterov")
    momentum, nesterov = paths["momentum"], paths["nesterov"]
    assert nesterov["x"].max() < momentum["x"].max() - 0.3
    assert np.abs(nesterov["y"]).max() <= np.abs(momentum["y"]).max()
    # Its wobble across the ravine dies out sooner.
    assert np.abs(nesterov["y"].iloc[75:]).max() < 1e-2 * np.abs(momentum["y"].iloc[75:]).max()


# --- the ball at step k and the clicks ---------------------------------------------------------


def test_ball_data_is_each_paths_kth_point(ravine_paths):
    for k in (0, 1, 17, 60):
        balls = lc.ball_data(ravine_paths, None, k)
        assert list(balls["method"]) == ["Plain SGD", "Momentum", "Nesterov"]
        for method, label in LABELS.items():
            ball = balls[balls["method"] == label].iloc[0]
            expected = numpy_reference(LANDSCAPES["ravine"], method, 0.02, 0.9, 60, (-8.0, 1.5))
            np.testing.assert_allclose([ball["x"], ball["y"]], expected[k], rtol=1e-10)
            assert ball["step"] == k
            assert not ball["stopped"]
    with pytest.raises(ValueError, match=r"`step` must be an integer >= 0. Received: step=-1"):
        lc.ball_data(ravine_paths, None, -1)


def test_a_diverged_balls_stays_at_the_last_point_inside():
    paths = compare_methods("ravine", 0.1, 0.9, 100, None)
    (ball,) = lc.ball_data(paths, ["sgd"], 100).itertuples()
    last = paths["sgd"].iloc[-1]
    assert ball.stopped
    assert (ball.step, ball.x, ball.y) == (last["step"], last["x"], last["y"])
    assert ball.step < 100


def test_landscape_chart_draws_the_balls_on_the_methods_colour_scale(ravine_paths):
    spec = lc.landscape_chart("ravine", ravine_paths, ["sgd", "nesterov"], step=9).to_dict()
    (balls,) = [layer for layer in layers(spec) if "stopped" in layer_data(spec, layer)]
    data = layer_data(spec, balls)
    assert list(data["method"]) == ["Plain SGD", "Nesterov"]
    assert list(data["step"]) == [9, 9]
    assert balls["encoding"]["color"]["scale"]["range"] == [
        lc.METHOD_COLORS["sgd"],
        lc.METHOD_COLORS["nesterov"],
    ]
    assert balls["mark"]["clip"] is True
    # One legend: the balls share the paths' colour scale (no second "Method" legend).
    svg = chart_image(lc.landscape_chart("ravine", ravine_paths, step=9), "svg").decode()
    assert svg.count(">Method<") == 1
    without = lc.landscape_chart("ravine", ravine_paths).to_dict()
    assert not [layer for layer in layers(without) if "stopped" in layer_data(without, layer)]


def test_landscape_chart_selects_the_start_on_the_heat_maps_cells(ravine_paths):
    spec = lc.landscape_chart("ravine", ravine_paths, select_start=True).to_dict()
    (param,) = spec["params"]
    assert param["name"] == lc.START_SELECTION
    assert param["select"] == {"type": "point", "fields": ["x", "y"], "on": "click", "clear": False}
    assert "params" not in lc.landscape_chart("ravine", ravine_paths).to_dict()


def test_clicked_point_reads_streamlits_selection_state():
    state = {"momentum_pair": [{"learning_rate": 0.05125, "momentum": 0.73}]}
    assert lc.clicked_point(state, "momentum_pair", ("learning_rate", "momentum")) == [
        0.05125,
        0.73,
    ]
    assert lc.clicked_point({"momentum_pair": []}, "momentum_pair", ("learning_rate",)) is None
    assert lc.clicked_point({}, "momentum_pair", ("learning_rate",)) is None
    assert lc.clicked_point({"p": [{"x": 1.0}]}, "p", ("x", "y")) is None
    assert lc.clicked_point({"p": [{"x": "1"}]}, "p", ("x",)) is None
    assert lc.clicked_point({"p": [{"x": 1.0}, {"x": 2.0}]}, "p", ("x",)) == [2.0]


def test_start_from_click_is_clipped_and_on_the_sliders_grid():
    assert lc.start_from_click("ravine", 3.14159, -1.23456) == (3.14, -1.23)
    assert lc.start_from_click("ravine", -12.0, 4.0) == (-10.0, 3.0)
    assert lc.start_from_click("ravine", 0.0349, 0.0) == (0.03, 0.0)
    x, _ = lc.start_from_click("ravine", 0.03, 0.0)
    assert repr(x) == "0.03"  # no binary noise for the slider to show
    assert lc.start_from_click("himmelblau", 1.237, 2.5, step=0.05) == (1.25, 2.5)
    with pytest.raises(ValueError, match="`step` must be > 0"):
        lc.start_from_click("ravine", 0.0, 0.0, step=0)


def test_pair_from_click_takes_the_nearest_allowed_values():
    assert lc.pair_from_click(0.05125, 0.73) == (0.05, 0.73)
    assert lc.pair_from_click(0.0565, 0.7349) == (0.06, 0.73)
    assert lc.pair_from_click(0.11, 0.45) == (lc.RAVINE_OPTIMUM.learning_rate, 0.45)
    assert lc.pair_from_click(0.16875, 0.999) == (0.15, 0.99)
    assert lc.pair_from_click(0.001, -0.2) == (0.001, 0.0)
    _, mu = lc.pair_from_click(0.05, 0.03)
    assert repr(mu) == "0.03"
    assert lc.pair_from_click(0.3, 0.5, learning_rates=[0.1, 0.2]) == (0.2, 0.5)


# --- why momentum works: the rate map ----------------------------------------------------------


def step_matrix_radius(alpha: float, beta: float) -> float:
    """The spectral radius of Keras's momentum step on the ravine as a 4x4 map of (w, v)."""
    a = np.diag([1.0, 25.0])
    eye = np.eye(2)
    m = np.block([[eye - alpha * a, beta * eye], [-alpha * a, beta * eye]])
    return float(np.max(np.abs(np.linalg.eigvals(m))))


def test_momentum_map_data_tiles_the_plane_with_the_rate_of_each_cell():
    data = lc.momentum_map_data(columns=17, rows=10)
    assert len(data) == 170
    width = lc.MAP_MAX_LEARNING_RATE / 17
    np.testing.assert_allclose(data["lr_hi"] - data["lr_lo"], width)
    np.testing.assert_allclose(data["momentum_hi"] - data["momentum_lo"], 0.1)
    assert data["lr_lo"].min() == pytest.approx(0.0, abs=1e-15)
    assert data["lr_hi"].max() == pytest.approx(lc.MAP_MAX_LEARNING_RATE)
    assert (data["momentum_lo"].min(), data["momentum_hi"].max()) == pytest.approx((0.0, 1.0))
    for row in data.sample(40, random_state=0).itertuples():
        assert row.rate == pytest.approx(step_matrix_radius(row.learning_rate, row.momentum))
        assert row.diverges == (row.rate >= 1)
    default = lc.momentum_map_data()
    assert len(default) == lc.MAP_COLUMNS * lc.MAP_ROWS < 5000
    # The momenta at the cell centres are values the momentum slider (step 0.01) holds.
    assert set(np.round(default["momentum"], 12)) == {round(0.01 + 0.02 * j, 12) for j in range(50)}


def test_momentum_map_chart_marks_the_pair_the_optimum_and_the_edges():
    spec = lc.momentum_map_chart(0.03, 0.8).to_dict()
    (param,) = spec["params"]
    assert param["name"] == lc.MAP_SELECTION
    assert param["select"]["fields"] == ["learning_rate", "momentum"]
    found = {mark_type(layer): layer for layer in layers(spec)}
    assert set(found) == {"rect", "line", "point", "text"}
    points = pd.concat(
        [layer_data(spec, layer) for layer in layers(spec) if mark_type(layer) == "point"]
    ).set_index("label")
    assert points.loc["you", "learning_rate"] == 0.03
    assert points.loc["you", "momentum"] == 0.8
    assert points.loc["you", "rate"] == pytest.approx(step_matrix_radius(0.03, 0.8))
    assert points.loc[lc.OPTIMUM_LABEL, "learning_rate"] == pytest.approx(1 / 9)
    assert points.loc[lc.OPTIMUM_LABEL, "momentum"] == pytest.approx(4 / 9)
    edges = layer_data(spec, found["line"])
    for row in edges.itertuples():
        root = math.sqrt(row.momentum)
        formula = {
            "ripples": (1 - root) ** 2,
            "oscillation": (1 + root) ** 2,
            "divergence": 2 * (1 + row.momentum),
        }[row.boundary]
        assert row.learning_rate * row.eigenvalue == pytest.approx(formula)
        # Only where the map still converges (left of λ = 25's divergence edge).
        assert row.learning_rate <= 2 * (1 + row.momentum) / 25 * (1 + 1e-9)
    # A learning rate off the map is drawn at its right edge.
    off = lc.momentum_map_chart(0.5, 0.3).to_dict()
    you = [
        layer_data(off, layer)
        for layer in layers(off)
        if mark_type(layer) == "point" and "you" in set(layer_data(off, layer).get("label", []))
    ]
    assert you[0]["learning_rate"].iloc[0] == lc.MAP_MAX_LEARNING_RATE
    svg = chart_image(lc.momentum_map_chart(0.03, 0.8), "svg").decode()
    assert "Region edges" in svg


def test_momentum_note_gives_the_rates_and_the_steps_to_a_hundredth():
    note = lc.momentum_note(0.03, 0.8)
    rate = step_matrix_radius(0.03, 0.8)
    assert f"a factor {rate:.3f} per step (ripples)" in note
    assert f"in {math.ceil(math.log(0.01) / math.log(rate))} steps" in note
    assert "gives 0.667 per step: 1% in 12 steps" in note  # (2/3)^12 < 0.01 < (2/3)^11
    assert "diverges" in lc.momentum_note(0.15, 0.1)


def test_the_ravines_optimum_is_a_learning_rate_option():
    assert lc.RAVINE_EIGENVALUES == (1.0, 25.0)
    assert lc.RAVINE_OPTIMUM.learning_rate in lc.LEARNING_RATES
    assert lc.RAVINE_OPTIMUM.learning_rate == (2 / (1 + 5)) ** 2
    assert lc.RAVINE_OPTIMUM.momentum == ((5 - 1) / (5 + 1)) ** 2


def test_module_does_not_import_streamlit():
    source = Path(lc.__file__).read_text(encoding="utf-8")
    assert "import streamlit" not in source
    assert isinstance(lc.landscape_chart("beale", {}), alt.LayerChart)
