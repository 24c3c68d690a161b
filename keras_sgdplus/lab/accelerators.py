"""Which Keras backend a process trains on, and which accelerators it may touch.

The lab trains on JAX or TensorFlow (`backend`: auto, jax or tensorflow; auto is the
fastest installed, JAX before TensorFlow) and on the CPU or a GPU (`device`: auto, cpu or
gpu). Keras fixes its backend when it is first imported, and a GPU runtime takes its memory
when it first touches the GPU, so both are decided by environment variables set *before*
that, in the process that trains:

- `prepare_process` is called first thing in a training worker (`lab/jobs.py`) and in
  `sgdplus train`: it picks the backend (KERAS_BACKEND), hides GPUs for device "cpu", and
  otherwise makes the GPU runtimes grow their memory as needed instead of taking it all.
- `keep_server_off_accelerators` is called first thing in the dashboard's server
  (`dashboard/app.py`). The server uses Keras on the CPU only (schedule previews, the
  landscape page), but TensorFlow takes almost all GPU memory in the first process that
  touches a GPU, and JAX 75 % of it: a server that touched one would starve the workers.
  It hides the GPUs from the server and keeps the hidden variables' original values in
  SGDPLUS_SERVER_HID_ACCELERATORS, which the workers inherit and `prepare_process` undoes.
- `available_devices` asks a short-lived child process which backends are installed and
  whether each sees a GPU, so the asking process (the server) never initialises one.

`environment` and `select_device` describe and choose the device for the Keras backend that
the calling process runs on.

This module imports no Keras, TensorFlow or JAX when it is imported, and no Streamlit ever.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from typing import Any

__all__ = [
    "BACKENDS",
    "FULL_FLOAT32_MATMULS",
    "HIDDEN_ACCELERATORS",
    "PROBE_TIMEOUT",
    "SERVER_MARKER",
    "available_devices",
    "environment",
    "installed_backends",
    "keep_server_off_accelerators",
    "prepare_process",
    "resolve_backend",
    "select_device",
]

BACKENDS = ("jax", "tensorflow")  # the backends the lab trains on, fastest first
DEVICE_CHOICES = ("auto", "cpu", "gpu")
# What hides every GPU from a process: CUDA_VISIBLE_DEVICES for TensorFlow (and any CUDA
# library), JAX_PLATFORMS for JAX (it then never loads its CUDA plugin at all).
HIDDEN_ACCELERATORS = {"CUDA_VISIBLE_DEVICES": "-1", "JAX_PLATFORMS": "cpu"}
# The hidden variables' values before the server hid them, as JSON ({name: value or null}).
SERVER_MARKER = "SGDPLUS_SERVER_HID_ACCELERATORS"
# Full float32 precision for float32 matrix products on GPUs with TF32 (Ampere and later):
# JAX's default matmul precision (read from this variable when JAX loads), and NVIDIA's
# switch that keeps cuBLAS and cuDNN from using TF32 in any framework (TensorFlow included).
FULL_FLOAT32_MATMULS = {"JAX_DEFAULT_MATMUL_PRECISION": "highest", "NVIDIA_TF32_OVERRIDE": "0"}
PROBE_TIMEOUT = 60.0  # seconds for `available_devices`' child processes, all together

ContextFactory = Callable[[], contextlib.AbstractContextManager[Any]]


def installed_backends() -> tuple[str, ...]:
    """The lab's backends that are installed here, fastest first (nothing is imported)."""
    found = []
    for name in BACKENDS:
        try:
            if importlib.util.find_spec(name) is not None:
                found.append(name)
        except (ImportError, ValueError):  # a broken install, or a module without a spec
            continue
    return tuple(found)


def _keras_backend_now() -> str:
    """The backend of the Keras already imported in this process."""
    import keras

    return str(keras.backend.backend())


