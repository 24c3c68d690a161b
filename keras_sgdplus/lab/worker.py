"""The training worker process: `python -m keras_sgdplus.lab.worker HANDSHAKE_FD RUNS_DIR`,
on stdin `{"config": <the run's config>, "resume": <a run id or null>, "backend": <the
backend to resume on, or null>, "queue": <null, or {"queue": "cpu" | "gpu", "side_by_side":
n}>}` as JSON (started by `jobs.start_worker`).

It chooses the Keras backend and the device before anything imports Keras
(`accelerators.prepare_process`, which also gives back the GPUs the dashboard's server hid
from itself and so from its children). With a queue, it opens the run as `queued`, answers
with its id and waits for its turn (`run_queue`) before Keras loads, so a waiting run costs
little memory. Then it creates the run (or takes it back, to resume it), writes `run_id
<id>` (or `error <message>` when the run could not be created) as one line to the handshake
pipe and closes it, and trains. SIGTERM and SIGINT stop it after the current chunk of steps,
as does a stop request in the run's folder; while it waits, they end the wait.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    handshake_fd, runs_dir = int(argv[0]), argv[1]
    payload = json.loads(sys.stdin.read())
    config_dict, resume, queue = payload["config"], payload.get("resume"), payload.get("queue")
    backend = payload.get("backend") or config_dict.get("backend", "auto")
    with os.fdopen(handshake_fd, "w", encoding="utf-8") as handshake:

        def tell(kind: str, text: str) -> None:
            handshake.write(f"{kind} {' '.join(text.split())}\n")  # one line
            handshake.close()  # the caller reads one line

        from keras_sgdplus.lab.accelerators import prepare_process

        writer = None
        try:
            prepare_process(backend, config_dict.get("device", "auto"))
            from keras_sgdplus.lab.config import TrainingConfig
            from keras_sgdplus.lab.runs import RunStore
            from keras_sgdplus.lab.stop_signal import StopSignal

            config, store = TrainingConfig.from_dict(config_dict), RunStore(runs_dir)
            stop = StopSignal()
            stop.install()
            if queue:
                from keras_sgdplus.lab import run_queue

                writer = run_queue.open_queued(store, config, **queue, resume=resume)
                tell("run_id", writer.run_id)
                place = run_queue.wait_turn(store, writer, stop, **queue)
                if place is None:
                    return 0  # stopped while it waited
            from keras_sgdplus.lab.training import run_training

            run_training(
                config,
                store,
                stop,
                on_created=None if queue else lambda run_id: tell("run_id", run_id),
                resume=resume,
                writer=writer,
            )
        except ValueError as error:  # refused before training began
            if not handshake.closed:  # before the run exists (`TrainingJob.run_id`)
                tell("error", str(error))
            elif writer is not None:  # a queued run that could not start training
                writer.update(status="failed", error=f"ValueError: {error}")
                writer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
