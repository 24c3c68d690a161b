"""Files people upload to the dashboard: kept by content, next to the runs that use them.

An upload is saved once under `<runs folder>/uploads/<sha256 prefix>.<csv|npz>`, so a run's
config can name its data file and the run can be repeated later. Nothing here reads the
file's contents beyond a CSV's header; `datasets.load_csv` / `load_npz` check the rest.
"""

from __future__ import annotations

import hashlib
import io
import os
import tempfile
from pathlib import Path

import pandas as pd

from keras_sgdplus.lab.datasets import DatasetError

__all__ = ["UPLOAD_KINDS", "csv_columns", "save_upload"]

UPLOAD_KINDS = ("csv", "npz")
_HASH_CHARS = 16


def save_upload(file_name: str, data: bytes, folder: str | os.PathLike) -> Path:
    """Saves uploaded bytes as `<folder>/<first 16 hex digits of sha256(data)>.<kind>`.

    The kind is the file name's extension (csv or npz); the same content is stored once.
    Written to a temporary file and renamed, so a half-written upload is never seen.

    Raises:
        DatasetError: an extension other than .csv or .npz, or an empty file.
    """
    kind = Path(str(file_name)).suffix.lower().lstrip(".")
    if kind not in UPLOAD_KINDS:
        raise DatasetError(
            f"Uploads must be .csv or .npz files. Received: file_name={str(file_name)!r}"
        )
    if not data:
        raise DatasetError(f"The uploaded file {str(file_name)!r} is empty.")
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
