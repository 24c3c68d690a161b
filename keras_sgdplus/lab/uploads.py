"""Files people upload to the dashboard: checked against size limits, kept by content, next
to the runs that use them.

An upload is saved once under `<runs folder>/uploads/<sha256 prefix>.<csv|npz>`, so a run's
config can name its data file and the run can be repeated later. Before it is saved, its
size is checked without parsing it (`check_upload`): an NPZ from its zip directory (the
sizes its members would have once decompressed, so a small zip bomb never expands in the
server), a CSV by its lines and its header's columns. Nothing here reads the contents
beyond that; `datasets.load_csv` / `load_npz` check the rest.
"""

from __future__ import annotations

import hashlib
import io
import math
import os
import tempfile
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from keras_sgdplus.lab.datasets import DatasetError

__all__ = [
    "MAX_CSV_COLUMNS",
    "MAX_CSV_ROWS",
    "MAX_NPZ_BYTES",
    "UPLOAD_KINDS",
    "check_upload",
    "csv_columns",
    "save_upload",
]

UPLOAD_KINDS = ("csv", "npz")
_HASH_CHARS = 16
#: The most an uploaded NPZ's arrays may take once decompressed (its members' sizes as its
#: zip directory states them): 1 GiB, twenty times the dashboard's upload limit.
MAX_NPZ_BYTES = 1 << 30
#: The most data rows and columns an uploaded CSV may have.
MAX_CSV_ROWS = 1_000_000
MAX_CSV_COLUMNS = 10_000


def check_upload(file_name: str, data: bytes) -> None:
    """Refuses an upload whose parsed form would be too large, without parsing it: an NPZ
    whose members would decompress past `MAX_NPZ_BYTES` (read from the zip's central
    directory), or whose .npy headers declare arrays past it, a CSV with
    more than `MAX_CSV_ROWS` lines after its header or `MAX_CSV_COLUMNS` columns.

    Raises:
        DatasetError: naming the file, the limit and what the file holds.
    """
    name = Path(str(file_name)).name
    kind = Path(name).suffix.lower().lstrip(".")
    if kind == "npz":
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (zipfile.BadZipFile, zipfile.LargeZipFile, ValueError) as error:
            raise DatasetError(f"{name} is not a readable NPZ (zip) file: {error}") from None
        with archive:
            _check_npz(name, archive)
    elif kind == "csv":
        header_end = data.find(b"\n")
        header = data if header_end < 0 else data[:header_end]
        columns = header.count(b",") + 1
        if columns > MAX_CSV_COLUMNS:
            raise DatasetError(
                f"{name} has {columns:,} columns, more than the limit of {MAX_CSV_COLUMNS:,}."
            )
        rows = data.count(b"\n") - (0 if data.endswith(b"\n") else -1) - 1
        if rows > MAX_CSV_ROWS:
            raise DatasetError(
                f"{name} has {rows:,} rows, more than the limit of {MAX_CSV_ROWS:,}."
            )


def _check_npz(name: str, archive: zipfile.ZipFile) -> None:
    """The two limits of an NPZ, from its zip directory and its members' .npy headers."""
    stated = sum(member.file_size for member in archive.infolist())
    if stated > MAX_NPZ_BYTES:
        raise DatasetError(
            f"{name} would take {stated:,} bytes once decompressed, more than the limit "
            f"of {MAX_NPZ_BYTES:,} bytes for an upload."
        )
    arrays = _npz_array_bytes(name, archive)
    if arrays > MAX_NPZ_BYTES:
        raise DatasetError(
            f"{name} holds arrays of {arrays:,} bytes (by their .npy headers), more than "
            f"the limit of {MAX_NPZ_BYTES:,} bytes for an upload."
        )


def _npz_array_bytes(name: str, archive: zipfile.ZipFile) -> int:
    """The bytes the arrays of an NPZ declare in their .npy headers (shape times item size):
    NumPy allocates that much before it reads a member, whatever the member really holds.
    Only each member's header is decompressed."""
    total = 0
    for member in archive.infolist():
        if not member.filename.endswith(".npy"):
            continue
        try:
            with archive.open(member) as stream:
                version = np.lib.format.read_magic(stream)
                read_header = (
                    np.lib.format.read_array_header_1_0
                    if version == (1, 0)
                    else np.lib.format.read_array_header_2_0
                )
                shape, _, dtype = read_header(stream)
        except (ValueError, OSError, zipfile.BadZipFile, EOFError) as error:
            raise DatasetError(
                f"{name}: the array {member.filename} cannot be read: {error}"
            ) from None
        total += math.prod(shape) * dtype.itemsize
    return total


def save_upload(file_name: str, data: bytes, folder: str | os.PathLike) -> Path:
    """Saves uploaded bytes as `<folder>/<first 16 hex digits of sha256(data)>.<kind>`.

    The kind is the file name's extension (csv or npz); the same content is stored once.
    Written to a temporary file and renamed, so a half-written upload is never seen.

    Raises:
        DatasetError: an extension other than .csv or .npz, an empty file, or one past the
            limits of `check_upload`.
    """
    kind = Path(str(file_name)).suffix.lower().lstrip(".")
    if kind not in UPLOAD_KINDS:
        raise DatasetError(
            f"Uploads must be .csv or .npz files. Received: file_name={str(file_name)!r}"
        )
    if not data:
        raise DatasetError(f"The uploaded file {str(file_name)!r} is empty.")
    check_upload(file_name, data)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / f"{hashlib.sha256(data).hexdigest()[:_HASH_CHARS]}.{kind}"
    if target.is_file() and target.stat().st_size == len(data):
        return target
    handle, temporary = tempfile.mkstemp(dir=folder, suffix=".part")
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
        os.replace(temporary, target)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
    return target


def csv_columns(path: str | os.PathLike) -> list[str]:
    """The column names in a CSV file's header row.

    Raises:
        DatasetError: the file is not a CSV with a header (the message says why).
    """
    try:
        with open(path, "rb") as raw:
            head = raw.read(1 << 20)
        columns = pd.read_csv(io.BytesIO(head), nrows=0).columns
    except (OSError, ValueError, UnicodeDecodeError) as error:
        raise DatasetError(f"{Path(path).name} is not a readable CSV file: {error}") from None
    names = [str(name) for name in columns]
    if len(names) < 2:
        raise DatasetError(
            f"{Path(path).name} needs a header row with at least two columns (inputs and a "
            f"target). Received: {names}"
        )
    return names
