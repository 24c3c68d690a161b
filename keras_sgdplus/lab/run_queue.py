"""Runs that wait their turn: one run at a time per device by default, first come first
served, or up to `side_by_side` at once when asked.

Two runs on one CPU share its cores, and each goes at about half its speed (on a 2-core
machine the compiled loop and its CSV writer already take more than one core,
`benchmarks/dashboard_vs_cli.py`); two on one GPU share its memory. So a run started while
another trains waits, as `queued`, and starts when a place frees. CPU runs and GPU runs wait
in separate queues (`queue_of`): a GPU run does not wait for a CPU run.

The queue is a folder of the runs folder, `.queue/<cpu|gpu>/`, and works between any
processes that share it (workers started by the dashboard, `sgdplus train --queue`):
- `slot-<k>` (k < side_by_side): a training run holds an exclusive `flock` on one for the
  life of its process. The kernel lets the lock go when the process exits, however it
  exits (`kill -9` included), so a place is never lost to a dead run.
- `ticket-<time ns>-<run id>`: a waiting run holds its ticket locked. Tickets are taken in
  the order of their names (their time of arrival); a ticket nobody holds any more (its
  worker was killed) is removed by the next run that looks. A run tries for a place only
  when fewer than `side_by_side` live tickets are ahead of it.

Locks are `flock`s, as for the run store's writer lock (`runs.py`): they hold between
processes of one host, and between hosts only where the shared file system passes
`flock` on (NFS v4 does).
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import platform
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from keras_sgdplus.lab.config import TrainingConfig, default_name
from keras_sgdplus.lab.runs import QUEUED, RunStore, RunWriter, is_locked
from keras_sgdplus.lab.stop_signal import StopSignal

QUEUES = ("cpu", "gpu")
QUEUE_FOLDER = ".queue"
#: How often a waiting run looks for a free place (and at its stop request), in seconds.
POLL_SECONDS = 0.25
MAX_SIDE_BY_SIDE = 64


def check_side_by_side(side_by_side: object) -> int:
    """`side_by_side` as an int from 1 to `MAX_SIDE_BY_SIDE`; ValueError naming it otherwise."""
    if (
        isinstance(side_by_side, bool)
        or not isinstance(side_by_side, int)
        or not 1 <= side_by_side <= MAX_SIDE_BY_SIDE
    ):
        raise ValueError(
            f"`side_by_side` must be an integer from 1 to {MAX_SIDE_BY_SIDE}. "
            f"Received: side_by_side={side_by_side!r}"
        )
    return side_by_side


def queue_of(device: str, gpu_here: bool) -> str:
    """The queue of a run set to train on `device` ("auto", "cpu", "gpu"): "gpu" when it
    trains on a GPU (device "gpu", or "auto" where `gpu_here`), else "cpu"."""
    return "gpu" if device == "gpu" or (device == "auto" and gpu_here) else "cpu"


@dataclass(frozen=True)
class Place:
    """A place to train, held (an exclusive lock on `path`, through `fd`) until `release()`
    or the process's end."""

    path: Path
    fd: int

    def release(self) -> None:
        with contextlib.suppress(OSError):
            os.close(self.fd)


def check_queue(queue: object) -> str:
    """`queue` when it is one of `QUEUES`; ValueError naming it otherwise."""
    if queue not in QUEUES:
        raise ValueError(f"`queue` must be one of {', '.join(QUEUES)}. Received: queue={queue!r}")
    return str(queue)


def _folder(root: str | os.PathLike, queue: str) -> Path:
    check_queue(queue)
    folder = Path(root) / QUEUE_FOLDER / queue
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _live_tickets(folder: Path) -> list[Path]:
    """The tickets of runs still waiting, oldest first; those of dead workers removed."""
    live = []
    for ticket in sorted(folder.glob("ticket-*")):
        if is_locked(ticket):
            live.append(ticket)
        else:
            with contextlib.suppress(OSError):  # its worker is gone
                ticket.unlink(missing_ok=True)
    return live


