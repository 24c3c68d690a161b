"""The training job: `model.fit` that writes its run into the store as it goes.

Recorded per batch: the batch's **own** loss (not the running epoch mean that Keras puts in
`logs["loss"]`), the learning rate of that step, the samples seen and the wall time. Per
epoch: Keras's epoch logs (mean training loss and metrics, validation loss and metrics).
A non-finite loss ends the run as `diverged`; a stop request (SIGTERM, SIGINT or
`request_stop`) ends it after the current batch as `stopped`; an exception as `failed`
with its message. What was recorded stays in every case.

`run_training` trains in the calling process; `start_training` starts a worker process
that does it (so the dashboard's server never runs TensorFlow itself).
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import signal
import threading
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_sgdplus.lab import datasets as datasets_module
from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.models import build_model, loss_name, make_loss, metrics_for
from keras_sgdplus.lab.optimizers import make_optimizer
from keras_sgdplus.lab.runs import RunStore, RunWriter
from keras_sgdplus.lab.schedules import schedule_curve

FLUSH_SECONDS = 1.0  # batches reach the store at least this often, and at every epoch end


def load_data(config: TrainingConfig) -> datasets_module.Dataset:
    options: dict[str, Any] = {
        "validation_split": config.validation_split,
        "standardize": config.standardize,
        "seed": config.seed,
    }
    if config.dataset == "csv":
        assert config.data_path  # TrainingConfig requires both for csv
        assert config.target_column
        return datasets_module.load_csv(config.data_path, config.target_column, **options)
    if config.dataset == "npz":
        assert config.data_path
        return datasets_module.load_npz(config.data_path, **options)
    return datasets_module.load_dataset(
        config.dataset, noise=config.noise, n_samples=config.n_samples, **options
    )


@keras.saving.register_keras_serializable(package="sgdplus_lab")
class BatchLoss(keras.metrics.Metric):
    """The loss of the latest batch alone (Keras's `loss` log is the epoch's running mean).

    Computed by the compiled loss function on the same predictions, before the update.
    """

    def __init__(self, loss: str, name: str = "batch_loss", **kwargs: Any) -> None:
        super().__init__(name=name, **kwargs)
        self.loss_name = loss
        self._loss = make_loss(loss)
        self.value = self.add_variable(shape=(), initializer="zeros", name="value")

    def update_state(self, y_true: Any, y_pred: Any, sample_weight: Any = None) -> None:
        self.value.assign(keras.ops.cast(self._loss(y_true, y_pred), self.dtype))

    def result(self) -> Any:
        return self.value

    def reset_state(self) -> None:
        self.value.assign(0.0)

    def get_config(self) -> dict[str, Any]:
        return {**super().get_config(), "loss": self.loss_name}


class StopSignal:
    """Set by SIGTERM / SIGINT (when installed) or by `request()`; read after each batch."""

    def __init__(self) -> None:
        self._event = threading.Event()

    def request(self, *_: Any) -> None:
        self._event.set()

    @property
    def requested(self) -> bool:
        return self._event.is_set()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (main thread only) by requesting a stop."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request)
            signal.signal(signal.SIGINT, self.request)


class RecordingCallback(keras.callbacks.Callback):
    """Writes each batch's own loss and each epoch's logs into the run."""

    def __init__(
        self,
        writer: RunWriter,
        learning_rates: np.ndarray,
        batch_sizes: list[int],
        stop: StopSignal,
        progress: Callable[[dict[str, Any]], None] | None = None,
    ) -> None:
        super().__init__()
        self.writer = writer
        self.learning_rates = learning_rates
        self.batch_sizes = batch_sizes
        self.stop = stop
        self.progress = progress
        self.pending: list[dict[str, Any]] = []
        self.step = 0
        self.samples_seen = 0
        self.epoch = 0
        self.diverged = False
        self.stopped = False
        self.start = time.perf_counter()
        self.last_flush = self.start
        self.epochs_done = 0

    def on_epoch_begin(self, epoch: int, logs: Any = None) -> None:
        self.epoch = epoch

    def on_train_batch_end(self, batch: int, logs: Any = None) -> None:
        loss = float((logs or {}).get("batch_loss", math.nan))
        size = self.batch_sizes[batch]
        self.samples_seen += size
        now = time.perf_counter()
        self.pending.append(
            {
                "step": self.step,
                "epoch": self.epoch,
                "batch": batch,
                "loss": loss,
                "learning_rate": float(
                    self.learning_rates[min(self.step, len(self.learning_rates) - 1)]
                ),
                "batch_size": size,
                "samples_seen": self.samples_seen,
                "wall_time": now - self.start,
            }
        )
        self.step += 1
        if not math.isfinite(loss):
            self.diverged = True
            self.model.stop_training = True
        elif self.stop.requested:
            self.stopped = True
            self.model.stop_training = True
        if now - self.last_flush >= FLUSH_SECONDS or self.model.stop_training:
            self.flush()

    def flush(self) -> None:
        if self.pending:
            self.writer.append_batches(self.pending)
            self.pending = []
        self.last_flush = time.perf_counter()

    def on_epoch_end(self, epoch: int, logs: Any = None) -> None:
        self.flush()
        row = {
            "epoch": epoch,
            "wall_time": time.perf_counter() - self.start,
            "samples_seen": self.samples_seen,
        }
        for key, value in (logs or {}).items():
            if not key.endswith("batch_loss"):
                row[key] = float(value)
        self.writer.append_epoch(row)
        self.epochs_done = epoch + 1
        if self.progress:
            self.progress(row)
        if row.get("loss") is not None and not math.isfinite(row["loss"]):
            self.diverged = True
            self.model.stop_training = True


def environment(device: str) -> dict[str, Any]:
    import tensorflow as tf

    import keras_sgdplus

    return {
        "python": platform.python_version(),
        "tensorflow": tf.__version__,
        "keras": keras.__version__,
        "keras_sgdplus": keras_sgdplus.__version__,
        "backend": keras.backend.backend(),
        "device": device,
        "host": platform.node(),
        "pid": os.getpid(),
    }


def select_device(choice: str) -> tuple[str, Any]:
    """A description of the device for `choice` (auto, cpu, gpu), and a context factory.

    One GPU or the CPU: TensorFlow's default placement (a `tf.device` pin for "cpu" when a
    GPU is present). More than one GPU: `tf.distribute.MirroredStrategy` over all of them.
    """
    import tensorflow as tf

    gpus = tf.config.list_logical_devices("GPU") if choice != "cpu" else []
    if choice == "gpu" and not gpus:
        raise ValueError("`device` gpu was chosen, but TensorFlow sees no GPU on this machine.")
    if len(gpus) > 1:
        names = [g.name for g in gpus]
        strategy = tf.distribute.MirroredStrategy(names)
        return f"MirroredStrategy over {', '.join(names)}", strategy.scope
    if gpus:
        return gpus[0].name, contextlib.nullcontext
    return "CPU", lambda: tf.device("/CPU:0")


def batch_sizes_of(n_samples: int, batch_size: int) -> list[int]:
    full, rest = divmod(n_samples, batch_size)
    return [batch_size] * full + ([rest] if rest else [])


def planned_steps(n_train: int, batch_size: int | None, epochs: int) -> int:
    """Optimizer steps of a run: `ceil(n_train / batch_size) * epochs` (full batch: one per
    epoch)."""
    return len(batch_sizes_of(n_train, batch_size or n_train)) * epochs


def summarize(epochs: list[dict[str, Any]], callback: RecordingCallback, elapsed: float) -> dict:
    summary: dict[str, Any] = {
        "total_steps": len(callback.learning_rates),
        "steps_per_epoch": len(callback.batch_sizes),
        "epochs_completed": callback.epochs_done,
        "steps": callback.step,
        "samples_seen": callback.samples_seen,
        "elapsed_s": elapsed,
        "samples_per_s": callback.samples_seen / elapsed if elapsed > 0 else None,
    }
    for key in ("loss", "val_loss", "accuracy", "val_accuracy", "mae", "val_mae"):
        values = [row[key] for row in epochs if key in row and math.isfinite(row[key])]
        if values:
            summary[f"final_{key}"] = values[-1]
            best = max(values) if "accuracy" in key else min(values)
            summary[f"best_{key}"] = best
    return summary


def run_training(
    config: TrainingConfig,
    store: RunStore,
    stop: StopSignal | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Trains in this process, writing the run as it goes; returns the run id.

    `config` is trusted: it was checked when it was made (`lab/config.py`), and the model was
    checked against the data (`config.check_model_fits`) where the run was set up.
    """
    stop = stop or StopSignal()
    device, device_context = select_device(config.device)
    writer = store.create(
        config.name or default_name(config), config.to_dict(), environment(device)
    )
    if on_created:
        on_created(writer.run_id)
    start = time.perf_counter()
    epochs: list[dict[str, Any]] = []
    callback: RecordingCallback | None = None
    try:
        keras.utils.set_random_seed(config.seed)
        data = load_data(config)
        info = data.info
        batch_size = config.batch_size or len(data.x_train)
        batch_sizes = batch_sizes_of(len(data.x_train), batch_size)
        total_steps = len(batch_sizes) * config.epochs
        writer.update(summary={"total_steps": total_steps, "steps_per_epoch": len(batch_sizes)})
        y_train, y_val = data.y_train, data.y_val
        loss = loss_name(config.model, info.task)
        if loss == "categorical_crossentropy":
            y_train = keras.utils.to_categorical(y_train, info.num_classes)
            y_val = keras.utils.to_categorical(y_val, info.num_classes)
        with device_context():
            model = build_model(config.model, info.task, info.input_shape, info.num_classes)
            model.compile(
                optimizer=make_optimizer(config.optimizer, total_steps),
                loss=make_loss(loss),
                metrics=[*metrics_for(info.task), BatchLoss(loss)],
            )
        learning_rates = schedule_curve(
            config.optimizer.schedule, config.optimizer.learning_rate, total_steps
        )
        callback = RecordingCallback(writer, learning_rates, batch_sizes, stop, progress)
        epoch_recorder = keras.callbacks.LambdaCallback(
            on_epoch_end=lambda epoch, logs: epochs.append(dict(logs or {}))
        )
        with device_context():
            model.fit(
                data.x_train,
                y_train,
                validation_data=(data.x_val, y_val),
                batch_size=batch_size,
                epochs=config.epochs,
                shuffle=True,
                verbose=0,
                callbacks=[callback, epoch_recorder],
            )
        status = "diverged" if callback.diverged else "stopped" if callback.stopped else "completed"
        writer.update(
            status=status, summary=summarize(epochs, callback, time.perf_counter() - start)
        )
    except BaseException as error:  # every failure is recorded; only Exceptions end here
        if callback is not None:
            callback.flush()
        message = f"{type(error).__name__}: {error}"
        summary = summarize(epochs, callback, time.perf_counter() - start) if callback else {}
        writer.update(status="failed", error=message, summary=summary)
        if not isinstance(error, Exception):
            raise
    finally:
        writer.close()
    return writer.run_id


def default_name(config: TrainingConfig) -> str:
    spec = config.optimizer
    mode = spec.name
    if spec.name == "sgdplus":
        mode = (
            "nesterov"
            if spec.nesterov and spec.momentum
            else "momentum"
            if spec.momentum
            else "sgd"
        )
    size = "full" if config.batch_size is None else config.batch_size
    return f"{config.dataset} {mode} lr={spec.learning_rate:g} bs={size}"
