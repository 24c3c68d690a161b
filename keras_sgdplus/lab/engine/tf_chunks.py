"""The compiled-epoch path on TensorFlow: chunks of steps run as one XLA program.

The data lives on the device as tensors. Each chunk is one call of a `tf.function` compiled
whole by XLA (`jit_compile=True`): a `tf.while_loop` over a number of steps given at run
time (so one compilation serves every chunk size), each step gathering its batch
`x[order[start + i*B : start + (i+1)*B]]` from the epoch's order (`engine.order.epoch_order`)
and doing what Keras's own TensorFlow `train_step` does (keras/src/backend/tensorflow/
trainer.py: the loss under a `GradientTape`, `optimizer.apply` with the optimizer's own
update, SGDPlus's for SGDPlus, the compiled metrics updated), plus three outputs written
into the chunk's buffer:

    loss_i        the batch's own loss, before the update (not Keras's running mean)
    rate_i        the learning rate the optimizer used for this step (read before it)
    grad_norm_i   sqrt(sum over all gradients of g**2), the gradient's global norm

and the weight snapshots that fall inside the chunk (`engine.snapshots`), written into the
buffer it returns: the loop runs in segments that end at the snapshot steps, and each
segment then copies the weights into its row.
The model's variables are updated in place, so the model is an ordinary Keras model between
calls. Keras's `fit` with `steps_per_execution` > 1 runs its loop in TensorFlow's graph
executor, one `tf.data` element and one XLA call per step, on two threads: this program is
one call for the whole chunk, on one (benchmarks/training_speed.py). The epoch loop is
`chunks.chunked_path`.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras
import numpy as np
import tensorflow as tf

from keras_sgdplus.lab.engine.chunks import chunked_path
from keras_sgdplus.lab.engine.common import (
    MAX_CHUNK_STEPS,
    TrainingArrays,
    as_floats,
    global_norm,
    rate_of_next_step,
    validation_batch_size,
    validation_batches,
)
from keras_sgdplus.lab.engine.snapshots import flat_weights, weight_count


def make_step(model: keras.Model) -> Callable[[Any, Any], Any]:
    """One training step on the model's variables; returns (loss, rate, grad norm)."""
    optimizer = model.optimizer

    def step(x: Any, y: Any) -> Any:
        rate = tf.cast(rate_of_next_step(optimizer), tf.float32)
        with tf.GradientTape() as tape:
            y_pred = model(x, training=True)
            loss = model.compute_loss(x=x, y=y, y_pred=y_pred, training=True)
            scaled = optimizer.scale_loss(loss)
        weights = model.trainable_weights
        gradients = tape.gradient(scaled, weights)
        grad_norm = global_norm(gradients)
        optimizer.apply(gradients, weights)
        model.compute_metrics(x, y, y_pred, sample_weight=None)  # results unused: XLA drops them
        return tf.stack([tf.cast(loss, tf.float32), rate, grad_norm])

    return step


