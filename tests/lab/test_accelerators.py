"""`lab.accelerators`: which backend a run trains on, and which GPUs each process may touch.

What a fresh process does (the backend Keras loads, the variables a runtime reads when it
starts) is checked in real child interpreters: this test process has Keras imported already.
This machine has both backends installed and no GPU.

The children are started as the lab starts its training workers: fresh interpreters with
the caller's environment, whose first step is `prepare_process`, before Keras loads.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from keras_sgdplus.lab import accelerators
from keras_sgdplus.lab.accelerators import HIDDEN_ACCELERATORS, SERVER_MARKER

REPO = Path(__file__).resolve().parents[2]
WATCHED = (
    "CUDA_VISIBLE_DEVICES",
    "JAX_PLATFORMS",
    "KERAS_BACKEND",
    "TF_FORCE_GPU_ALLOW_GROWTH",
    "XLA_PYTHON_CLIENT_PREALLOCATE",
    "TF_CPP_MIN_LOG_LEVEL",
    "JAX_DEFAULT_MATMUL_PRECISION",
    "NVIDIA_TF32_OVERRIDE",
    SERVER_MARKER,
)
# Variables that the children below must not inherit from whoever runs the tests.
CLEARED = (*WATCHED, "XLA_PYTHON_CLIENT_MEM_FRACTION", "XLA_CLIENT_MEM_FRACTION")


def child_environment(**variables: str | None) -> dict[str, str]:
    """This environment without the watched variables, then `variables` (None: absent)."""
    environ = {k: v for k, v in os.environ.items() if k not in CLEARED}
    environ.update({k: v for k, v in variables.items() if v is not None})
    return environ


def run_python(code: str, timeout: float = 180, **variables: str | None) -> dict:
    """Runs `code` in a fresh interpreter; returns the JSON object it prints last."""
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=child_environment(**variables),
        timeout=timeout,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture
def restored_environ():
    """os.environ as it was before the test, whatever the test set or removed."""
    saved = dict(os.environ)
    yield os.environ
    os.environ.clear()
    os.environ.update(saved)


# ---------------------------------------------------------------------------- resolve_backend


@pytest.mark.parametrize(
    ("choice", "expected"), [("auto", "jax"), ("jax", "jax"), ("tensorflow", "tensorflow")]
)
def test_resolve_backend_in_a_fresh_interpreter(choice, expected):
    """auto is the fastest installed (JAX); an explicit one is honoured; nothing is imported."""
    report = run_python(
        f"""
        import json, sys
        from keras_sgdplus.lab.accelerators import resolve_backend
        backend = resolve_backend({choice!r})
        loaded = [m for m in ("keras", "tensorflow", "jax") if m in sys.modules]
        print(json.dumps({{"backend": backend, "loaded": loaded}}))
        """
    )
    assert report == {"backend": expected, "loaded": []}


RESOLVE_WITH_MISSING = """
import json, sys
for name in {missing!r}:
    sys.modules[name] = None  # what importlib.util.find_spec reports as not installed
from keras_sgdplus.lab.accelerators import resolve_backend
answers = {{}}
for choice in ("auto", "jax", "tensorflow"):
    try:
        answers[choice] = resolve_backend(choice)
    except ValueError as error:
        answers[choice] = "ValueError: " + str(error)
