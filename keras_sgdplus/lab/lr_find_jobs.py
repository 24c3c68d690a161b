"""Range tests in a worker process, and their results kept beside the runs.

A range test (`lab/range_test.py`) started from the dashboard runs in its own worker
(`python -m keras_sgdplus.lab.lr_find_worker`, a fresh interpreter in its own session, as a
training worker: `jobs.spawn_worker`), never in the server. Its record is a JSON file
`<runs folder>/.lr_find/<key>.json`, written atomically, where `key` is a hash of the
settings that shape the test (`settings_key`: the config without its name, epochs and
learning rate, and the test's options). So a page that polls finds the test of its current
settings after a reload, in another tab, or after a restart of the server; and filling the
suggestion into the learning rate does not hide the curve it came from.

A record is `{"status": "running" | "done" | "failed", "config": ..., "options": ...,
"result": <RangeTestResult.to_dict()> (done), "error": <message> (failed)}`. While it
runs, the worker holds an `flock` on `<key>.lock`; a record found `running` with nobody
holding the lock (its worker killed) reads as `failed`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import IO, Any

from keras_sgdplus.lab import lr_find
from keras_sgdplus.lab.config import OptimizerSpec, ScheduleSpec, TrainingConfig
from keras_sgdplus.lab.jobs import await_start, spawn_worker

__all__ = ["FOLDER", "LrFindStore", "default_options", "settings_key", "start_lr_find"]

FOLDER = ".lr_find"
RUNNING, DONE, FAILED = "running", "done", "failed"


def default_options() -> dict[str, Any]:
    """The test's options by default: fastai's and Lightning's, and the lab's rule."""
    return {
        "start": lr_find.DEFAULT_START,
        "end": lr_find.DEFAULT_END,
        "steps": lr_find.DEFAULT_STEPS,
        "beta": lr_find.DEFAULT_BETA,
        "divergence": lr_find.DEFAULT_DIVERGENCE,
        "rule": lr_find.DEFAULT_RULE,
    }


def checked_options(options: dict[str, Any] | None) -> dict[str, Any]:
    """The options with their defaults filled in; ValueError naming a bad one."""
    merged = {**default_options(), **(options or {})}
    unknown = set(merged) - set(default_options())
    if unknown:
        raise ValueError(f"unknown range-test options. Received: {sorted(unknown)}")
    lr_find.check_options(**merged)
    return merged


def settings_key(config: TrainingConfig, options: dict[str, Any] | None = None) -> str:
    """A hash of what shapes the test: the config but its name, epochs, learning rate and
    schedule (the test sweeps its own rate), and the options."""
    optimizer = dataclasses.replace(
        config.optimizer,
        learning_rate=OptimizerSpec.learning_rate,
        schedule=ScheduleSpec(),
    )
    shaped = dataclasses.replace(config, name="", epochs=1, optimizer=optimizer)
    text = json.dumps(
        {"config": shaped.to_dict(), "options": checked_options(options)}, sort_keys=True
    )
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:20]


class LrFindStore:
    """The range tests' records under `<runs folder>/.lr_find/` (see the module docstring)."""

    def __init__(self, runs_dir: str | os.PathLike) -> None:
        self.folder = Path(runs_dir) / FOLDER

    def _path(self, key: str, suffix: str) -> Path:
        if not (key.isalnum() and key.isascii()):
            raise ValueError(f"`key` must be letters and digits. Received: key={key!r}")
        return self.folder / f"{key}{suffix}"

    def write(self, key: str, record: dict[str, Any]) -> None:
        """Stores the record whole or not at all (a temporary file, then `os.replace`)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        target = self._path(key, ".json")
        handle, temporary = tempfile.mkstemp(dir=self.folder, prefix=".tmp-", suffix=".json")
        try:
            with os.fdopen(handle, "w", encoding="utf-8") as file:
                json.dump(record, file)
            os.replace(temporary, target)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(temporary)
            raise

    def read(self, key: str) -> dict[str, Any] | None:
        """The record of `key` (None: no test of these settings); one found running whose
        worker is gone reads as failed."""
        try:
            record = json.loads(self._path(key, ".json").read_text(encoding="utf-8"))
        except (FileNotFoundError, json.JSONDecodeError):
            return None
        if record.get("status") == RUNNING and not self.is_running(key):
            record = {
                **record,
                "status": FAILED,
                "error": "the range test's worker ended before it finished",
            }
        return record

    def is_running(self, key: str) -> bool:
        """Whether a worker holds the test's lock now."""
        try:
            with open(self._path(key, ".lock"), "a") as file:
                try:
                    fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
                except BlockingIOError:
                    return True
                fcntl.flock(file, fcntl.LOCK_UN)
                return False
        except FileNotFoundError:  # the folder itself is not there
            return False

    def hold(self, key: str) -> IO[str] | None:
        """Takes the test's lock for this process (until the file returned is closed, or
        the process ends); None when another worker holds it."""
        self.folder.mkdir(parents=True, exist_ok=True)
        file = open(self._path(key, ".lock"), "a")  # noqa: SIM115 - held open on purpose
        try:
            fcntl.flock(file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            file.close()
            return None
        return file


def start_lr_find(
    config: TrainingConfig,
    runs_dir: str | os.PathLike,
    options: dict[str, Any] | None = None,
    timeout: float = 120.0,
) -> str:
    """Starts a worker that runs the range test of `config` (checked where it entered) and
    stores its record; returns the key to poll (`LrFindStore.read`) once the worker holds
    the test's lock and has stored it as running. ValueError when the options are bad or
    a test of the same settings is running already."""
    options = checked_options(options)
    key = settings_key(config, options)
    payload = {"config": config.to_dict(), "options": options}
    worker = "keras_sgdplus.lab.lr_find_worker"
    process, handshake = spawn_worker(worker, [Path(runs_dir), key], payload)
    await_start(process, handshake, "started", timeout, "the range-test worker")
    return key
