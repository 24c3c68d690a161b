"""Running a sweep: every run of its grid as one task of Dask distributed, here or on a cluster.

One code path for both places:
- **this machine** (`cluster=None`): the sweep starts its own `distributed.LocalCluster` of
  `workers` processes (default: the machine's cores), one thread each, and closes it at the
  end; nothing to start beforehand.
- **a cluster** (`cluster="tcp://host:8786"`): `distributed.Client(cluster)` on a scheduler
  someone started (`dask scheduler`, `dask worker ADDRESS` on each machine). The runs folder
  must be the same path on every machine (a shared file system); on one host it simply is.

Each run is one Dask task (`train_run`) that trains **in the Dask worker process** with
`training.run_training`, writing into the runs folder as any run does: the runs of a sweep
are ordinary runs (live in Train and Compare, stoppable, resumable), tagged with the sweep's
id and name in their configs. The worker processes live for the whole sweep, so a run costs
its training and compilation, not a new interpreter (about 5 s of imports here).

What keeps a run the same wherever it runs: the Keras backend is chosen before Keras is
first imported in a worker (`accelerators.prepare_process`; a worker that already has
another backend loaded refuses the run with a ValueError naming it), the Keras session is
cleared before each run, `run_training` seeds Keras, Python and NumPy from the run's seed,
and Keras draws its default seeds from a generator of the run's own
(`_keras_default_seeds`): a run trained in a reused worker gives the same losses as one in
a fresh process.

Stop (`request_stop`): a file beside the sweep's record (`SweepStore.request_stop`) that
the coordinator polls, cancelling the tasks not yet started (their runs are never
created), and that every run of the sweep polls after each chunk of steps, as it polls its
own stop file (so a run stops within a chunk, on any host that shares the folder); each
live run is also sent its own stop request (`RunStore.request_stop`). The sweep then ends
`stopped`. A SIGTERM or SIGINT that reaches a Dask worker while it trains a run (Stop on
the Train page or `sgdplus stop` on this host signals the run's process; Ctrl-C on `sgdplus
sweep` reaches its local workers) stops that run instead of killing the worker
(`install_stop_on_signals`).

Nothing here imports Keras, TensorFlow, JAX or Dask when it is imported: the dashboard's
server imports this module (the Sweep page) and only starts coordinators (`start_sweep`).
"""

from __future__ import annotations

import contextlib
import importlib.util
import json
import logging
import os
import signal
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore, expand, validate_sweep_id

__all__ = ["delete_sweep", "request_stop", "run_sweep", "start_sweep", "train_run"]

#: How often the coordinator looks at the sweep's stop request while runs train, in seconds.
POLL_SECONDS = 0.25
#: How long a stopped sweep waits for its running runs to end their chunk and let go.
STOP_WAIT_SECONDS = 120.0
PLUGIN_NAME = "keras-sgdplus-stop-on-signals"
#: How long `start_sweep` waits for the coordinator to create the sweep's record.
START_TIMEOUT = 120.0


def _check_workers(workers: Any) -> int | None:
    if workers is None:
        return None
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(
            f"`workers` must be a positive integer (or None: the machine's cores). "
            f"Received: workers={workers!r}"
        )
    return workers


def _check_cluster(cluster: Any) -> str | None:
    if cluster is None:
        return None
    if not isinstance(cluster, str) or not cluster.strip() or any(c.isspace() for c in cluster):
        raise ValueError(
            "`cluster` must be a Dask scheduler's address like tcp://10.0.0.5:8786. "
            f"Received: cluster={cluster!r}"
        )
    return cluster.strip()


# --- the task: one run, in a Dask worker ---------------------------------------------------------

_TRAINING: list[Any] = []  # the StopSignal of the run this process trains now, if any


#: The signals that stop the run a Dask worker trains instead of ending the worker.
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT)


def _stopping(signum: int, previous: Any) -> Callable[[int, Any], None]:
    """A handler of `signum`: stops the run this process trains, if any; otherwise does
    what `previous` (the handler it replaces) did."""

    def handle(received: int, frame: Any) -> None:
        if _TRAINING:
            _TRAINING[-1].request()
        elif callable(previous):
            previous(received, frame)
        elif previous != signal.SIG_IGN:
            signal.signal(signum, signal.SIG_DFL)
            os.kill(os.getpid(), signum)

    handle.stops_runs = True  # type: ignore[attr-defined]
    return handle


