"""A Streamlit server under test: a free loopback port, waiting for its health answer, and
where it listens (its sockets in /proc/net, and this machine's other addresses to try)."""

from __future__ import annotations

import contextlib
import ipaddress
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

LISTEN = "0A"  # the TCP state of a listening socket in /proc/net/tcp


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_for_health(url: str, server: subprocess.Popen, timeout: float = 120.0) -> None:
    """Waits until `url`/_stcore/health answers "ok"; fails at once if `server` exits."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise AssertionError(f"streamlit exited with {server.returncode}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as answer:
                if answer.read() == b"ok":
                    return
        except OSError:
            time.sleep(0.3)
    raise AssertionError(f"{url} did not become healthy within {timeout} s")


@contextlib.contextmanager
def served(
    command: Sequence[str],
    *,
    port: int,
    cwd: Path,
    log: Path,
    env: Mapping[str, str | None] | None = None,
    host: str = "127.0.0.1",
    end_runs: bool = True,
) -> Iterator[subprocess.Popen]:
    """Runs `command` (a Streamlit server on `port`) in its own session until healthy at
    `host`, yields it, then ends it, and (`end_runs`) the workers of the runs still live in
    its runs folder (`SGDPLUS_RUNS_DIR` in `env`), which outlive it. `env` adds to this
    process's environment; a name set to None is left out."""
    merged = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
    environment = {name: value for name, value in merged.items() if value is not None}
    with log.open("w") as output:
        server = subprocess.Popen(
            list(command),
            cwd=cwd,
            env=environment,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # so the server and what it spawns can be ended at once
        )
        try:
            try:
                wait_for_health(f"http://{host}:{port}", server)
            except AssertionError as error:
                raise AssertionError(f"{error}; its output:\n{log.read_text()[-3000:]}") from None
            yield server
        finally:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(server.pid, signal.SIGTERM)
            try:
                server.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(server.pid, signal.SIGKILL)
                server.wait(30)
            if end_runs and environment.get("SGDPLUS_RUNS_DIR"):
                end_live_runs(Path(environment["SGDPLUS_RUNS_DIR"]))


def end_live_runs(runs_dir: Path) -> None:
    """Kills the worker of every run of `runs_dir` that a writer still holds (on this host)."""
    from keras_sgdplus.lab.runs import RunStore

    store = RunStore(runs_dir)
    for run in store.list_runs(live_only=True):
        with contextlib.suppress(Exception):
            os.kill(store.load_meta(run.run_id)["environment"]["pid"], signal.SIGKILL)


def _address_from_proc(hex_address: str) -> str:
    """An address as /proc/net/tcp{,6} writes it: 32-bit words in host (little-endian) order."""
    raw = bytes.fromhex(hex_address)
    words = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
    return str(ipaddress.ip_address(words))


def listening_addresses(port: int) -> set[str]:
    """The local addresses of the TCP sockets listening on `port` (IPv4 and IPv6)."""
    found = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(FileNotFoundError), open(table) as lines:
            next(lines)  # the header
            for line in lines:
                local, state = line.split()[1], line.split()[3]
                address, hex_port = local.split(":")
                if state == LISTEN and int(hex_port, 16) == port:
                    found.add(_address_from_proc(address))
    return found


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


def accepts_connections(address: str, port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(2)
        return s.connect_ex((address, port)) == 0


def assert_loopback_only(port: int) -> None:
    """The server on `port` listens on loopback addresses only, and nowhere else answers."""
    listening = listening_addresses(port)
    assert listening, f"nothing listens on port {port}"
    assert all(ipaddress.ip_address(a).is_loopback for a in listening), listening
    for address in other_addresses():
        assert not accepts_connections(address, port), f"port {port} answers on {address}"
