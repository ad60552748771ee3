"""Decoding photos into RGB arrays: formats, orientation, reduced-size decoding, disk cache.

Phone photos are 12 MP JPEGs, and decoding them is the slowest step of a training run
on a small machine. Two things make it cheap: JPEG draft mode (libjpeg scales by 1/2,
1/4 or 1/8 while decoding, so a 4032x3024 photo is never fully expanded) and a disk
cache of decoded arrays keyed by the file's content and the target size, so a second
run, or a second visitor with the same photos, decodes nothing.

Also the pictures the pages show: EXIF-upright thumbnails, and augmented versions of
one photo (`augment_preview`, the only part that needs Keras, imported when called).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import math
import os
import shutil
import tempfile
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError, ImageTooLargeError
from .settings import settings

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".heic", ".heif"})
PHOTO_TYPES = tuple(sorted(suffix.lstrip(".") for suffix in IMAGE_SUFFIXES))  # for uploaders
# The Pillow decoders a photo may go through, whatever its name says. Leaving out the
# others (EPS runs Ghostscript, TIFF and PSD have had many decoder bugs) shrinks what a
# hostile upload can reach. HEIF is added when pillow-heif is installed.
PHOTO_FORMATS = ("JPEG", "PNG", "BMP", "GIF", "WEBP", "HEIF")
# Images with more pixels than this are refused before decoding (a decompression bomb:
# a few KB of PNG can declare 100,000 x 100,000 pixels, 30 GB once decoded). 80 MP is
# above every common camera; a 200 MP phone photo must be shrunk first.
MAX_IMAGE_PIXELS = 80_000_000
# Pillow's own guard, set to the same limit: it warns above it and raises above twice it.
# The warning is turned into an error (see `_refuse_bomb_warnings`), so such an image is
# refused with the same sentence instead of a warning leaking into the logs.
Image.MAX_IMAGE_PIXELS = MAX_IMAGE_PIXELS
DAMAGED = "the image data is damaged or cut short"
_PILLOW_WORDING = {"Truncated File Read": "image file is truncated"}  # as for other formats
_BOMB_FILTER = ("error", None, Image.DecompressionBombWarning, None, 0)
# Bump when decoding changes, so cached arrays from an older decoder are not reused.
_DECODER_VERSION = 3
_heif_registered = False

ImageSource = str | os.PathLike | bytes | BinaryIO | Image.Image


def _register_heif() -> None:
    """Teach Pillow HEIC/HEIF (the iPhone default) once, if pillow-heif is installed."""
    global _heif_registered
    if not _heif_registered:
        _heif_registered = True
        try:
            from pillow_heif import register_heif_opener
        except ImportError:  # optional: HEIC files are then reported as unreadable
            return
        register_heif_opener()


def _source_name(source: ImageSource) -> str:
    if isinstance(source, (str, os.PathLike)):
        return os.fspath(source)
    return getattr(source, "name", None) or "image"


def to_rgb(image: Image.Image) -> Image.Image:
    """Any mode (palette, alpha, CMYK, 16-bit, greyscale) to 8-bit RGB."""
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: scale to 8 bits rather than clip at 255.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if array.max() > 255 else 255.0
        grey = np.clip(array / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(grey).convert("RGB")
    if image.mode == "P" and "transparency" in image.info:
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        # Transparent areas become white, as a viewer shows them, not black.
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def _photo_formats() -> tuple[str, ...]:
    Image.init()
    return tuple(f for f in PHOTO_FORMATS if f in Image.OPEN)


def _error(name: str, reason: str, kind: type[ImageReadError] = ImageReadError) -> ImageReadError:
    """`name: reason` as the message; `.reason` alone for lists that show the name apart."""
    error = kind(f"{name}: {reason}")
    error.reason = reason
    return error


def _check_pixels(image: Image.Image, name: str) -> None:
    width, height = image.size
    if width * height > MAX_IMAGE_PIXELS:
        raise _too_large(name)


def _too_large(name: str) -> ImageReadError:
    return _error(
        name,
        f"the image has more than {MAX_IMAGE_PIXELS // 1_000_000} million pixels, "
        "too many to decode safely; shrink it first",
        ImageTooLargeError,
    )


def _is_empty(source: ImageSource) -> bool:
    if isinstance(source, bytes):
        return not source
    if isinstance(source, (str, os.PathLike)):
        with contextlib.suppress(OSError):
            return os.path.getsize(source) == 0
        return False
    try:
        position = source.tell()
        source.seek(0, os.SEEK_END)
        empty = source.tell() == 0
        source.seek(position)
        return empty
    except (OSError, AttributeError, ValueError):
        return False


def _refuse_bomb_warnings() -> None:
    """Make Pillow's DecompressionBombWarning an exception, caught like every failure.

    Checked on every open, not once at import: a `warnings.catch_warnings()` block (pytest
    runs each test in one) puts back the filters it found when it ends. Adding the filter
    only when missing keeps this cheap, and no per-call `catch_warnings` (not thread-safe
    before Python 3.14) is needed. Our own size check below holds even without it.
    """
    if _BOMB_FILTER not in warnings.filters:
        warnings.filterwarnings("error", category=Image.DecompressionBombWarning)


@contextlib.contextmanager
def _opened(source: ImageSource, name: str) -> Iterator[Image.Image]:
    """The image with only its header read, size checked; every failure an ImageReadError."""
    _register_heif()
    _refuse_bomb_warnings()
    if _is_empty(source):
        raise _error(name, "the file is empty (0 bytes)")
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(stream, formats=_photo_formats()) as image:
            _check_pixels(image, name)  # from the header, before any pixel is decoded
            yield image
    except ImageReadError:
        raise
    except FileNotFoundError as error:
        raise _error(name, "file not found") from error
    except IsADirectoryError as error:
        raise _error(name, "a folder, not a photo") from error
    except UnidentifiedImageError as error:
        raise _error(name, "not an image Pillow can read") from error
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as error:
        raise _too_large(name) from error
    except OSError as error:  # the file system's reason, or Pillow's for damaged data
        reason = error.strerror or str(error) or DAMAGED
        raise _error(name, _PILLOW_WORDING.get(reason, reason)) from error
    except Exception as error:  # any other decoder failure on hostile bytes
        raise _error(name, DAMAGED) from error


def image_size(source: ImageSource) -> tuple[int, int]:
    """Width and height from the file's header, nothing decoded; ImageReadError if unusable."""
    with _opened(source, _source_name(source)) as image:
        return image.size


