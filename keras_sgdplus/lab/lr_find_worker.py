"""The range-test worker: `python -m keras_sgdplus.lab.lr_find_worker HANDSHAKE_FD RUNS_DIR
KEY`, on stdin `{"config": <a TrainingConfig as a dict>, "options": <the range test's
options>}` as JSON (started by `lr_find_jobs.start_lr_find`).

It takes the test's lock and stores the record as running (`lr_find_jobs.LrFindStore`),
answers `started` (or `error <message>`) on the handshake pipe, then chooses the backend
and the device before Keras loads (`accelerators.prepare_process`), runs the test
(`range_test.find_learning_rate`) and stores the result, or the error that ended it.
"""

from __future__ import annotations

import json
import os
import sys


def main(argv: list[str]) -> int:
    handshake_fd, runs_dir, key = int(argv[0]), argv[1], argv[2]
    payload = json.loads(sys.stdin.read())
    config_dict, options = payload["config"], payload["options"]
    with os.fdopen(handshake_fd, "w", encoding="utf-8") as handshake:

        def tell(text: str) -> None:
            handshake.write(" ".join(text.split()) + "\n")
            handshake.close()

        from keras_sgdplus.lab.lr_find_jobs import DONE, FAILED, RUNNING, LrFindStore

        store = LrFindStore(runs_dir)
        lock = store.hold(key)
        if lock is None:
            tell("error a range test of these settings is running already")
            return 0
        record = {"status": RUNNING, "config": config_dict, "options": options}
        store.write(key, record)
        tell("started")
        try:
            from keras_sgdplus.lab.accelerators import prepare_process

            prepare_process(config_dict.get("backend", "auto"), config_dict.get("device", "auto"))
            from keras_sgdplus.lab.config import TrainingConfig
            from keras_sgdplus.lab.range_test import find_learning_rate

            result = find_learning_rate(TrainingConfig.from_dict(config_dict), **options)
            store.write(key, {**record, "status": DONE, "result": result.to_dict()})
        except Exception as error:  # recorded for the page that polls
            store.write(
                key, {**record, "status": FAILED, "error": f"{type(error).__name__}: {error}"}
            )
        finally:
            lock.close()
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
