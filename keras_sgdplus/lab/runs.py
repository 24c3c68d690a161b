"""The saved-runs store: one folder per training run under a root (``saved_runs/`` by default).

This is the only code that reads or writes the run folders. Layout of a run::

    <root>/<run_id>/meta.json     schema_version, run_id, name, times, status, config,
                                  environment, summary, error; replaced atomically
    <root>/<run_id>/batches.csv   one line per training batch (BATCH_COLUMNS), appended
    <root>/<run_id>/epochs.csv    one line per epoch (EPOCH_COLUMNS_BASE + metrics), appended

A run id is the UTC creation time plus random hex (``20261121-224501-3f9a2c``); the user's name
for a run is data in ``meta.json`` and never part of a path. Reading uses only ``json`` and
``pandas.read_csv``: nothing read from disk is ever executed. A run whose ``config`` does not
parse as a ``TrainingConfig`` (``lab/config.py``) is unreadable, with the reason, like a run
with a corrupt file; ``meta["config"]`` stays the stored dict.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import io
import json
import numbers
import os
import re
import secrets
import shutil
import tempfile
import unicodedata
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import pandas as pd

from keras_sgdplus.lab.config import TrainingConfig

SCHEMA_VERSION = 1
STATUSES = ("running", "completed", "stopped", "diverged", "failed")
UNREADABLE = "unreadable"  # the status shown for a run that cannot be read (not in STATUSES)
BATCH_COLUMNS = (
    "step",
    "epoch",
    "batch",
    "loss",
    "learning_rate",
    "batch_size",
    "samples_seen",
    "wall_time",
)
EPOCH_COLUMNS_BASE = ("epoch", "loss", "wall_time", "samples_seen")
CURVES = ("batches", "epochs")
MAX_NAME_LENGTH = 200

RUN_ID_PATTERN = re.compile(r"\A[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\Z")
_COLUMN_PATTERN = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.\-]{0,99}\Z")
_INT_COLUMNS = {"step", "epoch", "batch", "batch_size", "samples_seen"}
_META_FILE = "meta.json"
_META_LOCK = ".meta.lock"
_WRITER_LOCK = ".writer.lock"
_CURVE_FILES = {"batches": "batches.csv", "epochs": "epochs.csv"}
_TAIL_BYTES = 65536


class RunStoreError(ValueError):
    """A bad request to the store (unknown run id, bad name, bad curve) or an unreadable run."""


def default_runs_dir() -> Path:
    """``$SGDPLUS_RUNS_DIR`` if set, else ``saved_runs`` in the current directory."""
    env = os.environ.get("SGDPLUS_RUNS_DIR")
    if env:
        return Path(env).expanduser()
    return Path.cwd() / "saved_runs"


@dataclass
class RunSummary:
    """One row of a listing. An unreadable run has ``readable`` False and the ``reason``."""

    run_id: str
    name: str
    status: str
    created_at: str
    config: dict
    summary: dict
    readable: bool = True
    reason: str | None = None
    updated_at: str | None = None
    error: str | None = None
    active: bool = False  # a live RunWriter holds the run (False for a killed "running" run)


@dataclass
class Run:
    """A loaded run: its metadata and both curves."""

    run_id: str
    meta: dict
    batches: pd.DataFrame
    epochs: pd.DataFrame

    @property
    def name(self) -> str:
        return self.meta["name"]

    @property
    def status(self) -> str:
        return self.meta["status"]


# --- helpers -----------------------------------------------------------------------------------


def _show(value: Any) -> str:
    """``repr`` of a value for an error message, shortened when long."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _utcnow() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _random_hex() -> str:
    return secrets.token_hex(3)


def _iso(t: _dt.datetime) -> str:
    return t.isoformat(timespec="microseconds")


def _time_of_id(run_id: str) -> str:
    """The creation time in a run id as ISO text ("" if the id holds no real date)."""
    try:
        t = _dt.datetime.strptime(run_id[:15], "%Y%m%d-%H%M%S")
    except ValueError:
        return ""
    return t.replace(tzinfo=_dt.timezone.utc).isoformat()


