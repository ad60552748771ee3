"""AppTest: the Train page: settings form, a real short training run, stop, results."""

from __future__ import annotations

import json
import time
from pathlib import Path

from helpers import ROOT
from streamlit.testing.v1 import AppTest

from bikelib import TrainConfig, read_meta
from bikelib.artifacts import FORMAT

APP = str(ROOT / "streamlit_app.py")


def train_page() -> AppTest:
    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/train.py").run()
    assert not at.exception, at.exception
    return at


def widget(widgets, label):
    return next(w for w in widgets if w.label == label)


def start(at: AppTest, epochs: int, second_opinion: bool = False) -> None:
    """Start a small run; without the second opinion (the recipe's) unless asked: these
    tests are about the page, and that network costs each training seconds."""
    widget(at.slider, "Epochs").set_value(epochs)
    widget(at.select_slider, "Image size (pixels)").set_value(32)
    widget(at.select_slider, "Batch size").set_value(8)
    widget(at.checkbox, "Second opinion").set_value(second_opinion)
    at.get("form_submit_button")[0].click().run()
    assert not at.exception and not at.error, at.error


def run_until(at: AppTest, condition, timeout=240.0) -> None:
    """Rerun the page (as the progress fragment does each second) until `condition(at)`."""
    deadline = time.monotonic() + timeout
    while not condition(at):
        assert time.monotonic() < deadline, "timed out waiting for the training"
        time.sleep(0.5)
        at.run()
        assert not at.exception, at.exception


def fake_model(folder: Path, val_accuracy: float, classes=("a", "b", "c"), **meta) -> Path:
    """A model.json (and an empty model.keras) that lists and shows, never loads."""
    folder.mkdir(parents=True)
    (folder / "model.keras").write_bytes(b"")
    description = {
        "format": FORMAT,
        "classes": list(classes),
        "image_size": 32,
        "architecture": "default",
        "created": "2026-11-30T10:00:00",
        "metrics": {"val_accuracy": val_accuracy, "val_loss": 1.0, "epochs_run": 3},
        **meta,
    }
    (folder / "model.json").write_text(json.dumps(description))
    return folder


def test_the_form_starts_from_each_architectures_recipe(app_env):
    at = train_page()
    recipe = TrainConfig.recommended("default")
    assert widget(at.slider, "Epochs").value == recipe.epochs
    assert widget(at.select_slider, "Image size (pixels)").value == recipe.image_size
    assert widget(at.slider, "Validation fraction").disabled  # the demo has its own split
    assert widget(at.checkbox, "Start from the bike backbone").value is True
    assert widget(at.checkbox, "Second opinion").value is True
    offered = [option.split(":")[0] for option in at.button_group[0].options]
    assert offered == ["default", "seed"]  # lite0 is for the CLI only (measured weaker)
    at.button_group[0].set_value("seed").run()
    seed = TrainConfig.recommended("seed")
    assert widget(at.select_slider, "Image size (pixels)").value == seed.image_size
    assert widget(at.select_slider, "Learning rate").value == seed.learning_rate
    # The 2018 network has no pretrained weights: random ones, as then; no such box.
    assert not [box for box in at.checkbox if box.label == "Start from the bike backbone"]
    assert not [box for box in at.checkbox if box.label == "Second opinion"]


def test_a_short_training_run_shows_progress_results_and_past_runs(app_env):
    at = train_page()
    start(at, epochs=2, second_opinion=True)  # the recipe's, as a user gets it
    assert at.session_state["job"].status().active
    assert at.get("form_submit_button")[0].disabled  # one run at a time per session
    run_until(at, lambda at: at.success)  # the first run after the job has finished
    model_dir = at.session_state["job"].status().model_dir  # model_path too, unless at chance
    meta = read_meta(model_dir)
    # Named by default after its data, network and start time; the data is kept too.
    assert meta["name"].startswith(f"{meta['dataset']} · default · ")
    assert meta["dataset"] == widget(at.text_input, "Run name").placeholder.split(" · ")[0]
    assert at.success[0].value.startswith(f"Model saved as **{meta['name']}**")
    assert model_dir.parent.parent.parent == app_env / "sessions"  # inside this session
    assert read_meta(model_dir)["config"]["image_size"] == 32
    assert read_meta(model_dir)["config"]["second_opinion"] is True
    labels = {m.label: m.value for m in at.metric}
    assert labels["Best epoch"].endswith("of 2") and labels["Validation accuracy"].endswith("%")
    assert len(at.get("vega_lite_chart")) == 4  # loss, accuracy, confusion matrix, past runs
    assert at.get("download_button")[0].proto.label.startswith("Download this model")
    assert at.get("download_button")[1].proto.label.startswith("For phones")
    runs = at.dataframe[-1].value
    assert list(runs["architecture"]) == ["default"] and list(runs["epochs"]) == [2]


