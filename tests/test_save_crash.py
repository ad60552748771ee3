"""A process killed (SIGKILL) in the middle of `save_model` leaves the previous model
loadable and no half-written folder listed; pruning sweeps what it left behind.

The child is a real interpreter that trains a tiny model and saves it; its `os.replace`
is made to stop (and say so) at a chosen rename, where the test kills it.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from helpers import ROOT, write_dataset

from bikelib import TrainConfig, list_models, load_model, open_dataset, save_model, sessions, train
from bikelib.sessions import Workspace

FAST = {"image_size": 32, "batch_size": 8, "epochs": 1, "strangers": 0, "second_opinion": False}

CHILD = """
import os, sys, time
from bikelib import TrainConfig, open_dataset, save_model, train

data, target, stop_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
result = train(open_dataset(data, val_fraction=0.34, seed=0), TrainConfig(**FAST))
real_replace, calls = os.replace, []

def replace(src, dst):
    calls.append(dst)
    if len(calls) == stop_at:
        print("stopped", flush=True)
        time.sleep(600)  # killed here
    real_replace(src, dst)

os.replace = replace
save_model(result, target, name="new")
print("finished", flush=True)
""".replace("FAST", repr(FAST))


@pytest.fixture(scope="module")
def previous(tmp_path_factory):
    """The data, and a model trained and saved the ordinary way (the one to keep)."""
    root = tmp_path_factory.mktemp("crash")
    data = write_dataset(root / "data")
    result = train(open_dataset(data, val_fraction=0.34, seed=0), TrainConfig(**FAST))
    return data, result


def _save_and_kill(data: Path, target: Path, stop_at: int) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "2"}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(data), str(target), str(stop_at)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert child.stdout.readline().strip() == "stopped"
        child.send_signal(signal.SIGKILL)
        assert child.wait(30) == -signal.SIGKILL
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()


# (what the dying save writes to, which rename it dies at)
CASES = {
    "new folder, staging written": ("new", 1),
    "same folder, staging written": ("old", 1),
    "same folder, old one moved aside": ("old", 2),
}


@pytest.mark.parametrize("case", list(CASES))
def test_a_save_killed_midway_keeps_the_previous_model(case, previous, tmp_path, monkeypatch):
    data, result = previous
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(tmp_path / "no-demo-model"))
    workspace = Workspace("0" * 32)
    old = save_model(result, workspace.models / "old", name="old")
    target, stop_at = CASES[case]
    _save_and_kill(data, workspace.models / target, stop_at)
    assert any(p.name.startswith(".") for p in workspace.models.iterdir())  # it died midway

    listed = [Path(m["path"]) for m in workspace.saved_models()]
    assert listed == [old]
    assert [Path(m["path"]) for m in list_models(workspace.models)] == [old]
    assert load_model(old, gate=False).classes == list(result.classes)

    # A sweep of the shared disk removes what the dead save left, and nothing else.
    sessions.sweep_saves(workspace.models)
    assert sorted(p.name for p in workspace.models.iterdir()) == ["old"]
    assert load_model(old, gate=False).meta["name"] == "old"


def test_a_save_in_progress_is_left_alone(previous, tmp_path):
    """A staging folder of a live process (this one) is not swept from under it."""
    staging = tmp_path / f".m-{os.getpid()}-abc"
    staging.mkdir()
    sessions.sweep_saves(tmp_path)
    assert staging.is_dir()
    os.utime(staging, (time.time() - 7200, time.time() - 7200))
    sessions.sweep_saves(tmp_path)  # hours old: whoever wrote it is not saving any more
    assert not staging.exists()
