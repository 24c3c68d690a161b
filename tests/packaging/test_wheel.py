"""The wheel as a user gets it: built, read, installed with `[lab]` into a fresh virtual
environment outside the repository, and `sgdplus dashboard` started from another folder.

Building needs setuptools from PyPI (pip's isolated build) and installing `[lab]` downloads
TensorFlow, Streamlit and the rest (from pip's cache when it has them): one build and one
install for this module, about two minutes with a warm cache.
"""

from __future__ import annotations

import email.parser
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from playwright.sync_api import expect, sync_playwright

from keras_sgdplus import __version__
from tests.e2e.conftest import CHROMIUM, CHROMIUM_FLAGS, VIEWPORT
from tests.e2e.streamlit_ui import assert_no_exception, button, wait_until_idle
from tests.packaging.test_layout import assert_the_optimizer_loads_no_lab
from tests.serving import assert_loopback_only, free_port, served

REPO = Path(__file__).resolve().parents[2]
DIST_INFO = f"keras_sgdplus-{__version__}.dist-info"
EXTRAS = {"tensorflow", "jax", "gpu", "lab", "dev"}
INSTALL_TIMEOUT = 1200  # seconds


def source_files() -> list[str]:
    """The repository's files as a commit would hold them (tracked or new, not ignored)."""
    listed = subprocess.run(
        ["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"],
        cwd=REPO,
        capture_output=True,
        check=True,
    ).stdout.decode()
    return sorted(name for name in listed.split("\0") if name and (REPO / name).is_file())


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The wheel, built from a clean copy of the sources: pip builds in the source tree, and
    a `build/` folder left there would put stale files into the next wheel."""
    source = tmp_path_factory.mktemp("source")
    for name in source_files():
        (source / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(REPO / name, source / name)
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", str(source), "--no-deps", "-w", str(out)],
        check=True,
        capture_output=True,
        timeout=INSTALL_TIMEOUT,
    )
    [built] = out.glob("keras_sgdplus-*.whl")
    return built


@pytest.fixture(scope="module")
def venv(wheel: Path) -> Iterator[Path]:
    """A fresh virtual environment outside the repository with `<wheel>[lab]` installed;
    removed afterwards (it holds TensorFlow: almost 3 GB)."""
    folder = Path(tempfile.mkdtemp(prefix="sgdplus-wheel-"))
    try:
        environment = folder / "venv"
        subprocess.run([sys.executable, "-m", "venv", str(environment)], check=True, timeout=300)
        started = time.monotonic()
        install = subprocess.run(
            [str(environment / "bin" / "pip"), "install", f"{wheel}[lab]"],
            cwd=folder,
            capture_output=True,
            text=True,
            timeout=INSTALL_TIMEOUT,
        )
        assert install.returncode == 0, install.stdout[-3000:] + install.stderr[-3000:]
        print(f"pip install {wheel.name}[lab]: {time.monotonic() - started:.0f} s")
        yield environment
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as archive:
        return email.parser.Parser().parsestr(archive.read(f"{DIST_INFO}/METADATA").decode())


def test_wheel_requires_only_keras_and_numpy(wheel):
    found = metadata(wheel)
    requirements = [Requirement(line) for line in found.get_all("Requires-Dist") or []]
    unconditional = [r for r in requirements if r.marker is None]
    assert sorted(r.name for r in unconditional) == ["keras", "numpy"]
    assert all("extra ==" in str(r.marker) for r in requirements if r.marker is not None)
    assert set(found.get_all("Provides-Extra") or []) >= EXTRAS
    # The dashboard's settings are read next to its app from Streamlit 1.46 on.
    [streamlit] = [r for r in requirements if r.name == "streamlit"]
    assert str(streamlit.marker) == 'extra == "lab"'
    assert not streamlit.specifier.contains("1.45.1")


def test_wheel_holds_one_top_level_package_with_the_dashboard(wheel):
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        entry_points = archive.read(f"{DIST_INFO}/entry_points.txt").decode()
        top_level = archive.read(f"{DIST_INFO}/top_level.txt").decode().split()
    assert {name.split("/")[0] for name in names} == {"keras_sgdplus", DIST_INFO}
    assert top_level == ["keras_sgdplus"]
    assert "sgdplus = keras_sgdplus.lab.cli:main" in entry_points
    dashboard = "keras_sgdplus/dashboard"
    assert {
        f"{dashboard}/app.py",
        f"{dashboard}/.streamlit/config.toml",
        *(f"{dashboard}/app_pages/{page}.py" for page in ("train", "compare", "landscape")),
        "keras_sgdplus/py.typed",
    } <= names
    # every module of the sources, under its installed name
    modules = {
        name.replace("dashboard/", f"{dashboard}/", 1)
        for name in source_files()
        if name.endswith(".py") and name.startswith(("keras_sgdplus/", "dashboard/"))
    }
    assert modules - names == set()
    assert {name for name in names if name.endswith(".py")} == modules


def venv_environment(home: Path) -> dict[str, str]:
    """The venv's own Python only: no path into the repository, no user settings."""
    environment = {
        name: value
        for name, value in os.environ.items()
        if name not in {"PYTHONPATH", "VIRTUAL_ENV", "SGDPLUS_RUNS_DIR"}
    }
    return {**environment, "HOME": str(home), "KERAS_BACKEND": "tensorflow"}


