"""2-D loss landscapes and the paths SGDPlus takes across them ("the ball rolling").

Each `Landscape` holds a loss `f(x, y)` written with `keras.ops` (so it runs on Keras
variables and tensors, and autodiff gives its gradient), the same gradient written out with
NumPy (for the tests and for arrows or a heat map), a default start point, a plot window,
its minima and a learning rate and momentum that show its lesson well.

`trajectory` runs `keras_sgdplus.SGDPlus` itself, one `minimize` step at a time, on two
float64 `keras.Variable`s `x` and `y`, and returns the path as a `pandas.DataFrame`;
`compare_methods` runs plain SGD, momentum and Nesterov from the same start. `loss_grid`
and `log_scaled` give the values for a contour or heat map. No Streamlit and no charts here:
the landscape page draws what these functions return.
"""

from __future__ import annotations

import functools
import math
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np
import pandas as pd
from keras import ops

from keras_sgdplus import SGDPlus

__all__ = [
    "DIVERGENCE_BOUND",
    "LANDSCAPES",
    "MAX_STEPS",
    "METHODS",
    "Landscape",
    "compare_methods",
    "get_landscape",
    "log_scaled",
    "loss_grid",
    "trajectory",
]

#: A trajectory stops as diverged once |x| or |y| exceeds this (or a value is not finite).
DIVERGENCE_BOUND = 1e6
#: The most steps `trajectory` runs.
MAX_STEPS = 5000
#: The methods `trajectory` knows, with what each one is.
METHODS = {
    "sgd": "plain SGD (momentum 0): w = w - lr * g",
    "momentum": "heavy-ball momentum: v = mu * v - lr * g; w = w + v",
    "nesterov": "Nesterov momentum: v = mu * v - lr * g; w = w + mu * v - lr * g",
}

Array = np.ndarray


@dataclass(frozen=True)
class Landscape:
    """A 2-D loss function with what the landscape page needs to show it.

    Attributes:
        name: The key in `LANDSCAPES`.
        title: A short name for menus.
        description: One line: what the landscape teaches.
        function: `f(x, y) -> scalar`, written with `keras.ops`; takes Keras variables,
            backend tensors or NumPy arrays (elementwise on arrays).
        gradient: `(df/dx, df/dy)` at NumPy `x, y` (arrays or floats), written out by hand.
        start: The default start point `(x, y)`.
        window: The plot window `(xmin, xmax, ymin, ymax)`.
        minima: The points where `f` has its (global or local) minima; empty when none.
        minimum_value: `f` at each point of `minima`.
        learning_rate: A learning rate that shows the lesson well.
        momentum: A momentum that shows the lesson well.
    """

    name: str
    title: str
    description: str
    function: Callable[[Any, Any], Any]
    gradient: Callable[[Any, Any], tuple[Any, Any]]
    start: tuple[float, float]
    window: tuple[float, float, float, float]
    minima: tuple[tuple[float, float], ...]
    minimum_value: float
    learning_rate: float
    momentum: float

    def loss(self, x: Any, y: Any) -> Array:
        """`f(x, y)` on NumPy floats or arrays, as a float64 NumPy array."""
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        return np.asarray(ops.convert_to_numpy(self.function(x, y)), dtype=np.float64)


# -- the functions --------------------------------------------------------------------------
# Each keras.ops function has its NumPy gradient right below it.

RAVINE_STEEPNESS = 25.0


def _ravine(x: Any, y: Any) -> Any:
    return 0.5 * (ops.square(x) + RAVINE_STEEPNESS * ops.square(y))


def _ravine_gradient(x: Any, y: Any) -> tuple[Any, Any]:
    return np.asarray(x, dtype=np.float64), RAVINE_STEEPNESS * np.asarray(y, dtype=np.float64)


def _rosenbrock(x: Any, y: Any) -> Any:
    return ops.square(1.0 - x) + 100.0 * ops.square(y - ops.square(x))


def _rosenbrock_gradient(x: Any, y: Any) -> tuple[Any, Any]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    inner = y - x**2
    return -2.0 * (1.0 - x) - 400.0 * x * inner, 200.0 * inner


