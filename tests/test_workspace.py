"""Per-session storage and background training jobs (real training in a child process)."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from conftest import synthetic_photo, write_dataset

from bikelib import DatasetError, TrainConfig, load_model, open_dataset, read_meta
from bikelib import workspace as ws
from bikelib.workspace import TrainingJob, Workspace

FAST = {"image_size": 32, "batch_size": 8, "strangers": 0}


@pytest.fixture(autouse=True)
def workdir(tmp_path, monkeypatch) -> Path:
    root = tmp_path / "sessions"
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(root))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(tmp_path / "no-demo-data"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(tmp_path / "no-demo-model"))
    return root


def png(colour=(200, 40, 40), seed=0) -> bytes:
    import io

    buffer = io.BytesIO()
    synthetic_photo(colour, seed).save(buffer, "PNG")
    return buffer.getvalue()


def wait_until(condition, timeout=120.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


def test_a_session_gets_one_id_and_its_own_folders(workdir):
    state: dict = {}
    first = Workspace.for_session(state)
    assert Workspace.for_session(state).path == first.path == workdir / state[ws.SESSION_KEY]
    assert not first.path.exists()  # nothing is created until something is stored
    other = Workspace.for_session({})
    assert other.path != first.path
    upload = first.save_upload("../../etc/bikes.zip", b"zip bytes")
    assert upload == first.path / "uploads" / "bikes.zip" and upload.read_bytes() == b"zip bytes"
    assert not (other.path / "uploads").exists()


def test_a_forged_session_id_is_replaced(workdir):
    state = {ws.SESSION_KEY: "../../somewhere-else"}
    workspace = Workspace.for_session(state)
    assert state[ws.SESSION_KEY] != "../../somewhere-else"
    assert workspace.path.parent == workdir
    with pytest.raises(ValueError):
        Workspace("../x")


def test_pruning_removes_only_idle_session_folders(workdir):
    old, recent = workdir / ("a" * 32), workdir / ("b" * 32)
    foreign = workdir / "not-a-session"
    for folder in (old, recent, foreign):
        (folder / "models").mkdir(parents=True)
    day_ago = time.time() - 25 * 3600
    os.utime(old, (day_ago, day_ago))
    os.utime(foreign, (day_ago, day_ago))
    assert ws.prune_sessions(workdir, 24 * 3600) == [old]
    assert not old.exists() and recent.exists() and foreign.exists()


def test_photos_added_in_the_browser_make_a_dataset(workdir):
    workspace = Workspace.for_session({})
    assert workspace.add_photos("red bike", [("image.jpg", png(seed=1))]) == 1
    assert workspace.add_photos("red bike", [("image.jpg", png(seed=2))]) == 1  # camera names
    assert workspace.add_photos("red bike", [("again.jpg", png(seed=2))]) == 0  # same content
    workspace.add_photos("blue  bike ", [(f"b{i}.png", png((40, 70, 200), i)) for i in range(2)])
    assert workspace.photo_set_counts() == {"blue bike": 2, "red bike": 2}
    dataset = open_dataset(workspace.photo_set)
    assert dataset.classes == ("blue bike", "red bike")
    assert workspace.source_kind(workspace.photo_set) == "photos"
    workspace.remove_bike("blue bike")
    assert workspace.photo_set_counts() == {"red bike": 2}


@pytest.mark.parametrize("name", ["", "../up", ".hidden", "a/b", "x" * 51])
def test_bike_names_must_be_folder_names(name):
    with pytest.raises(DatasetError, match="bike name"):
        Workspace.for_session({}).add_photos(name, [("p.png", png())])


def test_only_photos_can_be_added():
    with pytest.raises(DatasetError, match="is not a photo"):
        Workspace.for_session({}).add_photos("bike", [("notes.txt", b"text")])


def test_sources_are_described_for_people(tmp_path, monkeypatch):
    demo = write_dataset(tmp_path / "demo")
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(demo))
    workspace = Workspace.for_session({})
    assert workspace.default_source() == demo
    assert workspace.describe_source(demo) == "the built-in demo bikes"
    zip_path = workspace.save_upload("mine.zip", b"")
    assert workspace.describe_source(zip_path) == "uploaded mine.zip"
    assert workspace.source_kind(zip_path) == "zip"
    assert workspace.source_kind("/srv/photos") == "folder"
    assert workspace.describe_source(None) == "none"


def test_server_folders_can_be_switched_off(monkeypatch):
    assert ws.server_folders_allowed()
    monkeypatch.setenv("BIKE_RECOGNITION_SERVER_FOLDERS", "0")
    assert not ws.server_folders_allowed()


def test_source_stamp_changes_when_photos_change(tiny_dataset):
    before = ws.source_stamp(tiny_dataset)
    assert ws.source_stamp(tiny_dataset) == before
    synthetic_photo((1, 2, 3), 9).save(tiny_dataset / "red-bike" / "new.png")
    assert ws.source_stamp(tiny_dataset) != before


def test_safe_filename():
    assert ws.safe_filename("../../a b?.JPG") == "a_b_.jpg"
    assert ws.safe_filename("...") == "file"


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
    assert status.state == ws.DONE and status.error is None, status.error
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
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(status.model_dir))
    workspace = Workspace.for_session({})
    models = workspace.saved_models()
    assert [m["shipped"] for m in models] == [True]
    assert not workspace.owns_model(models[0]["path"])
    rows = ws.run_rows(models)
    assert rows[0]["architecture"] == "default" and rows[0]["epochs"] == 2
    assert rows[0]["augmentation"].startswith("flip")
    curves = ws.curve_rows(models)
    assert {r["metric"] for r in curves} == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert len(curves) == 4 * 2


def test_stop_keeps_the_best_model_and_a_second_job_waits_its_turn(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset)
    first = TrainingJob.start(dataset, TrainConfig(epochs=500, **FAST), tmp_path / "first")
    second = TrainingJob.start(dataset, TrainConfig(epochs=1, **FAST), tmp_path / "second")
    try:
        wait_until(lambda: len(first.status().history) >= 1)
        assert second.status().state == ws.QUEUED  # one training at a time by default
        second.stop()
        assert second.wait(timeout=10).state == ws.STOPPED
        assert second.status().model_dir is None and not (tmp_path / "second").exists()
        first.stop()
        status = first.wait(timeout=120)
    finally:
        first.stop()
    assert status.state == ws.STOPPED and status.stop_requested
    assert 1 <= status.metrics["epochs_run"] < 500
    assert read_meta(tmp_path / "first")["metrics"]["stopped_early"] is True


def test_a_failed_run_says_why_in_one_sentence(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset)
    for photo in (tiny_dataset / "red-bike").iterdir():
        photo.write_bytes(b"no longer a photo")  # broken after the dataset was opened
    status = TrainingJob.start(dataset, TrainConfig(epochs=1, **FAST), tmp_path / "m").wait(120)
    assert status.state == ws.FAILED
    assert status.error == "No readable training photos for: red-bike"
    assert status.model_dir is None


def test_the_train_form_maps_to_a_config_with_default_strengths():
    recipe = TrainConfig.recommended("seed")
    config = ws.config_from_form(
        recipe, flip=False, switched_on=["zoom", "rotation"], seed="7", epochs=3, image_size=96
    )
    defaults = ws.Augmentation()
    assert (config.arch, config.epochs, config.image_size, config.seed) == ("seed", 3, 96, 7)
    assert config.learning_rate == recipe.learning_rate  # not on the form: the recipe's
    assert config.augmentation == ws.Augmentation(
        flip=False,
        zoom=defaults.zoom,
        rotation=defaults.rotation,
        translation=0.0,
        brightness=0.0,
        contrast=0.0,
    )
    # A recipe with an augmentation off still offers it at the default strength.
    plain = TrainConfig(augmentation=ws.Augmentation(zoom=0.0))
    switches = {name: (label, on) for name, label, on in ws.augmentation_switches(plain)}
    assert switches["zoom"] == (f"Zoom ±{defaults.zoom:.0%}", False)
    assert switches["rotation"] == (f"Rotation ±{defaults.rotation:g}°", True)
    on = ws.config_from_form(plain, flip=True, switched_on=["zoom"], seed=0)
    assert on.augmentation.zoom == defaults.zoom and on.augmentation.rotation == 0.0
    with pytest.raises(ValueError, match="epochs"):
        ws.config_from_form(recipe, flip=True, switched_on=[], seed=0, epochs=0)


def test_form_choices_and_recipe_extras():
    recipe = TrainConfig.recommended("seed")
    assert 150 in ws.form_choices(recipe, "image_size")
    assert ws.form_choices(TrainConfig(batch_size=12), "batch_size") == [4, 8, 12, 16, 32, 64]
    extras = ws.recipe_extras(recipe)
    assert "schedule: constant" in extras and "restore best: True" in extras
    assert "epochs" not in extras and "steps per epoch" not in extras  # on the form / None


def test_model_labels_and_the_chosen_model():
    models = [
        {
            "path": "/m/new",
            "name": "new",
            "architecture": "default",
            "shipped": False,
            "metrics": {"val_accuracy": 0.875},
        },
        {"path": "/m/demo", "name": "demo", "architecture": "seed", "shipped": True},
    ]
    assert ws.model_summary(models[0]) == "new · default · 88% validation accuracy"
    assert ws.model_summary(models[1]) == "demo · seed · 0% validation accuracy · shipped"
    assert [ws.model_name(m) for m in models] == ["new", "demo (shipped)"]
    assert ws.chosen_model(models, "/m/demo") is models[1]
    assert ws.chosen_model(models, "/gone") is models[0] and ws.chosen_model([], None) is None
    runs = ws.past_runs(models)
    assert [r["name"] for r in runs] == ["new", "demo (shipped)"]
    assert "shipped" not in runs[0]


def test_job_status_label_says_epoch_time_left_and_saving():
    status = ws.JobStatus(state=ws.TRAINING, epoch=2, epochs=5, fraction=0.3)
    assert status.label == "Epoch 2 of 5"
    assert ws.replace(status, seconds_left=41.6).label == "Epoch 2 of 5, about 42 s left"
    saving = ws.replace(status, state=ws.SAVING, epoch=5)
    assert saving.label == "Epoch 5 of 5 done; checking and saving the model…"