def site_packages(venv: Path) -> Path:
    result = subprocess.run(
        [
            str(venv / "bin" / "python"),
            "-c",
            "import sysconfig; print(sysconfig.get_path('purelib'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return Path(result.stdout.strip())


def test_installed_optimizer_import_loads_no_lab(venv, tmp_path):
    python = str(venv / "bin" / "python")
    assert_the_optimizer_loads_no_lab(python, tmp_path, venv_environment(tmp_path))
    script = (
        "import keras_sgdplus, sys; "
        "assert not any(m.startswith('keras_sgdplus.lab') or m.startswith('streamlit') "
        "for m in sys.modules); print(keras_sgdplus.__file__)"
    )
    result = subprocess.run(
        [python, "-c", script],
        cwd=tmp_path,
        env=venv_environment(tmp_path),
        capture_output=True,
        text=True,
        check=True,
        timeout=300,
    )
    assert Path(result.stdout.split()[-1]).is_relative_to(site_packages(venv))


def test_installed_sgdplus_dashboard_from_another_folder_serves_loopback_only(venv, tmp_path):
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    port = free_port()
    command = [str(venv / "bin" / "sgdplus"), "dashboard", "--port", str(port)]
    command += ["--runs-dir", str(tmp_path / "runs")]
    log = tmp_path / "streamlit.log"
    installed = site_packages(venv) / "keras_sgdplus" / "dashboard"
    with served(
        command, port=port, cwd=elsewhere, log=log, env=venv_environment(tmp_path)
    ) as server:
        assert_loopback_only(port)
        # `sgdplus` became `python -m streamlit run <app>` (exec, same process): the app
        # installed in the venv, with its settings next to it
        arguments = Path(f"/proc/{server.pid}/cmdline").read_bytes().decode().split("\0")
        [app] = [Path(a) for a in arguments if a.endswith("app.py")]
        assert app == installed / "app.py"
        assert (installed / ".streamlit" / "config.toml").is_file()
        assert not app.is_relative_to(REPO)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert "<title>Streamlit</title>" in page.read().decode()
        with sync_playwright() as playwright:  # the installed pages work
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_FLAGS)
            page = browser.new_page(viewport=VIEWPORT)
            page.goto(f"http://127.0.0.1:{port}")
            heading = page.get_by_role("heading", name="Train", exact=True)
            expect(heading).to_be_visible(timeout=120_000)
            wait_until_idle(page)
            assert_no_exception(page)
            expect(button(page, "Start training")).to_be_visible()
            assert page.get_by_test_id("stAlert").count() == 0  # no refusal, no warning
            browser.close()
    assert "usage statistics" not in log.read_text().lower()
