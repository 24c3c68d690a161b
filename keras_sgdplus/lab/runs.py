"""The saved-runs store: one folder per training run under a root (``saved_runs/`` by default).

This is the only code that reads or writes the run folders. Layout of a run::

    <root>/<run_id>/meta.json     schema_version, run_id, name, times, status, config,
                                  environment, summary, error; replaced atomically
    <root>/<run_id>/batches.csv   one line per training batch (BATCH_COLUMNS), appended;
                                  schema 1 runs lack the last column, grad_norm (read as NaN)
    <root>/<run_id>/epochs.csv    one line per epoch (EPOCH_COLUMNS_BASE + metrics), appended
    <root>/<run_id>/checkpoint.npz  the training state after the last whole epoch
    <root>/<run_id>/model.keras   the model at the run's end or stop (Keras's format)
    <root>/<run_id>/snapshots/    the weights at up to 200 steps (`engine.snapshots`):
                                  layout.json, step-<step>.npy (a float32 vector each)
    <root>/<run_id>/landscape/    the run's computed loss landscapes (`lab.run_landscape`):
                                  <kind>.npz and <kind>.json, <kind>.progress.json

A run id is the UTC creation time plus random hex (``20261121-224501-3f9a2c``); the user's name
for a run is data in ``meta.json`` and never part of a path. Reading uses only ``json`` and
``pandas.read_csv``: nothing read from disk is ever executed. A run whose ``config`` does not
parse as a ``TrainingConfig`` (``lab/config.py``) is unreadable, with the reason, like a run
with a corrupt file; ``meta["config"]`` stays the stored dict.

Curve files are CSV with a header line, ``\n`` line ends, no quoting: an integer column holds
``str(int)``, a float column the ``repr`` of the float (the shortest text that reads back as
the same float64; ``nan``, ``inf``, ``-inf``), an unknown value is empty. A line is complete
once its ``\n`` is written: readers drop a half-written last line and ``read_curve_since``
leaves it for the next read.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import fcntl
import io
import json
import numbers
import os
import platform
import re
import secrets
import shutil
import tempfile
import threading
import time
import unicodedata
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO, NamedTuple, TextIO, cast

import numpy as np
import pandas as pd

from keras_sgdplus.lab.config import TrainingConfig
from keras_sgdplus.lab.run_summary import summarize

SCHEMA_VERSION = 2  # 2: batches.csv ends with grad_norm (schema 1 runs still load)
STATUSES = ("queued", "running", "completed", "stopped", "diverged", "failed", "interrupted")
#: A run waiting for its turn to train (`run_queue.py`): its worker is alive and holds it.
QUEUED = "queued"
#: The statuses of a run a live worker holds (waiting for its turn, or training).
LIVE_STATUSES = (QUEUED, "running")
#: The status of a run whose worker ended without ending the run (killed, or its machine
#: lost): set by the first reader that finds the run "running" with no writer holding it.
INTERRUPTED = "interrupted"
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
    "grad_norm",  # the gradient's global norm of the step; NaN (empty) when unknown
)
BATCH_COLUMNS_V1 = BATCH_COLUMNS[:-1]  # schema 1: no grad_norm
EPOCH_COLUMNS_BASE = ("epoch", "loss", "wall_time", "samples_seen")
CURVES = ("batches", "epochs")
MAX_NAME_LENGTH = 200

RUN_ID_PATTERN = re.compile(r"\A[0-9]{8}-[0-9]{6}-[0-9a-f]{6}\Z")
_COLUMN_PATTERN = re.compile(r"\A[A-Za-z_][A-Za-z0-9_.\-]{0,99}\Z")
_INT_COLUMNS = {"step", "epoch", "batch", "batch_size", "samples_seen"}
_META_FILE = "meta.json"
_META_LOCK = ".meta.lock"
_WRITER_LOCK = ".writer.lock"
_STOP_FILE = "stop-requested"  # made by `RunStore.request_stop`; the worker polls it
CHECKPOINT_FILE = "checkpoint.npz"  # the state after the last whole epoch (`lab.checkpoints`)
EPOCHS_DONE = "epochs_done"  # the checkpoint's array of the whole epochs it holds
MODEL_FILE = "model.keras"  # the model as Keras saves it, at the run's end or stop
_CURVE_FILES = {"batches": "batches.csv", "epochs": "epochs.csv"}
SNAPSHOT_DIR = "snapshots"  # weight snapshots (`engine.snapshots`)
_SNAPSHOT_LAYOUT = "layout.json"
_SNAPSHOT_PATTERN = re.compile(r"\Astep-([0-9]{9,})\.npy\Z")
LANDSCAPE_DIR = "landscape"  # computed landscapes (`lab.run_landscape`)
LANDSCAPE_KINDS = ("pca", "random")
_TAIL_BYTES = 65536


def exact_float_reading(pandas_version: str) -> dict[str, str]:
    """The `read_csv` argument that makes `pandas_version` read every float back exactly.

    The curve files hold each float in its shortest round-trip form (`repr`). pandas up to
    3.0 parses floats with a fast converter that can land one ulp off (measured on 3.0.0:
    a float64 written with `repr` read back different for some of 200k normal samples), so
    those versions need `float_precision="round_trip"`; pandas 3.1 reads exactly by default
    and deprecates the argument.
    """
    major, minor = (int(part) for part in re.findall(r"\d+", pandas_version)[:2])
    return {"float_precision": "round_trip"} if (major, minor) < (3, 1) else {}


_EXACT_FLOATS = exact_float_reading(pd.__version__)  # for the installed pandas, once


class RunStoreError(ValueError):
    """A bad request to the store (unknown run id, bad name, bad curve) or an unreadable run."""


class RunIsLiveError(RunStoreError):
    """The run is still training (a writer holds it): it cannot be deleted now."""


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


def _cut_lines(path: Path, keep: int) -> None:
    """Cuts a curve file after its header and `keep` lines (in place: one truncate)."""
    with open(path, "rb") as f:
        for read in range(keep + 1):  # the header, then the lines kept
            if not f.readline().endswith(b"\n"):
                raise RunStoreError(f"{path.name} has {max(read - 1, 0)} lines, not {keep}")
        offset = f.tell()
    os.truncate(path, offset)


def is_locked(path: Path) -> bool:
    """Whether a process holds an `flock` on the file `path` (False for a file that is gone,
    or cannot be opened)."""
    try:
        fd = os.open(path, os.O_RDONLY)  # flock needs no write access
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)
    return False


def _try_lock(fd: int) -> bool:
    """Takes an exclusive flock on `fd` without waiting; False when another holds it."""
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


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
        if tuple(header) not in (BATCH_COLUMNS, BATCH_COLUMNS_V1):
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


def _with_grad_norm(kind: str, df: pd.DataFrame) -> pd.DataFrame:
    """Batches of a schema 1 run get the column they lack, grad_norm, as NaN (not recorded)."""
    if kind == "batches" and "grad_norm" not in df.columns:
        df = df.assign(grad_norm=pd.Series(np.nan, index=df.index, dtype="float64"))
    return df


def _complete_bytes(raw: bytes) -> bytes:
    """The bytes up to and with the last newline: a half-written last line is left out."""
    return raw[: raw.rfind(b"\n") + 1]


def _decode(raw: bytes, filename: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise RunStoreError(f"{filename} is not UTF-8 text") from None


def _garbled(filename: str, body: str, commas: int, after_byte: int) -> RunStoreError | None:
    """The error naming the first data line in ``body`` that is not ``commas + 1`` unquoted
    fields (None if every line is). Lines count from the header (line 1) when ``after_byte``
    is 0, else from the first line after that byte of the file."""
    for number, line in enumerate(body.split("\n")[:-1], start=1):
        if line.count(",") != commas or '"' in line or "\r" in line:
            where = (
                f"line {number + 1}"
                if after_byte == 0
                else f"line {number} after byte {after_byte}"
            )
            return RunStoreError(f"{filename} {where} is garbled: {_show(line)}")
    return None


def _parse_curve(kind: str, text: str, *, after_byte: int = 0) -> pd.DataFrame:
    """Complete curve lines as a DataFrame: ``text`` is the header line, then data lines, each
    ending in a newline (the data lines of a tail read start ``after_byte`` into the file).

    Every data line must have the header's number of fields, no quotes and no carriage
    return (else "garbled", naming the line), and every column must parse as numbers.
    Batches of a schema 1 run get grad_norm as NaN. The check is by totals first (commas ==
    fields x lines); a file passing it with lines that compensate each other (one short, one
    long) is caught by pandas's field count and the row count, then named line by line."""
    filename = _CURVE_FILES[kind]
    header_end = text.find("\n")
    if header_end < 0:
        return _empty_curve(BATCH_COLUMNS if kind == "batches" else EPOCH_COLUMNS_BASE)
    header = text[:header_end].split(",")
    _check_header(kind, header)
    body = text[header_end + 1 :]
    if not body:
        return _with_grad_norm(kind, _empty_curve(header))
    commas, lines = len(header) - 1, body.count("\n")
    if body.count(",") != commas * lines or '"' in body or "\r" in body:
        raise _garbled(filename, body, commas, after_byte) or RunStoreError(
            f"{filename} has quotes or carriage returns"
        )
    try:
        df = pd.read_csv(io.StringIO(text), **_EXACT_FLOATS)
    except Exception as e:
        raise _garbled(filename, body, commas, after_byte) or RunStoreError(
            f"{filename} cannot be parsed: {e}"
        ) from None
    if len(df) != lines or not isinstance(df.index, pd.RangeIndex):  # compensating lines
        raise _garbled(filename, body, commas, after_byte) or RunStoreError(
            f"{filename} cannot be parsed: {len(df)} rows from {lines} lines"
        )
    for column in df.columns:
        dtype = df[column].dtype
        if not pd.api.types.is_numeric_dtype(dtype) or pd.api.types.is_bool_dtype(dtype):
            raise RunStoreError(f"{filename} column {column!r} holds values that are not numbers")
    return _with_grad_norm(kind, df)


