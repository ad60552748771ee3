"""Decoding: formats, modes, EXIF orientation, draft decoding, the disk cache; thumbnails
and the augmentation preview."""

import hashlib
import io
import struct
import warnings
import zlib

import numpy as np
import pytest
from PIL import Image

from bikelib import Augmentation, BikeLibError, DecodeCache, ImageReadError, decode, open_image
from bikelib.errors import ImageTooLargeError
from bikelib.images import (
    DAMAGED,
    MAX_IMAGE_PIXELS,
    augment_preview,
    corner_crops,
    file_sha256,
    image_size,
    thumbnail,
    to_rgb,
)


def encoded(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "BMP", "GIF", "WEBP"])
def test_common_formats_decode_to_rgb(fmt):
    image = Image.new("RGB", (40, 30), (200, 30, 30))
    array = decode(encoded(image, fmt), 16)
    assert array.shape == (16, 16, 3) and array.dtype == np.uint8
    assert array[..., 0].mean() > 150 and array[..., 2].mean() < 80


def test_heic_decodes_when_pillow_heif_is_installed():
    pillow_heif = pytest.importorskip("pillow_heif")
    pillow_heif.register_heif_opener()
    try:
        data = encoded(Image.new("RGB", (64, 48), (20, 200, 20)), "HEIF")
    except (KeyError, OSError) as error:  # a libheif built without an encoder
        pytest.skip(f"this pillow-heif cannot encode HEIF: {error}")
    assert decode(data, 16)[..., 1].mean() > 150


@pytest.mark.parametrize(
    ("mode", "colour"),
    [("L", 128), ("P", 3), ("CMYK", (0, 255, 255, 0)), ("RGBA", (255, 0, 0, 0)), ("I;16", 65535)],
)
def test_any_mode_becomes_rgb(mode, colour):
    rgb = to_rgb(Image.new(mode, (8, 8), colour))
    assert rgb.mode == "RGB"
    if mode == "RGBA":  # fully transparent -> white, not black
        assert rgb.getpixel((0, 0)) == (255, 255, 255)
    if mode == "I;16":  # 16-bit full scale -> 8-bit full scale, not clipped garbage
        assert rgb.getpixel((0, 0)) == (255, 255, 255)


def test_exif_orientation_is_applied():
    image = Image.new("RGB", (60, 20), (0, 0, 255))
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90 degrees clockwise to display
    upright = open_image(encoded(image, "JPEG", exif=exif))
    assert upright.size == (20, 60)


def test_animated_gif_uses_first_frame():
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, "GIF", save_all=True, append_images=frames[1:])
    assert decode(buffer.getvalue(), 8)[..., 0].mean() > 200


def test_jpeg_draft_mode_decodes_smaller_but_close():
    rng = np.random.default_rng(0)
    big = Image.fromarray(rng.integers(0, 255, (1200, 1600, 3), dtype=np.uint8)).resize(
        (3200, 2400)
    )
    data = encoded(big, "JPEG", quality=90)
    assert open_image(data, draft_size=128).size[0] <= 800  # decoded at 1/4 scale or less
    fast, full = decode(data, 128), decode(data, 128, draft=False)
    assert np.abs(fast.astype(int) - full.astype(int)).mean() < 12


def test_unreadable_file_raises_library_error_with_its_name(tmp_path):
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(b"not really a jpeg")
    with pytest.raises(ImageReadError, match=r"broken\.jpg"):
        decode(broken, 16)
    with pytest.raises(ValueError):  # ImageReadError is also a ValueError
        decode(tmp_path / "missing.jpg", 16)


def test_cache_reuses_decoded_arrays_and_notices_edits(tmp_path):
    photo = tmp_path / "a.png"
    Image.new("RGB", (20, 20), (10, 20, 30)).save(photo)
    cache = DecodeCache(tmp_path / "cache")
    first = cache.load(photo, 8)
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 1
    assert np.array_equal(cache.load(photo, 8), first)
    Image.new("RGB", (20, 20), (250, 20, 30)).save(photo)  # same path, new content
    assert cache.load(photo, 8)[0, 0, 0] > 200
    assert len(list((tmp_path / "cache").glob("*.npy"))) == 2


def test_prune_cache_removes_only_entries_unused_for_long(tmp_path):
    import os
    import time

    from bikelib.images import prune_cache

    photo = tmp_path / "a.png"
    Image.new("RGB", (20, 20), (10, 20, 30)).save(photo)
    cache = DecodeCache(tmp_path / "cache" / "arrays")
    cache.load(photo, 8)
    cache.load(photo, 16)
    arrays = tmp_path / "cache" / "arrays"
    old, recent = next(arrays.glob("*-8-v*.npy")), next(arrays.glob("*-16-v*.npy"))
    long_ago = time.time() - 3 * 3600
    os.utime(old, (long_ago, long_ago))
    (tmp_path / "cache" / "zips" / "abc").mkdir(parents=True)
    os.utime(tmp_path / "cache" / "zips" / "abc", (long_ago, long_ago))
    assert prune_cache(3600, root=tmp_path / "cache") == 2
    assert [p.name for p in (tmp_path / "cache" / "arrays").iterdir()] == [recent.name]
    half_an_hour_ago = time.time() - 1800
    os.utime(recent, (half_an_hour_ago, half_an_hour_ago))
    cache.load(photo, 16)  # a cache hit marks the entry used again
    assert time.time() - recent.stat().st_mtime < 60


