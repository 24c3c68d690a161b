"""Running sweeps for real: a LocalCluster of worker processes, a Dask scheduler and two
workers started as separate processes on loopback, the coordinator process, stop and delete.

The runs are tiny (digits, one epoch of 23 steps), so the time goes to starting processes and
compiling. A run of a sweep is compared loss for loss with the same config trained alone in a
fresh training worker (`jobs.start_training`, which calls `run_training`): the reference is
the ordinary path, not the code under test.
"""

import json
import os
import signal
import subprocess
import sys
import time
import types
from pathlib import Path

import pytest

from keras_sgdplus.lab import jobs
from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import RunStore
from keras_sgdplus.lab.sweep_runner import delete_sweep, request_stop, run_sweep, start_sweep
from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore, runs_of, swept_settings

SCRIPT = Path(sys.executable).with_name("sgdplus")
DASK = Path(sys.executable).with_name("dask")
BASE = TrainingConfig(dataset="digits", epochs=1, batch_size=64)
AXES = {"learning_rate": (0.03, 0.1)}
SEEDS = (0, 1)
CLI_AXES = ["--dataset", "digits", "--epochs", "1", "--batch-size", "64"]
CLI_AXES += ["--learning-rate", "0.03,0.1", "--seeds", "2", "--name", "tiny"]
SCHEDULER_OPTIONS = ["--host", "127.0.0.1", "--port", "0", "--no-dashboard"]
WORKER_OPTIONS = ["--nworkers", "1", "--nthreads", "1", "--no-dashboard", "--host", "127.0.0.1"]


def tiny_spec(name="tiny"):
    return SweepSpec(name, BASE, AXES, SEEDS)


def sweep_runs(runs_dir, sweep_id):
    """{(learning rate, seed): run summary} of the sweep's runs."""
    found = runs_of(RunStore(runs_dir).list_runs(), sweep_id)
    return {(row.config["optimizer"]["learning_rate"], row.config["seed"]): row for row in found}


def curves(runs_dir, run_id):
    store = RunStore(runs_dir)
    return store.load_curve(run_id, "batches"), store.load_curve(run_id, "epochs")


def assert_same_losses(runs_a, run_a, runs_b, run_b):
    """Row by row, exactly: each step's loss and gradient norm, each epoch's losses."""
    batches_a, epochs_a = curves(runs_a, run_a)
    batches_b, epochs_b = curves(runs_b, run_b)
    assert len(batches_a) == len(batches_b) > 0
    for column in ("step", "epoch", "loss", "learning_rate", "grad_norm"):
        assert batches_a[column].tolist() == batches_b[column].tolist(), column
    for column in ("loss", "val_loss", "val_accuracy"):
        assert epochs_a[column].tolist() == epochs_b[column].tolist(), column


@pytest.fixture(scope="module")
def local_sweep(tmp_path_factory):
    """The tiny sweep run here, from a process whose main module imports Keras and whose
    environment names TensorFlow (as after Streamlit's AppTest, which leaves a page script
    as __main__): a spawned worker re-imports that module first, so the sweep's backend
    (auto: JAX) must be in its environment before it is spawned."""
    runs_dir = tmp_path_factory.mktemp("local")
    script = tmp_path_factory.mktemp("main") / "imports_keras.py"
    script.write_text("import keras\n")
    main = types.ModuleType("__main__")
    main.__file__ = str(script)
    done = []
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(sys.modules, "__main__", main)
        patch.setenv("KERAS_BACKEND", "tensorflow")
        sweep_id = run_sweep(
            tiny_spec(), runs_dir, workers=2, on_run_done=lambda run, status: done.append(run)
        )
        assert os.environ["KERAS_BACKEND"] == "tensorflow"  # this process's, put back
    return runs_dir, sweep_id, done


