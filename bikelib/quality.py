"""What a careful teacher says about a dataset before training on it.

`check()` looks for: too few photos per bike, bikes with many more photos than others,
the same file twice (by content hash), nearly the same photo twice (by a 64-bit
difference hash: resized, greyscale, brighter-than-right-neighbour bits), the same or
nearly the same photo in training and validation (which flatters validation accuracy),
one photo labelled as two bikes (or as a bike and a not-mine photo: the not-mine folder
is checked with the bikes), and files that could not be read, with the reason.
`size_counts()` tallies the photos' pixel sizes for the Statistics tab.

Pictures (thumbnails, the augmentation preview) are in `images.py`; captions and table
rows for the pages in the app's `app_state.py`.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .dataset import NOT_MINE_LABEL, Dataset
from .errors import ImageReadError
from .images import file_sha256, open_image

MIN_PHOTOS = 10  # per bike; below this a model mostly memorises backgrounds
IMBALANCE_RATIO = 2.0  # most / fewest photos per bike
NEAR_DISTANCE = 5  # of 64 hash bits: resized, re-encoded or slightly cropped copies


@dataclass(frozen=True)
class Finding:
    """One warning about a dataset: a kind, one sentence, and the files it is about."""

    # unreadable, conflict (one photo, two bikes), leak (in training and validation),
    # duplicate, near_duplicate, few_photos, no_validation, imbalance
    kind: str
    message: str
    paths: tuple[Path, ...] = ()
    details: tuple[str, ...] = ()  # one line per path where there is more to say (reasons)


def difference_hash(image: Image.Image, bits: int = 8) -> int:
    """A 64-bit perceptual hash: each bit says whether a pixel is brighter than its right
    neighbour in a 9x8 greyscale version. Resizing, recompression and small edits keep
    most bits; different photos differ in about half of them."""
    grey = image.convert("L").resize((bits + 1, bits), Image.Resampling.BILINEAR)
    pixels = np.asarray(grey, dtype=np.int16)
    diff = (pixels[:, 1:] > pixels[:, :-1]).flatten()
    return int(sum(1 << i for i, bit in enumerate(diff) if bit))


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between each hash in `a` (n,) and each in `b` (m,): (n, m)."""
    return np.bitwise_count(np.bitwise_xor(a[:, None], b[None, :]))


def _fingerprints(dataset: Dataset):
    """Content digest and perceptual hash per readable sample; the unreadable ones.

    Neither reads a whole file into memory: the digest is hashed in chunks, and a JPEG
    is decoded from its 1/8-scale draft (a 100 MB photo stays a few kB here).
    """
    digests, hashes, unreadable = {}, {}, []
    for sample in (*dataset.samples, *dataset.not_mine):
        try:
            image = open_image(sample.path, draft_size=64)
            digests[sample.path] = file_sha256(sample.path)
        except (OSError, ImageReadError) as error:
            reason = str(error).split(": ", 1)[-1] if isinstance(error, ImageReadError) else error
            unreadable.append((sample.path, str(reason)))
            continue
        hashes[sample.path] = difference_hash(image)
    return digests, hashes, unreadable


def _groups(pairs: list[tuple[Path, Path]]) -> list[list[Path]]:
    """Connected groups of paths from pairs (union-find)."""
    parent: dict[Path, Path] = {}

    def find(p: Path) -> Path:
        while parent.setdefault(p, p) != p:
            parent[p] = parent[parent[p]]
            p = parent[p]
        return p

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups: dict[Path, list[Path]] = {}
    for p in parent:
        groups.setdefault(find(p), []).append(p)
    return [sorted(g) for g in groups.values() if len(g) > 1]


def _name(dataset: Dataset, path: Path) -> str:
    try:
        return str(path.relative_to(dataset.root))
    except ValueError:
        return path.name


