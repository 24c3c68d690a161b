"""The training job: each batch's own loss, epoch means, and how runs end."""

import json
import math
import os
import signal
import subprocess
import sys
import time
import types

import keras
import numpy as np
import pandas as pd
import pytest

from keras_sgdplus.lab.config import (
    ModelSpec,
    OptimizerSpec,
    ScheduleSpec,
    TrainingConfig,
    parse_batch_size,
)
from keras_sgdplus.lab.jobs import request_stop, start_training
from keras_sgdplus.lab.optimizers import make_optimizer
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import StopSignal, load_data, run_training

pytestmark = pytest.mark.usefixtures("fresh_keras_state")

SMALL = ModelSpec(depth=1, width=16)
SLOW = ModelSpec(depth=4, width=512)  # a worker that trains long enough to be stopped or killed


def test_run_records_batches_and_epochs_consistently(tmp_path):
    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="iris",
        model=SMALL,
        batch_size=25,
        epochs=3,
        device="cpu",  # recorded as "CPU" (with "auto" a GPU machine records its GPU)
        optimizer=OptimizerSpec(
            learning_rate=0.1, momentum=0.9, schedule=ScheduleSpec("time_decay", decay=0.01)
        ),
    )
    run = store.load(run_training(config, store))
    assert run.meta["status"] == "completed"
    batches, epochs = run.batches, run.epochs
    n_train = int(batches[batches.epoch == 0].batch_size.sum())
    assert list(batches.batch_size[batches.epoch == 0]) == parse_sizes(n_train, 25)
    assert len(epochs) == 3
    for epoch, group in batches.groupby("epoch"):
        weighted = np.average(group.loss, weights=group.batch_size)
        assert weighted == pytest.approx(epochs.loss[epoch], rel=1e-5)
    steps = np.arange(len(batches))
    np.testing.assert_allclose(batches.learning_rate, 0.1 / (1 + 0.01 * steps), rtol=1e-6)
    assert list(batches.step) == list(range(len(batches)))
    assert batches.samples_seen.iloc[-1] == 3 * n_train
    assert {"val_loss", "accuracy", "val_accuracy"} <= set(epochs.columns)
    summary = run.meta["summary"]
    assert summary["final_loss"] == pytest.approx(epochs.loss.iloc[-1])
    assert summary["samples_per_s"] > 0
    assert run.meta["environment"]["device"] == "CPU"
    # the plan the dashboard's progress bar divides by: ceil(n / 25) steps per epoch
    assert summary["steps_per_epoch"] == math.ceil(n_train / 25) == len(parse_sizes(n_train, 25))
    assert summary["total_steps"] == 3 * summary["steps_per_epoch"] == len(batches)


