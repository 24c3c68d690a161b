"""A stop request to a training run, as it reaches the process that trains it.

It comes as SIGTERM or SIGINT (`install`), as a call (`request`), or as a request file in
the run's folder written from any process or host (`RunStore.request_stop`), polled through
`watch`. The training loop reads it after each chunk of steps (`engine/recorder.py`); a run
waiting for its turn reads it while it waits (`run_queue.wait_for_place`). No Keras here: a
worker installs it before Keras loads.
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any


class StopSignal:
    """Set by SIGTERM / SIGINT (when installed), by `request()`, or by a stop request in the
    run's folder (`watch`, `RunStore.request_stop`); read after each chunk of steps."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self._checks: list[Callable[[], bool]] = []

    def request(self, *_: Any) -> None:
        self._event.set()

    def watch(self, check: Callable[[], bool]) -> None:
        """Also stop when `check()` is true (asked at each read until it is)."""
        self._checks.append(check)

    @property
    def requested(self) -> bool:
        if not self._event.is_set() and any(check() for check in self._checks):
            self._event.set()
        return self._event.is_set()

    def install(self) -> None:
        """Handle SIGTERM and SIGINT (main thread only) by requesting a stop."""
        if threading.current_thread() is threading.main_thread():
            signal.signal(signal.SIGTERM, self.request)
            signal.signal(signal.SIGINT, self.request)