def test_stop_ends_the_run_and_keeps_the_best_model_so_far(app_env):
    at = train_page()
    widget(at.text_input, "Run name").input("my long run")
    start(at, epochs=300)
    run_until(at, lambda at: len(at.session_state["job"].status().history) >= 1)
    widget(at.button, "Stop training").click().run()
    run_until(at, lambda at: at.success)
    assert "stopped early" in at.success[0].value
    meta = read_meta(at.session_state["job"].status().model_dir)
    assert meta["name"] == "my long run"  # the user's name for the run
    assert meta["metrics"]["stopped_early"] and meta["metrics"]["epochs_run"] < 300


def test_a_typed_run_name_survives_the_minute_turning(app_env, monkeypatch):
    import app_state

    minutes = iter(range(10_000))  # every page run a new minute in the placeholder
    monkeypatch.setattr(app_state, "run_name", lambda *a: f"demo · {next(minutes)} min")
    at = train_page()
    widget(at.text_input, "Run name").input("my named run").run()
    start(at, epochs=1)
    run_until(at, lambda at: not at.session_state["job"].status().active)
    assert read_meta(at.session_state["job"].status().model_dir)["name"] == "my named run"


def test_without_a_dataset_the_page_says_so(app_env, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(app_env / "missing"))
    at = train_page()
    assert at.info[0].value == "Choose a dataset first."
    assert not at.get("form_submit_button")


def test_a_dataset_that_cannot_be_opened_is_one_sentence(app_env):
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset_source"] = str(app_env / "gone")
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception
    assert at.error[0].value == f"Dataset not found: {app_env / 'gone'}"


def test_the_train_page_counts_the_not_mine_photos(app_env):
    from helpers import write_dataset, write_not_mine

    folder = write_not_mine(write_dataset(app_env / "folder"), count=5)
    at = AppTest.from_file(APP, default_timeout=120)
    at.session_state["dataset_source"] = str(folder)
    at.run()
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.error
    assert any(c.value.startswith("Other people's bikes (not mine): 5 photos") for c in at.caption)


def test_train_reuses_the_dataset_the_dataset_page_opened(app_env, monkeypatch):
    import bikelib

    at = AppTest.from_file(APP, default_timeout=120).run()
    at.switch_page("pages/dataset.py").run()

    def opened_again(*args, **kwargs):
        raise AssertionError("Train opened the dataset again")

    monkeypatch.setattr(bikelib, "open_dataset", opened_again)
    at.switch_page("pages/train.py").run()
    assert not at.exception and not at.error
    assert widget(at.slider, "Validation fraction").disabled  # it knows the demo's own split


def test_a_full_training_queue_is_one_sentence(app_env, monkeypatch):
    from bikelib import jobs

    monkeypatch.setenv("BIKE_RECOGNITION_MAX_QUEUE", "1")
    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session trains...
    waiting = jobs.TrainingJob.start(None, TrainConfig(epochs=1), app_env / "theirs")
    try:
        at = train_page()
        at.get("form_submit_button")[0].click().run()
        assert not at.exception
        assert [e.value for e in at.error] == [jobs.BUSY]
        assert "job" not in at.session_state
    finally:
        waiting.stop()
        waiting.wait(timeout=10)
        slots.release()


def test_a_run_stopped_while_queued_says_no_model_was_saved(app_env):
    from bikelib import jobs

    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session trains: this run waits
    try:
        at = train_page()
        at.get("form_submit_button")[0].click().run()
        assert at.session_state["job"].status().state == jobs.QUEUED
        widget(at.button, "Stop training").click().run()
        job = at.session_state["job"]
        assert job.wait(timeout=10).state == jobs.STOPPED and job.status().model_dir is None
        at.run()
        assert not at.exception
        assert at.info[-1].value == "The training was stopped before a model was saved."
    finally:
        slots.release()


