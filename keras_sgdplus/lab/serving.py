"""Where the dashboard may be served: loopback only, unless the user asked for more.

The dashboard accepts uploads and starts processes, so nothing but this machine may use it
unless whoever started it chose another address. Its safe settings live in
`dashboard/.streamlit/config.toml`, which Streamlit (1.46 and later) reads next to the app
from any folder; this module is what the app checks at every run, in case it was started
some other way (a copy of the app without its settings, an older Streamlit): bound to all
interfaces without that choice, it shows how to start safely and nothing else.

Plain Python with no Streamlit import: the app passes in what Streamlit's config says.
"""

from __future__ import annotations

import dataclasses
import enum
import ipaddress
from pathlib import Path

#: The addresses that make a server listen on every interface (Streamlit's default is unset).
ALL_INTERFACES = frozenset({"", "0.0.0.0", "::", "[::]"})

SAFE_START = (
    "Start it with `sgdplus dashboard` (localhost only), or with "
    "`streamlit run {app} --server.address localhost`."
)


class Exposure(enum.Enum):
    """How far the server can be reached."""

    LOOPBACK = "loopback"  # this machine only
    CHOSEN = "chosen"  # another address the user asked for: served, with a warning
    REFUSED = "refused"  # every interface, nobody asked: nothing but the message


@dataclasses.dataclass(frozen=True)
class ServingCheck:
    exposure: Exposure
    message: str  # empty for LOOPBACK


def app_path() -> Path:
    """The dashboard's entry file, `dashboard/app.py` (installed as `keras_sgdplus.dashboard`)."""
    import keras_sgdplus.dashboard

    return Path(keras_sgdplus.dashboard.__file__).resolve().parent / "app.py"


def is_loopback(address: str) -> bool:
    """True for `localhost` and the loopback networks 127.0.0.0/8 and ::1."""
    host = address.strip().strip("[]").lower()
    if host == "localhost" or host.endswith(".localhost"):
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: whatever it resolves to, not provably this machine only


def check_address(address: str | None, chosen_by_user: bool) -> ServingCheck:
    """Whether the app may serve at `address` (Streamlit's `server.address`).

    Args:
        address: The configured address; `None` or empty means every interface.
        chosen_by_user: Whether the address came from a flag, an environment variable or
            a config file (Streamlit's `get_where_defined` is not its default).
    """
    if address is not None and is_loopback(address):
        return ServingCheck(Exposure.LOOPBACK, "")
    shown = "every interface" if (address or "").strip() in ALL_INTERFACES else address
    if chosen_by_user:
        return ServingCheck(
            Exposure.CHOSEN,
            f"This dashboard is served on {shown}, as asked at start-up: anyone who can reach "
            "this machine can upload files and start training here. Use it only on a network "
            "you trust, or restart it without an address (`sgdplus dashboard`) to keep it on "
            "localhost.",
        )
    return ServingCheck(
        Exposure.REFUSED,
        f"This dashboard is listening on {shown}, which nobody asked for: its safe settings "
        "(dashboard/.streamlit/config.toml) were not read. It accepts uploads and starts "
        "processes, so it shows nothing until it is started safely. "
        + SAFE_START.format(app=app_path())
        + " To serve it on a network on purpose, pass `--server.address` explicitly.",
    )
