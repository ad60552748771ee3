"""The pages' plain-Python half (app_state.py), tested without Streamlit."""

from __future__ import annotations

from dataclasses import replace

import pytest
from helpers import photo_bytes, write_dataset

import app_state
from bikelib import Augmentation, TrainConfig, open_dataset
from bikelib.artifacts import Prediction


def test_the_train_form_maps_to_a_config_with_default_strengths():
    recipe = TrainConfig.recommended("seed")
    config = app_state.config_from_form(
        recipe, flip=False, switched_on=["zoom", "rotation"], seed="7", epochs=3, image_size=96
    )
    defaults = Augmentation()
    assert (config.arch, config.epochs, config.image_size, config.seed) == ("seed", 3, 96, 7)
    assert config.learning_rate == recipe.learning_rate  # not on the form: the recipe's
    assert config.augmentation == Augmentation(
        flip=False,
        zoom=defaults.zoom,
        rotation=defaults.rotation,
        translation=0.0,
        brightness=0.0,
        contrast=0.0,
    )
    # A recipe with an augmentation off still offers it at the default strength.
    plain = TrainConfig(augmentation=Augmentation(zoom=0.0))
    switches = {name: (label, on) for name, label, on in app_state.augmentation_switches(plain)}
    assert switches["zoom"] == (f"Zoom ±{defaults.zoom:.0%}", False)
    assert switches["rotation"] == (f"Rotation ±{defaults.rotation:g}°", True)
    on = app_state.config_from_form(plain, flip=True, switched_on=["zoom"], seed=0)
    assert on.augmentation.zoom == defaults.zoom and on.augmentation.rotation == 0.0
    black = TrainConfig(augmentation=Augmentation(fill="constant"))  # not on the form: kept
    assert app_state.config_from_form(
        black, flip=True, switched_on=[], seed=0
    ).augmentation.fill == ("constant")
    with pytest.raises(ValueError, match="epochs"):
        app_state.config_from_form(recipe, flip=True, switched_on=[], seed=0, epochs=0)


def test_form_choices_and_recipe_extras():
    recipe = TrainConfig.recommended("seed")
    assert 150 in app_state.form_choices(recipe, "image_size")
    assert min(app_state.form_choices(recipe, "image_size")) >= 76  # the seed CNN's minimum
    assert 32 in app_state.form_choices(TrainConfig(), "image_size")
    batch_sizes = app_state.form_choices(TrainConfig(batch_size=12), "batch_size")
    assert batch_sizes == [4, 8, 12, 16, 32, 64]
    extras = app_state.recipe_extras(recipe)
    assert (
        extras == "constant learning rate, Adam (no weight decay), keeps the best epoch's weights, "
        "40 photos of other bikes taught to match none"
    )
    assert "True" not in extras and ":" not in extras  # words, not Python values
    assert "epochs" not in extras and "batches" not in extras  # on the form / None
    default = app_state.recipe_extras(TrainConfig.recommended("default"))
    assert default.startswith("learning rate warms up, then eases off to zero (cosine), AdamW")
    assert "label smoothing 0.1" in default
    assert "only the last layer trains (the backbone stays as pretrained)" in default
    # Unticking "Start from the bike backbone" trains every layer from random weights.
    unticked = app_state.config_from_form(
        TrainConfig.recommended("default"), flip=True, switched_on=[], seed=0, pretrained=False
    )
    assert (unticked.pretrained, unticked.frozen, unticked.second_opinion) == (False,) * 3
    # Its "Second opinion" box ticked without the backbone: nothing to stand beside.
    alone = app_state.config_from_form(
        TrainConfig.recommended("default"), flip=True, switched_on=[], seed=0,
        pretrained=False, second_opinion=True,
    )  # fmt: skip
    assert alone.second_opinion is False
    assert "second" not in default  # a checkbox of the form, not a recipe extra
    # Unticking only "Second opinion": the frozen backbone alone.
    single = app_state.config_from_form(
        TrainConfig.recommended("default"), flip=True, switched_on=[], seed=0, second_opinion=False
    )
    assert (single.frozen, single.second_opinion) == (True, False)
    other = replace(recipe, restore_best=False, strangers=100, steps_per_epoch=80)
    assert "keeps the last epoch's weights" in app_state.recipe_extras(other)
    assert "80 batches an epoch" in app_state.recipe_extras(other)


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
    assert app_state.model_summary(models[0]) == "new · default · 88% validation accuracy"
    assert app_state.model_summary(models[1]) == "demo · seed · 0% validation accuracy · shipped"
    assert [app_state.model_name(m) for m in models] == ["new", "demo (shipped)"]
    assert app_state.chosen_model(models, "/m/demo") is models[1]
    assert app_state.chosen_model(models, "/gone") is models[0]
    assert app_state.chosen_model([], None) is None
    assert app_state.model_line(models[0]) == "**new**, 88% validation accuracy"
    assert app_state.model_line(models[1]) == "**demo**"
    assert app_state.model_line(None) == "none yet"
    runs = app_state.past_runs(models)
    assert [r["name"] for r in runs] == ["new", "demo (shipped)"]
    assert "shipped" not in runs[0]


