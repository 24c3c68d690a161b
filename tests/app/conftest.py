"""Fixtures for the dashboard's page tests (Streamlit's AppTest) and browser tests."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

DASHBOARD = Path(__file__).resolve().parents[2] / "dashboard"
PAGE_TIMEOUT = 120  # seconds: the first run of a page imports TensorFlow and Keras


@pytest.fixture
def runs_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty run store that the pages use (through $SGDPLUS_RUNS_DIR)."""
    folder = tmp_path / "saved_runs"
    folder.mkdir()
    monkeypatch.setenv("SGDPLUS_RUNS_DIR", str(folder))
    return folder


@pytest.fixture
def page(runs_dir: Path) -> Callable[[str], AppTest]:
    """`page("train")`: an AppTest of dashboard/app_pages/train.py, run once, on `runs_dir`."""

    def make(name: str) -> AppTest:
        path = DASHBOARD / "app_pages" / f"{name}.py"
        app = AppTest.from_file(str(path), default_timeout=PAGE_TIMEOUT)
        app.run()
        return app

    return make
