"""AppTest: the Classify page with a real (tiny) model: one photo, many, the camera; the
verdict headings, the threshold slider and the heatmap."""

from __future__ import annotations

import io
import json
import re
import shutil
import threading

import pytest
from helpers import CLASS_COLOURS, ROOT, calibrated_model, open_page, photo_bytes
from streamlit.testing.v1 import AppTest

import app_models
import bikelib
from bikelib import load_model, openset

APP = str(ROOT / "streamlit_app.py")


@pytest.fixture(scope="module")
def shipped_model(tmp_path_factory):
    """A small real model, standing where the demo model is shipped."""
    return calibrated_model(tmp_path_factory.mktemp("classify"), name="demo model")


@pytest.fixture
def app_env(tmp_path, monkeypatch, shipped_model):
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(shipped_model))
    return tmp_path


def classify_page():
    return open_page("pages/classify.py")


def photo(bike: str, seed: int, fmt: str = "PNG") -> bytes:
    return photo_bytes(CLASS_COLOURS[bike], seed, fmt)


# A rendered bike the bicycle gate sees as one (0.93): its verdict depends on the threshold.
# The synthetic colour pictures are "no bicycle", whatever the threshold.
BICYCLE = ROOT / "data" / "demo-bikes" / "validation" / "black-mountain" / "black-mountain-01.jpg"
WORDS = {"bike": None, "not_mine": "Not one of yours", "no_bicycle": "No bicycle"}


def answers(at) -> list[str]:
    """The heading of each photo card ("### <bike>" or "### <what it is instead>")."""
    headings = [m.value for m in at.markdown if m.value.startswith("### ")]
    return [h.split("  \n")[0].removeprefix("### ") for h in headings]


def expected(model_dir, *photos, threshold: float | None = None) -> list[str]:
    """What the library itself says (at `threshold`): the page must show exactly that."""
    classifier = load_model(model_dir)
    titles = []
    for p in photos:
        prediction = classifier.predict(p)
        if threshold is not None:
            prediction = prediction.decided(threshold, classifier.gate_threshold)
        titles.append(WORDS[prediction.verdict] or prediction.label)
    return titles


def toggle(at, label: str):
    return next(t for t in at.toggle if t.label == label)


def test_without_any_model_it_asks_to_train_one_first(app_env, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(app_env / "none"))
    at = classify_page()
    assert at.info[0].value == "There is no model yet: train a model first, or open one you saved."
    assert [u.key for u in at.file_uploader] == ["open_model"]  # no photos without a model


def test_the_shipped_model_is_ready_on_first_start(app_env, shipped_model):
    at = classify_page()
    assert at.selectbox[0].value == str(shipped_model)
    assert "demo model · default ·" in at.selectbox[0].format_func(at.selectbox[0].value)
    assert at.caption[0].value == "Knows 3 bikes: blue-bike, green-bike, red-bike."
    assert at.info[0].value.startswith("Upload a photo of a bike")
    assert "The whole bike tells most" in at.file_uploader[0].help  # which photos to take


def test_one_photo_gets_a_bike_and_every_class_probability(app_env, shipped_model):
    at = classify_page()
    red = photo("red-bike", 900)
    at.file_uploader[0].set_value(("red.png", red, "image/png")).run()
    assert not at.exception and not at.error
    assert answers(at) == expected(shipped_model, red)
    assert len(at.get("vega_lite_chart")) == 1  # the probabilities of all three bikes
    assert at.image[0].captions == ["red.png"]
    assert not at.dataframe  # the table is for many photos