def open_image(source: ImageSource, *, draft_size: int | None = None) -> Image.Image:
    """Open a photo as an upright RGB image.

    `draft_size` lets JPEG decoding shrink by a power of two while keeping both sides
    at least that large, which is what a model of that input size needs anyway.
    Raises ImageReadError with the reason, as one sentence, when the file is not a
    readable photo: missing, empty, not an image, damaged, or too large
    (ImageTooLargeError, beyond MAX_IMAGE_PIXELS). Nothing else escapes.
    """
    name = _source_name(source)
    if isinstance(source, Image.Image):
        _check_pixels(source, name)
        return to_rgb(ImageOps.exif_transpose(source))
    with _opened(source, name) as image:
        image.seek(0)  # GIF and other animations: the first frame
        if draft_size and image.format == "JPEG":
            image.draft("RGB", (draft_size, draft_size))
        image.load()
        return to_rgb(ImageOps.exif_transpose(image))


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """Squash an RGB image to size x size (the whole photo kept) as uint8 HWC.

    Antialiased bilinear, the model's own `Resizing(antialias=True)` filter, after
    Pillow's integer box reduction to within twice the size (`reducing_gap`). That and
    the JPEG draft below keep more of the fine detail that tells bikes apart: on the
    real photos, 95% validation accuracy against 85% with a plain bilinear from twice the
    size (3 seeds each, bench/RESULTS.md). A raw photo given to a saved model directly
    answers within 0.02 of `Classifier.predict`, with the same label (tests/test_serving.py).
    """
    resized = image.resize((size, size), Image.Resampling.BILINEAR, reducing_gap=2.0)
    return np.asarray(resized, dtype=np.uint8)


def corner_crops(source: ImageSource, size: int, side: float) -> np.ndarray:
    """(4, size, size, 3) uint8: the photo's four corners, each `side` of its width and
    height, squashed to size x size as `decode` squashes a photo (the calibration's crops:
    `openset.CALIBRATION_CROP`). ImageReadError as `open_image`."""
    # The JPEG draft keeps each crop at least `size` pixels a side.
    image = open_image(source, draft_size=math.ceil(size / side))
    width, height = image.size
    boxes = [
        (round(x * width), round(y * height), round((x + side) * width), round((y + side) * height))
        for y in (0.0, 1.0 - side)
        for x in (0.0, 1.0 - side)
    ]
    return np.stack([to_array(image.crop(box), size) for box in boxes])


def decode(source: ImageSource, size: int, *, draft: bool = True) -> np.ndarray:
    """Decode one photo to a size x size x 3 uint8 array (no cache).

    JPEG draft mode decodes at the smallest DCT scale that still covers the size: a
    fraction of a full decode's cost.
    """
    return to_array(open_image(source, draft_size=size if draft else None), size)


def default_cache_dir() -> Path:
    """Where decoded arrays are kept: `Settings.cache_dir` ($BIKELIB_CACHE_DIR)."""
    return settings().cache_dir


