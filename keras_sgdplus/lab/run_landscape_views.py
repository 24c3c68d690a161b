"""What the "Landscape of a run" page shows, without Streamlit: which runs can be drawn, and
where each one's landscape stands (`LandscapeState`): stored with the options asked for,
being computed (with its progress), failed, interrupted, or not computed yet."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np

from keras_sgdplus.lab.run_landscape import LandscapeOptions
from keras_sgdplus.lab.runs import LIVE_STATUSES, RunStore, RunStoreError, RunSummary

#: The statuses whose weights a landscape can be drawn around (a diverged run's are not
#: finite; a live run's are still changing).
DRAWABLE = ("completed", "stopped", "interrupted")


def drawable_runs(store: RunStore, runs: Iterable[RunSummary]) -> list[RunSummary]:
    """The readable, ended, not diverged runs that kept weight snapshots, newest first."""
    chosen = []
    for run in runs:
        if not run.readable or run.status not in DRAWABLE or run.status in LIVE_STATUSES:
            continue
        try:
            if len(store.snapshot_steps(run.run_id)) >= 3:
                chosen.append(run)
        except RunStoreError:
            continue
    return chosen


@dataclass(frozen=True)
class LandscapeState:
    """Where one run's landscape of one kind stands.

    `kind`: "done" (stored with the options asked for: `arrays`, `info`), "other" (stored
    with other options: shown, with a note, until computed again), "computing" (`done`
    of `total` points), "failed" (`error`), "interrupted" (its worker ended), "missing"."""

    kind: str
    arrays: dict[str, np.ndarray] | None = None
    info: dict[str, Any] | None = None
    done: int = 0
    total: int | None = None
    error: str | None = None

    @property
    def fraction(self) -> float:
        return min(self.done / self.total, 1.0) if self.total else 0.0


def landscape_state(store: RunStore, run_id: str, options: LandscapeOptions) -> LandscapeState:
    """The state of run `run_id`'s landscape along `options.directions`."""
    progress = store.landscape_progress(run_id, options.directions) or {}
    if progress.get("state") == "computing":
        return LandscapeState(
            "computing", done=int(progress.get("done") or 0), total=progress.get("total")
        )
    try:
        stored = store.load_landscape(run_id, options.directions)
    except RunStoreError as error:
        return LandscapeState("failed", error=str(error))
    if progress.get("state") == "failed":
        return LandscapeState("failed", error=str(progress.get("error")))
    if stored is None:
        if progress.get("state") == "interrupted":
            return LandscapeState("interrupted")
        return LandscapeState("missing")
    arrays, info = stored
    same = info.get("options") == options.to_dict()
    return LandscapeState("done" if same else "other", arrays=arrays, info=info)


def options_note(info: dict[str, Any]) -> str:
    """The options a stored landscape was computed with, in words."""
    options = info.get("options") or {}
    span = options.get("span")
    where = "the path's extent" if span is None else f"[-{span:g}, {span:g}]"
    return (
        f"{options.get('resolution')}x{options.get('resolution')} grid over {where}, "
        f"{info.get('train_samples')} training samples, seed {options.get('seed')}"
    )
