"""An upload's summary for the Train page, parsed in a child process
(`lab/upload_summary.py`): what the run will train on, the loaders' own refusals, and no
parsed copy of the data in the calling process (its peak memory, VmHWM, measured in a
fresh interpreter against one that parses in-process)."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from keras_sgdplus.lab.datasets import DatasetError
from keras_sgdplus.lab.upload_summary import summarize_upload


def test_a_csv_summary_is_its_task_shape_classes_and_training_size(tmp_path: Path):
    rng = np.random.default_rng(0)
    kinds = ["cat", "dog", "emu"] * 16 + ["cat", "dog"]
    features = rng.normal(size=(50, 3))
    rows = [f"{a:.3f},{b:.3f},{c:.3f},{k}" for (a, b, c), k in zip(features, kinds, strict=True)]
    path = tmp_path / "animals.csv"
    path.write_text("a,b,c,kind\n" + "\n".join(rows) + "\n")
    info, n_train = summarize_upload(path, "kind", 0.2, 0)
    assert (info.task, info.input_shape, info.num_classes, info.size) == ("multiclass", (3,), 3, 50)
    assert info.source == "user"
    assert n_train == 40  # 50 rows, a fifth held out


def test_an_npz_summary_reads_its_arrays_shapes(tmp_path: Path):
    path = tmp_path / "images.npz"
    x = np.zeros((30, 4, 4, 1), dtype="float32")
    np.savez(path, x=x, y=np.arange(30, dtype="float32") / 7.0)  # real targets: regression
    info, n_train = summarize_upload(path, None, 0.5, 0)
    assert (info.task, info.input_shape, info.num_classes, info.size) == (
        "regression",
        (4, 4, 1),
        None,
        30,
    )
    assert n_train == 15


def test_a_file_the_loader_refuses_is_refused_with_its_message(tmp_path: Path):
    path = tmp_path / "words.csv"
    path.write_text("a,b,t\n1,x,0\n2,y,1\n3,z,0\n4,w,1\n")
    with pytest.raises(DatasetError, match="b"):
        summarize_upload(path, "t", 0.25, 0)
    (tmp_path / "broken.npz").write_bytes(b"not a zip")
    with pytest.raises(DatasetError, match=r"broken\.npz"):
        summarize_upload(tmp_path / "broken.npz", None, 0.2, 0)


PEAK = """
import sys
from keras_sgdplus.lab import datasets
from keras_sgdplus.lab.upload_summary import summarize_upload

def peak_bytes():  # this process's own high-water mark (getrusage's counts the parent's too)
    with open("/proc/self/status") as status:
        line = next(line for line in status if line.startswith("VmHWM:"))
    return int(line.split()[1]) * 1024

before = peak_bytes()
if sys.argv[2] == "child":
    summarize_upload(sys.argv[1], None, 0.2, 0)
else:
    datasets.load_npz(sys.argv[1], validation_split=0.2, seed=0)
print(peak_bytes() - before)
"""


def test_the_caller_never_holds_the_parsed_arrays(tmp_path: Path):
    path = tmp_path / "big.npz"
    array_bytes = 160 * 2**20
    rows = array_bytes // 4 // 256
    np.savez(path, x=np.ones((rows, 256), "float32"), y=np.arange(rows) % 2)

    def peak_growth(where: str) -> int:
        out = subprocess.run(
            [sys.executable, "-c", textwrap.dedent(PEAK), str(path), where],
            capture_output=True,
            text=True,
            check=True,
            timeout=300,
        ).stdout
        return int(out.split()[-1])

    assert peak_growth("here") > array_bytes  # parsing in-process costs at least a copy
    assert peak_growth("child") < 32 * 2**20  # the summary costs the caller nothing of it
