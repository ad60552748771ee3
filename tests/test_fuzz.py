"""Fuzzing: random and mutated photos and zips never escape as anything but a BikeLibError.

Seeds are real small files made here (JPEG, PNG, GIF, WebP, dataset zips); hypothesis
flips bits, cuts, splices and overwrites them (or starts from random bytes behind a
real magic number) and feeds the result to the image decoder and the dataset opener.
Whatever comes back must be a decoded array or dataset, or a BikeLibError whose text is
one non-empty line. Bounded (150 examples each, no example database) to run in seconds.
"""

from __future__ import annotations

import io
import tempfile
import warnings
import zipfile
from pathlib import Path

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from bikelib import BikeLibError, DecodeCache, decode, load_split, open_dataset
from bikelib.images import image_size

FUZZ = settings(
    max_examples=150,
    deadline=None,
    database=None,  # no .hypothesis/ folder in the checkout
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)


def _encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def _photo(seed: int, size=(24, 16)) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))


def _zip(method: int) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", method) as archive:
        for index, name in enumerate(("bikes/red/a.png", "bikes/red/b.jpg", "bikes/blue/a.png")):
            fmt = "JPEG" if name.endswith(".jpg") else "PNG"
            archive.writestr(name, _encoded(_photo(index, (8, 8)), fmt))
        archive.writestr("bikes/blue/b.png", _encoded(_photo(9, (8, 8)), "PNG"))
    return buffer.getvalue()


IMAGE_SEEDS = [
    _encoded(_photo(1), "JPEG", quality=80),
    _encoded(_photo(2), "JPEG", progressive=True),
    _encoded(_photo(3), "PNG"),
    _encoded(_photo(4).convert("RGBA"), "PNG"),
    _encoded(_photo(5).convert("P"), "GIF"),
    _encoded(_photo(6), "WEBP"),
    _encoded(_photo(7), "BMP"),
]
ZIP_SEEDS = [_zip(zipfile.ZIP_STORED), _zip(zipfile.ZIP_DEFLATED)]
MAGIC = [
    b"\xff\xd8\xff\xe0",
    b"\x89PNG\r\n\x1a\n",
    b"GIF89a",
    b"RIFF\0\0\0\0WEBP",
    b"BM",
    b"PK\x03\x04",
]
# Values that make size and count fields lie: zero, one, huge, negative when signed.
NASTY = [b"\x00\x00\x00\x00", b"\x00\x00\x00\x01", b"\xff\xff\xff\xff", b"\x7f\xff\xff\xff"]


@st.composite
def mutated(draw, seeds: list[bytes]) -> bytes:
    """A seed with 1-4 mutations: bit flips, truncation, splices, inserts, nasty words."""
    data = bytearray(draw(st.sampled_from(seeds)))
    for _ in range(draw(st.integers(1, 4))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        kind = draw(st.sampled_from(["flip", "truncate", "splice", "insert", "nasty"]))
        if kind == "flip":
            data[at] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "splice":  # the tail of another seed (or the same) from anywhere
            other = draw(st.sampled_from(seeds))
            data[at:] = other[draw(st.integers(0, len(other))) :]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=32))
        else:
            data[at : at + 4] = draw(st.sampled_from(NASTY))
    return bytes(data)


def behind_magic() -> st.SearchStrategy[bytes]:
    return st.builds(bytes.__add__, st.sampled_from(MAGIC), st.binary(max_size=512))


def assert_one_sentence(error: BikeLibError) -> None:
    text = str(error)
    assert text.strip() and "\n" not in text, repr(text)


def decode_or_refuse(data: bytes) -> None:
    stream = io.BytesIO(data)
    stream.name = "upload.jpg"
    with warnings.catch_warnings(record=True) as caught:
        try:
            image_size(data)
            array = decode(stream, 16)
        except BikeLibError as error:
            assert_one_sentence(error)
        else:
            assert array.shape == (16, 16, 3) and array.dtype == np.uint8
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def open_zip_or_refuse(data: bytes) -> None:
    with tempfile.TemporaryDirectory() as folder:
        archive = Path(folder) / "upload.zip"
        archive.write_bytes(data)
        try:
            dataset = open_dataset(archive, val_fraction=0.0)
        except BikeLibError as error:
            assert_one_sentence(error)
            return
        # What did unpack is decoded too; a bad photo in it is reported, never raised.
        loaded = load_split(dataset.samples, 8, cache=DecodeCache(Path(folder) / "arrays"))
        assert len(loaded.paths) + len(loaded.failed) == len(dataset.samples)
        for failed in loaded.failed:
            assert failed.reason.strip() and "\n" not in failed.reason


def test_seeds_are_valid():
    for seed in IMAGE_SEEDS:
        assert decode(seed, 16).shape == (16, 16, 3)
    for seed in ZIP_SEEDS:
        with tempfile.TemporaryDirectory() as folder:
            (Path(folder) / "ok.zip").write_bytes(seed)
            assert len(open_dataset(Path(folder) / "ok.zip").samples) == 4


@FUZZ
@given(st.binary(max_size=2048))
def test_random_bytes_as_an_image(data):
    decode_or_refuse(data)


@FUZZ
@given(st.one_of(mutated(IMAGE_SEEDS), behind_magic()))
def test_mutated_images(data):
    decode_or_refuse(data)


@FUZZ
@given(st.one_of(mutated(ZIP_SEEDS), behind_magic(), st.binary(max_size=1024)))
def test_mutated_zips(data):
    open_zip_or_refuse(data)
