"""Datasets of bike photos: finding them on disk or in a zip, splitting, loading, summarising.

Two layouts are understood, as a teacher or a phone export would produce them:

    DATA/<class>/*.jpg                                  (split here, stratified and seeded)
    DATA/train/<class>/*  +  DATA/validation/<class>/*  (the 2018 assignment; used as given)

either as a folder or as a `.zip` (with or without one top-level folder). Class names
are the folder names, sorted. A folder named `not-mine` (or `not_mine`, `notmine`,
`other`, `others`, `unknown`, any case) is not a bike: it holds photos of other people's
bikes, the "unknown" class Teachable Machine users are told to add, and becomes the
dataset's `not_mine_train` / `not_mine_validation` photos (split like a bike, with the
same seed), which training uses as negatives and calibration as a check. OS junk
(`.DS_Store`, `__MACOSX/`, `._*`, `Thumbs.db`) is ignored; any other file that is not
a readable image is skipped and reported by name. Zips are checked and unpacked by
`archives.py`.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .archives import (
    ZipLimits,
    extract_zip,
    is_junk,
)
from .errors import DatasetError, ImageReadError
from .images import IMAGE_SUFFIXES, DecodeCache, image_size

TRAIN_DIR_NAMES = ("train", "training")
VALIDATION_DIR_NAMES = ("validation", "val", "valid", "test")
# Folder names of the "not mine" group (compared in lower case); never a bike's name.
NOT_MINE_NAMES = ("not-mine", "not_mine", "notmine", "other", "others", "unknown")
NOT_MINE_FOLDER = NOT_MINE_NAMES[0]  # what the app writes
NOT_MINE_LABEL = -1  # the label of a not-mine Sample: none of the known bikes


def is_not_mine(name: str) -> bool:
    """Whether a class folder name means "photos of other people's bikes"."""
    return " ".join(name.split()).lower() in NOT_MINE_NAMES


@dataclass(frozen=True)
class Sample:
    """One labelled photo: its path and the index of its class in `Dataset.classes`."""

    path: Path
    label: int


@dataclass(frozen=True)
class Skipped:
    """A file left out of the dataset, and why."""

    path: Path
    reason: str


@dataclass(frozen=True)
class Dataset:
    """Labelled photos split into training and validation, plus what was skipped."""

    root: Path
    classes: tuple[str, ...]
    train: tuple[Sample, ...]
    validation: tuple[Sample, ...]
    skipped: tuple[Skipped, ...] = ()
    given_split: bool = False  # True when the folders said which photo is for validation
    image_sizes: dict[Path, tuple[int, int]] = field(default_factory=dict, compare=False)
    # Photos of other people's bikes (the not-mine folder), label NOT_MINE_LABEL.
    not_mine_train: tuple[Sample, ...] = ()
    not_mine_validation: tuple[Sample, ...] = ()

    @property
    def samples(self) -> tuple[Sample, ...]:
        """The known bikes' photos (never the not-mine ones)."""
        return self.train + self.validation

    @property
    def not_mine(self) -> tuple[Sample, ...]:
        return self.not_mine_train + self.not_mine_validation


def _subdirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not is_junk(Path(p.name)))


def _find_child(directory: Path, names: Iterable[str]) -> Path | None:
    by_lower = {p.name.lower(): p for p in _subdirs(directory)}
    return next((by_lower[name] for name in names if name in by_lower), None)


def _unwrap_single_folder(root: Path) -> Path:
    """A zip of a folder holds one folder; the data is inside it."""
    while True:
        children = [p for p in root.iterdir() if not is_junk(Path(p.name))]
        if len(children) == 1 and children[0].is_dir():
            if _find_child(root, TRAIN_DIR_NAMES):  # `train/` alone is a layout, not a wrapper
                return root
            root = children[0]
        else:
            return root


def _scan_classes(directory: Path) -> dict[str, list[Path]]:
    """Class folder name -> its files (recursively), junk left out."""
    classes: dict[str, list[Path]] = {}
    for class_dir in _subdirs(directory):
        files = sorted(
            p for p in class_dir.rglob("*") if p.is_file() and not is_junk(p.relative_to(directory))
        )
        classes[class_dir.name] = files
    return classes


def _probe(path: Path) -> tuple[int, int] | str:
    """The pixel size of an image file from its header, or the reason it is unusable."""
    if path.suffix.lower() not in IMAGE_SUFFIXES:
        return f"not a supported image type ({path.suffix or 'no extension'})"
    try:
        return image_size(path)
    except ImageReadError as error:
        return getattr(error, "reason", str(error))


