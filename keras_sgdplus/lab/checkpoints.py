"""A run's training state as named arrays, for an exact resume.

The state after a whole epoch is everything the next step depends on: the model's
variables (weights and non-trainable ones), the optimizer's (its iteration count, learning
rate, SGDPlus's momentum slots), and how many epochs are done. The shuffle of every later
epoch derives from (seed, epoch) alone (`engine.order`), so a run resumed from this state
takes the same steps, with the same losses, as if it had never stopped.

    model/<i>       model.weights[i]
    optimizer/<i>   model.optimizer.variables[i]
    epochs_done     int64 scalar

`state_arrays` copies the state to host arrays at an epoch's end (cheap: a copy of the
variables); `CheckpointWriter` hands the writing to a thread, so a short epoch does not wait
on the disk (`training.checkpoint_after_batches` hands it over once the epoch's batches are
written);
the run's store writes it whole or not at all (`RunWriter.write_checkpoint`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping

import keras
import numpy as np

from keras_sgdplus.lab.runs import EPOCHS_DONE


def state_arrays(model: keras.Model, epochs_done: int) -> dict[str, np.ndarray]:
    """The model's and its optimizer's variables, copied to host arrays."""
    arrays = {f"model/{i}": np.array(v) for i, v in enumerate(model.weights)}
    variables = model.optimizer.variables
    arrays.update({f"optimizer/{i}": np.array(v) for i, v in enumerate(variables)})
    arrays[EPOCHS_DONE] = np.asarray(epochs_done, dtype="int64")
    return arrays


def restore(model: keras.Model, arrays: Mapping[str, np.ndarray]) -> int:
    """Assigns a checkpoint's arrays to a model built and compiled from the same config (its
    optimizer built); returns the epochs done. ValueError when they do not fit."""
    groups = (("model", model.weights), ("optimizer", model.optimizer.variables))
    for prefix, variables in groups:
        names = sorted((k for k in arrays if k.startswith(f"{prefix}/")), key=_index)
        if len(names) != len(variables):
            raise ValueError(
                f"the checkpoint holds {len(names)} {prefix} variables, the model has "
                f"{len(variables)}"
            )
        for variable, name in zip(variables, names, strict=True):
            value = arrays[name]
            if tuple(value.shape) != tuple(variable.shape):
                raise ValueError(
                    f"the checkpoint's {name} has shape {value.shape}, the variable "
                    f"{variable.path} {tuple(variable.shape)}"
                )
            variable.assign(value)
    return int(arrays[EPOCHS_DONE])


def _index(name: str) -> int:
    return int(name.rsplit("/", 1)[1])


class CheckpointWriter:
    """Writes checkpoints from a thread: `put` takes a state already copied
    (`state_arrays`) and returns; the thread writes the latest state handed to it (a newer
    one replaces one not yet written); `close` waits for the last and raises what the
    thread met."""

    def __init__(self, write: Callable[[Mapping[str, np.ndarray]], None]) -> None:
        self._write = write
        self._cond = threading.Condition()
        self._pending: dict[str, np.ndarray] | None = None
        self._closing = False
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name="checkpoints", daemon=True)
        self._thread.start()

    def put(self, arrays: dict[str, np.ndarray]) -> None:
        """Hands over a checkpoint's arrays (`state_arrays`) to be written."""
        with self._cond:
            self._pending = arrays
            self._cond.notify_all()

    def close(self) -> None:
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        if self._error is not None:
            raise self._error

    def _run(self) -> None:
        while True:
            with self._cond:
                while self._pending is None and not self._closing:
                    self._cond.wait()
                arrays, self._pending = self._pending, None
                if arrays is None:
                    return  # closing, nothing left
            try:
                self._write(arrays)
            except BaseException as error:  # reported by close
                self._error = error
                return
