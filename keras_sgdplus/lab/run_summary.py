"""A run's summary (the `summary` of its meta.json) from what it recorded.

The same function summarises a run as its worker ends it (`training.run_training`, from the
recorder's counts) and a run whose worker vanished (`runs.RunStore`, from the run's
`batches.csv` and `epochs.csv`), so an interrupted run reads like any other.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

#: The epoch metrics summarised, each as `final_<key>` (the last finite value) and
#: `best_<key>` (the highest accuracy, the lowest of the others).
SUMMARISED_METRICS = ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae")


def summarize(
    epoch_rows: Sequence[Mapping[str, Any]],
    *,
    total_steps: int | None,
    steps_per_epoch: int | None,
    steps: int,
    samples_seen: int,
    elapsed: float,
) -> dict[str, Any]:
    """The summary of a run that took `steps` steps over `samples_seen` samples in `elapsed`
    seconds and wrote the epoch rows `epoch_rows` (in order)."""
    summary: dict[str, Any] = {
        "total_steps": total_steps,
        "steps_per_epoch": steps_per_epoch,
        "epochs_completed": len(epoch_rows),
        "steps": steps,
        "samples_seen": samples_seen,
        "elapsed_s": elapsed,
        "samples_per_s": samples_seen / elapsed if elapsed > 0 else None,
    }
    for key in SUMMARISED_METRICS:
        values = [
            float(row[key])
            for row in epoch_rows
            if isinstance(row.get(key), int | float) and math.isfinite(row[key])
        ]
        if values:
            summary[f"final_{key}"] = values[-1]
            summary[f"best_{key}"] = max(values) if "accuracy" in key else min(values)
    return summary