def _read_curve(run_dir: Path, kind: str) -> pd.DataFrame:
    filename = _CURVE_FILES[kind]
    try:
        raw = (run_dir / filename).read_bytes()
    except FileNotFoundError:
        raw = b""
    except OSError as e:
        raise RunStoreError(f"{filename} cannot be read: {e}") from None
    return _parse_curve(kind, _decode(_complete_bytes(raw), filename))


class CurveTail(NamedTuple):
    """What ``RunStore.read_curve_since`` read.

    ``rows``: the complete lines after the offset given, as a DataFrame with the curve's
    columns (as ``load_curve`` gives them; index 0..len-1). ``offset``: the bytes of the file
    consumed so far, the end of the last complete line (pass it to the next call).
    ``restarted``: the file no longer continues what was consumed (shorter than the offset,
    or no line ends there: truncated or replaced), so ``rows`` were read from its start."""

    rows: pd.DataFrame
    offset: int
    restarted: bool


def _file_tail(f: BinaryIO, offset: int) -> tuple[bytes, bytes, bool]:
    """``(header line, complete new lines, True)`` if the file continues the ``offset`` bytes
    consumed: it holds a whole header line within them and a line ends at ``offset``. Else
    ``(b"", its complete lines from the start, False)``."""
    if offset > 0:
        header = f.readline()
        if header.endswith(b"\n") and len(header) <= offset:
            f.seek(offset - 1)
            new = f.read()
            if new[:1] == b"\n":
                return header, _complete_bytes(new[1:]), True
    f.seek(0)
    return b"", _complete_bytes(f.read()), False


