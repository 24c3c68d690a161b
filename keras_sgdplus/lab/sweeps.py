"""Sweeps: a named grid of runs over a few settings and seeds, everything else fixed.

The practitioner's loop of the seeds ("pick values for each [momentum, Nesterov], run an
experiment, log the results, update the parameters, and repeat") as one object:

    SweepSpec(name, base, axes={"learning_rate": (0.01, 0.1), "momentum": (0.0, 0.9)},
              seeds=(0, 1, 2))

expands (`expand`) to the Cartesian product of the axes' values, in the order the axes are
given, with the seeds innermost: 2 x 2 x 3 = 12 `TrainingConfig`s, each the base config with
those settings, that seed and the sweep's id and name (`sweep_id`, `sweep_name`). Each run of
a sweep is an ordinary run of the run store; the sweep's own record is one JSON file,
`<runs folder>/.sweeps/<sweep id>.json` (`SweepStore`), and its runs are found by the
`sweep_id` in their configs (`runs_of`), so a run deleted by hand simply drops out.

The axes a sweep may take (`SWEEP_AXES`): learning_rate, momentum, nesterov, batch_size
(None: the full batch), schedule (a name of `config.SCHEDULES`) and decay (the time_decay
schedule's `decay`). Values are checked by building every config: a bad one raises the
config's own ValueError, naming the setting and the value.

This module is pure data: no Keras, no Streamlit, no processes (`lab/sweep_runner.py` runs a
sweep; `lab/sweep_results.py` reads its results).
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import itertools
import json
import math
import os
import re
import secrets
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from keras_sgdplus.lab.config import MAX_SEED, TrainingConfig, parse_batch_size
from keras_sgdplus.lab.runs import is_locked

__all__ = [
    "MAX_SWEEP_RUNS",
    "SWEEP_AXES",
    "SweepSpec",
    "SweepStore",
    "config_with",
    "configurations",
    "expand",
    "parse_axis_values",
    "parse_seeds",
    "runs_of",
    "swept_settings",
]

#: The settings a sweep may vary, each with its path in `TrainingConfig.to_dict()`.
SWEEP_AXES: dict[str, tuple[str, ...]] = {
    "learning_rate": ("optimizer", "learning_rate"),
    "momentum": ("optimizer", "momentum"),
    "nesterov": ("optimizer", "nesterov"),
    "batch_size": ("batch_size",),
    "schedule": ("optimizer", "schedule", "name"),
    "decay": ("optimizer", "schedule", "decay"),
}
MAX_SWEEP_RUNS = 1000
SWEEP_FOLDER = ".sweeps"
SWEEP_ID_PATTERN = re.compile(r"\Asweep-[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\Z")
SWEEP_STATUSES = ("running", "completed", "stopped", "failed")
_RANGE = re.compile(r"\A\s*([^:]+):([^:]+):([0-9]+)\s*(log)?\s*\Z")


def _received(name: str, value: Any) -> str:
    return f"Received: {name}={value!r}"


def _check_axis(axis: Any) -> str:
    if not isinstance(axis, str) or axis not in SWEEP_AXES:
        raise ValueError(
            f"`axis` must be one of {', '.join(SWEEP_AXES)}. {_received('axis', axis)}"
        )
    return axis


def parse_axis_values(axis: str, text: str) -> tuple[Any, ...]:
    """The values of one axis from the command line's text.

    A list, "0.01,0.03,0.1"; for a number axis also a range "START:STOP:N" (N values evenly
    spaced, ends included, as `numpy.linspace`) or "START:STOP:Nlog" (evenly spaced in log,
    as `numpy.geomspace`): "1e-3:1:4log" -> 0.001, 0.01, 0.1, 1. nesterov takes
    true/false, batch_size integers, "online" (1) or "full" (None), schedule names. The
    values are checked when the configs are built (`expand`).
    """
    _check_axis(axis)
    if not isinstance(text, str) or not text.strip():
        raise ValueError(f"`{axis}` needs at least one value. {_received(axis, text)}")
    match = _RANGE.match(text)
    if match and axis in ("learning_rate", "momentum", "decay"):
        start, stop, count = float(match[1]), float(match[2]), int(match[3])
        if count < 1 or not (math.isfinite(start) and math.isfinite(stop)):
            raise ValueError(
                f"`{axis}` range needs finite ends and N >= 1. {_received(axis, text)}"
            )
        if match[4]:
            if start <= 0 or stop <= 0:
                raise ValueError(f"`{axis}` log range needs ends > 0. {_received(axis, text)}")
            ratio = math.log(stop / start)
            values = [start * math.exp(ratio * i / max(count - 1, 1)) for i in range(count)]
            values[-1] = stop if count > 1 else start
        else:
            values = [start + (stop - start) * i / max(count - 1, 1) for i in range(count)]
        return tuple(float(f"{v:.12g}") for v in values)  # 0.1 stays 0.1 in names and JSON
    parts = [part.strip() for part in text.split(",")]
    if any(not part for part in parts):
        raise ValueError(f"`{axis}` has an empty value. {_received(axis, text)}")
    return tuple(_parse_value(axis, part) for part in parts)


def _parse_value(axis: str, part: str) -> Any:
    if axis == "nesterov":
        lowered = part.lower()
        if lowered not in ("true", "false"):
            raise ValueError(f"`nesterov` takes true or false. {_received('nesterov', part)}")
        return lowered == "true"
    if axis == "batch_size":
        return parse_batch_size(part)
    if axis == "schedule":
        return part
    try:
        return float(part)
    except ValueError:
        raise ValueError(f"`{axis}` must be a number. {_received(axis, part)}") from None


def parse_seeds(text: str, first: int = 0) -> tuple[int, ...]:
    """`--seeds`: "3" -> three seeds from `first` (first, first + 1, first + 2); a list
    "0,5,7" -> those seeds."""
    try:
        if "," in text:
            seeds = tuple(int(part) for part in text.split(","))
        else:
            count = int(text)
            if count < 1:
                raise ValueError
            seeds = tuple(range(first, first + count))
    except ValueError:
        raise ValueError(
            "`seeds` must be a count (>= 1) or a list of seeds like 0,5,7. "
            f"{_received('seeds', text)}"
        ) from None
    return seeds


@dataclass(frozen=True)
class SweepSpec:
    """A sweep: the base config, the swept axes with their values, the seeds and a name."""

    name: str
    base: TrainingConfig
    axes: Mapping[str, Sequence[Any]]
    seeds: Sequence[int] = (0,)

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError(
                f"`name` of a sweep must be non-empty text. {_received('name', self.name)}"
            )
        if not isinstance(self.base, TrainingConfig):
            raise ValueError(f"`base` must be a TrainingConfig. {_received('base', self.base)}")
        if not isinstance(self.axes, Mapping):
            raise ValueError(f"`axes` must be a mapping. {_received('axes', self.axes)}")
        axes: dict[str, tuple[Any, ...]] = {}
        for axis, values in self.axes.items():
            _check_axis(axis)
            values = tuple(values)
            if not values:
                raise ValueError(f"`{axis}` needs at least one value. {_received(axis, values)}")
            if len(set(map(repr, values))) != len(values):
                raise ValueError(f"`{axis}` lists a value twice. {_received(axis, values)}")
            axes[axis] = values
        seeds = tuple(self.seeds)
        if not seeds or any(
            isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= MAX_SEED for s in seeds
        ):
            raise ValueError(
                f"`seeds` must be integers in [0, {MAX_SEED}]. {_received('seeds', seeds)}"
            )
        if len(set(seeds)) != len(seeds):
            raise ValueError(f"`seeds` lists a seed twice. {_received('seeds', seeds)}")
        runs = math.prod(len(v) for v in axes.values()) * len(seeds)
        if runs > MAX_SWEEP_RUNS:
            raise ValueError(
                f"A sweep takes at most {MAX_SWEEP_RUNS} runs. Received: {runs} runs "
                f"({' x '.join(str(len(v)) for v in axes.values())} x {len(seeds)} seeds)"
            )
        object.__setattr__(self, "name", self.name.strip())
        object.__setattr__(self, "axes", axes)
        object.__setattr__(self, "seeds", seeds)

    @property
    def run_count(self) -> int:
        return math.prod(len(v) for v in self.axes.values()) * len(self.seeds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "base": self.base.to_dict(),
            "axes": {axis: list(values) for axis, values in self.axes.items()},
            "seeds": list(self.seeds),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> SweepSpec:
        return cls(
            name=data["name"],
            base=TrainingConfig.from_dict(data["base"]),
            axes={axis: tuple(values) for axis, values in data["axes"].items()},
            seeds=tuple(data["seeds"]),
        )


def config_with(base: TrainingConfig, settings: Mapping[str, Any]) -> TrainingConfig:
    """`base` with the swept `settings` (axis -> value) put in; checked as any config is."""
    data = base.to_dict()
    for axis, value in settings.items():
        *parents, leaf = SWEEP_AXES[_check_axis(axis)]
        section = data
        for key in parents:
            section = section[key]
        section[leaf] = value
    return TrainingConfig.from_dict(data)


def configurations(spec: SweepSpec) -> list[tuple[dict[str, Any], TrainingConfig]]:
    """Each configuration of the grid, seeds aside: its swept settings (axis -> value, as
    given) and the base config with them, in the grid's order (first axis outermost)."""
    grid = []
    for values in itertools.product(*spec.axes.values()):
        settings = dict(zip(spec.axes, values, strict=True))
        grid.append((settings, config_with(spec.base, settings)))
    return grid


