"""keras_sgdplus/lab/landscapes.py: the functions and their gradients, SGDPlus's paths across
them against a NumPy re-implementation of the update rule (README.md), the lessons on the
ravine, divergence, and input checks."""

from __future__ import annotations

import math
from pathlib import Path

import keras
import numpy as np
import pytest

from keras_sgdplus.lab import landscapes
from keras_sgdplus.lab.landscapes import (
    DIVERGENCE_BOUND,
    LANDSCAPES,
    METHODS,
    Landscape,
    compare_methods,
    log_scaled,
    loss_grid,
    trajectory,
)
from tests.lab.landscape_reference import numpy_reference

NAMES = list(LANDSCAPES)


def sample_points(landscape: Landscape, count: int = 6, seed: int = 0) -> np.ndarray:
    """`count` points inside the landscape's window (seeded), as a (count, 2) array."""
    xmin, xmax, ymin, ymax = landscape.window
    rng = np.random.default_rng(seed)
    return np.column_stack([rng.uniform(xmin, xmax, count), rng.uniform(ymin, ymax, count)])


def autodiff_gradient(landscape: Landscape, x: float, y: float) -> tuple[float, float]:
    """The gradient of the keras.ops function by the backend's own autodiff."""
    if keras.backend.backend() == "tensorflow":
        import tensorflow as tf

        tx = tf.constant(x, tf.float64)
        ty = tf.constant(y, tf.float64)
        with tf.GradientTape() as tape:
            tape.watch([tx, ty])
            loss = landscape.function(tx, ty)
        gx, gy = tape.gradient(loss, [tx, ty])
        return float(gx), float(gy)
    import jax

    gx, gy = jax.grad(landscape.function, argnums=(0, 1))(np.float64(x), np.float64(y))
    return float(gx), float(gy)


# -- the landscapes ---------------------------------------------------------------------------


def test_registry_lists_the_five_landscapes():
    assert set(LANDSCAPES) == {"ravine", "rosenbrock", "himmelblau", "beale", "saddle"}
    for name, landscape in LANDSCAPES.items():
        assert landscape.name == name
        assert landscape.title
        assert landscape.description
        assert "\n" not in landscape.description
        xmin, xmax, ymin, ymax = landscape.window
        assert xmin < xmax
        assert ymin < ymax
        assert xmin <= landscape.start[0] <= xmax
        assert ymin <= landscape.start[1] <= ymax
        assert landscape.learning_rate > 0
        assert 0 <= landscape.momentum < 1
        for mx, my in landscape.minima:
            assert xmin <= mx <= xmax
            assert ymin <= my <= ymax


@pytest.mark.parametrize("name", NAMES)
def test_numpy_gradient_matches_finite_differences(name):
    landscape = LANDSCAPES[name]
    h = 1e-6
    for x, y in sample_points(landscape):
        fd_x = (landscape.loss(x + h, y) - landscape.loss(x - h, y)) / (2 * h)
        fd_y = (landscape.loss(x, y + h) - landscape.loss(x, y - h)) / (2 * h)
        gx, gy = landscape.gradient(x, y)
        scale = 1.0 + abs(float(landscape.loss(x, y)))
        np.testing.assert_allclose([gx, gy], [fd_x, fd_y], rtol=1e-6, atol=1e-6 * scale)


@pytest.mark.parametrize("name", NAMES)
def test_numpy_gradient_matches_autodiff_of_the_keras_function(name):
    landscape = LANDSCAPES[name]
    for x, y in [*sample_points(landscape, seed=1), landscape.start]:
        np.testing.assert_allclose(
            autodiff_gradient(landscape, float(x), float(y)),
            landscape.gradient(x, y),
            rtol=1e-12,
            atol=1e-12,
        )


