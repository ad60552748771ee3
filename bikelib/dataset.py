"""Datasets of bike photos: finding them on disk or in a zip, splitting, loading, summarising.

Two layouts are understood, as a teacher or a phone export would produce them:

    DATA/<class>/*.jpg                                  (split here, stratified and seeded)
    DATA/train/<class>/*  +  DATA/validation/<class>/*  (the 2018 assignment; used as given)

either as a folder or as a `.zip` (with or without one top-level folder). Class names
are the folder names, sorted. OS junk (`.DS_Store`, `__MACOSX/`, `._*`, `Thumbs.db`) is
ignored; any other file that is not a readable image is skipped and reported by name.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

from .errors import ArchiveError, DatasetError, ImageReadError
from .images import (
    IMAGE_SUFFIXES,
    DecodeCache,
    default_cache_dir,
    file_sha256,
    image_size,
    mark_used,
)

TRAIN_DIR_NAMES = ("train", "training")
VALIDATION_DIR_NAMES = ("validation", "val", "valid", "test")
_JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})


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

    @property
    def samples(self) -> tuple[Sample, ...]:
        return self.train + self.validation


def _is_junk(path: Path) -> bool:
    return any(
        part.lower() in _JUNK_NAMES or part.startswith(".")  # also `._*` resource forks
        for part in path.parts
    )


def _subdirs(directory: Path) -> list[Path]:
    return sorted(p for p in directory.iterdir() if p.is_dir() and not _is_junk(Path(p.name)))


def _find_child(directory: Path, names: Iterable[str]) -> Path | None:
    by_lower = {p.name.lower(): p for p in _subdirs(directory)}
    return next((by_lower[name] for name in names if name in by_lower), None)


def _unwrap_single_folder(root: Path) -> Path:
    """A zip of a folder holds one folder; the data is inside it."""
    while True:
        children = [p for p in root.iterdir() if not _is_junk(Path(p.name))]
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
            p
            for p in class_dir.rglob("*")
            if p.is_file() and not _is_junk(p.relative_to(directory))
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


# What a dataset zip may hold, checked from its directory before anything is unpacked.
# A hosted server shares its disk and memory between visitors: a 40 KB "zip bomb" can
# declare terabytes, or a million files. Photos are already compressed (a ratio near 1),
# so a file that would grow more than MAX_ZIP_RATIO times when unpacked is not a photo.
MAX_ZIP_TOTAL_BYTES = 500_000_000  # 500 MB unpacked, all files together
MAX_ZIP_FILES = 5_000  # entries, files and folders together
MAX_ZIP_RATIO = 100  # unpacked size / packed size of any one file
_RATIO_FROM_BYTES = 1_000_000  # tiny files (an empty .DS_Store) may pack better than that
_CENTRAL_ENTRY_BYTES = 4_096  # generous size of one entry in the zip's directory


@dataclass(frozen=True)
class ZipLimits:
    """The limits a dataset zip is held to; a settings object can pass its own."""

    max_total_bytes: int = MAX_ZIP_TOTAL_BYTES
    max_files: int = MAX_ZIP_FILES
    max_ratio: float = MAX_ZIP_RATIO


@dataclass(frozen=True)
class _Member:
    info: zipfile.ZipInfo
    path: Path  # relative, checked: no `..`, not absolute


def _megabytes(n: int) -> str:
    return f"{n / 1_000_000:,.0f} MB" if n >= 1_000_000 else f"{n:,} bytes"


def _member_name(info: zipfile.ZipInfo) -> str:
    """The entry's name as the person who zipped it wrote it.

    Without the UTF-8 flag, zipfile decodes names as IBM code page 437 (the zip
    standard), but many tools write UTF-8 without setting it: try that first.
    """
    name = info.filename
    if not info.flag_bits & 0x800:
        with contextlib.suppress(UnicodeError):  # else really cp437: keep zipfile's reading
            name = name.encode("cp437").decode("utf-8")
    return name


def _count_entries(zip_path: Path, limits: ZipLimits) -> None:
    """Refuse too many entries from the zip's end record, before zipfile lists them all."""
    end_record = getattr(zipfile, "_EndRecData", None)
    if end_record is None:  # a future Python without it: zipfile's own listing is the check
        return
    with open(zip_path, "rb") as file:
        record = end_record(file)
    if record is None:
        raise ArchiveError(f"{zip_path.name} is not a valid zip file")
    entries, directory_bytes = record[zipfile._ECD_ENTRIES_TOTAL], record[zipfile._ECD_SIZE]
    if entries > limits.max_files or directory_bytes > limits.max_files * _CENTRAL_ENTRY_BYTES:
        raise ArchiveError(
            f"{zip_path.name} holds more than {limits.max_files:,} files and folders, "
            "the most a dataset zip may hold"
        )