print(json.dumps(answers))
"""


def test_a_backend_that_is_not_installed_is_named_with_its_install_command():
    answers = run_python(RESOLVE_WITH_MISSING.format(missing=["jax"]))
    assert answers == {
        "auto": "tensorflow",  # the fallback
        "jax": "ValueError: `backend` jax was chosen, but jax is not installed: "
        "pip install 'keras-sgdplus[jax]'",
        "tensorflow": "tensorflow",
    }
    answers = run_python(RESOLVE_WITH_MISSING.format(missing=["tensorflow"]))
    assert answers["auto"] == "jax"
    assert answers["tensorflow"] == (
        "ValueError: `backend` tensorflow was chosen, but tensorflow is not installed: "
        "pip install 'keras-sgdplus[tensorflow]'"
    )


def test_neither_backend_installed_is_an_error_for_every_choice():
    answers = run_python(RESOLVE_WITH_MISSING.format(missing=["jax", "tensorflow"]))
    assert all(answer.startswith("ValueError: `backend` ") for answer in answers.values())
    assert "pip install 'keras-sgdplus[jax]'" in answers["auto"]


def test_once_keras_runs_its_backend_is_the_answer_and_another_is_refused():
    import keras

    running = keras.backend.backend()
    other = "tensorflow" if running == "jax" else "jax"
    assert accelerators.resolve_backend("auto") == running
    assert accelerators.resolve_backend(running) == running
    with pytest.raises(ValueError, match="already running") as error:
        accelerators.resolve_backend(other)
    assert str(error.value) == (
        f"`backend` {other} was chosen, but Keras is already running on {running} in this process."
    )
    # A new process (a worker) is not bound by this one's Keras.
    assert accelerators.resolve_backend("auto", fresh_process=True) == "jax"
    assert accelerators.resolve_backend(other, fresh_process=True) == other


def test_an_unknown_backend_is_refused_with_the_value_received():
    with pytest.raises(ValueError, match=r"`backend` must be one of .*backend='torch'"):
        accelerators.resolve_backend("torch")


# --------------------------------------------- keep_server_off_accelerators / prepare_process

HIDE_THEN_PREPARE = """
import json, os
from keras_sgdplus.lab import accelerators
WATCHED = {watched!r}
def snapshot():
    return {{name: os.environ.get(name) for name in WATCHED}}
accelerators.keep_server_off_accelerators()
first = snapshot()
accelerators.keep_server_off_accelerators()  # a Streamlit rerun
second = snapshot()
backend = accelerators.prepare_process("auto", {device!r})
print(json.dumps({{"hidden": first, "rerun": second, "prepared": snapshot(),
                   "backend": backend}}))
"""


@pytest.mark.parametrize(
    "originals",
    [
        {"CUDA_VISIBLE_DEVICES": None, "JAX_PLATFORMS": None},
        {"CUDA_VISIBLE_DEVICES": "0,1", "JAX_PLATFORMS": None},
        {"CUDA_VISIBLE_DEVICES": None, "JAX_PLATFORMS": "cuda,cpu"},
        {"CUDA_VISIBLE_DEVICES": "", "JAX_PLATFORMS": "cpu"},
    ],
    ids=["both-absent", "cuda-set", "jax-set", "empty-and-cpu"],
)
def test_the_server_hides_gpus_and_a_worker_gets_the_originals_back(originals):
    report = run_python(HIDE_THEN_PREPARE.format(watched=list(WATCHED), device="auto"), **originals)
    hidden, rerun, prepared = report["hidden"], report["rerun"], report["prepared"]
    assert hidden["CUDA_VISIBLE_DEVICES"] == "-1"
    assert hidden["JAX_PLATFORMS"] == "cpu"
    assert json.loads(hidden[SERVER_MARKER]) == originals
    assert rerun == hidden  # idempotent: the first save is kept, not the hiding values
    for name, value in originals.items():  # exactly: absent stays absent, "" stays ""
        assert prepared[name] == value, name
    assert prepared[SERVER_MARKER] is None  # undone once, not again in the worker's children
    assert report["backend"] == "jax"
    assert prepared["KERAS_BACKEND"] == "jax"


def test_device_cpu_hides_gpus_from_the_worker_even_after_restoring():
    report = run_python(
        HIDE_THEN_PREPARE.format(watched=list(WATCHED), device="cpu"),
        CUDA_VISIBLE_DEVICES="0",
    )
    prepared = report["prepared"]
    assert prepared["CUDA_VISIBLE_DEVICES"] == "-1"
    assert prepared["JAX_PLATFORMS"] == "cpu"
    assert prepared[SERVER_MARKER] is None


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_prepare_process_picks_the_backend_keras_then_loads(backend):
    """KERAS_BACKEND is set before Keras loads, over the user's own keras.json or variable."""
    other = "tensorflow" if backend == "jax" else "jax"
    report = run_python(
        f"""
        import json, os
        from keras_sgdplus.lab.accelerators import prepare_process
        chosen = prepare_process({backend!r}, "auto")
        import keras
        import jax
        print(json.dumps({{"chosen": chosen, "keras": keras.backend.backend(),
                           "growth": os.environ.get("TF_FORCE_GPU_ALLOW_GROWTH"),
                           "prealloc": os.environ.get("XLA_PYTHON_CLIENT_PREALLOCATE"),
                           "log": os.environ.get("TF_CPP_MIN_LOG_LEVEL"),
                           "jax_matmuls": jax.config.jax_default_matmul_precision,
                           "tf32": os.environ.get("NVIDIA_TF32_OVERRIDE")}}))
        """,
        KERAS_BACKEND=other,
    )
    assert report == {
        "chosen": backend,
        "keras": backend,
        "growth": "true",
        "prealloc": "false",
        "log": "2",
        "jax_matmuls": "highest",  # as JAX itself read it from the environment
        "tf32": "0",
    }