def resolve_backend(choice: str, *, fresh_process: bool = False) -> str:
    """The backend ("jax" or "tensorflow") that `choice` (auto, jax, tensorflow) means here.

    Keras fixes its backend on import: when Keras is already imported in this process, its
    backend is the answer for "auto", and another explicit choice is an error (the run
    would silently train on the wrong backend). Otherwise "auto" is the fastest installed
    backend, JAX before TensorFlow, and an explicit choice must be installed.

    `fresh_process=True` answers for a new process (a training worker) whatever this one
    has imported: the dashboard's server, which runs Keras for its previews, asks this way.

    Raises ValueError naming `backend` when the choice cannot be honoured.
    """
    if choice not in ("auto", *BACKENDS):
        raise ValueError(
            f"`backend` must be one of auto, {', '.join(BACKENDS)}. Received: backend={choice!r}"
        )
    if not fresh_process and "keras" in sys.modules:
        running = _keras_backend_now()
        if running not in BACKENDS:
            raise ValueError(
                f"Keras is already running on {running} in this process; the lab trains on "
                f"{' or '.join(BACKENDS)}. Received: backend={choice!r}"
            )
        if choice in ("auto", running):
            return running
        raise ValueError(
            f"`backend` {choice} was chosen, but Keras is already running on {running} "
            "in this process."
        )
    installed = installed_backends()
    if choice == "auto":
        if not installed:
            raise ValueError(
                "`backend` auto found neither jax nor tensorflow installed: "
                "pip install 'keras-sgdplus[jax]' (or [tensorflow])"
            )
        return installed[0]
    if choice not in installed:
        raise ValueError(
            f"`backend` {choice} was chosen, but {choice} is not installed: "
            f"pip install 'keras-sgdplus[{choice}]'"
        )
    return choice


def _originals_hidden_by_server(environ: Any) -> dict[str, str | None] | None:
    """The accelerator variables as they were before the server hid them (None: not hidden,
    or a marker that is not ours to trust)."""
    text = environ.get(SERVER_MARKER)
    if text is None:
        return None
    try:
        saved = json.loads(text)
    except json.JSONDecodeError:
        return None
    if not isinstance(saved, dict):
        return None
    return {
        name: value if isinstance(value, str) else None
        for name, value in saved.items()
        if name in HIDDEN_ACCELERATORS
    }


def _restore_hidden(environ: Any) -> None:
    """Undo `keep_server_off_accelerators` in `environ` (os.environ or a copy): each hidden
    variable gets its original value back, or is removed when it had none."""
    originals = _originals_hidden_by_server(environ)
    if originals is not None:
        for name, value in originals.items():
            if value is None:
                environ.pop(name, None)
            else:
                environ[name] = value
    environ.pop(SERVER_MARKER, None)


def keep_server_off_accelerators() -> None:
    """Hide every GPU from this process (the dashboard's server) for good.

    Call it before anything imports Keras, TensorFlow or JAX. The values the hidden
    variables had are saved once, in SGDPLUS_SERVER_HID_ACCELERATORS; a second call (each
    Streamlit rerun calls it) keeps the first save, since the environment then holds the
    hiding values. Child processes inherit both, and `prepare_process` in a training worker
    gives it the original values back, so the worker sees the GPUs the user gave the server.
    """
    if SERVER_MARKER not in os.environ:
        os.environ[SERVER_MARKER] = json.dumps(
            {name: os.environ.get(name) for name in HIDDEN_ACCELERATORS}
        )
    os.environ.update(HIDDEN_ACCELERATORS)


