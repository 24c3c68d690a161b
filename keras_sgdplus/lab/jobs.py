"""Training in a worker process: start it, learn its run id, stop it, wait for it.

The worker is a fresh interpreter (the `spawn` start method), so no backend trains in the
caller (the dashboard's server), a crash in it cannot take the caller down, and GPU
memory is returned when it exits. Any process can stop any running run of a store with
`request_stop` (a request file the worker polls, and SIGTERM on the worker's own host): the
worker ends after the current chunk of steps and marks the run `stopped`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import platform
import signal
import sys
import types
from collections.abc import Iterator
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import RunStore


class TrainingJob:
    """A training run in a worker process."""

    def __init__(self, process: multiprocessing.process.BaseProcess, connection: Connection):
        self.process = process
        self._connection = connection
        self._run_id: str | None = None

    def run_id(self, timeout: float = 120.0) -> str:
        """The id of the run the worker created; ValueError with its message if it could not
        create one (no GPU for device "gpu", a name the run store refuses)."""
        if self._run_id is None:
            if not self._connection.poll(timeout):
                raise TimeoutError(f"The training worker gave no run id within {timeout:g} s.")
            try:
                kind, value = self._connection.recv()
            except EOFError:
                self.process.join(5)
                raise RuntimeError(
                    f"The training worker exited (code {self.process.exitcode}) before "
                    "starting a run."
                ) from None
            if kind == "error":
                raise ValueError(value)
            self._run_id = value
        return self._run_id

    def stop(self) -> None:
        """Asks the worker to stop after the current chunk of steps."""
        if self.process.is_alive() and self.process.pid:
            os.kill(self.process.pid, signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for the worker to exit; returns its exit code (None if still running)."""
        self.process.join(timeout)
        return self.process.exitcode

    @property
    def alive(self) -> bool:
        return self.process.is_alive()


def start_training(config: TrainingConfig, runs_dir: str | os.PathLike) -> TrainingJob:
    """Starts a worker that trains `config` (parsed where it entered) into `runs_dir`.

    The worker gets the config as plain data (`to_dict`) and turns it back with `from_dict`.
    """
    config_dict = config.to_dict()
    context = multiprocessing.get_context("spawn")
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(
        target=_worker_main,
        args=(config_dict, str(Path(runs_dir).resolve()), sender),
        name="sgdplus-training",
        daemon=False,
    )
    with _without_main_module():
        process.start()
    sender.close()
    return TrainingJob(process, receiver)


@contextlib.contextmanager
def _without_main_module() -> Iterator[None]:
    """While a worker is spawned, an empty `__main__`: `spawn` runs the parent's main
    module again in the child before the target, and under Streamlit that module is the
    app's script (Streamlit installs it as `__main__`), whose imports would load Keras
    before the worker has chosen its backend and devices. The worker needs nothing from
    `__main__` (its target lives in this module, its config is plain data)."""
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")  # no __file__, no __spec__
    try:
        yield
    finally:
        if main is not None:
            sys.modules["__main__"] = main


def _worker_main(config_dict: dict[str, Any], runs_dir: str, connection: Connection) -> None:
    """The worker: choose the Keras backend and the device before Keras loads, then train.

    `prepare_process` must run before anything imports Keras (it fixes its backend on
    import) or a GPU runtime; it also gives back the GPUs that the dashboard's server hid
    from itself, and so from this child. A backend that cannot be had, like a run the store
    refuses, reaches the caller as a ValueError from `TrainingJob.run_id`.
    """
    from keras_sgdplus.lab.accelerators import prepare_process

    try:
        prepare_process(config_dict.get("backend", "auto"), config_dict.get("device", "auto"))
        from keras_sgdplus.lab.training import StopSignal, run_training

        stop = StopSignal()
        stop.install()
        run_training(
            TrainingConfig.from_dict(config_dict),
            RunStore(runs_dir),
            stop,
            on_created=lambda run_id: connection.send(("run_id", run_id)),
        )
    except ValueError as error:  # refused before the run exists (see TrainingJob.run_id)
        connection.send(("error", str(error)))
    finally:
        connection.close()


def request_stop(store: RunStore, run_id: str) -> bool:
    """Asks the worker of a running run to stop after its current chunk of steps; False if
    none is training it.

    The request is a file in the run's folder that the worker polls
    (`RunStore.request_stop`), so it reaches a worker on any host that shares the runs
    folder. When the worker runs on this host, it is also sent SIGTERM. The run must be
    held by a live writer (its lock), so a stale pid of a killed worker, perhaps reused by
    another process since, is never signalled.
    """
    if not store.request_stop(run_id):
        return False
    environment = store.load_meta(run_id).get("environment") or {}
    pid = environment.get("pid")
    if environment.get("host") == platform.node() and isinstance(pid, int):
        with contextlib.suppress(ProcessLookupError, PermissionError):
            os.kill(pid, signal.SIGTERM)
    return True
