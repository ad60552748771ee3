"""Background training jobs: real training in a child process, progress, stop, queue;
and stand-in children that misbehave, for the rules that keep a shared server going."""

from __future__ import annotations

import collections
import sys
import time
import uuid
from dataclasses import replace

import pytest
from helpers import write_dataset

import app_state
from bikelib import TrainConfig, jobs, load_model, open_dataset, presence, read_meta
from bikelib.errors import ServerBusyError
from bikelib.jobs import TrainingJob
from bikelib.sessions import Workspace

FAST = {"image_size": 32, "batch_size": 8, "strangers": 0, "second_opinion": False}


def wait_until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


@pytest.fixture(scope="module")
def trained_job(tmp_path_factory):
    """One real background training run (2 epochs, 32 px), shared by the tests below."""
    root = tmp_path_factory.mktemp("job")
    dataset = open_dataset(write_dataset(root / "data"), val_fraction=0.34)
    job = TrainingJob.start(
        dataset, TrainConfig(epochs=2, **FAST), root / "models" / "run-1", name="first run"
    )
    status = job.wait(timeout=300)
    return job, status


def test_a_job_trains_saves_and_reports_each_epoch(trained_job):
    _, status = trained_job
    assert status.state == jobs.DONE and status.error is None, status.error
    assert status.fraction == 1.0 and status.epoch == 2
    assert [row["epoch"] for row in status.history] == [1, 2]
    assert {"loss", "accuracy", "val_loss", "val_accuracy"} <= set(status.history[0])
    meta = read_meta(status.model_dir)
    assert meta["name"] == "first run" and meta["metrics"]["epochs_run"] == 2
    assert status.metrics["val_accuracy"] == meta["metrics"]["val_accuracy"]
    classifier = load_model(status.model_dir)
    assert classifier.classes == ["blue-bike", "green-bike", "red-bike"]


def test_saved_models_and_run_tables(trained_job, monkeypatch, tmp_path):
    _, status = trained_job
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(status.model_dir))
    models = Workspace.for_session({}).saved_models()
    assert [m["shipped"] for m in models] == [True]
    rows = app_state.run_rows(models)
    assert rows[0]["architecture"] == "default" and rows[0]["epochs"] == 2
    assert rows[0]["augmentation"].startswith("flip")
    curves = app_state.curve_rows(models)
    assert {r["metric"] for r in curves} == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(curves) == 4 * 2


def test_stop_keeps_the_best_model_and_a_second_job_waits_its_turn(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset)
    first = TrainingJob.start(dataset, TrainConfig(epochs=500, **FAST), tmp_path / "first")
    second = TrainingJob.start(dataset, TrainConfig(epochs=1, **FAST), tmp_path / "second")
    try:
        wait_until(lambda: len(first.status().history) >= 1)
        assert second.status().state == jobs.QUEUED  # one training at a time by default
        second.stop()
        assert second.wait(timeout=10).state == jobs.STOPPED
        assert second.status().model_dir is None and not (tmp_path / "second").exists()
        first.stop()
        status = first.wait(timeout=120)
    finally:
        first.stop()
    assert status.state == jobs.STOPPED and status.stop_requested
    assert 1 <= status.metrics["epochs_run"] < 500
    assert read_meta(tmp_path / "first")["metrics"]["stopped_early"] is True


def test_a_failed_run_says_why_in_one_sentence(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset)
    for photo in (tiny_dataset / "red-bike").iterdir():
        photo.write_bytes(b"no longer a photo")  # broken after the dataset was opened
    status = TrainingJob.start(dataset, TrainConfig(epochs=1, **FAST), tmp_path / "m").wait(120)
    assert status.state == jobs.FAILED
    assert status.error == "No readable training photos for: red-bike"
    assert status.model_dir is None


def test_job_status_label_says_epoch_time_left_and_saving():
    status = jobs.JobStatus(state=jobs.TRAINING, epoch=2, epochs=5, fraction=0.3)
    assert status.label == "Epoch 2 of 5"
    assert replace(status, seconds_left=41.6).label == "Epoch 2 of 5, about 42 s left"
    saving = replace(status, state=jobs.SAVING, epoch=5)
    assert saving.label == "Epoch 5 of 5 done; checking and saving the model…"