def _read_curve_since(run_dir: Path, kind: str, offset: int) -> CurveTail:
    """The tail of a curve file after ``offset`` bytes (see CurveTail). Reads the header line
    and the new bytes only; a half-written last line is not consumed."""
    filename = _CURVE_FILES[kind]
    try:
        with open(run_dir / filename, "rb") as f:
            header, chunk, continued = _file_tail(f, offset)
    except FileNotFoundError:
        return CurveTail(_parse_curve(kind, ""), 0, offset > 0)
    except OSError as e:
        raise RunStoreError(f"{filename} cannot be read: {e}") from None
    if continued:
        rows = _parse_curve(kind, _decode(header + chunk, filename), after_byte=offset)
        return CurveTail(rows, offset + len(chunk), False)
    return CurveTail(_parse_curve(kind, _decode(chunk, filename)), len(chunk), offset > 0)


def _head_and_tail(path: Path) -> tuple[bytes, int, bytes] | None:
    """The first and the last 64 KiB of a file and its size; None if it does not exist."""
    try:
        with open(path, "rb") as f:
            head = f.read(_TAIL_BYTES)
            size = f.seek(0, os.SEEK_END)
            f.seek(max(0, size - _TAIL_BYTES))
            return head, size, f.read()
    except FileNotFoundError:
        return None
    except OSError as e:
        raise RunStoreError(f"{path.name} cannot be read: {e}") from None


def _last_curve_row(run_dir: Path, kind: str) -> dict[str, float] | None:
    """The last complete line of a curve file as {column: value}, read from its header line
    and its last 64 KiB only; None while the file has no complete data line."""
    filename = _CURVE_FILES[kind]
    ends = _head_and_tail(run_dir / filename)
    if ends is None or b"\n" not in ends[0]:
        return None
    head, size, tail = ends
    header = head[: head.index(b"\n") + 1]
    complete = tail[: tail.rfind(b"\n") + 1]
    last = complete[complete.rfind(b"\n", 0, len(complete) - 1) + 1 :]
    if size <= len(header) or not last or last == header:
        return None
    row = _parse_curve(kind, _decode(header + last, filename), after_byte=size - len(last))
    return {column: float(value) for column, value in row.iloc[0].items()}


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
    ends = _head_and_tail(run_dir / filename)
    if ends is None:
        return
    head, size, tail = ends
    if b"\n" not in head:
        if size > _TAIL_BYTES:
            raise RunStoreError(f"{filename} has no header line")
        return  # nothing complete yet
    header = _decode(head[: head.index(b"\n")], filename).split(",")
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

#: Rows formatted per piece by ``append_batch_columns``: bounds the text held at once and how
#: long one C-level formatting loop holds the GIL (a few ms) against the training thread.
_ROWS_PER_PIECE = 8192
_INT64_MAX = np.iinfo(np.int64).max


def _batch_arrays(columns: Mapping[str, Any], *, copy: bool = False) -> dict[str, np.ndarray]:
    """The batch columns as 1-D arrays of equal length, in BATCH_COLUMNS order: int64 for the
    integer columns (any integer dtype accepted), float64 for the others (any integer or float
    dtype accepted, converted exactly as ``float()`` converts a scalar). RunStoreError naming
    the column otherwise. ``copy``: never share memory with the arrays given."""
    if not isinstance(columns, Mapping):
        raise RunStoreError(f"bad batch columns {_show(columns)}: not a mapping")
    if set(columns) != set(BATCH_COLUMNS):
        missing = sorted(set(BATCH_COLUMNS) - set(columns))
        extra = sorted(map(str, set(columns) - set(BATCH_COLUMNS)))
        raise RunStoreError(f"bad batch columns: missing {missing}, unknown {extra}")
    arrays: dict[str, np.ndarray] = {}
    for name in BATCH_COLUMNS:
        values = np.asarray(columns[name])
        if values.ndim != 1:
            raise RunStoreError(f"bad batch column {name!r}: {values.ndim}-D, expected 1-D")
        kind = values.dtype.kind
        if name in _INT_COLUMNS:
            if kind not in "iu" and values.size:  # an empty list is float64 to NumPy
                raise RunStoreError(f"bad batch column {name!r}: {values.dtype}, not integers")
            if kind == "u" and values.size and values.max() > _INT64_MAX:
                raise RunStoreError(f"bad batch column {name!r}: values beyond int64")
            arrays[name] = np.array(values, dtype=np.int64, copy=copy or None)
        elif kind in "iuf":
            arrays[name] = np.array(values, dtype=np.float64, copy=copy or None)
        else:
            raise RunStoreError(f"bad batch column {name!r}: {values.dtype}, not numbers")
        if len(arrays[name]) != len(arrays[BATCH_COLUMNS[0]]):
            raise RunStoreError(
                f"bad batch columns: {name!r} has {len(values)} values, "
                f"{BATCH_COLUMNS[0]!r} has {len(arrays[BATCH_COLUMNS[0]])}"
            )
    return arrays


