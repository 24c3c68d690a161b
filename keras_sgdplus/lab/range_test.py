"""The learning-rate range test on a Keras model: `range_test` for any compiled model, and
`find_learning_rate` for a lab config (the data, model and optimizer a run of it would have).

The steps are trained by the lab's compiled engine (`lab/engine/`: `jax_chunks` on JAX,
`tf_chunks` on TensorFlow), which returns each step's own loss (the batch's loss before its
update) and the learning rate the optimizer used for it; the sweep is the optimizer's own
learning rate replaced, for the test, by `keras.optimizers.schedules.ExponentialDecay(start,
decay_steps=steps - 1, decay_rate=end / start)`, that is `start * (end / start) ** (t /
(steps - 1))` at step t. The arithmetic (smoothing, stop, suggestion) is `lab/lr_find.py`.

Afterwards the model's weights, the optimizer's variables (its slots, `iterations`) and
learning rate, and the compiled metrics are as they were before the test.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from typing import Any

import keras
import numpy as np

from keras_sgdplus.lab import engine, lr_find
from keras_sgdplus.lab.config import ScheduleSpec, TrainingConfig
from keras_sgdplus.lab.engine.common import TrainingArrays
from keras_sgdplus.lab.engine.order import batch_sizes_of
from keras_sgdplus.lab.engine.recorder import StepRecorder
from keras_sgdplus.lab.lr_find import RangeTestResult

__all__ = ["find_learning_rate", "model_and_arrays", "range_test"]


class _Steps:
    """The recorder's batch sink and stop request: keeps the steps' losses and rates, and
    asks the engine to stop once the test has what it needs (`steps` steps, or the stop of
    `lr_find.stop_index`)."""

    def __init__(self, steps: int, beta: float, divergence: float) -> None:
        self.steps, self.beta, self.divergence = steps, beta, divergence
        self.losses: list[float] = []
        self.rates: list[float] = []

    def put(self, columns: Mapping[str, np.ndarray]) -> None:
        self.losses.extend(float(v) for v in columns["loss"])
        self.rates.extend(float(v) for v in columns["learning_rate"])

    def flush(self, *, sync: bool = True) -> None:
        pass

    @property
    def requested(self) -> bool:
        if len(self.losses) >= self.steps:
            return True
        return lr_find.stop_index(self.losses, self.beta, self.divergence) is not None


def _check_model(model: Any, x: Any, y: Any, batch_size: Any) -> None:
    if not isinstance(model, keras.Model):
        raise ValueError(f"`model` must be a keras.Model. Received: model={type(model).__name__}")
    if getattr(model, "optimizer", None) is None:
        raise ValueError(
            "`model` must be compiled (with an optimizer and a loss). Received: an uncompiled "
            f"model={model.name!r}"
        )
    if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)):
        raise ValueError(
            f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size!r}"
        )
    if batch_size < 1:
        raise ValueError(f"`batch_size` must be an integer >= 1. Received: batch_size={batch_size}")
    if len(x) != len(y) or len(x) == 0:
        raise ValueError(
            f"`x` and `y` must hold the same number (> 0) of samples. Received: len(x)={len(x)}, "
            f"len(y)={len(y)}"
        )


def range_test(
    model: keras.Model,
    x: Any,
    y: Any,
    *,
    batch_size: int = 32,
    start: float = lr_find.DEFAULT_START,
    end: float = lr_find.DEFAULT_END,
    steps: int = lr_find.DEFAULT_STEPS,
    beta: float = lr_find.DEFAULT_BETA,
    divergence: float = lr_find.DEFAULT_DIVERGENCE,
    rule: str = lr_find.DEFAULT_RULE,
    seed: int = 0,
) -> RangeTestResult:
    """Runs a learning-rate range test on a compiled model and puts the model back.

    Trains `model` on `(x, y)` with its own optimizer and loss for up to `steps` steps of
    `batch_size` samples (the batches in the lab's order for `seed`, `engine.order`), the
    learning rate growing exponentially from `start` to `end`; stops early once the smoothed
    loss passes `divergence` times its best (`lr_find.stop_index`). Returns the rates, each
    step's own loss, the losses smoothed with `beta`, and `rule`'s suggestion
    (`lr_find.RULES`). The weights, the optimizer's state and learning rate are restored.

    Args:
        model: a compiled Keras model (on the JAX or TensorFlow backend).
        x, y: the training data as NumPy arrays (labels as the loss takes them).
        batch_size: samples per step. Defaults to 32.
        start, end: the first and the last rate of the sweep. Default to 1e-7 and 10.
        steps: the steps of the sweep, >= 10. Defaults to 100.
        beta: the smoothing factor in [0, 1). Defaults to 0.98.
        divergence: stop once the smoothed loss passes this many times its best (> 1;
            `math.inf`: never). Defaults to 4.
        rule: the suggestion rule, a name in `lr_find.RULES`. Defaults to
            `lr_find.DEFAULT_RULE`.
        seed: the order of the batches. Defaults to 0.

    Raises:
        ValueError: naming a bad argument and its value.
    """
    lr_find.check_options(start, end, steps, beta, divergence, rule)
    _check_model(model, x, y, batch_size)
    backend = keras.backend.backend()
    if backend not in ("jax", "tensorflow"):
        raise ValueError(
            f"the range test trains on the jax or tensorflow backend. Received: backend={backend!r}"
        )
    x, y = np.asarray(x), np.asarray(y)
    arrays = TrainingArrays(x_train=x, y_train=y, x_val=x[:batch_size], y_val=y[:batch_size])
    batch_size = min(int(batch_size), len(x))
    optimizer = model.optimizer
    if not optimizer.built:
        optimizer.build(model.trainable_variables)
    weights = [np.array(v.numpy()) for v in model.weights]
    optimizer_state = [np.array(v.numpy()) for v in optimizer.variables]
    own_rate = optimizer._learning_rate  # the float's variable, a schedule or a callable
    sweep = keras.optimizers.schedules.ExponentialDecay(
        start, decay_steps=steps - 1, decay_rate=end / start
    )
    sizes = batch_sizes_of(len(x), batch_size)
    recorded = _Steps(steps, beta, divergence)
    recorder = StepRecorder(recorded, lambda row: None, sizes, recorded)
    epochs = range(math.ceil(steps / len(sizes)))
    try:
        # Keras's `learning_rate` setter would untrack the rate's variable, changing the
        # optimizer's variables: the schedule takes its place for the test only.
        optimizer._learning_rate = sweep
        optimizer.iterations.assign(0)
        engine.train_function(f"{'jax' if backend == 'jax' else 'tf'}_chunks")(
            model, arrays, batch_size, epochs, seed, recorder
        )
    finally:
        optimizer._learning_rate = own_rate
        for variable, value in zip(model.weights, weights, strict=True):
            variable.assign(value)
        for variable, value in zip(optimizer.variables, optimizer_state, strict=True):
            variable.assign(value)
        model.reset_metrics()
    return lr_find.make_result(
        recorded.rates, recorded.losses, beta, divergence, rule=rule, steps=steps
    )


def model_and_arrays(config: TrainingConfig) -> tuple[keras.Model, TrainingArrays, int]:
    """The compiled model (with the config's optimizer at a constant rate), the arrays and
    the batch size that a run of `config` trains with (`training.run_training`)."""
    from keras_sgdplus.lab import training
    from keras_sgdplus.lab.models import build_model, loss_name, make_loss, metrics_for
    from keras_sgdplus.lab.optimizers import make_optimizer

    training.set_random_seed(config.seed)
    data = training.load_data(config)
    info = data.info
    loss = loss_name(config.model, info.task)
    arrays = training.training_arrays(data, loss)
    batch_size = config.batch_size or len(arrays.x_train)
    spec = dataclasses.replace(config.optimizer, schedule=ScheduleSpec())
    model = build_model(config.model, info.task, info.input_shape, info.num_classes)
    model.compile(
        optimizer=make_optimizer(spec, 1), loss=make_loss(loss), metrics=metrics_for(info.task)
    )
    return model, arrays, batch_size


def find_learning_rate(
    config: TrainingConfig,
    *,
    start: float = lr_find.DEFAULT_START,
    end: float = lr_find.DEFAULT_END,
    steps: int = lr_find.DEFAULT_STEPS,
    beta: float = lr_find.DEFAULT_BETA,
    divergence: float = lr_find.DEFAULT_DIVERGENCE,
    rule: str = lr_find.DEFAULT_RULE,
) -> RangeTestResult:
    """The range test of a run of `config`: its data, its model as initialised for its seed,
    its optimizer (SGDPlus's momentum and convention, or Adam...) without its schedule, its
    batch size and its batch order; the rate swept in place of the config's. The
    process's backend and device are set already (`accelerators.prepare_process`)."""
    lr_find.check_options(start, end, steps, beta, divergence, rule)
    from keras_sgdplus.lab.accelerators import select_device

    _, device_context = select_device(config.device)
    with device_context():
        model, arrays, batch_size = model_and_arrays(config)
        return range_test(
            model,
            arrays.x_train,
            arrays.y_train,
            batch_size=batch_size,
            start=start,
            end=end,
            steps=steps,
            beta=beta,
            divergence=divergence,
            rule=rule,
            seed=config.seed,
        )