def test_gpu_memory_settings_the_user_made_win(restored_environ):
    for name in HIDDEN_ACCELERATORS:
        restored_environ.pop(name, None)
    restored_environ.pop(SERVER_MARKER, None)
    restored_environ["TF_FORCE_GPU_ALLOW_GROWTH"] = "false"
    restored_environ["XLA_PYTHON_CLIENT_PREALLOCATE"] = "true"
    restored_environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
    restored_environ["JAX_DEFAULT_MATMUL_PRECISION"] = "tensorfloat32"
    restored_environ["NVIDIA_TF32_OVERRIDE"] = "1"
    accelerators.prepare_process("auto", "gpu")
    assert restored_environ["JAX_DEFAULT_MATMUL_PRECISION"] == "tensorfloat32"
    assert restored_environ["NVIDIA_TF32_OVERRIDE"] == "1"
    assert restored_environ["TF_FORCE_GPU_ALLOW_GROWTH"] == "false"
    assert restored_environ["XLA_PYTHON_CLIENT_PREALLOCATE"] == "true"
    assert restored_environ["TF_CPP_MIN_LOG_LEVEL"] == "0"
    assert "CUDA_VISIBLE_DEVICES" not in restored_environ  # device gpu hides nothing


def test_prepare_process_refuses_a_backend_other_than_the_running_one(restored_environ):
    """In-process (`sgdplus train` called from Python that already runs Keras)."""
    import keras

    other = "tensorflow" if keras.backend.backend() == "jax" else "jax"
    restored_environ.pop("TF_FORCE_GPU_ALLOW_GROWTH", None)
    with pytest.raises(ValueError, match=f"`backend` {other} was chosen"):
        accelerators.prepare_process(other, "auto")
    assert "TF_FORCE_GPU_ALLOW_GROWTH" not in restored_environ  # refused before any change
    with pytest.raises(ValueError, match=r"`device` must be one of .*device='tpu'"):
        accelerators.prepare_process("auto", "tpu")