def test_gallery_lists_training_then_validation_photos_with_captions(tmp_path):
    dataset = open_dataset(write_dataset(tmp_path / "set", split=True))
    everything = app_state.gallery(dataset)
    assert len(everything) == len(dataset.samples)
    assert everything[0][0].endswith(" · train") and everything[-1][0].endswith(" · validation")
    bike = dataset.classes[0]
    mine = app_state.gallery(dataset, bike)
    assert mine and all(caption.startswith(f"{bike} · ") for caption, _ in mine)
    assert {path for _, path in mine} == {
        s.path for s in dataset.samples if dataset.classes[s.label] == bike
    }
    assert app_state.split_note(dataset).startswith("given by the train/")
    assert app_state.split_note(open_dataset(write_dataset(tmp_path / "flat"))).startswith("chosen")


def test_the_not_mine_group_has_its_own_gallery_and_words(tmp_path):
    from helpers import write_not_mine

    dataset = open_dataset(write_not_mine(write_dataset(tmp_path / "set"), 5), val_fraction=0.34)
    assert len(app_state.gallery(dataset)) == len(dataset.samples)  # bikes only
    group = app_state.gallery(dataset, app_state.NOT_MINE_TITLE)
    assert [c for c, _ in group] == ["not mine · train"] * 3 + ["not mine · validation"] * 2
    assert {p for _, p in group} == {s.path for s in dataset.not_mine}
    assert app_state.not_mine_note(dataset) == (
        "Other people's bikes (not mine): 5 photos, not a bike. 3 are trained to match none "
        "of yours, 2 kept aside to show what the match threshold rejects."
    )
    assert app_state.not_mine_note(open_dataset(write_dataset(tmp_path / "plain"))) == ""


def test_the_trade_off_caption_counts_the_not_mine_photos():
    assert app_state.trade_off_caption(0.95, 0.8, (9, 10), 0.61234) == (
        "At this threshold: 95% of your validation photos accepted, 80% of other bikes "
        "rejected, and 9 of 10 of your not-mine photos. Calibrated: 0.612."
    )
    assert app_state.trade_off_caption(1.0, float("nan"), None, 0.5) == (
        "At this threshold: 100% of your validation photos accepted, no other bikes were "
        "scored for this model. Calibrated: 0.500."
    )
    assert app_state.trade_off_caption(0.95, 0.8, None, 0.5, crops=True) == (
        "At this threshold: 95% of your validation photos and their corners accepted, 80% of "
        "other bikes rejected. Calibrated: 0.500."
    )
    meta = {"not_mine": {"trained": 16, "calibration": 4}, "openset": {"not_mine_rejected": 0.75}}
    assert app_state.trained_not_mine(meta) == (
        "Other people's bikes (not mine): 16 trained to match none of your bikes; the "
        "calibrated threshold rejects 3 of 4 kept aside."
    )
    assert app_state.trained_not_mine({"not_mine": {"trained": 0, "calibration": 0}}) == ""
    assert app_state.trained_not_mine({}) == ""  # models saved before the group existed


def test_prediction_row_and_augmentation_names():
    photo = photo_bytes((200, 40, 40), seed=1)
    prediction = Prediction("red", 0.75, {"red": 0.75, "blue": 0.25})
    row = app_state.prediction_row("a.png", photo, prediction)
    assert row["photo"].startswith("data:image/jpeg;base64,/9j/")  # a JPEG's first bytes
    assert {k: v for k, v in row.items() if k != "photo"} == {
        "file": "a.png",
        "bike": "red",
        "confidence": 0.75,
        "red": 0.75,
        "blue": 0.25,
    }
    assert app_state.augmentation_names(Augmentation(zoom=0.0, contrast=0.0)) == (
        "flip, rotation, translation, brightness"
    )
    assert (
        app_state.augmentation_names(
            Augmentation(flip=False, zoom=0, rotation=0, translation=0, brightness=0, contrast=0)
        )
        == "no augmentation"
    )
    assert app_state.augmentation_names(Augmentation(fill="constant")).endswith("contrast")
    meta = {"path": "/m/a", "config": TrainConfig().to_dict()}
    assert "fill" not in app_state.run_rows([meta])[0]["augmentation"]


