"""The host side of every engine path: turns each chunk of steps into rows of the run.

An engine path hands over, per chunk of consecutive steps of one epoch, three arrays that
its compiled program produced (each step's own loss, the learning rate the optimizer used
for it, the gradient's global norm), and per epoch Keras's epoch logs. The recorder numbers
the steps, adds the batch sizes, samples seen and wall times, hands the rows to the run's
batch sink (a `BackgroundBatchWriter`: the training thread never waits on the disk), and
decides whether training goes on:

- a non-finite loss ends the run as `diverged` (its step is the last one recorded);
- a stop request (`StopSignal`) ends it as `stopped`, after the chunk in progress.

Wall times inside a chunk are spread evenly between the start of its compiled call and its
end: a chunk is one call, so nothing finer is observed.

The recorder also holds the run's weight snapshots (`engine.snapshots.WeightSnapshots`):
the paths ask it which steps of a chunk keep one (`snapshots_in`, `snapshot_due`) and
hand it the weights (`keep_snapshot`).
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np

from keras_sgdplus.lab.engine.snapshots import WeightSnapshots


class BatchSink(Protocol):
    def put(self, columns: Mapping[str, np.ndarray]) -> None: ...

    def flush(self, *, sync: bool = True) -> None: ...


class StopRequest(Protocol):
    @property
    def requested(self) -> bool: ...


class StepRecorder:
    """Counts, records and judges the steps of one run (see the module docstring)."""

    def __init__(
        self,
        batches: BatchSink,
        append_epoch: Callable[[dict[str, Any]], None],
        batch_sizes: list[int],
        stop: StopRequest,
        progress: Callable[[dict[str, Any]], None] | None = None,
        on_whole_epoch: Callable[[int], None] | None = None,
        snapshots: WeightSnapshots | None = None,
        after_batches: Callable[[Callable[[], None]], None] | None = None,
    ) -> None:
        self.batches = batches
        self.append_epoch = append_epoch
        self.batch_sizes = np.asarray(batch_sizes, dtype="int64")
        self.stop = stop
        self.progress = progress
        self.on_whole_epoch = on_whole_epoch  # called with the epochs done after each whole one
        self.snapshots = snapshots
        # runs an action once the batches handed over so far are written (the writer's
        # `BackgroundBatchWriter.after`); None: wait for them here, then run it
        self.after_batches = after_batches
        self.step = 0
        self.samples_seen = 0
        self.epochs_done = 0
        self.diverged = False
        self.stopped = False
        self.start = time.perf_counter()
        self.last_time = self.start
        self.epoch_rows: list[dict[str, Any]] = []
        self._epoch_losses: dict[int, list[float]] = {}  # epoch -> [sum of loss * size, size]

    def resume_from(self, epochs_done: int, epoch_rows: list[dict[str, Any]]) -> None:
        """Continues a run after `epochs_done` whole epochs, whose rows are `epoch_rows`:
        steps, samples and wall times go on from where they were."""
        self.epochs_done = epochs_done
        self.step = epochs_done * self.steps_per_epoch
        self.samples_seen = epochs_done * int(self.batch_sizes.sum())
        self.epoch_rows = list(epoch_rows)
        elapsed = float(epoch_rows[-1]["wall_time"]) if epoch_rows else 0.0
        self.start = time.perf_counter() - elapsed
        self.last_time = time.perf_counter()

    def snapshots_in(self, start: int, end: int) -> np.ndarray:
        """The global steps after `start` up to `end` whose weights are to be kept."""
        if self.snapshots is None:
            return np.zeros(0, dtype="int64")
        return self.snapshots.due_in(start, end)

    def snapshot_due(self, step: int) -> bool:
        """Whether the weights after global step `step` are to be kept."""
        return self.snapshots is not None and self.snapshots.due(step)

    def keep_snapshot(self, step: int, values: Any) -> None:
        """Keeps the weights after global step `step` (a flat vector or the variables'
        values); of a diverged run, only those from before the step whose loss was not
        finite (the weights it was computed with are not kept either)."""
        if self.snapshots is not None and (not self.diverged or step < self.step - 1):
            self.snapshots.keep(step, values)

    @property
    def steps_per_epoch(self) -> int:
        return len(self.batch_sizes)

    @property
    def finished(self) -> bool:
        """Whether training must end now (diverged or stopped)."""
        return self.diverged or self.stopped

    def record(
        self,
        epoch: int,
        first_batch: int,
        loss: np.ndarray,
        learning_rate: np.ndarray,
        grad_norm: np.ndarray,
        started: float | None = None,
    ) -> bool:
        """Records the steps `first_batch ..` of `epoch`; False when training must end.

        `started`: the `time.perf_counter()` at which the chunk's program was started (by
        default the end of the previous chunk); its steps' wall times are spread evenly from
        there to now."""
        loss = np.asarray(loss, dtype="float64")
        count = len(loss)
        if count == 0:
            return not self._check_stop()
        finite = np.isfinite(loss)
        if not finite.all():
            count = int(np.argmin(finite)) + 1  # up to and with the first non-finite loss
            self.diverged = True
        now = time.perf_counter()
        batch = np.arange(first_batch, first_batch + count, dtype="int64")
        sizes = self.batch_sizes[batch]
        samples = self.samples_seen + np.cumsum(sizes)
        begin = self.last_time if started is None else max(started, self.last_time)
        spread = (now - begin) / count
        wall = (begin - self.start) + spread * np.arange(1, count + 1, dtype="float64")
        self.batches.put(
            {
                "step": np.arange(self.step, self.step + count, dtype="int64"),
                "epoch": np.full(count, epoch, dtype="int64"),
                "batch": batch,
                "loss": loss[:count],
                "learning_rate": np.asarray(learning_rate, dtype="float64")[:count],
                "batch_size": sizes,
                "samples_seen": samples,
                "wall_time": wall,
                "grad_norm": np.asarray(grad_norm, dtype="float64")[:count],
            }
        )
        totals = self._epoch_losses.setdefault(epoch, [0.0, 0.0])
        totals[0] += float(np.dot(loss[:count], sizes))
        totals[1] += float(sizes.sum())
        self.step += count
        self.samples_seen = int(samples[-1])
        self.last_time = now
        return not (self.diverged or self._check_stop())

    def epoch_loss(self, epoch: int) -> float:
        """The mean loss of the epoch's recorded steps, weighted by batch size (as Keras's
        loss tracker weights it): the epoch's training `loss`."""
        total, size = self._epoch_losses.get(epoch, [math.nan, 0.0])
        return total / size if size else math.nan

    def _check_stop(self) -> bool:
        if self.stop.requested:
            self.stopped = True
        return self.stopped

    def end_epoch(self, epoch: int, logs: Mapping[str, Any]) -> bool:
        """Writes the epoch's row after its batches are in their file (not waiting for the
        fsync, which follows within half a second; with `after_batches`, not waiting at
        all: the writer appends it after them); False when training must end (a non-finite
        epoch loss, or a stop already decided)."""
        row: dict[str, Any] = {
            "epoch": epoch,
            "wall_time": time.perf_counter() - self.start,
            "samples_seen": self.samples_seen,
        }
        for key, value in logs.items():
            if not key.endswith("batch_loss"):
                row[key] = float(value)
        if self.after_batches is None:
            self.batches.flush(sync=False)
            self.append_epoch(row)
        else:
            self.after_batches(functools.partial(self.append_epoch, row))
        self.epoch_rows.append(row)
        self.epochs_done = epoch + 1
        if self.progress:
            self.progress(row)
        loss = row.get("loss")
        if loss is not None and not math.isfinite(loss):
            self.diverged = True
        whole = self._epoch_losses.get(epoch, [0.0, 0.0])[1] == self.batch_sizes.sum()
        if whole and not self.diverged and self.on_whole_epoch:
            self.on_whole_epoch(epoch + 1)
        return not self.finished
