"""Datasets: layouts, zips, junk, unreadable files, stratified split, k-fold, summary."""

import io
import re
import stat
import zipfile
from pathlib import Path

import pytest
from helpers import write_dataset, write_not_mine
from PIL import Image

from bikelib import DatasetError, kfold, load_split, open_dataset, summarize
from bikelib.archives import (
    MAX_ZIP_FILES,
    MAX_ZIP_RATIO,
    MAX_ZIP_TOTAL_BYTES,
    ZipLimits,
    extract_zip,
)
from bikelib.errors import ArchiveError


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


@pytest.mark.parametrize(
    "folder", ["not-mine", "Not_Mine", "NOTMINE", "other", "Others", "unknown"]
)
def test_a_not_mine_folder_is_other_peoples_bikes_not_a_bike(tmp_path, folder):
    root = write_not_mine(write_dataset(tmp_path / "bikes"), count=5, folder=folder)
    dataset = open_dataset(root, val_fraction=0.34, seed=3)
    assert dataset.classes == ("blue-bike", "green-bike", "red-bike")
    assert (len(dataset.not_mine_train), len(dataset.not_mine_validation)) == (3, 2)
    assert {s.label for s in dataset.not_mine} == {-1}
    assert all(s.path.parent.name == folder for s in dataset.not_mine)
    assert not set(dataset.not_mine) & set(dataset.samples)
    # The bikes' split is the one without the group; the group's own split is seeded too.
    without = open_dataset(write_dataset(tmp_path / "plain"), val_fraction=0.34, seed=3)
    names = lambda samples: [s.path.relative_to(s.path.parents[1]) for s in samples]  # noqa: E731
    assert names(dataset.validation) == names(without.validation)
    again = open_dataset(root, val_fraction=0.34, seed=3)
    assert again.not_mine_validation == dataset.not_mine_validation
    other_seeds = {
        open_dataset(root, val_fraction=0.34, seed=s).not_mine_validation for s in range(6)
    }
    assert len(other_seeds) > 1
    summary = summarize(dataset)
    assert summary["not_mine"] == {"train": 3, "validation": 2}
    assert [row["class"] for row in summary["per_class"]] == list(dataset.classes)


def test_not_mine_in_a_given_split_and_merged_aliases(tmp_path):
    root = write_not_mine(write_dataset(tmp_path / "assignment", split=True), 6, split=True)
    write_not_mine(root / "train", count=2, folder="unknown")
    dataset = open_dataset(root)
    assert dataset.given_split and len(dataset.classes) == 3
    assert len(dataset.not_mine_train) == 4 + 2
    assert all(s.path.parts[-3] == "validation" for s in dataset.not_mine_validation)
    assert len(dataset.not_mine_validation) == 2


def test_not_mine_photos_are_no_second_bike(tmp_path):
    (tmp_path / "d").mkdir()
    write_dataset(tmp_path / "d", per_class=2)
    for name in ("blue-bike", "green-bike"):
        for file in (tmp_path / "d" / name).iterdir():
            file.unlink()
        (tmp_path / "d" / name).rmdir()
    write_not_mine(tmp_path / "d", count=2)
    with pytest.raises(DatasetError, match=r"found 1: red-bike; not-mine photos are not a bike"):
        open_dataset(tmp_path / "d")


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
    assert reasons["broken.jpg"] == "not an image Pillow can read"
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
    from helpers import synthetic_photo

    from bikelib.dataset import fingerprint

    def fingerprint_of(root):
        dataset = open_dataset(root, seed=0)
        splits = [load_split(part, 16) for part in (dataset.train, dataset.validation)]
        return fingerprint(dataset.classes, *splits)

    first = fingerprint_of(tiny_dataset)
    assert fingerprint_of(tiny_dataset) == first
    synthetic_photo((0, 0, 0), seed=99).save(tiny_dataset / "red-bike" / "photo1.png")
    assert fingerprint_of(tiny_dataset) != first


# --- Hostile and odd zips: each is unpacked, or refused with one sentence ----------------