def _himmelblau(x: Any, y: Any) -> Any:
    return ops.square(ops.square(x) + y - 11.0) + ops.square(x + ops.square(y) - 7.0)


def _himmelblau_gradient(x: Any, y: Any) -> tuple[Any, Any]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    a = x**2 + y - 11.0
    b = x + y**2 - 7.0
    return 4.0 * x * a + 2.0 * b, 2.0 * a + 4.0 * y * b


_BEALE_CONSTANTS = (1.5, 2.25, 2.625)


def _beale(x: Any, y: Any) -> Any:
    return sum(ops.square(c - x + x * ops.power(y, k + 1)) for k, c in enumerate(_BEALE_CONSTANTS))


def _beale_gradient(x: Any, y: Any) -> tuple[Any, Any]:
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    dx = np.zeros(np.broadcast(x, y).shape)
    dy = np.zeros(np.broadcast(x, y).shape)
    for k, c in enumerate(_BEALE_CONSTANTS):
        term = c - x + x * y ** (k + 1)
        dx = dx + 2.0 * term * (y ** (k + 1) - 1.0)
        dy = dy + 2.0 * term * (k + 1) * x * y**k
    return dx, dy


def _saddle(x: Any, y: Any) -> Any:
    return ops.square(x) - ops.square(y)


def _saddle_gradient(x: Any, y: Any) -> tuple[Any, Any]:
    return 2.0 * np.asarray(x, dtype=np.float64), -2.0 * np.asarray(y, dtype=np.float64)


LANDSCAPES: dict[str, Landscape] = {
    landscape.name: landscape
    for landscape in (
        Landscape(
            name="ravine",
            title="Elongated ravine",
            description=(
                "f = (x² + 25 y²) / 2: plain SGD zig-zags across the steep walls and crawls "
                "along the floor; momentum builds speed along it, Nesterov overshoots less."
            ),
            function=_ravine,
            gradient=_ravine_gradient,
            start=(-8.0, 1.5),
            window=(-10.0, 10.0, -3.0, 3.0),
            minima=((0.0, 0.0),),
            minimum_value=0.0,
            learning_rate=0.03,
            momentum=0.8,
        ),
        Landscape(
            name="rosenbrock",
            title="Rosenbrock (a=1, b=100)",
            description=(
                "A curved, nearly flat valley with its minimum at (1, 1): finding the valley "
                "is easy, following it is slow without momentum."
            ),
            function=_rosenbrock,
            gradient=_rosenbrock_gradient,
            start=(-1.2, 1.0),
            window=(-2.0, 2.0, -1.0, 3.0),
            minima=((1.0, 1.0),),
            minimum_value=0.0,
            learning_rate=0.001,
            momentum=0.9,
        ),
        Landscape(
            name="himmelblau",
            title="Himmelblau",
            description=(
                "Four minima of equal depth: which one the ball ends in depends on the start, "
                "the rate and the momentum."
            ),
            function=_himmelblau,
            gradient=_himmelblau_gradient,
            start=(-0.5, -0.5),
            window=(-6.0, 6.0, -6.0, 6.0),
            minima=(
                (3.0, 2.0),
                (-2.805118086952745, 3.131312518250573),
                (-3.779310253377747, -3.283185991286170),
                (3.584428340330492, -1.848126526964404),
            ),
            minimum_value=0.0,
            learning_rate=0.005,
            momentum=0.8,
        ),
        Landscape(
            name="beale",
            title="Beale",
            description=(
                "Flat plateaus beside very steep walls, minimum at (3, 0.5): one rate is too "
                "small on the plateau and too large on the walls."
            ),
            function=_beale,
            gradient=_beale_gradient,
            start=(1.0, 1.4),
            window=(-4.5, 4.5, -4.5, 4.5),
            minima=((3.0, 0.5),),
            minimum_value=0.0,
            learning_rate=0.002,
            momentum=0.9,
        ),
        Landscape(
            name="saddle",
            title="Saddle",
            description=(
                "f = x² - y² has no minimum (it falls without bound along y): a start just off "
                "the ridge escapes the saddle at (0, 0), faster with momentum."
            ),
            function=_saddle,
            gradient=_saddle_gradient,
            start=(-2.0, 0.01),
            window=(-2.5, 2.5, -2.5, 2.5),
            minima=(),
            minimum_value=math.nan,
            learning_rate=0.02,
            momentum=0.9,
        ),
    )
}


