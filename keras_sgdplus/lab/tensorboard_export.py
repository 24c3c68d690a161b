"""A run as TensorBoard event files: `sgdplus export RUN_ID --tensorboard DIR`.

Laid out as Keras's own `keras.callbacks.TensorBoard` lays out a run, so TensorBoard users
find what they expect (`tensorboard --logdir DIR`):

    DIR/<run id>/train/       batch_loss, batch_learning_rate, batch_grad_norm (step: the
                              optimizer step); epoch_<metric> (step: the epoch)
    DIR/<run id>/validation/  epoch_<metric> of the val_ columns, under the same tags, so
                              TensorBoard draws training and validation on one chart
    DIR/<run id>/             the run's hyperparameters for the HParams tab (the settings of
                              its config, flattened: optimizer.learning_rate, batch_size, ...)

Each point keeps the wall time it was recorded at (the run's start plus the row's
`wall_time`). Scalars are TensorBoard's float32 `simple_value`. Written with TensorBoard's
own event writer and protocol buffers (the `tensorboard` package, no TensorFlow).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from keras_sgdplus.lab.cli import flatten
from keras_sgdplus.lab.runs import Run, RunStore

BATCH_SCALARS = {
    "loss": "batch_loss",
    "learning_rate": "batch_learning_rate",
    "grad_norm": "batch_grad_norm",
}
_NOT_METRICS = ("epoch", "wall_time", "samples_seen")


def flat_settings(config: Mapping[str, Any]) -> dict[str, bool | int | float | str]:
    """A run's config flattened to `section.key` names (`cli.flatten`), with the values
    TensorBoard's HParams tab takes (bool, number, text; None and lists as text)."""
    return {
        name: value if isinstance(value, bool | int | float | str) else str(value)
        for name, value in flatten(dict(config)).items()
    }


def export_tensorboard(store: RunStore, run_id: str, logdir: str | Path) -> Path:
    """Writes the run's event files under `logdir/<run id>/`; returns that folder."""
    from tensorboard.plugins.hparams import summary_v2 as hparams_summary
    from tensorboard.summary.writer.event_file_writer import EventFileWriter

    run = store.load(run_id)
    started = dt.datetime.fromisoformat(run.meta["created_at"]).timestamp()
    folder = Path(logdir) / run_id
    train = EventFileWriter(str(folder / "train"))
    validation = EventFileWriter(str(folder / "validation"))
    root = EventFileWriter(str(folder))
    try:
        batches = run.batches
        for column, tag in BATCH_SCALARS.items():
            if column in batches:
                _write_scalars(
                    train, tag, batches["step"], batches[column], started + batches["wall_time"]
                )
        epochs = run.epochs
        for column in _epoch_metrics(run):
            writer, name = (
                (validation, column.removeprefix("val_"))
                if column.startswith("val_")
                else (train, column)
            )
            _write_scalars(
                writer,
                f"epoch_{name}",
                epochs["epoch"],
                epochs[column],
                started + epochs["wall_time"],
            )
        summary = hparams_summary.hparams_pb(
            flat_settings(run.meta["config"]), trial_id=run_id, start_time_secs=started
        )
        root.add_event(_event(started, 0, summary))
    finally:
        for writer in (train, validation, root):
            writer.close()
    return folder


def _epoch_metrics(run: Run) -> list[str]:
    return [c for c in run.epochs.columns if c not in _NOT_METRICS]


def _event(wall_time: float, step: int, summary: Any) -> Any:
    from tensorboard.compat.proto import event_pb2

    return event_pb2.Event(wall_time=wall_time, step=step, summary=summary)


def _write_scalars(
    writer: Any, tag: str, steps: Iterable[Any], values: Iterable[Any], times: Iterable[Any]
) -> None:
    from tensorboard.compat.proto import summary_pb2

    for step, value, wall_time in zip(steps, values, times, strict=True):
        summary = summary_pb2.Summary(
            value=[summary_pb2.Summary.Value(tag=tag, simple_value=float(value))]
        )
        writer.add_event(_event(float(wall_time), int(step), summary))
