"""The compiled-epoch path on JAX: chunks of steps run as one compiled program.

The data lives on the device. Each chunk is one `jax.jit` call of a `lax.fori_loop` over a
number of steps given at run time (so one compilation serves every chunk size). A step is
what Keras's own JAX `train_step` does (`model.compute_loss_and_updates` under
`jax.value_and_grad`, `optimizer.stateless_apply` with the optimizer's own update:
SGDPlus's for SGDPlus, the model's compiled metrics updated statelessly), plus three
outputs written into the chunk's buffers:

    loss_i        the batch's own loss, before the update (not Keras's running mean)
    rate_i        the learning rate the optimizer used for this step (its state before it)
    grad_norm_i   sqrt(sum over all gradients of g**2), the gradient's global norm

A step's batch is `x[order[start + i*B : start + (i+1)*B]]`, gathered on the device from
the epoch's order (`engine.order.epoch_order`). The epoch loop is `chunks.chunked_path`;
JAX dispatches asynchronously, so the host records one chunk while the next runs. The state
(weights, optimizer slots, metrics) is carried from call to call as arrays, and goes back
into the Keras variables at each epoch's end. The weight snapshots that fall inside a chunk
(`engine.snapshots`) are written by the program into the buffer it returns: the chunk's
loop runs in segments that end at its snapshot steps, each segment then copies the weights
into its row (a copy under a `lax.cond` at every step made XLA copy the whole buffer at
every step).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

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
from keras_sgdplus.lab.engine.snapshots import weight_count

State = tuple[list[Any], list[Any], list[Any], list[Any]]


def _variables(model: keras.Model) -> State:
    optimizer = model.optimizer
    return (
        [v.value for v in model.trainable_variables],
        [v.value for v in model.non_trainable_variables],
        [v.value for v in optimizer.variables],
        [v.value for v in model.metrics_variables],
    )


def _assign(model: keras.Model, state: State) -> None:
    trainable, non_trainable, optimizer_values, metrics_values = state
    groups = (
        (model.trainable_variables, trainable),
        (model.non_trainable_variables, non_trainable),
        (model.optimizer.variables, optimizer_values),
        (model.metrics_variables, metrics_values),
    )
    for variables, values in groups:
        for variable, value in zip(variables, values, strict=True):
            variable.assign(value)


def make_step(model: keras.Model) -> Callable[[State, Any, Any], tuple[State, Any]]:
    """One training step as a pure function of the state and a batch."""
    optimizer = model.optimizer
    grad_fn = jax.value_and_grad(model.compute_loss_and_updates, has_aux=True)

    def step(state: State, x: Any, y: Any) -> tuple[State, Any]:
        trainable, non_trainable, optimizer_values, metrics_values = state
        optimizer_mapping = list(zip(optimizer.variables, optimizer_values, strict=True))
        with keras.StatelessScope(state_mapping=optimizer_mapping):
            rate = jnp.asarray(rate_of_next_step(optimizer), dtype="float32")
        (_, (loss, y_pred, non_trainable, metrics_values)), grads = grad_fn(
            trainable,
            non_trainable,
            metrics_values,
            x,
            y,
            None,
            training=True,
            optimizer_variables=optimizer_values,
        )
        grad_norm = global_norm(grads)
        trainable, optimizer_values = optimizer.stateless_apply(optimizer_values, grads, trainable)
        mapping = list(zip(model.metrics_variables, metrics_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping) as scope:
            model.compute_metrics(x, y, y_pred, None)
        updated = [scope.get_current_value(v) for v, _ in mapping]
        metrics_values = [
            new if new is not None else old for new, (_, old) in zip(updated, mapping, strict=True)
        ]
        outputs = jnp.stack([jnp.asarray(loss, "float32"), rate, grad_norm])
        return (trainable, non_trainable, optimizer_values, metrics_values), outputs

    return step


class JaxChunks:
    """The compiled programs of one run (`chunks.ChunkPrograms`): a chunk of full batches,
    and the last batch; the state (`State`) carried from call to call within an epoch."""

    def __init__(
        self, model: keras.Model, arrays: TrainingArrays, batch_size: int, snapshot_rows: int = 1
    ) -> None:
        self.model = model
        self.snapshot_rows = snapshot_rows
        self.x = jnp.asarray(arrays.x_train)
        self.y = jnp.asarray(arrays.y_train)
        self.full_steps = arrays.n_train // batch_size
        self.capacity = max(1, min(self.full_steps, MAX_CHUNK_STEPS))
        val_batch = validation_batch_size(batch_size, len(arrays.x_val))
        batches = validation_batches(arrays.x_val, arrays.y_val, val_batch)
        self.validation = tuple(None if a is None else jnp.asarray(a) for a in batches)
        # the metrics as `reset_metrics` leaves them (`build_compiled_parts` reset them)
        self.fresh_metrics = [jnp.array(v.value) for v in model.metrics_variables]
        self.state: State | None = None
        self.order: Any = None
        step = make_step(model)
        size, capacity = batch_size, self.capacity
        weights = weight_count(model.trainable_variables)

        def flatten(trainable: list[Any]) -> Any:
            return jnp.concatenate([jnp.ravel(w).astype("float32") for w in trainable])

        def chunk(
            state: State, x: Any, y: Any, order: Any, first: Any, count: Any, snap_at: Any
        ) -> Any:
            # segment j runs the steps up to bounds[j] and copies the weights into row j:
            # bounds[j] = snap_at[j] (count for an unused row), and a last segment runs to
            # `count` and writes its copy into the spare row at the end, which is not read
            bounds = jnp.concatenate(
                [jnp.where(snap_at > 0, snap_at, count), jnp.asarray(count)[None]]
            )

            def step_body(i: Any, carry: Any) -> Any:
                state, outputs = carry
                start = (first + i) * size
                indices = jax.lax.dynamic_slice_in_dim(order, start, size)
                state, out = step(state, x[indices], y[indices])
                return state, outputs.at[:, i].set(out)

            def segment(j: Any, carry: Any) -> Any:
                state, outputs, snapshots = carry
                begin = jnp.where(j > 0, bounds[jnp.maximum(j - 1, 0)], 0)
                state, outputs = jax.lax.fori_loop(begin, bounds[j], step_body, (state, outputs))
                return state, outputs, snapshots.at[j].set(flatten(state[0]))

            outputs = jnp.full((3, capacity), jnp.nan, dtype="float32")
            snapshots = jnp.zeros((snap_at.shape[0] + 1, weights), dtype="float32")
            return jax.lax.fori_loop(0, snap_at.shape[0] + 1, segment, (state, outputs, snapshots))

        def last_batch(state: State, x: Any, y: Any, indices: Any) -> Any:
            state, out = step(state, x[indices], y[indices])
            return state, out[:, None]

        self.chunk = jax.jit(chunk, donate_argnums=0)
        self.epoch_end = jax.jit(make_epoch_end(model))
        # Keras's order of the results: a dict comes back from `jit` with its keys sorted
        self.metric_names = list(model.get_metrics_result())
        self.last_batch = jax.jit(last_batch, donate_argnums=0)
        self.flatten = jax.jit(flatten)

    def begin_epoch(self, order: np.ndarray) -> None:
        trainable, non_trainable, optimizer_values, _ = _variables(self.model)
        fresh = [jnp.copy(value) for value in self.fresh_metrics]  # the chunk donates its state
        self.state = (trainable, non_trainable, optimizer_values, fresh)
        self.order = jnp.asarray(order)

    def run_chunk(self, first: int, count: int, snap_at: np.ndarray) -> tuple[Any, Any]:
        self.state, outputs, snapshots = self.chunk(
            self.state, self.x, self.y, self.order, first, count, snap_at
        )
        return outputs, snapshots

    def run_last_batch(self, indices: np.ndarray) -> Any:
        self.state, outputs = self.last_batch(self.state, self.x, self.y, jnp.asarray(indices))
        return outputs

    def weights(self) -> Any:
        assert self.state is not None
        return self.flatten(self.state[0])  # a new array: the next chunk donates the state

    def end_epoch(self) -> tuple[dict[str, float], dict[str, float]]:
        assert self.state is not None
        results = self.epoch_end(self.state, self.fresh_metrics, *self.validation)
        _assign(self.model, self.state)
        train, validation = (
            as_floats({name: found[name] for name in self.metric_names})
            for found in jax.device_get(results)
        )
        return train, validation


def make_epoch_end(model: keras.Model) -> Callable[..., tuple[Any, Any]]:
    """The epoch's end as one pure function of the state and the validation batches.

    Its results: the training metrics as `model.get_metrics_result()` reads them from the
    state, and what Keras's `evaluate` returns on the validation set, computed as
    `evaluate` computes it (keras/src/backend/jax/trainer.py): the metrics reset, Keras's own
    `test_step` on each batch in order, then `get_metrics_result()`. `full_x`, `full_y`:
    the full batches stacked (k, B, ...); `rest_x`, `rest_y`: the last, smaller batch, or
    None.
    """

    def results(metrics_values: list[Any]) -> Any:
        mapping = list(zip(model.metrics_variables, metrics_values, strict=True))
        with keras.StatelessScope(state_mapping=mapping):
            return model.get_metrics_result()

    def epoch_end(
        state: State, fresh_metrics: list[Any], full_x: Any, full_y: Any, rest_x: Any, rest_y: Any
    ) -> tuple[Any, Any]:
        trainable, non_trainable, _, metrics_values = state

        def test_batch(i: Any, test_state: Any) -> Any:
            return model.test_step(test_state, (full_x[i], full_y[i]))[1]

        test_state = (trainable, non_trainable, fresh_metrics)
        test_state = jax.lax.fori_loop(0, full_x.shape[0], test_batch, test_state)
        if rest_x is not None:
            test_state = model.test_step(test_state, (rest_x, rest_y))[1]
        return results(metrics_values), results(test_state[2])

    return epoch_end


#: `train(model, arrays, batch_size, epochs, seed, recorder)`: this path for `engine`.
train = chunked_path(JaxChunks)