def prepare_process(backend_choice: str, device: str) -> str:
    """Set up this process to train on `backend_choice` and `device`; returns the backend.

    Call it before Keras is imported (a training worker, `sgdplus train`). It
    - resolves the backend (`resolve_backend`; ValueError naming `backend` if it cannot be
      had) and sets KERAS_BACKEND to it when Keras is not imported yet;
    - gives back the accelerator variables that the dashboard's server hid
      (`keep_server_off_accelerators`), as a worker inherits the server's environment;
    - device "cpu": hides every GPU (CUDA_VISIBLE_DEVICES=-1 for TensorFlow,
      JAX_PLATFORMS=cpu for JAX), so the run neither touches nor reserves one;
    - otherwise lets the GPU runtimes take memory as they need it rather than all up front,
      so a second worker, or the other backend, still finds some:
      TF_FORCE_GPU_ALLOW_GROWTH=true (TensorFlow maps nearly all GPU memory by default) and
      XLA_PYTHON_CLIENT_PREALLOCATE=false (JAX preallocates 75 % on its first operation),
      and asks for float32 matrix products in float32 (`FULL_FLOAT32_MATMULS`): on an
      NVIDIA GPU of the Ampere generation or later both runtimes otherwise multiply float32
      matrices in TF32 (10-bit mantissas), and a run on the GPU would differ from the same
      run on the CPU by about 1e-4 relative in its first losses (measured on an H100: the
      lab's steps against a NumPy float64 reference, where the CPU agrees to 2e-5). The
      lab's models are small enough that launches, not matrix products, bound their speed
      there.
      All of these are set whatever the backend, as Keras may load the other runtime too,
      and only when unset, so a user's own setting wins;
    - TF_CPP_MIN_LOG_LEVEL=2 unless set: TensorFlow's C++ info lines stay off stderr.

    Once Keras is imported the backend is fixed, and a device variable set here reaches only
    runtimes not yet started; `select_device` pins the CPU in that case.
    """
    if device not in DEVICE_CHOICES:
        raise ValueError(
            f"`device` must be one of {', '.join(DEVICE_CHOICES)}. Received: device={device!r}"
        )
    backend = resolve_backend(backend_choice)
    if "keras" not in sys.modules:
        os.environ["KERAS_BACKEND"] = backend
    _restore_hidden(os.environ)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if device == "cpu":
        os.environ.update(HIDDEN_ACCELERATORS)
    else:
        os.environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
        os.environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
        for name, value in FULL_FLOAT32_MATMULS.items():
            os.environ.setdefault(name, value)
    return backend


# Run in a child as `python -c _PROBE <backend>`: prints {"gpus": n} on its last line.
_PROBE = """
import json, sys
if sys.path and sys.path[0] == "":
    del sys.path[0]  # not a module of the current folder that happens to share the name
if sys.argv[1] == "tensorflow":
    import tensorflow as tf
    gpus = len(tf.config.list_physical_devices("GPU"))
else:
    import jax
    try:
        gpus = len(jax.devices("gpu"))
    except RuntimeError:  # no GPU platform: a CPU-only jaxlib, or no GPU found
        gpus = 0
print(json.dumps({"gpus": gpus}))
"""


def _probe_environment() -> dict[str, str]:
    """This process's environment as the user gave it: GPUs the server hid are visible
    again, and a probe does not reserve GPU memory it never uses."""
    environ = dict(os.environ)
    _restore_hidden(environ)
    environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    environ.setdefault("TF_FORCE_GPU_ALLOW_GROWTH", "true")
    environ.setdefault("XLA_PYTHON_CLIENT_PREALLOCATE", "false")
    return environ


def _gpu_count(stdout: str) -> int:
    lines = [line for line in stdout.splitlines() if line.strip()]
    try:
        report = json.loads(lines[-1])
        return int(report["gpus"])
    except (IndexError, ValueError, KeyError, TypeError):
        return 0


@functools.lru_cache(maxsize=1)
def _probe_all() -> tuple[tuple[str, tuple[str, ...]], ...]:
    """One child process per installed backend, in parallel, `PROBE_TIMEOUT` s in all."""
    environ = _probe_environment()
    children = {
        backend: subprocess.Popen(
            [sys.executable, "-c", _PROBE, backend],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            text=True,
            env=environ,
        )
        for backend in installed_backends()
    }
    deadline = time.monotonic() + PROBE_TIMEOUT
    found = []
    for backend, child in children.items():
        try:
            stdout, _ = child.communicate(timeout=max(deadline - time.monotonic(), 0.1))
        except subprocess.TimeoutExpired:
            child.kill()
            child.communicate()
            stdout = ""
        gpus = _gpu_count(stdout) if child.returncode == 0 else 0
        found.append((backend, ("cpu", "gpu") if gpus else ("cpu",)))
    return tuple(found)


