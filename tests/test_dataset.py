"""Datasets: layouts, zips, junk, unreadable files, stratified split, k-fold, summary."""

import zipfile

import pytest
from conftest import write_dataset

from bikelib import DatasetError, kfold, load_split, open_dataset, summarize


def test_class_folders_are_split_stratified_and_seeded(tiny_dataset):
    dataset = open_dataset(tiny_dataset, val_fraction=0.34, seed=3)
    assert dataset.classes == ("blue-bike", "green-bike", "red-bike")
    assert not dataset.given_split
    assert len(dataset.train) == 12 and len(dataset.validation) == 6
    for label in range(3):  # every class on both sides
        assert sum(s.label == label for s in dataset.validation) == 2
    again = open_dataset(tiny_dataset, val_fraction=0.34, seed=3)
    other = open_dataset(tiny_dataset, val_fraction=0.34, seed=4)
    assert again.validation == dataset.validation
    assert other.validation != dataset.validation


def test_given_train_validation_split_is_used_as_is(tmp_path):
    root = write_dataset(tmp_path / "assignment", split=True)
    dataset = open_dataset(root, val_fraction=0.5)
    assert dataset.given_split
    assert all(s.path.parts[-3] == "validation" for s in dataset.validation)
    assert len(dataset.validation) == 6 and len(dataset.train) == 12


@pytest.mark.parametrize("wrapped", [True, False])
def test_zip_with_or_without_top_folder_and_mac_junk(tmp_path, wrapped):
    source = write_dataset(tmp_path / "bikes", per_class=3)
    archive = tmp_path / "bikes.zip"
    with zipfile.ZipFile(archive, "w") as z:
        for file in source.rglob("*.png"):
            name = file.relative_to(source.parent if wrapped else source)
            z.write(file, str(name))
        z.writestr("__MACOSX/bikes/red-bike/._photo0.png", b"junk")
        z.writestr(("bikes/" if wrapped else "") + "red-bike/.DS_Store", b"junk")
    dataset = open_dataset(archive)
    assert dataset.classes == ("blue-bike", "green-bike", "red-bike")
    assert len(dataset.samples) == 9
    assert dataset.skipped == ()


def test_zip_with_unsafe_paths_is_refused(tmp_path):
    archive = tmp_path / "evil.zip"
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("../outside.png", b"x")
    with pytest.raises(DatasetError, match="unsafe path"):
        open_dataset(archive)


def test_unreadable_and_foreign_files_are_skipped_with_reasons(tiny_dataset):
    (tiny_dataset / "red-bike" / "broken.jpg").write_bytes(b"\xff\xd8 garbage")
    (tiny_dataset / "red-bike" / "notes.txt").write_text("hello")
    dataset = open_dataset(tiny_dataset)
    reasons = {s.path.name: s.reason for s in dataset.skipped}
    assert set(reasons) == {"broken.jpg", "notes.txt"}
    assert "not a readable image" in reasons["broken.jpg"]
    assert "not a supported image type" in reasons["notes.txt"]
    assert len(dataset.samples) == 18


def test_truncated_photo_fails_at_decode_and_is_reported(tiny_dataset, tmp_path):
    photo = tiny_dataset / "blue-bike" / "photo1.png"
    photo.write_bytes(photo.read_bytes()[:200])  # header intact, pixels cut off
    dataset = open_dataset(tiny_dataset, val_fraction=0.0)
    loaded = load_split(dataset.samples, 16)
    assert [f.path.name for f in loaded.failed] == ["photo1.png"]
    assert loaded.images.shape == (17, 16, 16, 3)


def test_too_few_classes_is_a_clear_error(tmp_path):
    write_dataset(tmp_path / "one")
    for name in ("green-bike", "red-bike"):
        for file in (tmp_path / "one" / name).iterdir():
            file.unlink()
    with pytest.raises(DatasetError, match="at least two class folders"):
        open_dataset(tmp_path / "one")
    with pytest.raises(DatasetError, match="not found"):
        open_dataset(tmp_path / "nowhere")


def test_kfold_validates_every_photo_exactly_once(tiny_dataset):
    dataset = open_dataset(tiny_dataset)
    folds = kfold(dataset, 3, seed=1)
    validated = [s.path for fold in folds for s in fold.validation]
    assert sorted(validated) == sorted(s.path for s in dataset.samples)
    for fold in folds:
        assert not {s.path for s in fold.train} & {s.path for s in fold.validation}
        assert sorted({s.label for s in fold.validation}) == [0, 1, 2]
    with pytest.raises(DatasetError):
        kfold(dataset, 7)


def test_summary_is_plain_data(tiny_dataset):
    summary = summarize(open_dataset(tiny_dataset))
    assert summary["classes"] == ["blue-bike", "green-bike", "red-bike"]
    assert [row["total"] for row in summary["per_class"]] == [6, 6, 6]
    assert summary["image_sizes"] == {"min": [96, 72], "max": [96, 72], "distinct": 1}


def test_shared_photos_have_the_original_split(shared_bikes):
    dataset = open_dataset(shared_bikes)
    assert dataset.given_split and len(dataset.classes) == 5
    assert (len(dataset.train), len(dataset.validation), len(dataset.skipped)) == (80, 20, 0)


def test_fingerprint_is_stable_and_follows_photo_content(tiny_dataset):
    from conftest import synthetic_photo

    from bikelib.dataset import fingerprint

    def fingerprint_of(root):
        dataset = open_dataset(root, seed=0)
        splits = [load_split(part, 16) for part in (dataset.train, dataset.validation)]
        return fingerprint(dataset.classes, *splits)

    first = fingerprint_of(tiny_dataset)
    assert fingerprint_of(tiny_dataset) == first
    synthetic_photo((0, 0, 0), seed=99).save(tiny_dataset / "red-bike" / "photo1.png")
    assert fingerprint_of(tiny_dataset) != first
