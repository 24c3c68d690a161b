"""Where the dashboard is served: its settings file, `serving`'s check of the address, the
`sgdplus dashboard` command line, and real servers started from another folder."""

from __future__ import annotations

import sys
import urllib.request
from pathlib import Path

import pytest
import tomllib

from keras_sgdplus.lab import cli, serving
from keras_sgdplus.lab.serving import Exposure
from tests.serving import (
    accepts_connections,
    assert_loopback_only,
    free_port,
    listening_addresses,
    other_addresses,
    served,
)

REPO = Path(__file__).resolve().parents[2]
CONFIG = REPO / "dashboard" / ".streamlit" / "config.toml"


def flat_toml(path: Path) -> dict:
    with path.open("rb") as f:
        sections = tomllib.load(f)
    return {
        f"{section}.{key}": value
        for section, table in sections.items()
        for key, value in table.items()
    }


def test_settings_file_next_to_the_app_keeps_it_on_this_machine():
    config = flat_toml(CONFIG)
    assert CONFIG.parent.parent == serving.app_path().parent  # read next to app.py
    assert config["server.address"] == "localhost"  # this machine only
    assert config["server.enableXsrfProtection"] is True
    assert config["server.enableCORS"] is True
    assert config["server.headless"] is True  # opens no browser, asks for no e-mail
    assert config["browser.gatherUsageStats"] is False
    assert 0 < config["server.maxUploadSize"] <= 200  # MB
    assert config["server.fileWatcherType"] == "none"  # no watcher threads beside a worker


def test_no_settings_file_at_the_repository_root():
    """One place for the settings: a root `.streamlit/` would apply from the root only."""
    assert not (REPO / ".streamlit").exists()


@pytest.mark.parametrize(
    "address", ["localhost", "LOCALHOST", "app.localhost", "127.0.0.1", "127.1.2.3", "::1", "[::1]"]
)
def test_loopback_addresses(address):
    assert serving.is_loopback(address)
    assert serving.check_address(address, chosen_by_user=True).exposure is Exposure.LOOPBACK
    assert serving.check_address(address, chosen_by_user=False) == serving.ServingCheck(
        Exposure.LOOPBACK, ""
    )


@pytest.mark.parametrize(
    "address", ["", "0.0.0.0", "::", "[::]", "192.0.2.2", "10.0.0.1", "fe80::1", "myhost"]
)
def test_other_addresses_are_not_loopback(address):
    assert not serving.is_loopback(address)


@pytest.mark.parametrize("address", [None, "", "0.0.0.0", "::", "[::]"])
def test_every_interface_nobody_asked_for_is_refused_with_the_safe_command(address):
    check = serving.check_address(address, chosen_by_user=False)
    assert check.exposure is Exposure.REFUSED
    assert "every interface" in check.message
    assert "`sgdplus dashboard`" in check.message
    assert f"`streamlit run {serving.app_path()} --server.address localhost`" in check.message
    assert "--server.address" in check.message


@pytest.mark.parametrize(
    ("address", "shown"),
    [("0.0.0.0", "every interface"), ("::", "every interface"), ("192.0.2.2", "192.0.2.2")],
)
def test_an_address_the_user_chose_is_served_with_a_warning(address, shown):
    check = serving.check_address(address, chosen_by_user=True)
    assert check.exposure is Exposure.CHOSEN
    assert f"served on {shown}, as asked" in check.message
    assert "anyone who can reach this machine" in check.message


def test_app_path_is_the_dashboard_entry_file():
    assert serving.app_path() == REPO / "dashboard" / "app.py"  # the editable install
    assert serving.app_path().is_file()


def test_dashboard_command_passes_the_port_and_names_the_app():
    args = cli.build_parser().parse_args(["dashboard", "--port", "8765"])
    command = cli.dashboard_command(args)
    assert command == [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(serving.app_path()),
        "--server.port=8765",
    ]  # everything else comes from dashboard/.streamlit/config.toml


def test_dashboard_command_passes_an_address_only_when_asked():
    args = cli.build_parser().parse_args(["dashboard", "--address", "0.0.0.0"])
    command = cli.dashboard_command(args)
    assert command[4] == str(serving.app_path())
    assert command[5:] == ["--server.port=8501", "--server.address=0.0.0.0"]


def sgdplus_dashboard(port: int, runs_dir: Path, *extra: str) -> list[str]:
    return [
        sys.executable,
        *("-m", "keras_sgdplus.lab.cli", "dashboard"),
        *("--port", str(port), "--runs-dir", str(runs_dir), *extra),
    ]


def test_sgdplus_dashboard_from_another_folder_serves_on_loopback_only(tmp_path):
    port = free_port()
    command = sgdplus_dashboard(port, tmp_path / "runs")
    with served(command, port=port, cwd=tmp_path, log=tmp_path / "streamlit.log"):
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert "<title>Streamlit</title>" in page.read().decode()
        assert_loopback_only(port)
    output = (tmp_path / "streamlit.log").read_text()
    assert "usage statistics" not in output.lower()  # gatherUsageStats off: no notice
    assert f"URL: http://localhost:{port}" in output


def test_sgdplus_dashboard_serves_an_address_asked_for(tmp_path):
    port = free_port()
    command = sgdplus_dashboard(port, tmp_path / "runs", "--address", "0.0.0.0")
    with served(command, port=port, cwd=tmp_path, log=tmp_path / "streamlit.log"):
        assert listening_addresses(port) == {"0.0.0.0"}
        for address in other_addresses():  # reachable from the network, as asked
            assert accepts_connections(address, port), address
            with urllib.request.urlopen(f"http://{address}:{port}/_stcore/health") as answer:
                assert answer.read() == b"ok"
    assert "usage statistics" not in (tmp_path / "streamlit.log").read_text().lower()
