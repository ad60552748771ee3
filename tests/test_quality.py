"""Dataset warnings, perceptual hashes and size counts."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers import ROOT, synthetic_photo, write_dataset
from PIL import Image

from bikelib import open_dataset, quality


def kinds(findings) -> list[str]:
    return [f.kind for f in findings]


def add_photo(folder: Path, name: str, colour=(90, 90, 200), seed=7) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    synthetic_photo(colour, seed).save(folder / name)
    return folder / name


def smooth_photo(seed: int, size=(320, 240)) -> Image.Image:
    """A photo-like picture (gradients and shapes, little noise) for perceptual hashing."""
    rng = np.random.default_rng(seed)
    w, h = size
    y, x = np.mgrid[0:h, 0:w]
    pixels = np.stack([x / w * 255, y / h * 255, (x + y) / (w + h) * 255], axis=-1)
    for _ in range(4):
        x0, y0 = rng.integers(0, w - 60), rng.integers(0, h - 60)
        pixels[y0 : y0 + 60, x0 : x0 + 60] = rng.integers(0, 255, 3)
    return Image.fromarray(pixels.astype(np.uint8))


def test_a_small_clean_set_only_warns_about_few_photos(tiny_dataset):
    findings = quality.check(open_dataset(tiny_dataset))
    assert kinds(findings) == ["few_photos"] * 3
    assert "'blue-bike' has only 6 photo(s)" in findings[0].message
    assert quality.check(open_dataset(tiny_dataset), min_photos=6) == []


def test_exact_duplicates_leaks_and_conflicts_are_told_apart(tmp_path):
    root = write_dataset(tmp_path / "data", per_class=6, split=True)
    train, validation = root / "train", root / "validation"
    shutil.copy(train / "red-bike" / "photo1.png", train / "red-bike" / "copy.png")
    shutil.copy(train / "blue-bike" / "photo1.png", validation / "blue-bike" / "again.png")
    shutil.copy(train / "green-bike" / "photo1.png", train / "red-bike" / "green-really.png")
    findings = quality.check(open_dataset(root), min_photos=1)
    by_kind = {f.kind: f for f in findings}
    # most serious first; the flat colour of each synthetic "bike" fills its photos' edges
    assert kinds(findings) == ["conflict", "leak", "duplicate", "same_place"]
    assert {p.name for p in by_kind["duplicate"].paths} == {"photo1.png", "copy.png"}
    assert "training and validation" in by_kind["leak"].message
    assert "green-bike, red-bike" in by_kind["conflict"].message


def test_a_bike_photo_in_the_not_mine_folder_is_a_conflict(tmp_path):
    from helpers import write_not_mine

    root = write_not_mine(write_dataset(tmp_path / "data", per_class=6), count=4)
    assert quality.check(open_dataset(root), min_photos=1) == []  # the group alone: clean
    shutil.copy(root / "red-bike" / "photo1.png", root / "not-mine" / "mine-after-all.png")
    findings = quality.check(open_dataset(root), min_photos=1)
    assert kinds(findings) == ["conflict"]
    assert "labelled as different bikes (red-bike, not mine)" in findings[0].message
    assert {p.name for p in findings[0].paths} == {"photo1.png", "mine-after-all.png"}


def test_a_resized_recompressed_copy_is_a_near_duplicate(tiny_dataset):
    photo = smooth_photo(42)
    photo.save(tiny_dataset / "red-bike" / "big.png")
    photo.resize((160, 120)).save(tiny_dataset / "red-bike" / "small.jpg", quality=70)
    findings = quality.check(open_dataset(tiny_dataset, val_fraction=0), min_photos=1)
    assert kinds(findings) == ["near_duplicate", "same_place", "no_validation"]
    assert {p.name for p in findings[0].paths} == {"big.png", "small.jpg"}
    assert findings[0].message.startswith("Nearly the same photo appears 2 times")


def test_unreadable_files_are_reported_with_the_reason(tiny_dataset):
    (tiny_dataset / "red-bike" / "notes.txt").write_text("not a photo")
    (tiny_dataset / "red-bike" / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    good = io.BytesIO()
    synthetic_photo((10, 200, 10), 3, size=(300, 200)).save(good, "JPEG")
    cut = good.getvalue()[: len(good.getvalue()) // 2]  # the header is intact, the pixels not
    (tiny_dataset / "green-bike" / "cut.jpg").write_bytes(cut)
    findings = quality.check(open_dataset(tiny_dataset), min_photos=1)
    unreadable = [f for f in findings if f.kind == "unreadable"]
    assert len(unreadable) == 2
    decoded, probed = unreadable
    assert [p.name for p in decoded.paths] == ["cut.jpg"]
    assert decoded.details[0].startswith("green-bike/cut.jpg: image file is truncated")
    assert {p.name for p in probed.paths} == {"notes.txt", "broken.jpg"}
    assert any("not a supported image type (.txt)" in d for d in probed.details)


def test_imbalance_and_bikes_without_validation_photos(tmp_path):
    root = write_dataset(tmp_path / "data", per_class=6, split=True)
    for i in range(10):
        add_photo(root / "train" / "red-bike", f"extra{i}.png", (200, 40, 40), seed=500 + i)
    for photo in (root / "validation" / "blue-bike").iterdir():
        photo.unlink()
    (root / "validation" / "blue-bike").rmdir()
    findings = quality.check(open_dataset(root), min_photos=1)
    assert kinds(findings) == ["same_place", "no_validation", "imbalance"]
    assert "'blue-bike' has no validation photos" in findings[1].message
    assert "'red-bike' has 16 photos but 'blue-bike' only 4" in findings[2].message


def test_difference_hash_survives_resizing_and_tells_photos_apart():
    photo = smooth_photo(1)
    same = quality.difference_hash(photo) ^ quality.difference_hash(photo.resize((80, 60)))
    other = quality.difference_hash(photo) ^ quality.difference_hash(smooth_photo(2))
    assert bin(same).count("1") <= quality.NEAR_DISTANCE < bin(other).count("1")


def test_size_counts(tiny_dataset):
    add_photo(tiny_dataset / "red-bike", "wide.png").replace(tiny_dataset / "red-bike" / "w.png")
    Image.new("RGB", (40, 30)).save(tiny_dataset / "blue-bike" / "small.png")
    counts = quality.size_counts(open_dataset(tiny_dataset))
    assert counts[0] == {"width": 96, "height": 72, "photos": 19}
    assert {"width": 40, "height": 30, "photos": 1} in counts


def test_quality_sessions_and_jobs_do_not_import_tensorflow():
    code = (
        "import sys, bikelib.quality, bikelib.sessions, bikelib.jobs, bikelib.settings; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_photos_are_hashed_in_chunks_not_read_whole(tiny_dataset, monkeypatch):
    """A shared server checks many visitors' datasets: no photo is held whole in memory."""
    (tiny_dataset / "red-bike" / "copy.png").write_bytes(
        next((tiny_dataset / "red-bike").iterdir()).read_bytes()
    )

    def whole(self):
        raise AssertionError(f"{self} read whole")

    monkeypatch.setattr(Path, "read_bytes", whole)
    findings = quality.check(open_dataset(tiny_dataset), min_photos=1)
    same = [f for f in findings if f.kind in ("duplicate", "leak") and "The same" in f.message]
    assert [p.name for f in same for p in f.paths if p.name == "copy.png"] == ["copy.png"]