def _find_photos(
    source: Path, zip_limits: ZipLimits | None
) -> tuple[Path, dict[str, dict[str, list[Path]]], bool]:
    """The dataset's root folder, its files by part and class, and whether split is given."""
    if not source.exists():
        raise DatasetError(f"Dataset not found: {source}")
    if source.is_file():
        if source.suffix.lower() != ".zip":
            raise DatasetError(f"{source.name} is neither a folder nor a .zip file")
        root = extract_zip(source, limits=zip_limits)
    else:
        root = source
    root = _unwrap_single_folder(root)

    train_dir = _find_child(root, TRAIN_DIR_NAMES)
    validation_dir = _find_child(root, VALIDATION_DIR_NAMES)
    given_split = train_dir is not None and validation_dir is not None
    if given_split:
        parts = {
            "train": _scan_classes(train_dir),
            "validation": _scan_classes(validation_dir),
        }
    else:
        parts = {"all": _scan_classes(train_dir or root)}
    return root, parts, given_split


def open_dataset(
    source: str | os.PathLike,
    *,
    val_fraction: float = 0.2,
    seed: int = 0,
    zip_limits: ZipLimits | None = None,
) -> Dataset:
    """Find the classes and photos under a folder or zip, and split them.

    A given train/validation layout is used as is; otherwise each class is split on its
    own (stratified) with `val_fraction` of its photos, chosen by `seed`, for validation.
    A zip is held to `zip_limits` (see `extract_zip`). Every failure is a DatasetError.
    """
    source = Path(source)
    try:
        root, parts, given_split = _find_photos(source, zip_limits)
    except OSError as error:  # an unreadable folder, a vanished file, ...
        raise DatasetError(
            f"Cannot read the dataset {source.name or source}: {error.strerror or error}"
        ) from error

    skipped: list[Skipped] = []
    sizes: dict[Path, tuple[int, int]] = {}
    usable: dict[str, dict[str, list[Path]]] = {}
    for part, classes in parts.items():
        for name, files in classes.items():
            for path in files:
                probed = _probe(path)
                if isinstance(probed, str):
                    skipped.append(Skipped(path, probed))
                else:
                    sizes[path] = probed
                    usable.setdefault(part, {}).setdefault(name, []).append(path)

    names = {name for classes in usable.values() for name in classes}
    class_names = tuple(sorted(name for name in names if not is_not_mine(name)))
    if len(class_names) < 2:
        found = (
            f"found {len(class_names)}: {', '.join(class_names)}" if class_names else "found none"
        )
        aside = "; not-mine photos are not a bike" if names - set(class_names) else ""
        raise DatasetError(
            f"A dataset needs at least two class folders with photos in {source} ({found}{aside})"
        )
    label = {name: index for index, name in enumerate(class_names)}

    def samples(part: str, mine: bool = True) -> list[Sample]:
        return [
            Sample(path, label[name] if mine else NOT_MINE_LABEL)
            for name, paths in sorted(usable.get(part, {}).items())
            if is_not_mine(name) != mine
            for path in paths
        ]

    if given_split:
        train, validation = samples("train"), samples("validation")
        others = samples("train", mine=False), samples("validation", mine=False)
    else:
        train, validation = stratified_split(samples("all"), val_fraction, seed)
        # Split on its own with the same seed, so adding not-mine photos moves no bike photo.
        others = stratified_split(samples("all", mine=False), val_fraction, seed)
    return Dataset(
        root=root,
        classes=class_names,
        train=tuple(train),
        validation=tuple(validation),
        skipped=tuple(skipped),
        given_split=given_split,
        image_sizes=sizes,
        not_mine_train=tuple(others[0]),
        not_mine_validation=tuple(others[1]),
    )


def _check_fraction(val_fraction: float) -> None:
    if not 0.0 <= val_fraction < 1.0:
        raise DatasetError(f"The validation fraction must be in [0, 1), not {val_fraction}")


def stratified_split(
    samples: Iterable[Sample], val_fraction: float, seed: int
) -> tuple[list[Sample], list[Sample]]:
    """Per class, a seeded shuffle; the first round(n * fraction) go to validation.

    Every class with two or more photos keeps at least one on each side when the
    fraction is above zero, so validation accuracy covers every bike.
    """
    _check_fraction(val_fraction)
    rng = np.random.default_rng(seed)
    by_label: dict[int, list[Sample]] = {}
    for sample in samples:
        by_label.setdefault(sample.label, []).append(sample)
    train: list[Sample] = []
    validation: list[Sample] = []
    for label in sorted(by_label):
        group = sorted(by_label[label], key=lambda s: s.path)
        order = rng.permutation(len(group))
        n_val = round(len(group) * val_fraction)
        if val_fraction > 0 and len(group) >= 2:
            n_val = min(max(n_val, 1), len(group) - 1)
        validation += [group[i] for i in sorted(order[:n_val])]
        train += [group[i] for i in sorted(order[n_val:])]
    return train, validation