def test_many_photos_get_a_sortable_table_and_a_bad_one_an_error(app_env, shipped_model):
    at = classify_page()
    blue, green = photo("blue-bike", 901, "JPEG"), photo("green-bike", 902)
    uploads = [
        ("blue.jpg", blue, "image/jpeg"),
        ("green.png", green, "image/png"),
        ("broken.jpg", b"not a photo", "image/jpeg"),
        ("blue again.jpg", blue, "image/jpeg"),  # the same photo twice is shown once
    ]
    at.file_uploader[0].set_value(uploads).run()
    assert not at.exception
    assert answers(at) == expected(shipped_model, blue, green)
    assert "1 photo(s) uploaded twice" in " ".join(c.value for c in at.caption)
    assert at.error[0].value == "broken.jpg: not an image Pillow can read"
    table = at.dataframe[0].value
    assert list(table["file"]) == ["blue.jpg", "green.png"]
    assert list(table["verdict"]) == ["no bicycle", "no bicycle"]
    assert table[["blue-bike", "green-bike", "red-bike"]].idxmax(axis=1).tolist() == list(
        table["bike"]
    )
    assert table["photo"][0].startswith("data:image/jpeg;base64,")
    assert table[["blue-bike", "green-bike", "red-bike"]].sum(axis=1).round(4).tolist() == [1, 1]


def test_a_camera_photo(app_env, shipped_model):
    at = classify_page()
    at.toggle[0].set_value(True).run()
    shot = photo("green-bike", 903, "JPEG")
    at.camera_input[0].set_value(("image.jpg", shot, "image/jpeg")).run()
    assert not at.exception
    assert answers(at) == expected(shipped_model, shot)


def test_sessions_do_not_see_each_others_models(app_env, shipped_model, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(app_env / "none"))
    mine, theirs = classify_page(), classify_page()
    assert mine.session_state["workspace_id"] != theirs.session_state["workspace_id"]
    models = app_env / "sessions" / mine.session_state["workspace_id"] / "models"
    shutil.copytree(shipped_model, models / "my-model")
    mine.run()
    assert mine.selectbox[0].value == str(models / "my-model")
    theirs.run()
    assert theirs.info[0].value.startswith("There is no model yet")


def test_cards_lead_with_the_verdict_and_show_the_threshold_trade_off(app_env, shipped_model):
    at = classify_page()
    classifier = load_model(shipped_model)
    slider = at.slider[0]
    decimals = 1 if classifier.reference.score == "plda" else 3  # log-likelihood ratios
    assert slider.label == "Match threshold"
    assert slider.value == round(classifier.threshold, decimals)
    accepted, rejected = openset.trade_off(
        classifier.threshold,
        classifier.reference.known_scores,
        classifier.reference.other_scores,
    )
    assert len(classifier.reference.other_scores) == 6
    trade = next(c.value for c in at.caption if c.value.startswith("At this threshold"))
    assert trade.startswith(
        f"At this threshold: {accepted:.0%} of your validation photos "
        f"{'and their corners ' if classifier.reference.crops else ''}accepted, "
        f"{rejected:.0%} of other bikes rejected."
    )
    red = photo("red-bike", 900)
    at.file_uploader[0].set_value(
        [("bike.jpg", BICYCLE.read_bytes(), "image/jpeg"), ("red.png", red, "image/png")]
    ).run()
    assert not at.exception and not at.error
    assert answers(at) == expected(shipped_model, BICYCLE, red)
    assert answers(at)[1] == "No bicycle"
    badges = [m.value for m in at.markdown if "-badge[" in m.value]
    assert badges[1].startswith(":gray-badge[:material/hide_image: no bicycle] match ")
    sentences = [c.value for c in at.caption]
    assert classifier.predict(red).sentence in sentences


def test_the_slider_moves_the_verdict(app_env, shipped_model):
    at = classify_page()
    at.file_uploader[0].set_value(("bike.jpg", BICYCLE.read_bytes(), "image/jpeg")).run()
    label = load_model(shipped_model).predict(BICYCLE).label
    highest = at.slider[0].max
    at.slider[0].set_value(highest).run()
    assert answers(at) == ["Not one of yours"]
    assert answers(at) == expected(shipped_model, BICYCLE, threshold=highest)
    assert any(m.value.startswith(":orange-badge[") for m in at.markdown)
    lowest = at.slider[0].min
    at.slider[0].set_value(lowest).run()
    assert answers(at) == [label] == expected(shipped_model, BICYCLE, threshold=lowest)
    assert any(m.value.startswith(":green-badge[") for m in at.markdown)
    caption = next(c.value for c in at.caption if c.value.startswith("At this threshold"))
    assert caption.startswith("At this threshold: 100% of your validation photos")
    assert "accepted, 0% of other bikes rejected" in caption


