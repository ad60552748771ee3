"""The child process of a training job: `python -m bikelib.job_child`.

`bikelib.jobs.TrainingJob` starts it, writes one run as a pickle to its stdin and reads
JSON lines from its stdout (`["progress", {...}]`, `["saving", null]`, then
`["finished", {...}]` or `["failed", "one sentence"]`). Closing its stdin asks it to
stop after the current batch; it also ends when the parent is gone, so no training
outlives the app. TensorFlow is imported here only, never in the app's process.
"""

from __future__ import annotations

import json
import logging
import os
import pickle
import sys
import threading
from pathlib import Path
from typing import Any

from .errors import BikeLibError

log = logging.getLogger(__name__)


def main() -> None:
    """One training run for a TrainingJob, in its own process.

    Reads (dataset, config, save_dir, name, label) as a pickle on stdin, then treats the
    end of stdin as a stop request. Reports JSON lines on stdout.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed (TF, warnings) goes to stderr, not the protocol
    dataset, config, save_dir, name, label = pickle.load(sys.stdin.buffer)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.buffer.read()  # returns at end of input
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()

    def send(kind: str, payload: Any = None) -> None:
        protocol.write(json.dumps([kind, payload]) + "\n")

    from .quiet import load_tensorflow

    # Keras imports pandas (and pyarrow) only to accept DataFrames, which a training never
    # passes: without them the child holds about 40 MB less (bench/child_memory.py).
    sys.modules.setdefault("pandas", None)  # None here: `import pandas` raises ImportError
    load_tensorflow()  # before artifacts/training import it: TF without its start-up lines
    from .artifacts import save_model
    from .training import train

    def report(progress) -> None:
        fields = ("kind", "epoch", "epochs", "step", "steps", "elapsed", "logs")
        payload = {key: getattr(progress, key) for key in fields}
        send("progress", {**payload, "fraction": progress.fraction, "left": progress.seconds_left})

    try:
        # "saving" as soon as the last batch is done: scoring the validation photos and the
        # strangers comes before the save, and a Stop must not end a child that has stopped
        # training and is finishing up (STOP_GRACE_S in jobs.py ends only those still busy).
        result = train(
            dataset,
            config,
            on_progress=report,
            should_stop=stop.is_set,
            on_fitted=lambda: send("saving"),
        )
        save_model(result, save_dir, name=name, dataset=label)
        metrics = {
            **result.metrics,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_seconds": result.seconds,
        }
        send("finished", {"stopped": result.stopped, "metrics": metrics})
    except BikeLibError as error:
        send("failed", str(error))
    except Exception as error:  # the parent shows one sentence; stderr keeps the trace
        log.exception("training %s failed", Path(save_dir).name)
        send("failed", f"Training failed: {type(error).__name__}: {error}")
    protocol.flush()
    sys.stderr.flush()
    # Exit now: the stdin watcher is blocked in a read that would stall interpreter shutdown.
    os._exit(0)


if __name__ == "__main__":
    main()