def test_a_local_sweep_stores_its_runs_with_the_sweep_tags(local_sweep):
    runs_dir, sweep_id, done = local_sweep
    record = SweepStore(runs_dir).load(sweep_id)
    assert (record["status"], record["where"], record["error"]) == ("completed", "local", None)
    runs = sweep_runs(runs_dir, sweep_id)
    assert sorted(runs) == sorted((lr, seed) for lr in AXES["learning_rate"] for seed in SEEDS)
    assert sorted(done) == sorted(row.run_id for row in runs.values())
    for (lr, seed), row in runs.items():
        assert row.status == "completed"
        assert row.config["sweep_id"] == sweep_id
        assert row.config["sweep_name"] == "tiny"
        assert swept_settings(row.config, AXES) == {"learning_rate": lr}
        assert row.config["seed"] == seed
        assert row.summary["steps"] == 23  # 1437 training samples in batches of 64
    # two worker processes shared the four runs: some ran in a reused worker
    pids = {RunStore(runs_dir).load_meta(row.run_id)["environment"]["pid"] for row in runs.values()}
    assert len(pids) <= 2
    assert os.getpid() not in pids


def test_each_run_equals_the_same_config_trained_alone(local_sweep, tmp_path):
    """A run trained in a reused Dask worker gives exactly the losses of its config trained
    alone in a fresh process."""
    runs_dir, sweep_id, _ = local_sweep
    runs = sweep_runs(runs_dir, sweep_id)
    assert len(runs) == len(AXES["learning_rate"]) * len(SEEDS)
    started = {}
    for key, row in runs.items():
        config = TrainingConfig.from_dict(row.config)
        started[key] = jobs.start_training(config, tmp_path)
    for key, job in started.items():
        reference = job.run_id()
        assert job.wait(300) == 0
        assert_same_losses(runs_dir, runs[key].run_id, tmp_path, reference)


@pytest.fixture
def loopback_cluster(tmp_path):
    """`dask scheduler` and two `dask worker`s (one process, one thread each), separate
    processes on 127.0.0.1; killed at the end."""
    scheduler_file = tmp_path / "scheduler.json"
    common = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    processes = [
        subprocess.Popen(
            [DASK, "scheduler", *SCHEDULER_OPTIONS, "--scheduler-file", scheduler_file],
            **common,
        )
    ]
    try:
        deadline = time.monotonic() + 60
        while not scheduler_file.exists() and time.monotonic() < deadline:
            time.sleep(0.2)
        for _ in range(2):
            processes.append(
                subprocess.Popen(
                    [DASK, "worker", "--scheduler-file", scheduler_file, *WORKER_OPTIONS],
                    **common,
                )
            )
        address = json.loads(scheduler_file.read_text())["address"]
        from distributed import Client

        with Client(address, timeout="60s") as client:
            client.wait_for_workers(2, timeout=60)
        yield address
    finally:
        for process in processes:
            process.kill()  # each `dask worker`'s own worker process exits with its parent
        for process in processes:
            process.wait()


