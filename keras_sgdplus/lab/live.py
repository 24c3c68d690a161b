"""What the dashboard shows of a run while it trains: which run is live, how far it is, and
its curves so far, read a little at a time.

No Streamlit here: the train page asks `newest_live_run` which run to show after a reload or
in a second tab, `progress_of` what its progress bar says (every 2 s), `refresh_seconds`
how often to redraw the charts, and keeps a `CurveFollower` per curve in its session state
so that a refresh reads only the lines added since the last.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

from keras_sgdplus.lab import run_queue
from keras_sgdplus.lab.runs import QUEUED, RunStore

__all__ = [
    "CurveFollower",
    "Progress",
    "live_runs",
    "newest_live_run",
    "progress_of",
    "refresh_seconds",
    "run_progress",
]


def live_runs(store: RunStore) -> list[str]:
    """Ids of the runs a live worker holds: those training, newest first, then those
    waiting for their turn (`run_queue`), in the order they were queued."""
    live = [run for run in store.list_runs(live_only=True) if run.readable and run.active]
    training = [run.run_id for run in live if run.status != QUEUED]
    queued = sorted((run.created_at, run.run_id) for run in live if run.status == QUEUED)
    return training + [run_id for _, run_id in queued]


def newest_live_run(store: RunStore) -> str | None:
    """The newest run training (else the first queued; None if none): what the train page
    shows."""
    runs = live_runs(store)
    return runs[0] if runs else None


def run_progress(store: RunStore, meta: dict[str, Any]) -> Progress:
    """`progress_of` a live run whose metadata the caller has read, with what else the
    store says of it (its last batch line and, while it waits, its place in its queue).
    RunStoreError when it cannot be read."""
    run_id = meta["run_id"]
    ahead = None
    if meta["status"] == QUEUED:
        queue = (meta.get("environment") or {}).get("queue")
        ahead = run_queue.runs_ahead(store.root, queue, run_id) if queue else None
    return progress_of(meta, store.last_row(run_id, "batches"), ahead=ahead)


@dataclass(frozen=True)
class Progress:
    """`fraction` of the planned steps done (None before the plan is known) and a caption."""

    fraction: float | None
    text: str


def progress_of(
    meta: dict[str, Any], last_batch: Mapping[str, float] | None, *, ahead: int | None = None
) -> Progress:
    """The progress of a run from its metadata and its last recorded batch
    (`RunStore.last_row(run_id, "batches")`, None before the first).

    `fraction = steps_done / total_steps`, where steps_done is the last batch's `step` + 1
    (steps count from 0) and the worker writes `total_steps` (steps per epoch x epochs)
    into the summary once the data is loaded; clipped to [0, 1]. A queued run shows where
    it waits: `ahead` runs before it in its queue (`run_queue.runs_ahead`; None once its
    turn has come and it starts).
    """
    if meta.get("status") == QUEUED:
        queue = (meta.get("environment") or {}).get("queue", "")
        if ahead is None:
            return Progress(None, "Its turn has come: starting…")
        before = f"{ahead} run{'s' if ahead != 1 else ''} before it"
        return Progress(None, f"Queued for the {queue.upper()}: {before}")
    summary = meta.get("summary") or {}
    config = meta.get("config") or {}
    total = summary.get("total_steps")
    per_epoch = summary.get("steps_per_epoch")
    epochs = config.get("epochs")
    steps = int(last_batch["step"]) + 1 if last_batch else 0
    if not isinstance(total, int) or total < 1:
        return Progress(None, "Loading the data and building the model…")
    epoch = 1
    if isinstance(per_epoch, int) and per_epoch > 0:
        epoch = steps // per_epoch + 1
        if isinstance(epochs, int):
            epoch = min(epoch, epochs)
    text = f"Epoch {epoch} of {epochs} · step {steps:,} of {total:,}"
    if last_batch:
        text += f" · last batch loss {last_batch['loss']:.4g}"
    return Progress(min(steps / total, 1.0), text)


#: The live view's progress bar (and Stop) refreshes every 2 s: it reads the run's
#: metadata and the last line of its batches, the same few kilobytes at any length.
PROGRESS_REFRESH_SECONDS = 2
#: Batches recorded per second of chart interval (benchmarks/live_view.py, 2-core CPU: a
#: refresh reading the curves whole takes about 0.1 s at 100k batches, 0.65-0.9 s at 1M; the
#: train page's `CurveFollower`s read only the new lines, and its refresh at 1.1M batches,
#: 1 s of new ones at 100k/s, takes about 0.16-0.23 s, two thirds of it the charts).
BATCHES_PER_REFRESH_SECOND = 150_000
#: The chart intervals: each change of interval reruns the whole page (Streamlit fixes a
#: fragment's interval when the page runs), so they double, and a long run changes at most
#: twice.
CHART_REFRESH_SECONDS = (2, 4, 8)
#: The share of its interval a chart refresh may take of the server's CPU: on a 2-core
#: machine every CPU-second the live view takes is one the training worker does not get
#: (benchmarks/dashboard_vs_cli.py). CPU time, not wall time: a server starved by the
#: worker beside it is slow without costing more, and must not slow its view down for that.
LIVE_VIEW_SHARE = 0.05


def refresh_seconds(n_batches: int, refresh_cpu_seconds: float = 0.0) -> int:
    """How often the live view redraws the charts of a run of `n_batches` recorded batches
    whose last chart refresh took `refresh_cpu_seconds` of the server's CPU: the first of
    2, 4, 8 s at least `max(n / 150,000, cpu / 0.05)` (8 s past that), so a refresh stays
    a small part of its interval however long the run grows and however slow the machine."""
    needed = max(n_batches / BATCHES_PER_REFRESH_SECOND, refresh_cpu_seconds / LIVE_VIEW_SHARE)
    return next((s for s in CHART_REFRESH_SECONDS if needed <= s), CHART_REFRESH_SECONDS[-1])


class CurveFollower:
    """One curve ("batches" or "epochs") of one run, read as it grows.

    Keeps the rows read so far and the bytes of the file they came from; `update` reads only
    the complete lines appended since (`RunStore.read_curve_since`) and appends them. After
    each `update`, `frame` equals what `store.load_curve(run_id, curve)` would have read at
    that moment: the same columns, dtypes and values, index 0..n-1. A file that no longer
    continues what was read (truncated, replaced), or whose header changed, is read again
    from its start. The frame is shared with the caller: read it, do not change it.
    """

    def __init__(self, store: RunStore, run_id: str, curve: str) -> None:
        self.store = store
        self.run_id = run_id
        self.curve = curve
        self.offset = 0  # bytes of the file consumed: the end of the last complete line read
        self.restarts = 0  # times the file was read again from its start
        self._frame: pd.DataFrame | None = None

    def follows(self, store: RunStore, run_id: str, curve: str) -> bool:
        """Whether this follower reads this curve of this run in this store."""
        return (self.store.root, self.run_id, self.curve) == (store.root, run_id, curve)

    @property
    def frame(self) -> pd.DataFrame:
        """The rows read so far (the first access reads the curve: an `update`)."""
        if self._frame is None:
            return self.update()
        return self._frame

    def update(self) -> pd.DataFrame:
        """Read the lines appended since the last update; the curve so far."""
        tail = self.store.read_curve_since(self.run_id, self.curve, self.offset)
        frame = self._frame
        if tail.restarted:
            self.restarts += 1
        if frame is None or frame.empty or tail.restarted:
            frame = tail.rows
        elif list(tail.rows.columns) != list(frame.columns):
            self.restarts += 1  # a new header where the old one ended: another file
            tail = self.store.read_curve_since(self.run_id, self.curve, 0)
            frame = tail.rows
        elif not tail.rows.empty:
            frame = pd.concat([frame, tail.rows], ignore_index=True)
        self._frame, self.offset = frame, tail.offset
        return frame