def _column_texts(values: np.ndarray) -> list[str]:
    """Each value of an int64 or float64 array as ``_format_value`` writes it: ``str`` of an
    int, ``repr`` of a float. A run of equal values (bit for bit, so -0.0 and NaN payloads
    stay apart) is formatted once when runs are at least two values long on average."""
    to_text = float.__repr__ if values.dtype.kind == "f" else int.__repr__
    if len(values) > 1:
        keys = values.view(np.int64)
        starts = np.flatnonzero(keys[1:] != keys[:-1]) + 1
        if 2 * len(starts) < len(values):
            starts = np.concatenate(([0], starts))
            texts = np.array(list(map(to_text, values[starts].tolist())), dtype=object)
            lengths = np.diff(starts, append=len(values))
            return np.repeat(texts, lengths).tolist()
    return list(map(to_text, values.tolist()))


def _batch_lines(arrays: Mapping[str, np.ndarray], start: int, stop: int) -> str:
    """Rows ``start:stop`` of checked batch arrays as CSV lines, each ending in a newline."""
    texts = [_column_texts(arrays[name][start:stop]) for name in BATCH_COLUMNS]
    return "\n".join(map(",".join, zip(*texts, strict=True))) + "\n"


def _snapshot_files(run_dir: Path) -> list[tuple[int, Path]]:
    """The run's weight snapshot files with their steps, in step order."""
    found = []
    with contextlib.suppress(FileNotFoundError):
        for entry in os.scandir(run_dir / SNAPSHOT_DIR):
            match = _SNAPSHOT_PATTERN.match(entry.name)
            if match:
                found.append((int(match.group(1)), Path(entry.path)))
    return sorted(found)


def _cut_snapshots(run_dir: Path, keep_steps: int) -> None:
    """Removes the snapshots after step `keep_steps` (a resumed run trains them again)."""
    for step, file in _snapshot_files(run_dir):
        if step > keep_steps:
            file.unlink(missing_ok=True)


@dataclass(frozen=True)
class WeightPath:
    """A run's weight snapshots: `steps` (k,), `vectors` (k, n) float32, one row a step,
    and the `layout` that splits a row into the model's variables."""

    steps: np.ndarray
    vectors: np.ndarray
    layout: list[dict[str, Any]]


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

    def append_batch_columns(self, columns: Mapping[str, Any], *, fsync: bool = True) -> int:
        """Append batch rows given as columns: a mapping with exactly the BATCH_COLUMNS keys,
        each a 1-D array (or sequence) of the same length; returns the number of rows.

        Integer columns take any integer dtype, the others any integer or float dtype (stored
        as float64). The lines are byte for byte what ``append_batches`` writes for the same
        values, formatted a column at a time. ``fsync`` False: the lines reach the OS (readers
        see them) but not necessarily the disk; ``sync_batches`` does that later."""
        self._check_open()
        arrays = _batch_arrays(columns)
        count = len(arrays[BATCH_COLUMNS[0]])
        if count == 0:
            return 0
        if self._batches is None:
            self._batches = self._open("batches")
        for start in range(0, count, _ROWS_PER_PIECE):
            self._batches.write(_batch_lines(arrays, start, start + _ROWS_PER_PIECE))
        self._batches.flush()
        if fsync:
            os.fsync(self._batches.fileno())
        return count

    def sync_batches(self) -> None:
        """fsync batches.csv: every line appended so far is on disk (nothing to do if none)."""
        self._check_open()
        if self._batches is not None:
            self._batches.flush()
            os.fsync(self._batches.fileno())

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
        environment: dict | None = None,
    ) -> None:
        """Set the status, replace the summary, set the error, add to the environment;
        rewrites meta.json atomically."""
        if status is not None and status not in STATUSES:
            raise RunStoreError(f"bad status {_show(status)}: expected one of {STATUSES}")
        if summary is not None and not isinstance(summary, dict):
            raise RunStoreError(f"bad summary {_show(summary)}: not a dict")
        if error is not None and not isinstance(error, str):
            raise RunStoreError(f"bad error {_show(error)}: not text")
        if environment is not None and not isinstance(environment, dict):
            raise RunStoreError(f"bad environment {_show(environment)}: not a dict")
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
            if environment is not None:
                meta["environment"] = {**(meta.get("environment") or {}), **environment}
            meta["updated_at"] = _iso(_utcnow())
            _write_atomic(self.path / _META_FILE, _dump_meta(meta))
            self._meta = meta

    def write_checkpoint(self, arrays: Mapping[str, np.ndarray]) -> None:
        """Stores the training state (`lab.checkpoints`: named arrays, never pickled) as the
        run's checkpoint, whole or not at all (a temporary file, fsync, os.replace)."""
        self._check_open()
        buffer = io.BytesIO()
        np.savez(buffer, **dict(arrays))  # type: ignore[arg-type]
        _write_atomic(self.path / CHECKPOINT_FILE, buffer.getvalue())

    def write_snapshot_layout(self, layout: list[dict[str, Any]]) -> None:
        """Stores how a weight snapshot splits into the model's variables (their paths and
        shapes, in order)."""
        self._check_open()
        folder = self.path / SNAPSHOT_DIR
        folder.mkdir(exist_ok=True)
        _write_atomic(folder / _SNAPSHOT_LAYOUT, (json.dumps(layout) + "\n").encode())

    def write_snapshot(self, step: int, vector: np.ndarray) -> None:
        """Stores the weights after `step` steps (one float32 vector, `.npy`, never
        pickled), whole or not at all (a temporary file, then os.replace; no fsync: up to
        200 a run, and a lost one only thins the path)."""
        self._check_open()
        folder = self.path / SNAPSHOT_DIR
        folder.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(vector, dtype="float32"), allow_pickle=False)
        tmp = folder / f".step-{step:09d}.{secrets.token_hex(4)}.tmp"
        tmp.write_bytes(buffer.getvalue())
        os.replace(tmp, folder / f"step-{step:09d}.npy")

    def write_model(self, save: Callable[[str], None]) -> None:
        """Stores the model as `model.keras` with `save(path)` (Keras's `model.save`) into a
        temporary `.keras` file first, then os.replace: whole or not at all."""
        self._check_open()
        tmp = self.path / f".{MODEL_FILE}.{secrets.token_hex(4)}.keras"
        try:
            save(str(tmp))
            os.replace(tmp, self.path / MODEL_FILE)
        finally:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
        _fsync_dir(self.path)

    @property
    def stop_requested(self) -> bool:
        """Whether a stop was asked for this run (`RunStore.request_stop`, from any process
        or host that shares the folder): one `stat` call, cheap enough for every chunk."""
        return (self.path / _STOP_FILE).exists()

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