def expand(spec: SweepSpec, sweep_id: str = "") -> list[TrainingConfig]:
    """Every run of the sweep: each of its `configurations`, with every seed (innermost),
    tagged with the sweep's id and name."""
    return [
        dataclasses.replace(config, seed=seed, sweep_id=sweep_id, sweep_name=spec.name)
        for _, config in configurations(spec)
        for seed in spec.seeds
    ]


def swept_settings(
    config: TrainingConfig | Mapping[str, Any], axes: Iterable[str]
) -> dict[str, Any]:
    """The values of `axes` in a run's config (a `TrainingConfig` or its stored dict)."""
    data = config.to_dict() if isinstance(config, TrainingConfig) else config
    settings = {}
    for axis in axes:
        value: Any = data
        for key in SWEEP_AXES[_check_axis(axis)]:
            value = value[key]
        settings[axis] = value
    return settings


def new_sweep_id(now: datetime | None = None) -> str:
    now = now or datetime.now(timezone.utc)
    return f"sweep-{now.strftime('%Y%m%d-%H%M%S')}-{secrets.token_hex(3)}"


def validate_sweep_id(sweep_id: Any) -> str:
    if not isinstance(sweep_id, str) or not SWEEP_ID_PATTERN.match(sweep_id):
        raise ValueError(
            "`sweep` must be a sweep id like sweep-20260101-120000-abcdef. "
            f"{_received('sweep', sweep_id)}"
        )
    return sweep_id