class TfChunks:
    """The compiled programs of one run (`chunks.ChunkPrograms`): a chunk of full batches,
    and the last batch."""

    def __init__(
        self, model: keras.Model, arrays: TrainingArrays, batch_size: int, snapshot_rows: int = 1
    ) -> None:
        self.snapshot_rows = snapshot_rows
        self.x = tf.constant(arrays.x_train)
        self.y = tf.constant(arrays.y_train)
        self.full_steps = arrays.n_train // batch_size
        self.capacity = max(1, min(self.full_steps, MAX_CHUNK_STEPS))
        self.model = model
        val_batch = validation_batch_size(batch_size, len(arrays.x_val))
        batches = validation_batches(arrays.x_val, arrays.y_val, val_batch)
        self.validation = tuple(None if a is None else tf.constant(a) for a in batches)
        self.order: Any = None
        step = make_step(model)
        size, capacity, rows = batch_size, self.capacity, snapshot_rows
        variables = model.trainable_variables
        weights = weight_count(variables)

        def chunk(x: Any, y: Any, order: Any, first: Any, count: Any, snap_at: Any) -> Any:
            # segment j runs the steps up to bounds[j] and copies the weights into row j:
            # bounds[j] = snap_at[j] (count for an unused row), and a last segment runs to
            # `count` and writes its copy into the spare row at the end, which is not read
            bounds = tf.concat([tf.where(snap_at > 0, snap_at, count), count[None]], 0)

            def step_body(i: Any, end: Any, outputs: Any) -> Any:
                # a gather, not a slice: XLA's slice would take `first` as a compile-time
                # constant and compile the program again for every chunk
                indices = tf.gather(order, (first + i) * size + tf.range(size))
                out = step(tf.gather(x, indices), tf.gather(y, indices))
                where = tf.stack([tf.range(3), tf.fill([3], i)], axis=1)
                return i + 1, end, tf.tensor_scatter_nd_update(outputs, where, out)

            def segment(j: Any, outputs: Any, snapshots: Any) -> Any:
                begin = tf.where(j > 0, bounds[tf.maximum(j - 1, 0)], 0)
                _, _, outputs = tf.while_loop(
                    lambda i, end, _: i < end, step_body, (begin, bounds[j], outputs)
                )
                flat = tf.concat([tf.reshape(tf.cast(v, tf.float32), [-1]) for v in variables], 0)
                snapshots = tf.tensor_scatter_nd_update(snapshots, [[j]], flat[None])
                return j + 1, outputs, snapshots

            outputs = tf.fill([3, capacity], float("nan"))
            snapshots = tf.zeros([rows + 1, weights], tf.float32)
            _, outputs, snapshots = tf.while_loop(
                lambda j, *_: j < rows + 1, segment, (tf.constant(0), outputs, snapshots)
            )
            return outputs, snapshots

        def last_batch(x: Any, y: Any, indices: Any) -> Any:
            return step(tf.gather(x, indices), tf.gather(y, indices))[:, None]

        self.chunk = tf.function(chunk, jit_compile=True)
        self.last_batch = tf.function(last_batch, jit_compile=True)
        self.epoch_end = tf.function(make_epoch_end(model), jit_compile=True)

    def begin_epoch(self, order: np.ndarray) -> None:
        self.order = tf.constant(order)

    def run_chunk(self, first: int, count: int, snap_at: np.ndarray) -> tuple[Any, Any]:
        first_t, count_t = tf.constant(first, tf.int32), tf.constant(count, tf.int32)
        return self.chunk(self.x, self.y, self.order, first_t, count_t, tf.constant(snap_at))

    def run_last_batch(self, indices: np.ndarray) -> Any:
        return self.last_batch(self.x, self.y, tf.constant(indices))

    def end_epoch(self) -> tuple[dict[str, float], dict[str, float]]:
        """Nothing to hand back (the programs update the model's variables): the metrics."""
        train_metrics, validation = self.epoch_end(*self.validation)
        return as_floats(train_metrics), as_floats(validation)

    def weights(self) -> Any:
        """A copy now: the calls are synchronous, and the next one updates the variables."""
        return flat_weights([v.numpy() for v in self.model.trainable_variables])


def make_epoch_end(model: keras.Model) -> Callable[..., tuple[Any, Any]]:
    """The epoch's end on the model's variables: the training metrics as
    `model.get_metrics_result()` gives them, then what Keras's `evaluate` returns on the
    validation set, computed as `evaluate` computes it (keras/src/backend/tensorflow/
    trainer.py): the metrics reset, Keras's own `test_step` on each batch in order, then
    `get_metrics_result()`; the metrics are reset again for the next epoch. `full_x`,
    `full_y`: the full batches stacked (k, B, ...); `rest_x`, `rest_y`: the last, smaller
    batch, or None."""

    def epoch_end(full_x: Any, full_y: Any, rest_x: Any, rest_y: Any) -> tuple[Any, Any]:
        train_metrics = model.get_metrics_result()
        model.reset_metrics()

        def test_batch(i: Any) -> Any:
            model.test_step((full_x[i], full_y[i]))
            return (i + 1,)

        tf.while_loop(lambda i: i < tf.shape(full_x)[0], test_batch, (tf.constant(0),))
        if rest_x is not None:
            model.test_step((rest_x, rest_y))
        validation = model.get_metrics_result()
        model.reset_metrics()
        return train_metrics, validation

    return epoch_end


#: `train(model, arrays, batch_size, epochs, seed, recorder)`: this path for `engine`.
train = chunked_path(TfChunks)
