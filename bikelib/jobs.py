"""Training in the background: one run per `TrainingJob`, in a child process.

The child (`python -m bikelib.job_child`) is watched by a thread, so page
reruns and switches do not interrupt it. A process-wide slot limit (`Settings.
max_trainings`, 1) keeps a small shared box from running trainings side by side; the
others wait, queued. Progress comes back as JSON lines, kept in a `JobStatus` snapshot
any thread can read. Plain Python: TensorFlow is imported only in the child.

A shared server must never wedge, so the supervisor holds a few rules: at most
`Settings.max_queue` runs wait for a slot (one more is refused with `ServerBusyError`);
a run longer than `Settings.training_minutes` is ended and says so; Stop asks the child
to end after its batch and terminates it when it has not finished its last batch a few
seconds later; a run whose page was closed (no heartbeat for `Settings.abandon_minutes`,
see `bikelib.presence`) is dropped from the queue or stopped; and whatever goes wrong in
the supervising thread, the child is ended and the slot released.
"""

from __future__ import annotations

import collections
import contextlib
import json
import logging
import os
import pickle
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from . import presence
from .errors import ServerBusyError
from .settings import APP_ROOT, settings

log = logging.getLogger(__name__)

STOP_GRACE_S = 5.0  # after Stop, seconds the child has to reach saving before it is ended
END_GRACE_S = 5.0  # after SIGTERM, seconds before SIGKILL
BUSY = "The server is busy: try again in a few minutes."
GONE = "Stopped: the page that started this training was closed."

_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None
_waiting: list[TrainingJob] = []  # jobs started but not yet holding a slot, oldest first
_running: list[TrainingJob] = []  # jobs holding a slot
_recent_runs: collections.deque[float] = collections.deque(maxlen=8)  # wall s of last runs


def _training_slots() -> threading.BoundedSemaphore:
    """Process-wide limit on simultaneous trainings (`Settings.max_trainings`)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(settings().max_trainings)
        return _slots


def _join_queue(job: TrainingJob) -> None:
    """Queue one more waiting run, or refuse it when `Settings.max_queue` already wait."""
    with _slots_lock:
        if len(_waiting) >= settings().max_queue:
            raise ServerBusyError(BUSY)
        _waiting.append(job)


def _leave_queue(job: TrainingJob) -> None:
    with _slots_lock:
        _waiting.remove(job)


def _place(job: TrainingJob) -> int | None:
    """`job`'s 1-based place among the runs waiting for a slot; None when not waiting."""
    with _slots_lock:
        return _waiting.index(job) + 1 if job in _waiting else None


def expected_wait(job: TrainingJob) -> float | None:
    """About how many seconds until `job` gets a slot; None when not waiting or unknown.

    The running runs' time left (their steady estimate, else a typical run's length less
    what they have run), then a typical run (the median of this server's last few) for
    each run ahead, shared out over the slots.
    """
    place = _place(job)
    with _slots_lock:
        running, recent = list(_running), list(_recent_runs)
    if place is None or not running:
        return None
    typical = statistics.median(recent) if recent else None
    lefts = []
    for other in running:
        left = other.status().seconds_left
        if left is None and typical is not None:
            left = max(typical - (time.monotonic() - other._started), 0.0)
        lefts.append(left)
    if None in lefts or (place > 1 and typical is None):
        return None
    return min(lefts) + (place - 1) * (typical or 0.0) / len(running)


def _end(child: subprocess.Popen) -> None:
    """Terminate a child process, and kill it if it does not go within END_GRACE_S."""
    if child.poll() is not None:
        return
    with contextlib.suppress(OSError):
        child.terminate()
    try:
        child.wait(END_GRACE_S)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(OSError):
            child.kill()
        child.wait()


QUEUED, PREPARING, TRAINING, SAVING = "queued", "preparing", "training", "saving"
DONE, STOPPED, FAILED = "done", "stopped", "failed"
_ACTIVE = (QUEUED, PREPARING, TRAINING, SAVING)


@dataclass(frozen=True)
class JobStatus:
    """A consistent snapshot of a training job, safe to read from any thread."""

    state: str = QUEUED
    epoch: int = 0  # 1-based epoch in progress (0 before the first batch)
    epochs: int = 0
    step: int = 0
    steps: int = 0
    fraction: float = 0.0
    elapsed: float = 0.0  # seconds of training so far (after the photos are decoded)
    seconds_left: float | None = None
    history: tuple[dict, ...] = ()  # one row per finished epoch: epoch, loss, accuracy, val_*
    error: str | None = None
    model_dir: Path | None = None  # set once the model is saved
    metrics: dict = field(default_factory=dict)
    stop_requested: bool = False
    reason: str | None = None  # why it ended early, in one sentence (a closed page)

    @property
    def active(self) -> bool:
        return self.state in _ACTIVE

    @property
    def finished(self) -> bool:
        return not self.active

    @property
    def label(self) -> str:
        """The progress bar's caption: which epoch, and the time left once it is known."""
        if self.fraction >= 1 or self.state == SAVING:
            return f"Epoch {self.epoch} of {self.epochs} done; checking and saving the model…"
        if self.seconds_left is not None:
            return f"Epoch {self.epoch} of {self.epochs}, about {self.seconds_left:.0f} s left"
        return f"Epoch {self.epoch} of {self.epochs}"