@pytest.mark.parametrize("name", NAMES)
def test_the_function_runs_on_keras_variables(name):
    landscape = LANDSCAPES[name]
    x = keras.Variable(landscape.start[0], dtype="float64")
    y = keras.Variable(landscape.start[1], dtype="float64")
    value = float(keras.ops.convert_to_numpy(landscape.function(x, y)))
    assert value == pytest.approx(float(landscape.loss(*landscape.start)), rel=1e-12)


@pytest.mark.parametrize("name", [n for n in NAMES if LANDSCAPES[n].minima])
def test_minima_are_stationary_with_the_stated_loss(name):
    landscape = LANDSCAPES[name]
    for mx, my in landscape.minima:
        assert float(landscape.loss(mx, my)) == pytest.approx(landscape.minimum_value, abs=1e-12)
        assert np.hypot(*landscape.gradient(mx, my)) < 1e-8
        # A minimum, not a saddle: every nearby point is higher.
        angles = np.linspace(0, 2 * np.pi, 16, endpoint=False)
        around = landscape.loss(mx + 1e-3 * np.cos(angles), my + 1e-3 * np.sin(angles))
        assert np.all(around > landscape.minimum_value)


def test_known_minima():
    assert LANDSCAPES["rosenbrock"].minima == ((1.0, 1.0),)
    assert LANDSCAPES["beale"].minima == ((3.0, 0.5),)
    assert len(LANDSCAPES["himmelblau"].minima) == 4
    assert (3.0, 2.0) in LANDSCAPES["himmelblau"].minima
    assert LANDSCAPES["ravine"].minima == ((0.0, 0.0),)


def test_saddle_has_no_minimum_and_says_so():
    saddle = LANDSCAPES["saddle"]
    assert saddle.minima == ()
    assert "no minimum" in saddle.description
    assert np.hypot(*saddle.gradient(0.0, 0.0)) == 0.0
    assert float(saddle.loss(0.0, 1.0)) < 0.0 < float(saddle.loss(1.0, 0.0))


# -- heat map ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_loss_grid_rows_follow_y_and_columns_follow_x(name):
    landscape = LANDSCAPES[name]
    xs, ys, z = loss_grid(name, resolution=31)
    xmin, xmax, ymin, ymax = landscape.window
    assert xs.shape == ys.shape == (31,)
    assert z.shape == (31, 31)
    assert (xs[0], xs[-1], ys[0], ys[-1]) == (xmin, xmax, ymin, ymax)
    assert np.all(np.isfinite(z))
    for i, j in [(0, 0), (3, 17), (30, 5)]:
        assert z[i, j] == pytest.approx(float(landscape.loss(xs[j], ys[i])), rel=1e-12)


def test_loss_grid_default_resolution_and_landscape_object():
    _xs, _ys, z = loss_grid(LANDSCAPES["beale"])
    assert z.shape == (120, 120)


def test_log_scaled_puts_the_lowest_point_at_log10_floor_and_keeps_order():
    z = np.array([[-3.0, 0.0], [5.0, 100.0]])
    scaled = log_scaled(z)
    assert scaled.min() == pytest.approx(-3.0)
    assert np.all(np.diff(scaled.ravel()) > 0)
    assert log_scaled(z, floor=1.0).min() == pytest.approx(0.0)


# -- trajectories against NumPy ------------------------------------------------------------


