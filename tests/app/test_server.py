"""The dashboard's server settings, and `sgdplus dashboard` serving the app."""

from __future__ import annotations

import contextlib
import socket
import subprocess
import sys
import urllib.request
from pathlib import Path

import tomllib

from keras_sgdplus.lab import cli
from tests.serving import free_port, wait_for_health

REPO = Path(__file__).resolve().parents[2]


def flat_toml(path: Path) -> dict:
    with path.open("rb") as f:
        sections = tomllib.load(f)
    return {
        f"{section}.{key}": value
        for section, table in sections.items()
        for key, value in table.items()
    }


def test_config_file_and_the_command_agree_on_the_safe_settings():
    config = flat_toml(REPO / ".streamlit" / "config.toml")
    assert config == cli.SERVER_OPTIONS
    assert config["server.address"] == "localhost"  # this machine only
    assert config["server.enableXsrfProtection"] is True
    assert 0 < config["server.maxUploadSize"] <= 200  # MB


def other_addresses() -> list[str]:
    """This machine's non-loopback IPv4 addresses (the dashboard must not listen there)."""
    found: set[str] = set()
    with contextlib.suppress(OSError):
        names = socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET)
        found.update(info[4][0] for info in names)
    with contextlib.suppress(OSError), socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("192.0.2.1", 9))  # picks the outgoing interface; sends nothing
        found.add(probe.getsockname()[0])
    return sorted(address for address in found if not address.startswith(("127.", "0.")))


def test_sgdplus_dashboard_serves_the_app_on_loopback_only(tmp_path):
    port = free_port()
    command = [sys.executable, "-m", "keras_sgdplus.lab.cli", "dashboard", "--port", str(port)]
    server = subprocess.Popen(
        [*command, "--runs-dir", str(tmp_path / "runs")],
        cwd=tmp_path,  # away from the repository's .streamlit/: the flags must carry it all
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        wait_for_health(f"http://127.0.0.1:{port}", server)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=10) as page:
            assert "<title>Streamlit</title>" in page.read().decode()
        for address in other_addresses():
            with socket.socket() as s:
                s.settimeout(2)
                assert s.connect_ex((address, port)) != 0, f"listening on {address}"
    finally:
        server.terminate()
        server.wait(30)
    assert server.returncode is not None


def test_dashboard_command_line_carries_every_setting():
    args = cli.build_parser().parse_args(["dashboard", "--port", "8765"])
    command = cli.dashboard_command(args)
    assert command[1:4] == ["-m", "streamlit", "run"]
    assert Path(command[4]) == REPO / "dashboard" / "app.py"
    flags = dict(flag[2:].split("=", 1) for flag in command[5:])
    assert flags["server.port"] == "8765"
    assert flags["server.address"] == "localhost"
    assert flags["server.enableXsrfProtection"] == "true"
    assert flags["server.maxUploadSize"] == str(cli.SERVER_OPTIONS["server.maxUploadSize"])
