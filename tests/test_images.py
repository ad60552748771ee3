"""Decoding: formats, modes, EXIF orientation, draft decoding, the disk cache."""

import io

import numpy as np
import pytest
from PIL import Image

from bikelib import DecodeCache, ImageReadError, decode, open_image
from bikelib.images import to_rgb


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
    old, recent = sorted((tmp_path / "cache" / "arrays").glob("*.npy"))
    long_ago = time.time() - 3 * 3600
    os.utime(old, (long_ago, long_ago))
    (tmp_path / "cache" / "zips" / "abc").mkdir(parents=True)
    os.utime(tmp_path / "cache" / "zips" / "abc", (long_ago, long_ago))
    assert prune_cache(3600, root=tmp_path / "cache") == 2
    assert [p.name for p in (tmp_path / "cache" / "arrays").iterdir()] == [recent.name]
    cache.load(photo, 16)  # a cache hit marks the entry used again
    assert time.time() - recent.stat().st_mtime < 60
