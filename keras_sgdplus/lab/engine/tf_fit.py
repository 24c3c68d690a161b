"""The compiled path on TensorFlow: Keras's `fit` with `steps_per_execution` > 1, each step's
records kept in the graph.

`fit` runs `steps_per_execution` steps as one `tf.function` (a `tf.while_loop`, compiled by
XLA as Keras compiles it). A callback after every step would force one step per execution,
so the step itself writes its records into TensorFlow variables (`InGraphRecords`): the
batch's own loss, the learning rate the optimizer used (read before the update), and the
gradient's global norm. After each execution a callback reads them once and hands them to
the recorder. The train step is Keras's own TensorFlow `train_step` with those writes added
(`recording_train_step`); the saved model is an ordinary Keras model.

Each epoch is one `fit` call over the samples in the epoch's order
(`engine.order.epoch_order`), batched by `tf.data` (`from_tensor_slices` of the permuted
arrays: a gather per batch in a `map` costs more per step than the copy, 16k x 784
float32 in about 16 ms on a 2-core CPU). After each epoch the execution size is set to about
`CHUNK_SECONDS` of steps, measured.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_sgdplus.lab.engine.common import (
    MAX_CHUNK_STEPS,
    TrainingArrays,
    rate_of_next_step,
    steps_for,
    validation_batch_size,
)
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.engine.recorder import StepRecorder


class InGraphRecords:
    """Per-step records written inside the compiled train function: a (3, capacity) buffer
    (loss, rate, grad norm) and the count written since the last `take`."""

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self.values = tf.Variable(tf.zeros((3, capacity), tf.float32), trainable=False)
        self.count = tf.Variable(0, dtype=tf.int32, trainable=False)

    def write(self, loss: Any, rate: Any, grad_norm: Any) -> None:
        column = self.count
        indices = tf.stack([tf.range(3), tf.fill([3], column)], axis=1)
        values = tf.stack([tf.cast(v, tf.float32) for v in (loss, rate, grad_norm)])
        self.values.scatter_nd_update(indices, values)
        self.count.assign_add(1)

    def take(self) -> np.ndarray:
        """The records written since the last call, shape (3, count); resets the count."""
        count = int(self.count.numpy())
        values = self.values.numpy()[:, :count]
        self.count.assign(0)
        return values


def recording_train_step(model: keras.Model, records: InGraphRecords) -> Callable[[Any], Any]:
    """Keras's TensorFlow `train_step` (keras/src/backend/tensorflow/trainer.py) with the
    step's records written into `records`. The epoch's mean training loss is taken from the
    records (weighted by batch size, as Keras's loss tracker weights it)."""
    optimizer = model.optimizer

    def train_step(data: Any) -> Any:
        x, y, sample_weight = keras.utils.unpack_x_y_sample_weight(data)
        rate = rate_of_next_step(optimizer)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(
                x=x, y=y, y_pred=y_pred, sample_weight=sample_weight, training=True
            )
            scaled = optimizer.scale_loss(loss)
        weights = model.trainable_weights
        gradients = tape.gradient(scaled, weights)
        grad_norm = tf.linalg.global_norm([tf.cast(g, tf.float32) for g in gradients])
        optimizer.apply(gradients, weights)
        records.write(loss, rate, grad_norm)
        return model.compute_metrics(x, y, y_pred, sample_weight=sample_weight)

    return train_step


class _ReadRecords(keras.callbacks.Callback):
    """After each execution: the records to the recorder, a stop when it says so."""

    def __init__(self, recorder: StepRecorder, records: InGraphRecords, epoch: int) -> None:
        super().__init__()
        self.recorder = recorder
        self.records = records
        self.epoch = epoch
        self.done = 0
        self.go_on = True
        self.timings: list[tuple[float, int]] = []  # (seconds, steps) of each execution
        self.last = time.perf_counter()

    def on_train_batch_begin(self, batch: int, logs: Any = None) -> None:
        self.last = time.perf_counter()

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        values = self.records.take()
        count = values.shape[1]
        self.timings.append((time.perf_counter() - self.last, count))
        if not self.recorder.record(
            self.epoch, self.done, values[0], values[1], values[2], started=self.last
        ):
            self.go_on = False
            self.model.stop_training = True
        self.done += count


def train(
    model: keras.Model,
    arrays: TrainingArrays,
    batch_size: int,
    epochs: range,
    seed: int,
    recorder: StepRecorder,
) -> None:
    """Trains `model` (compiled, on TensorFlow) over `epochs`, recording every step."""
    steps_per_epoch = recorder.steps_per_epoch
    records = InGraphRecords(min(steps_per_epoch, MAX_CHUNK_STEPS))
    model.train_step = recording_train_step(model, records)  # read by make_train_function
    model.steps_per_execution = steps_for(None, records.capacity)
    model.make_train_function(force=True)
    val_batch = validation_batch_size(batch_size, len(arrays.x_val))
    validation = tf.data.Dataset.from_tensor_slices((arrays.x_val, arrays.y_val)).batch(val_batch)
    for epoch in epochs:
        order = epoch_order(seed, epoch, arrays.n_train)
        batches = (
            tf.data.Dataset.from_tensor_slices((arrays.x_train[order], arrays.y_train[order]))
            .batch(batch_size)
            .prefetch(tf.data.AUTOTUNE)
        )
        reader = _ReadRecords(recorder, records, epoch)
        history = model.fit(
            batches,
            validation_data=validation,
            epochs=epoch + 1,
            initial_epoch=epoch,
            verbose=0,
            shuffle=False,
            callbacks=[reader],
        )
        logs = {key: values[-1] for key, values in history.history.items()}
        logs["loss"] = recorder.epoch_loss(epoch)
        if not recorder.end_epoch(epoch, logs) or not reader.go_on:
            break
        _resize_executions(model, records, reader.timings)


def _resize_executions(
    model: keras.Model, records: InGraphRecords, timings: list[tuple[float, int]]
) -> None:
    """Sets `steps_per_execution` to about CHUNK_SECONDS of steps, from the epoch's timings
    (the first execution, which may have traced and compiled, left out), when the size now
    is off by 4x or more: a new size retraces and recompiles the train function."""
    measured = timings[1:] or timings
    seconds = sum(t for t, _ in measured)
    steps = sum(n for _, n in measured)
    if not steps:
        return
    wanted = steps_for(seconds / steps, records.capacity)
    now = model.steps_per_execution
    if wanted >= 4 * now or 4 * wanted <= now:
        model.steps_per_execution = wanted
        model.make_train_function(force=True)
