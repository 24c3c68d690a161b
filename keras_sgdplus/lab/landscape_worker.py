"""The landscape worker process: `python -m keras_sgdplus.lab.landscape_worker HANDSHAKE_FD
RUNS_DIR RUN_ID`, on stdin `{"options": <LandscapeOptions as a dict>, "backend": "auto" |
"jax" | "tensorflow"}` as JSON (started by `jobs.start_landscape`).

It sets the backend up before anything imports Keras (`accelerators.prepare_process`, as a
training worker does), takes the run's landscape lock (`RunStore.computing_landscape`),
writes `started` (or `error <message>`) as one line to the handshake pipe, then computes
and stores the landscape (`run_landscape.compute_and_store`), its progress readable by any
process meanwhile. A failure while computing is stored in the progress, with its message.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    handshake_fd, runs_dir, run_id = int(argv[0]), argv[1], argv[2]
    payload = json.loads(sys.stdin.read())
    with os.fdopen(handshake_fd, "w", encoding="utf-8") as handshake:

        def tell(kind: str, text: str = "") -> None:
            handshake.write(f"{kind} {' '.join(text.split())}\n")  # one line
            handshake.close()

        try:
            from keras_sgdplus.lab.accelerators import prepare_process

            prepare_process(payload.get("backend") or "auto", "auto")
            from keras_sgdplus.lab.run_landscape import LandscapeOptions, compute_and_store
            from keras_sgdplus.lab.runs import RunStore

            options = LandscapeOptions(**payload["options"])
            store = RunStore(runs_dir)
            compute_and_store(store, run_id, options, on_started=lambda: tell("started"))
        except ValueError as error:  # refused (bad options, a run it cannot take, ...)
            if not handshake.closed:
                tell("error", str(error))
            return 1
        except Exception as error:
            if not handshake.closed:
                tell("error", f"{type(error).__name__}: {error}")
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