def get_landscape(landscape: str | Landscape) -> Landscape:
    """The `Landscape` itself, or the one registered under that name."""
    if isinstance(landscape, Landscape):
        return landscape
    if landscape not in LANDSCAPES:
        raise ValueError(
            f"`landscape` must be one of {', '.join(LANDSCAPES)}. Received: landscape={landscape!r}"
        )
    return LANDSCAPES[landscape]


# -- heat map ---------------------------------------------------------------------------------


def loss_grid(landscape: str | Landscape, resolution: int = 120) -> tuple[Array, Array, Array]:
    """The loss over the landscape's window, for a contour or heat map.

    Returns:
        `(xs, ys, z)`: `xs` and `ys` are `resolution` evenly spaced points across the window,
        and `z[i, j] = f(xs[j], ys[i])` (rows follow y, columns follow x), all float64.
    """
    landscape = get_landscape(landscape)
    if isinstance(resolution, bool) or not isinstance(resolution, (int, np.integer)):
        raise ValueError(f"`resolution` must be an integer. Received: resolution={resolution!r}")
    if not 2 <= resolution <= 2000:
        raise ValueError(f"`resolution` must be in [2, 2000]. Received: resolution={resolution}")
    xmin, xmax, ymin, ymax = landscape.window
    xs = np.linspace(xmin, xmax, int(resolution))
    ys = np.linspace(ymin, ymax, int(resolution))
    grid_x, grid_y = np.meshgrid(xs, ys)
    return xs, ys, landscape.loss(grid_x, grid_y)


def log_scaled(z: Array, floor: float = 1e-3) -> Array:
    """`log10(z - min(z) + floor)`: loss values for a colour scale that shows the valleys.

    The shift makes every value positive (the saddle's loss is negative in places) and puts
    the lowest point at `log10(floor)`, so `floor` sets how deep the minima look.
    """
    z = np.asarray(z, dtype=np.float64)
    if not floor > 0:
        raise ValueError(f"`floor` must be > 0. Received: floor={floor}")
    return np.log10(z - np.nanmin(z) + floor)


# -- trajectories -----------------------------------------------------------------------------


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ValueError(f"`{name}` must be a number. Received: {name}={value!r}")
    return float(value)


def _check_arguments(
    method: str, learning_rate: Any, momentum: Any, steps: Any, start: Any, convention: str
) -> tuple[float, float, int, tuple[float, float] | None]:
    if method not in METHODS:
        raise ValueError(
            f"`method` must be one of {', '.join(METHODS)}. Received: method={method!r}"
        )
    rate = _check_number("learning_rate", learning_rate)
    if not (math.isfinite(rate) and rate > 0):
        raise ValueError(
            f"`learning_rate` must be a finite number > 0. Received: learning_rate={learning_rate}"
        )
    mu = _check_number("momentum", momentum)
    if not 0 <= mu < 1:
        raise ValueError(f"`momentum` must be in [0, 1). Received: momentum={momentum}")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)):
        raise ValueError(f"`steps` must be an integer. Received: steps={steps!r}")
    if not 1 <= steps <= MAX_STEPS:
        raise ValueError(f"`steps` must be in [1, {MAX_STEPS}]. Received: steps={steps}")
    if convention not in ("keras", "torch"):
        raise ValueError(
            f"`convention` must be 'keras' or 'torch'. Received: convention={convention!r}"
        )
    point = None
    if start is not None:
        try:
            sx, sy = start
            point = (_check_number("start", sx), _check_number("start", sy))
        except (TypeError, ValueError):
            raise ValueError(
                f"`start` must be a pair of finite numbers (x, y). Received: start={start!r}"
            ) from None
        if not all(math.isfinite(v) and abs(v) <= DIVERGENCE_BOUND for v in point):
            raise ValueError(
                f"`start` must be a pair of finite numbers (x, y) within ±{DIVERGENCE_BOUND:g}. "
                f"Received: start={start!r}"
            )
    return rate, mu, int(steps), point