def png_bytes(colour=(200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (8, 8), colour).save(buffer, "PNG")
    return buffer.getvalue()


GOOD = ["bikes/red/a.png", "bikes/red/b.png", "bikes/blue/a.png", "bikes/blue/b.png"]


def make_zip(path: Path, entries, *, patch=None, method=zipfile.ZIP_DEFLATED) -> Path:
    """A zip of `entries` (a name gets a small PNG; a (name or ZipInfo, bytes) pair is
    written as given), then `patch` applied to its bytes."""
    with zipfile.ZipFile(path, "w", method) as archive:
        for entry in entries:
            if isinstance(entry, tuple):
                archive.writestr(*entry)
            else:
                archive.writestr(entry, png_bytes())
    if patch:
        path.write_bytes(patch(path.read_bytes()))
    return path


def patch_headers(local_offset: int, central_offset: int, value: bytes):
    """Overwrite one field in every local and central header (as a hand-made zip could)."""

    def patch(data: bytes) -> bytes:
        out = bytearray(data)
        for signature, offset in ((b"PK\x03\x04", local_offset), (b"PK\x01\x02", central_offset)):
            at = out.find(signature)
            while at >= 0:
                out[at + offset : at + offset + len(value)] = value
                at = out.find(signature, at + 4)
        return bytes(out)

    return patch


def flip_stored_byte(data: bytes) -> bytes:
    out = bytearray(data)
    out[out.find(png_bytes()) + 40] ^= 0xFF  # inside the first photo's pixel data
    return bytes(out)


def symlink_entry() -> tuple[zipfile.ZipInfo, bytes]:
    link = zipfile.ZipInfo("bikes/red/link.png")
    link.external_attr = (stat.S_IFLNK | 0o777) << 16
    return link, b"/etc/passwd"


BAD_ZIPS = {
    "not a zip at all": (lambda p: p.write_bytes(b"not a zip"), "is not a valid zip file"),
    "a PNG named .zip": (lambda p: p.write_bytes(png_bytes()), "is not a valid zip file"),
    "truncated zip": (
        lambda p: p.write_bytes(make_zip(p, GOOD).read_bytes()[:300]),
        "is not a valid zip file",
    ),
    "damaged data (bad CRC)": (
        lambda p: make_zip(p, GOOD, patch=flip_stored_byte, method=zipfile.ZIP_STORED),
        "is damaged: bikes/red/a.png cannot be unpacked",
    ),
    "password-protected": (
        # bit 0 of the flags: encrypted (Python's zipfile cannot write real encryption)
        lambda p: make_zip(p, GOOD, patch=patch_headers(6, 8, b"\x01")),
        "is password-protected; zip the photos again without a password",
    ),
    "unsupported compression (Deflate64)": (
        lambda p: make_zip(p, GOOD, patch=patch_headers(8, 10, b"\x09\x00")),
        "uses a compression method this app cannot unpack (bikes/red/a.png); "
        "zip the photos again with the standard method",
    ),
    "entry with ../": (
        lambda p: make_zip(p, [*GOOD, "../outside.png"]),
        "contains an unsafe path that points outside its folder: ../outside.png",
    ),
    "entry with an absolute path": (
        lambda p: make_zip(p, [*GOOD, "/etc/cron.d/evil"]),
        "contains an unsafe path that points outside its folder: /etc/cron.d/evil",
    ),
    "entry with Windows ..\\": (
        lambda p: make_zip(p, [*GOOD, "..\\..\\evil.png"]),
        "contains an unsafe path that points outside its folder: ..\\..\\evil.png",
    ),
    "entry with a drive letter": (
        lambda p: make_zip(p, [*GOOD, "C:\\evil.png"]),
        "contains an unsafe path that points outside its folder: C:\\evil.png",
    ),
    "symbolic link entry": (
        lambda p: make_zip(p, [*GOOD, symlink_entry()]),
        "contains a symbolic link (bikes/red/link.png); zip the photos themselves",
    ),
    "zip bomb (ratio over 100)": (
        lambda p: make_zip(p, [*GOOD, ("bikes/red/zeros.png", bytes(5_000_000))]),
        "looks like a zip bomb: bikes/red/zeros.png would grow 1,026 times when unpacked "
        "(photos do not compress more than 100 times)",
    ),
    "declares over 500 MB unpacked": (
        # the uncompressed-size field says 600 MB: refused before a byte is written
        lambda p: make_zip(
            p, GOOD, patch=patch_headers(22, 24, (600_000_000).to_bytes(4, "little"))
        ),
        "would unpack to more than 500 MB, the most a dataset zip may hold",
    ),
    "over 5,000 files": (
        lambda p: make_zip(p, [(f"bikes/red/{i}.txt", b"") for i in range(5_001)]),
        "holds more than 5,000 files and folders, the most a dataset zip may hold",
    ),
    "a file where a folder must be": (
        lambda p: make_zip(p, [*GOOD, ("bikes/red/a.png/b.png", b"x")]),
        "Cannot unpack bikes.zip: File exists (bikes/red/a.png/b.png)",
    ),
}


@pytest.mark.parametrize("case", BAD_ZIPS, ids=list(BAD_ZIPS))
def test_bad_zip_is_one_sentence_and_leaves_nothing_behind(case, tmp_path):
    make, message = BAD_ZIPS[case]
    archive = tmp_path / "bikes.zip"
    make(archive)
    cache = tmp_path / "cache"
    with pytest.raises(DatasetError) as raised:
        extract_zip(archive, cache)
    expected = message if message.startswith("Cannot") else f"bikes.zip {message}"
    assert str(raised.value) == expected
    assert not cache.exists() or not any(cache.iterdir())  # no half-unpacked folder
    with pytest.raises(DatasetError, match=re.escape(expected)):
        open_dataset(archive)  # the same sentence through the public entry point


def test_zip_limits_are_parameters_and_hold_for_an_already_unpacked_zip(tmp_path):
    archive = make_zip(tmp_path / "bikes.zip", GOOD)
    cache = tmp_path / "cache"
    unpacked = extract_zip(archive, cache)
    assert extract_zip(archive, cache) == unpacked  # identical uploads share one folder
    with pytest.raises(ArchiveError, match="holds more than 3 files and folders"):
        extract_zip(archive, cache, limits=ZipLimits(max_files=3))
    with pytest.raises(ArchiveError, match="would unpack to more than 200 bytes"):
        extract_zip(archive, cache, limits=ZipLimits(max_total_bytes=200))
    bomb = make_zip(tmp_path / "b.zip", [*GOOD, ("bikes/red/z.png", bytes(2_000_000))])
    assert extract_zip(bomb, cache, limits=ZipLimits(max_ratio=10_000)).is_dir()
    with pytest.raises(ArchiveError, match="looks like a zip bomb"):
        open_dataset(bomb, zip_limits=ZipLimits(max_ratio=50))
    assert (
        (ZipLimits().max_total_bytes, ZipLimits().max_files, ZipLimits().max_ratio)
        == (
            MAX_ZIP_TOTAL_BYTES,
            MAX_ZIP_FILES,
            MAX_ZIP_RATIO,
        )
        == (500_000_000, 5_000, 100)
    )


def test_unwritable_unpack_folder_is_one_sentence(tmp_path):
    archive = make_zip(tmp_path / "bikes.zip", GOOD)
    (tmp_path / "cache").write_text("a file where the cache folder should be")
    with pytest.raises(DatasetError, match=r"^Cannot unpack bikes\.zip: the folder for unpacked"):
        extract_zip(archive, tmp_path / "cache" / "zips")


def rename(old: bytes, new: bytes):
    return lambda data: data.replace(old, new)


GOOD_ZIPS = {
    "nested top folders": ([f"outer/inner/{name}" for name in GOOD], ("blue", "red")),
    "nested given split": (
        [f"a/b/{part}/{name[6:]}" for part in ("train", "validation") for name in GOOD],
        ("blue", "red"),
    ),
    "no top folder, mac junk": (
        [n[6:] for n in GOOD] + [("__MACOSX/red/._a.png", b"j"), ("red/.DS_Store", b"j")],
        ("blue", "red"),
    ),
    "Windows backslashes": ([n.replace("/", "\\") for n in GOOD], ("blue", "red")),
    # Names as bytes that are not UTF-8 (cp437 0x82 is é) or UTF-8 without the flag.
    "cp437 name": ([n.replace("red", "cafX") for n in GOOD], ("blue", "café")),
    "UTF-8 name without the flag": (
        [n.replace("red", "MuXller") for n in GOOD],
        ("Müller", "blue"),
    ),
}
GOOD_PATCHES = {
    "cp437 name": rename(b"cafX", b"caf\x82"),
    "UTF-8 name without the flag": rename(b"uX", "ü".encode()),
}


@pytest.mark.parametrize("case", GOOD_ZIPS, ids=list(GOOD_ZIPS))
def test_odd_but_safe_zips_work(case, tmp_path):
    entries, classes = GOOD_ZIPS[case]
    archive = make_zip(tmp_path / "bikes.zip", entries, patch=GOOD_PATCHES.get(case))
    dataset = open_dataset(archive, val_fraction=0.5)
    assert dataset.classes == classes
    assert dataset.given_split == ("split" in case)
    assert len(dataset.samples) == (8 if dataset.given_split else 4) and dataset.skipped == ()
    assert not list(dataset.root.rglob("__MACOSX")) and not list(dataset.root.rglob(".DS_Store"))
