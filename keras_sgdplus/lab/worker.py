"""The training worker process: `python -m keras_sgdplus.lab.worker HANDSHAKE_FD RUNS_DIR`,
on stdin `{"config": <the run's config>, "resume": <a run id or null>, "backend": <the
backend to resume on, or null>}` as JSON (started by `jobs.start_worker`).

It chooses the Keras backend and the device before anything imports Keras
(`accelerators.prepare_process`, which also gives back the GPUs the dashboard's server hid
from itself and so from its children), creates the run, writes `run_id <id>` (or `error
<message>` when the run could not be created) as one line to the handshake pipe and closes
it, then trains. SIGTERM and SIGINT stop it after the current chunk of steps, as does a
stop request in the run's folder.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    handshake_fd, runs_dir = int(argv[0]), argv[1]
    payload = json.loads(sys.stdin.read())
    config_dict, resume = payload["config"], payload.get("resume")
    backend = payload.get("backend") or config_dict.get("backend", "auto")
    with os.fdopen(handshake_fd, "w", encoding="utf-8") as handshake:

        def tell(kind: str, text: str) -> None:
            handshake.write(f"{kind} {' '.join(text.split())}\n")  # one line
            handshake.close()  # the caller reads one line

        from keras_sgdplus.lab.accelerators import prepare_process

        try:
            prepare_process(backend, config_dict.get("device", "auto"))
            from keras_sgdplus.lab.config import TrainingConfig
            from keras_sgdplus.lab.runs import RunStore
            from keras_sgdplus.lab.training import StopSignal, run_training

            stop = StopSignal()
            stop.install()
            run_training(
                TrainingConfig.from_dict(config_dict),
                RunStore(runs_dir),
                stop,
                on_created=lambda run_id: tell("run_id", run_id),
                resume=resume,
            )
        except ValueError as error:  # refused before the run exists (`TrainingJob.run_id`)
            if not handshake.closed:
                tell("error", str(error))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
