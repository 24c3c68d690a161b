"""A training run: the data, the model and the optimizer made from the config, trained by one
of the engine paths (`lab/engine/`) while every step is written into the run store.

Recorded per step: the batch's **own** loss (not the running epoch mean that Keras puts in
`logs["loss"]`), the learning rate the optimizer used, the gradient's global norm, the
samples seen and the wall time. Per epoch: the mean training loss and metrics, validation
loss and metrics. A non-finite loss ends the run as `diverged`; a stop request (SIGTERM,
SIGINT or `request_stop`) ends it after the current chunk of steps as `stopped`; an
exception as `failed` with its message. What was recorded stays in every case.

`run_training` trains in the calling process; `jobs.start_training` starts a worker process
that does it (so the dashboard's server never runs a backend itself).
"""

from __future__ import annotations

import contextlib
import random
import sys
import time
from collections.abc import Callable
from typing import Any

import keras
import numpy as np

from keras_sgdplus.lab import checkpoints, engine, run_health, run_summary
from keras_sgdplus.lab import datasets as datasets_module
from keras_sgdplus.lab.accelerators import environment, resolve_backend, select_device
from keras_sgdplus.lab.config import TrainingConfig, default_name
from keras_sgdplus.lab.engine.common import TrainingArrays
from keras_sgdplus.lab.engine.keras_fit import BatchLoss
from keras_sgdplus.lab.engine.order import batch_sizes_of
from keras_sgdplus.lab.engine.recorder import StepRecorder
from keras_sgdplus.lab.engine.snapshots import (
    WeightSnapshots,
    layout_of,
    most_snapshots,
    weight_count,
)
from keras_sgdplus.lab.models import build_model, loss_name, make_loss, metrics_for
from keras_sgdplus.lab.optimizers import make_optimizer
from keras_sgdplus.lab.runs import BackgroundBatchWriter, RunStore, RunWriter
from keras_sgdplus.lab.stop_signal import StopSignal


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


def set_random_seed(seed: int) -> None:
    """`keras.utils.set_random_seed(seed)`, without importing TensorFlow into a run on another
    backend: Keras's function imports it (when installed) to seed it too, 2.6 s of a JAX
    run's start on a 2-core CPU. What it does for Keras (keras/src/utils/rng_utils.py):
    the global seed, a fresh global `SeedGenerator`, Python's and NumPy's seeds."""
    if keras.backend.backend() == "tensorflow" or "tensorflow" in sys.modules:
        keras.utils.set_random_seed(seed)
        return
    from keras.src.backend.common import global_state
    from keras.src.random import seed_generator
    from keras.src.utils import rng_utils

    global_state.set_global_attribute(rng_utils.GLOBAL_RANDOM_SEED, seed)
    global_state.set_global_attribute(seed_generator.GLOBAL_SEED_GENERATOR, None)
    random.seed(seed)
    np.random.seed(seed)


def planned_steps(n_train: int, batch_size: int | None, epochs: int) -> int:
    """Optimizer steps of a run: `ceil(n_train / batch_size) * epochs` (full batch: one per
    epoch)."""
    return len(batch_sizes_of(n_train, batch_size or n_train)) * epochs


def summarize(recorder: StepRecorder, total_steps: int, elapsed: float) -> dict:
    return run_summary.summarize(
        recorder.epoch_rows,
        total_steps=total_steps,
        steps_per_epoch=recorder.steps_per_epoch,
        steps=recorder.step,
        samples_seen=recorder.samples_seen,
        elapsed=elapsed,
    )