def _take_ticket(folder: Path, run_id: str) -> tuple[Path, int]:
    """A ticket at the end of the queue, locked by this process. It is locked under a
    temporary name and renamed, so that no other run ever sees it unlocked (and removes it
    as a dead worker's)."""
    name = f"ticket-{time.time_ns():020d}-{run_id}"
    temporary = folder / f".{name}"
    fd = os.open(temporary, os.O_RDWR | os.O_CREAT, 0o644)
    fcntl.flock(fd, fcntl.LOCK_EX)
    ticket = folder / name
    os.rename(temporary, ticket)
    return ticket, fd


def _try_place(folder: Path, side_by_side: int) -> Place | None:
    for k in range(side_by_side):
        path = folder / f"slot-{k}"
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            continue
        return Place(path, fd)
    return None


def wait_for_place(
    root: str | os.PathLike,
    queue: str,
    run_id: str,
    side_by_side: int = 1,
    *,
    stopped: Callable[[], bool] = lambda: False,
    on_queued: Callable[[int], None] | None = None,
    poll_seconds: float = POLL_SECONDS,
) -> Place | None:
    """Waits in `queue` of the runs folder `root` until one of its first `side_by_side`
    places is free and every run that came before has had its turn; returns the place, held
    until the process ends (or `Place.release`). None as soon as `stopped()` is true (a stop
    request while waiting): the run leaves the queue without training. `on_queued(n)` is
    called once it is in the queue, with the n runs that wait before it."""
    side_by_side = check_side_by_side(side_by_side)
    folder = _folder(root, queue)
    ticket, ticket_fd = _take_ticket(folder, run_id)
    try:
        if on_queued is not None:
            on_queued(_live_tickets(folder).index(ticket))
        while not stopped():
            ahead = _live_tickets(folder).index(ticket)
            if ahead < side_by_side:
                place = _try_place(folder, side_by_side)
                if place is not None:
                    return place
            time.sleep(poll_seconds)
        return None
    finally:
        ticket.unlink(missing_ok=True)
        os.close(ticket_fd)


def runs_ahead(root: str | os.PathLike, queue: str, run_id: str) -> int | None:
    """How many runs wait in `queue` before run `run_id` (None if it is not waiting there);
    it starts when a place is free and fewer than `side_by_side` wait before it."""
    try:
        tickets = _live_tickets(_folder(root, queue))
    except (OSError, ValueError):
        return None
    for position, ticket in enumerate(tickets):
        if ticket.name.endswith(f"-{run_id}"):
            return position
    return None


# --- a run of the store in the queue -------------------------------------------------------------


def open_queued(
    store: RunStore,
    config: TrainingConfig,
    queue: str,
    side_by_side: int = 1,
    *,
    resume: str | None = None,
) -> RunWriter:
    """The run, `queued` in the store: a new one, or run `resume` taken back from its
    checkpoint (`RunStore.resume`). Its environment says which queue it waits in, and this
    process's host and pid (so `jobs.request_stop` can signal it); the run's training
    replaces them with the full environment (`training.run_training`)."""
    check_side_by_side(side_by_side)
    waiting = {
        "queue": queue,
        "side_by_side": side_by_side,
        "host": platform.node(),
        "pid": os.getpid(),
    }
    if resume is None:
        name = config.name or default_name(config)
        return store.create(name, config.to_dict(), waiting, status=QUEUED)
    writer, _ = store.resume(resume, config=config.to_dict(), status=QUEUED)
    writer.update(environment=waiting)
    return writer


def wait_turn(
    store: RunStore,
    writer: RunWriter,
    stop: StopSignal,
    queue: str,
    side_by_side: int = 1,
    on_queued: Callable[[int], None] | None = None,
) -> Place | None:
    """Waits for the queued run's turn in `queue` (`wait_for_place`). A stop request
    meanwhile (`sgdplus stop`, Stop, SIGTERM) ends the wait: the run is marked `stopped`,
    having trained nothing more, and let go; None is returned."""
    stop.watch(lambda: writer.stop_requested)
    place = wait_for_place(
        store.root,
        queue,
        writer.run_id,
        side_by_side,
        stopped=lambda: stop.requested,
        on_queued=on_queued,
    )
    if place is None:
        writer.update(status="stopped")
        writer.close()
    return place
