"""What the Train page shows of an upload (its `DatasetInfo` and training-set size), parsed
in a child process, so the dashboard's server never holds the parsed arrays.

`datasets.load_csv` / `load_npz` parse an upload into a DataFrame, float arrays, their
split and standardised copies: several times the file's size at once. In the server they
would stay as long as Python's allocator keeps the memory; in a child
(`python -m keras_sgdplus.lab.upload_summary`), the operating system takes all of it back
when the child exits. The child runs the same loaders the training worker runs, so what the
page shows is what the run will train on, and a file they refuse is refused with their
message. It imports NumPy and pandas, not Keras: about half a second on a 2-core CPU, once
per upload and setting (the page caches the answer).
"""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys

from keras_sgdplus.lab.datasets import DatasetError, DatasetInfo

#: The longest a summary may take (a 1,000,000-row CSV parses in seconds).
TIMEOUT_SECONDS = 300.0


def summarize_upload(
    path: str | os.PathLike, target_column: str | None, validation_split: float, seed: int
) -> tuple[DatasetInfo, int]:
    """The upload's `DatasetInfo` and training-set size, as `load_csv` (with `target_column`)
    or `load_npz` (None) would give them, computed in a child process.

    Raises:
        DatasetError: the loader's message for a file it refuses, or why the child failed.
    """
    request = {
        "path": str(path),
        "target_column": target_column,
        "validation_split": validation_split,
        "seed": seed,
    }
    try:
        child = subprocess.run(
            [sys.executable, "-m", "keras_sgdplus.lab.upload_summary"],
            input=json.dumps(request),
            capture_output=True,
            text=True,
            timeout=TIMEOUT_SECONDS,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise DatasetError(
            f"{os.path.basename(path)} took longer than {TIMEOUT_SECONDS:g} s to read."
        ) from None
    lines = child.stdout.strip().splitlines()
    try:
        answer = json.loads(lines[-1])
    except (IndexError, ValueError):
        tail = child.stderr.strip().splitlines()[-1:] or [f"exit status {child.returncode}"]
        raise DatasetError(f"{os.path.basename(path)} could not be read: {tail[0]}") from None
    if "error" in answer:
        raise DatasetError(answer["error"])
    info = answer["info"]
    info["input_shape"] = tuple(info["input_shape"])
    return DatasetInfo(**info), int(answer["n_train"])


def _summary(request: dict) -> dict:
    from keras_sgdplus.lab import datasets

    options = {"validation_split": request["validation_split"], "seed": request["seed"]}
    try:
        if request["target_column"] is None:
            data = datasets.load_npz(request["path"], **options)
        else:
            data = datasets.load_csv(request["path"], request["target_column"], **options)
    except ValueError as error:  # DatasetError and the loaders' argument checks
        return {"error": str(error)}
    return {"info": dataclasses.asdict(data.info), "n_train": len(data.x_train)}


if __name__ == "__main__":
    print(json.dumps(_summary(json.loads(sys.stdin.read()))))