def test_time_left_comes_from_the_steady_epochs_not_the_first_ones_start_up(tmp_path):
    # 10 epochs of 4 batches: the first epoch takes 30 s (graph building), later ones 5 s.
    job = TrainingJob(None, TrainConfig(epochs=10), tmp_path / "run")
    ends = [30.0, 35.0, 40.0]
    for epoch, end in enumerate(ends, start=1):
        start = end - (30.0 if epoch == 1 else 5.0)
        for step in range(1, 5):
            job._on_progress(
                {"kind": "batch", "epoch": epoch, "epochs": 10, "step": step, "steps": 4,
                 "elapsed": start + (end - start) * step / 4, "fraction": 0, "logs": {},
                 "left": 999.0}
            )  # fmt: skip
        job._on_progress(
            {"kind": "epoch", "epoch": epoch, "epochs": 10, "step": 4, "steps": 4,
             "elapsed": end, "fraction": epoch / 10, "logs": {"loss": 1.0}, "left": 999.0}
        )  # fmt: skip
    # 7 epochs of 5 s are left; time-so-far / share-done would say 40 * 7 / 3 = 93 s.
    assert job.status().seconds_left == pytest.approx(35.0)
    assert len(job.status().history) == 3
    progress = {"epoch": 2, "epochs": 10, "step": 2, "steps": 4, "elapsed": 32.5}
    assert jobs.steady_seconds_left([30.0], 7.5, progress) == pytest.approx(42.5)  # 8.5 x 5 s
    first = {"epoch": 1, "epochs": 10, "step": 3, "steps": 4, "elapsed": 26.0}
    # Batches after the first took 2 s each: 8 s an epoch, 9.25 epochs left.
    assert jobs.steady_seconds_left([], 22.0, first) == pytest.approx(74.0)
    assert jobs.steady_seconds_left([], 22.0, {**first, "step": 1}) is None


# --- a shared server that never wedges: fast tests with stand-in child processes --------

SLEEPER = (sys.executable, "-c", "import time; time.sleep(60)")  # ignores stop and stdin


@pytest.fixture
def stand_in(monkeypatch):
    """Run jobs with `command` as their child process, and a tiny config."""

    def use(command):
        monkeypatch.setattr(TrainingJob, "command", command)
        return TrainConfig(epochs=1, **FAST)

    return use


def slot_is_free() -> bool:
    slots = jobs._training_slots()
    if slots.acquire(timeout=5):
        slots.release()
        return True
    return False


def test_whatever_goes_wrong_in_the_supervisor_the_child_is_ended_and_the_slot_freed(
    stand_in, tmp_path
):
    garbage = "import time; print('not a protocol line', flush=True); time.sleep(60)"
    config = stand_in((sys.executable, "-c", garbage))
    job = TrainingJob.start(None, config, tmp_path / "m")
    status = job.wait(timeout=20)
    assert status.state == jobs.FAILED and status.error.startswith("Training failed: JSONDecode")
    assert job._child.poll() is not None  # not left running beside the next training
    assert slot_is_free()


@pytest.mark.parametrize(("server", "child"), [(None, "2"), ("4", "4")])
def test_the_child_starts_with_the_servers_malloc_arena_cap(
    stand_in, monkeypatch, tmp_path, server, child
):
    """Set in the server's environment, it is passed on; applied only from inside the
    server (bikelib.memory, where the environment cannot be set), the child gets it too."""
    if server is None:
        monkeypatch.delenv("MALLOC_ARENA_MAX", raising=False)
    else:
        monkeypatch.setenv("MALLOC_ARENA_MAX", server)
    tell = "import json, os; print(json.dumps(['failed', os.environ['MALLOC_ARENA_MAX']]))"
    job = TrainingJob.start(None, stand_in((sys.executable, "-c", tell)), tmp_path / "m")
    status = job.wait(timeout=20)
    assert status.state == jobs.FAILED and status.error == child