@pytest.mark.parametrize("method", list(METHODS))
@pytest.mark.parametrize("name", NAMES)
def test_trajectory_matches_numpy_reference(name, method):
    landscape = LANDSCAPES[name]
    steps = 40
    frame = trajectory(
        name,
        method=method,
        learning_rate=landscape.learning_rate,
        momentum=landscape.momentum,
        steps=steps,
    )
    expected = numpy_reference(
        landscape, method, landscape.learning_rate, landscape.momentum, steps, landscape.start
    )
    assert list(frame.columns) == ["step", "x", "y", "loss"]
    assert list(frame["step"]) == list(range(steps + 1))
    assert frame.attrs["diverged"] is False
    assert frame.attrs["diverged_at"] is None
    np.testing.assert_allclose(frame[["x", "y"]].to_numpy(), expected, rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(
        frame["loss"], landscape.loss(expected[:, 0], expected[:, 1]), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("method", ["momentum", "nesterov"])
def test_given_start_and_torch_convention_give_the_same_path(method):
    landscape = LANDSCAPES["himmelblau"]
    start = (1.0, -2.0)
    keras_path = trajectory(
        "himmelblau", method=method, learning_rate=0.01, momentum=0.7, steps=30, start=start
    )
    torch_path = trajectory(
        "himmelblau",
        method=method,
        learning_rate=0.01,
        momentum=0.7,
        steps=30,
        start=start,
        convention="torch",
    )
    expected = numpy_reference(landscape, method, 0.01, 0.7, 30, start)
    assert tuple(keras_path.iloc[0][["x", "y"]]) == start
    np.testing.assert_allclose(keras_path[["x", "y"]].to_numpy(), expected, rtol=1e-10)
    np.testing.assert_allclose(torch_path[["x", "y"]].to_numpy(), expected, rtol=1e-9)


def test_plain_sgd_ignores_momentum():
    a = trajectory("ravine", method="sgd", learning_rate=0.02, momentum=0.9, steps=20)
    b = trajectory("ravine", method="sgd", learning_rate=0.02, momentum=0.0, steps=20)
    assert a.attrs["momentum"] == 0.0
    np.testing.assert_array_equal(a[["x", "y"]].to_numpy(), b[["x", "y"]].to_numpy())


def test_compare_methods_runs_the_three_from_the_same_start():
    paths = compare_methods("rosenbrock", 0.001, 0.9, 25, (-1.0, 2.0))
    assert list(paths) == ["sgd", "momentum", "nesterov"]
    for method, frame in paths.items():
        assert frame.attrs["method"] == method
        assert len(frame) == 26
        assert tuple(frame.iloc[0][["x", "y"]]) == (-1.0, 2.0)
    assert not np.allclose(paths["momentum"]["x"], paths["nesterov"]["x"])


# -- the lessons on the ravine -------------------------------------------------------------


def test_too_large_rate_makes_plain_sgd_zig_zag_across_the_ravine():
    # Stable needs lr < 2/25 across the ravine; just below that y flips sign every step.
    frame = trajectory("ravine", method="sgd", learning_rate=0.075, steps=60)
    y = frame["y"].to_numpy()
    assert np.all(np.sign(y[1:]) == -np.sign(y[:-1]))
    assert frame.attrs["diverged"] is False


def test_too_large_rate_makes_plain_sgd_diverge_and_it_is_reported():
    frame = trajectory("ravine", method="sgd", learning_rate=0.1, steps=500)
    assert frame.attrs["diverged"] is True
    at = frame.attrs["diverged_at"]
    assert 1 < at < 500
    assert len(frame) == at  # the rows up to the step that left
    assert list(frame["step"]) == list(range(at))
    values = frame[["x", "y", "loss"]].to_numpy()
    assert np.all(np.isfinite(values))
    assert np.all(np.abs(frame[["x", "y"]].to_numpy()) <= DIVERGENCE_BOUND)
    # It grows as it goes: |y| is multiplied by 1.5 each step.
    assert abs(frame["y"].iloc[-1]) > 1e5


def test_non_finite_values_stop_the_run():
    # sqrt(x) has a NaN gradient for x < 0; a large step takes the point there.
    rooted = Landscape(
        name="root",
        title="root",
        description="a NaN after the first step",
        function=lambda x, y: keras.ops.sqrt(x) + keras.ops.square(y),
        gradient=lambda x, y: (0.5 / np.sqrt(x), 2 * np.asarray(y)),
        start=(0.5, 1.0),
        window=(0.0, 1.0, -1.0, 1.0),
        minima=(),
        minimum_value=math.nan,
        learning_rate=2.0,
        momentum=0.0,
    )
    frame = trajectory(rooted, method="sgd", learning_rate=2.0, steps=10)
    assert frame.attrs["diverged"] is True
    assert frame.attrs["diverged_at"] == 2
    assert len(frame) == 2
    assert np.all(np.isfinite(frame[["x", "y"]].to_numpy()))


def test_a_tiny_rate_barely_moves():
    frame = trajectory("ravine", method="sgd", learning_rate=1e-4, steps=100)
    start = frame.iloc[0]
    end = frame.iloc[-1]
    assert abs(end["x"] - start["x"]) < 0.1
    assert end["loss"] > 0.5 * start["loss"]


def test_momentum_gets_lower_than_plain_sgd_in_the_same_steps():
    paths = compare_methods("ravine", 0.02, 0.9, 100, None)
    plain = paths["sgd"]["loss"].iloc[-1]
    assert paths["momentum"]["loss"].iloc[-1] < 1e-2 * plain
    assert paths["nesterov"]["loss"].iloc[-1] < 1e-2 * plain


def test_nesterov_differs_from_momentum_and_overshoots_less():
    paths = compare_methods("ravine", 0.02, 0.9, 150, None)
    momentum, nesterov = paths["momentum"], paths["nesterov"]
    assert np.max(np.abs(momentum["x"] - nesterov["x"])) > 0.1
    # The start has x < 0 and the minimum x = 0: overshoot is how far past 0 x gets.
    assert momentum.iloc[0]["x"] < 0
    momentum_overshoot = momentum["x"].max()
    nesterov_overshoot = nesterov["x"].max()
    assert momentum_overshoot > 1.0
    assert nesterov_overshoot < momentum_overshoot
    assert np.abs(nesterov["y"]).max() <= np.abs(momentum["y"]).max() + 1e-12


@pytest.mark.parametrize("name", [n for n in NAMES if LANDSCAPES[n].minima])
def test_suggested_settings_reach_a_minimum_with_momentum(name):
    landscape = LANDSCAPES[name]
    paths = compare_methods(name, landscape.learning_rate, landscape.momentum, 500, None)
    for frame in paths.values():
        assert frame.attrs["diverged"] is False
        assert frame["loss"].iloc[-1] < frame["loss"].iloc[0]
    end = paths["momentum"][["x", "y"]].iloc[-1].to_numpy()
    distances = [np.hypot(*(end - np.array(m))) for m in landscape.minima]
    assert min(distances) < 0.1


def test_the_ball_escapes_the_saddle():
    saddle = LANDSCAPES["saddle"]
    frame = trajectory("saddle", method="momentum", learning_rate=0.02, momentum=0.9, steps=200)
    assert frame["loss"].iloc[-1] < frame["loss"].iloc[0]
    assert abs(frame["y"].iloc[-1]) > saddle.window[3]


# -- bad inputs -------------------------------------------------------------------------------

GOOD = {"method": "momentum", "learning_rate": 0.01, "momentum": 0.9, "steps": 10}


@pytest.mark.parametrize(
    ("changes", "argument"),
    [
        ({"method": "adam"}, "method"),
        ({"learning_rate": 0.0}, "learning_rate"),
        ({"learning_rate": -0.1}, "learning_rate"),
        ({"learning_rate": float("nan")}, "learning_rate"),
        ({"learning_rate": float("inf")}, "learning_rate"),
        ({"learning_rate": "0.1"}, "learning_rate"),
        ({"momentum": 1.0}, "momentum"),
        ({"momentum": -0.1}, "momentum"),
        ({"momentum": float("nan")}, "momentum"),
        ({"steps": 0}, "steps"),
        ({"steps": 5001}, "steps"),
        ({"steps": 2.5}, "steps"),
        ({"start": (1.0,)}, "start"),
        ({"start": (float("nan"), 0.0)}, "start"),
        ({"convention": "jax"}, "convention"),
    ],
)
def test_bad_inputs_raise_value_error_naming_the_argument(changes, argument):
    kwargs = {**GOOD, **changes}
    value = changes[argument]
    with pytest.raises(ValueError, match=f"`{argument}`") as error:
        trajectory("ravine", **kwargs)
    assert f"{argument}=" in str(error.value)
    assert repr(value) in str(error.value) or str(value) in str(error.value)


def test_unknown_landscape_raises_value_error():
    with pytest.raises(ValueError, match=r"`landscape`.*landscape='moon'"):
        trajectory("moon", method="sgd", learning_rate=0.1)
    with pytest.raises(ValueError, match="`landscape`"):
        loss_grid("moon")
    with pytest.raises(ValueError, match="`landscape`"):
        compare_methods("moon", 0.1, 0.9, 10, None)


def test_bad_grid_arguments():
    with pytest.raises(ValueError, match="`resolution`"):
        loss_grid("ravine", resolution=1)
    with pytest.raises(ValueError, match="`floor`"):
        log_scaled(np.zeros(3), floor=0.0)


def test_module_does_not_import_streamlit_or_altair():
    source = Path(landscapes.__file__).read_text(encoding="utf-8")
    assert "streamlit" not in source.replace("No Streamlit", "")
    assert "altair" not in source.lower()


# -- the reused, traced runner ---------------------------------------------------------------


def test_a_run_does_not_depend_on_the_runs_before_it():
    landscape = LANDSCAPES["rosenbrock"]
    settings = {"method": "nesterov", "momentum": 0.9, "steps": 30, "convention": "torch"}
    first = trajectory("rosenbrock", learning_rate=0.001, **settings)
    trajectory("rosenbrock", learning_rate=0.0005, start=(0.5, -0.5), **settings)
    trajectory("rosenbrock", learning_rate=0.01, steps=500, method="nesterov", momentum=0.9)
    again = trajectory("rosenbrock", learning_rate=0.001, **settings)
    expected = numpy_reference(landscape, "nesterov", 0.001, 0.9, 30, landscape.start)
    np.testing.assert_array_equal(first[["x", "y"]].to_numpy(), again[["x", "y"]].to_numpy())
    np.testing.assert_allclose(again[["x", "y"]].to_numpy(), expected, rtol=1e-9)


@pytest.mark.parametrize("method", list(METHODS))
def test_traced_loop_and_eager_steps_agree(method):
    landscape = LANDSCAPES["beale"]
    runner = landscapes._Runner(landscape, method, 0.0 if method == "sgd" else 0.9, "keras")
    traced = runner.run(0.002, landscape.start, 60)
    runner.compiled = False
    eager = runner.run(0.002, landscape.start, 60)
    np.testing.assert_allclose(traced[0], eager[0], rtol=1e-12)
    np.testing.assert_allclose(traced[1], eager[1], rtol=1e-12)
    diverging = landscapes._Runner(LANDSCAPES["ravine"], method, 0.0, "keras")
    traced_out = diverging.run(0.2, (-8.0, 1.5), 500)
    diverging.compiled = False
    eager_out = diverging.run(0.2, (-8.0, 1.5), 500)
    assert traced_out[2] == eager_out[2] is not None
    np.testing.assert_allclose(traced_out[1], eager_out[1], rtol=1e-12)


def test_runs_from_several_threads_are_not_mixed_up():
    from concurrent.futures import ThreadPoolExecutor

    starts = [(-8.0 + i, 1.5 - 0.2 * i) for i in range(6)]

    def run(start):
        return trajectory("ravine", method="momentum", learning_rate=0.02, steps=200, start=start)

    with ThreadPoolExecutor(4) as pool:
        frames = list(pool.map(run, starts))
    for start, frame in zip(starts, frames, strict=True):
        expected = numpy_reference(LANDSCAPES["ravine"], "momentum", 0.02, 0.9, 200, start)
        np.testing.assert_allclose(frame[["x", "y"]].to_numpy(), expected, rtol=1e-10, atol=1e-12)