def install_stop_on_signals() -> None:
    """In a Dask worker (its main thread: the event loop's): SIGTERM or SIGINT while a run
    of a sweep trains stops that run after its current chunk of steps, and the worker lives
    on; with no run training, the signal does what it did before. `jobs.request_stop` (Stop
    on the Train page, `sgdplus stop`) signals a run's process on its host, a run of a
    sweep runs in a Dask worker, and Ctrl-C on `sgdplus sweep` reaches its local workers
    too (one process group): the run ends `stopped`, not killed with its worker."""
    if threading.current_thread() is not threading.main_thread():
        return  # signals can be handled on the main thread only
    for signum in STOP_SIGNALS:
        previous = signal.getsignal(signum)
        if not getattr(previous, "stops_runs", False):  # once per process
            signal.signal(signum, _stopping(signum, previous))


def _stop_on_signals_plugin() -> Any:
    """A Dask worker plugin that runs `install_stop_on_signals` in every worker, those that
    join later included (a class made here, so that importing this module needs no Dask)."""
    from distributed import WorkerPlugin

    class StopOnSignals(WorkerPlugin):
        def setup(self, worker: Any) -> None:
            from keras_sgdplus.lab.sweep_runner import install_stop_on_signals

            install_stop_on_signals()

    return StopOnSignals()


def train_run(config_dict: dict, runs_dir: str, sweep_id: str, backend: str) -> dict[str, Any]:
    """The Dask task of one run: trains `config_dict` on `backend` into `runs_dir` in this
    process; returns {"run_id", "status"} (run_id None, status "skipped" when the sweep was
    stopped before the run began: no run is created)."""
    from keras_sgdplus.lab.accelerators import prepare_process

    sweeps = SweepStore(runs_dir)
    if sweeps.stop_requested(sweep_id):
        return {"run_id": None, "status": "skipped"}
    # KERAS_BACKEND before the first import of Keras in this worker; a worker that already
    # runs Keras on another backend raises a ValueError naming `backend` here.
    prepare_process(backend, config_dict.get("device", "auto"))
    if backend == "jax":
        share_compiled_programs()
    import keras

    from keras_sgdplus.lab.config import TrainingConfig
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.stop_signal import StopSignal
    from keras_sgdplus.lab.training import run_training

    if keras.backend.backend() != backend:
        raise ValueError(
            f"this Dask worker runs Keras on {keras.backend.backend()}; the sweep's runs "
            f"train on {backend}. Received: backend={backend!r}"
        )
    keras.utils.clear_session()  # the previous run's model, names and seed state go
    config, store = TrainingConfig.from_dict(config_dict), RunStore(runs_dir)
    stop = StopSignal()
    stop.watch(lambda: sweeps.stop_requested(sweep_id))
    _TRAINING.append(stop)
    try:
        with _keras_default_seeds(config.seed):
            run_id = run_training(config, store, stop)
    finally:
        _TRAINING.remove(stop)
    return {"run_id": run_id, "status": store.load_meta(run_id)["status"]}


def jax_cache_dir() -> str | None:
    """Where a sweep's JAX workers keep compiled programs: $SGDPLUS_JAX_CACHE_DIR ("off":
    nowhere), else a folder of this user in the machine's temporary folder (compiled
    code is for this machine's CPU or GPU, so it is not kept in a folder shared between
    machines)."""
    chosen = os.environ.get("SGDPLUS_JAX_CACHE_DIR")
    if chosen == "off":
        return None
    if chosen:
        return chosen
    return str(Path(tempfile.gettempdir()) / f"keras-sgdplus-jax-cache-{os.getuid()}")


def share_compiled_programs() -> None:
    """JAX's persistent compilation cache (`jax_cache_dir`), every program kept, at most
    1 GiB (see below): compiling a run's programs is most of a short run (3.5 of 4 s for 5 epochs of
    digits on a 2-core CPU), and the runs of a sweep compile the same programs (a learning
    rate is a variable of the optimizer; the shapes and the other settings are mostly
    shared), so a worker loads what it or another worker compiled before. The same
    program gives the same executable, so the losses do not change (tests compare a
    sweep's runs with fresh processes that compile their own). A cache the user set up
    (JAX_COMPILATION_CACHE_DIR, or jax.config) is left as it is. JAX bounds the folder
    (least recently used entries go) only with the `filelock` package installed; without
    it, the folder grows by each new program (under 1 MB for a digits run), and may be
    deleted at any time."""
    import jax

    folder = jax_cache_dir()
    if folder is None or os.environ.get("JAX_COMPILATION_CACHE_DIR"):
        return
    if jax.config.jax_compilation_cache_dir is None:  # type: ignore[attr-defined]
        jax.config.update("jax_compilation_cache_dir", folder)
        jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
        if importlib.util.find_spec("filelock") is not None:  # JAX's bound needs it
            jax.config.update("jax_compilation_cache_max_size", 2**30)