# --- Hostile and odd files: each decodes, or fails with one sentence --------------------


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def raw_png(width: int, height: int, depth: int, colour_type: int, rows: bytes) -> bytes:
    """A PNG written by hand: its header may declare any size, whatever the data holds."""
    header = struct.pack(">IIBBBBB", width, height, depth, colour_type, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", zlib.compress(rows))
        + png_chunk(b"IEND", b"")
    )


def upload(data: bytes, name: str) -> io.BytesIO:
    """Bytes as a browser upload arrives: a stream with the file's name."""
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def animated(fmt: str) -> bytes:
    frames = [Image.new("RGB", (10, 10), c) for c in ((255, 0, 0), (0, 0, 255))]
    buffer = io.BytesIO()
    frames[0].save(buffer, fmt, save_all=True, append_images=frames[1:])
    return buffer.getvalue()


def palette_with_alpha() -> bytes:
    image = Image.new("P", (8, 8), 0)
    image.putpalette([255, 0, 0, 0, 255, 0])
    image.info["transparency"] = 0  # index 0 (red) fully transparent
    return encoded(image, "PNG")


RED = Image.new("RGB", (64, 48), (200, 30, 30))
JPEG, PNG = encoded(RED, "JPEG"), encoded(RED, "PNG")
TOO_LARGE = "the image has more than 80 million pixels, too many to decode safely; shrink it first"
UNREADABLE = "not an image Pillow can read"