PLACES = [
    (40, 120, 40),
    (150, 150, 160),
    (170, 90, 60),
    (220, 220, 230),
    (60, 60, 70),
    (90, 140, 200),
]


def place_set(root: Path, own_places: bool, per_bike: int = 10) -> Path:
    """Three bikes (a coloured block in the middle) before backgrounds (the places): each
    bike always at its own place, or every photo at a place drawn at random."""
    rng = np.random.default_rng(3)
    for bike, colour in enumerate([(200, 30, 30), (30, 30, 200), (230, 200, 40)]):
        for n in range(per_bike):
            place = PLACES[bike] if own_places else PLACES[rng.integers(len(PLACES))]
            pixels = np.clip(np.array(place) + rng.normal(0, 12, (72, 96, 3)), 0, 255)
            pixels[20:52, 28:68] = colour
            add = Image.fromarray(pixels.astype(np.uint8))
            (root / f"bike{bike}").mkdir(parents=True, exist_ok=True)
            add.save(root / f"bike{bike}" / f"{n}.png")
    return root


def test_bikes_that_each_stand_in_their_own_place_are_warned_about(tmp_path):
    own = quality.check(open_dataset(place_set(tmp_path / "own", own_places=True)))
    assert "same_place" in kinds(own)
    message = next(f.message for f in own if f.kind == "same_place")
    assert "tell the bikes apart 100% of the time, against 33% by chance" in message
    assert "add photos of each bike in other places" in message
    anywhere = quality.check(open_dataset(place_set(tmp_path / "anywhere", own_places=False)))
    assert "same_place" not in kinds(anywhere)


def test_the_place_check_needs_enough_photos(tmp_path):
    few = place_set(tmp_path, own_places=True, per_bike=6)  # 18 photos: too few to say
    assert "same_place" not in kinds(quality.check(open_dataset(few)))


def test_edge_histogram_sees_the_edges_not_the_middle():
    plain = Image.new("RGB", (320, 240), (40, 120, 40))
    framed = plain.copy()
    framed.paste((200, 30, 30), (80, 60, 240, 180))  # the middle third: a red bike
    assert np.array_equal(quality.edge_histogram(plain), quality.edge_histogram(framed))
    assert quality.edge_histogram(plain).sum() == 1.0