def test_while_a_run_waits_or_trains_the_earlier_models_are_not_shown(app_env, monkeypatch):
    from bikelib import jobs

    shipped = fake_model(app_env / "shipped", 0.9, name="earlier model")
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(shipped))
    at = train_page()
    assert [h.value for h in at.header] == ["Results", "Past runs"]
    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session trains: this run waits
    try:
        at.get("form_submit_button")[0].click().run()
        assert at.session_state["job"].status().active
        assert not at.header and not at.metric and not at.dataframe
        assert "come back when this training has finished" in at.caption[-1].value
        widget(at.button, "Stop training").click().run()
        at.session_state["job"].wait(timeout=10)
        at.run()
        assert [h.value for h in at.header] == ["Results", "Past runs"]
    finally:
        slots.release()


def test_a_waiting_run_shows_its_place_in_the_queue_not_an_empty_bar(app_env):
    from bikelib import jobs

    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session trains...
    theirs = jobs.TrainingJob.start(None, TrainConfig(epochs=1), app_env / "theirs")
    try:
        at = train_page()
        at.get("form_submit_button")[0].click().run()
        mine = at.session_state["job"]
        assert mine.queue_position() == 2 and theirs.queue_position() == 1
        assert at.info[0].value.endswith("place 2 in the queue (1 more run first).")
        assert not at.get("progress")
        theirs.stop()
        assert theirs.wait(timeout=10).state == jobs.STOPPED
        at.run()
        assert at.info[0].value.endswith("this run is next.")
        widget(at.button, "Stop training").click().run()
        assert mine.wait(timeout=10).state == jobs.STOPPED and mine.queue_position() is None
    finally:
        theirs.stop()
        slots.release()


def test_a_closed_tabs_waiting_run_is_dropped_and_the_page_says_why(app_env, monkeypatch):
    from bikelib import jobs

    monkeypatch.setenv("BIKE_RECOGNITION_ABANDON_MINUTES", "0.02")  # 1.2 s without a beat
    slots = jobs._training_slots()
    assert slots.acquire(timeout=30)  # another session trains...
    mine = None
    try:
        at = train_page()
        at.get("form_submit_button")[0].click().run()
        mine = at.session_state["job"]
        assert mine.session == at.session_state["workspace_id"]  # tied to this tab
        # No page run and no heartbeat from here on: the tab was closed.
        assert mine.wait(timeout=15).state == jobs.STOPPED
    finally:
        if mine is not None:
            mine.stop()
        slots.release()
    assert mine.status().reason == jobs.GONE and mine.queue_position() is None
    at.run()  # the visitor comes back after all: one sentence, no model
    assert [w.value for w in at.warning] == [jobs.GONE]


def test_a_model_at_chance_level_is_flagged_and_not_made_the_sessions_model(app_env):
    from bikelib import jobs

    at = train_page()
    models = app_env / "sessions" / at.session_state["workspace_id"] / "models"
    good = fake_model(models / "default-good", 0.9, created="2026-11-30T10:00:00")
    at.session_state["model_path"] = str(good)
    chance = fake_model(models / "default-chance", 0.4, created="2026-12-01T10:00:00")

    class Finished:  # a job that ended, stopped early, with the chance-level model saved
        def status(self):
            return jobs.JobStatus(state=jobs.STOPPED, model_dir=chance)

    at.session_state["job"] = Finished()
    at.run()
    assert not at.exception
    assert at.session_state["model_path"] == str(good)  # the session keeps its model
    assert at.selectbox[0].value == str(chance)  # but Train shows the run just finished
    assert at.warning[0].value.startswith("This model guesses at about chance level")
    home = AppTest.from_file(APP, default_timeout=60)
    home.session_state["workspace_id"] = at.session_state["workspace_id"]
    home.run()
    assert "**default-good**" in " ".join(m.value for m in home.markdown)
    at.selectbox[0].set_value(str(chance)).run()  # looking at it on Train
    assert at.warning[0].value.startswith("This model guesses at about chance level")