def training_arrays(data: datasets_module.Dataset, loss: str) -> TrainingArrays:
    """The arrays as the model takes them: float32 features, labels one-hot for
    categorical_crossentropy, float32 targets for the other losses but the sparse one."""
    info = data.info
    y_train, y_val = data.y_train, data.y_val
    if loss == "categorical_crossentropy":
        y_train = keras.utils.to_categorical(y_train, info.num_classes)
        y_val = keras.utils.to_categorical(y_val, info.num_classes)
    label_type = "int32" if loss == "sparse_categorical_crossentropy" else "float32"
    return TrainingArrays(
        x_train=np.ascontiguousarray(data.x_train, dtype="float32"),
        y_train=np.ascontiguousarray(y_train, dtype=label_type),
        x_val=np.ascontiguousarray(data.x_val, dtype="float32"),
        y_val=np.ascontiguousarray(y_val, dtype=label_type),
    )


def run_training(
    config: TrainingConfig,
    store: RunStore,
    stop: StopSignal | None = None,
    progress: Callable[[dict[str, Any]], None] | None = None,
    on_created: Callable[[str], None] | None = None,
    path: str = "auto",
    resume: str | None = None,
    writer: RunWriter | None = None,
) -> str:
    """Trains in this process, writing the run as it goes; returns the run id.

    `config` is trusted: it was checked when it was made (`lab/config.py`), and the model was
    checked against the data (`config.check_model_fits`) where the run was set up. `path`
    picks the engine path (`engine.PATHS`; "auto": the compiled path of the backend).
    `resume`: the run goes on from its checkpoint (none: from the start), on the backend it
    trained on. `writer`: the run was opened already, queued (`queued_run.open_queued`,
    the `resume` run reopened or a new one): it trains from here.
    """
    stop = stop or StopSignal()
    backend = resolve_backend(config.backend)  # Keras is imported: its backend, or an error
    device, device_context = select_device(config.device)
    distributed = device.startswith("MirroredStrategy")
    chosen = engine.choose_path(path, backend, distributed)
    if resume is not None:
        trained_on = (store.load_meta(resume).get("environment") or {}).get("backend")
        if trained_on != backend:
            raise ValueError(
                f"run {resume} trained on {trained_on}; it resumes on the same backend only. "
                f"Received: backend={backend!r}"
            )
    run_environment = {**environment(device), "engine": chosen}
    if writer is not None:
        checkpoint = store.load_checkpoint(writer.run_id) if resume else None
        writer.update(status="running", environment=run_environment)
    elif resume is None:
        checkpoint = None
        writer = store.create(
            config.name or default_name(config), config.to_dict(), run_environment
        )
    else:
        writer, checkpoint = store.resume(resume, config=config.to_dict())
    stop.watch(lambda: writer.stop_requested)  # a request from any process or host
    if on_created:
        on_created(writer.run_id)
    start = time.perf_counter()
    batches = BackgroundBatchWriter(writer)
    recorder: StepRecorder | None = None
    saver: checkpoints.CheckpointWriter | None = None
    total_steps = 0
    try:
        set_random_seed(config.seed)
        data = load_data(config)
        info = data.info
        batch_size = config.batch_size or len(data.x_train)
        batch_sizes = batch_sizes_of(len(data.x_train), batch_size)
        total_steps = len(batch_sizes) * config.epochs
        writer.update(summary={"total_steps": total_steps, "steps_per_epoch": len(batch_sizes)})
        loss = loss_name(config.model, info.task)
        arrays = training_arrays(data, loss)
        validation = run_health.validation_facts(data.y_val, info.task)  # for the end's check
        with device_context():
            model = build_model(config.model, info.task, info.input_shape, info.num_classes)
            model.compile(
                optimizer=make_optimizer(config.optimizer, total_steps),
                loss=make_loss(loss),
                metrics=[
                    *metrics_for(info.task),
                    *([BatchLoss(loss)] if chosen == "keras_fit" else []),
                ],
            )
        saver = checkpoints.CheckpointWriter(writer.write_checkpoint)
        watch = run_health.LossWatch(batches)  # what the run's end judges (lab/run_health.py)
        recorder = StepRecorder(
            watch,
            writer.append_epoch,
            batch_sizes,
            stop,
            progress,
            on_whole_epoch=lambda done: checkpoint_after_batches(model, done, batches, saver),
            after_batches=batches.after,
        )
        first = 0
        if checkpoint is not None:
            model.optimizer.build(model.trainable_variables)
            first = checkpoints.restore(model, checkpoint)
            epoch_rows = store.load_curve(writer.run_id, "epochs").to_dict("records")
            recorder.resume_from(first, epoch_rows)
            kept = store.load_curve(writer.run_id, "batches")
            watch.add(kept["step"], kept["loss"])
            start = recorder.start  # the run's time goes on from where it was
        recorder.snapshots = weight_snapshots(store, writer, model, total_steps, recorder.step)
        train = engine.train_function(chosen)
        with device_context():
            train(model, arrays, batch_size, range(first, config.epochs), config.seed, recorder)
        batches.close()
        saver.close()
        status = "diverged" if recorder.diverged else "stopped" if recorder.stopped else "completed"
        summary = summarize(recorder, total_steps, time.perf_counter() - start)
        facts = {**watch.stats(total_steps), **validation}
        summary = run_health.judged_summary(summary, config.to_dict(), status, facts)
        if status != "diverged":
            recorder.snapshots.keep_final(recorder.step, model.trainable_variables)
            save_model(writer, model)  # for keras.saving.load_model
        writer.update(status=status, summary=summary)
    except BaseException as error:  # every failure is recorded; only Exceptions end here
        with contextlib.suppress(Exception):
            batches.close()
        if saver is not None:
            with contextlib.suppress(Exception):
                saver.close()
        message = f"{type(error).__name__}: {error}"
        summary = summarize(recorder, total_steps, time.perf_counter() - start) if recorder else {}
        writer.update(status="failed", error=message, summary=summary)
        if not isinstance(error, Exception):
            raise
    finally:
        writer.close()
    return writer.run_id