def kfold(dataset: Dataset, folds: int = 5, seed: int = 0) -> list[Dataset]:
    """Stratified k-fold over all photos: each photo is in exactly one validation fold."""
    if folds < 2:
        raise DatasetError(f"Cross-validation needs at least 2 folds, not {folds}")
    rng = np.random.default_rng(seed)
    fold_of: dict[Path, int] = {}
    by_label: dict[int, list[Sample]] = {}
    for sample in dataset.samples:
        by_label.setdefault(sample.label, []).append(sample)
    for label, group in sorted(by_label.items()):
        if len(group) < folds:
            raise DatasetError(
                f"Class '{dataset.classes[label]}' has {len(group)} photos, "
                f"fewer than the {folds} folds asked for"
            )
        group = sorted(group, key=lambda s: s.path)
        for rank, index in enumerate(rng.permutation(len(group))):
            fold_of[group[index].path] = rank % folds
    return [
        replace(
            dataset,
            train=tuple(s for s in dataset.samples if fold_of[s.path] != fold),
            validation=tuple(s for s in dataset.samples if fold_of[s.path] == fold),
            given_split=False,
        )
        for fold in range(folds)
    ]


@dataclass(frozen=True)
class LoadedSplit:
    """Decoded photos of one split, ready for Keras, and the ones that failed to decode."""

    images: np.ndarray  # (n, size, size, 3) uint8
    labels: np.ndarray  # (n,) int32
    paths: tuple[Path, ...]
    failed: tuple[Skipped, ...]
    digests: tuple[str, ...] = ()  # SHA-256 of each loaded photo's bytes, as `paths`


def load_split(
    samples: Iterable[Sample],
    size: int,
    *,
    cache: DecodeCache | None = None,
    on_progress: Callable[[int, int], None] | None = None,
) -> LoadedSplit:
    """Decode samples to arrays (through the disk cache); unreadable ones are reported."""
    cache = cache or DecodeCache()
    samples = list(samples)
    images, labels, paths, failed, digests = [], [], [], [], []
    for done, sample in enumerate(samples, start=1):
        try:
            array, digest = cache.load_with_digest(sample.path, size)
            images.append(array)
            digests.append(digest)
            labels.append(sample.label)
            paths.append(sample.path)
        except ImageReadError as error:
            failed.append(Skipped(sample.path, str(error)))
        if on_progress:
            on_progress(done, len(samples))
    stacked = np.stack(images) if images else np.zeros((0, size, size, 3), np.uint8)
    return LoadedSplit(
        stacked, np.asarray(labels, np.int32), tuple(paths), tuple(failed), tuple(digests)
    )


def fingerprint(
    classes: Iterable[str], train: LoadedSplit, validation: LoadedSplit, *not_mine: LoadedSplit
) -> str:
    """A short hash of the class names, the split and every photo's bytes.

    Built from the digests `load_split` already took, so no photo is read twice. The
    not-mine photos (train, validation) count too; without any, the hash is as before.
    """
    digest = hashlib.sha256("\n".join(classes).encode())
    parts = [("train", train), ("validation", validation)]
    parts += [(f"not-mine-{i}", split) for i, split in enumerate(not_mine) if len(split.paths)]
    for part, split in parts:
        for label, content in sorted(zip(split.labels.tolist(), split.digests, strict=True)):
            digest.update(f"{part}:{label}:{content}".encode())
    return digest.hexdigest()[:16]


def summarize(dataset: Dataset) -> dict:
    """The dataset as plain data: classes, counts per class and split, sizes, skipped files."""
    per_class = []
    for index, name in enumerate(dataset.classes):
        n_train = sum(s.label == index for s in dataset.train)
        n_val = sum(s.label == index for s in dataset.validation)
        per_class.append(
            {
                "class": name,
                "train": n_train,
                "validation": n_val,
                "total": n_train + n_val,
            }
        )
    sizes = list(dataset.image_sizes.values())
    widths = [w for w, _ in sizes]
    heights = [h for _, h in sizes]
    return {
        "root": str(dataset.root),
        "classes": list(dataset.classes),
        "given_split": dataset.given_split,
        "n_train": len(dataset.train),
        "n_validation": len(dataset.validation),
        "per_class": per_class,
        "not_mine": {
            "train": len(dataset.not_mine_train),
            "validation": len(dataset.not_mine_validation),
        },
        "image_sizes": {
            "min": [min(widths), min(heights)] if sizes else None,
            "max": [max(widths), max(heights)] if sizes else None,
            "distinct": len(set(sizes)),
        },
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in dataset.skipped],
    }