def parse_sizes(n, size):
    return [size] * (n // size) + ([n % size] if n % size else [])


def test_full_batch_and_online(tmp_path):
    store = RunStore(tmp_path)
    full = store.load(
        run_training(TrainingConfig(dataset="iris", model=SMALL, batch_size=None, epochs=2), store)
    )
    assert list(full.batches.batch) == [0, 0]
    online = store.load(
        run_training(
            TrainingConfig(
                dataset="circle",
                n_samples=40,
                model=SMALL,
                batch_size=parse_batch_size("online"),
                epochs=1,
            ),
            store,
        )
    )
    assert set(online.batches.batch_size) == {1}


def test_a_non_finite_loss_ends_the_run_as_diverged(tmp_path):
    store = RunStore(tmp_path)
    config = TrainingConfig(
        dataset="diabetes",
        model=SMALL,
        batch_size=32,
        epochs=5,
        standardize=False,
        optimizer=OptimizerSpec(learning_rate=1e6),
    )
    run = store.load(run_training(config, store))
    assert run.meta["status"] == "diverged"
    assert not np.isfinite(run.batches.loss.iloc[-1])
    assert len(run.epochs) < 5


def test_an_exception_ends_the_run_as_failed_with_its_message(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b,target\n1,x,0\n2,3,1\n")
    store = RunStore(tmp_path / "runs")
    run_id = run_training(
        TrainingConfig(dataset="csv", data_path=str(bad), target_column="target", model=SMALL),
        store,
    )
    meta = store.load(run_id).meta
    assert meta["status"] == "failed"
    assert "b" in meta["error"]


def test_stop_signal_ends_after_the_current_batch_on_keras_fit(tmp_path):
    """Keras's plain `fit` path stops after one batch; the compiled paths after the chunk in
    progress (tests/lab/test_engine.py)."""
    store = RunStore(tmp_path)
    stop = StopSignal()
    config = TrainingConfig(dataset="digits", model=SMALL, batch_size=8, epochs=50)

    def stop_after_first_epoch(row):
        stop.request()

    run = store.load(
        run_training(config, store, stop, progress=stop_after_first_epoch, path="keras_fit")
    )
    assert run.meta["status"] == "stopped"
    # the first epoch whole, then exactly one batch of the second (Keras closes that epoch too)
    first_epoch = run.batches[run.batches.epoch == 0]
    assert list(run.batches.epoch) == [0] * len(first_epoch) + [1]
    assert len(run.epochs) == 2
    assert run.epochs.samples_seen.iloc[-1] == first_epoch.batch_size.sum() + 8


def wait_for(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError("timed out")


def epochs_recorded(store, run_id):
    try:
        return len(store.load(run_id).epochs)
    except Exception:
        return 0


def test_worker_stops_on_request_and_keeps_what_it_recorded(tmp_path):
    store = RunStore(tmp_path)
    job = start_training(
        TrainingConfig(dataset="digits", model=SLOW, batch_size=4, epochs=200), tmp_path
    )
    run_id = job.run_id()
    wait_for(lambda: epochs_recorded(store, run_id) >= 1)
    assert request_stop(store, run_id)
    assert job.wait(60) == 0
    run = store.load(run_id)
    assert run.meta["status"] == "stopped"
    assert len(run.epochs) >= 1
    assert len(run.batches) > 0
    assert not request_stop(store, run_id)


def test_a_stop_request_in_the_folder_alone_stops_the_worker(tmp_path):
    """What a process on another host sharing the folder can do: no signal, only the
    request file the worker polls."""
    store = RunStore(tmp_path)
    job = start_training(
        TrainingConfig(dataset="digits", model=SLOW, batch_size=4, epochs=200), tmp_path
    )
    run_id = job.run_id()
    wait_for(lambda: epochs_recorded(store, run_id) >= 1)
    assert store.request_stop(run_id)  # writes the request; sends nothing
    assert job.wait(60) == 0
    assert store.load_meta(run_id)["status"] == "stopped"
    assert not store.request_stop(run_id)  # nobody trains it now


def test_kill_9_of_a_worker_loses_at_most_one_epoch(tmp_path):
    store = RunStore(tmp_path)
    job = start_training(
        TrainingConfig(dataset="digits", model=SLOW, batch_size=4, epochs=200), tmp_path
    )
    run_id = job.run_id()
    wait_for(lambda: epochs_recorded(store, run_id) >= 2)
    os.kill(job.process.pid, signal.SIGKILL)
    job.wait(30)
    run = store.load(run_id)
    assert run.meta["status"] == "interrupted"  # the first reader found no worker holding it
    per_epoch = run.batches[run.batches.epoch == 0].shape[0]
    assert len(run.batches) >= len(run.epochs) * per_epoch
    assert isinstance(run.batches, pd.DataFrame)
    assert len(run.epochs) >= 2
    # its summary, recomputed from the files: what Compare and `sgdplus runs` show
    summary, epochs = run.meta["summary"], run.epochs
    assert summary["epochs_completed"] == len(epochs)
    assert summary["steps"] == len(run.batches) == run.batches.step.iloc[-1] + 1
    samples = run.batches.batch_size.sum()
    assert summary["samples_seen"] == run.batches.samples_seen.iloc[-1] == samples
    assert summary["total_steps"] == 200 * per_epoch
    for key in ("loss", "val_loss", "val_accuracy"):
        assert summary[f"final_{key}"] == epochs[key].iloc[-1]
    assert summary["best_val_loss"] == epochs.val_loss.min()
    assert summary["best_val_accuracy"] == epochs.val_accuracy.max()
    (row,) = store.list_runs()
    assert (row.run_id, row.status, row.summary) == (run_id, "interrupted", summary)


def test_a_bad_config_is_refused_before_a_worker_or_a_run_exists(tmp_path):
    with pytest.raises(ValueError, match="Received: epochs=0"):
        TrainingConfig(dataset="digits", epochs=0)  # there is no config to start a worker with
    # what only the worker can find out (here: a name the run store refuses) comes back
    job = start_training(TrainingConfig(dataset="digits", name="bell \x07"), tmp_path)
    with pytest.raises(ValueError, match="bad run name"):
        job.run_id()
    assert job.wait(60) == 0
    assert RunStore(tmp_path).list_runs() == []


@pytest.mark.parametrize(
    "schedule",
    [
        ScheduleSpec("constant"),
        ScheduleSpec("time_decay", decay=0.05),
        ScheduleSpec("step", every_steps=7, drop=0.5),
        ScheduleSpec("exponential", every_steps=10, rate=0.9),
        ScheduleSpec("cosine", warmup_steps=5),
    ],
    ids=lambda spec: spec.name,
)
@pytest.mark.parametrize("optimizer", ["sgdplus", "adam"])
def test_recorded_rate_is_the_rate_each_step_used(tmp_path, schedule, optimizer):
    """The `learning_rate` column equals the optimizer's own rate for that step, read back
    from a fresh optimizer of the run's settings at each `iterations` (SGDPlus's
    `current_learning_rate`, the decayed rate; Keras's optimizers' `learning_rate`).

    To a few float32 ulps: the recorded curve evaluates the schedule for all steps at once,
    and a vectorised `pow` or `cos` may round differently from the scalar one of a step (with
    time_decay, the base rate instead of the decayed one would be off by over 40% here).
    """
    store = RunStore(tmp_path)
    spec = OptimizerSpec(name=optimizer, learning_rate=0.1, schedule=schedule)
    config = TrainingConfig(dataset="iris", model=SMALL, batch_size=16, epochs=2, optimizer=spec)
    batches = store.load(run_training(config, store)).batches
    fresh = make_optimizer(spec, total_steps=len(batches))
    fresh.build([keras.Variable(np.zeros(3, "float32"))])
    used = []
    for step in range(len(batches)):
        fresh.iterations.assign(step)
        rate = fresh.current_learning_rate if optimizer == "sgdplus" else fresh.learning_rate
        used.append(float(keras.ops.convert_to_numpy(rate)))
    np.testing.assert_allclose(batches.learning_rate.to_numpy(), np.array(used), rtol=2.0**-21)


def test_a_worker_started_under_streamlit_does_not_run_the_app_script_again(tmp_path, monkeypatch):
    """Streamlit installs the page's script as `__main__`; `spawn` would run `__main__`
    again in the worker before the target (loading Keras before the worker picks its
    backend). The worker must start clean: the script's side effect never happens."""
    marker = tmp_path / "the app script ran in the worker"
    script = tmp_path / "app.py"
    script.write_text(f"open({str(marker)!r}, 'w').close()\n")
    fake_main = types.ModuleType("__main__")
    fake_main.__file__ = str(script)
    monkeypatch.setitem(sys.modules, "__main__", fake_main)
    job = start_training(TrainingConfig(dataset="iris", model=SMALL, epochs=1), tmp_path / "runs")
    run_id = job.run_id()
    assert job.wait(120) == 0
    assert sys.modules["__main__"] is fake_main  # given back after the spawn
    assert not marker.exists()
    assert RunStore(tmp_path / "runs").load_meta(run_id)["status"] == "completed"


# --- checkpoints and exact resume ------------------------------------------------------------


def test_a_run_killed_in_epoch_3_and_resumed_matches_one_never_interrupted(tmp_path):
    """kill -9 of a real worker in epoch 3, then `resume` to 6 epochs: every batch's loss,
    rate and gradient norm, and every epoch's metrics, as a run trained 6 epochs at once."""
    config = TrainingConfig(
        dataset="digits",
        model=ModelSpec(depth=3, width=256),
        batch_size=8,
        epochs=6,
        optimizer=OptimizerSpec(learning_rate=0.02, momentum=0.9, nesterov=True),
        backend=keras.backend.backend(),  # the worker's and this process's, to compare
    )
    killed_store = RunStore(tmp_path / "killed")
    job = start_training(config, tmp_path / "killed")
    run_id = job.run_id()
    wait_for(lambda: epochs_recorded(killed_store, run_id) >= 3)
    os.kill(job.process.pid, signal.SIGKILL)
    job.wait(30)
    interrupted = killed_store.load(run_id)
    assert interrupted.meta["status"] == "interrupted"
    assert len(interrupted.epochs) >= 3
    assert interrupted.meta["summary"]["steps"] < interrupted.meta["summary"]["total_steps"]
    checkpoint = killed_store.load_checkpoint(run_id)
    assert checkpoint is not None
    assert int(checkpoint["epochs_done"]) >= 1

    keras.backend.clear_session()
    assert run_training(config, killed_store, resume=run_id) == run_id
    resumed = killed_store.load(run_id)
    keras.backend.clear_session()
    whole_store = RunStore(tmp_path / "whole")
    whole = whole_store.load(run_training(config, whole_store))

    assert resumed.meta["status"] == whole.meta["status"] == "completed"
    assert resumed.batches.step.tolist() == list(range(len(whole.batches)))
    for column in ("epoch", "batch", "batch_size", "samples_seen"):
        assert resumed.batches[column].tolist() == whole.batches[column].tolist()
    for column in ("loss", "learning_rate", "grad_norm"):
        np.testing.assert_array_equal(resumed.batches[column], whole.batches[column])
    for column in ("loss", "accuracy", "val_loss", "val_accuracy", "samples_seen"):
        np.testing.assert_array_equal(resumed.epochs[column], whole.epochs[column])
    assert resumed.meta["summary"]["steps"] == whole.meta["summary"]["steps"]
    # time goes on: the summary spans both parts, the wall times never go back
    assert resumed.meta["summary"]["elapsed_s"] >= resumed.epochs.wall_time.iloc[-1] > 0
    assert resumed.batches.wall_time.is_monotonic_increasing
    # the trained model, as a user loads it in a notebook
    path = tmp_path / "killed" / run_id / "model.keras"
    loaded = keras.saving.load_model(path)
    x = load_data(config).x_val[:5]
    keras.backend.clear_session()
    reference = keras.saving.load_model(tmp_path / "whole" / whole.run_id / "model.keras")
    np.testing.assert_array_equal(loaded.predict(x, verbose=0), reference.predict(x, verbose=0))
    assert type(loaded.optimizer).__name__ == "SGDPlus"


def test_a_jax_run_saves_its_model_without_importing_tensorflow(tmp_path):
    """What a JAX worker does at a run's end, in a fresh interpreter: `model.keras` is
    written and loads, and TensorFlow (seconds to import) stays out of the process."""
    code = f"""
import json, os, sys
os.environ["KERAS_BACKEND"] = "jax"
from keras_sgdplus.lab.config import ModelSpec, TrainingConfig
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.training import run_training
config = TrainingConfig(dataset="iris", model=ModelSpec(depth=1, width=8), epochs=2, backend="jax")
run_id = run_training(config, RunStore({str(tmp_path)!r}))
print(json.dumps({{"run_id": run_id, "tensorflow": "tensorflow" in sys.modules}}))
"""
    env = {**os.environ, "KERAS_BACKEND": "jax"}
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["tensorflow"] is False
    model = keras.saving.load_model(tmp_path / report["run_id"] / "model.keras")
    assert model.count_params() == 4 * 8 + 8 + 8 * 3 + 3