def checkpoint_after_batches(
    model: keras.Model,
    epochs_done: int,
    batches: BackgroundBatchWriter,
    saver: checkpoints.CheckpointWriter,
) -> None:
    """Copies the model's state now, and hands it to the checkpoint writer once the batches
    of the epochs done are in their file: a checkpoint never runs ahead of the batches a
    resume keeps (`RunStore.resume` cuts those after it)."""
    arrays = checkpoints.state_arrays(model, epochs_done)
    batches.after(lambda: saver.put(arrays))


def weight_snapshots(
    store: RunStore, writer: RunWriter, model: keras.Model, total_steps: int, first_step: int
) -> WeightSnapshots:
    """The run's weight snapshots (`engine.snapshots`) from step `first_step` on (a resumed
    run keeps those it has), the weights at `first_step` kept now when due (a new run's
    initial weights)."""
    kept = store.snapshot_steps(writer.run_id) if first_step else []
    if not kept:
        writer.write_snapshot_layout(layout_of(model.trainable_variables))
    size = weight_count(model.trainable_variables)
    snapshots = WeightSnapshots.planned(
        total_steps, writer.write_snapshot, kept, first_step, most_snapshots(size)
    )
    if snapshots.due(first_step):
        snapshots.keep(first_step, model.trainable_variables)
    return snapshots


def save_model(writer: RunWriter, model: keras.Model) -> None:
    """Stores the model as `model.keras` in the run (`RunWriter.write_model`).

    On JAX, Keras's serializer asks whether TensorFlow is installed, to test each object
    for a `tf.TensorShape` (keras/src/saving/serialization_lib.py), and asking imports it:
    seconds at the end of every run, and TensorFlow's start-up lines on stderr. A JAX model
    holds no TensorFlow object, so this process answers "not available" for it instead
    (Keras's `LazyModule` of TensorFlow, keras/src/utils/module_utils.py).
    """
    if keras.backend.backend() != "tensorflow" and "tensorflow" not in sys.modules:
        from keras.src.utils import module_utils

        module_utils.tensorflow._available = False
    writer.write_model(model.save)