def spawn_and_report(backend: str, device: str) -> dict:
    """A fresh interpreter with this process's environment, as `jobs.start_training` starts
    a worker: it imports the worker's module (which must not load Keras), then does what the
    worker does first (`prepare_process`), and reports its environment."""
    code = f"""
        import json, os, sys
        import keras_sgdplus.lab.worker
        keras_before = "keras" in sys.modules
        from keras_sgdplus.lab import accelerators
        accelerators.prepare_process({backend!r}, {device!r})
        environ = {{name: os.environ.get(name) for name in {list(WATCHED)!r}}}
        print(json.dumps({{"environ": environ, "keras_before": keras_before}}))
        """
    result = subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        env=dict(os.environ),
        cwd=REPO,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_spawned_worker_sees_the_gpus_the_server_hid(restored_environ):
    """The real path: the server hides the GPUs from itself, spawns, the child restores."""
    restored_environ["CUDA_VISIBLE_DEVICES"] = "1,0"
    restored_environ.pop("JAX_PLATFORMS", None)
    restored_environ.pop(SERVER_MARKER, None)
    accelerators.keep_server_off_accelerators()
    assert restored_environ["CUDA_VISIBLE_DEVICES"] == "-1"  # the server itself: hidden

    report = spawn_and_report("auto", "auto")
    assert report["keras_before"] is False  # the spawn start-up does not load Keras early
    environ = report["environ"]
    assert environ["CUDA_VISIBLE_DEVICES"] == "1,0"
    assert environ["JAX_PLATFORMS"] is None
    assert environ[SERVER_MARKER] is None
    assert environ["KERAS_BACKEND"] == "jax"
    assert restored_environ["CUDA_VISIBLE_DEVICES"] == "-1"  # the server stays hidden

    cpu_report = spawn_and_report("tensorflow", "cpu")["environ"]
    assert cpu_report["CUDA_VISIBLE_DEVICES"] == "-1"
    assert cpu_report["JAX_PLATFORMS"] == "cpu"
    assert cpu_report["KERAS_BACKEND"] == "tensorflow"


def test_a_worker_refused_its_backend_reports_it_to_the_caller(tmp_path):
    """The worker sends prepare_process's ValueError back like a refused run."""
    from keras_sgdplus.lab.jobs import start_worker

    job = start_worker({"backend": "theano", "device": "auto"}, tmp_path)
    with pytest.raises(ValueError, match=r"`backend` must be one of .*backend='theano'"):
        job.run_id(timeout=120)
    assert job.wait(60) == 0
    assert list(tmp_path.iterdir()) == []  # no run was created


# ----------------------------------------------------------------------- available_devices


def test_available_devices_asks_children_and_imports_no_runtime_here():
    report = run_python(
        """
        import json, subprocess, sys
        from keras_sgdplus.lab import accelerators
        accelerators.keep_server_off_accelerators()  # as in the server
        devices = accelerators.available_devices()
        loaded = [m for m in ("keras", "tensorflow", "jax", "jaxlib") if m in sys.modules]
        def no_more_children(*args, **kwargs):
            raise AssertionError("asked again")
        subprocess.Popen = no_more_children
        again = accelerators.available_devices()  # kept for the life of the process
        print(json.dumps({"devices": devices, "again": again, "loaded": loaded}))
        """
    )
    assert report["devices"] == {"jax": ["cpu"], "tensorflow": ["cpu"]}  # no GPU here
    assert report["again"] == report["devices"]
    assert report["loaded"] == []


def test_a_probe_past_its_time_limit_counts_as_no_gpu():
    report = run_python(
        """
        import json, time
        from keras_sgdplus.lab import accelerators
        accelerators._PROBE = "import time; time.sleep(60)"  # a child that hangs
        accelerators.PROBE_TIMEOUT = 0.5
        start = time.monotonic()
        devices = accelerators.available_devices()
        print(json.dumps({"devices": devices, "seconds": time.monotonic() - start}))
        """
    )
    assert report["devices"] == {"jax": ["cpu"], "tensorflow": ["cpu"]}
    assert report["seconds"] < 10  # the children were killed, not waited for


