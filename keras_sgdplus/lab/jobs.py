"""Training in a worker process: start it, learn its run id, stop it, wait for it.

The worker (`lab.worker`) is a fresh interpreter in its own session
(`start_new_session`): no backend trains in the caller (the dashboard's server), a crash in
it cannot take the caller down, GPU memory is returned when it exits, and it outlives its
caller: Ctrl-C on the server's terminal does not reach it, and the server's shutdown does
not wait for it (a restarted dashboard finds the run live in the store). Any process can
stop any running run of a store with `request_stop` (a request file the worker polls, and
SIGTERM on the worker's own host): the worker ends after the current chunk of steps and
marks the run `stopped`.

Given `side_by_side`, the worker waits for its run's turn in its device's queue
(`run_queue`: at most that many runs of the queue train at once): the run is `queued`
meanwhile, and a stop request takes it out of the queue.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import platform
import select
import signal
import subprocess
import sys
from pathlib import Path
from typing import IO

from keras_sgdplus.lab import accelerators, run_queue
from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.runs import LIVE_STATUSES, RunStore


@dataclasses.dataclass(frozen=True)
class Queue:
    """Where a run waits for its turn: the "cpu" or "gpu" queue (`run_queue.queue_of`),
    and how many runs of that queue may train at once."""

    queue: str
    side_by_side: int = 1

    def __post_init__(self) -> None:
        run_queue.check_queue(self.queue)
        run_queue.check_side_by_side(self.side_by_side)


class TrainingJob:
    """A training run in a worker process."""

    def __init__(self, process: subprocess.Popen, handshake: IO[bytes]) -> None:
        self.process = process
        self._handshake = handshake
        self._run_id: str | None = None

    def run_id(self, timeout: float = 120.0) -> str:
        """The id of the run the worker created; ValueError with its message if it could not
        create one (no GPU for device "gpu", a name the run store refuses)."""
        if self._run_id is None:
            ready, _, _ = select.select([self._handshake], [], [], timeout)
            if not ready:
                raise TimeoutError(f"The training worker gave no run id within {timeout:g} s.")
            line = self._handshake.readline().decode("utf-8").rstrip("\n")
            self._handshake.close()
            kind, _, value = line.partition(" ")
            if kind == "error":
                raise ValueError(value)
            if kind != "run_id":
                code = self.process.wait(5)
                raise RuntimeError(
                    f"The training worker exited (code {code}) before starting a run."
                )
            self._run_id = value
        return self._run_id

    def stop(self) -> None:
        """Asks the worker to stop after the current chunk of steps."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def wait(self, timeout: float | None = None) -> int | None:
        """Waits for the worker to exit; returns its exit code (None if still running)."""
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout)
        return self.process.returncode

    @property
    def alive(self) -> bool:
        return self.process.poll() is None


def queue_for(config: TrainingConfig, side_by_side: int, backend: str | None = None) -> Queue:
    """The queue a run of `config` waits in (its device's, `run_queue.queue_of`; for device
    "auto", "gpu" when a worker on `backend`, else the config's, sees one)."""
    gpu_here = config.device == "auto" and accelerators.worker_sees_gpu(backend or config.backend)
    return Queue(run_queue.queue_of(config.device, gpu_here), side_by_side)


def start_training(
    config: TrainingConfig, runs_dir: str | os.PathLike, side_by_side: int | None = None
) -> TrainingJob:
    """Starts a worker that trains `config` (parsed where it entered) into `runs_dir`: at
    once, or with `side_by_side`, when its turn comes in its queue (`queue_for`).

    The worker gets the config as JSON (`to_dict`) on its stdin and turns it back with
    `from_dict`; it answers through a pipe of its own (its stdout goes nowhere, its
    stderr is the caller's).
    """
    queue = None if side_by_side is None else queue_for(config, side_by_side)
    return start_worker(config.to_dict(), runs_dir, queue=queue)


def resume_settings(
    store: RunStore, run_id: str, epochs: int | None = None
) -> tuple[TrainingConfig, str]:
    """The config a resumed run goes on with (its own, up to `epochs` epochs in all when
    given) and the backend it trained on, which it resumes on. ValueError when the run is
    still training or `epochs` is not a positive integer."""
    meta = store.load_meta(run_id)  # a killed run reads as interrupted from here on
    if meta["status"] in LIVE_STATUSES:
        raise ValueError(f"run {run_id} is still training")
    config = TrainingConfig.from_dict(meta["config"])
    if epochs is not None:
        config = dataclasses.replace(config, epochs=epochs)
    return config, (meta.get("environment") or {}).get("backend") or config.backend


