"""Models that travel: open a model zip that the app wrote, safely; export for phones.

`export_zip` packs a saved model for download ("Download this model"); `export_tflite`
writes a TensorFlow Lite (LiteRT) file for phones and the web, with a JSON file of the
class names and image size beside it.

A visitor may upload any file claiming to be a model. Before anything is written, the
zip is checked: its size, that it holds exactly a saved model's files (in one folder or
at its root), and that `model.json` describes a model of this app. The Keras file is
then loaded with `safe_mode=True` (no code inside it runs: a `Lambda` layer is refused)
in a staging folder, and only a model that loads is moved into place. Every refusal is a
`ModelLoadError` with one sentence.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import BinaryIO

from .artifacts import (
    FORMAT,
    META_FILE,
    MODEL_FILE,
    REFERENCE_FILE,
    REFERENCE_PHOTOS_FILE,
    read_meta,
)
from .errors import BikeLibError, ModelLoadError

MAX_MODEL_ZIP_BYTES = 100_000_000  # the default model is ~1 MB, the seed CNN ~12 MB
MODEL_FILES = (MODEL_FILE, META_FILE, REFERENCE_FILE, REFERENCE_PHOTOS_FILE)
_NOT_A_MODEL = "This file is not a model saved by Bike Recognition"


def _members(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
    """The model files by name, wherever the zip keeps them (root or one folder)."""
    found: dict[str, zipfile.ZipInfo] = {}
    folders = set()
    for info in archive.infolist():
        path = PurePosixPath(info.filename)
        if info.is_dir() or path.parts[:1] == ("__MACOSX",) or path.name.startswith("._"):
            continue
        if path.is_absolute() or ".." in path.parts or len(path.parts) > 2:
            raise ModelLoadError(f"{_NOT_A_MODEL}: it holds {info.filename!r}.")
        if path.name not in MODEL_FILES:
            raise ModelLoadError(f"{_NOT_A_MODEL}: it holds {path.name!r}.")
        if path.name in found:
            raise ModelLoadError(f"{_NOT_A_MODEL}: it holds {path.name} twice.")
        if info.flag_bits & 0x1:
            raise ModelLoadError("The model zip is encrypted: download it from the app again.")
        folders.add(path.parent)
        found[path.name] = info
    if len(folders) > 1:
        raise ModelLoadError(f"{_NOT_A_MODEL}: its files are in different folders.")
    missing = [name for name in (MODEL_FILE, META_FILE) if name not in found]
    if missing:
        raise ModelLoadError(f"{_NOT_A_MODEL}: {' and '.join(missing)} missing.")
    total = sum(info.file_size for info in found.values())
    if total > MAX_MODEL_ZIP_BYTES:
        raise ModelLoadError(
            f"The model is too large ({total / 1e6:.0f} MB unpacked; at most "
            f"{MAX_MODEL_ZIP_BYTES / 1e6:.0f} MB)."
        )
    return found


def _check_meta(raw: bytes) -> dict:
    try:
        meta = json.loads(raw)
    except ValueError as error:
        raise ModelLoadError(f"{_NOT_A_MODEL}: its model.json is not valid JSON.") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{_NOT_A_MODEL}: its model.json is not a {FORMAT} description.")
    classes = meta.get("classes")
    if not (
        isinstance(classes, list)
        and len(classes) >= 2
        and all(isinstance(c, str) and c for c in classes)
        and len(set(classes)) == len(classes)
    ):
        raise ModelLoadError(f"{_NOT_A_MODEL}: its model.json has no valid list of bikes.")
    if not isinstance(meta.get("image_size"), int) or not 32 <= meta["image_size"] <= 512:
        raise ModelLoadError(f"{_NOT_A_MODEL}: its model.json has no valid image size.")
    return meta


def import_zip(source: bytes | str | os.PathLike | BinaryIO, directory: str | os.PathLike) -> Path:
    """Unpack a model zip into `directory` (created; must not exist) after checking it.

    The model is loaded once, in safe mode, before it is put in place, and its classes
    must match its description. Returns `directory`.
    """
    directory = Path(directory)
    if directory.exists():
        raise ModelLoadError(f"A model named {directory.name} exists already.")
    if isinstance(source, bytes):
        source = io.BytesIO(source)
    try:
        with zipfile.ZipFile(source) as archive:
            members = _members(archive)
            meta = _check_meta(archive.read(members[META_FILE]))
            directory.parent.mkdir(parents=True, exist_ok=True)
            staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=".import-"))
            try:
                for name, info in members.items():
                    with archive.open(info) as packed, open(staging / name, "wb") as out:
                        shutil.copyfileobj(packed, out)
                _check_loads(staging, meta)
                os.replace(staging, directory)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise ModelLoadError(f"{_NOT_A_MODEL}: it is not a readable zip ({error}).") from error
    return directory


def _check_loads(staging: Path, meta: dict) -> None:
    """Load the Keras file with no code execution; its output must fit the classes."""
    read_meta(staging)
    import keras

    try:
        model = keras.saving.load_model(staging / MODEL_FILE, compile=False, safe_mode=True)
    except BikeLibError:
        raise
    except Exception as error:  # Keras raises ValueError, TypeError, OSError, ...
        raise ModelLoadError(
            f"{_NOT_A_MODEL}: its model.keras cannot be loaded safely ({type(error).__name__})."
        ) from error
    if tuple(model.output_shape) != (None, len(meta["classes"])):
        raise ModelLoadError(
            f"{_NOT_A_MODEL}: the network gives {model.output_shape[-1]} answers for "
            f"{len(meta['classes'])} bikes."
        )


TFLITE_FILE = "model.tflite"
TFLITE_META_FILE = "model.tflite.json"


def tflite_bytes(directory: str | os.PathLike) -> tuple[bytes, dict]:
    """The saved model as a TensorFlow Lite flatbuffer, and what an app needs beside it.

    Input: float32 RGB pixels 0-255, already resized to `image_size` square
    (as `bikelib.images.decode` does): the Keras model's own resize layer uses an
    anti-aliased kernel that TensorFlow Lite has no built-in op for, so it is left out.
    Output: one probability per class. The graph is traced with `training=False`
    explicitly: Keras 3's random augmentation layers default to acting when called
    without it (`model.export(format="litert")` traces them in).
    """
    import keras
    import tensorflow as tf

    meta = read_meta(directory)
    model = keras.saving.load_model(Path(directory) / MODEL_FILE, compile=False, safe_mode=True)
    body = keras.Model(model.get_layer("resize").output, model.output)
    size = int(meta["image_size"])

    @tf.function(input_signature=[tf.TensorSpec([None, size, size, 3], tf.float32, "image")])
    def serve(image):
        return body(image, training=False)

    converter = tf.lite.TFLiteConverter.from_concrete_functions(
        [serve.get_concrete_function()], body
    )
    blob = converter.convert()
    about = {
        "format": f"{FORMAT}-tflite",
        "name": meta.get("name"),
        "classes": meta["classes"],
        "image_size": size,
        "input": f"float32 [batch, {size}, {size}, 3], RGB 0-255, resized as bikelib decodes",
        "output": "float32 [batch, classes]: probabilities in the order of 'classes'",
        "openset": "not included: the verdict (not one of yours) needs bikelib",
    }
    return bytes(blob), about


def export_tflite(directory: str | os.PathLike, out_dir: str | os.PathLike) -> Path:
    """Write model.tflite and model.tflite.json into `out_dir`; returns the .tflite path."""
    blob, about = tflite_bytes(directory)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / TFLITE_FILE).write_bytes(blob)
    (out_dir / TFLITE_META_FILE).write_text(json.dumps(about, indent=2) + "\n")
    return out_dir / TFLITE_FILE


def tflite_zip(directory: str | os.PathLike) -> bytes:
    """model.tflite and model.tflite.json in one zip, for a download."""
    blob, about = tflite_bytes(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr(TFLITE_FILE, blob)
        archive.writestr(TFLITE_META_FILE, json.dumps(about, indent=2) + "\n")
    return buffer.getvalue()


def export_zip(directory: str | os.PathLike) -> bytes:
    """The model directory as one zip (model.keras + model.json) for download."""
    directory = Path(directory)
    read_meta(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in MODEL_FILES:
            if (directory / file).is_file():
                archive.write(directory / file, f"{directory.name}/{file}")
    return buffer.getvalue()
