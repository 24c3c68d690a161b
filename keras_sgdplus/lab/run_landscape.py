"""The loss landscape of a trained run: the surface around its final weights, the path its
weights took across it, and the straight line from its initial to its final weights.

**Surface** (Li et al., "Visualizing the Loss Landscape of Neural Nets", NeurIPS 2018):
the loss over a fixed, seeded subset of the training data at

    w(a, b) = w* + a·d1 + b·d2        on a grid of (a, b),

`w*` the final weights. Two choices of the directions:

- ``"random"``: Gaussian directions, *filter-normalised* (Li et al., Sec. 4): each filter of
  `d` is rescaled to the norm of the same filter of `w*`,
  ``d[..., j] ← d[..., j] / ‖d[..., j]‖ · ‖w*[..., j]‖``; Keras keeps a layer's output
  units (a Dense unit, a Conv2D filter) on the kernel's *last* axis, so filter `j` is the
  slice ``[..., j]``. Weights with fewer than two axes (biases, normalisation parameters)
  are zero in the directions (the reference code's ``ignore="biasbn"``).
- ``"pca"`` (Li et al., Sec. 7): the first two principal components of the weight
  snapshots' offsets from the final weights, ``w_i − w*`` (scikit-learn's `PCA`, as the
  reference code uses), with the share of the variance each explains. The path of the
  weights (`engine.snapshots`) is projected onto that plane, ``(a_i, b_i) = D⁺ (w_i − w*)``
  (for orthonormal `D`, the dot products), and ends at the origin: this is where plain SGD,
  momentum and Nesterov, or batch 1 and full batch, visibly take different paths.

**Line** (Goodfellow, Vinyals and Saxe, "Qualitatively characterizing neural network
optimization problems", ICLR 2015): the loss at ``w0 + t·(w* − w0)`` for t from −0.5 to
1.5, `w0` the initial weights, on the training and the validation subsets.

The losses are computed many grid points per compiled call (`LossEvaluator`: the model's
`stateless_call` vectorised over the points, `jax.jit` on JAX, an XLA `tf.function` on
TensorFlow), never one `evaluate` per point. `compute` does it all for a stored run and
stores the result in the run's folder (`RunStore.write_landscape`); it runs in a worker
process (`lab/landscape_worker.py`) or in `sgdplus landscape`, never in the dashboard's
server.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import LANDSCAPE_KINDS, LIVE_STATUSES, RunStore, WeightPath

if TYPE_CHECKING:  # Keras loads where the losses are computed, not where options are checked
    import keras

DEFAULT_RESOLUTION = 31
DEFAULT_SPAN = 1.0  # random directions: the grid is [-span, span]² (Li et al.'s default)
DEFAULT_SAMPLES = 2048  # the training subset the loss is computed on
PATH_MARGIN = 0.2  # the PCA plane's grid reaches this share of the path's extent beyond it
LINE_RANGE = (-0.5, 1.5)
LINE_POINTS = 41
MAX_RESOLUTION = 201
MAX_SAMPLES = 100_000
#: About how many (point, sample) pairs one compiled call evaluates, by backend: bounds its
#: memory, and is what ran fastest for a `digits` grid on a 2-core CPU (JAX: 8 to 16 points
#: of 1,437 samples a call, 1.5x faster than 90 or more; TensorFlow: the more the faster).
PAIRS_PER_CALL = {"jax": 1 << 14, "tensorflow": 1 << 19}

Array = np.ndarray


@dataclasses.dataclass(frozen=True)
class LandscapeOptions:
    """What a run's landscape is computed with; checked where it is made.

    `directions`: "pca" (the plane of the path) or "random" (filter-normalised);
    `resolution`: grid points along each axis; `span`: the grid is [-span, span]² (None:
    1 for random directions, the path's extent for "pca"); `samples`: the size of the
    training subset; `seed`: of the subset and of the random directions."""

    directions: str = "pca"
    resolution: int = DEFAULT_RESOLUTION
    span: float | None = None
    samples: int = DEFAULT_SAMPLES
    seed: int = 0

    def __post_init__(self) -> None:
        if self.directions not in LANDSCAPE_KINDS:
            raise ValueError(
                f"`directions` must be one of {', '.join(LANDSCAPE_KINDS)}. "
                f"Received: directions={self.directions!r}"
            )
        _check_int("resolution", self.resolution, 3, MAX_RESOLUTION)
        _check_int("samples", self.samples, 1, MAX_SAMPLES)
        _check_int("seed", self.seed, 0, 2**32 - 1)
        if self.span is not None and not (
            isinstance(self.span, (int, float))
            and not isinstance(self.span, bool)
            and math.isfinite(self.span)
            and self.span > 0
        ):
            raise ValueError(f"`span` must be a positive number. Received: span={self.span!r}")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _check_int(name: str, value: Any, low: int, high: int) -> None:
    if not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high:
        raise ValueError(
            f"`{name}` must be an integer in [{low}, {high}]. Received: {name}={value!r}"
        )


# --- the directions ----------------------------------------------------------------------------


def split(vector: Array, shapes: Sequence[Sequence[int]]) -> list[Array]:
    """A flat vector (`engine.snapshots`) as arrays of the given shapes, in order."""
    sizes = [int(np.prod(shape)) for shape in shapes]
    if sum(sizes) != vector.size:
        raise ValueError(f"a vector of {vector.size} values does not fill shapes {list(shapes)}")
    parts = np.split(np.asarray(vector), np.cumsum(sizes)[:-1])
    return [part.reshape(shape) for part, shape in zip(parts, shapes, strict=True)]


def filter_normalized_direction(weights: Sequence[Array], rng: np.random.Generator) -> list[Array]:
    """A Gaussian direction with each filter rescaled to its weights' filter norm.

    For a weight with two axes or more, filter `j` is the slice ``[..., j]`` (Keras's output
    units on the kernel's last axis): ``d[..., j] = g[..., j] / ‖g[..., j]‖ · ‖w[..., j]‖``
    with `g` standard normal (Li et al. 2018, Sec. 4, Eq. 1). Weights with fewer axes
    (biases, normalisation parameters) get zeros."""
    direction = []
    for w in weights:
        w = np.asarray(w, dtype="float64")
        if w.ndim < 2:
            direction.append(np.zeros_like(w))
            continue
        d = rng.standard_normal(w.shape)
        axes = tuple(range(w.ndim - 1))
        d_norm = np.sqrt(np.sum(d * d, axis=axes, keepdims=True))
        w_norm = np.sqrt(np.sum(w * w, axis=axes, keepdims=True))
        direction.append(d / (d_norm + 1e-10) * w_norm)
    return direction


def pca_directions(vectors: Array, final: Array) -> tuple[Array, Array, Array]:
    """The first two principal components of the offsets ``w_i − w*`` (rows of `vectors`
    minus `final`), unit vectors, and the ratio of the variance each explains
    (scikit-learn's `PCA`, as Li et al.'s reference code). ValueError when the path has
    fewer than three snapshots (two points span no plane)."""
    from sklearn.decomposition import PCA

    offsets = np.asarray(vectors, dtype="float64") - np.asarray(final, dtype="float64")
    if len(offsets) < 3:
        raise ValueError(
            f"the path's plane needs at least 3 weight snapshots; the run kept {len(offsets)}"
        )
    pca = PCA(n_components=2, svd_solver="full").fit(offsets)
    first, second = pca.components_
    return first, second, np.asarray(pca.explained_variance_ratio_, dtype="float64")


def project(vectors: Array, final: Array, d1: Array, d2: Array) -> Array:
    """Each row's coordinates in the plane through `final` spanned by `d1`, `d2`: the
    least-squares ``(a, b)`` of ``w_i − w* ≈ a·d1 + b·d2`` (for orthonormal directions,
    the dot products, as Li et al. project the path). Shape (k, 2)."""
    basis = np.stack([d1, d2], axis=1).astype("float64")
    offsets = (np.asarray(vectors, dtype="float64") - np.asarray(final, dtype="float64")).T
    coordinates, *_ = np.linalg.lstsq(basis, offsets, rcond=None)
    return np.asarray(coordinates.T)


def grid_axes(options: LandscapeOptions, path: Array | None) -> tuple[Array, Array]:
    """The grid's `alpha` and `beta` values: [-span, span] each, or for the PCA plane with
    no span given, the path's extent (and the origin) with `PATH_MARGIN` around it."""
    n = options.resolution
    if options.span is not None or path is None or options.directions == "random":
        span = options.span or DEFAULT_SPAN
        axis = np.linspace(-span, span, n)
        return axis, axis.copy()
    axes = []
    for values in (path[:, 0], path[:, 1]):
        low, high = min(float(values.min()), 0.0), max(float(values.max()), 0.0)
        margin = PATH_MARGIN * max(high - low, 1e-3)
        axes.append(np.linspace(low - margin, high + margin, n))
    return axes[0], axes[1]


# --- the losses --------------------------------------------------------------------------------


class LossEvaluator:
    """The model's loss at many weight vectors per compiled call.

    `loss_at(center, d1, d2, coefficients, x, y)` is the loss on `(x, y)` of the model with
    weights ``center + a·d1 + b·d2`` for each row `(a, b)` of `coefficients`: the model's
    `stateless_call` (inference mode) vectorised over the rows (`keras.ops.vectorized_map`),
    compiled once (`jax.jit`, or `tf.function(jit_compile=True)`), called on as many rows
    at a time as make `PAIRS_PER_CALL` (point, sample) pairs.
    """

    def __init__(self, model: keras.Model, loss: Callable[[Any, Any], Any]) -> None:
        self.model = model
        self.loss = loss
        self.non_trainable = [v.value for v in model.non_trainable_variables]
        self.shapes = [tuple(v.shape) for v in model.trainable_variables]
        self._compiled: dict[int, Any] = {}

    def _program(self, count: int) -> Any:
        import keras

        if count in self._compiled:
            return self._compiled[count]
        model, loss, non_trainable = self.model, self.loss, self.non_trainable

        def losses(center: Any, d1: Any, d2: Any, coefficients: Any, x: Any, y: Any) -> Any:
            def one(c: Any) -> Any:
                weights = [w + c[0] * a + c[1] * b for w, a, b in zip(center, d1, d2, strict=True)]
                y_pred, _ = model.stateless_call(weights, non_trainable, x, training=False)
                return loss(y, y_pred)

            return keras.ops.vectorized_map(one, coefficients)

        program: Any = losses
        if keras.backend.backend() == "jax":
            import jax

            program = jax.jit(losses)
        elif keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            program = tf.function(losses, jit_compile=True)
        self._compiled[count] = program
        return program

    def loss_at(
        self,
        center: Sequence[Array],
        d1: Sequence[Array],
        d2: Sequence[Array],
        coefficients: Array,
        x: Array,
        y: Array,
        progress: Callable[[int], None] | None = None,
    ) -> Array:
        """The losses at the rows of `coefficients` (float64, shape (P,)); `progress` gets
        the number of rows done after each call."""
        import keras

        coefficients = np.asarray(coefficients, dtype="float32").reshape(-1, 2)
        pairs = PAIRS_PER_CALL.get(keras.backend.backend(), 1 << 14)
        per_call = max(1, min(len(coefficients), pairs // max(len(x), 1), 512))
        program = self._program(per_call)
        as32 = [[np.asarray(a, dtype="float32") for a in group] for group in (center, d1, d2)]
        out = np.empty(len(coefficients), dtype="float64")
        for first in range(0, len(coefficients), per_call):
            rows = coefficients[first : first + per_call]
            padded = np.zeros((per_call, 2), dtype="float32")
            padded[: len(rows)] = rows  # one shape, one compilation
            values = program(*as32, padded, x, y)
            out[first : first + len(rows)] = np.asarray(values, dtype="float64")[: len(rows)]
            if progress:
                progress(first + len(rows))
        return out


# --- a run's landscape -------------------------------------------------------------------------


def subset(n: int, size: int, seed: int) -> Array:
    """A fixed, seeded subset of `size` indices of `n` (all of them when `size` >= n),
    in increasing order: ``sorted(default_rng(seed).choice(n, size, replace=False))``."""
    if size >= n:
        return np.arange(n)
    return np.sort(np.random.default_rng(seed).choice(n, size, replace=False))


def _weight_path(store: RunStore, run_id: str) -> tuple[dict, WeightPath]:
    meta = store.load_meta(run_id)
    if meta["status"] in LIVE_STATUSES:
        raise ValueError(f"run {run_id} is still training: its landscape comes once it ends")
    path = store.load_snapshots(run_id)
    if path is None:
        raise ValueError(
            f"run {run_id} kept no weight snapshots (it was trained before runs kept them): "
            "train it again, or continue it, to see its landscape"
        )
    if not np.isfinite(path.vectors[-1]).all():
        raise ValueError(f"run {run_id} ended with weights that are not finite (it diverged)")
    return meta, path


def compute(
    store: RunStore,
    run_id: str,
    options: LandscapeOptions,
    progress: Callable[[dict[str, Any]], None] | None = None,
) -> tuple[dict[str, Array], dict[str, Any]]:
    """Computes the landscape of a finished run (see the module docstring) in this process
    and returns its arrays and info (not stored: `compute_and_store` stores them).

    Arrays: `alpha` (R,), `beta` (R,), `loss` (R, R) with rows following beta, `path`
    (k, 2) from the first snapshot to the final weights (at the origin), `path_steps` (k,),
    `explained_variance` (2,) (NaN for random directions), `line_t`, `line_train`,
    `line_validation`, `center_loss` (the final weights' loss on the subset), and the
    directions `direction_1`, `direction_2` as flat vectors (`engine.snapshots`' layout).
    `progress` gets ``{"done": points evaluated, "total": points}``.
    ValueError for a run still training, without snapshots or with non-finite weights."""
    import keras

    from keras_sgdplus.lab import datasets as datasets_module
    from keras_sgdplus.lab.models import build_model, loss_name, make_loss
    from keras_sgdplus.lab.training import load_data, training_arrays

    began = time.perf_counter()
    meta, path = _weight_path(store, run_id)
    config = TrainingConfig.from_dict(meta["config"])
    data: datasets_module.Dataset = load_data(config)
    info = data.info
    loss = loss_name(config.model, info.task)
    arrays = training_arrays(data, loss)
    model = build_model(config.model, info.task, info.input_shape, info.num_classes)
    shapes = [tuple(item["shape"]) for item in path.layout]
    if shapes != [tuple(v.shape) for v in model.trainable_variables]:
        raise ValueError(f"run {run_id}'s weight snapshots do not fit the model of its config")
    evaluator = LossEvaluator(model, make_loss(loss))

    train_rows = subset(len(arrays.x_train), options.samples, options.seed)
    val_rows = subset(len(arrays.x_val), options.samples, options.seed + 1)
    x, y = arrays.x_train[train_rows], arrays.y_train[train_rows]
    x_val, y_val = arrays.x_val[val_rows], arrays.y_val[val_rows]

    final = path.vectors[-1].astype("float64")
    center = split(final, shapes)
    if options.directions == "pca":
        d1, d2, explained = pca_directions(path.vectors, final)
    else:
        rng = np.random.default_rng(options.seed)
        first = filter_normalized_direction(center, rng)
        second = filter_normalized_direction(center, rng)
        d1 = np.concatenate([d.ravel() for d in first])
        d2 = np.concatenate([d.ravel() for d in second])
        explained = np.full(2, np.nan)
    coordinates = project(path.vectors, final, d1, d2)
    alpha, beta = grid_axes(options, coordinates)
    grid_a, grid_b = np.meshgrid(alpha, beta)  # rows follow beta
    points = np.stack([grid_a.ravel(), grid_b.ravel()], axis=1)
    line_t = np.linspace(*LINE_RANGE, LINE_POINTS)
    total = len(points) + 2 * len(line_t) + 1

    def report(done: int) -> None:
        if progress:
            progress({"done": done, "total": total})

    d1_parts, d2_parts = split(d1, shapes), split(d2, shapes)
    losses = evaluator.loss_at(center, d1_parts, d2_parts, points, x, y, progress=report)
    center_loss = evaluator.loss_at(center, d1_parts, d2_parts, np.zeros((1, 2)), x, y)[0]
    start = split(path.vectors[0].astype("float64"), shapes)
    toward_final = split(final - path.vectors[0], shapes)
    nothing = [np.zeros(s) for s in shapes]
    along = np.stack([line_t, np.zeros_like(line_t)], axis=1)
    line_train = evaluator.loss_at(start, toward_final, nothing, along, x, y)
    report(len(points) + len(line_t) + 1)
    line_val = evaluator.loss_at(start, toward_final, nothing, along, x_val, y_val)
    report(total)
    result = {
        "alpha": alpha,
        "beta": beta,
        "loss": losses.reshape(len(beta), len(alpha)),
        "path": coordinates,
        "path_steps": path.steps,
        "explained_variance": explained,
        "line_t": line_t,
        "line_train": line_train,
        "line_validation": line_val,
        "center_loss": np.float64(center_loss),
        "direction_1": d1.astype("float32"),
        "direction_2": d2.astype("float32"),
    }
    details = {
        "run_id": run_id,
        "options": options.to_dict(),
        "loss_name": loss,
        "train_samples": len(train_rows),
        "validation_samples": len(val_rows),
        "snapshots": len(path.steps),
        "backend": keras.backend.backend(),
        "seconds": round(time.perf_counter() - began, 3),
    }
    return result, details


def compute_and_store(
    store: RunStore,
    run_id: str,
    options: LandscapeOptions,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_started: Callable[[], None] | None = None,
) -> tuple[dict[str, Array], dict[str, Any]]:
    """`compute`, holding the run's landscape lock (`RunStore.computing_landscape`: one
    computation of a kind at a time, its progress readable by any process), then stores
    the result in the run's folder. A failure is stored as the progress's `error`.
    `on_started` is called once the lock is held and the first progress stored."""
    with store.computing_landscape(run_id, options.directions) as report:
        report({"state": "computing", "done": 0, "total": None, "options": options.to_dict()})
        if on_started:
            on_started()

        def forward(state: dict[str, Any]) -> None:
            report({"state": "computing", **state, "options": options.to_dict()})
            if progress:
                progress(state)

        try:
            result, details = compute(store, run_id, options, forward)
        except Exception as error:
            report({"state": "failed", "error": str(error), "options": options.to_dict()})
            raise
        store.write_landscape(run_id, options.directions, result, details)
        report({"state": "done", "options": options.to_dict(), "seconds": details["seconds"]})
    return result, details


def as_json(result: dict[str, Array]) -> dict[str, Any]:
    """The surface on its plane for scripts (`sgdplus landscape --json`): `alpha`, `beta`,
    `loss` (rows follow beta), `path` ([a, b] pairs, the final weights last, at the
    origin), `explained_variance` ([r1, r2]; null for random directions), `center_loss`."""

    def numbers(values: Array) -> Any:
        return [None if not math.isfinite(v) else v for v in np.asarray(values).tolist()]

    explained = np.asarray(result["explained_variance"], dtype="float64")
    return {
        "alpha": numbers(result["alpha"]),
        "beta": numbers(result["beta"]),
        "loss": [numbers(row) for row in result["loss"]],
        "path": np.asarray(result["path"], dtype="float64").tolist(),
        "path_steps": np.asarray(result["path_steps"]).tolist(),
        "explained_variance": None if np.isnan(explained).all() else explained.tolist(),
        "center_loss": float(result["center_loss"]),
    }
