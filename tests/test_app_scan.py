"""AppTest: the Scan page with a real (tiny) model: upload photos and a zip, rank, download."""

from __future__ import annotations

import io
import json
import re
import shutil
import zipfile

import pytest
from helpers import CLASS_COLOURS, ROOT, calibrated_model, open_page, synthetic_photo

from bikelib import load_model
from bikelib import scan as scanning

APP = str(ROOT / "streamlit_app.py")
BICYCLE = ROOT / "data" / "demo-bikes" / "validation" / "black-mountain" / "black-mountain-01.jpg"


@pytest.fixture(scope="module")
def shipped_model(tmp_path_factory):
    return calibrated_model(tmp_path_factory.mktemp("scan-page"), name="demo model")


@pytest.fixture
def app_env(tmp_path, monkeypatch, shipped_model):
    monkeypatch.setenv("BIKE_RECOGNITION_WORKDIR", str(tmp_path / "sessions"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_DATA", str(tmp_path / "no-data"))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(shipped_model))
    return tmp_path


def scan_page():
    return open_page("pages/scan.py")


def png(bike: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    synthetic_photo(CLASS_COLOURS[bike], seed).save(buffer, "PNG")
    return buffer.getvalue()


def uploads() -> list[tuple[str, bytes, str]]:
    with io.BytesIO() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            archive.writestr("ads/red-ad.png", png("red-bike", 801))
            archive.writestr("ads/blue-ad.png", png("blue-bike", 802))
            archive.writestr("ads/broken.jpg", b"not a photo")
        listing = buffer.getvalue()
    return [
        ("red.png", png("red-bike", 800), "image/png"),
        ("green.png", png("green-bike", 803), "image/png"),
        ("bike.jpg", BICYCLE.read_bytes(), "image/jpeg"),
        ("listing.zip", listing, "application/zip"),
    ]


def test_without_any_model_it_asks_to_train_one_first(app_env, monkeypatch):
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(app_env / "none"))
    at = scan_page()
    assert at.info[0].value == "There is no model yet: train a model first, or open one you saved."
    assert [u.key for u in at.file_uploader] == ["open_model"]  # no listings without a model


def test_a_chance_level_model_ranks_nothing(app_env, shipped_model, monkeypatch):
    guessing = app_env / "guessing"
    shutil.copytree(shipped_model, guessing)
    meta = json.loads((guessing / "model.json").read_text())
    meta["metrics"]["val_accuracy"] = 1 / 3  # 3 bikes: 1/3 is a guess
    (guessing / "model.json").write_text(json.dumps(meta))
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(guessing))
    at = scan_page()
    assert at.warning[0].value.startswith("This model guesses at about chance level")
    assert at.info[0].value.startswith("A model that guesses cannot rank listings")
    assert [u.key for u in at.file_uploader] == ["open_model"]  # no listings to upload
    monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(shipped_model))
    at = scan_page()
    assert not at.warning and at.info[0].value.startswith("Upload listing photos")