class BackgroundBatchWriter:
    """Appends batch columns to a run from a daemon thread: the training thread never waits
    on the disk.

    ``put`` checks and copies one chunk of columns (as ``RunWriter.append_batch_columns``
    takes them) and queues it; the thread takes everything queued, writes it in order as
    one append (readers see the lines at once), and fsyncs at most once per
    ``sync_seconds`` on its own: a line is on disk at most about ``sync_seconds`` after it
    was written, also when no more come. ``flush`` blocks until every chunk put before it
    is on disk (it fsyncs at once: one fsync per call); ``close`` does the same and ends the
    thread (idempotent). The queue is unbounded: a writer slower than the training grows it
    rather than slow the training.

    An exception in the thread stops the writing; the next ``put`` or ``flush`` (each one
    after that too) raises it as RunStoreError with the reason, and ``close`` raises it
    unless a ``put`` or ``flush`` already did. While this object is open, batches of the run
    go through it only, and the RunWriter is closed only after it (its epochs and metadata
    may be written meanwhile from the training thread)."""

    def __init__(self, writer: RunWriter, *, sync_seconds: float = 0.5) -> None:
        self.writer = writer
        self.sync_seconds = sync_seconds
        self._cond = threading.Condition()
        self._queue: list[dict[str, np.ndarray] | Callable[[], None]] = []
        self._put = 0  # chunks put so far
        self._written = 0  # chunks appended (the OS has them)
        self._synced = 0  # chunks fsynced
        self._flush_to = 0  # the chunk count a flush waits for
        self._last_sync = time.monotonic()
        self._closing = False
        self._error: BaseException | None = None
        self._error_reported = False
        self._thread = threading.Thread(
            target=self._run, name=f"batches of {writer.run_id}", daemon=True
        )
        self._thread.start()

    def put(self, columns: Mapping[str, Any]) -> None:
        """Queue a chunk of batch rows (checked and copied now; written in put order)."""
        arrays = _batch_arrays(columns, copy=True)
        with self._cond:
            self._raise_error()
            if self._closing:
                raise RunStoreError(f"the batch writer of run {self.writer.run_id} is closed")
            self._queue.append(arrays)
            self._put += 1
            self._cond.notify_all()

    def after(self, action: Callable[[], None]) -> None:
        """Run ``action`` in the writer's thread once every chunk put before it is written
        (as ``flush(sync=False)`` would wait for), in order with the chunks and the other
        actions: an epoch's row and checkpoint follow its batches without the training
        thread waiting for them. An exception in it stops the writing, as a failed write
        does."""
        with self._cond:
            self._raise_error()
            if self._closing:
                raise RunStoreError(f"the batch writer of run {self.writer.run_id} is closed")
            self._queue.append(action)
            self._cond.notify_all()

    def flush(self, *, sync: bool = True) -> None:
        """Block until every chunk put so far is written and fsynced; with ``sync=False``
        until it is written (in the file for every reader, and safe from a killed process;
        the fsync follows within ``sync_seconds``)."""
        with self._cond:
            self._raise_error()
            target = self._put
            if sync:
                self._flush_to = max(self._flush_to, target)
            self._cond.notify_all()
            while (self._synced if sync else self._written) < target and self._error is None:
                if not self._thread.is_alive():  # cannot happen: the thread ends after a close
                    raise RunStoreError(f"the batch writer of run {self.writer.run_id} stopped")
                self._cond.wait(0.5)
            self._raise_error()

    def close(self) -> None:
        """Write and fsync what is queued, then end the thread (idempotent)."""
        with self._cond:
            self._closing = True
            self._cond.notify_all()
        self._thread.join()
        with self._cond:
            if not self._error_reported:
                self._raise_error()

    def __enter__(self) -> BackgroundBatchWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # --- the thread; every attribute above is read and changed under self._cond ---------------

    def _raise_error(self) -> None:
        if self._error is not None:
            self._error_reported = True
            e = self._error
            reason = str(e) if isinstance(e, RunStoreError) else f"{type(e).__name__}: {e}"
            raise RunStoreError(
                f"writing the batches of run {self.writer.run_id} failed: {reason}"
            ) from e

    def _sync_due(self) -> bool:
        return self._written > self._synced and (
            self._flush_to > self._synced
            or self._closing
            or time.monotonic() - self._last_sync >= self.sync_seconds
        )

    def _run(self) -> None:
        try:
            while self._step():
                pass
        except BaseException as e:  # reported to the caller by put, flush or close
            with self._cond:
                self._error = e
                self._queue.clear()
                self._cond.notify_all()

    def _step(self) -> bool:
        """Wait for work; append what is queued; fsync if due. False once closed and done."""
        with self._cond:
            while not self._queue and not self._sync_due():
                if self._closing:
                    return False  # nothing queued, everything written is synced
                dirty = self._written > self._synced
                wait = self._last_sync + self.sync_seconds - time.monotonic() if dirty else None
                self._cond.wait(wait)
            # the chunks before the first action, merged into one append; then that action
            queued = self._queue
            end = next((i for i, item in enumerate(queued) if callable(item)), len(queued))
            chunks = cast(list[dict[str, np.ndarray]], queued[:end])
            action = cast(Callable[[], None], queued[end]) if end < len(queued) else None
            del self._queue[: end + 1]
            taken = self._written + len(chunks)
        if chunks:
            merged = {c: np.concatenate([chunk[c] for chunk in chunks]) for c in BATCH_COLUMNS}
            self.writer.append_batch_columns(merged, fsync=False)
        with self._cond:
            self._written = taken
            self._cond.notify_all()
        if action is not None:
            action()
        with self._cond:
            sync = self._sync_due()
        if sync:
            self.writer.sync_batches()
            with self._cond:
                self._synced = taken
                self._last_sync = time.monotonic()
                self._cond.notify_all()
        return True