BAD_IMAGES = {
    "zero-byte file": (b"", "photo.jpg: the file is empty (0 bytes)"),
    "text named .jpg": (b"hello, this is not a photo\n", f"photo.jpg: {UNREADABLE}"),
    "truncated JPEG": (JPEG[: len(JPEG) // 2], "photo.jpg: image file is truncated"),
    "JPEG cut inside its header": (JPEG[:20], f"photo.jpg: {UNREADABLE}"),
    "truncated PNG": (PNG[: len(PNG) // 2], "photo.jpg: image file is truncated"),
    "TIFF named .jpg (not a photo format)": (encoded(RED, "TIFF"), f"photo.jpg: {UNREADABLE}"),
    # 100 MP declared by a 60-byte file: refused from the header, nothing decoded.
    "decompression bomb, 100 MP": (raw_png(10_000, 10_000, 8, 2, b"\0"), f"photo.jpg: {TOO_LARGE}"),
    # 90 MP: between our limit and Pillow's own hard limit, where Pillow only warns.
    "decompression bomb, 90 MP": (raw_png(9_000, 10_000, 8, 2, b"\0"), f"photo.jpg: {TOO_LARGE}"),
    "decompression bomb, 1 GP": (raw_png(40_000, 25_000, 1, 0, b"\0"), f"photo.jpg: {TOO_LARGE}"),
}


@pytest.mark.parametrize("case", BAD_IMAGES, ids=list(BAD_IMAGES))
def test_bad_image_is_one_sentence_and_no_warning(case):
    data, message = BAD_IMAGES[case]
    with warnings.catch_warnings(record=True) as caught, pytest.raises(ImageReadError) as raised:
        decode(upload(data, "photo.jpg"), 16)
    assert str(raised.value) == message
    assert isinstance(raised.value, BikeLibError)
    assert not [w for w in caught if issubclass(w.category, Image.DecompressionBombWarning)]


def test_too_large_image_has_its_own_error_class_and_is_refused_from_the_header():
    bomb = raw_png(10_000, 10_000, 8, 2, b"\0")
    with pytest.raises(ImageTooLargeError):
        image_size(bomb)
    with pytest.raises(ImageTooLargeError):  # an already opened image too
        open_image(Image.new("1", (10_000, 9_000)))
    assert MAX_IMAGE_PIXELS == Image.MAX_IMAGE_PIXELS == 80_000_000


RGB16 = b"".join(b"\0" + b"\xff\xff\0\0\0\0" * 4 for _ in range(4))  # 4x4 red, 16 bits/channel
ODD_IMAGES = {
    "1x1 pixel": (encoded(Image.new("RGB", (1, 1), (255, 0, 0)), "PNG"), (255, 0, 0)),
    "20000x10 panorama PNG": (encoded(Image.new("RGB", (20_000, 10), (255, 0, 0)), "PNG"), None),
    "20000x10 panorama JPEG": (encoded(Image.new("RGB", (20_000, 10), (255, 0, 0)), "JPEG"), None),
    "10x20000 tall JPEG": (encoded(Image.new("RGB", (10, 20_000), (255, 0, 0)), "JPEG"), None),
    "16-bit grey PNG": (encoded(Image.new("I;16", (8, 8), 65535), "PNG"), (255, 255, 255)),
    "16-bit RGB PNG": (raw_png(4, 4, 16, 2, RGB16), (255, 0, 0)),
    "CMYK JPEG": (encoded(Image.new("CMYK", (16, 16), (0, 255, 255, 0)), "JPEG"), None),
    "palette PNG with transparency": (palette_with_alpha(), (255, 255, 255)),
    "animated GIF": (animated("GIF"), None),
    "animated WebP": (animated("WEBP"), None),
}


@pytest.mark.parametrize("case", ODD_IMAGES, ids=list(ODD_IMAGES))
def test_odd_but_valid_images_decode(case):
    data, exact = ODD_IMAGES[case]
    array = decode(upload(data, "photo"), 16)
    assert array.shape == (16, 16, 3) and array.dtype == np.uint8
    if exact:  # the colour survives exactly: white for transparency, 16 bits scaled
        assert tuple(array[8, 8]) == exact
    else:  # red: the first frame, CMYK converted, the long side squashed
        assert array[..., 0].mean() > 200 and array[..., 2].mean() < 40


def test_files_on_disk_name_themselves_in_errors(tmp_path):
    empty = tmp_path / "empty.jpg"
    empty.write_bytes(b"")
    with pytest.raises(ImageReadError, match=r"empty\.jpg: the file is empty \(0 bytes\)$"):
        decode(empty, 16)
    with pytest.raises(ImageReadError, match=r": a folder, not a photo$|: Is a directory$"):
        decode(tmp_path, 16)
    with pytest.raises(ImageReadError, match=r"missing\.jpg: file not found$"):
        DecodeCache(tmp_path / "cache").load(tmp_path / "missing.jpg", 8)


def test_cache_digest_is_the_sha256_of_the_file_on_a_miss_and_a_hit(tmp_path):
    photo = tmp_path / "a.jpg"
    photo.write_bytes(JPEG)
    cache = DecodeCache(tmp_path / "cache")
    first, digest = cache.load_with_digest(photo, 8)
    again, digest_again = cache.load_with_digest(photo, 8)  # from the cache this time
    assert digest == digest_again == hashlib.sha256(JPEG).hexdigest() == file_sha256(photo)
    assert np.array_equal(first, again)
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(JPEG[:300])
    with pytest.raises(ImageReadError, match=r"broken\.jpg: image file is truncated$"):
        cache.load_with_digest(broken, 8)


def test_any_other_decoder_exception_becomes_the_damaged_sentence(monkeypatch):
    from PIL import ImageFile

    def crash(self):  # what fuzzing finds in decoders now and then: not an OSError
        raise IndexError("list index out of range")

    monkeypatch.setattr(ImageFile.ImageFile, "load", crash)
    with pytest.raises(ImageReadError) as raised:
        decode(upload(PNG, "photo.png"), 16)
    assert str(raised.value) == f"photo.png: {DAMAGED}"


def test_thumbnail_is_upright_and_square_by_default():
    image = Image.new("RGB", (60, 20), (250, 0, 0))
    exif = image.getexif()
    exif[0x0112] = 6  # "rotate 90° clockwise to view": a phone held upright
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", exif=exif)
    upright = Image.open(io.BytesIO(thumbnail(buffer.getvalue(), 64, square=False)))
    assert upright.height > upright.width
    assert Image.open(io.BytesIO(thumbnail(buffer.getvalue(), 64))).size == (64, 64)
    with pytest.raises(ImageReadError):
        thumbnail(b"nope")


def test_augment_preview_varies_a_photo_repeatably(tiny_dataset):
    photo = tiny_dataset / "red-bike" / "photo0.png"
    versions = augment_preview(photo, Augmentation(), n=4, seed=3, size=48)
    assert len(versions) == 4 and all(
        v.shape == (48, 48, 3) and v.dtype == np.uint8 for v in versions
    )
    assert len({v.tobytes() for v in versions}) == 4  # each copy augmented differently
    again = augment_preview(photo, Augmentation(), n=4, seed=3, size=48)
    assert all(np.array_equal(a, b) for a, b in zip(versions, again, strict=True))
    off = Augmentation(flip=False, zoom=0, rotation=0, translation=0, brightness=0, contrast=0)
    plain = augment_preview(photo, off, n=2, size=48)
    assert all(np.array_equal(v, plain[0]) for v in plain)


def test_corner_crops_cut_each_corner_at_the_asked_share_of_each_side():
    # A photo in four colours, one a quadrant; each 60% corner is mostly its own colour.
    quadrants = np.zeros((80, 100, 3), np.uint8)
    quadrants[:40, :50] = (255, 0, 0)
    quadrants[:40, 50:] = (0, 255, 0)
    quadrants[40:, :50] = (0, 0, 255)
    quadrants[40:, 50:] = (255, 255, 255)
    crops = corner_crops(Image.fromarray(quadrants), 32, 0.6)
    assert crops.shape == (4, 32, 32, 3) and crops.dtype == np.uint8
    expected = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 255)]  # rows, then columns
    for crop, colour in zip(crops, expected, strict=True):
        share = (np.abs(crop.astype(int) - colour).sum(axis=-1) < 60).mean()
        assert 0.65 < share < 0.75, share  # (0.5 / 0.6) ** 2 = 0.69 of it
