"""What differs between Keras backends: sparse gradients, compiling the update, autodiff.

SGDPlus itself is written with ``keras.ops``; this module holds the few places where the
TensorFlow and JAX backends need their own code.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Sequence
from typing import Any

import keras

BACKEND = keras.backend.backend()


def is_sparse(gradient: Any) -> bool:
    """True for a ``tf.IndexedSlices`` gradient (what ``Embedding`` gives on TensorFlow)."""
    if BACKEND != "tensorflow":
        return False
    import tensorflow as tf

    return isinstance(gradient, tf.IndexedSlices)


def scale_sparse(gradient: Any, factor: Any) -> Any:
    """``factor * g`` for an ``IndexedSlices`` ``g``, still sparse (rows scaled, not densified)."""
    import tensorflow as tf

    return tf.IndexedSlices(gradient.values * factor, gradient.indices, gradient.dense_shape)


def densify(gradient: Any) -> Any:
    """A dense tensor for any gradient; duplicate ``IndexedSlices`` rows are summed."""
    if is_sparse(gradient):
        import tensorflow as tf

        return tf.convert_to_tensor(gradient)
    return gradient


def read_value(value: Any) -> Any:
    """A tensor holding ``value`` now: variables are read, Python floats converted."""
    if isinstance(value, keras.Variable):
        value = value.value
    if BACKEND == "tensorflow":
        import tensorflow as tf

        return tf.convert_to_tensor(value, dtype_hint=keras.backend.floatx())
    return keras.ops.convert_to_tensor(value)


def distribution_strategy_name() -> str | None:
    """The name of the active ``tf.distribute`` strategy, or None for the default one."""
    if BACKEND != "tensorflow":
        return None
    import tensorflow as tf

    if not tf.distribute.has_strategy() and not tf.distribute.in_cross_replica_context():
        return None
    strategy = tf.distribute.get_strategy()
    if type(strategy).__name__.startswith("_Default"):
        return None
    return type(strategy).__name__


@functools.cache
def xla_unavailable_reason() -> str | None:
    """Why XLA cannot compile here (the error of a one-line probe), or None when it can."""
    if BACKEND == "jax":
        return None
    if BACKEND != "tensorflow":
        return f"the {BACKEND} backend has no XLA-compiled optimizer update"
    import tensorflow as tf

    with tf.init_scope():
        try:
            tf.function(lambda x: x + 1.0, jit_compile=True)(tf.constant(1.0))
        except Exception as error:
            return f"XLA failed to compile a probe ({type(error).__name__}: {error})"
    return None


def is_traced(values: Sequence[Any]) -> bool:
    """True while JAX traces a function (inside ``jax.jit``, as in ``model.fit``)."""
    if BACKEND != "jax":
        return False
    import jax

    return any(isinstance(value, jax.core.Tracer) for value in values)


def in_tensorflow_graph() -> bool:
    """True while TensorFlow traces a graph (`tf.function`, `model.fit`), not eagerly."""
    if BACKEND != "tensorflow":
        return False
    import tensorflow as tf

    return not tf.executing_eagerly()


def static_size(gradient: Any) -> int:
    """The number of elements of a gradient's dense shape known when tracing (0 if unknown);
    for sparse `IndexedSlices`, of the rows it holds."""
    shape = tuple(getattr(gradient, "values", gradient).shape)
    return 0 if None in shape else math.prod(int(dim) for dim in shape)


class TensorFlowXlaUpdate:
    """``body(learning_rate, grads, order)`` compiled by XLA, called with little overhead.

    Called eagerly with dense gradients, it calls the traced concrete function directly
    with the flat list of tensors: matching 200 arguments against a ``tf.function``'s
    signature costs more Python time than the update itself takes on the CPU. Anywhere
    else (inside a graph, sparse gradients) it is a plain ``tf.function(jit_compile=True)``.
    """

    def __init__(self, body: Callable[..., None]) -> None:
        import tensorflow as tf

        self._tf = tf
        self.function = tf.function(body, jit_compile=True, reduce_retracing=True, autograph=False)
        self._concrete: dict[tuple[Any, ...], Any] = {}

    def __call__(
        self,
        learning_rate: Any,
        grads: tuple[Any, ...],
        order: tuple[int, ...],
        count_step: bool = False,
    ) -> None:
        if not self._tf.executing_eagerly() or not all_eager_dense(grads):
            self.function(learning_rate, grads, order, count_step)
            return
        key = (order, count_step, learning_rate.dtype, *(g.dtype for g in grads))
        concrete: Any = self._concrete.get(key)
        if concrete is None:
            concrete = self.function.get_concrete_function(learning_rate, grads, order, count_step)
            concrete = self._concrete[key] = concrete if hasattr(concrete, "_call_flat") else False
        if concrete is False:
            self.function(learning_rate, grads, order, count_step)
        else:
            concrete._call_flat([learning_rate, *grads], concrete.captured_inputs)


@functools.cache
def _eager_tensor_type() -> type:
    import tensorflow as tf

    return type(tf.constant(0.0))


def all_eager_dense(grads: Sequence[Any]) -> bool:
    """True when every gradient is a dense eager TensorFlow tensor (no IndexedSlices)."""
    eager_tensor = _eager_tensor_type()
    return all(type(g) is eager_tensor for g in grads)


def jax_jit(body: Callable[..., Any], static_argnums: tuple[int, ...]) -> Callable[..., Any]:
    """``body`` compiled by ``jax.jit``."""
    import jax

    return jax.jit(body, static_argnums=static_argnums)


def gradients(loss: Any, var_list: list[Any], tape: Any) -> list[Any]:
    """Gradients of ``loss`` (a tensor with its tape, or a zero-argument callable)."""
    if BACKEND == "tensorflow":
        return _tensorflow_gradients(loss, var_list, tape)
    if BACKEND == "jax":
        return _jax_gradients(loss, var_list, tape)
    raise NotImplementedError(f"`minimize` is not supported on the {BACKEND} backend.")


def _tensorflow_gradients(loss: Any, var_list: list[Any], tape: Any) -> list[Any]:
    import tensorflow as tf

    if not callable(loss) and tape is None:
        raise ValueError(
            "`tape` is required when a `Tensor` loss is passed. "
            f"Received: loss={loss}, tape={tape}."
        )
    tape = tape if tape is not None else tf.GradientTape()
    if callable(loss):
        with tape:
            tape.watch([v.value if isinstance(v, keras.Variable) else v for v in var_list])
            loss = loss()
    return list(tape.gradient(loss, var_list))


def _jax_gradients(loss: Any, var_list: list[Any], tape: Any) -> list[Any]:
    import jax

    if not callable(loss) or tape is not None:
        raise ValueError(
            "On the JAX backend `minimize` takes the loss as a zero-argument callable "
            f"and no tape. Received: loss={loss}, tape={tape}."
        )

    def loss_of(values: list[Any]) -> Any:
        with keras.StatelessScope(state_mapping=list(zip(var_list, values, strict=True))):
            return loss()

    return list(jax.grad(loss_of)([v.value for v in var_list]))