def test_photos_of_one_listing_are_judged_together_when_asked(app_env, shipped_model):
    at = classify_page()
    at.file_uploader[0].set_value(("bike.jpg", BICYCLE.read_bytes(), "image/jpeg")).run()
    assert not [t for t in at.toggle if t.label == "These photos are one listing"]  # one photo
    red = photo("red-bike", 905)
    at.file_uploader[0].set_value(
        [("bike.jpg", BICYCLE.read_bytes(), "image/jpeg"), ("red.png", red, "image/png")]
    ).run()
    each = answers(at)
    toggle(at, "These photos are one listing").set_value(True).run()
    assert not at.exception and not at.error
    listing = load_model(shipped_model).predict_listing([BICYCLE, io.BytesIO(red)])
    assert listing.photos == 1  # the red drawing shows no bicycle: only the bike counts
    words = listing.label if listing.known else WORDS[listing.verdict].lower()
    assert answers(at) == [f"This listing: {words}", *each]  # first, then each photo
    assert listing.sentence in [c.value for c in at.caption]
    assert listing.sentence.startswith(("Together, this photo", "A bicycle, but not one"))
    # None readable: the listing says so in one sentence, and each photo still says why.
    broken = [("a.png", b"not a photo", "image/png"), ("b.png", b"nor this", "image/png")]
    at.file_uploader[0].set_value(broken).run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert errors[0] == "None of the listing's photos could be read" and len(errors) == 3


def test_show_why_puts_a_heatmap_beside_the_photo(app_env, shipped_model, monkeypatch):
    explained = []  # the bike each heatmap explains
    original = bikelib.Classifier.explain

    def spy(self, source, *, bike=None, **options):
        explained.append(bike)
        return original(self, source, bike=bike, **options)

    monkeypatch.setattr(bikelib.Classifier, "explain", spy)
    at = classify_page()
    at.file_uploader[0].set_value(("bike.jpg", BICYCLE.read_bytes(), "image/jpeg")).run()
    assert len(at.image) == 1
    toggle(at, "Show why (heatmap)").set_value(True).run()
    assert not at.exception and not at.error
    assert len(at.image) == 3
    named = load_model(shipped_model).predict(BICYCLE).label
    assert at.image[1].captions[0] == f"Why: where it saw {named}"
    assert explained == [load_model(shipped_model).classes.index(named)]  # that bike's map
    # and the owner's photo of the matched bike most like it
    assert re.fullmatch(
        r"Most like your photo photo\d+\.png of \S+ \(similarity -?\d\.\d\d\)",
        at.image[2].captions[0],
    )


def test_a_model_without_a_calibrated_threshold_shows_the_old_answer(
    app_env, shipped_model, monkeypatch
):
    old = app_env / "old-model"  # as models saved before verdicts existed
    shutil.copytree(shipped_model, old)
    (old / "reference.npz").unlink()
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(old))
    at = classify_page()
    assert not at.slider
    assert any("saved before verdicts were calibrated" in c.value for c in at.caption)
    red = photo("red-bike", 900)
    at.file_uploader[0].set_value(("red.png", red, "image/png")).run()
    heading = next(m.value for m in at.markdown if m.value.startswith("### "))
    assert heading.endswith("% sure")
    assert heading.split("  \n")[0] == f"### {load_model(old).predict(red).label}"


def test_the_trade_off_counts_the_users_not_mine_photos(app_env, shipped_model, monkeypatch):
    mine = app_env / "with-not-mine"  # as trained with a not-mine folder: 3 kept aside
    shutil.copytree(shipped_model, mine)
    meta = json.loads((mine / "model.json").read_text())
    threshold = meta["openset"]["threshold"]
    meta["openset"]["not_mine_scores"] = [threshold - 0.5, threshold - 0.1, threshold + 0.1]
    meta["not_mine"] = {"trained": 12, "calibration": 3}
    (mine / "model.json").write_text(json.dumps(meta))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(mine))
    at = classify_page()
    trade = next(c.value for c in at.caption if c.value.startswith("At this threshold"))
    assert "of other bikes rejected, and 2 of 3 of your not-mine photos." in trade


