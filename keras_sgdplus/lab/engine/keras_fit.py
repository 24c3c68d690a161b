"""Keras's own `fit`, one step per execution: the path for what the compiled paths cannot
take (a `tf.distribute` strategy over several GPUs), and the plain reference the compiled
paths are tested against.

A callback after every batch reads the batch's own loss from the `BatchLoss` metric and
the learning rate from the optimizer before the step; the gradient norm is not seen here
(recorded as NaN). Each epoch is one `fit` call over the arrays in the epoch's order
(`engine.order.epoch_order`), unshuffled.
"""

from __future__ import annotations

import math
from typing import Any

import keras
import numpy as np

from keras_sgdplus.lab.engine.common import (
    TrainingArrays,
    rate_of_next_step,
    validation_batch_size,
)
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.engine.recorder import StepRecorder
from keras_sgdplus.lab.models import make_loss


@keras.saving.register_keras_serializable(package="sgdplus_lab")
class BatchLoss(keras.metrics.Metric):
    """The loss of the latest batch alone (Keras's `loss` log is the epoch's running mean).

    Computed by the compiled loss function on the same predictions, before the update.
    """

    def __init__(self, loss: str, name: str = "batch_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.loss_name = loss
        self._loss = make_loss(loss)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.value.assign(keras.ops.cast(self._loss(y_true, y_pred), self.dtype))

    def result(self) -> Any:
        return keras.ops.convert_to_tensor(self.value)  # a tensor: JAX cannot take a Variable

    def reset_state(self) -> None:
        self.value.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "loss": self.loss_name}


class _EveryBatch(keras.callbacks.Callback):
    def __init__(self, recorder: StepRecorder, epoch: int) -> None:
        super().__init__()
        self.recorder = recorder
        self.epoch = epoch
        self.rate = math.nan
        self.go_on = True

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self.rate = float(keras.ops.convert_to_numpy(rate_of_next_step(self.model.optimizer)))

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = float((logs or {}).get("batch_loss", math.nan))
        one = np.ones(1)
        if not self.recorder.record(self.epoch, batch, one * loss, one * self.rate, one * math.nan):
            self.go_on = False
            self.model.stop_training = True
        if self.recorder.snapshot_due(self.recorder.step):
            self.recorder.keep_snapshot(self.recorder.step, self.model.trainable_variables)


def train(
    model: keras.Model,
    arrays: TrainingArrays,
    batch_size: int,
    epochs: range,
    seed: int,
    recorder: StepRecorder,
) -> None:
    """Trains `model` (compiled with a `BatchLoss` metric) over `epochs`, one step at a time."""
    model.steps_per_execution = 1
    val_batch = validation_batch_size(batch_size, len(arrays.x_val))
    for epoch in epochs:
        order = epoch_order(seed, epoch, arrays.n_train)
        every_batch = _EveryBatch(recorder, epoch)
        history = model.fit(
            arrays.x_train[order],
            arrays.y_train[order],
            batch_size=batch_size,
            validation_data=(arrays.x_val, arrays.y_val),
            validation_batch_size=val_batch,
            epochs=epoch + 1,
            initial_epoch=epoch,
            shuffle=False,
            verbose=0,
            callbacks=[every_batch],
        )
        logs = {key: values[-1] for key, values in history.history.items()}
        if not recorder.end_epoch(epoch, logs) or not every_batch.go_on:
            break
