"""bikelib.scan and `python -m bikelib scan`: rank listing photos against one bike.

A small real model (3 colour-coded bikes, 32 px) is trained once; its scores decide the
expected ranking, so these tests fail when ranking, batching or reading goes wrong.
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
import shutil
import zipfile

import numpy as np
import pytest
from helpers import CLASS_COLOURS, calibrated_model, synthetic_photo
from PIL import Image

from bikelib import DatasetError, load_model
from bikelib import scan as scanning
from bikelib.cli import main


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory):
    return calibrated_model(tmp_path_factory.mktemp("scan"))


@pytest.fixture(scope="module")
def classifier(model_dir):
    return load_model(model_dir, gate=False)  # the gate has its own tests; here: ranking


def png(bike: str, seed: int) -> bytes:
    buffer = io.BytesIO()
    synthetic_photo(CLASS_COLOURS[bike], seed).save(buffer, "PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def listing(tmp_path_factory):
    """A folder of listing photos: 3 red (the stolen bike), 6 others, 1 broken 'photo'."""
    folder = tmp_path_factory.mktemp("listing")
    for i in range(3):
        (folder / f"red{i}.png").write_bytes(png("red-bike", 500 + i))
    for i in range(3):
        (folder / f"blue{i}.png").write_bytes(png("blue-bike", 600 + i))
        (folder / f"green{i}.png").write_bytes(png("green-bike", 700 + i))
    (folder / "broken.jpg").write_bytes(b"not a photo at all")
    (folder / "notes.txt").write_text("not a photo, and not named like one: skipped")
    return folder


def test_ranking_puts_the_chosen_bike_first_best_score_first(classifier, listing):
    rows = scanning.scan(classifier, "red-bike", scanning.listing_photos([listing]))
    readable = [r for r in rows if not r.error]
    assert len(readable) == 9
    assert [r.score for r in readable] == sorted((r.score for r in readable), reverse=True)
    assert {r.file.rsplit("/", 1)[1] for r in readable[:3]} == {"red0.png", "red1.png", "red2.png"}
    # the scores are the library's own, against the red bike's photos only
    red = classifier.classes.index("red-bike")
    (alone,) = classifier.predict_decoded(
        [(classifier.decode(listing / "red0.png"), None)], bike=red
    )
    first = next(r for r in rows if r.file.endswith("red0.png"))
    assert math.isclose(first.score, alone.score, rel_tol=1e-4)
    assert first.verdict == alone.verdict and first.closest == alone.label


def test_unreadable_photos_are_listed_last_not_fatal(classifier, listing):
    rows = scanning.scan(classifier, "red-bike", scanning.listing_photos([listing]))
    assert rows[-1].file.endswith("broken.jpg")
    assert rows[-1].error.endswith("broken.jpg: not an image Pillow can read")
    assert rows[-1].verdict == ""
    assert not any(r.file.endswith("notes.txt") for r in rows)


def test_zip_members_are_read_one_by_one(classifier, tmp_path, monkeypatch):
    archive = tmp_path / "listing.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("ads/red.png", png("red-bike", 510))
        z.writestr("ads/blue.png", png("blue-bike", 610))
        z.writestr("ads/broken.jpg", b"garbage")
        z.writestr("ads/readme.txt", "skipped")
        z.writestr("__MACOSX/ads/._red.png", b"resource fork")
        z.writestr("ads/huge.png", png("green-bike", 710))
    monkeypatch.setattr(scanning, "MAX_MEMBER_BYTES", len(png("green-bike", 710)) - 1)
    photos = list(scanning.listing_photos([archive]))
    assert [name for name, _ in photos] == [
        "listing.zip/ads/red.png",
        "listing.zip/ads/blue.png",
        "listing.zip/ads/broken.jpg",
        "listing.zip/ads/huge.png",
    ]
    assert photos[0][1] == png("red-bike", 510)
    assert isinstance(photos[3][1], scanning.ImageReadError)
    rows = scanning.scan(classifier, "red-bike", iter(photos))
    assert [r.file for r in rows[:2]] == ["listing.zip/ads/red.png", "listing.zip/ads/blue.png"]
    errors = {r.file: r.error for r in rows if r.error}
    assert errors["listing.zip/ads/huge.png"].endswith("MB once unpacked")
    assert "not an image Pillow can read" in errors["listing.zip/ads/broken.jpg"]


def test_uploads_read_photos_and_zips_and_a_damaged_zip_is_one_entry():
    with io.BytesIO() as buffer:
        with zipfile.ZipFile(buffer, "w") as z:
            z.writestr("a.png", png("red-bike", 1))
            z.writestr("b.jpg", b"x")
        good_zip = buffer.getvalue()
    files = [("one.png", png("blue-bike", 2)), ("ads.zip", good_zip), ("bad.zip", b"PK no")]
    photos = list(scanning.listing_uploads(files))
    assert [name for name, _ in photos] == ["one.png", "ads.zip/a.png", "ads.zip/b.jpg", "bad.zip"]
    assert isinstance(photos[-1][1], scanning.ImageReadError)
    assert str(photos[-1][1]).startswith("bad.zip: not a readable zip file")
    assert scanning.count_uploads(files) == len(photos)


def test_batches_give_the_same_ranking_as_one_batch(classifier, listing):
    seen = []
    one = scanning.scan(classifier, "blue-bike", scanning.listing_photos([listing]))
    small = scanning.scan(
        classifier,
        "blue-bike",
        scanning.listing_photos([listing]),
        batch_size=3,
        on_progress=seen.append,
    )
    assert [r.file for r in small] == [r.file for r in one]
    assert np.allclose([r.score for r in small[:-1]], [r.score for r in one[:-1]], atol=1e-5)
    assert seen == [3, 6, 9, 10]  # photos done after each batch, unreadable ones included


def test_a_bike_the_model_does_not_know_is_a_clear_error(classifier, listing):
    with pytest.raises(DatasetError, match="does not know a bike called 'pink-bike'"):
        scanning.scan(classifier, "pink-bike", scanning.listing_photos([listing]))


def test_a_missing_source_fails_before_anything_is_read(listing):
    with pytest.raises(DatasetError, match=r"nowhere\.zip: no such file or folder"):
        scanning.listing_photos([listing, listing / "nowhere.zip"])


def test_csv_has_a_header_and_one_row_per_photo_in_rank_order(classifier, listing):
    rows = scanning.scan(classifier, "red-bike", scanning.listing_photos([listing]))
    table = list(csv.reader(io.StringIO(scanning.to_csv(rows))))
    assert table[0] == ["rank", "file", "score", "verdict", "closest", "bicycle", "error"]
    assert [t[1] for t in table[1:]] == [r.file for r in rows]
    assert table[1][0] == "1" and float(table[1][2]) == pytest.approx(rows[0].score, abs=1e-4)
    assert table[-1][2] == "" and table[-1][6] == rows[-1].error


def test_page_helpers_lead_line_and_table(classifier, listing):
    rows = scanning.scan(classifier, "red-bike", scanning.listing_photos([listing]))
    found = sum(r.verdict == "bike" for r in rows)
    lead = scanning.lead(rows, "red-bike")
    assert lead == f"{found} of 9 photos may be your bike red-bike. 1 could not be read."
    thumbs = scanning.thumbnails(scanning.listing_photos([listing]), [r.file for r in rows[:2]])
    assert set(thumbs) == {rows[0].file, rows[1].file}
    table = scanning.table_rows(rows, thumbs)
    folder = scanning.common_folder(rows)
    assert folder == f"{listing}/"  # the photos are all in that folder: named after it
    assert [folder + t["file"] for t in table] == [r.file for r in rows if not r.error]
    assert table[0]["photo"].startswith("data:image/jpeg;base64,") and table[2]["photo"] is None
    assert table[0]["verdict"] == scanning.WORDS[rows[0].verdict]


def test_the_table_names_photos_after_the_folders_they_all_share():
    def rows(*names, broken=()):
        found = [scanning.ScanRow(n, 0.5, "not_mine", "red-bike", 0.9) for n in names]
        return found + [scanning.ScanRow(n, 0.0, "", error="unreadable") for n in broken]

    one_zip = rows("ads.zip/ads/a.jpg", "ads.zip/ads/b.jpg", broken=["ads.zip/bad.jpg"])
    assert scanning.common_folder(one_zip) == "ads.zip/ads/"  # unreadable rows not counted
    assert [t["file"] for t in scanning.table_rows(one_zip, {})] == ["a.jpg", "b.jpg"]
    two_zips = rows("one.zip/ads/a.jpg", "two.zip/ads/a.jpg")
    assert scanning.common_folder(two_zips) == ""  # same name, different zips: kept whole
    assert [t["file"] for t in scanning.table_rows(two_zips, {})] == [
        "one.zip/ads/a.jpg",
        "two.zip/ads/a.jpg",
    ]
    assert scanning.common_folder(rows("ads.zip/x/a.jpg", "ads.zip/b.jpg")) == "ads.zip/"
    assert scanning.common_folder(rows("a.jpg", "ads.zip/b.jpg")) == ""
    assert scanning.common_folder(rows("ads.zip/a.jpg")) == "ads.zip/"
    assert scanning.common_folder(rows()) == ""


def test_listings_pool_their_photos_and_the_gate_leaves_out_what_is_no_bicycle():
    def row(file, score, verdict="not_mine"):
        return scanning.ScanRow(file, score, verdict, "red-bike", 0.9)

    rows = [
        row("ads.zip/ad-1/a.jpg", 0.95, "bike"),
        row("ads.zip/ad-1/b.jpg", 0.80),
        row("ads.zip/ad-1/c.jpg", 0.70),
        row("ads.zip/ad-1/receipt.jpg", 0.99, "no_bicycle"),  # not pooled, even if high
        row("ads.zip/ad-2/a.jpg", 0.85),
        row("ads.zip/ad-2/b.jpg", 0.84),
        row("ads.zip/ad-3/map.jpg", 0.30, "no_bicycle"),
        row("loose.jpg", 0.89, "bike"),
        scanning.ScanRow("ads.zip/ad-4/bad.jpg", 0.0, "", error="unreadable"),
    ]
    listings = scanning.by_listing(rows, threshold=0.82)  # the mean of each listing's
    assert [(r.listing, r.photos, r.verdict, r.best) for r in listings] == [
        ("", 1, "bike", "loose.jpg"),  # 0.89: a photo on its own is a listing of one
        ("ads.zip/ad-2", 2, "bike", "ads.zip/ad-2/a.jpg"),  # 0.845
        ("ads.zip/ad-1", 4, "not_mine", "ads.zip/ad-1/a.jpg"),  # (0.95 + 0.80 + 0.70) / 3
        ("ads.zip/ad-3", 1, "no_bicycle", "ads.zip/ad-3/map.jpg"),  # last, as in the ranking
    ]
    assert math.isclose(listings[2].score, (0.95 + 0.80 + 0.70) / 3)  # the receipt left out
    best = scanning.by_listing(rows, threshold=0.86, pool="best photo")
    assert [r.score for r in best[:3]] == [0.95, 0.89, 0.85]
    assert [r.verdict for r in best[:3]] == ["bike", "bike", "not_mine"]
    best_two = {r.listing: r.score for r in scanning.by_listing(rows, 0.86, pool="mean of best 2")}
    assert math.isclose(best_two["ads.zip/ad-1"], (0.95 + 0.80) / 2)

    assert scanning.can_group(rows)
    assert not scanning.can_group(rows[:4])  # one folder: it may hold any photos
    assert not scanning.can_group([row("a/1.jpg", 0.5), row("b/1.jpg", 0.5)])  # one photo each


def test_a_real_scan_grouped_by_folder_puts_the_stolen_bikes_listing_first(classifier):
    with io.BytesIO() as buffer:
        with zipfile.ZipFile(buffer, "w") as archive:
            for ad, bike in (("ad-1", "blue-bike"), ("ad-2", "red-bike"), ("ad-3", "green-bike")):
                for n in range(3):
                    archive.writestr(f"{ad}/{n}.png", png(bike, 300 + 10 * n + len(ad)))
        upload = [("ads.zip", buffer.getvalue())]
    rows = scanning.scan(classifier, "red-bike", scanning.listing_uploads(upload))
    assert scanning.can_group(rows)
    listings = scanning.by_listing(rows, classifier.threshold)
    assert listings[0].listing == "ads.zip/ad-2"
    assert [r.photos for r in listings] == [3, 3, 3]
    # Its mean match passes a line above every stranger the model was calibrated with.
    above_strangers = max(classifier.reference.other_scores) + 1e-3
    assert scanning.by_listing(rows, above_strangers)[0].verdict == "bike"


def test_one_listings_photos_judged_together_by_their_mean_match(classifier, model_dir):
    from bikelib import ImageReadError

    red = classifier.classes.index("red-bike")
    photos = [png("red-bike", 950 + n) for n in range(3)]
    decoded = [(classifier.decode(io.BytesIO(p)), None) for p in photos]
    alone = classifier.predict_decoded(decoded, bike=red)  # each photo as a scan scores it
    listing = classifier.predict_listing([io.BytesIO(p) for p in [*photos, b"not a photo"]])
    assert listing.label == "red-bike" and listing.photos == 3  # the unreadable left out
    assert math.isclose(listing.score, np.mean([a.score for a in alone]), rel_tol=1e-5)
    assert listing.threshold == classifier.threshold
    assert (listing.verdict == "bike") == (listing.score >= classifier.threshold)
    low = classifier.predict_listing([io.BytesIO(p) for p in photos], threshold=-1e6)
    assert low.known and low.sentence.startswith("Together, these 3 photos look like red-bike")
    high = classifier.predict_listing([io.BytesIO(p) for p in photos], threshold=1e6)
    assert high.verdict == "not_mine" and "match red-bike best, too weakly" in high.sentence
    with pytest.raises(ImageReadError):
        classifier.predict_listing([io.BytesIO(b"nothing")])
    # With the bicycle gate: these flat-colour drawings show no bicycle, so none counts.
    gated = load_model(model_dir).predict_listing([io.BytesIO(p) for p in photos])
    assert gated.verdict == "no_bicycle" and gated.photos == 0
    assert gated.sentence == "No bicycle found in any of these 3 photos."


def test_a_listing_is_judged_from_its_photos_predictions_without_a_second_model_pass(classifier):
    photos = [png("red-bike", 970 + n) for n in range(3)]
    predictions = classifier.predict_many([io.BytesIO(p) for p in photos])
    for prediction in predictions:  # each photo carries every bike's match; its own is the best
        assert set(prediction.matches) == set(classifier.classes)
        assert math.isclose(max(prediction.matches.values()), prediction.score, rel_tol=1e-5)
    whole = classifier.predict_listing([io.BytesIO(p) for p in photos])

    def no_second_pass(images):
        raise AssertionError("judge_listing ran the model again")

    classifier.embed, embed = no_second_pass, classifier.embed
    try:
        judged = classifier.judge_listing(predictions)
    finally:
        classifier.embed = embed
    assert judged.label == whole.label and judged.photos == whole.photos == 3
    assert math.isclose(judged.score, whole.score, rel_tol=1e-6)
    assert judged.sentence == whole.sentence
    assert predictions[0].to_dict()["matches"] == predictions[0].matches


def test_none_passed_only_when_bicycles_were_seen_and_none_matched():
    def row(verdict, error=None):
        return scanning.ScanRow("f", 0.5, verdict, "red-bike", 0.9, error or "")

    assert scanning.none_passed([row("not_mine"), row("no_bicycle")])
    assert not scanning.none_passed([row("not_mine"), row("bike")])
    assert not scanning.none_passed([row("no_bicycle")])  # no bicycle at all: nothing to look at
    assert not scanning.none_passed([])


def test_the_closest_training_photo_explains_the_match(classifier, model_dir, tmp_path, caplog):
    from PIL import Image

    photo = png("red-bike", 990)
    prediction = classifier.predict(io.BytesIO(photo))
    closest = classifier.closest_photo(io.BytesIO(photo))
    assert closest.bike == prediction.matched  # the bike the score is the match with
    features = classifier.embed(classifier.decode(io.BytesIO(photo))[None]).features[0]
    reference = classifier.reference

    def most_similar(bike: str) -> float:  # the cosine to that bike's nearest photo
        own = reference.labels == classifier.classes.index(bike)
        return float((reference.features[own] @ features).max())

    assert math.isclose(closest.similarity, most_similar(closest.bike), rel_tol=1e-5)
    assert re.fullmatch(r"photo\d+\.png", closest.name)  # a training photo's file name
    assert max(Image.open(io.BytesIO(closest.jpeg)).size) <= 128
    blue = classifier.classes.index("blue-bike")
    of_blue = classifier.closest_photo(io.BytesIO(photo), bike=blue)
    assert of_blue.bike == "blue-bike"
    assert math.isclose(of_blue.similarity, most_similar("blue-bike"), rel_tol=1e-5)

    old = tmp_path / "m"
    shutil.copytree(model_dir, old)
    (old / "reference-photos.npz").unlink()
    assert load_model(old, gate=False).closest_photo(io.BytesIO(photo)) is None  # saved before
    np.savez(
        old / "reference-photos.npz",
        jpegs=np.zeros(3, np.uint8),
        offsets=np.array([0, 3]),
        names=np.array(["x.jpg"]),
    )
    assert load_model(old, gate=False).closest_photo(io.BytesIO(photo)) is None
    assert "does not match the model's reference photos" in caplog.text


# -- the command line ------------------------------------------------------------------------


def test_cli_json_lists_best_first_and_writes_the_csv(model_dir, listing, tmp_path, capsys):
    out = tmp_path / "ranking.csv"
    code = main(
        ["scan", str(model_dir), str(listing), "--bike", "red-bike", "--json", "--csv", str(out)]
    )
    assert code == 1  # one photo could not be read
    captured = capsys.readouterr()
    rows = json.loads(captured.out)
    assert {"file", "score", "verdict", "closest", "bicycle", "error"} <= set(rows[0])
    assert rows[0]["file"].rsplit("/", 1)[1].startswith("red")
    scores = [r["score"] for r in rows if not r["error"]]
    # with the gate, "no bicycle" photos go after the bicycles: within each, best first
    for verdicts in ({"bike", "not_mine"}, {"no_bicycle"}):
        part = [r["score"] for r in rows if r["verdict"] in verdicts]
        assert part == sorted(part, reverse=True)
    assert len(scores) == 9
    assert "error: " in captured.err and "broken.jpg: not an image Pillow can read" in captured.err
    written = list(csv.reader(out.open()))
    assert written[1][1] == rows[0]["file"] and len(written) == 11


def test_cli_by_folder_ranks_listings(model_dir, tmp_path, capsys):
    for ad, bike in (("ad-1", "blue-bike"), ("ad-2", "red-bike")):
        (tmp_path / "ads" / ad).mkdir(parents=True)
        for n in range(3):
            (tmp_path / "ads" / ad / f"{n}.png").write_bytes(png(bike, 400 + n))
    (tmp_path / "ads" / "ad-2" / "broken.jpg").write_bytes(b"no photo")
    args = ["scan", str(model_dir), str(tmp_path / "ads"), "--bike", "red-bike", "--by-folder"]
    assert main(args) == 1  # a photo could not be read: said, and left out of its listing
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 2
    assert lines[0].split()[0] == "1" and lines[0].endswith(
        "3 photos  " + str(tmp_path / "ads/ad-2")
    )
    assert lines[1].endswith("3 photos  " + str(tmp_path / "ads/ad-1"))
    main([*args, "--json"])
    listings = json.loads(capsys.readouterr().out)
    ads = str(tmp_path / "ads")
    assert [(r["listing"], r["photos"]) for r in listings] == [
        (f"{ads}/ad-2", 3),
        (f"{ads}/ad-1", 3),
    ]
    assert {"score", "verdict", "best"} <= set(listings[0])


def test_cli_bad_source_is_one_error_line(model_dir, tmp_path, capsys):
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    for source, message in (
        (tmp_path / "nowhere", "nowhere: no such file or folder"),
        (tmp_path / "fake.zip", "fake.zip is not a readable zip file"),
    ):
        assert main(["scan", str(model_dir), str(source), "--bike", "red-bike"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and err[0].startswith("error: ") and err[0].endswith(message)


def test_cli_refuses_to_rank_with_a_model_that_guesses(model_dir, listing, tmp_path, capsys):
    import shutil

    guessing = tmp_path / "guessing"
    shutil.copytree(model_dir, guessing)
    meta = json.loads((guessing / "model.json").read_text())
    meta["metrics"]["val_accuracy"] = 1 / 3  # 3 bikes: a guess
    (guessing / "model.json").write_text(json.dumps(meta))
    assert main(["scan", str(guessing), str(listing), "--bike", "red-bike"]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""  # no ranking at all
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and err[0] == (
        f"error: {guessing} guesses at about chance level (33% of its validation photos "
        "right, 3 bikes), so it cannot rank listings: train it longer or scan with another "
        "model"
    )


# -- what the pages ask of a loaded model ---------------------------------------------------


def test_trade_off_and_heatmap_overlay(classifier, listing):
    """The trade-off read back from a saved model matches the threshold it was fit to
    (model.json once rounded the scores, so a 95% threshold accepted 67%)."""
    known = classifier.reference.known_scores
    accepted, rejected = classifier.trade_off(classifier.threshold)
    assert accepted >= classifier.reference.accept - 1e-9
    others = classifier.reference.other_scores
    assert rejected == sum(s < classifier.threshold for s in others) / len(others)
    assert classifier.trade_off(min(known) - 1)[0] == 1.0
    assert classifier.trade_off(max(known) + 1)[0] == 0.0
    photo = Image.new("RGB", (200, 100), (200, 40, 40))
    photo.save(listing.parent / "wide.png")
    shown = classifier.explain(listing.parent / "wide.png", size=120)
    assert shown.size == (120, 60) and shown.mode == "RGB"
    assert np.asarray(shown).std() > 0  # the heat is visible, not a flat copy