# --- the store ---------------------------------------------------------------------------------


def _recorded_summary(run_dir: Path, planned: dict) -> dict:
    """The summary of a run from its files: its epoch rows, and the last batch recorded
    (steps, samples seen, and the elapsed time as far as the files tell)."""
    epochs = _read_curve(run_dir, "epochs")
    last_batch = _last_curve_row(run_dir, "batches") or {}
    rows = epochs.to_dict("records")
    times = [float(last_batch.get("wall_time", 0.0))] + [float(r["wall_time"]) for r in rows]
    samples = [float(last_batch.get("samples_seen", 0))] + [r["samples_seen"] for r in rows]
    return summarize(
        rows,
        total_steps=planned.get("total_steps"),
        steps_per_epoch=planned.get("steps_per_epoch"),
        steps=int(last_batch["step"]) + 1 if "step" in last_batch else 0,
        samples_seen=int(max(samples)),
        elapsed=max(times),
    )


def _reconciled(run_dir: Path, meta: dict) -> dict:
    """`meta`, or, for a "running" or "queued" run that no writer holds, the run made
    "interrupted"
    with its summary computed from what it recorded, stored in its meta.json (returned
    without storing it where the folder is read-only).

    The writer lock is taken (exclusively, without waiting) while meta.json is rewritten,
    so a worker cannot start writing meanwhile; when a writer holds it, the run is live and
    `meta` is returned as it is."""
    if meta["status"] not in LIVE_STATUSES:
        return meta
    try:
        fd = os.open(run_dir / _WRITER_LOCK, os.O_RDONLY)  # flock needs no write access
    except FileNotFoundError:
        return meta  # a run folder appears with its lock held: none means none was made
    except OSError as e:
        raise RunStoreError(f"its writer lock cannot be opened: {e}") from None
    try:
        if not _try_lock(fd):
            return meta  # a live writer
        try:
            with _locked(run_dir / _META_LOCK):
                return _store_interrupted(run_dir)
        except OSError:  # a folder this reader may not write: the same, not stored
            return _interrupted(run_dir, _read_meta(run_dir))
    finally:
        os.close(fd)


def _interrupted(run_dir: Path, meta: dict) -> dict:
    if meta["status"] not in LIVE_STATUSES:
        return meta  # reconciled by another reader meanwhile
    summary = _recorded_summary(run_dir, meta["summary"])
    steps, planned = summary["steps"], summary.get("total_steps")
    reached = f"step {steps:,}" + (f" of {planned:,}" if isinstance(planned, int) else "")
    where = (
        "while the run waited for its turn"
        if meta["status"] == QUEUED
        else f"without finishing the run (killed, or its machine went down) after {reached}"
    )
    return {
        **meta,
        "status": INTERRUPTED,
        "summary": summary,
        "error": meta["error"]
        or f"The worker ended {where}; everything recorded until then is kept.",
        "updated_at": _iso(_utcnow()),
    }