class SweepStore:
    """The sweeps of a runs folder: one JSON record each in `.sweeps/`, written atomically.

    A record: {"id", "name", "created_at", "spec": SweepSpec.to_dict(), "status" (one of
    SWEEP_STATUSES), "where" ("local" or the cluster's address), "error"}.

    Beside it, while a coordinator runs the sweep (`lab/sweep_runner.py`), `<id>.lock`: an
    `flock` it holds (`hold`) until it has written the final status (`release`). A record
    found "running" whose lock file nobody holds (its coordinator was killed) is stored as
    "failed" by the first reader (`load`), as the run store does with a killed worker's run.
    A record without a lock file is taken as it is. `<id>.stop` is a stop request
    (`request_stop`), which the coordinator and the sweep's runs poll.
    """

    def __init__(self, runs_dir: str | os.PathLike) -> None:
        self.root = Path(runs_dir)
        self.folder = self.root / SWEEP_FOLDER
        self._held: dict[str, int] = {}

    def _path(self, sweep_id: str) -> Path:
        return self.folder / f"{validate_sweep_id(sweep_id)}.json"

    def _lock_path(self, sweep_id: str) -> Path:
        return self.folder / f"{validate_sweep_id(sweep_id)}.lock"

    def _stop_path(self, sweep_id: str) -> Path:
        return self.folder / f"{validate_sweep_id(sweep_id)}.stop"

    def hold(self, sweep_id: str) -> None:
        """Takes the sweep's coordinator lock for this store object (until `release` or the
        process's end); ValueError when another process holds it (a coordinator runs it)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path(sweep_id), os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise ValueError(f"sweep {sweep_id} is being run by another process") from None
        self._held[sweep_id] = fd

    def release(self, sweep_id: str) -> None:
        """Lets go of the coordinator lock (after the final status is written): the lock
        file is removed while still held, so no reader takes the final record for a dead
        coordinator's."""
        fd = self._held.pop(sweep_id, None)
        if fd is not None:
            self._lock_path(sweep_id).unlink(missing_ok=True)
            os.close(fd)

    def coordinated(self, sweep_id: str) -> bool:
        """Whether a live coordinator holds the sweep (`hold`)."""
        return sweep_id in self._held or is_locked(self._lock_path(sweep_id))

    def request_stop(self, sweep_id: str) -> None:
        """Asks the sweep to stop: a file its coordinator and its runs poll, from any host
        that shares the runs folder."""
        self.load(sweep_id)  # an unknown sweep is refused
        staging = self.folder / f".{sweep_id}.stop.{os.getpid()}.tmp"
        staging.write_text(datetime.now(timezone.utc).isoformat(), encoding="utf-8")
        os.replace(staging, self._stop_path(sweep_id))

    def stop_requested(self, sweep_id: str) -> bool:
        """Whether a stop was asked for the sweep (one `stat`, cheap enough for each chunk)."""
        return self._stop_path(sweep_id).exists()

    def create(self, spec: SweepSpec, where: str = "local", *, hold: bool = False) -> str:
        """A new sweep's record, status "running"; returns its id. `hold`: the coordinator
        lock is taken (`hold`) before the record exists."""
        self.folder.mkdir(parents=True, exist_ok=True)
        now = datetime.now(timezone.utc)
        for _attempt in range(100):
            sweep_id = new_sweep_id(now)
            if not self._path(sweep_id).exists() and not self._lock_path(sweep_id).exists():
                break
        if hold:
            self.hold(sweep_id)
        record = {
            "id": sweep_id,
            "name": spec.name,
            "created_at": now.isoformat(timespec="seconds"),
            "spec": spec.to_dict(),
            "status": "running",
            "where": where,
            "error": None,
        }
        self._write(sweep_id, record)
        return sweep_id

    def _write(self, sweep_id: str, record: dict[str, Any]) -> None:
        path = self._path(sweep_id)
        staging = path.with_suffix(f".json.{os.getpid()}.tmp")
        staging.write_text(json.dumps(record, indent=1), encoding="utf-8")
        os.replace(staging, path)

    def _read(self, sweep_id: str) -> dict[str, Any]:
        path = self._path(sweep_id)
        try:
            record = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ValueError(f"unknown sweep {sweep_id!r} in {str(self.root)!r}") from None
        except (OSError, json.JSONDecodeError) as error:
            raise ValueError(f"sweep {sweep_id!r} cannot be read: {error}") from None
        return record

    def load(self, sweep_id: str) -> dict[str, Any]:
        """The record; ValueError for an unknown or unreadable sweep. A "running" sweep whose
        coordinator is gone (its lock file left, nobody holding it) is stored "failed"."""
        record = self._read(sweep_id)
        lock = self._lock_path(sweep_id)
        if record.get("status") == "running" and lock.exists() and not self.coordinated(sweep_id):
            record = self._read(sweep_id)  # the final status is written before the lock goes
            if record.get("status") == "running" and lock.exists():
                record.update(
                    status="failed",
                    error="the sweep's coordinator process ended before the sweep did",
                )
                self._write(sweep_id, record)
                with contextlib.suppress(OSError):
                    lock.unlink()
        return record

    def spec(self, sweep_id: str) -> SweepSpec:
        return SweepSpec.from_dict(self.load(sweep_id)["spec"])

    def update(self, sweep_id: str, **fields: Any) -> dict[str, Any]:
        """Sets `status` (one of SWEEP_STATUSES) and/or `error` of a sweep's record."""
        record = self.load(sweep_id)
        unknown = set(fields) - {"status", "error"}
        if unknown:
            raise ValueError(
                f"a sweep's record takes status and error. Received: {sorted(unknown)}"
            )
        if "status" in fields and fields["status"] not in SWEEP_STATUSES:
            raise ValueError(
                f"`status` must be one of {', '.join(SWEEP_STATUSES)}. "
                f"{_received('status', fields['status'])}"
            )
        record.update(fields)
        self._write(sweep_id, record)
        return record

    def list_sweeps(self) -> list[dict[str, Any]]:
        """Every readable record, newest first."""
        records = []
        for path in sorted(self.folder.glob("sweep-*.json"), reverse=True):
            try:
                records.append(self.load(path.stem))
            except ValueError:
                continue
        return records

    def remove(self, sweep_id: str) -> None:
        """Removes the record only (the runs are deleted through the run store)."""
        self._path(sweep_id).unlink(missing_ok=True)
        self._stop_path(sweep_id).unlink(missing_ok=True)


def runs_of(summaries: Iterable[Any], sweep_id: str) -> list[Any]:
    """The runs of a sweep among a run store's listing (`RunStore.list_runs()`): those whose
    config names `sweep_id`, oldest first (the order they were started in)."""
    runs = [row for row in summaries if row.readable and row.config.get("sweep_id") == sweep_id]
    return sorted(runs, key=lambda row: (row.created_at, row.run_id))