def steady_seconds_left(
    epoch_ends: list[float], first_batch: float | None, progress: dict
) -> float | None:
    """Seconds left from the steady pace, not the start-up (the first epoch builds the
    graph and warms caches, often several later epochs long): the median epoch after
    the first; in epoch 2 its own pace; in epoch 1 the batches after the first. Times
    are the child's `elapsed` at each epoch's end / the first batch. None while unknown.
    """
    epoch, epochs = progress["epoch"], progress["epochs"]
    steps, elapsed = max(progress["steps"], 1), progress["elapsed"]
    done = min(progress["step"] / steps, 1.0)  # share of the current epoch
    if len(epoch_ends) >= 2:
        durations = [b - a for a, b in zip([0.0, *epoch_ends], epoch_ends, strict=False)]
        per_epoch = statistics.median(durations[1:])
    elif len(epoch_ends) == 1 and epoch >= 2 and done > 0:
        per_epoch = (elapsed - epoch_ends[0]) / done
    elif epoch == 1 and first_batch is not None and progress["step"] >= 2:
        per_epoch = (elapsed - first_batch) / (progress["step"] - 1) * steps
    else:
        return None
    return max(per_epoch * (epochs - epoch + 1 - done), 0.0)


class TrainingJob:
    """One training run, supervised by a background thread: progress, stop, saved result.

    The thread waits for a free training slot, then runs `bikelib.train` in a child
    process (`python -m bikelib.job_child`) and relays its progress into a snapshot any
    thread can read. The child saves the model (the best epoch so far when stopped) to
    `save_dir` and exits.

    Why a process and not just the thread: Streamlit calls `keras.backend.clear_session()`
    after every script run (a fragment redrawing progress each second included), which
    resets Keras' global state under a model being built or trained in another thread of
    the same process. A child process is also the only way to hand a run's memory back
    to the system on a small hosted instance, and it keeps the GIL free for the UI.
    """

    # The child's command line; tests put a misbehaving stand-in here.
    command = (sys.executable, "-m", "bikelib.job_child")

    def __init__(
        self, dataset, config, save_dir, *, name=None, label: str | None = None, session=None
    ):
        self.dataset, self.config, self.save_dir = dataset, config, Path(save_dir)
        self.name = name or self.save_dir.name
        self.label = label  # what the data is, in words, for model.json
        self.session = session  # the owner's session id: its closed page ends the run
        self.created = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._stop_requested_at: float | None = None
        self._ended_by: str | None = None  # "limit" or "stop" when the watchdog ended the child
        self.limit_s = settings().training_minutes * 60
        self._status = JobStatus(epochs=config.epochs)
        self._epoch_ends: list[float] = []  # elapsed s at each epoch's end, for time left
        self._first_batch: float | None = None  # elapsed s at the first batch
        self._started = time.monotonic()  # reset when it gets a slot
        self._thread = threading.Thread(
            target=self._run, name=f"train-{self.save_dir.name}", daemon=True
        )

    @classmethod
    def start(cls, dataset, config, save_dir: str | os.PathLike, **kwargs) -> TrainingJob:
        """Create a job and start its thread; ServerBusyError when the queue is full.

        `session=` (a session id) ties the run to a page: when that session stops
        beating (`bikelib.presence.is_gone`), the run is dropped from the queue or stopped.
        """
        job = cls(dataset, config, save_dir, **kwargs)
        _join_queue(job)
        job._thread.start()
        return job

    def stop(self) -> None:
        """Ask the run to end after the current batch; it keeps the best model so far.

        A child that has not started saving STOP_GRACE_S seconds later (still decoding
        photos, say, or hung) is terminated, and the job ends stopped without a model.
        """
        with self._lock:
            self._stop.set()
            self._status = replace(self._status, stop_requested=True)
            if self._stop_requested_at is None:
                self._stop_requested_at = time.monotonic()
            child = self._child
        if child is not None:
            with contextlib.suppress(OSError, ValueError):
                child.stdin.close()  # the child's signal to stop

    def queue_position(self) -> int | None:
        """1 when this run is next for a training slot, 2 behind one other run, ...;
        None once it has a slot (or has ended)."""
        return _place(self)

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job has finished (or `timeout` passed); returns the status."""
        self._thread.join(timeout)
        return self.status()

    def _abandoned(self) -> bool:
        """True when the page that started this run is gone (no owner: never)."""
        return self.session is not None and presence.is_gone(self.session)

    def _update(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _on_progress(self, progress: dict) -> None:
        if self._first_batch is None:
            self._first_batch = progress["elapsed"]
        if progress["kind"] == "epoch":
            self._epoch_ends.append(progress["elapsed"])
        changes = {
            "state": TRAINING,
            "seconds_left": steady_seconds_left(self._epoch_ends, self._first_batch, progress),
            **{k: progress[k] for k in ("epoch", "epochs", "step", "steps", "elapsed", "fraction")},
        }
        if progress["kind"] == "epoch":
            row = {"epoch": progress["epoch"], **progress["logs"]}
            changes["history"] = (*self.status().history, row)
        self._update(**changes)

    def _run(self) -> None:
        slots = _training_slots()
        try:
            # First come, first served: only the run at the head of the queue takes a slot.
            while not (_place(self) == 1 and slots.acquire(timeout=0.2)):
                if self._stop.is_set():
                    self._update(state=STOPPED)
                    return
                if self._abandoned():  # nobody is waiting for it any more
                    self._update(state=STOPPED, reason=GONE)
                    return
                if _place(self) != 1:
                    time.sleep(0.2)
        finally:
            _leave_queue(self)
        self._started = time.monotonic()
        with _slots_lock:
            _running.append(self)
        try:
            if self._stop.is_set():
                self._update(state=STOPPED)
                return
            self._update(state=PREPARING)
            self._supervise()
        except Exception as error:  # a thread must report its failure, not die silently
            log.exception("training job %s failed", self.save_dir.name)
            self._update(state=FAILED, error=f"Training failed: {type(error).__name__}: {error}")
        finally:
            with _slots_lock:
                _running.remove(self)
                if self.status().state == DONE:  # what a whole run takes, for the waiting
                    _recent_runs.append(time.monotonic() - self._started)
            slots.release()

    def _supervise(self) -> None:
        """Start the child process and relay its messages until it has finished."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APP_ROOT), env.get("PYTHONPATH")) if p)
        # The server's malloc arena cap for the child (read by glibc at its start), also
        # where the server applied it only from inside (bikelib/memory.py).
        env.setdefault("MALLOC_ARENA_MAX", str(settings().malloc_arenas))
        child = subprocess.Popen(
            list(self.command), stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
        )
        try:
            self._relay(child)
        finally:  # whatever went wrong here, no child outlives its job or keeps its slot
            _end(child)

    def _watch(self, child: subprocess.Popen, started: float) -> None:
        """End the child past the run's wall-clock limit, or when a Stop went unheeded."""
        while child.poll() is None:
            now = time.monotonic()
            with self._lock:
                stop_at, state = self._stop_requested_at, self._status.state
            if now - started > self.limit_s:
                self._ended_by = "limit"
            elif stop_at is not None and state != SAVING and now - stop_at > STOP_GRACE_S:
                self._ended_by = "stop"
            elif stop_at is None and self._abandoned():  # the usual Stop, then the grace
                self._update(reason=GONE)
                self.stop()
            if self._ended_by:
                _end(child)
                return
            time.sleep(0.1)

    def _relay(self, child: subprocess.Popen) -> None:
        """Feed the child its run, then relay its messages until it has finished."""
        threading.Thread(target=self._watch, args=(child, time.monotonic()), daemon=True).start()
        with contextlib.suppress(BrokenPipeError):  # a child that died at once is reported below
            payload = (self.dataset, self.config, self.save_dir, self.name, self.label)
            child.stdin.write(pickle.dumps(payload))
            child.stdin.flush()
        with self._lock:
            self._child = child  # from now on stop() closes stdin itself
            stopped_meanwhile = self._stop.is_set()
        if stopped_meanwhile:
            with contextlib.suppress(OSError):
                child.stdin.close()
        final = None
        for line in child.stdout:
            kind, payload = json.loads(line)
            if kind == "progress":
                self._on_progress(payload)
            elif kind == "saving":
                self._update(state=SAVING)
            else:
                final = (kind, payload)
        child.wait()
        if final is None and self._ended_by == "limit":
            minutes = self.limit_s / 60
            self._update(
                state=FAILED,
                error=f"The training ran past this server's limit of {minutes:g} minutes a run "
                "and was ended; try fewer epochs or a smaller image size",
            )
        elif final is None and self._ended_by == "stop":
            self._update(state=STOPPED)  # ended before it could save anything
        elif final is None:
            self._update(
                state=FAILED,
                error=f"The training process ended unexpectedly (exit code {child.returncode}); "
                "the machine may be out of memory",
            )
        elif final[0] == "failed":
            self._update(state=FAILED, error=final[1])
        else:
            self._update(
                state=STOPPED if final[1]["stopped"] else DONE,
                model_dir=self.save_dir,
                metrics=final[1]["metrics"],
            )
