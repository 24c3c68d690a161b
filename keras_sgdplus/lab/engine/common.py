"""What the engine paths share: the arrays of a run, the rate of the next step, the size of a
chunk, the epoch logs."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import keras
import numpy as np

#: A chunk (one compiled call) aims at this many seconds, so a stop request and the live
#: view are answered well within a second, while the per-call cost stays small.
CHUNK_SECONDS = 0.25
#: The largest chunk of the JAX path (the size of its output buffers).
MAX_CHUNK_STEPS = 16_384
#: Validation batches at least this large: `fit` with batch 1 would validate one sample per
#: call; the mean validation loss is the same up to rounding.
MIN_VALIDATION_BATCH = 1_024


@dataclass(frozen=True)
class TrainingArrays:
    """The run's data as the model takes it (labels one-hot for categorical_crossentropy)."""

    x_train: np.ndarray
    y_train: np.ndarray
    x_val: np.ndarray
    y_val: np.ndarray

    @property
    def n_train(self) -> int:
        return len(self.x_train)


def build_compiled_parts(model: keras.Model, arrays: TrainingArrays) -> None:
    """Builds what `compile` left to the first batch (the compiled loss and metrics and their
    variables), as `fit` does before its first step, so the variables of the model's state
    are all there before a compiled path takes them; the metrics are reset after."""
    x, y = arrays.x_train[:1], arrays.y_train[:1]
    y_pred = model(x, training=False)
    model.compute_loss(x=x, y=y, y_pred=y_pred, training=False)
    model.compute_metrics(x, y, y_pred, sample_weight=None)
    model.reset_metrics()
    if not model.optimizer.built:
        model.optimizer.build(model.trainable_variables)


def rate_of_next_step(optimizer: keras.optimizers.Optimizer) -> Any:
    """The learning rate the optimizer's next step uses: `current_learning_rate` of SGDPlus
    (the base rate divided by `1 + decay * t`), Keras's `learning_rate` (the schedule at
    `iterations`) for the other optimizers."""
    current = getattr(optimizer, "current_learning_rate", None)
    if current is not None:
        return current
    return optimizer.learning_rate


def global_norm(grads: list[Any]) -> Any:
    """`sqrt(sum over all gradients of g**2)` in float32, inside a compiled step of either
    backend (`keras.ops`).

    Each gradient is summed through its transpose: the sum does not change, and XLA on the
    CPU reads a Dense kernel's gradient in the (transposed) layout it was made in instead
    of copying it into the kernel's layout first, a copy that made the norm cost more than
    the rest of an online step on the MNIST-shaped set (benchmarks/training_speed.py).
    """
    ops = keras.ops
    squares = [ops.sum(ops.square(ops.cast(ops.transpose(g), "float32"))) for g in grads]
    return ops.sqrt(sum(squares[1:], squares[0]))


def validation_batch_size(batch_size: int, n_val: int) -> int:
    return max(1, min(max(batch_size, MIN_VALIDATION_BATCH), n_val))


def validation_batches(
    x: np.ndarray, y: np.ndarray, batch_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None, np.ndarray | None]:
    """The validation set in the batches Keras's `evaluate` takes (`batch_size` samples in
    order, the last batch smaller): the full ones stacked, (k, batch_size, ...) of x and of
    y, then the last, smaller one (None, None when there is none)."""
    k = len(x) // batch_size
    full = k * batch_size
    full_x = x[:full].reshape(k, batch_size, *x.shape[1:])
    full_y = y[:full].reshape(k, batch_size, *y.shape[1:])
    if full == len(x):
        return full_x, full_y, None, None
    return full_x, full_y, x[full:], y[full:]


def steps_for(seconds_per_step: float | None, limit: int) -> int:
    """Steps in the next chunk: about CHUNK_SECONDS of work, a power of two, in [1, limit]."""
    if not seconds_per_step or seconds_per_step <= 0:
        return max(1, min(16, limit))
    wanted = max(1, int(CHUNK_SECONDS / seconds_per_step))
    return max(1, min(1 << (wanted.bit_length() - 1), limit))


def as_floats(results: Mapping[str, Any]) -> dict[str, float]:
    """Metric results (scalar arrays or tensors) as Python floats."""
    return {key: float(value) for key, value in results.items()}


def epoch_logs(metrics: dict[str, float], train_loss: float) -> dict[str, float]:
    """The epoch's training logs as Keras's `fit` gives them: the metrics' results (as
    `model.get_metrics_result()` gives them at the epoch's end), and the mean training loss
    given."""
    return {**metrics, "loss": train_loss}
