"""The `sgdplus` console script, run as a user runs it (a subprocess of the installed script)."""

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest

from keras_sgdplus.lab.runs import RunStore, exact_float_reading

SCRIPT = Path(sys.executable).with_name("sgdplus")


def sgdplus(*args, runs_dir=None, check=True):
    env = {**os.environ}
    if runs_dir is not None:
        env["SGDPLUS_RUNS_DIR"] = str(runs_dir)
    result = subprocess.run(
        [str(SCRIPT), *map(str, args)], capture_output=True, text=True, env=env, timeout=300
    )
    if check:
        assert result.returncode == 0, result.stderr
    return result


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    runs_dir = tmp_path_factory.mktemp("runs")
    first = sgdplus(
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "3",
        "--batch-size",
        "16",
        "--learning-rate",
        "0.1",
        "--momentum",
        "0.9",
        "--nesterov",
        "--name",
        "../../escape",
        runs_dir=runs_dir,
    )
    second = sgdplus(
        "train",
        "--dataset",
        "iris",
        "--epochs",
        "2",
        "--batch-size",
        "full",
        "--learning-rate",
        "0.5",
        "--decay",
        "0.01",
        "--runs-dir",
        runs_dir,
    )
    return runs_dir, first, second


def test_train_shows_progress_and_prints_the_run_id_last(two_runs):
    runs_dir, first, _ = two_runs
    run_id = first.stdout.strip().splitlines()[-1]
    assert (runs_dir / run_id / "meta.json").is_file()
    assert "epoch 3/3" in first.stderr
    assert "cuda" not in first.stderr.lower()  # TensorFlow's start-up noise kept off stderr
    assert sorted(p.name for p in runs_dir.iterdir() if not p.name.startswith(".")) == sorted(
        [run_id, two_runs[2].stdout.split()[-1]]
    )


def test_runs_lists_both_and_json_is_parseable(two_runs):
    runs_dir, first, second = two_runs
    listing = sgdplus("runs", runs_dir=runs_dir).stdout
    assert "../../escape" in listing
    assert "completed" in listing
    runs = json.loads(sgdplus("runs", "--json", "--runs-dir", runs_dir).stdout)
    assert {run["run_id"] for run in runs} == {first.stdout.split()[-1], second.stdout.split()[-1]}
    assert all(run["status"] == "completed" for run in runs)


def test_show_and_compare(two_runs):
    runs_dir, first, second = two_runs
    a, b = first.stdout.split()[-1], second.stdout.split()[-1]
    shown = json.loads(sgdplus("show", a, "--json", runs_dir=runs_dir).stdout)
    assert shown["config"]["optimizer"]["momentum"] == 0.9
    assert shown["name"] == "../../escape"
    assert "optimizer.nesterov: True" in sgdplus("show", a, runs_dir=runs_dir).stdout
    table = sgdplus("compare", a, b, runs_dir=runs_dir).stdout
    differing = {line.split()[0] for line in table.splitlines()[1:] if line.strip()}
    assert {
        "batch_size",
        "epochs",
        "optimizer.learning_rate",
        "optimizer.momentum",
        "optimizer.schedule.name",
    } <= differing
    assert "dataset" not in differing  # the same in both
    assert "final_loss" in differing


def test_export_writes_the_curves_as_csv(two_runs):
    runs_dir, first, _ = two_runs
    run_id = first.stdout.split()[-1]
    batches = pd.read_csv(
        io.StringIO(sgdplus("export", run_id, "--curve", "batches", runs_dir=runs_dir).stdout)
    )
    epochs = pd.read_csv(io.StringIO(sgdplus("export", run_id, runs_dir=runs_dir).stdout))
    assert len(epochs) == 3
    assert list(batches.step) == list(range(len(batches)))
    per_epoch = batches.groupby("epoch").apply(
        lambda g: (g.loss * g.batch_size).sum() / g.batch_size.sum(), include_groups=False
    )
    assert list(per_epoch) == pytest.approx(list(epochs.loss), rel=1e-5)