class _Runner:
    """SGDPlus on two float64 `keras.Variable`s, for one landscape, method and momentum.

    The variables and the optimizer are made once and fully reset before every run (the
    point, `iterations`, the momentum slots and the learning rate), so that on TensorFlow
    the whole run is one call of a traced `tf.function` (a `tf.while_loop` of
    `optimizer.minimize` steps) instead of a trace per slider move. Nothing is remembered
    from one run to the next but the compiled program; a lock keeps two threads (two
    browser sessions) from running it at once. Other backends run the steps eagerly.
    """

    def __init__(self, landscape: Landscape, method: str, momentum: float, convention: str) -> None:
        self.landscape = landscape
        self.optimizer = SGDPlus(
            learning_rate=0.01,
            momentum=momentum,
            nesterov=method == "nesterov" and momentum > 0,
            convention=convention,
        )
        self.x = keras.Variable(0.0, dtype="float64", name="x")
        self.y = keras.Variable(0.0, dtype="float64", name="y")
        self.variables = [self.x, self.y]
        self.optimizer.build(self.variables)
        self.lock = threading.Lock()
        self.compiled = keras.backend.backend() == "tensorflow"
        self._graph_loop: Any = None

    def loss(self) -> Any:
        return self.landscape.function(self.x, self.y)

    def run(
        self, learning_rate: float, start: tuple[float, float], steps: int
    ) -> tuple[Array, Array, int | None]:
        """The points from `start` (included) and the step that diverged (or None)."""
        with self.lock:
            self.x.assign(start[0])
            self.y.assign(start[1])
            self.optimizer.iterations.assign(0)
            for slot in self.optimizer.momentums:
                slot.assign(ops.zeros(slot.shape, slot.dtype))
            self.optimizer.learning_rate = learning_rate
            if self.compiled:
                xs, ys = self._run_graph(steps)
            else:
                xs, ys = self._run_eager(steps)
        inside = (np.abs(xs) <= DIVERGENCE_BOUND) & (np.abs(ys) <= DIVERGENCE_BOUND)  # NaN too
        diverged_at = None
        if not inside.all():
            diverged_at = int(np.argmin(inside)) + 1
            xs, ys = xs[: diverged_at - 1], ys[: diverged_at - 1]
        return np.concatenate([[start[0]], xs]), np.concatenate([[start[1]], ys]), diverged_at

    def _run_eager(self, steps: int) -> tuple[Array, Array]:
        xs, ys = [], []
        for _ in range(steps):
            self.optimizer.minimize(self.loss, self.variables)
            xs.append(float(ops.convert_to_numpy(self.x.value)))
            ys.append(float(ops.convert_to_numpy(self.y.value)))
            if not (abs(xs[-1]) <= DIVERGENCE_BOUND and abs(ys[-1]) <= DIVERGENCE_BOUND):
                break
        return np.array(xs, dtype=np.float64), np.array(ys, dtype=np.float64)

    def _run_graph(self, steps: int) -> tuple[Array, Array]:
        import tensorflow as tf

        if self._graph_loop is None:
            self._graph_loop = tf.function(
                self._steps_in_graph,
                input_signature=[tf.TensorSpec([], tf.int32)],
                autograph=False,
            )
        xs, ys = self._graph_loop(tf.constant(steps, tf.int32))
        return xs.numpy(), ys.numpy()

    def _steps_in_graph(self, steps: Any) -> tuple[Any, Any]:
        """Up to `steps` minimize steps; stops after the first point out of bounds."""
        import tensorflow as tf

        bound = tf.constant(DIVERGENCE_BOUND, tf.float64)

        def keep_going(i: Any, xs: Any, ys: Any, out: Any) -> Any:
            return tf.logical_and(i < steps, tf.logical_not(out))

        def step(i: Any, xs: Any, ys: Any, out: Any) -> tuple[Any, Any, Any, Any]:
            self.optimizer.minimize(self.loss, self.variables)
            px = tf.identity(self.x.value)
            py = tf.identity(self.y.value)
            inside = tf.logical_and(tf.abs(px) <= bound, tf.abs(py) <= bound)
            return i + 1, xs.write(i, px), ys.write(i, py), tf.logical_not(inside)

        _, xs, ys, _ = tf.while_loop(
            keep_going,
            step,
            (
                tf.constant(0),
                tf.TensorArray(tf.float64, size=0, dynamic_size=True),
                tf.TensorArray(tf.float64, size=0, dynamic_size=True),
                tf.constant(False),
            ),
        )
        return xs.stack(), ys.stack()


