"""The epoch loop of the compiled paths (`jax_chunks`, `tf_chunks`): chunks of steps, each
one compiled call, recorded as they end.

A backend's programs (`ChunkPrograms`) take the epoch's order (`engine.order.epoch_order`)
once, then run a chunk of `count` full batches from batch `first` as one call, and an
epoch's last, smaller batch as a call of its own. Each call returns a (3, n) array of the
steps' own loss, learning rate and gradient norm; a chunk also returns its buffer of weight
snapshots (`engine.snapshots`): row j holds the weights after `snap_at[j]` of its steps
(-1: an unused row). Chunks never cross an epoch, and are
sized to take about `CHUNK_SECONDS` from the pace of the chunks before
(`common.steps_for`). A call may return before its program ends (JAX dispatches
asynchronously): the host then records one chunk while the next runs. A stop ends training
after the chunk in flight, which is recorded too. At each epoch's end the programs hand
their state back to the Keras variables, so the model is an ordinary Keras model again, and
one compiled call gives the epoch's metrics and the validation logs, computed as Keras's
`evaluate` computes them (Keras's own `test_step` on the same batches): `evaluate` itself
builds its data iterator, callbacks and a thread each call, 5-25 ms, a third of an epoch of
online `digits`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Protocol

import keras
import numpy as np

from keras_sgdplus.lab.engine.common import (
    TrainingArrays,
    build_compiled_parts,
    epoch_logs,
    steps_for,
)
from keras_sgdplus.lab.engine.order import epoch_order
from keras_sgdplus.lab.engine.recorder import StepRecorder
from keras_sgdplus.lab.engine.snapshots import buffer_rows, weight_count


class ChunkPrograms(Protocol):
    """The compiled programs of one run on one backend."""

    full_steps: int  # full batches an epoch
    capacity: int  # the most steps one chunk call takes
    snapshot_rows: int  # the most weight snapshots one chunk call keeps

    def begin_epoch(self, order: np.ndarray) -> None:
        """Takes the epoch's order (and the model's state, where the programs carry it)."""

    def run_chunk(self, first: int, count: int, snap_at: np.ndarray) -> tuple[Any, Any]:
        """Runs full batches `first .. first + count - 1`; their (3, >= count) records and
        the (snapshot_rows, weights) buffer of the weights after `snap_at[j]` steps (the
        int32 in-chunk step counts, -1 for none)."""

    def run_last_batch(self, indices: np.ndarray) -> Any:
        """Runs the epoch's last, smaller batch (the samples `indices`); its (3, 1) records."""

    def end_epoch(self) -> tuple[dict[str, float], dict[str, float]]:
        """Hands the state back to the Keras variables (where the programs carry it); the
        epoch's training metrics (`model.get_metrics_result()`) and the validation logs
        (what Keras's `evaluate` returns), computed by one compiled program. The metrics
        start the next epoch reset."""

    def weights(self) -> Any:
        """The trainable weights now, as one flat vector (`engine.snapshots`): a copy that
        the next chunk does not change (on JAX: dispatched, read when recorded)."""


def chunked_path(
    programs_of: Callable[[keras.Model, TrainingArrays, int, int], ChunkPrograms],
) -> Callable[[keras.Model, TrainingArrays, int, range, int, StepRecorder], None]:
    """The `train(model, arrays, batch_size, epochs, seed, recorder)` of an engine path
    whose programs `programs_of(model, arrays, batch_size, snapshot_rows)` makes."""

    def train(
        model: keras.Model,
        arrays: TrainingArrays,
        batch_size: int,
        epochs: range,
        seed: int,
        recorder: StepRecorder,
    ) -> None:
        """Trains `model` (compiled) over `epochs`, recording every step."""
        build_compiled_parts(model, arrays)
        weights = weight_count(model.trainable_variables)
        rows = buffer_rows(weights) if recorder.snapshots is not None else 1
        programs = programs_of(model, arrays, batch_size, rows)
        pace = _Pace()
        for epoch in epochs:  # the metrics start reset: `build_compiled_parts`, `end_epoch`
            order = epoch_order(seed, epoch, arrays.n_train)
            programs.begin_epoch(order)
            done = 0
            in_flight: _Chunk | None = None
            base = epoch * recorder.steps_per_epoch  # global step of the epoch's first batch
            while done < programs.full_steps and not recorder.finished:
                count = steps_for(
                    pace.seconds_per_step, min(programs.capacity, programs.full_steps - done)
                )
                start = base + done
                kept = recorder.snapshots_in(start, start + count)
                if len(kept) > programs.snapshot_rows:  # the chunk ends at the last that fits
                    kept = kept[: programs.snapshot_rows]
                    count = int(kept[-1]) - start
                snap_at = np.full(programs.snapshot_rows, -1, dtype="int32")
                snap_at[: len(kept)] = kept - start
                started = time.perf_counter()
                outputs, buffer = programs.run_chunk(done, count, snap_at)
                if in_flight is not None:  # recorded while the chunk just started runs
                    _record(recorder, epoch, in_flight, pace)
                in_flight = _Chunk(done, count, outputs, started, base, kept, buffer)
                done += count
            if in_flight is not None and not recorder.diverged:  # it ran: a stop keeps it
                _record(recorder, epoch, in_flight, pace)
            rest = order[programs.full_steps * batch_size :]
            if len(rest) and not recorder.finished:
                started = time.perf_counter()
                outputs = programs.run_last_batch(rest)
                step = base + programs.full_steps + 1
                due = recorder.snapshot_due(step)
                kept = np.asarray([step] if due else [], dtype="int64")
                buffer = programs.weights()[None] if due else None
                last = _Chunk(programs.full_steps, 1, outputs, started, base, kept, buffer)
                _record(recorder, epoch, last, None)
            metrics, validation = programs.end_epoch()
            logs = epoch_logs(metrics, recorder.epoch_loss(epoch))
            # in `evaluate`'s order: its logs are sorted (keras/src/utils/python_utils.py)
            logs.update({f"val_{key}": value for key, value in sorted(validation.items())})
            if not recorder.end_epoch(epoch, logs):
                break

    return train


@dataclass(frozen=True)
class _Chunk:
    first_batch: int
    count: int
    outputs: Any  # (3, >= count): loss, rate, grad norm of each step
    started: float  # when it was dispatched
    base: int  # the global step of the epoch's first batch
    kept: np.ndarray  # the global steps whose weights the chunk keeps
    snapshots: Any  # row j: the weights after global step kept[j] (more rows: unused)


class _Pace:
    """Seconds per step of the chunks so far (the latest; the first call, which compiles,
    left out), for the size of the next."""

    def __init__(self) -> None:
        self.seconds_per_step: float | None = None
        self.calls = 0
        self.last_end = 0.0


def _record(recorder: StepRecorder, epoch: int, chunk: _Chunk, pace: _Pace | None) -> None:
    """Waits for the chunk, then records its steps (and measures its pace) and keeps its
    weight snapshots."""
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
    if len(chunk.kept):
        rows = np.asarray(chunk.snapshots)
        for step, row in zip(chunk.kept, rows, strict=False):  # rows beyond: unused
            recorder.keep_snapshot(int(step), row)