def test_a_chance_level_model_is_called_out_where_its_verdicts_are_shown(
    app_env, shipped_model, monkeypatch
):
    for name, accuracy in (("good", 1.0), ("guessing", 1 / 3)):  # 3 bikes: 1/3 is a guess
        copy = app_env / name
        shutil.copytree(shipped_model, copy)
        meta = json.loads((copy / "model.json").read_text())
        meta["metrics"]["val_accuracy"] = accuracy
        (copy / "model.json").write_text(json.dumps(meta))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(app_env / "good"))
    assert not classify_page().warning
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(app_env / "guessing"))
    at = classify_page()
    assert at.warning[0].value.startswith("This model guesses at about chance level")
    assert not at.slider  # no threshold, so no "one of your bikes" from a guess
    at.file_uploader[0].set_value(("red.png", photo("red-bike", 901), "image/png")).run()
    heading = next(m.value for m in at.markdown if m.value.startswith("### "))
    assert heading.endswith("% sure") and "one of your bikes" not in heading


def test_a_downloaded_model_opens_again_and_becomes_the_chosen_one(app_env, shipped_model):
    from bikelib import export_zip

    at = classify_page()
    opener = next(u for u in at.file_uploader if u.key == "open_model")
    opener.set_value(("mine.zip", export_zip(shipped_model), "application/zip")).run()
    assert not at.exception and not at.error
    opened = at.selectbox[0].value
    assert opened != str(shipped_model) and "/models/opened-" in opened
    assert load_model(opened).classes == load_model(shipped_model).classes


def test_a_file_that_is_not_a_model_is_refused_with_one_sentence(app_env):
    at = classify_page()
    opener = next(u for u in at.file_uploader if u.key == "open_model")
    opener.set_value(("notes.zip", b"not a zip at all", "application/zip")).run()
    assert not at.exception
    assert at.error[0].value.startswith("This file is not a model saved by Bike Recognition")


def test_the_first_page_run_loads_the_shipped_model_in_the_background(
    app_env, shipped_model, monkeypatch
):
    """The warm-up (BIKE_RECOGNITION_WARM_UP, off elsewhere in the tests): Home's run
    ends while the shipped model is still loading, and Classify then uses that load."""
    monkeypatch.setenv("BIKE_RECOGNITION_WARM_UP", "1")
    monkeypatch.setattr(app_models, "_warm_up", None)  # as in a fresh server process
    app_models._classifier.clear()
    loads, release = [], threading.Event()
    real_load = bikelib.load_model

    def held_load(path, **kwargs):
        loads.append(path)
        assert release.wait(120)  # held until Home's run is over
        return real_load(path, **kwargs)

    monkeypatch.setattr(bikelib, "load_model", held_load)
    at = AppTest.from_file(APP, default_timeout=120).run()  # Home
    assert not at.exception and at.title[0].value.endswith("Bike Recognition")
    assert loads == [str(shipped_model)]  # started, and Home did not wait for it
    warming = app_models.warm_up()  # the one of this process, not a second one
    assert warming is not None and warming.is_alive()
    release.set()
    warming.join(120)
    assert not warming.is_alive()
    at.switch_page("pages/classify.py").run()
    assert not at.exception and at.selectbox[0].value == str(shipped_model)
    assert loads == [str(shipped_model)]  # Classify found it loaded: no second load
    app_models._classifier.clear()


def test_without_warm_up_nothing_loads_before_a_page_needs_it(app_env, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_WARM_UP", "0")
    monkeypatch.setattr(app_models, "_warm_up", None)
    at = AppTest.from_file(APP, default_timeout=120).run()
    assert not at.exception and app_models.warm_up() is None