def test_a_full_queue_refuses_one_more_run_in_one_sentence(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("BIKE_RECOGNITION_MAX_QUEUE", "1")
    config = stand_in(SLEEPER)
    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session's training holds the only slot
    waiting = None
    try:
        waiting = TrainingJob.start(None, config, tmp_path / "a")
        with pytest.raises(ServerBusyError, match=r"^The server is busy: try again in a few"):
            TrainingJob.start(None, config, tmp_path / "b")
        waiting.stop()
        assert waiting.wait(timeout=5).state == jobs.STOPPED
        again = TrainingJob.start(None, config, tmp_path / "c")  # the queue has room again
        again.stop()
        assert again.wait(timeout=5).state == jobs.STOPPED
    finally:
        if waiting is not None:
            waiting.stop()
        slots.release()


def test_a_run_past_the_time_limit_is_ended_and_says_so(stand_in, monkeypatch, tmp_path):
    monkeypatch.setenv("BIKE_RECOGNITION_TRAINING_MINUTES", "0.01")  # 0.6 s
    job = TrainingJob.start(None, stand_in(SLEEPER), tmp_path / "m")
    status = job.wait(timeout=20)
    assert status.state == jobs.FAILED
    assert "ran past this server's limit of 0.01 minutes" in status.error
    assert job._child.poll() is not None and slot_is_free()


def test_stop_ends_a_child_that_does_not_listen(stand_in, monkeypatch, tmp_path):
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 0.5)
    job = TrainingJob.start(None, stand_in(SLEEPER), tmp_path / "m")
    wait_until(lambda: job._child is not None, timeout=10)
    job.stop()
    status = job.wait(timeout=20)
    assert status.state == jobs.STOPPED and status.model_dir is None
    assert job._child.poll() is not None and slot_is_free()


# --- a closed tab does not keep its training (bikelib.presence) ------------------------


@pytest.fixture
def tab(monkeypatch):
    """A session id that beats now, gone after 1.2 s without a beat (not 5 minutes)."""
    monkeypatch.setenv("BIKE_RECOGNITION_ABANDON_MINUTES", "0.02")
    session = uuid.uuid4().hex
    presence.beat(session)
    yield session
    presence.forget(session)


def test_a_queued_run_whose_page_was_closed_is_dropped(stand_in, tab, tmp_path):
    config = stand_in(SLEEPER)
    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session's training holds the only slot
    job = None
    try:
        job = TrainingJob.start(None, config, tmp_path / "m", session=tab)
        for _ in range(20):  # 2 s of an open tab, beating: the run keeps its place
            presence.beat(tab)
            time.sleep(0.1)
        assert job.status().state == jobs.QUEUED and job.queue_position() == 1
        status = job.wait(timeout=15)  # the tab is closed: no more beats
    finally:
        if job is not None:
            job.stop()
        slots.release()
    assert status.state == jobs.STOPPED and status.reason == jobs.GONE
    assert status.reason == "Stopped: the page that started this training was closed."
    assert job.queue_position() is None and job._child is None  # never started


def test_a_running_run_whose_page_was_closed_is_stopped_and_its_slot_freed(
    stand_in, tab, monkeypatch, tmp_path
):
    monkeypatch.setattr(jobs, "STOP_GRACE_S", 0.5)  # SLEEPER ignores the cooperative stop
    job = TrainingJob.start(None, stand_in(SLEEPER), tmp_path / "m", session=tab)
    try:
        wait_until(lambda: job._child is not None, timeout=10)
        status = job.wait(timeout=20)
    finally:
        job.stop()
    assert status.state == jobs.STOPPED and status.reason == jobs.GONE
    assert status.stop_requested and status.model_dir is None
    assert job._child.poll() is not None and slot_is_free()


def test_a_run_without_an_owner_or_with_a_live_one_is_never_abandoned(tab, tmp_path):
    owned = TrainingJob(None, TrainConfig(epochs=1), tmp_path / "a", session=tab)
    unowned = TrainingJob(None, TrainConfig(epochs=1), tmp_path / "b")
    assert not owned._abandoned() and not unowned._abandoned()
    time.sleep(1.3)
    assert owned._abandoned() and not unowned._abandoned()


def test_the_expected_wait_adds_the_running_runs_time_left_and_a_typical_run_per_place(
    monkeypatch,
):
    class Running:
        _started = 0.0

        def __init__(self, left):
            self.left = left

        def status(self):
            return jobs.JobStatus(state=jobs.TRAINING, seconds_left=self.left)

    first, second = object(), object()
    monkeypatch.setattr(jobs, "_waiting", [first, second])
    monkeypatch.setattr(jobs, "_running", [Running(30.0)])
    monkeypatch.setattr(jobs, "_recent_runs", collections.deque([40.0, 60.0, 50.0]))
    assert jobs.expected_wait(first) == 30.0  # next: when the running one ends
    assert jobs.expected_wait(second) == 30.0 + 50.0  # and one typical run more
    monkeypatch.setattr(jobs, "_recent_runs", collections.deque())
    assert jobs.expected_wait(second) is None  # no run finished yet: no guess
    monkeypatch.setattr(jobs, "_running", [Running(None)])
    assert jobs.expected_wait(first) is None
    assert jobs.expected_wait(object()) is None  # not waiting at all
