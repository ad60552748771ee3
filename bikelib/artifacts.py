"""Saved models: a directory with `model.keras` and `model.json` that describes it.

`model.json` carries what serving must never guess: class names in output order, the
image size, the architecture and config, the training history, the metrics, the
dataset fingerprint, when it was made and with which library versions, and how many
of the user's not-mine photos it was trained against and calibrated with. A save is
atomic: it is written beside the target and renamed into place, so a crash mid-save
leaves the previous model intact.

The plain results a loaded model answers with (`Prediction`, `ListingPrediction`,
`ClosestPhoto`) live here too; loading a model and predicting with it is
`bikelib.classifier`'s.
"""

from __future__ import annotations

import json
import logging
import os
import platform
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import numpy as np

from . import openset
from .errors import ImageReadError, ModelLoadError, ModelNotFoundError
from .images import thumbnail
from .stamps import parsed_json

log = logging.getLogger(__name__)

FORMAT = "bike-recognition-model/1"
MODEL_FILE = "model.keras"
META_FILE = "model.json"
REFERENCE_FILE = "reference.npz"  # training-photo features for "is this one of mine?"
# Small JPEGs of those training photos, in the same order: which photo a match was to.
REFERENCE_PHOTOS_FILE = "reference-photos.npz"
REFERENCE_THUMB = 128  # pixels, the longer side (80 photos: about 0.3 MB)


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
        "openset": result.reference.describe() if result.reference else None,
        # The user's photos of other people's bikes: trained against, scored in calibration.
        "not_mine": dict(result.not_mine),
        "dataset_fingerprint": result.dataset_fingerprint,
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "versions": _versions(),
    }