@contextlib.contextmanager
def _keras_default_seeds(seed: int) -> Iterator[None]:
    """Keras draws the seed of every unseeded initializer from Python's global `random`
    (`keras.src.random.seed_generator.make_default_seed`), which `run_training` seeds with
    the run's seed. In a Dask worker, the event loop's thread draws from that same global
    generator meanwhile (`distributed.protocol.compression` samples the messages it may
    compress, retries add jitter), so a run's initial weights would depend on the worker's
    traffic. Keras draws from a `random.Random(seed)` of the run's own here instead: the
    state `random.seed(seed)` gives the global one, so the weights are those of the same
    run in a fresh process (tests/lab/test_sweep_runner.py checks it loss for loss)."""
    import random

    from keras.src.random import seed_generator

    seed_generator.python_random = random.Random(seed)  # type: ignore[assignment]
    try:
        yield
    finally:
        seed_generator.python_random = random


# --- the coordinator ------------------------------------------------------------------------------


def run_sweep(
    spec: SweepSpec,
    runs_dir: str | os.PathLike,
    *,
    cluster: str | None = None,
    workers: int | None = None,
    sweep_id: str | None = None,
    on_run_done: Callable[[str, str], None] | None = None,
    on_created: Callable[[str], None] | None = None,
) -> str:
    """Runs every config of `spec` (`sweeps.expand`) and returns the sweep's id; blocks.

    Creates the sweep's record (`SweepStore.create`, where "local" or `cluster`) unless
    `sweep_id` names one made already. `cluster`: a Dask scheduler's address (its workers
    must see `runs_dir` at the same path); None: a LocalCluster of `workers` processes
    (default `os.cpu_count()`, at most one per run), one thread each. `on_run_done(run_id,
    status)` is called as each run ends. The record ends `completed`, `stopped` (a stop was
    requested: `request_stop`, or Ctrl-C here) or `failed` with the error (a task that
    raised, or a scheduler that cannot be reached); a run that fails or diverges is that
    run's status, not the sweep's. `on_created(sweep_id)` is called once the record exists
    (the coordinator process answers `start_sweep` with it).
    """
    from keras_sgdplus.lab.accelerators import resolve_backend

    if not isinstance(spec, SweepSpec):
        raise ValueError(f"`spec` must be a SweepSpec. Received: spec={spec!r}")
    cluster, workers = _check_cluster(cluster), _check_workers(workers)
    runs_dir = Path(runs_dir).resolve()
    # The backend a worker loads: "auto" as a fresh process here resolves it (JAX, else
    # TensorFlow), so every run of the sweep trains on the same one.
    backend = resolve_backend(spec.base.backend, fresh_process=True)
    expand(spec)  # every run's config is checked before the sweep exists
    store = SweepStore(runs_dir)
    if sweep_id is None:
        sweep_id = store.create(spec, where=cluster or "local", hold=True)
    else:
        store.load(validate_sweep_id(sweep_id))
        store.hold(sweep_id)
    try:
        if on_created is not None:
            on_created(sweep_id)
        with _stop_on_signals_here(store, sweep_id):
            status, error = _coordinate(
                spec, runs_dir, store, sweep_id, cluster, workers, backend, on_run_done
            )
        store.update(sweep_id, status=status, error=error)
    except BaseException as exception:
        with contextlib.suppress(Exception):
            store.update(
                sweep_id, status="failed", error=f"{type(exception).__name__}: {exception}"
            )
        raise
    finally:
        store.release(sweep_id)
    return sweep_id