def test_upload_scan_ranked_table_unreadable_listed_and_csv(app_env, shipped_model, monkeypatch):
    calls = []
    real_scan = scanning.scan
    monkeypatch.setattr(scanning, "scan", lambda *a, **k: calls.append(1) or real_scan(*a, **k))
    at = scan_page()
    assert at.selectbox[1].label == "My bike: the one to look for"
    at.selectbox[1].set_value("red-bike").run()
    assert at.info[0].value.startswith("Upload listing photos")
    at.file_uploader[0].set_value(uploads()).run()
    assert not at.dataframe and not calls  # nothing scanned before the button
    at.button[0].click().run()
    assert not at.exception and not at.error

    library = real_scan(
        load_model(shipped_model),
        "red-bike",
        scanning.listing_uploads([(name, data) for name, data, _ in uploads()]),
    )
    table = at.dataframe[0].value
    assert list(table["file"]) == [r.file for r in library if not r.error]
    assert list(table["rank"]) == [1, 2, 3, 4, 5]
    assert table["file"][0] in ("red.png", "listing.zip/ads/red-ad.png", "bike.jpg")
    assert table["photo"][0].startswith("data:image/jpeg;base64,")
    assert set(table["verdict"]) <= set(scanning.WORDS.values())
    found = sum(r.verdict == "bike" for r in library)
    assert at.subheader[0].value == (
        f"{found} of 5 photos may be your bike red-bike. 1 could not be read."
    )
    unreadable = at.dataframe[1].value
    assert list(unreadable["file"]) == ["listing.zip/ads/broken.jpg"]
    assert "not an image Pillow can read" in unreadable["why"][0]
    assert any(w.value.startswith("1 file could not be read") for w in at.warning)
    download = at.get("download_button")[0]
    assert download.proto.label == "Download the ranking (CSV)"
    assert len(calls) == 1

    cards = len(at.image)
    assert cards == 5  # the best matches, up to 6, with their photo
    card_lines = [m.value for m in at.markdown if m.value.startswith("**#")]
    assert card_lines[0].startswith(f"**#1** {table['file'][0].rsplit('/', 1)[-1]}  \n:")
    next(t for t in at.toggle if t.label == "Show why (heatmap)").set_value(True).run()
    assert not at.exception and not at.error
    assert len(at.image) == 3 * cards  # the photo, its heatmap, and the closest photo
    closest = [i.captions[0] for i in at.image if i.captions and i.captions[0]]
    assert len(closest) == cards
    assert all(re.fullmatch(r"Most like your photo\d+\.png", c) for c in closest)
    assert len(calls) == 1  # a rerun shows the kept result: no second scan
    assert at.dataframe[0].value["file"].tolist() == table["file"].tolist()


def test_folders_as_listings_pool_their_photos_when_asked(app_env, shipped_model):
    with io.BytesIO() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for ad, bike in (("ad-1", "blue-bike"), ("ad-2", "red-bike")):
                for n in range(3):
                    archive.writestr(f"{ad}/{n}.png", png(bike, 900 + 10 * n + len(bike)))
        ads = ("ads.zip", buffer.getvalue(), "application/zip")
    at = scan_page()
    at.selectbox[1].set_value("red-bike").run()
    at.file_uploader[0].set_value([ads]).run()
    at.button[0].click().run()
    assert not at.exception and not at.error
    toggle = next(t for t in at.toggle if t.label == "Each folder is one listing")
    assert not toggle.value and len(at.dataframe) == 1  # photos one by one, as before
    toggle.set_value(True).run()
    assert not at.exception and not at.error

    rows = scanning.scan(load_model(shipped_model), "red-bike", scanning.listing_uploads([ads[:2]]))
    listings = scanning.by_listing(rows, load_model(shipped_model).threshold)
    assert at.subheader[0].value == scanning.listing_lead(listings, "red-bike")
    table = at.dataframe[0].value
    assert list(table["listing"]) == ["ad-2", "ad-1"]  # the red bike's first; in ads.zip/
    assert list(table["photos"]) == [3, 3]
    assert table["photo"][0].startswith("data:image/jpeg;base64,")
    assert at.subheader[1].value.startswith(f"{sum(r.verdict == 'bike' for r in rows)} of 6")
    assert len(at.dataframe) == 2  # and the photos' own ranking below


def test_when_no_bicycle_passes_the_threshold_it_says_to_look_at_the_top_anyway(
    app_env, shipped_model, monkeypatch
):
    def with_threshold(threshold: float):
        model = app_env / f"threshold-{threshold}"
        shutil.copytree(shipped_model, model)
        meta = json.loads((model / "model.json").read_text())
        meta["openset"]["threshold"] = threshold
        (model / "model.json").write_text(json.dumps(meta))
        monkeypatch.setenv("BIKE_RECOGNITION_DEMO_MODEL", str(model))
        at = scan_page()
        at.file_uploader[0].set_value([("bike.jpg", BICYCLE.read_bytes(), "image/jpeg")]).run()
        at.button[0].click().run()
        assert not at.exception and not at.error
        return [c.value for c in at.caption]

    # A rendered bicycle, so the gate passes it: above every score it cannot match, below
    # every score it must (a cosine lies in [-1, 1], the PLDA's ratios within a few hundred).
    assert scanning.NONE_PASSED in with_threshold(1e6)
    assert scanning.NONE_PASSED not in with_threshold(-1e6)