def validate_name(name: Any) -> str:
    """The name stripped; RunStoreError if not 1..200 characters of text without controls."""
    if not isinstance(name, str):
        raise RunStoreError(f"bad run name {_show(name)}: not text")
    stripped = name.strip()
    if not stripped:
        raise RunStoreError(f"bad run name {_show(name)}: empty")
    if len(stripped) > MAX_NAME_LENGTH:
        raise RunStoreError(f"bad run name {_show(name)}: longer than {MAX_NAME_LENGTH} characters")
    for ch in stripped:
        if unicodedata.category(ch) in ("Cc", "Cs", "Zl", "Zp"):
            raise RunStoreError(f"bad run name {_show(name)}: control character {ch!r}")
    return stripped


def validate_run_id(run_id: Any) -> str:
    """The run id if it matches RUN_ID_PATTERN, else RunStoreError."""
    if not isinstance(run_id, str) or not RUN_ID_PATTERN.match(run_id):
        raise RunStoreError(f"bad run id {_show(run_id)}: expected the form 20261121-224501-3f9a2c")
    return run_id


def _json_default(value: Any) -> Any:
    if isinstance(value, Path):
        return str(value)
    item = getattr(value, "item", None)  # NumPy scalars
    if callable(item):
        with contextlib.suppress(Exception):
            out = item()
            if isinstance(out, (bool, int, float, str)):
                return out
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    raise RunStoreError(f"cannot store {_show(value)} of type {type(value).__name__} in meta.json")


def _dump_meta(meta: dict) -> bytes:
    return (json.dumps(meta, indent=2, ensure_ascii=False, default=_json_default) + "\n").encode()


def _fsync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _write_atomic(path: Path, data: bytes) -> None:
    """Write a file whole or not at all: a temp file in the same folder, fsync, os.replace."""
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    _fsync_dir(path.parent)


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive flock on a lock file (between threads and processes alike)."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # closing releases the lock