class DecodeCache:
    """Decoded arrays on disk, keyed by file content + size, shared safely between users.

    The key is a hash of the bytes, not the path, so an edited photo is decoded again,
    and two visitors uploading the same photo share one entry. Writes go to a temporary
    file that is renamed into place, so a reader never sees half an array.
    """

    def __init__(self, directory: str | os.PathLike | None = None) -> None:
        self.directory = Path(directory) if directory else default_cache_dir() / "arrays"

    def load(self, path: str | os.PathLike, size: int) -> np.ndarray:
        """The array for one photo, decoded now or read from the cache."""
        return self.load_with_digest(path, size)[0]

    def load_with_digest(self, path: str | os.PathLike, size: int) -> tuple[np.ndarray, str]:
        """The array and the SHA-256 of the file's bytes.

        The file is opened once: hashed in chunks (a cache hit reads nothing more and
        holds no whole file in memory), then decoded from the same handle on a miss.
        """
        try:
            with open(path, "rb") as file:
                digest = hashlib.file_digest(file, "sha256").hexdigest()
                entry = self.directory / f"{digest[:32]}-{size}-v{_DECODER_VERSION}.npy"
                cached = self._cached(entry, size)
                if cached is not None:
                    return cached, digest
                file.seek(0)
                array = decode(file, size)
        except FileNotFoundError as error:
            raise _error(os.fspath(path), "file not found") from error
        except OSError as error:
            raise _error(os.fspath(path), error.strerror or str(error)) from error
        self._store(entry, array)
        return array, digest

    @staticmethod
    def _cached(entry: Path, size: int) -> np.ndarray | None:
        try:
            array = np.load(entry, allow_pickle=False)
        except (OSError, ValueError, EOFError):
            return None  # missing or damaged entry: decode again
        if array.shape == (size, size, 3) and array.dtype == np.uint8:
            mark_used(entry)
            return array
        return None

    def _store(self, entry: Path, array: np.ndarray) -> None:
        store_array(entry, array)


def store_array(entry: Path, array: np.ndarray) -> None:
    """Save `array` as the .npy file `entry` atomically (a temporary file renamed into
    place, so a reader never sees half an array); a read-only or full disk only costs
    speed, never correctness, so it is not an error."""
    try:
        entry.parent.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=entry.parent, suffix=".tmp", delete=False) as f:
            np.save(f, array, allow_pickle=False)
        os.replace(f.name, entry)
    except OSError:
        pass


def file_sha256(path: str | os.PathLike) -> str:
    """The SHA-256 of a file's bytes, read in chunks (never the whole file in memory)."""
    with open(path, "rb") as file:
        return hashlib.file_digest(file, "sha256").hexdigest()


def mark_used(path: Path) -> None:
    """Bump the modification time: pruning removes what nobody has used for a while."""
    with contextlib.suppress(OSError):
        os.utime(path)


def prune_cache(max_age_s: float, root: str | os.PathLike | None = None) -> int:
    """Remove cache entries (decoded arrays, unpacked zips) unused for `max_age_s` seconds.

    On a hosted instance every visitor's uploads land in one shared cache; without
    pruning it only grows. Returns how many entries were removed.
    """
    root = Path(root) if root else default_cache_dir()
    cutoff = time.time() - max_age_s
    removed = 0
    for kind in ("arrays", "zips"):
        folder = root / kind
        if not folder.is_dir():
            continue
        for entry in folder.iterdir():
            try:
                if entry.stat().st_mtime >= cutoff:
                    continue
                if entry.is_dir():
                    shutil.rmtree(entry)
                else:
                    entry.unlink()
                removed += 1
            except OSError:
                continue  # in use or already gone: try again next time
    return removed


def thumbnail(source: ImageSource, size: int = 192, *, square: bool = True) -> bytes:
    """A small upright JPEG of a photo (EXIF orientation applied), centre-cropped square.

    Raises ImageReadError when the photo cannot be read.
    """
    image = open_image(source, draft_size=size)
    if square:
        image = ImageOps.fit(image, (size, size), Image.Resampling.BILINEAR)
    else:
        image.thumbnail((size, size), Image.Resampling.BILINEAR)
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=85)
    return buffer.getvalue()


def augment_preview(
    image: ImageSource, augmentation, n: int = 6, seed: int = 0, size: int = 192
) -> list[np.ndarray]:
    """`n` augmented versions of one photo, as uint8 arrays, exactly as training sees them.

    `augmentation` is a `bikelib.models.Augmentation`; its Keras layers are applied in
    training mode to `n` copies of the photo. Keras is imported here, not at module load.
    """
    picture = decode(image, size).astype("float32")
    batch = np.repeat(picture[None], n, axis=0)
    for layer in augmentation.layers(seed):
        batch = layer(batch, training=True)
    return [np.clip(np.asarray(b), 0, 255).astype(np.uint8) for b in batch]