def check(
    dataset: Dataset,
    *,
    min_photos: int = MIN_PHOTOS,
    imbalance_ratio: float = IMBALANCE_RATIO,
    near_distance: int = NEAR_DISTANCE,
) -> list[Finding]:
    """Everything worth a warning about `dataset`, most serious first."""
    findings: list[Finding] = []
    label_of = {s.path: s.label for s in (*dataset.samples, *dataset.not_mine)}
    in_validation = {s.path for s in (*dataset.validation, *dataset.not_mine_validation)}
    counts = Counter(s.label for s in dataset.samples)
    val_counts = Counter(s.label for s in dataset.validation)

    digests, hashes, unreadable = _fingerprints(dataset)

    def describe_group(group: list[Path]) -> tuple[str, bool, bool]:
        names = ", ".join(_name(dataset, p) for p in group[:4]) + (" ..." if len(group) > 4 else "")
        crosses_split = len({p in in_validation for p in group}) > 1
        crosses_bikes = len({label_of[p] for p in group}) > 1
        return names, crosses_split, crosses_bikes

    def classify(group: list[Path], exact: bool) -> Finding:
        names, crosses_split, crosses_bikes = describe_group(group)
        same = "The same photo" if exact else "Nearly the same photo"
        if crosses_bikes:
            labels = {label_of[p] for p in group}
            bikes = ", ".join(
                sorted(dataset.classes[label] for label in labels if label != NOT_MINE_LABEL)
                + ["not mine"] * (NOT_MINE_LABEL in labels)
            )
            message = f"{same} is labelled as different bikes ({bikes}): {names}"
            return Finding("conflict", message, tuple(group))
        if crosses_split:
            return Finding(
                "leak",
                f"{same} is in both training and validation, which flatters validation "
                f"accuracy: {names}",
                tuple(group),
            )
        kind = "duplicate" if exact else "near_duplicate"
        return Finding(kind, f"{same} appears {len(group)} times: {names}", tuple(group))

    by_digest: dict[str, list[Path]] = {}
    for path, digest in digests.items():
        by_digest.setdefault(digest, []).append(path)
    exact_groups = [sorted(g) for g in by_digest.values() if len(g) > 1]
    exact_pairs = {frozenset((a, b)) for g in exact_groups for a in g for b in g if a != b}

    paths = list(hashes)
    near_pairs: list[tuple[Path, Path]] = []
    if len(paths) > 1:
        values = np.array([hashes[p] for p in paths], dtype=np.uint64)
        for start in range(0, len(paths), 512):  # bounded memory for large sets
            distances = _hamming(values[start : start + 512], values)
            for i, j in zip(*np.nonzero(distances <= near_distance), strict=True):
                a, b = paths[start + i], paths[j]
                if start + i < j and frozenset((a, b)) not in exact_pairs:
                    near_pairs.append((a, b))

    duplicate_findings = [classify(g, exact=True) for g in exact_groups]
    duplicate_findings += [classify(g, exact=False) for g in _groups(near_pairs)]

    if unreadable:
        findings.append(
            Finding(
                "unreadable",
                f"{len(unreadable)} photo(s) could not be read and will be left out",
                tuple(p for p, _ in unreadable),
                tuple(f"{_name(dataset, p)}: {reason}" for p, reason in unreadable),
            )
        )
    if dataset.skipped:
        findings.append(
            Finding(
                "unreadable",
                f"{len(dataset.skipped)} file(s) are not usable photos and were skipped",
                tuple(s.path for s in dataset.skipped),
                tuple(f"{_name(dataset, s.path)}: {s.reason}" for s in dataset.skipped),
            )
        )
    order = {"conflict": 0, "leak": 1, "duplicate": 2, "near_duplicate": 3}
    findings += sorted(duplicate_findings, key=lambda f: order[f.kind])

    for label, name in enumerate(dataset.classes):
        if counts[label] < min_photos:
            findings.append(
                Finding(
                    "few_photos",
                    f"'{name}' has only {counts[label]} photo(s); {min_photos} or more per bike, "
                    "from different angles and places, give a model a fair chance",
                )
            )
        if dataset.validation and val_counts[label] == 0:
            findings.append(
                Finding(
                    "no_validation",
                    f"'{name}' has no validation photos, so nothing measures how well it is "
                    "recognised",
                )
            )
    if counts:
        most, fewest = max(counts.values()), min(counts.values())
        if fewest and most / fewest >= imbalance_ratio:
            big = dataset.classes[max(counts, key=counts.get)]
            small = dataset.classes[min(counts, key=counts.get)]
            findings.append(
                Finding(
                    "imbalance",
                    f"Unbalanced: '{big}' has {most} photos but '{small}' only {fewest}; "
                    "the model will lean towards the bikes it saw most",
                )
            )
    if not dataset.validation:
        findings.append(
            Finding("no_validation", "There are no validation photos: accuracy cannot be measured")
        )
    return findings


def size_counts(dataset: Dataset) -> list[dict]:
    """How many photos have each pixel size (width x height), most common first."""
    counts = Counter(dataset.image_sizes.get(s.path) for s in dataset.samples)
    return [
        {"width": size[0], "height": size[1], "photos": n}
        for size, n in counts.most_common()
        if size is not None
    ]