def test_preview_captions_and_fill_note():
    assert app_state.preview_captions(3) == ["original", "variant 1", "variant 2", "variant 3"]
    assert app_state.fill_note(Augmentation()) == (
        "Edges uncovered by rotation, zoom and translation show a mirror image of the "
        "photo's own edge (fill: reflect)."
    )
    constant = Augmentation(fill="constant", zoom=0, translation=0)
    assert (
        app_state.fill_note(constant) == "Edges uncovered by rotation show black (fill: constant)."
    )
    still = Augmentation(zoom=0, rotation=0, translation=0)
    assert app_state.fill_note(still) == "Nothing moves the photo, so no edges need filling."


@pytest.mark.parametrize(
    ("setting", "ip", "headers", "offered"),
    [
        (True, "203.0.113.9", {"Host": "bikes.example"}, True),  # switched on: everyone
        (False, None, {"Host": "localhost:8501"}, False),  # switched off: nobody
        (None, None, {"Host": "localhost:8501"}, True),  # a browser on this machine
        (None, "203.0.113.9", {"Host": "bikes.example"}, False),  # from elsewhere
        (None, None, {}, False),  # no browser connection known (None means either)
        (None, None, {"Host": "x", "X-Forwarded-For": "203.0.113.9"}, False),  # a proxy
        (None, object(), {"Host": "x"}, False),  # anything but None is not loopback
    ],
)
def test_server_folders_are_offered_only_when_switched_on_or_local(setting, ip, headers, offered):
    assert app_state.server_folders_offered(setting, ip, headers) is offered


def test_a_waiting_run_says_its_place_in_the_queue():
    assert app_state.queue_note(1).endswith(": this run is next.")
    assert app_state.queue_note(2).endswith(": place 2 in the queue (1 more run first).")
    assert app_state.queue_note(4).endswith(": place 4 in the queue (3 more runs first).")
    assert app_state.queue_note(1, 12).endswith(": this run is next, starting in about 10 s.")
    assert app_state.queue_note(3, 200).endswith("(2 more runs first), starting in about 3 min.")


def test_runs_are_named_after_their_data_and_compared_on_the_same_data():
    assert app_state.run_name("my photo set", "seed", 0).startswith("my photo set · seed · ")
    ours = {"path": "/m/a", "dataset_fingerprint": "f1", "dataset": "my photo set"}
    again = {"path": "/m/b", "dataset_fingerprint": "f1"}
    other = {"path": "/m/c", "dataset_fingerprint": "f2", "shipped": True}
    assert app_state.same_data([ours, again, other], ours) == [ours, again]
    assert app_state.same_data([ours, other], None) == [ours, other]
    assert app_state.trained_on(ours) == "my photo set"
    assert app_state.trained_on(other) == "the built-in demo bikes"
    assert app_state.trained_on(again) == ""  # saved before the data was recorded
    named = {**ours, "name": "run 1", "architecture": "default", "metrics": {"val_accuracy": 1}}
    assert (
        app_state.model_summary(named)
        == "run 1 · default · 100% validation accuracy · my photo set"
    )


def test_a_photo_uploaded_twice_is_kept_once():
    class Upload:
        def __init__(self, name: str, data: bytes) -> None:
            self.name, self.data = name, data

        def getvalue(self) -> bytes:
            return self.data

    a, again, b = Upload("a.jpg", b"one"), Upload("copy of a.jpg", b"one"), Upload("b.jpg", b"two")
    assert app_state.unique_photos([a, again, b]) == ([a, b], 1)
    assert app_state.unique_photos([]) == ([], 0)


def test_table_height_whole_up_to_twelve_rows_then_a_fixed_window():
    assert app_state.table_height(0) == app_state.table_height(12) == "content"
    window = app_state.table_height(13)
    assert isinstance(window, int) and window == app_state.table_height(5000)
    assert 12 * 35 < window < 14 * 35  # about twelve rows and a half, then scroll
    tall = app_state.table_height(13, row_height=80)  # rows with thumbnails
    assert isinstance(tall, int) and tall <= 35 + app_state.TABLE_WINDOW_PX + 80
    assert (tall - 35 - 2) % 80 == 40  # ends half-way through a row: more below