def save_model(
    result, directory: str | os.PathLike, *, name: str | None = None, dataset: str | None = None
) -> Path:
    """Write a trained model and its description to `directory`, atomically.

    `dataset`: a few words on what it was trained on, shown beside the model in the app.
    """
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{directory.name}-{os.getpid()}-"  # sessions.sweep_saves finds dead ones
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=prefix))
    try:
        result.model.save(staging / MODEL_FILE)
        if result.reference is not None:
            whitening, plda = result.reference.whitening, result.reference.plda
            # The map its features were made with (a query must be made the same way),
            # and the PLDA its scores are made with.
            extra = {}
            if whitening is not None:
                extra |= {"whitening_mean": whitening.mean, "whitening_matrix": whitening.matrix}
            if plda is not None:
                extra |= {
                    "plda_mean": plda.mean,
                    "plda_transform": plda.transform,
                    "plda_between": plda.between,
                }
            second = result.reference.second
            if second is not None:  # its network and whitening are the app's: named, not copied
                extra |= {
                    "second_features": second.features.astype(np.float32),
                    "second_plda_mean": second.plda.mean,
                    "second_plda_transform": second.plda.transform,
                    "second_plda_between": second.plda.between,
                }
            np.savez(
                staging / REFERENCE_FILE,
                features=result.reference.features.astype(np.float32),
                labels=result.reference.labels.astype(np.int32),
                **extra,
            )
        photos = _reference_photos(result)
        if photos is not None:
            np.savez(staging / REFERENCE_PHOTOS_FILE, **photos)
        meta = {**describe(result, name=name or directory.name), "dataset": dataset}
        (staging / META_FILE).write_text(json.dumps(meta, indent=2) + "\n")
        retired = directory.with_name(f".{directory.name}-old-{os.getpid()}")
        if directory.exists():  # swap with renames; the old copy is removed only afterwards
            os.replace(directory, retired)
        os.replace(staging, directory)
        shutil.rmtree(retired, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory


def _reference_photos(result) -> dict[str, np.ndarray] | None:
    """Thumbnails of the reference photos, as arrays np.load reads without pickle: the
    JPEGs end to end (`jpegs`), where each starts (`offsets`, one more at the end) and
    the file names (`names`). None when there is no reference, or when any photo can no
    longer be read: the thumbnails must line up with the features one for one."""
    paths = result.reference_paths
    if result.reference is None or len(paths) != len(result.reference.labels):
        return None
    try:
        jpegs = [thumbnail(path, REFERENCE_THUMB, square=False) for path in paths]
    except (ImageReadError, OSError) as error:
        log.warning("reference photos not saved: %s", error)
        return None
    return {
        "jpegs": np.frombuffer(b"".join(jpegs), dtype=np.uint8),
        "offsets": np.cumsum([0, *map(len, jpegs)]).astype(np.int64),
        "names": np.array([Path(path).name for path in paths]),
    }


def read_meta(directory: str | os.PathLike) -> dict:
    """model.json of a saved model, checked; ModelLoadError says what is wrong."""
    directory = Path(directory)
    if not directory.is_dir():
        raise ModelNotFoundError(f"No saved model at {directory}")
    missing = [f for f in (MODEL_FILE, META_FILE) if not (directory / f).is_file()]
    if missing:
        raise ModelLoadError(f"{directory} is not a complete model: {', '.join(missing)} missing")
    try:
        meta = parsed_json(directory / META_FILE)  # parsed once per version of the file
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
    """One photo's result: the verdict first, then the closest known bike and every class's.

    `label` is always the closest known bike (the best of `matches` where there are
    any, else the most probable); `verdict` says whether the photo shows it (`"bike"`),
    another bicycle (`"not_mine"`) or no bicycle at all (`"no_bicycle"`).
    """

    label: str
    confidence: float  # the network's probability of `label`
    probabilities: dict[str, float]
    verdict: str = openset.BIKE
    score: float = float("nan")  # higher: more likely one of the known bikes
    threshold: float = float("nan")
    sentence: str = ""
    bicycle: float | None = None  # the bicycle gate's probability, when it ran
    # Each known bike's match (the score against that bike's photos alone): what a
    # listing of several photos pools. Empty for a model saved without a reference.
    matches: dict[str, float] = field(default_factory=dict)

    @property
    def known(self) -> bool:
        return self.verdict == openset.BIKE

    def top(self, k: int = 3) -> list[tuple[str, float]]:
        return sorted(self.probabilities.items(), key=lambda item: -item[1])[:k]

    def decided(self, threshold: float, gate_threshold: float) -> Prediction:
        """The same photo judged at another threshold (the Classify page's slider)."""
        v = openset.decide(
            self.label, self.score, threshold, self.bicycle, gate_threshold, self.matched
        )
        return replace(self, verdict=v.verdict, threshold=threshold, sentence=v.sentence)

    @property
    def matched(self) -> str | None:
        """The bike whose photos `score` is the match with: the closest photo's bike for a
        plain prediction, the bike asked about for a scan's. None without matches."""
        if not self.matches:
            return None
        return min(self.matches, key=lambda bike: abs(self.matches[bike] - self.score))

    def to_dict(self) -> dict:
        return {
            "label": self.label,
            "confidence": self.confidence,
            "verdict": self.verdict,
            "known": self.known,
            "score": self.score,
            "threshold": self.threshold,
            "bicycle": self.bicycle,
            "sentence": self.sentence,
            "probabilities": self.probabilities,
            "matches": self.matches,
        }


@dataclass(frozen=True)
class ClosestPhoto:
    """The owner's training photo that a photo matched best: the nearest-photo score's
    own explanation ("this looks most like your photo X")."""

    jpeg: bytes  # a small JPEG of the training photo
    name: str  # its file name
    bike: str
    similarity: float  # cosine, of the features: 1 for the very photo


@dataclass(frozen=True)
class ListingPrediction:
    """Several photos of one bike (one listing) judged together: which known bike they
    match best on average, and the verdict for that mean at the threshold.

    Only the photos that show a bicycle count (a receipt or a map in a listing does not
    drag its mean down); with none, the verdict is "no bicycle". The mean keeps the
    meaning of a threshold set on single photos (measured: bikelib.openset.POOL).
    """

    label: str
    verdict: str
    score: float  # mean match of the counted photos to `label`'s photos
    threshold: float
    photos: int  # the photos that counted: those showing a bicycle
    sentence: str

    @property
    def known(self) -> bool:
        return self.verdict == openset.BIKE

    def to_dict(self) -> dict:
        return {**asdict(self), "known": self.known}


def list_models(*roots: str | os.PathLike) -> list[dict]:
    """Every valid saved model under the given folders, newest first (meta + path)."""
    found = []
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for meta_file in root.glob(f"[!.]*/{META_FILE}"):  # .name-*: a save under way
            try:
                meta = read_meta(meta_file.parent)
            except ModelLoadError:
                continue  # half-written or foreign folders are not offered
            found.append({**meta, "path": str(meta_file.parent)})
    return sorted(found, key=lambda m: m.get("created", ""), reverse=True)