@contextlib.contextmanager
def _stop_on_signals_here(store: SweepStore, sweep_id: str) -> Iterator[None]:
    """While the coordinator runs in the main thread, SIGINT (Ctrl-C on `sgdplus sweep`)
    and SIGTERM request the sweep's stop (`SweepStore.request_stop`), which its loop polls:
    a KeyboardInterrupt raised inside Dask's client calls would not reach it. The previous
    handlers come back afterwards."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {signum: signal.getsignal(signum) for signum in STOP_SIGNALS}

    def stop(*_: Any) -> None:
        store.request_stop(sweep_id)

    for signum in STOP_SIGNALS:
        signal.signal(signum, stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _start_client(cluster: str | None, workers: int, backend: str) -> tuple[Any, Any]:
    """A Dask client on `cluster`, or on a new LocalCluster of `workers` processes whose
    environment chooses `backend` before anything imports Keras there."""
    from distributed import Client, LocalCluster

    if cluster is not None:
        try:
            return Client(cluster, timeout="30s"), None
        except (OSError, TimeoutError) as error:
            raise ValueError(
                f"no Dask scheduler answered at {cluster}: {error}. Received: cluster={cluster!r}"
            ) from None
    environment = {"KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "2"}
    # set before the worker processes are spawned, not only once they run: a spawned
    # process first re-imports this process's main module (a user's script that imports
    # Keras, a page script Streamlit's AppTest left as __main__), which would load Keras
    # on the backend this process's environment names
    with _environ_while_spawning(environment):
        local = LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            silence_logs=logging.ERROR,
            env=environment,
        )
    return Client(local), local


@contextlib.contextmanager
def _environ_while_spawning(environment: dict[str, str]) -> Iterator[None]:
    """`environment` in this process's environment while Dask's Nanny spawns the worker
    processes (its pre-spawn environment: Dask gives an existing variable precedence over
    its config, so both are set), and this process's own values put back after."""
    import dask

    before = {name: os.environ.get(name) for name in environment}
    os.environ.update(environment)
    try:
        with dask.config.set({"distributed.nanny.pre-spawn-environ": environment}):
            yield
    finally:
        for name, value in before.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def _coordinate(
    spec: SweepSpec,
    runs_dir: Path,
    store: SweepStore,
    sweep_id: str,
    cluster: str | None,
    workers: int | None,
    backend: str,
    on_run_done: Callable[[str, str], None] | None,
) -> tuple[str, str | None]:
    """Submits the runs and waits for them; returns the sweep's final (status, error)."""
    from distributed import wait

    configs = expand(spec, sweep_id)
    count = min(workers or os.cpu_count() or 1, len(configs))
    client, local = _start_client(cluster, count, backend)
    errors: list[str] = []
    reported: set[str] = set()
    try:
        client.register_plugin(_stop_on_signals_plugin(), name=PLUGIN_NAME)
        futures = [
            client.submit(
                train_run,
                configs[index].to_dict(),
                str(runs_dir),
                sweep_id,
                backend,
                key=f"{sweep_id}-run-{index:04d}",
                pure=False,
                retries=0,
            )
            for index in submission_order(configs)  # Dask starts tasks first come, first served
        ]
        pending = set(futures)
        while pending:
            try:
                done, pending = wait(pending, timeout=POLL_SECONDS, return_when="FIRST_COMPLETED")
            except TimeoutError:
                done = set()
            for future in done:
                if future.status == "error":
                    error = future.exception()
                    errors.append(f"{type(error).__name__}: {error}")
                    continue
                if future.status != "finished":
                    continue
                result = future.result()
                if result["run_id"] is not None:
                    reported.add(result["run_id"])
                    if on_run_done is not None:
                        on_run_done(result["run_id"], result["status"])
            if pending and store.stop_requested(sweep_id):
                client.cancel(list(pending))  # the tasks not started never create a run
                pending = set()
        if store.stop_requested(sweep_id):
            _stop_live_runs(runs_dir, sweep_id, wait_s=STOP_WAIT_SECONDS)
            _report_the_others(runs_dir, sweep_id, reported, on_run_done)
    finally:
        with contextlib.suppress(Exception):
            client.unregister_worker_plugin(PLUGIN_NAME)
        client.close()
        if local is not None:
            local.close()
    if errors:
        return "failed", errors[0] if len(
            errors
        ) == 1 else f"{errors[0]} (and {len(errors) - 1} more)"
    return ("stopped" if store.stop_requested(sweep_id) else "completed"), None


def submission_order(configs: list[Any]) -> list[int]:
    """The order the runs are submitted in: first one run of each compiled program, then
    the others in the grid's order. Runs that differ only in learning rate and seed
    compile the same programs (the rate is a variable of the optimizer), which the
    workers share through the compile cache (`share_compiled_programs`); submitted in the
    grid's order, the workers would start by compiling the same program side by side."""
    seen: set[str] = set()
    firsts: list[int] = []
    others: list[int] = []
    for index, config in enumerate(configs):
        data = config.to_dict()
        data["optimizer"] = {**data["optimizer"], "learning_rate": None}
        program = json.dumps({**data, "seed": None}, sort_keys=True)
        (others if program in seen else firsts).append(index)
        seen.add(program)
    return firsts + others