def test_delete(tmp_path):
    run_id = sgdplus(
        "train", "--dataset", "xor", "--epochs", "1", runs_dir=tmp_path
    ).stdout.split()[-1]
    assert sgdplus("delete", run_id, runs_dir=tmp_path).stdout.strip() == f"deleted {run_id}"
    assert json.loads(sgdplus("runs", "--json", runs_dir=tmp_path).stdout) == []


@pytest.mark.parametrize(
    ("args", "message"),
    [
        # every setting of a run, checked by lab/config.py and named as there
        (["train", "--epochs", "0"], "`epochs` must be >= 1. Received: epochs=0"),
        (["train", "--epochs", "two"], "argument --epochs: invalid int value: 'two'"),
        (["train", "--learning-rate", "-1"], "`learning_rate` must be a finite number >= 0"),
        (["train", "--learning-rate", "nan"], "Received: learning_rate=nan"),
        (["train", "--momentum", "1.5"], "`momentum` must be in [0, 1]. Received: momentum=1.5"),
        (["train", "--dataset", "nope"], "Received: dataset='nope'"),
        (["train", "--batch-size", "zero"], "Received: batch_size='zero'"),
        (["train", "--optimizer", "lion"], "invalid choice: 'lion'"),
        (["train", "--convention", "jax"], "invalid choice: 'jax'"),
        (["train", "--schedule", "step", "--drop", "0"], "Received: drop=0.0"),
        (["train", "--schedule", "step", "--every-steps", "0"], "Received: every_steps=0"),
        (["train", "--schedule", "exponential", "--rate", "2"], "Received: rate=2.0"),
        (["train", "--schedule", "cosine", "--warmup-steps", "-1"], "Received: warmup_steps=-1"),
        (["train", "--decay", "-1"], "`decay` must be a finite number >= 0. Received: decay=-1.0"),
        (["train", "--decay", "0.1", "--schedule", "cosine"], "can't go with --schedule cosine"),
        (["train", "--validation-split", "1.5"], "Received: validation_split=1.5"),
        (["train", "--noise", "-1"], "Received: noise=-1.0"),
        (["train", "--samples", "1"], "`n_samples` must be >= 2. Received: n_samples=1"),
        (["train", "--depth", "9"], "`depth` must be in [0, 8]. Received: depth=9"),
        (["train", "--width", "0"], "`width` must be in [1, 4096]. Received: width=0"),
        (["train", "--activation", "swish"], "Received: activation='swish'"),
        (["train", "--loss", "hinge"], "Received: loss='hinge'"),
        (["train", "--seed", "-1"], "Received: seed=-1"),
        (["train", "--dataset", "csv", "--target", "y"], "`data_path` is needed for dataset csv"),
        (["train", "--dataset", "csv", "--data", "x.csv"], "`target_column` is needed"),
        (["train", "--name", "bell \x07"], "bad run name"),
        # the settings against the data, before a run exists
        (["train", "--dataset", "iris", "--model", "cnn"], "`model` cnn needs images"),
        (["train", "--dataset", "iris", "--loss", "mae"], "Received: loss='mae'"),
        (["train", "--dataset", "npz", "--data", "missing.npz"], "missing.npz"),
        (["show", "../etc"], "bad run id '../etc'"),
        (["show", "20261121-224501-3f9a2c"], "unknown run id"),
        (["export", "20261121-224501-3f9a2c", "--curve", "weights"], "invalid choice"),
        (["frobnicate"], "invalid choice"),
        ([], "required"),
    ],
)
def test_bad_arguments_get_one_line_and_status_2(tmp_path, args, message):
    result = sgdplus(*args, runs_dir=tmp_path, check=False)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert message in lines[0]
    assert not any(p for p in tmp_path.iterdir() if not p.name.startswith("."))


@pytest.mark.parametrize(
    "command", ["train", "runs", "show", "compare", "export", "delete", "datasets", None]
)
def test_every_command_has_help(command):
    result = sgdplus(*([command] if command else []), "--help")
    assert "usage: sgdplus" in result.stdout