def test_the_probe_sees_the_accelerators_the_user_gave_the_server():
    """The children get the original variables back: here a stand-in probe "sees a GPU"
    exactly when CUDA_VISIBLE_DEVICES is the user's, not the server's -1."""
    report = run_python(
        """
        import json
        from keras_sgdplus.lab import accelerators
        accelerators.keep_server_off_accelerators()
        accelerators._PROBE = (
            "import json, os; print(json.dumps({'gpus': int("
            "os.environ.get('CUDA_VISIBLE_DEVICES') == '2' "
            "and 'JAX_PLATFORMS' not in os.environ "
            "and os.environ.get('XLA_PYTHON_CLIENT_PREALLOCATE') == 'false')}))"
        )
        print(json.dumps({"devices": accelerators.available_devices()}))
        """,
        CUDA_VISIBLE_DEVICES="2",
    )
    assert report["devices"] == {"jax": ["cpu", "gpu"], "tensorflow": ["cpu", "gpu"]}


# ------------------------------------------------------------ environment / select_device

ON_BACKEND = """
import json
import keras
from keras_sgdplus.lab import accelerators
record = accelerators.environment("CPU")
refused = None
try:
    accelerators.select_device("gpu")
except ValueError as error:
    refused = str(error)
chosen = {}
for choice in ("auto", "cpu"):
    description, context = accelerators.select_device(choice)
    with context():
        value = float(keras.ops.convert_to_numpy(keras.ops.sum(keras.ops.ones((2, 3)))))
    chosen[choice] = [description, value]
print(json.dumps({"record": record, "refused": refused, "chosen": chosen}))
"""


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_environment_and_select_device_on_each_backend(backend):
    report = run_python(ON_BACKEND, KERAS_BACKEND=backend)
    record = report["record"]
    assert record["backend"] == backend
    assert {"python", "keras", "keras_sgdplus", "device", "host", "pid"} <= set(record)
    assert record["device"] == "CPU"
    if backend == "jax":
        import jax
        import jaxlib

        assert record["jax"] == jax.__version__
        assert record["jaxlib"] == jaxlib.__version__
        assert "tensorflow" not in record
        gpu_error = "`device` gpu was chosen, but JAX sees no GPU on this machine."
    else:
        assert (
            record["tensorflow"]
            == run_python(
                "import json, tensorflow as tf; print(json.dumps({'v': tf.__version__}))"
            )["v"]
        )
        assert "jax" not in record
        gpu_error = "`device` gpu was chosen, but TensorFlow sees no GPU on this machine."
    assert report["refused"] == gpu_error
    assert report["chosen"] == {"auto": ["CPU", 6.0], "cpu": ["CPU", 6.0]}


def test_select_device_refuses_an_unknown_device():
    with pytest.raises(ValueError, match=r"`device` must be one of .*device='tpu'"):
        accelerators.select_device("tpu")


# ------------------------------------------------------------------------------ sgdplus train


@pytest.mark.parametrize("backend", ["jax", "tensorflow"])
def test_sgdplus_train_trains_on_the_chosen_backend(tmp_path, backend):
    """The CLI sets the backend up before Keras loads (whatever KERAS_BACKEND said)."""
    from keras_sgdplus.lab.runs import RunStore

    other = "tensorflow" if backend == "jax" else "jax"
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("sgdplus")),
            "train",
            "--dataset",
            "iris",
            "--epochs",
            "1",
            "--backend",
            backend,
            "--device",
            "cpu",
            "--runs-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        env=child_environment(KERAS_BACKEND=other),
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-4000:]
    run_id = result.stdout.strip().splitlines()[-1]
    environment = RunStore(tmp_path).load_meta(run_id)["environment"]
    assert environment["backend"] == backend


def test_sgdplus_train_refuses_a_backend_keras_does_not_run_on(tmp_path, capsys):
    """In a process that already runs Keras: the CLI's one-line error and status 2."""
    import keras

    from keras_sgdplus.lab import cli

    running = keras.backend.backend()
    other = "tensorflow" if running == "jax" else "jax"
    status = cli.main(
        ["train", "--dataset", "iris", "--backend", other, "--runs-dir", str(tmp_path)]
    )
    assert status == 2
    assert capsys.readouterr().err == (
        f"sgdplus train: error: `backend` {other} was chosen, but Keras is already running on "
        f"{running} in this process.\n"
    )
    assert list(tmp_path.iterdir()) == []