def resume_training(
    store: RunStore, run_id: str, epochs: int | None = None, side_by_side: int | None = None
) -> TrainingJob:
    """Starts a worker that continues run `run_id` from its checkpoint, like `sgdplus
    resume` (`resume_settings`): at once, or with `side_by_side`, when its turn comes."""
    config, backend = resume_settings(store, run_id, epochs)
    queue = None if side_by_side is None else queue_for(config, side_by_side, backend)
    return start_worker(config.to_dict(), store.root, resume=run_id, backend=backend, queue=queue)


def start_worker(
    config_dict: dict,
    runs_dir: str | os.PathLike,
    resume: str | None = None,
    backend: str | None = None,
    queue: Queue | None = None,
) -> TrainingJob:
    """Starts `python -m keras_sgdplus.lab.worker` on a config given as plain data (what
    `start_training` sends; a test may send one the worker must refuse); `resume`: the run
    it continues, on `backend` (the one it trained on); `queue`: where it waits its turn."""
    payload = {
        "config": config_dict,
        "resume": resume,
        "backend": backend,
        "queue": dataclasses.asdict(queue) if queue else None,
    }
    process, handshake = spawn_worker("keras_sgdplus.lab.worker", [Path(runs_dir)], payload)
    return TrainingJob(process, handshake)


def spawn_worker(
    module: str, arguments: list[str | os.PathLike], payload: dict
) -> tuple[subprocess.Popen, IO[bytes]]:
    """Starts `python -m <module> HANDSHAKE_FD <arguments>` in a session of its own (see the
    module docstring), `payload` as JSON on its stdin, its stdout going nowhere and its
    stderr the caller's; returns the process and the read end of its handshake pipe, on
    which the worker writes one line. A path among `arguments` is passed resolved."""
    read_fd, write_fd = os.pipe()
    command = [sys.executable, "-m", module, str(write_fd)]
    command += [str(Path(a).resolve()) if isinstance(a, Path) else str(a) for a in arguments]
    try:
        process = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL,
            pass_fds=(write_fd,),
            start_new_session=True,
        )
    except BaseException:
        os.close(read_fd)
        raise
    finally:
        os.close(write_fd)
    assert process.stdin is not None
    with process.stdin:
        process.stdin.write(json.dumps(payload).encode("utf-8"))
    return process, os.fdopen(read_fd, "rb")


def read_handshake(handshake: IO[bytes], timeout: float) -> tuple[str, str]:
    """The worker's one line, as (kind, message): ("", "") when none came within `timeout`
    seconds or the worker ended first."""
    with handshake:
        ready, _, _ = select.select([handshake], [], [], timeout)
        line = handshake.readline().decode("utf-8").rstrip("\n") if ready else ""
    kind, _, message = line.partition(" ")
    return kind, message


def await_start(
    process: subprocess.Popen, handshake: IO[bytes], expected: str, timeout: float, what: str
) -> str:
    """The message of the worker's `expected` answer (`read_handshake`): ValueError with
    its message when it refused (an "error" line), RuntimeError naming `what` (e.g. "the
    landscape worker") when it exited or said nothing within `timeout` seconds."""
    kind, message = read_handshake(handshake, timeout)
    if kind == "error":
        raise ValueError(message)
    if kind != expected:
        process.poll()
        raise RuntimeError(
            f"{what.capitalize()} did not start within {timeout:g} s."
            if process.returncode is None
            else f"{what.capitalize()} exited (code {process.returncode}) before it started."
        )
    return message


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


def start_landscape(
    runs_dir: str | os.PathLike,
    run_id: str,
    options: dict,
    backend: str = "auto",
    timeout: float = 120.0,
) -> subprocess.Popen:
    """Starts `python -m keras_sgdplus.lab.landscape_worker` to compute and store the
    landscape of run `run_id` (`run_landscape.LandscapeOptions` as a dict); returns once the
    worker holds the run's landscape lock and has stored its first progress
    (`RunStore.landscape_progress`), so a page that polls it next sees it computing.
    ValueError with the worker's message when it refuses (bad options, the same landscape
    computed already); the worker is a process of its own session, as a training worker."""
    arguments: list[str | os.PathLike] = [Path(runs_dir), run_id]
    payload = {"options": options, "backend": backend}
    process, handshake = spawn_worker("keras_sgdplus.lab.landscape_worker", arguments, payload)
    await_start(process, handshake, "started", timeout, "the landscape worker")
    return process