def long_train(runs_dir, *extra):
    """A `sgdplus train` process a test ends, and its run id once it has an epoch recorded."""
    env = {**os.environ, "SGDPLUS_RUNS_DIR": str(runs_dir)}
    command = [str(SCRIPT), "train", *extra, "--dataset", "digits", "--batch-size", "online"]
    command += ["--epochs", "1000", "--learning-rate", "0.01", "--momentum", "0"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = RunStore(runs_dir)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and process.poll() is None:
        runs = store.list_runs()
        if runs and runs[0].status == "running" and store.last_row(runs[0].run_id, "epochs"):
            return process, runs[0].run_id
        time.sleep(0.2)
    process.kill()
    raise AssertionError(f"no epoch within 120 s: {process.communicate()[1].decode()}")


def test_a_killed_train_is_listed_and_shown_interrupted_with_its_summary(tmp_path):
    """`sgdplus train` killed with SIGKILL after its first epoch: `runs` and `show` say
    interrupted, with the losses recorded until then (recomputed here from epochs.csv)."""
    process, run_id = long_train(tmp_path)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    listing = sgdplus("runs", runs_dir=tmp_path).stdout
    (line,) = [line for line in listing.splitlines() if line.startswith(run_id)]
    epochs = pd.read_csv(tmp_path / run_id / "epochs.csv", **exact_float_reading(pd.__version__))
    assert "interrupted" in line.split()
    assert f"{epochs.loss.iloc[-1]:.6g}" in line.split()
    shown = json.loads(sgdplus("show", run_id, "--json", runs_dir=tmp_path).stdout)
    assert shown["status"] == "interrupted"
    assert shown["summary"]["epochs_completed"] == len(epochs) >= 1
    assert shown["summary"]["final_val_loss"] == epochs.val_loss.iloc[-1]
    assert shown["summary"]["best_val_loss"] == epochs.val_loss.min()


def test_a_live_run_is_stopped_from_another_process_and_deleted_only_when_it_has_ended(tmp_path):
    process, run_id = long_train(tmp_path)
    try:
        refused = sgdplus("delete", run_id, runs_dir=tmp_path, check=False)
        assert refused.returncode == 2
        assert "still training" in refused.stderr
        assert "--force" in refused.stderr
        assert RunStore(tmp_path).is_active(run_id)  # untouched, still training
        stopped = sgdplus("stop", run_id, runs_dir=tmp_path)
        assert "stop requested" in stopped.stdout
        out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    assert out.decode().split()[-1] == run_id
    shown = json.loads(sgdplus("show", run_id, "--json", runs_dir=tmp_path).stdout)
    assert shown["status"] == "stopped"
    again = sgdplus("stop", run_id, runs_dir=tmp_path, check=False)
    assert again.returncode == 2
    assert "not training (its status is stopped)" in again.stderr
    sgdplus("delete", run_id, runs_dir=tmp_path)
    assert RunStore(tmp_path).list_runs() == []


def test_train_queue_waits_for_the_run_before_it_and_starts_when_it_ends(tmp_path):
    """`sgdplus train --queue` twice: the second run is `queued` (it says so on stderr) for
    as long as the first trains, and trains once the first is stopped."""
    first, first_id = long_train(tmp_path, "--queue")
    env = {**os.environ, "SGDPLUS_RUNS_DIR": str(tmp_path)}
    command = [str(SCRIPT), "train", "--queue", "--dataset", "iris", "--epochs", "2"]
    second = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    store = RunStore(tmp_path)
    try:
        deadline = time.monotonic() + 120
        while len(store.list_runs()) < 2 and time.monotonic() < deadline:
            time.sleep(0.2)
        (waiting,) = [run for run in store.list_runs() if run.run_id != first_id]
        time.sleep(2.0)  # the first trains on: the second keeps waiting
        assert store.load_meta(waiting.run_id)["status"] == "queued"
        assert store.load_curve(waiting.run_id, "batches").empty
        sgdplus("stop", first_id, runs_dir=tmp_path)
        first.communicate(timeout=60)
        out, err = second.communicate(timeout=240)
    finally:
        first.kill()
        second.kill()
    assert second.returncode == 0, err.decode()
    assert f"run {waiting.run_id} is queued (cpu queue, 1 at a time; 0 before it)" in err.decode()
    assert out.decode().split()[-1] == waiting.run_id
    assert store.load_meta(first_id)["status"] == "stopped"
    meta = store.load_meta(waiting.run_id)
    assert meta["status"] == "completed"
    assert meta["environment"]["queue"] == "cpu"
    assert meta["environment"]["backend"]
    assert store.load(waiting.run_id).epochs.epoch.tolist() == [0, 1]


def test_delete_force_stops_a_live_run_then_deletes_it(tmp_path):
    process, run_id = long_train(tmp_path)
    try:
        deleted = sgdplus("delete", run_id, "--force", runs_dir=tmp_path)
        assert deleted.stdout.strip() == f"deleted {run_id}"
        _out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    assert process.returncode == 0, err.decode()
    # it reads its run's status before the delete or finds it gone: either way, stopped
    assert "sgdplus train: stopped" in err.decode()
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == []


def test_export_tensorboard_writes_event_files_tensorboard_reads(two_runs, tmp_path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    runs_dir, first, _ = two_runs
    run_id = first.stdout.split()[-1]
    result = sgdplus("export", run_id, "--tensorboard", tmp_path / "logs", runs_dir=runs_dir)
    assert f"tensorboard --logdir {tmp_path / 'logs'}" in result.stdout
    reader = EventAccumulator(str(tmp_path / "logs" / run_id / "validation"))
    reader.Reload()
    epochs = RunStore(runs_dir).load(run_id).epochs
    values = [event.value for event in reader.Scalars("epoch_loss")]
    assert values == epochs.val_loss.astype("float32").tolist()


def test_resume_continues_a_killed_train_in_the_same_run(tmp_path):
    process, run_id = long_train(tmp_path)
    store = RunStore(tmp_path)
    deadline = time.monotonic() + 60
    while store.load_checkpoint(run_id) is None and time.monotonic() < deadline:
        time.sleep(0.1)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    busy = sgdplus("resume", run_id, "--epochs", "1", runs_dir=tmp_path, check=False)
    done = int(store.load_checkpoint(run_id)["epochs_done"])
    if done > 1:  # fewer epochs than it has done is refused
        assert busy.returncode == 2
        assert "must be at least" in busy.stderr
    resumed = sgdplus("resume", run_id, "--epochs", str(done + 2), runs_dir=tmp_path)
    assert resumed.stdout.split()[-1] == run_id
    run = store.load(run_id)
    assert run.meta["status"] == "completed"
    assert run.epochs.epoch.tolist() == list(range(done + 2))
    assert run.batches.step.tolist() == list(range(1437 * (done + 2)))
    shown = json.loads(sgdplus("show", run_id, "--json", runs_dir=tmp_path).stdout)
    assert shown["summary"]["epochs_completed"] == done + 2


def test_train_and_show_say_what_went_wrong_in_a_run_that_completed(tmp_path):
    """Issue 11's run: online on digits at the default rate 0.05 and momentum 0.9 completes
    (exit status 0), and both `train` (on stderr, at the end) and `show` warn about it."""
    trained = sgdplus(
        "train",
        "--dataset",
        "digits",
        "--batch-size",
        "1",
        "--learning-rate",
        "0.05",
        "--momentum",
        "0.9",
        "--epochs",
        "1",
        runs_dir=tmp_path,
    )
    run_id = trained.stdout.split()[-1]
    told = [line for line in trained.stderr.splitlines() if "warning:" in line]
    assert [line.split("warning: ")[1].split(":")[0] for line in told] == [
        "The loss exploded",
        "At chance level",
    ]
    assert all(line.startswith("sgdplus train: warning: ") for line in told)
    shown = sgdplus("show", run_id, runs_dir=tmp_path).stdout
    lines = shown.splitlines()
    assert lines[0].endswith(f"({run_id}, completed)")
    warned = [line for line in lines if line.startswith("warning: ")]
    assert [line.split(":")[1].strip() for line in warned] == [
        "The loss exploded",
        "At chance level",
    ]
    assert "sgdplus lr-find" in warned[0]
    stored = json.loads(sgdplus("show", run_id, "--json", runs_dir=tmp_path).stdout)
    assert [w["kind"] for w in stored["summary"]["warnings"]] == ["exploded", "at_chance"]
    assert "  warnings:" not in shown  # said once, above the summary