def test_a_sweep_through_a_loopback_cluster_stores_the_same_runs(local_sweep, loopback_cluster):
    """`sgdplus sweep --cluster` on a real scheduler and two workers: the same runs (same
    settings and seeds) with the same losses, row by row, as the sweep run locally."""
    local_dir, local_id, _ = local_sweep
    runs_dir = local_dir.parent / "cluster-runs"
    result = subprocess.run(
        [SCRIPT, "sweep", *CLI_AXES, "--cluster", loopback_cluster, "--runs-dir", runs_dir],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr
    sweep_id = result.stdout.strip().splitlines()[-1]  # the sweep's id, last
    assert SweepStore(runs_dir).load(sweep_id)["where"] == loopback_cluster
    assert result.stderr.count("completed") == 4  # a line per finished run
    local, remote = sweep_runs(local_dir, local_id), sweep_runs(runs_dir, sweep_id)
    assert sorted(remote) == sorted(local)
    for key, row in remote.items():
        assert row.status == "completed"
        assert row.config["sweep_id"] == sweep_id
        assert {**row.config, "sweep_id": ""} == {**local[key].config, "sweep_id": ""}
        assert_same_losses(runs_dir, row.run_id, local_dir, local[key].run_id)


def wait_for(condition, timeout=180.0, what="the condition"):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def test_stop_stops_queued_and_running_runs_and_delete_removes_the_sweep(tmp_path):
    """Started as the dashboard starts it (a coordinator process). SIGTERM to the process of
    one run (what `sgdplus stop` sends on this host) stops that run and its worker lives on
    to take the next; the sweep's stop then stops the running runs and starts no more."""
    base = TrainingConfig(dataset="digits", epochs=10_000, batch_size=64)
    spec = SweepSpec("long", base, {"learning_rate": (0.01, 0.02, 0.03)}, (0, 1))
    sweep_id = start_sweep(spec, tmp_path, workers=2)
    sweeps, store = SweepStore(tmp_path), RunStore(tmp_path)
    assert sweeps.load(sweep_id)["status"] == "running"
    with pytest.raises(ValueError, match="still running"):
        delete_sweep(tmp_path, sweep_id)

    def training(count):
        def check():
            live = [
                row
                for row in runs_of(store.list_runs(), sweep_id)
                if row.status == "running" and len(store.load_curve(row.run_id, "epochs")) >= 1
            ]
            return live if len(live) >= count else None

        return check

    first = wait_for(training(2), what="two runs training")[0]
    pid = store.load_meta(first.run_id)["environment"]["pid"]
    os.kill(pid, signal.SIGTERM)
    wait_for(lambda: store.load_meta(first.run_id)["status"] == "stopped", what="the run's stop")
    # the worker lived on: it took the next run of the sweep
    third = wait_for(
        lambda: len(runs_of(store.list_runs(), sweep_id)) >= 3 or None, what="a third run"
    )
    assert third
    wait_for(training(2), what="two runs training again")

    request_stop(tmp_path, sweep_id)
    record = wait_for(
        lambda: (r := sweeps.load(sweep_id))["status"] != "running" and r, what="the sweep's end"
    )
    assert (record["status"], record["error"]) == ("stopped", None)
    runs = runs_of(store.list_runs(), sweep_id)
    assert 3 <= len(runs) < spec.run_count  # the runs not started were never created
    assert all(row.status == "stopped" for row in runs), [row.status for row in runs]
    assert all(row.summary["epochs_completed"] < 10_000 for row in runs)
    assert not store.list_runs(live_only=True)

    # a stopped run of a sweep resumes as any run (here: one epoch more)
    epochs = store.load_meta(first.run_id)["summary"]["epochs_completed"] + 1
    resumed = subprocess.run(
        [SCRIPT, "resume", first.run_id, "--epochs", str(epochs), "--runs-dir", tmp_path],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert resumed.returncode == 0, resumed.stderr
    meta = store.load_meta(first.run_id)
    assert (meta["status"], meta["config"]["sweep_id"]) == ("completed", sweep_id)

    delete_sweep(tmp_path, sweep_id)
    assert not runs_of(store.list_runs(), sweep_id)
    assert store.list_runs() == []
    with pytest.raises(ValueError, match="unknown sweep"):
        sweeps.load(sweep_id)


def test_ctrl_c_on_sgdplus_sweep_stops_the_sweep(tmp_path):
    """Ctrl-C reaches `sgdplus sweep` and its local workers (one process group): the
    running runs end `stopped`, reported on stderr, no other run starts, the sweep ends
    `stopped` and its id is printed last."""
    command = [SCRIPT, "sweep", "--dataset", "digits", "--epochs", "10000", "--batch-size"]
    command += ["64", "--learning-rate", "0.01,0.02,0.03", "--runs-dir", tmp_path]
    process = subprocess.Popen(
        command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        store = RunStore(tmp_path)
        wait_for(
            lambda: (
                sum(len(store.load_curve(r.run_id, "epochs")) >= 1 for r in store.list_runs()) >= 2
            ),
            what="two runs training",
        )
        os.killpg(process.pid, signal.SIGINT)
        out, err = process.communicate(timeout=180)
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
    assert process.returncode == 0, err
    sweep_id = out.strip().splitlines()[-1]
    assert SweepStore(tmp_path).load(sweep_id)["status"] == "stopped"
    runs = runs_of(store.list_runs(), sweep_id)
    assert len(runs) == 2
    assert all(row.status == "stopped" for row in runs)
    assert err.count(" stopped ") == 2  # a line per run
