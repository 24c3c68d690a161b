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
the epoch's order (`engine.order.epoch_order`); an epoch's last, smaller batch is its own
one-step call. Chunks never cross an epoch, and are sized to take about `CHUNK_SECONDS`.
While the host records one chunk, the next already runs (JAX dispatches asynchronously);
a stop ends training after the chunk in flight, which is recorded too.
At each epoch's end the state goes back into the Keras variables, Keras's `evaluate` gives
the validation logs, and the model is an ordinary Keras model again.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import jax
import jax.numpy as jnp
import keras
import numpy as np

from keras_sgdplus.lab.engine.common import (
    MAX_CHUNK_STEPS,
    TrainingArrays,
    build_compiled_parts,
    epoch_logs,
    rate_of_next_step,
    steps_for,
    validation_batch_size,
)
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.engine.recorder import StepRecorder

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


def global_norm(grads: list[Any]) -> Any:
    """`sqrt(sum over all gradients of g**2)` in float32.

    Each gradient is summed through its transpose: the sum does not change, and XLA on the
    CPU reads a Dense kernel's gradient in the (transposed) layout it was made in instead
    of copying it into the kernel's layout first, a copy that made the norm cost more than
    the rest of an online step on the MNIST-shaped set (benchmarks/training_speed.py).
    """
    return jnp.sqrt(sum(jnp.sum(jnp.square(jnp.transpose(g).astype("float32"))) for g in grads))


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
    """The compiled programs of one run: a chunk of full batches, and the last batch."""

    def __init__(self, model: keras.Model, arrays: TrainingArrays, batch_size: int) -> None:
        self.x = jnp.asarray(arrays.x_train)
        self.y = jnp.asarray(arrays.y_train)
        self.full_steps, self.rest = divmod(arrays.n_train, batch_size)
        self.capacity = max(1, min(self.full_steps, MAX_CHUNK_STEPS))
        step = make_step(model)
        size, capacity = batch_size, self.capacity

        def chunk(state: State, x: Any, y: Any, order: Any, first: Any, count: Any) -> Any:
            def body(i: Any, carry: Any) -> Any:
                state, outputs = carry
                start = (first + i) * size
                indices = jax.lax.dynamic_slice_in_dim(order, start, size)
                state, out = step(state, x[indices], y[indices])
                return state, outputs.at[:, i].set(out)

            outputs = jnp.full((3, capacity), jnp.nan, dtype="float32")
            return jax.lax.fori_loop(0, count, body, (state, outputs))

        def last_batch(state: State, x: Any, y: Any, indices: Any) -> Any:
            state, out = step(state, x[indices], y[indices])
            return state, out[:, None]

        self.chunk = jax.jit(chunk, donate_argnums=0)
        self.last_batch = jax.jit(last_batch, donate_argnums=0)


def train(
    model: keras.Model,
    arrays: TrainingArrays,
    batch_size: int,
    epochs: range,
    seed: int,
    recorder: StepRecorder,
) -> None:
    """Trains `model` (compiled, on JAX) over `epochs`, recording every step."""
    build_compiled_parts(model, arrays)
    programs = JaxChunks(model, arrays, batch_size)
    val_batch = validation_batch_size(batch_size, len(arrays.x_val))
    pace = _Pace()
    for epoch in epochs:
        model.reset_metrics()
        state = _variables(model)
        order = epoch_order(seed, epoch, arrays.n_train)
        order_device = jnp.asarray(order)
        done = 0
        in_flight: _Chunk | None = None
        while done < programs.full_steps and not recorder.finished:
            count = steps_for(
                pace.seconds_per_step, min(programs.capacity, programs.full_steps - done)
            )
            started = time.perf_counter()
            state, outputs = programs.chunk(
                state, programs.x, programs.y, order_device, done, count
            )
            if in_flight is not None:  # recorded while the chunk just started runs
                _record(recorder, epoch, in_flight, pace)
            in_flight = _Chunk(done, count, outputs, started)
            done += count
        if in_flight is not None and not recorder.diverged:  # it ran: a stop keeps it
            _record(recorder, epoch, in_flight, pace)
        if programs.rest and not recorder.finished:
            indices = jnp.asarray(order[programs.full_steps * batch_size :])
            started = time.perf_counter()
            state, outputs = programs.last_batch(state, programs.x, programs.y, indices)
            _record(recorder, epoch, _Chunk(programs.full_steps, 1, outputs, started), None)
        _assign(model, state)
        logs = epoch_logs(model, recorder.epoch_loss(epoch))
        validation = model.evaluate(
            arrays.x_val, arrays.y_val, batch_size=val_batch, verbose=0, return_dict=True
        )
        logs.update({f"val_{key}": float(value) for key, value in validation.items()})
        if not recorder.end_epoch(epoch, logs):
            break


@dataclass(frozen=True)
class _Chunk:
    first_batch: int
    count: int
    outputs: Any  # (3, capacity) on the device: loss, rate, grad norm of each step
    started: float  # when it was dispatched


class _Pace:
    """Seconds per step of the chunks so far (the latest; the first call, which compiles,
    left out), for the size of the next."""

    def __init__(self) -> None:
        self.seconds_per_step: float | None = None
        self.calls = 0
        self.last_end = 0.0


def _record(recorder: StepRecorder, epoch: int, chunk: _Chunk, pace: _Pace | None) -> None:
    """Waits for the chunk, then records its steps (and measures its pace)."""
    values = np.asarray(chunk.outputs)[:, : chunk.count]
    if pace is not None:
        end = time.perf_counter()
        pace.calls += 1
        if pace.calls > 1:  # it started when it was dispatched or when the one before ended
            pace.seconds_per_step = (end - max(chunk.started, pace.last_end)) / chunk.count
        pace.last_end = end
    recorder.record(
        epoch, chunk.first_batch, values[0], values[1], values[2], started=chunk.started
    )
