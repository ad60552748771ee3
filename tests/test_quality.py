"""Dataset warnings, perceptual hashes, thumbnails and the augmentation preview."""

from __future__ import annotations

import io
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import ROOT, synthetic_photo, write_dataset
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
    assert set(by_kind) == {"duplicate", "leak", "conflict"}
    assert kinds(findings) == ["conflict", "leak", "duplicate"]  # most serious first
    assert {p.name for p in by_kind["duplicate"].paths} == {"photo1.png", "copy.png"}
    assert "training and validation" in by_kind["leak"].message
    assert "green-bike, red-bike" in by_kind["conflict"].message


def test_a_resized_recompressed_copy_is_a_near_duplicate(tiny_dataset):
    photo = smooth_photo(42)
    photo.save(tiny_dataset / "red-bike" / "big.png")
    photo.resize((160, 120)).save(tiny_dataset / "red-bike" / "small.jpg", quality=70)
    findings = quality.check(open_dataset(tiny_dataset, val_fraction=0), min_photos=1)
    assert kinds(findings) == ["near_duplicate", "no_validation"]
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
    assert kinds(findings) == ["no_validation", "imbalance"]
    assert "'blue-bike' has no validation photos" in findings[0].message
    assert "'red-bike' has 16 photos but 'blue-bike' only 4" in findings[1].message


def test_difference_hash_survives_resizing_and_tells_photos_apart():
    photo = smooth_photo(1)
    same = quality.difference_hash(photo) ^ quality.difference_hash(photo.resize((80, 60)))
    other = quality.difference_hash(photo) ^ quality.difference_hash(smooth_photo(2))
    assert bin(same).count("1") <= quality.NEAR_DISTANCE < bin(other).count("1")


def test_thumbnail_is_upright_and_square_by_default():
    image = Image.new("RGB", (60, 20), (250, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": a phone held upright
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    upright = Image.open(io.BytesIO(quality.thumbnail(buffer.getvalue(), 64, square=False)))
    assert upright.height > upright.width
    assert Image.open(io.BytesIO(quality.thumbnail(buffer.getvalue(), 64))).size == (64, 64)
    with pytest.raises(quality.ImageReadError):
        quality.thumbnail(b"nope")


def test_size_counts(tiny_dataset):
    add_photo(tiny_dataset / "red-bike", "wide.png").replace(tiny_dataset / "red-bike" / "w.png")
    Image.new("RGB", (40, 30)).save(tiny_dataset / "blue-bike" / "small.png")
    counts = quality.size_counts(open_dataset(tiny_dataset))
    assert counts[0] == {"width": 96, "height": 72, "photos": 19}
    assert {"width": 40, "height": 30, "photos": 1} in counts


def test_augment_preview_varies_a_photo_repeatably(tiny_dataset):
    from bikelib import Augmentation

    photo = tiny_dataset / "red-bike" / "photo0.png"
    versions = quality.augment_preview(photo, Augmentation(), n=4, seed=3, size=48)
    assert len(versions) == 4 and all(
        v.shape == (48, 48, 3) and v.dtype == np.uint8 for v in versions
    )
    assert len({v.tobytes() for v in versions}) == 4  # each copy augmented differently
    again = quality.augment_preview(photo, Augmentation(), n=4, seed=3, size=48)
    assert all(np.array_equal(a, b) for a, b in zip(versions, again, strict=True))
    off = Augmentation(flip=False, zoom=0, rotation=0, translation=0, brightness=0, contrast=0)
    plain = quality.augment_preview(photo, off, n=2, size=48)
    assert all(np.array_equal(v, plain[0]) for v in plain)


def test_quality_does_not_import_tensorflow():
    code = (
        "import sys, bikelib.quality, bikelib.workspace; "
        "print('tensorflow' in sys.modules or 'keras' in sys.modules)"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == "False"


def test_gallery_lists_training_then_validation_photos_with_captions(tmp_path):
    dataset = open_dataset(write_dataset(tmp_path / "set", split=True))
    everything = quality.gallery(dataset)
    assert len(everything) == len(dataset.samples)
    assert everything[0][0].endswith(" · train") and everything[-1][0].endswith(" · validation")
    bike = dataset.classes[0]
    mine = quality.gallery(dataset, bike)
    assert mine and all(caption.startswith(f"{bike} · ") for caption, _ in mine)
    assert {path for _, path in mine} == {
        s.path for s in dataset.samples if dataset.classes[s.label] == bike
    }
    assert quality.split_note(dataset).startswith("given by the train/")
    assert quality.split_note(open_dataset(write_dataset(tmp_path / "flat"))).startswith("chosen")


def test_prediction_row_and_augmentation_names():
    from bikelib import Augmentation
    from bikelib.artifacts import Prediction

    buffer = io.BytesIO()
    synthetic_photo((200, 40, 40), seed=1).save(buffer, "PNG")
    photo = buffer.getvalue()
    prediction = Prediction("red", 0.75, {"red": 0.75, "blue": 0.25})
    row = quality.prediction_row("a.png", photo, prediction)
    assert row["photo"].startswith("data:image/jpeg;base64,/9j/")  # a JPEG's first bytes
    assert {k: v for k, v in row.items() if k != "photo"} == {
        "file": "a.png",
        "bike": "red",
        "confidence": 0.75,
        "red": 0.75,
        "blue": 0.25,
    }
    assert quality.augmentation_names(Augmentation(zoom=0.0, contrast=0.0)) == (
        "flip, rotation, translation, brightness"
    )
    assert (
        quality.augmentation_names(
            Augmentation(flip=False, zoom=0, rotation=0, translation=0, brightness=0, contrast=0)
        )
        == "no augmentation"
    )
