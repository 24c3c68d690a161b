"""What the dashboard shows of a run while it trains: which run is live, and how far it is.

No Streamlit here: the train page asks `newest_live_run` which run to show after a reload or
in a second tab, and `progress_of` what its progress bar says.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import pandas as pd

from keras_sgdplus.lab.runs import RunStore

__all__ = ["Progress", "live_runs", "newest_live_run", "progress_of", "refresh_seconds"]


def live_runs(store: RunStore) -> list[str]:
    """Ids of the runs a live worker is training, newest first."""
    return [run.run_id for run in store.list_runs(live_only=True) if run.readable and run.active]


def newest_live_run(store: RunStore) -> str | None:
    """The newest run a live worker is training (None if none): what the train page shows."""
    runs = live_runs(store)
    return runs[0] if runs else None


@dataclass(frozen=True)
class Progress:
    """`fraction` of the planned steps done (None before the plan is known) and a caption."""

    fraction: float | None
    text: str


def progress_of(meta: dict[str, Any], batches: pd.DataFrame) -> Progress:
    """The progress of a run from its metadata and its batches so far.

    `fraction = steps_done / total_steps`, where the worker writes `total_steps` (steps per
    epoch x epochs) into the summary once the data is loaded; clipped to [0, 1].
    """
    summary = meta.get("summary") or {}
    config = meta.get("config") or {}
    total = summary.get("total_steps")
    per_epoch = summary.get("steps_per_epoch")
    epochs = config.get("epochs")
    steps = len(batches)
    if not isinstance(total, int) or total < 1:
        return Progress(None, "Loading the data and building the model…")
    epoch = 1
    if isinstance(per_epoch, int) and per_epoch > 0:
        epoch = steps // per_epoch + 1
        if isinstance(epochs, int):
            epoch = min(epoch, epochs)
    last_loss = batches["loss"].iloc[-1] if steps else None
    text = f"Epoch {epoch} of {epochs} · step {steps:,} of {total:,}"
    if last_loss is not None:
        text += f" · last batch loss {last_loss:.4g}"
    return Progress(min(steps / total, 1.0), text)


#: Batches a live refresh reads per second of refresh interval (benchmarks/live_view.py: one
#: refresh of 100k batches takes about 0.15 s, of 1M about 1 s, on a 2-core CPU).
BATCHES_PER_REFRESH_SECOND = 150_000
MAX_REFRESH_SECONDS = 10


def refresh_seconds(n_batches: int) -> int:
    """How often the live view polls a run of `n_batches` recorded batches:
    `ceil(n / 150,000)` seconds, at least 1 and at most 10, so a refresh stays a small part
    of the interval however long the run grows."""
    wanted = -(-max(n_batches, 1) // BATCHES_PER_REFRESH_SECOND)
    return min(max(wanted, 1), MAX_REFRESH_SECONDS)