def _check_members(zip_path: Path, archive: zipfile.ZipFile, limits: ZipLimits) -> list[_Member]:
    """Every entry checked from the zip's directory; nothing is unpacked yet."""
    name = zip_path.name
    infos = archive.infolist()
    if len(infos) > limits.max_files:
        raise ArchiveError(
            f"{name} holds {len(infos):,} files and folders, more than the "
            f"{limits.max_files:,} a dataset zip may hold"
        )
    members: list[_Member] = []
    total = 0
    for info in infos:
        entry = _member_name(info)
        if info.flag_bits & 0x1:
            raise ArchiveError(
                f"{name} is password-protected; zip the photos again without a password"
            )
        parts = entry.replace("\\", "/").split("/")
        if entry.startswith(("/", "\\")) or ".." in parts or (parts[0][1:2] == ":"):
            raise ArchiveError(
                f"{name} contains an unsafe path that points outside its folder: {entry}"
            )
        if stat.S_ISLNK(info.external_attr >> 16):
            raise ArchiveError(
                f"{name} contains a symbolic link ({entry}); zip the photos themselves"
            )
        total += info.file_size
        if total > limits.max_total_bytes:
            raise ArchiveError(
                f"{name} would unpack to more than {_megabytes(limits.max_total_bytes)}, "
                "the most a dataset zip may hold"
            )
        ratio = info.file_size / max(info.compress_size, 1)
        if info.file_size > _RATIO_FROM_BYTES and ratio > limits.max_ratio:
            raise ArchiveError(
                f"{name} looks like a zip bomb: {entry} would grow {ratio:,.0f} times "
                f"when unpacked (photos do not compress more than {limits.max_ratio:g} times)"
            )
        relative = Path(*[part for part in parts if part not in ("", ".")])
        if relative.parts and not _is_junk(relative):  # OS junk is never unpacked
            members.append(_Member(info, relative))
    return members


def _unreadable(zip_name: str, member: _Member, error: BaseException) -> ArchiveError:
    if isinstance(error, NotImplementedError):  # Deflate64, AES, ...: zipfile cannot unpack
        return ArchiveError(
            f"{zip_name} uses a compression method this app cannot unpack "
            f"({member.path}); zip the photos again with the standard method"
        )
    # BadZipFile (bad CRC, bad header), zlib.error, EOFError, a seek before the start...
    return ArchiveError(f"{zip_name} is damaged: {member.path} cannot be unpacked")


def _unwritable(zip_name: str, member: _Member, error: OSError) -> DatasetError:
    return DatasetError(f"Cannot unpack {zip_name}: {error.strerror or error} ({member.path})")


def _unpack(
    zip_path: Path, archive: zipfile.ZipFile, members: list[_Member], staging: Path, limit: int
) -> None:
    """Write the checked entries under `staging`, counting the bytes actually written.

    A failure reading the zip is the zip's fault (ArchiveError); one writing the disk
    (full, a file where a folder must be) is said as the system says it.
    """
    written = 0
    for member in members:
        destination = staging / member.path
        try:
            if member.info.is_dir():
                destination.mkdir(parents=True, exist_ok=True)
                continue
            destination.parent.mkdir(parents=True, exist_ok=True)
            target = open(destination, "wb")  # noqa: SIM115 - closed by the `with` below
        except OSError as error:
            raise _unwritable(zip_path.name, member, error) from error
        with target:
            try:
                source = archive.open(member.info)
            except Exception as error:  # every reason here means "damaged"
                raise _unreadable(zip_path.name, member, error) from error
            with source:
                while True:
                    try:
                        chunk = source.read(1 << 20)
                    except Exception as error:  # likewise
                        raise _unreadable(zip_path.name, member, error) from error
                    if not chunk:
                        break
                    written += len(chunk)
                    if written > limit:  # the zip's directory understated the sizes
                        raise ArchiveError(
                            f"{zip_path.name} would unpack to more than {_megabytes(limit)}, "
                            "the most a dataset zip may hold"
                        )
                    try:
                        target.write(chunk)
                    except OSError as error:
                        raise _unwritable(zip_path.name, member, error) from error