def available_devices() -> dict[str, tuple[str, ...]]:
    """The installed backends and the devices each can train on here:
    `{"jax": ("cpu", "gpu"), "tensorflow": ("cpu",)}`; a backend not installed is absent.

    Asked of a child process per backend, with the accelerator variables as the user set
    them (not as `keep_server_off_accelerators` left them), so that the calling process
    never initialises a GPU, which would take its memory for as long as it runs. The answer
    is kept for the life of this process (a child costs seconds: it imports the backend). A
    child that fails or takes longer than `PROBE_TIMEOUT` s counts as seeing no GPU.
    """
    return dict(_probe_all())


def worker_sees_gpu(backend: str = "auto") -> bool:
    """Whether a training worker on `backend` (auto, jax, tensorflow) would see a GPU.

    Asked of child processes (`available_devices`, once per process): the caller itself
    never starts a GPU runtime. `backend` is resolved as a fresh worker resolves it,
    whatever Keras the caller runs (the dashboard's server, for its previews).
    """
    try:
        resolved = resolve_backend(backend, fresh_process=True)
    except ValueError:
        return False
    return "gpu" in available_devices().get(resolved, ())


def environment(device: str) -> dict[str, Any]:
    """What a run trained with, for its `meta.json`: Python, Keras, keras-sgdplus, the Keras
    backend and that backend's own version under its name ("tensorflow", or "jax" and
    "jaxlib"), the device description, the host and this process's id (`jobs.request_stop`
    signals it)."""
    import keras

    import keras_sgdplus

    backend = str(keras.backend.backend())
    record: dict[str, Any] = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "keras_sgdplus": keras_sgdplus.__version__,
        "backend": backend,
    }
    try:
        record[backend] = str(importlib.import_module(backend).__version__)
    except (ImportError, AttributeError):
        record[backend] = None
    if backend == "jax":
        try:
            import jaxlib

            record["jaxlib"] = str(jaxlib.__version__)
        except (ImportError, AttributeError):
            record["jaxlib"] = None
    record.update(device=device, host=platform.node(), pid=os.getpid())
    return record


def select_device(choice: str) -> tuple[str, ContextFactory]:
    """A description of the device for `choice` (auto, cpu, gpu) on the Keras backend of
    this process, and a factory of the context that model building and `fit` run in.

    TensorFlow: one GPU or the CPU with TensorFlow's default placement (a `tf.device` pin
    for "cpu" when a GPU is present); more than one GPU: `tf.distribute.MirroredStrategy`
    over all of them. JAX: the first GPU (with more, the description says that only the
    first trains: the lab does not shard over JAX devices), else the CPU; for "cpu" with a
    GPU present, `jax.default_device` pins the CPU. "gpu" with no GPU: ValueError.
    """
    if choice not in DEVICE_CHOICES:
        raise ValueError(
            f"`device` must be one of {', '.join(DEVICE_CHOICES)}. Received: device={choice!r}"
        )
    backend = _keras_backend_now()
    if backend == "tensorflow":
        return _select_tensorflow_device(choice)
    if backend == "jax":
        return _select_jax_device(choice)
    raise ValueError(
        f"Keras is running on {backend}; the lab trains on {' or '.join(BACKENDS)}. "
        f"Received: device={choice!r}"
    )


def _select_tensorflow_device(choice: str) -> tuple[str, ContextFactory]:
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


def _jax_gpus() -> list[Any]:
    import jax

    try:
        return list(jax.devices("gpu"))
    except RuntimeError:  # no GPU platform in this process (CPU jaxlib, JAX_PLATFORMS=cpu)
        return []


def _select_jax_device(choice: str) -> tuple[str, ContextFactory]:
    import jax

    gpus = _jax_gpus()
    if choice == "gpu" and not gpus:
        raise ValueError("`device` gpu was chosen, but JAX sees no GPU on this machine.")
    if choice == "cpu" or not gpus:
        if gpus:
            cpu = jax.devices("cpu")[0]
            return "CPU", lambda: jax.default_device(cpu)
        return "CPU", contextlib.nullcontext
    first = gpus[0]
    if len(gpus) > 1:
        description = f"{first} (the first of {len(gpus)} GPUs: a JAX run trains on one)"
        return description, lambda: jax.default_device(first)
    return str(first), contextlib.nullcontext