def _check_meta(meta: Any, run_id: str) -> dict:
    """The metadata if it is valid for this run, else RunStoreError with the reason."""
    if not isinstance(meta, dict):
        raise RunStoreError(f"meta.json holds {type(meta).__name__}, not an object")
    version = meta.get("schema_version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise RunStoreError(f"meta.json has a bad schema_version {_show(version)}")
    if version > SCHEMA_VERSION:
        raise RunStoreError(
            f"meta.json has schema_version {version}, newer than this program's "
            f"{SCHEMA_VERSION}: written by a newer keras-sgdplus"
        )
    if meta.get("run_id") != run_id:
        raise RunStoreError(f"meta.json names run {_show(meta.get('run_id'))}, not its folder")
    for key in ("name", "created_at", "updated_at"):
        if not isinstance(meta.get(key), str):
            raise RunStoreError(f"meta.json has a bad {key} {_show(meta.get(key))}")
    if meta.get("status") not in STATUSES:
        raise RunStoreError(f"meta.json has an unknown status {_show(meta.get('status'))}")
    for key in ("config", "environment", "summary"):
        if not isinstance(meta.get(key), dict):
            raise RunStoreError(
                f"meta.json has a {key} that is not an object: {_show(meta.get(key))}"
            )
    if not (meta.get("error") is None or isinstance(meta.get("error"), str)):
        raise RunStoreError(f"meta.json has a bad error {_show(meta.get('error'))}")
    try:
        TrainingConfig.from_dict(meta["config"])  # the stored run's entry: parsed here, once
    except ValueError as e:
        raise RunStoreError(f"meta.json has a bad config: {e}") from None
    return meta


def _read_meta(run_dir: Path) -> dict:
    path = run_dir / _META_FILE
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise RunStoreError("meta.json is missing") from None
    except OSError as e:
        raise RunStoreError(f"meta.json cannot be read: {e}") from None
    try:
        meta = json.loads(raw.decode("utf-8"))
    except UnicodeDecodeError:
        raise RunStoreError("meta.json is not UTF-8 text") from None
    except json.JSONDecodeError as e:
        raise RunStoreError(f"meta.json is not valid JSON ({e})") from None
    return _check_meta(meta, run_dir.name)


def _format_value(column: str, value: Any) -> str:
    kind = type(value)
    if kind is float:
        return repr(value)  # shortest text that reads back as the same float; nan, inf
    if kind is int:
        return str(value)
    if value is None:
        return ""
    if isinstance(value, bool) or type(value).__name__ == "bool_":
        return "1" if value else "0"
    if isinstance(value, numbers.Integral):
        return str(int(value))
    if isinstance(value, numbers.Real):
        return repr(float(value))
    raise RunStoreError(f"bad value {_show(value)} for column {column!r}: not a number")


def _check_header(kind: str, header: list[str]) -> None:
    if kind == "batches":
        if tuple(header) != BATCH_COLUMNS:
            raise RunStoreError(f"batches.csv has a bad header {_show(','.join(header))}")
        return
    if (
        tuple(header[: len(EPOCH_COLUMNS_BASE)]) != EPOCH_COLUMNS_BASE
        or len(set(header)) != len(header)
        or not all(_COLUMN_PATTERN.match(c) for c in header)
    ):
        raise RunStoreError(f"epochs.csv has a bad header {_show(','.join(header))}")


def _empty_curve(columns: tuple[str, ...] | list[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {c: pd.Series([], dtype="int64" if c in _INT_COLUMNS else "float64") for c in columns}
    )


def _complete_text(raw: bytes, filename: str) -> str:
    """The bytes up to the last newline as text: a half-written last line is dropped."""
    cut = raw.rfind(b"\n")
    try:
        return raw[: cut + 1].decode("utf-8")
    except UnicodeDecodeError:
        raise RunStoreError(f"{filename} is not UTF-8 text") from None


def _parse_curve(kind: str, text: str) -> pd.DataFrame:
    filename = _CURVE_FILES[kind]
    lines = text.split("\n")[:-1]
    if not lines:
        return _empty_curve(BATCH_COLUMNS if kind == "batches" else EPOCH_COLUMNS_BASE)
    header = lines[0].split(",")
    _check_header(kind, header)
    if len(lines) == 1:
        return _empty_curve(header)
    commas = len(header) - 1
    for number, line in enumerate(lines[1:], start=2):
        if line.count(",") != commas or '"' in line:
            raise RunStoreError(f"{filename} line {number} is garbled: {_show(line)}")
    kwargs: dict[str, Any] = {}
    if int(pd.__version__.split(".")[0]) < 3:
        kwargs["float_precision"] = "round_trip"  # pandas 3 reads floats exactly by default
    try:
        df = pd.read_csv(io.StringIO(text), **kwargs)
    except Exception as e:
        raise RunStoreError(f"{filename} cannot be parsed: {e}") from None
    for column in df.columns:
        dtype = df[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise RunStoreError(f"{filename} column {column!r} holds values that are not numbers")
    return df


def _read_curve(run_dir: Path, kind: str) -> pd.DataFrame:
    filename = _CURVE_FILES[kind]
    try:
        raw = (run_dir / filename).read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as e:
        raise RunStoreError(f"{filename} cannot be read: {e}") from None
    return _parse_curve(kind, _complete_text(raw, filename))


def _number_or_empty(field: str) -> bool:
    if field == "":
        return True
    try:
        float(field)
    except ValueError:
        return False
    return True


def _quick_check_curve(run_dir: Path, kind: str) -> None:
    """A cheap check for listings: the header and the last complete line of a curve file."""
    filename = _CURVE_FILES[kind]
    try:
        with open(run_dir / filename, "rb") as f:
            head = f.read(_TAIL_BYTES)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            tail = f.read()
    except FileNotFoundError:
        return
    except OSError as e:
        raise RunStoreError(f"{filename} cannot be read: {e}") from None
    if b"\n" not in head:
        if size > _TAIL_BYTES:
            raise RunStoreError(f"{filename} has no header line")
        return  # nothing complete yet
    header = _complete_text(head[: head.index(b"\n") + 1], filename).rstrip("\n").split(",")
    _check_header(kind, header)
    lines = tail[: tail.rfind(b"\n")].split(b"\n")
    last = lines[-1].decode("utf-8", errors="replace")
    if len(lines) == 1 and size > len(tail):
        return  # one line longer than the tail window; load() checks it
    if last.split(",") == header:
        return
    fields = last.split(",")
    if len(fields) != len(header) or not all(_number_or_empty(x) for x in fields):
        raise RunStoreError(f"{filename} ends with a garbled line: {_show(last)}")


# --- writing -----------------------------------------------------------------------------------


class RunWriter:
    """Writes one run as it trains (one writer per run, in the training worker).

    Curve appends are whole lines followed by flush and fsync. ``update`` rewrites meta.json
    atomically under the run's lock, keeping changes made meanwhile by ``RunStore.rename``.
    While the writer is open it holds the run's writer lock, so ``RunStore.is_active`` is True.
    """

    def __init__(self, run_id: str, path: Path, meta: dict, writer_lock_fd: int) -> None:
        self.run_id = run_id
        self.path = path
        self._meta = meta
        self._writer_lock_fd: int | None = writer_lock_fd
        self._batches: TextIO | None = None
        self._epochs: TextIO | None = None
        self._epoch_columns: tuple[str, ...] | None = None

    # file handles are opened lazily against self.path, which is the final folder by then
    def _open(self, kind: str) -> TextIO:
        self._check_open()
        return open(self.path / _CURVE_FILES[kind], "a", encoding="utf-8", newline="\n")

    def _check_open(self) -> None:
        if self._writer_lock_fd is None:
            raise RunStoreError(f"the writer of run {self.run_id} is closed")

    @staticmethod
    def _append(f: TextIO, text: str) -> None:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())

    def append_batches(self, rows: list[dict]) -> None:
        """Append batch rows, each a dict with exactly the BATCH_COLUMNS keys."""
        lines = []
        for row in rows:
            if set(row) != set(BATCH_COLUMNS):
                missing = sorted(set(BATCH_COLUMNS) - set(row))
                extra = sorted(set(row) - set(BATCH_COLUMNS))
                raise RunStoreError(f"bad batch row: missing {missing}, unknown {extra}")
            lines.append(",".join(_format_value(c, row[c]) for c in BATCH_COLUMNS) + "\n")
        if not lines:
            return
        if self._batches is None:
            self._batches = self._open("batches")
        self._append(self._batches, "".join(lines))

    def append_epoch(self, row: dict) -> None:
        """Append one epoch row. The first row fixes the columns: EPOCH_COLUMNS_BASE, then its
        metric keys in order; later rows may leave metrics out (empty) but not add new ones."""
        if self._epoch_columns is None:
            missing = [c for c in EPOCH_COLUMNS_BASE if c not in row]
            if missing:
                raise RunStoreError(f"bad epoch row: missing {missing}")
            extra = [c for c in row if c not in EPOCH_COLUMNS_BASE]
            for column in extra:
                if not isinstance(column, str) or not _COLUMN_PATTERN.match(column):
                    raise RunStoreError(f"bad epoch column name {_show(column)}")
            columns = (*EPOCH_COLUMNS_BASE, *extra)
            line = ",".join(_format_value(c, row[c]) for c in columns) + "\n"
            self._epochs = self._open("epochs")
            header = ",".join(columns) + "\n"
            self._append(self._epochs, header + line)
            self._epoch_columns = columns
            return
        unknown = [c for c in row if c not in self._epoch_columns]
        if unknown:
            raise RunStoreError(f"bad epoch row: columns {unknown} not in the first epoch row")
        missing = [c for c in EPOCH_COLUMNS_BASE if c not in row]
        if missing:
            raise RunStoreError(f"bad epoch row: missing {missing}")
        line = ",".join(_format_value(c, row.get(c)) for c in self._epoch_columns) + "\n"
        assert self._epochs is not None
        self._append(self._epochs, line)

    def update(
        self,
        *,
        status: str | None = None,
        summary: dict | None = None,
        error: str | None = None,
    ) -> None:
        """Set the status, replace the summary, set the error; rewrites meta.json atomically."""
        if status is not None and status not in STATUSES:
            raise RunStoreError(f"bad status {_show(status)}: expected one of {STATUSES}")
        if summary is not None and not isinstance(summary, dict):
            raise RunStoreError(f"bad summary {_show(summary)}: not a dict")
        if error is not None and not isinstance(error, str):
            raise RunStoreError(f"bad error {_show(error)}: not text")
        if not self.path.is_dir():
            raise RunStoreError(f"run {self.run_id} was deleted")
        with _locked(self.path / _META_LOCK):
            try:
                meta = _read_meta(self.path)  # keeps a rename made meanwhile
            except RunStoreError:
                meta = dict(self._meta)
            if status is not None:
                meta["status"] = status
            if summary is not None:
                meta["summary"] = summary
            if error is not None:
                meta["error"] = error
            meta["updated_at"] = _iso(_utcnow())
            _write_atomic(self.path / _META_FILE, _dump_meta(meta))
            self._meta = meta

    def close(self) -> None:
        """Close the curve files and release the writer lock (idempotent)."""
        for f in (self._batches, self._epochs):
            if f is not None:
                f.close()
        self._batches = self._epochs = None
        if self._writer_lock_fd is not None:
            os.close(self._writer_lock_fd)
            self._writer_lock_fd = None

    def __enter__(self) -> RunWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __del__(self) -> None:
        with contextlib.suppress(Exception):
            self.close()


# --- the store ---------------------------------------------------------------------------------


class RunStore:
    """The runs under one root folder (created if missing)."""

    def __init__(self, root: str | os.PathLike | None = None) -> None:
        self.root = Path(default_runs_dir() if root is None else root)
        try:
            self.root.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError):
            raise RunStoreError(f"runs folder {str(self.root)!r} is not a folder") from None

    def path_of(self, run_id: str, *, must_exist: bool = True) -> Path:
        """The folder of a run; the id must match RUN_ID_PATTERN (and the run exist)."""
        validate_run_id(run_id)
        path = self.root / run_id
        if must_exist and (path.is_symlink() or not path.is_dir()):
            raise RunStoreError(f"unknown run id {run_id!r} in {str(self.root)!r}")
        return path

    def create(self, name: str, config: dict, environment: dict) -> RunWriter:
        """A new run with status "running"; its folder appears complete (meta.json and the
        batches.csv header) or not at all."""
        name = validate_name(name)
        for label, value in (("config", config), ("environment", environment)):
            if not isinstance(value, dict):
                raise RunStoreError(f"bad {label} {_show(value)}: not a dict")
        header = ",".join(BATCH_COLUMNS) + "\n"
        for _attempt in range(100):
            now = _utcnow()
            run_id = f"{now.strftime('%Y%m%d-%H%M%S')}-{_random_hex()}"
            final = self.root / run_id
            staging = self.root / f".creating-{run_id}"
            if final.exists():
                continue
            try:
                os.makedirs(staging, exist_ok=False)
            except FileExistsError:
                continue
            lock_fd = -1
            try:
                meta = {
                    "schema_version": SCHEMA_VERSION,
                    "run_id": run_id,
                    "name": name,
                    "created_at": _iso(now),
                    "updated_at": _iso(now),
                    "status": "running",
                    "config": config,
                    "environment": environment,
                    "summary": {},
                    "error": None,
                }
                data = _dump_meta(meta)
                meta = json.loads(data)  # the writer keeps what was stored
                lock_fd = os.open(staging / _WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
                fcntl.flock(lock_fd, fcntl.LOCK_EX)
                _write_atomic(staging / _META_FILE, data)
                with open(staging / "batches.csv", "w", encoding="utf-8", newline="\n") as f:
                    RunWriter._append(f, header)
                try:
                    os.rename(staging, final)  # fails on an existing, non-empty folder
                except OSError:
                    if final.exists():
                        os.close(lock_fd)
                        shutil.rmtree(staging, ignore_errors=True)
                        continue
                    raise
            except BaseException:
                if lock_fd >= 0:
                    os.close(lock_fd)
                shutil.rmtree(staging, ignore_errors=True)
                raise
            _fsync_dir(self.root)
            return RunWriter(run_id, final, meta, lock_fd)
        raise RunStoreError(f"could not find a free run id in {str(self.root)!r}")

    def _run_dirs(self) -> list[Path]:
        try:
            entries = list(self.root.iterdir())
        except FileNotFoundError:
            return []
        return [
            p for p in entries if RUN_ID_PATTERN.match(p.name) and not p.is_symlink() and p.is_dir()
        ]

    def is_active(self, run_id: str) -> bool:
        """Whether a live RunWriter holds the run (a "running" run whose worker died: False)."""
        path = self.path_of(run_id)
        try:
            fd = os.open(path / _WRITER_LOCK, os.O_RDONLY)
        except OSError:
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return True
        finally:
            os.close(fd)
        return False

    def list_runs(self, *, live_only: bool = False) -> list[RunSummary]:
        """All runs, newest first, unreadable ones included with their reason.

        Checks each run's meta.json fully, and of its curves the header and last line only
        (``load`` reads them whole). ``live_only``: only the runs a live writer holds, and
        no file of the others is read (a lock test each), for pages that poll."""
        rows: list[tuple[_dt.datetime, RunSummary]] = []
        for run_dir in self._run_dirs():
            run_id = run_dir.name
            if live_only and not self.is_active(run_id):
                continue
            try:
                meta = _read_meta(run_dir)
                for kind in CURVES:
                    _quick_check_curve(run_dir, kind)
                row = RunSummary(
                    run_id=run_id,
                    name=meta["name"],
                    status=meta["status"],
                    created_at=meta["created_at"],
                    config=meta["config"],
                    summary=meta["summary"],
                    updated_at=meta["updated_at"],
                    error=meta["error"],
                    active=meta["status"] == "running" and self.is_active(run_id),
                )
            except Exception as e:
                if not run_dir.is_dir():
                    continue  # deleted while listing
                reason = str(e) if isinstance(e, RunStoreError) else f"{type(e).__name__}: {e}"
                row = RunSummary(
                    run_id=run_id,
                    name="",
                    status=UNREADABLE,
                    created_at=_time_of_id(run_id),
                    config={},
                    summary={},
                    readable=False,
                    reason=reason,
                )
            rows.append((self._sort_time(row), row))
        rows.sort(key=lambda item: (item[0], item[1].run_id), reverse=True)
        return [row for _, row in rows]

    @staticmethod
    def _sort_time(row: RunSummary) -> _dt.datetime:
        for text in (row.created_at, _time_of_id(row.run_id)):
            with contextlib.suppress(ValueError):
                t = _dt.datetime.fromisoformat(text)
                return t if t.tzinfo else t.replace(tzinfo=_dt.timezone.utc)
        return _dt.datetime.min.replace(tzinfo=_dt.timezone.utc)  # pragma: no cover

    def _reason(self, run_id: str, e: RunStoreError) -> RunStoreError:
        return RunStoreError(f"run {run_id} is unreadable: {e}")

    def load_meta(self, run_id: str) -> dict:
        """The run's metadata; RunStoreError with the reason if unreadable."""
        path = self.path_of(run_id)
        try:
            return _read_meta(path)
        except RunStoreError as e:
            raise self._reason(run_id, e) from None

    def load_curve(self, run_id: str, curve: str) -> pd.DataFrame:
        """One curve ("batches" or "epochs") as a DataFrame, without the half-written last line."""
        if curve not in CURVES:
            raise RunStoreError(f"bad curve {_show(curve)}: expected one of {CURVES}")
        path = self.path_of(run_id)
        try:
            return _read_curve(path, curve)
        except RunStoreError as e:
            raise self._reason(run_id, e) from None

    def load(self, run_id: str) -> Run:
        """The run's metadata and curves; RunStoreError with the reason if unreadable."""
        meta = self.load_meta(run_id)
        return Run(
            run_id=run_id,
            meta=meta,
            batches=self.load_curve(run_id, "batches"),
            epochs=self.load_curve(run_id, "epochs"),
        )

    def rename(self, run_id: str, new_name: str) -> None:
        """Give a run a new name (stored in meta.json; the folder keeps its id)."""
        new_name = validate_name(new_name)
        path = self.path_of(run_id)
        with _locked(path / _META_LOCK):
            try:
                meta = _read_meta(path)
            except RunStoreError as e:
                raise self._reason(run_id, e) from None
            meta["name"] = new_name
            meta["updated_at"] = _iso(_utcnow())
            _write_atomic(path / _META_FILE, _dump_meta(meta))

    def delete(self, run_id: str) -> None:
        """Remove a run (readable or not). It disappears from listings at once."""
        path = self.path_of(run_id)
        trash = self.root / f".deleting-{run_id}-{secrets.token_hex(4)}"
        try:
            os.rename(path, trash)
        except FileNotFoundError:
            raise RunStoreError(f"unknown run id {run_id!r} in {str(self.root)!r}") from None
        shutil.rmtree(trash, ignore_errors=True)

    def export_csv(self, run_id: str, curve: str, out: TextIO) -> None:
        """Write a curve ("batches" or "epochs") as CSV with a header to a text file object."""
        df = self.load_curve(run_id, curve)
        df.to_csv(out, index=False, lineterminator="\n")