def extract_zip(
    zip_path: str | os.PathLike,
    cache_dir: str | os.PathLike | None = None,
    *,
    limits: ZipLimits | None = None,
) -> Path:
    """Unpack a dataset zip into a content-addressed folder (shared by identical uploads).

    The zip is checked against `limits` (default: MAX_ZIP_TOTAL_BYTES, MAX_ZIP_FILES,
    MAX_ZIP_RATIO) and for unsafe entries (paths outside its folder, symbolic links,
    passwords) before anything is written, even when an identical zip is already
    unpacked. Unpacking goes to a temporary folder renamed into place, so nobody sees
    half a dataset. Every failure is a DatasetError (ArchiveError for the zip itself).
    """
    zip_path = Path(zip_path)
    limits = limits or ZipLimits()
    try:
        _count_entries(zip_path, limits)
        with zipfile.ZipFile(zip_path) as archive:
            members = _check_members(zip_path, archive, limits)
            digest = file_sha256(zip_path)[:24]
            base = Path(cache_dir) if cache_dir else default_cache_dir() / "zips"
            target = base / digest
            if target.is_dir():
                mark_used(target)
                return target
            try:
                base.mkdir(parents=True, exist_ok=True)
                staging = Path(tempfile.mkdtemp(dir=base, prefix=".unzip-"))
            except OSError as error:
                raise DatasetError(
                    f"Cannot unpack {zip_path.name}: the folder for unpacked zips "
                    f"cannot be written ({error.strerror or error})"
                ) from error
            try:
                _unpack(zip_path, archive, members, staging, limits.max_total_bytes)
            except BaseException:
                shutil.rmtree(staging, ignore_errors=True)
                raise
            try:
                os.replace(staging, target)
            except OSError:
                shutil.rmtree(staging, ignore_errors=True)
                if not target.is_dir():
                    raise
                # else another session unpacked the same zip first: use theirs
    except DatasetError:
        raise
    except FileNotFoundError as error:
        raise DatasetError(f"Dataset not found: {zip_path}") from error
    except (zipfile.BadZipFile, zipfile.LargeZipFile, EOFError) as error:
        raise ArchiveError(f"{zip_path.name} is not a valid zip file") from error
    except OSError as error:
        if error.strerror:  # the disk's reason: permission denied, no space left, ...
            raise DatasetError(f"Cannot unpack {zip_path.name}: {error.strerror}") from error
        raise ArchiveError(f"{zip_path.name} is not a valid zip file") from error
    except Exception as error:  # struct.error, ValueError, ... from a mangled directory
        raise ArchiveError(f"{zip_path.name} is not a valid zip file") from error
    return target


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

    class_names = tuple(sorted({name for classes in usable.values() for name in classes}))
    if len(class_names) < 2:
        found = (
            f"found {len(class_names)}: {', '.join(class_names)}" if class_names else "found none"
        )
        raise DatasetError(
            f"A dataset needs at least two class folders with photos in {source} ({found})"
        )
    label = {name: index for index, name in enumerate(class_names)}

    def samples(part: str) -> list[Sample]:
        return [
            Sample(path, label[name])
            for name, paths in sorted(usable.get(part, {}).items())
            for path in paths
        ]

    if given_split:
        train, validation = samples("train"), samples("validation")
    else:
        train, validation = stratified_split(samples("all"), val_fraction, seed)
    return Dataset(
        root=root,
        classes=class_names,
        train=tuple(train),
        validation=tuple(validation),
        skipped=tuple(skipped),
        given_split=given_split,
        image_sizes=sizes,
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


def fingerprint(classes: Iterable[str], train: LoadedSplit, validation: LoadedSplit) -> str:
    """A short hash of the class names, the split and every photo's bytes.

    Built from the digests `load_split` already took, so no photo is read twice.
    """
    digest = hashlib.sha256("\n".join(classes).encode())
    for part, split in (("train", train), ("validation", validation)):
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
        "image_sizes": {
            "min": [min(widths), min(heights)] if sizes else None,
            "max": [max(widths), max(heights)] if sizes else None,
            "distinct": len(set(sizes)),
        },
        "skipped": [{"path": str(s.path), "reason": s.reason} for s in dataset.skipped],
    }
