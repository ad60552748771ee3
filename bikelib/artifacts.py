"""Saved models: a directory with `model.keras` and `model.json` that describes it.

`model.json` carries what serving must never guess: class names in output order, the
image size, the architecture and config, the training history, the metrics, the
dataset fingerprint, when it was made and with which library versions. A save is
atomic: it is written beside the target and renamed into place, so a crash mid-save
leaves the previous model intact.
"""

from __future__ import annotations

import io
import json
import os
import platform
import shutil
import tempfile
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .errors import ImageReadError, ModelLoadError, ModelNotFoundError
from .images import ImageSource, decode

FORMAT = "bike-recognition-model/1"
MODEL_FILE = "model.keras"
META_FILE = "model.json"


def _versions() -> dict[str, str]:
    import keras
    import PIL

    versions = {
        "python": platform.python_version(),
        "keras": keras.__version__,
        "numpy": np.__version__,
        "pillow": PIL.__version__,
    }
    try:
        import tensorflow as tf

        versions["tensorflow"] = tf.__version__
    except ImportError:  # another Keras backend
        pass
    return versions


def describe(result, *, name: str | None = None) -> dict:
    """The model.json content for a TrainResult."""
    return {
        "format": FORMAT,
        "name": name or f"{result.config.arch}-{time.strftime('%Y%m%d-%H%M%S')}",
        "classes": list(result.classes),
        "image_size": result.config.image_size,
        "architecture": result.config.arch,
        "config": result.config.to_dict(),
        "history": result.history,
        "metrics": {
            **result.metrics,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "stopped_early": result.stopped,
            "train_seconds": round(result.seconds, 2),
        },
        "evaluation": result.evaluation.to_dict() if result.evaluation else None,
        "dataset_fingerprint": result.dataset_fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
    }


def save_model(result, directory: str | os.PathLike, *, name: str | None = None) -> Path:
    """Write a trained model and its description to `directory`, atomically."""
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}-"))
    try:
        result.model.save(staging / MODEL_FILE)
        meta = describe(result, name=name or directory.name)
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        if directory.exists():
            # Swap old and new with renames; the old copy is removed only afterwards.
            retired = directory.with_name(f".{directory.name}-old-{os.getpid()}")
            os.replace(directory, retired)
            os.replace(staging, directory)
            shutil.rmtree(retired, ignore_errors=True)
        else:
            os.replace(staging, directory)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def read_meta(directory: str | os.PathLike) -> dict:
    """model.json of a saved model, checked; ModelLoadError says what is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelNotFoundError(f"No saved model at {directory}")
    missing = [f for f in (MODEL_FILE, META_FILE) if not (directory / f).is_file()]
    if missing:
        raise ModelLoadError(f"{directory} is not a complete model: {', '.join(missing)} missing")
    try:
        meta = json.loads((directory / META_FILE).read_text())
    except (OSError, ValueError) as error:
        raise ModelLoadError(f"{directory / META_FILE} is not valid JSON: {error}") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ModelLoadError(f"{directory / META_FILE} is not a {FORMAT} description")
    for key in ("classes", "image_size", "architecture"):
        if key not in meta:
            raise ModelLoadError(f"{directory / META_FILE} lacks '{key}'")
    return meta


@dataclass(frozen=True)
class Prediction:
    """One photo's result: the best class, its probability, and every class's."""

    label: str
    confidence: float
    probabilities: dict[str, float]

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]


class Classifier:
    """A loaded model: decode photos exactly as in training and predict their bike."""

    def __init__(self, directory: str | os.PathLike) -> None:
        import keras

        self.directory = Path(directory)
        self.meta = read_meta(self.directory)
        self.classes: list[str] = list(self.meta["classes"])
        self.image_size: int = int(self.meta["image_size"])
        try:
            self.model = keras.saving.load_model(self.directory / MODEL_FILE, compile=False)
        except Exception as error:  # any load failure means a broken or foreign file
            raise ModelLoadError(
                f"{self.directory / MODEL_FILE} could not be loaded: {error}"
            ) from error
        outputs = self.model.output_shape[-1]
        if outputs != len(self.classes):
            raise ModelLoadError(
                f"{self.directory} has {outputs} outputs but names {len(self.classes)} classes"
            )

    @property
    def name(self) -> str:
        return self.meta.get("name", self.directory.name)

    def predict_arrays(self, images: np.ndarray) -> np.ndarray:
        """Probabilities (n, classes) for uint8 arrays of shape (n, size, size, 3)."""
        if len(images) <= 32:
            # A direct call skips predict()'s per-call dataset set-up (~100 ms): what
            # Keras recommends for small batches, and what one uploaded photo is.
            return np.asarray(self.model(np.asarray(images), training=False))
        return np.asarray(self.model.predict(images, batch_size=32, verbose=0))

    def decode(self, source: ImageSource) -> np.ndarray:
        return decode(source, self.image_size)

    def predict(self, source: ImageSource) -> Prediction:
        """The prediction for one photo (path, bytes, file object or PIL image)."""
        return self._prediction(self.predict_arrays(self.decode(source)[None])[0])

    def predict_many(self, sources) -> list[Prediction | ImageReadError]:
        """Predictions for many photos in one batch; unreadable ones give their error."""
        decoded: list[np.ndarray | ImageReadError] = []
        for source in sources:
            try:
                decoded.append(self.decode(source))
            except ImageReadError as error:
                decoded.append(error)
        good = [d for d in decoded if isinstance(d, np.ndarray)]
        probabilities = iter(self.predict_arrays(np.stack(good)) if good else [])
        return [
            self._prediction(next(probabilities)) if isinstance(d, np.ndarray) else d
            for d in decoded
        ]

    def _prediction(self, probabilities: np.ndarray) -> Prediction:
        best = int(np.argmax(probabilities))
        return Prediction(
            label=self.classes[best],
            confidence=float(probabilities[best]),
            probabilities={c: float(p) for c, p in zip(self.classes, probabilities, strict=True)},
        )


def load_model(directory: str | os.PathLike) -> Classifier:
    """Load a saved model directory for prediction."""
    return Classifier(directory)


def list_models(*roots: str | os.PathLike) -> list[dict]:
    """Every valid saved model under the given folders, newest first (meta + path)."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for meta_file in root.glob(f"*/{META_FILE}"):
            try:
                meta = read_meta(meta_file.parent)
            except ModelLoadError:
                continue  # half-written or foreign folders are not offered
            found.append({**meta, "path": str(meta_file.parent)})
    return sorted(found, key=lambda m: m.get("created", ""), reverse=True)


def export_zip(directory: str | os.PathLike) -> bytes:
    """The model directory as one zip (model.keras + model.json) for download."""
    directory = Path(directory)
    read_meta(directory)
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        for file in (MODEL_FILE, META_FILE):
            archive.write(directory / file, f"{directory.name}/{file}")
    return buffer.getvalue()