def _store_interrupted(run_dir: Path) -> dict:
    meta = _read_meta(run_dir)
    reconciled = _interrupted(run_dir, meta)
    if reconciled is not meta:
        _write_atomic(run_dir / _META_FILE, _dump_meta(reconciled))
    return reconciled


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

    def create(
        self, name: str, config: dict, environment: dict, *, status: str = "running"
    ) -> RunWriter:
        """A new run with `status` "running" (or "queued", for a run that waits for its
        turn); its folder appears complete (meta.json and the batches.csv header) or not at
        all."""
        name = validate_name(name)
        if status not in LIVE_STATUSES:
            raise RunStoreError(f"bad status {_show(status)}: expected one of {LIVE_STATUSES}")
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
                    "status": status,
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
        return is_locked(self.path_of(run_id) / _WRITER_LOCK)

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
                for kind in CURVES:
                    _quick_check_curve(run_dir, kind)
                meta = _reconciled(run_dir, _read_meta(run_dir))
                row = RunSummary(
                    run_id=run_id,
                    name=meta["name"],
                    status=meta["status"],
                    created_at=meta["created_at"],
                    config=meta["config"],
                    summary=meta["summary"],
                    updated_at=meta["updated_at"],
                    error=meta["error"],
                    active=meta["status"] in LIVE_STATUSES and self.is_active(run_id),
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
            return _reconciled(path, _read_meta(path))
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

    def last_row(self, run_id: str, curve: str) -> dict[str, float] | None:
        """The last complete row of a curve as {column: value} (None before the first),
        read from the file's header and its end only: what a progress bar needs, at the same
        cost at a million rows as at ten."""
        if curve not in CURVES:
            raise RunStoreError(f"bad curve {_show(curve)}: expected one of {CURVES}")
        try:
            return _last_curve_row(self.path_of(run_id), curve)
        except RunStoreError as e:
            raise self._reason(run_id, e) from None

    def read_curve_since(self, run_id: str, curve: str, offset: int) -> CurveTail:
        """The complete lines of a curve appended after the first ``offset`` bytes of its file
        (0: the whole curve), and the new offset; see CurveTail. Reads only the header line
        and the new bytes, with the checks of ``load_curve``; a half-written last line is left
        for the next call. A file that no longer continues the bytes consumed (truncated,
        replaced) is read from its start, with ``restarted`` True. Concatenating the rows of
        successive calls gives what ``load_curve`` gives."""
        if curve not in CURVES:
            raise RunStoreError(f"bad curve {_show(curve)}: expected one of {CURVES}")
        if not isinstance(offset, numbers.Integral) or isinstance(offset, bool) or offset < 0:
            raise RunStoreError(f"bad offset {_show(offset)}: expected a byte count >= 0")
        path = self.path_of(run_id)
        try:
            return _read_curve_since(path, curve, int(offset))
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

    def load_checkpoint(self, run_id: str) -> dict[str, np.ndarray] | None:
        """The run's checkpoint (`RunWriter.write_checkpoint`) as named arrays, None if it has
        none; RunStoreError if it cannot be read. Read with `allow_pickle=False`."""
        path = self.path_of(run_id) / CHECKPOINT_FILE
        try:
            with np.load(path, allow_pickle=False) as loaded:
                return {name: loaded[name] for name in loaded.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RunStoreError(f"run {run_id} has an unreadable checkpoint: {e}") from None

    def resume(
        self, run_id: str, *, config: dict, status: str = "running"
    ) -> tuple[RunWriter, dict[str, np.ndarray] | None]:
        """Takes a run back for training from its checkpoint (`reopen` to the epochs the
        checkpoint holds; none: from the start); returns its writer and the checkpoint.
        ValueError naming `epochs` when `config["epochs"]` is fewer than the checkpoint's."""
        checkpoint = self.load_checkpoint(run_id)
        kept = int(checkpoint[EPOCHS_DONE]) if checkpoint else 0
        epochs = config.get("epochs")
        if not isinstance(epochs, int) or kept > epochs:
            raise ValueError(
                f"`epochs` must be at least the {kept} epochs run {run_id} has done. "
                f"Received: epochs={epochs!r}"
            )
        return self.reopen(run_id, keep_epochs=kept, config=config, status=status), checkpoint

    def reopen(
        self, run_id: str, *, keep_epochs: int, config: dict, status: str = "running"
    ) -> RunWriter:
        """Takes a run that no worker holds (stopped, interrupted, completed, ...) back for
        training: its curves cut to the first `keep_epochs` epochs (the batches after them
        dropped), its config replaced (e.g. more epochs), its `status` "running" (or
        "queued"), a pending stop request removed. RunIsLiveError when a worker holds it."""
        if status not in LIVE_STATUSES:
            raise RunStoreError(f"bad status {_show(status)}: expected one of {LIVE_STATUSES}")
        path = self.path_of(run_id)
        fd = os.open(path / _WRITER_LOCK, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                raise RunIsLiveError(f"run {run_id} is still training")
            with _locked(path / _META_LOCK):
                meta = _read_meta(path)
                per_epoch = (meta.get("summary") or {}).get("steps_per_epoch")
                if keep_epochs and not isinstance(per_epoch, int):
                    raise RunStoreError(f"run {run_id} does not say how many steps an epoch has")
                _cut_lines(path / _CURVE_FILES["batches"], keep_epochs * (per_epoch or 0))
                epochs_file = path / _CURVE_FILES["epochs"]
                columns: tuple[str, ...] | None = None
                if keep_epochs and epochs_file.exists():
                    _cut_lines(epochs_file, keep_epochs)
                    with open(epochs_file, encoding="utf-8") as f:
                        columns = tuple(f.readline().strip().split(","))
                else:
                    epochs_file.unlink(missing_ok=True)
                (path / _STOP_FILE).unlink(missing_ok=True)
                for stale in path.glob(f".{CHECKPOINT_FILE}.*"):  # writes a kill cut short
                    stale.unlink(missing_ok=True)
                _cut_snapshots(path, keep_epochs * (per_epoch or 0))
                meta.update(status=status, config=config, error=None)
                meta["updated_at"] = _iso(_utcnow())
                _write_atomic(path / _META_FILE, _dump_meta(meta))
        except BaseException:
            os.close(fd)
            raise
        writer = RunWriter(run_id, path, meta, fd)
        if columns is not None:
            writer._epoch_columns = columns
            writer._epochs = writer._open("epochs")
        return writer

    def request_stop(self, run_id: str) -> bool:
        """Asks the worker of a live run to stop, through a file in the run's folder that
        the worker polls after every chunk of steps (so it works from any host sharing the
        folder); False, and nothing written, when no writer holds the run."""
        path = self.path_of(run_id)
        if not self.is_active(run_id):
            return False
        request = {"requested_at": _iso(_utcnow()), "host": platform.node(), "pid": os.getpid()}
        _write_atomic(path / _STOP_FILE, _dump_meta(request))
        return True

    def delete(self, run_id: str, *, force: bool = False, wait_s: float = 60.0) -> None:
        """Remove a run (readable or not). It disappears from listings at once.

        A run still training (a writer holds it) is refused with RunIsLiveError; with
        `force`, it is asked to stop (`request_stop`) and deleted once its worker has let
        it go, waiting up to `wait_s` seconds. The writer lock is held from the check to the
        removal, so no worker writes into a deleted run."""
        path = self.path_of(run_id)
        try:
            fd = os.open(path / _WRITER_LOCK, os.O_RDONLY)
        except FileNotFoundError:
            fd = -1  # a folder without a lock: no writer can hold it
        except OSError as e:
            raise RunStoreError(f"run {run_id} cannot be locked for deletion: {e}") from None
        try:
            if fd >= 0 and not _try_lock(fd):
                if not force:
                    raise RunIsLiveError(
                        f"run {run_id} is still training: stop it first, or ask for it to be "
                        "stopped and then deleted"
                    )
                self.request_stop(run_id)
                deadline = time.monotonic() + wait_s
                while not _try_lock(fd):
                    if time.monotonic() > deadline:
                        raise RunIsLiveError(
                            f"run {run_id} was asked to stop but was still training after "
                            f"{wait_s:g} s; it was not deleted"
                        )
                    time.sleep(0.05)
            trash = self.root / f".deleting-{run_id}-{secrets.token_hex(4)}"
            try:
                os.rename(path, trash)
            except FileNotFoundError:
                raise RunStoreError(f"unknown run id {run_id!r} in {str(self.root)!r}") from None
            shutil.rmtree(trash, ignore_errors=True)
        finally:
            if fd >= 0:
                os.close(fd)

    def snapshot_steps(self, run_id: str) -> list[int]:
        """The steps at which the run kept its weights (`engine.snapshots`)."""
        return [step for step, _ in _snapshot_files(self.path_of(run_id))]

    def load_snapshots(self, run_id: str) -> WeightPath | None:
        """The run's weight snapshots in step order; None when it kept none (a run saved
        before snapshots were kept). RunStoreError when they cannot be read."""
        path = self.path_of(run_id)
        files = _snapshot_files(path)
        if not files:
            return None
        try:
            layout = json.loads((path / SNAPSHOT_DIR / _SNAPSHOT_LAYOUT).read_text("utf-8"))
            vectors = [np.load(file, allow_pickle=False) for _, file in files]
        except (OSError, ValueError) as e:
            raise RunStoreError(f"run {run_id} has unreadable weight snapshots: {e}") from None
        size = sum(int(np.prod(item["shape"])) for item in layout)
        if any(v.shape != (size,) for v in vectors):
            raise RunStoreError(f"run {run_id} has weight snapshots of another size than {size}")
        steps = np.asarray([step for step, _ in files], dtype="int64")
        return WeightPath(steps, np.stack(vectors).astype("float32"), layout)

    def _landscape_file(self, run_id: str, kind: str, suffix: str) -> Path:
        if kind not in LANDSCAPE_KINDS:
            raise ValueError(
                f"`directions` must be one of {', '.join(LANDSCAPE_KINDS)}. "
                f"Received: directions={kind!r}"
            )
        return self.path_of(run_id) / LANDSCAPE_DIR / f"{kind}{suffix}"

    def write_landscape(
        self, run_id: str, kind: str, arrays: Mapping[str, np.ndarray], info: dict
    ) -> None:
        """Stores a computed landscape of the run (`lab.run_landscape`): its arrays as
        `<kind>.npz` (never pickled) and what it was computed from as `<kind>.json`, each
        written whole or not at all; the arrays first, so the JSON names a complete set."""
        target = self._landscape_file(run_id, kind, ".npz")
        target.parent.mkdir(exist_ok=True)
        buffer = io.BytesIO()
        np.savez(buffer, **dict(arrays))  # type: ignore[arg-type]
        _write_atomic(target, buffer.getvalue())
        _write_atomic(target.with_suffix(".json"), _dump_meta(info))

    def load_landscape(self, run_id: str, kind: str) -> tuple[dict[str, np.ndarray], dict] | None:
        """A stored landscape of the run (arrays, info), None when none was computed;
        RunStoreError when it cannot be read."""
        target = self._landscape_file(run_id, kind, ".npz")
        try:
            info = json.loads(target.with_suffix(".json").read_text("utf-8"))
            with np.load(target, allow_pickle=False) as loaded:
                arrays = {name: loaded[name] for name in loaded.files}
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            raise RunStoreError(f"run {run_id} has an unreadable {kind} landscape: {e}") from None
        return arrays, info

    @contextlib.contextmanager
    def computing_landscape(self, run_id: str, kind: str) -> Iterator[Callable[[dict], None]]:
        """Held while a process computes the run's `kind` landscape: an `flock` on
        `<kind>.lock` (released by the kernel whatever ends the process) and a function
        that stores its progress (`landscape_progress` reads it). RunIsLiveError when
        another process computes it already."""
        lock = self._landscape_file(run_id, kind, ".lock")
        lock.parent.mkdir(exist_ok=True)
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            if not _try_lock(fd):
                raise RunIsLiveError(f"the {kind} landscape of run {run_id} is being computed")
            progress = lock.with_suffix(".progress.json")

            def report(state: dict) -> None:
                _write_atomic(progress, _dump_meta({**state, "updated_at": _iso(_utcnow())}))

            yield report
        finally:
            os.close(fd)

    def landscape_progress(self, run_id: str, kind: str) -> dict | None:
        """How the run's `kind` landscape computation goes (`computing_landscape`): its last
        report, with `"state"` "computing" only while a process holds its lock (one that
        died reads "interrupted"); None when none was started."""
        lock = self._landscape_file(run_id, kind, ".lock")
        try:
            state = json.loads(lock.with_suffix(".progress.json").read_text("utf-8"))
        except FileNotFoundError:
            return None
        except (OSError, ValueError):
            return {"state": "computing" if is_locked(lock) else "interrupted"}
        if state.get("state") == "computing" and not is_locked(lock):
            state["state"] = "interrupted"
        return state

    def export_csv(self, run_id: str, curve: str, out: TextIO) -> None:
        """Write a curve ("batches" or "epochs") as CSV with a header to a text file object."""
        df = self.load_curve(run_id, curve)
        df.to_csv(out, index=False, lineterminator="\n")