def _report_the_others(
    runs_dir: Path,
    sweep_id: str,
    reported: set[str],
    on_run_done: Callable[[str, str], None] | None,
) -> None:
    """`on_run_done` for the runs of a stopped sweep whose tasks were cancelled while they
    trained (their results never came back; the runs ended `stopped` all the same)."""
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.sweeps import runs_of

    if on_run_done is None:
        return
    for row in runs_of(RunStore(runs_dir).list_runs(), sweep_id):
        if row.run_id not in reported:
            on_run_done(row.run_id, row.status)


def _live_runs_of(runs_dir: Path, sweep_id: str) -> list[str]:
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.sweeps import runs_of

    return [row.run_id for row in runs_of(RunStore(runs_dir).list_runs(live_only=True), sweep_id)]


def _request_stop_of_live_runs(runs_dir: Path, sweep_id: str) -> list[str]:
    """Sends each live run of the sweep its stop request (`RunStore.request_stop`); returns
    their ids."""
    from keras_sgdplus.lab.runs import RunStore

    store = RunStore(runs_dir)
    live = _live_runs_of(runs_dir, sweep_id)
    for run_id in live:
        with contextlib.suppress(ValueError):
            store.request_stop(run_id)
    return live


def _stop_live_runs(runs_dir: Path, sweep_id: str, wait_s: float) -> None:
    """Asks each live run of the sweep to stop and waits (up to `wait_s`) until none is
    live: a run stops after its current chunk of steps."""
    deadline = time.monotonic() + wait_s
    quiet = 0
    while time.monotonic() < deadline and quiet < 2:  # twice none: a starting run shows up
        live = _request_stop_of_live_runs(runs_dir, sweep_id)
        quiet = 0 if live else quiet + 1
        time.sleep(POLL_SECONDS)


# --- from other processes: start, stop, delete ----------------------------------------------------


def start_sweep(
    spec: SweepSpec,
    runs_dir: str | os.PathLike,
    *,
    cluster: str | None = None,
    workers: int | None = None,
) -> str:
    """Starts a coordinator process (`python -m keras_sgdplus.lab.sweep_worker`, a session of
    its own, so the sweep outlives its caller) that runs `run_sweep`; returns the sweep's id
    once its record exists. ValueError with the coordinator's message when it refuses (no
    backend installed, bad `workers` or `cluster`)."""
    from keras_sgdplus.lab.jobs import await_start, spawn_worker

    if not isinstance(spec, SweepSpec):
        raise ValueError(f"`spec` must be a SweepSpec. Received: spec={spec!r}")
    payload = {
        "spec": spec.to_dict(),
        "cluster": _check_cluster(cluster),
        "workers": _check_workers(workers),
    }
    process, handshake = spawn_worker("keras_sgdplus.lab.sweep_worker", [Path(runs_dir)], payload)
    message = await_start(process, handshake, "sweep_id", START_TIMEOUT, "the sweep's coordinator")
    return validate_sweep_id(message)


def request_stop(runs_dir: str | os.PathLike, sweep_id: str) -> None:
    """Stops a sweep: its runs not yet started are never created, its running runs stop
    after their current chunk of steps (`stopped`, resumable), and the sweep ends
    `stopped`. Works from any process or host that shares the runs folder; ValueError for
    an unknown sweep."""
    SweepStore(runs_dir).request_stop(validate_sweep_id(sweep_id))
    _request_stop_of_live_runs(Path(runs_dir), sweep_id)


def delete_sweep(runs_dir: str | os.PathLike, sweep_id: str) -> None:
    """Deletes a sweep: all its runs (`RunStore.delete`) and its record. Refused with a
    ValueError while the sweep runs or any of its runs is live (stop it first:
    `request_stop`); nothing is deleted then."""
    from keras_sgdplus.lab.runs import RunStore
    from keras_sgdplus.lab.sweeps import runs_of

    store = SweepStore(runs_dir)
    record = store.load(validate_sweep_id(sweep_id))
    if record["status"] == "running":
        raise ValueError(f"sweep {sweep_id} is still running: stop it first (sgdplus sweep-stop)")
    runs = RunStore(runs_dir)
    live = _live_runs_of(Path(runs_dir), sweep_id)
    if live:
        raise ValueError(
            f"sweep {sweep_id} has runs still training ({', '.join(live)}): stop them first"
        )
    for row in runs_of(runs.list_runs(), sweep_id):
        runs.delete(row.run_id)
    store.remove(sweep_id)
