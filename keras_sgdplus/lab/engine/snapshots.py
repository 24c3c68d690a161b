"""Copies of the weights kept during training: the ball's path for a run's loss landscape
(`lab/run_landscape.py`).

A run keeps at most `MOST_SNAPSHOTS` copies of its trainable weights (fewer for a large
model: `most_snapshots`), at steps spread evenly over its planned steps, the initial weights
(step 0) first; the weights it ends with are kept too (`keep_final`), so a stopped run's
path ends where it stopped. A snapshot at step `s` holds the weights after `s` optimizer
steps, all trainable variables of the model flattened and concatenated in
`model.trainable_variables` order (float32), with the layout (`layout_of`) to split it
again. A compiled chunk of steps keeps the snapshots that fall inside it itself: it takes
the in-chunk steps after which to copy the weights (`due_in`) and writes each copy into a
row of a buffer it returns with the steps' records, so a chunk never has to end at a
snapshot (a chunk call ending at each snapshot cost TensorFlow's online `digits` run 40% of
its speed). The buffer holds `buffer_rows` copies, at most `SNAPSHOT_BUFFER_BYTES`; a chunk
with more snapshots in it ends at the last one that fits.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

#: The most weight snapshots a run keeps (the issue's bound; 200 points draw a smooth path).
MOST_SNAPSHOTS = 200
#: The most bytes a run's snapshots take: a model of more than 80k weights keeps fewer than
#: 200 (the CNN on MNIST, 200k weights: 83), so a run's folder stays small.
SNAPSHOT_BYTES = 64 << 20


#: The most bytes of the snapshot buffer a compiled chunk returns (`buffer_rows`): 116 copies
#: of the default MLP on digits, so a chunk of half a second holds all its snapshots.
SNAPSHOT_BUFFER_BYTES = 4 << 20


def weight_count(variables: Sequence[Any]) -> int:
    """How many weights the variables hold: the length of their flat vector."""
    return sum(int(np.prod(v.shape)) for v in variables)


def buffer_rows(weights: int) -> int:
    """Rows of a chunk's snapshot buffer for a model of `weights` float32 weights:
    `SNAPSHOT_BUFFER_BYTES // (4 * weights)`, from 1 to `MOST_SNAPSHOTS`."""
    return max(1, min(MOST_SNAPSHOTS, SNAPSHOT_BUFFER_BYTES // (4 * max(weights, 1))))


def most_snapshots(weights: int) -> int:
    """How many snapshots a run of a model of `weights` float32 weights keeps:
    `min(MOST_SNAPSHOTS, SNAPSHOT_BYTES // (4 * weights))`, and at least 3 (a plane)."""
    return max(3, min(MOST_SNAPSHOTS, SNAPSHOT_BYTES // (4 * max(weights, 1))))


def snapshot_steps(first: int, total: int, most: int) -> np.ndarray:
    """At most `most` steps from `first` to `total` (both kept when `most` >= 2), spread
    evenly: `round(linspace(first, total, min(most, total - first + 1)))`."""
    if most < 1 or total < first:
        return np.zeros(0, dtype="int64")
    count = min(most, total - first + 1)
    if count == 1:
        return np.asarray([total], dtype="int64")
    return np.unique(np.rint(np.linspace(first, total, count)).astype("int64"))


def layout_of(variables: Sequence[Any]) -> list[dict[str, Any]]:
    """Each trainable variable's path and shape, in the order of the flat vectors."""
    return [{"name": v.path, "shape": [int(n) for n in v.shape]} for v in variables]


def flat_weights(values: Sequence[Any]) -> np.ndarray:
    """The variables' values (NumPy or backend arrays) as one float32 vector."""
    return np.concatenate([np.asarray(v, dtype="float32").ravel() for v in values])


class WeightSnapshots:
    """Which steps of a run keep a copy of the weights, and where the copies go.

    `steps`: the global steps (optimizer steps since the run began) that keep one, in
    order; `sink(step, vector)` stores one (`RunWriter.write_snapshot`). `kept` holds the
    steps already stored (by an earlier part of a resumed run too), so none is kept twice.
    """

    def __init__(
        self,
        steps: np.ndarray,
        sink: Callable[[int, np.ndarray], None],
        kept: Sequence[int] = (),
    ) -> None:
        self.steps = np.asarray(steps, dtype="int64")
        self.sink = sink
        self.kept = set(int(s) for s in kept)

    @classmethod
    def planned(
        cls,
        total_steps: int,
        sink: Callable[[int, np.ndarray], None],
        kept: Sequence[int] = (),
        first: int = 0,
        most: int | None = None,
    ) -> WeightSnapshots:
        """The snapshots of a run of `total_steps` trained from step `first` (a resumed
        run: after the `kept` ones), up to `most` (`MOST_SNAPSHOTS`) in all, the final
        weights' included."""
        most = MOST_SNAPSHOTS if most is None else most
        room = most - len([s for s in kept if s <= first])
        # `total_steps` is the last of them: a run stopped earlier has not reached it, and
        # its final weights (`keep_final`) take its place
        later = snapshot_steps(first + 1 if first in kept else first, total_steps, room)
        return cls(later, sink, kept)

    def due(self, step: int) -> bool:
        """Whether the weights after `step` steps are to be kept (and are not yet)."""
        if step in self.kept:
            return False
        i = int(np.searchsorted(self.steps, step))
        return i < len(self.steps) and int(self.steps[i]) == step

    def due_in(self, start: int, end: int) -> np.ndarray:
        """The steps after `start` up to `end` (both global steps) whose weights are to be
        kept (and are not yet), in order."""
        steps = self.steps[(self.steps > start) & (self.steps <= end)]
        return np.asarray([s for s in steps if int(s) not in self.kept], dtype="int64")

    def keep(self, step: int, values: Any) -> None:
        """Stores the weights after `step` steps (`values`: a flat vector or the variables'
        values), once."""
        if step in self.kept:
            return
        if getattr(values, "ndim", None) == 1:  # a flat vector, NumPy's or a backend's
            vector = np.asarray(values, dtype="float32")
        else:  # the variables (or their values), one array each
            vector = flat_weights(values)
        self.sink(step, vector)
        self.kept.add(step)

    def keep_final(self, step: int, values: Any) -> None:
        """Stores the weights the run ends with, after `step` steps (unless kept already)."""
        self.keep(step, values)
