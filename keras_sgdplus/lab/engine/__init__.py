"""How a run trains: the engine paths and what they share.

- `jax_chunks`: on JAX, chunks of steps as one compiled program (`lax.fori_loop` over
  Keras's stateless step with the optimizer's own update), the data on the device.
- `tf_chunks`: on TensorFlow, the same: chunks of steps as one XLA program (a
  `tf.while_loop` over Keras's TensorFlow step, `jit_compile=True`).
- `chunks`: the epoch loop both compiled paths share.
- `keras_fit`: Keras's `fit` one step per execution with a per-batch callback: what the
  compiled paths cannot take (a `tf.distribute` strategy over several GPUs), and the
  reference they are tested against.

Every path takes its batches in the order of `order.epoch_order(seed, epoch, n)` and hands
each chunk's per-step loss, learning rate and gradient norm to `recorder.StepRecorder`.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable

PATHS = ("auto", "jax_chunks", "tf_chunks", "keras_fit")


def choose_path(requested: str, backend: str, distributed: bool) -> str:
    """The path a run takes: `requested` unless "auto"; "auto" takes the compiled path of
    the backend, and `keras_fit` under a `tf.distribute` strategy."""
    if requested not in PATHS:
        raise ValueError(f"`path` must be one of {', '.join(PATHS)}. Received: path={requested!r}")
    wanted = {"jax": "jax_chunks", "tensorflow": "tf_chunks"}.get(backend, "keras_fit")
    if requested == "auto":
        return "keras_fit" if distributed else wanted
    if requested != "keras_fit" and (requested != wanted or distributed):
        where = f"{backend} under a distribution strategy" if distributed else backend
        raise ValueError(
            f"`path` {requested} cannot train on {where}. Received: path={requested!r}"
        )
    return requested


def train_function(path: str) -> Callable[..., None]:
    """The `train(model, arrays, batch_size, epochs, seed, recorder)` of a path (one of
    `PATHS` but "auto"), imported on first use: a JAX run never imports TensorFlow."""
    return importlib.import_module(f"{__name__}.{path}").train  # type: ignore[no-any-return]
