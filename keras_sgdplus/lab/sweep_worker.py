"""The sweep's coordinator process: `python -m keras_sgdplus.lab.sweep_worker HANDSHAKE_FD
RUNS_DIR`, on stdin `{"spec": <SweepSpec.to_dict()>, "cluster": <address or null>,
"workers": <n or null>}` as JSON (started by `sweep_runner.start_sweep`).

It runs `sweep_runner.run_sweep`: creates the sweep's record, writes `sweep_id <id>` (or
`error <message>` when the sweep could not start) as one line to the handshake pipe and
closes it, then submits the runs to Dask and waits for them. It trains nothing itself and
never imports Keras: the runs train in the Dask workers. SIGTERM and SIGINT stop the sweep
(`SweepStore.request_stop`), as `sgdplus sweep-stop` does from anywhere.
"""

from __future__ import annotations

import json
import os
import signal
import sys


def main(argv: list[str]) -> int:
    handshake_fd, runs_dir = int(argv[0]), argv[1]
    payload = json.loads(sys.stdin.read())
    with os.fdopen(handshake_fd, "w", encoding="utf-8") as handshake:

        def tell(kind: str, text: str) -> None:
            handshake.write(f"{kind} {' '.join(text.split())}\n")  # one line
            handshake.close()  # the caller reads one line

        from keras_sgdplus.lab.sweep_runner import run_sweep
        from keras_sgdplus.lab.sweeps import SweepSpec, SweepStore

        started: list[str] = []

        def created(sweep_id: str) -> None:
            started.append(sweep_id)
            tell("sweep_id", sweep_id)

        def stop(*_: object) -> None:
            if started:
                SweepStore(runs_dir).request_stop(started[0])

        signal.signal(signal.SIGTERM, stop)
        signal.signal(signal.SIGINT, stop)
        try:
            run_sweep(
                SweepSpec.from_dict(payload["spec"]),
                runs_dir,
                cluster=payload.get("cluster"),
                workers=payload.get("workers"),
                on_created=created,
            )
        except (ValueError, KeyError, TypeError) as error:
            if not handshake.closed:  # refused before the sweep's record exists
                tell("error", str(error))
                return 2
            raise
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