@functools.lru_cache(maxsize=64)
def _runner(landscape: Landscape, method: str, momentum: float, convention: str) -> _Runner:
    """The runner for these settings, made on first use (the learning rate is set per run)."""
    return _Runner(landscape, method, momentum, convention)


def trajectory(
    landscape: str | Landscape,
    *,
    method: str,
    learning_rate: float,
    momentum: float = 0.9,
    steps: int = 100,
    start: tuple[float, float] | None = None,
    convention: str = "keras",
) -> pd.DataFrame:
    """The path SGDPlus takes from `start`, one optimizer step per row.

    `x` and `y` are two float64 `keras.Variable`s; each step is `optimizer.minimize(lambda:
    f(x, y), [x, y])` on an `SGDPlus` reset for this run, so the gradient is Keras autodiff
    of the `keras.ops` function and the update is SGDPlus's own. On TensorFlow the steps
    run in one traced `tf.while_loop`, traced once per landscape, method, momentum and
    convention and reused with the optimizer's state reset. (SGDPlus keeps its learning rate
    in a float32 variable, so the rate used is `learning_rate` rounded to float32.)

    Args:
        landscape: A `Landscape` or a key of `LANDSCAPES`.
        method: `"sgd"` (plain, momentum ignored), `"momentum"` or `"nesterov"`.
        learning_rate: A finite float > 0.
        momentum: Float in [0, 1), for `"momentum"` and `"nesterov"`. Defaults to `0.9`.
        steps: How many steps, in [1, 5000]. Defaults to `100`.
        start: The start point `(x, y)`; defaults to the landscape's own.
        convention: SGDPlus's `"keras"` or `"torch"` convention (the same path with a
            constant rate). Defaults to `"keras"`.

    Returns:
        A DataFrame with columns `step`, `x`, `y`, `loss`: row 0 is the start point, row `k`
        the point after step `k`. When a step leaves `±DIVERGENCE_BOUND` or gives a value
        that is not finite, the run stops there and that point is left out:
        `df.attrs["diverged"]` is True and `df.attrs["diverged_at"]` is the step that
        left (None otherwise). `df.attrs` also records the method and its settings.

    Raises:
        ValueError: naming the argument, for an unknown landscape or method, a learning rate
            that is not a finite number > 0, a momentum outside [0, 1), steps outside
            [1, 5000] or a start point that is not two finite numbers.
    """
    landscape = get_landscape(landscape)
    rate, mu, steps, point = _check_arguments(
        method, learning_rate, momentum, steps, start, convention
    )
    x0, y0 = point if point is not None else landscape.start
    used_momentum = 0.0 if method == "sgd" else mu
    runner = _runner(landscape, method, used_momentum, convention)
    path_x, path_y, diverged_at = runner.run(rate, (x0, y0), steps)
    with np.errstate(all="ignore"):
        losses = landscape.loss(path_x, path_y)
    frame = pd.DataFrame({"step": np.arange(len(path_x)), "x": path_x, "y": path_y, "loss": losses})
    frame.attrs.update(
        {
            "landscape": landscape.name,
            "method": method,
            "learning_rate": rate,
            "momentum": used_momentum,
            "convention": convention,
            "steps": steps,
            "diverged": diverged_at is not None,
            "diverged_at": diverged_at,
        }
    )
    return frame


def compare_methods(
    landscape: str | Landscape,
    learning_rate: float,
    momentum: float = 0.9,
    steps: int = 100,
    start: tuple[float, float] | None = None,
    convention: str = "keras",
) -> dict[str, pd.DataFrame]:
    """`trajectory` for plain SGD, momentum and Nesterov from the same start, by method."""
    return {
        method: trajectory(
            landscape,
            method=method,
            learning_rate=learning_rate,
            momentum=momentum,
            steps=steps,
            start=start,
            convention=convention,
        )
        for method in METHODS
    }
