"""Decoding photos into RGB arrays: formats, orientation, reduced-size decoding, disk cache.

Phone photos are 12 MP JPEGs, and decoding them is the slowest step of a training run
on a small machine. Two things make it cheap: JPEG draft mode (libjpeg scales by 1/2,
1/4 or 1/8 while decoding, so a 4032x3024 photo is never fully expanded) and a disk
cache of decoded arrays keyed by the file's content and the target size, so a second
run, or a second visitor with the same photos, decodes nothing.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import BinaryIO

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .errors import ImageReadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".heic", ".heif"})
# Bump when decoding changes, so cached arrays from an older decoder are not reused.
_DECODER_VERSION = 2
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


def open_image(source: ImageSource, *, draft_size: int | None = None) -> Image.Image:
    """Open a photo as an upright RGB image.

    `draft_size` lets JPEG decoding shrink by a power of two while keeping both sides
    at least that large, which is what a model of that input size needs anyway.
    Raises ImageReadError with the reason when the file is not a readable image.
    """
    if isinstance(source, Image.Image):
        return to_rgb(ImageOps.exif_transpose(source))
    _register_heif()
    name = _source_name(source)
    try:
        stream = io.BytesIO(source) if isinstance(source, bytes) else source
        with Image.open(stream) as image:
            image.seek(0)  # GIF and other animations: the first frame
            if draft_size and image.format == "JPEG":
                image.draft("RGB", (draft_size, draft_size))
            image.load()
            return to_rgb(ImageOps.exif_transpose(image))
    except FileNotFoundError as error:
        raise ImageReadError(f"{name}: file not found") from error
    except UnidentifiedImageError as error:
        raise ImageReadError(f"{name}: not an image Pillow can read") from error
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        raise ImageReadError(f"{name}: {error}") from error


def to_array(image: Image.Image, size: int) -> np.ndarray:
    """Squash an RGB image to size x size (the whole photo kept) as uint8 HWC.

    The one resizing filter of the project: antialiased bilinear, the same filter as
    the model's own `Resizing(antialias=True)` layer, so a raw photo given to a saved
    model directly gets (within rounding) the same answer as one decoded here. Pillow
    does the work because it is fast, and because decoded arrays are cached at this size.
    """
    resized = image.resize((size, size), Image.Resampling.BILINEAR)
    return np.asarray(resized, dtype=np.uint8)


def decode(source: ImageSource, size: int, *, draft: bool = True) -> np.ndarray:
    """Decode one photo to a size x size x 3 uint8 array (no cache).

    JPEG draft mode keeps twice the target size: enough for the resize above to match
    the model's own resizing of the full photo, at a fraction of a full decode's cost.
    """
    return to_array(open_image(source, draft_size=2 * size if draft else None), size)


def default_cache_dir() -> Path:
    """Where decoded arrays are kept: $BIKELIB_CACHE_DIR, else ~/.cache/bike-recognition."""
    configured = os.environ.get("BIKELIB_CACHE_DIR")
    if configured:
        return Path(configured)
    return Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "bike-recognition"


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
        """The array and the SHA-256 of the file's bytes (read once, for both uses)."""
        try:
            content = Path(path).read_bytes()
        except OSError as error:
            raise ImageReadError(f"{os.fspath(path)}: {error.strerror or error}") from error
        digest = hashlib.sha256(content).hexdigest()
        entry = self.directory / f"{digest[:32]}-{size}-v{_DECODER_VERSION}.npy"
        try:
            array = np.load(entry, allow_pickle=False)
            if array.shape == (size, size, 3) and array.dtype == np.uint8:
                mark_used(entry)
                return array, digest
        except (OSError, ValueError):
            pass  # missing or damaged entry: decode again below
        stream = io.BytesIO(content)
        stream.name = os.fspath(path)
        array = decode(stream, size)
        self._store(entry, array)
        return array, digest

    def _store(self, entry: Path, array: np.ndarray) -> None:
        try:
            entry.parent.mkdir(parents=True, exist_ok=True)
            with tempfile.NamedTemporaryFile(dir=entry.parent, suffix=".tmp", delete=False) as f:
                np.save(f, array, allow_pickle=False)
            os.replace(f.name, entry)
        except OSError:
            pass  # a read-only or full disk only costs speed, never correctness


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
