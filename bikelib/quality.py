"""What a careful teacher says about a dataset before training on it.

`check()` looks for: too few photos per bike, bikes with many more photos than others,
the same file twice (by content hash), nearly the same photo twice (by a 64-bit
difference hash: resized, greyscale, brighter-than-right-neighbour bits), the same or
nearly the same photo in training and validation (which flatters validation accuracy),
one photo labelled as two bikes (or as a bike and a not-mine photo: the not-mine folder
is checked with the bikes), files that could not be read, with the reason, and bikes
that each stand in a place of their own (the photos' edges alone tell them apart), so a
model may learn the place instead of the bike.
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
# The place check warns when the photos' edges name the bikes at least half way from
# chance to always right, and at least 3 standard errors of a guess above chance (so a
# small set needs a clear result). Measured (bench/RESULTS.md, "One place per bike"): the
# demo set, each bike mostly at its usual spot, 70% against 20% by chance (12.5 standard
# errors: warned); the real umea photos, one campus on one day, 37% (4.2: not warned,
# mostly neighbouring shots of one bike); the demo bikes photographed at a new place
# every time, 23% (0.8).
PLACE_SHARE = 0.5
PLACE_ERRORS = 3.0
MIN_PLACE_PHOTOS = 20  # fewer photos say too little about where they were taken


@dataclass(frozen=True)
class Finding:
    """One warning about a dataset: a kind, one sentence, and the files it is about."""

    # unreadable, conflict (one photo, two bikes), leak (in training and validation),
    # duplicate, near_duplicate, same_place, few_photos, no_validation, imbalance
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


def edge_histogram(image: Image.Image, bins: int = 4) -> np.ndarray:
    """Colour histogram (bins per channel) of the photo's outer band, a fifth of each side:
    mostly the place the bike stands in, little of the bike."""
    small = np.asarray(image.convert("RGB").resize((40, 30)), dtype=np.int64) // (256 // bins)
    sides = (small[:6], small[-6:], small[6:-6, :8], small[6:-6, -8:])  # top, bottom, left, right
    band = np.concatenate([side.reshape(-1, 3) for side in sides])
    counts = np.bincount((band[:, 0] * bins + band[:, 1]) * bins + band[:, 2], minlength=bins**3)
    return counts / counts.sum()


def place_accuracy(histograms: np.ndarray, labels: np.ndarray) -> float:
    """How often the photo with the most similar edges (leave one out, L1 distance between
    edge histograms) shows the same bike: chance level when the places say nothing."""
    hits = 0
    for start in range(0, len(labels), 256):  # bounded memory for large sets
        block = np.abs(histograms[start : start + 256, None] - histograms[None]).sum(-1)
        block[np.arange(len(block)), start + np.arange(len(block))] = np.inf
        hits += int((labels[block.argmin(1)] == labels[start : start + 256]).sum())
    return hits / len(labels)


def _hamming(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Bit differences between each hash in `a` (n,) and each in `b` (m,): (n, m)."""
    return np.bitwise_count(np.bitwise_xor(a[:, None], b[None, :]))


def _fingerprints(dataset: Dataset):
    """Content digest and perceptual hash per readable sample; the unreadable ones.

    Neither reads a whole file into memory: the digest is hashed in chunks, and a JPEG
    is decoded from its 1/8-scale draft (a 100 MB photo stays a few kB here).
    """
    digests, hashes, edges, unreadable = {}, {}, {}, []
    for sample in (*dataset.samples, *dataset.not_mine):
        try:
            image = open_image(sample.path, draft_size=64)
            digests[sample.path] = file_sha256(sample.path)
        except (OSError, ImageReadError) as error:
            reason = str(error).split(": ", 1)[-1] if isinstance(error, ImageReadError) else error
            unreadable.append((sample.path, str(reason)))
            continue
        hashes[sample.path] = difference_hash(image)
        edges[sample.path] = edge_histogram(image)
    return digests, hashes, edges, unreadable


def _same_place(dataset: Dataset, edges: dict[Path, np.ndarray]) -> Finding | None:
    """A warning when the photos' edges alone tell the bikes apart well above chance."""
    samples = [s for s in dataset.samples if s.path in edges]
    labels = np.array([s.label for s in samples])
    bikes = len(set(labels.tolist()))
    if bikes < 2 or len(samples) < MIN_PLACE_PHOTOS:
        return None
    chance = max(np.bincount(labels)) / len(labels)  # always guessing the commonest bike
    accuracy = place_accuracy(np.stack([edges[s.path] for s in samples]), labels)
    error = np.sqrt(chance * (1 - chance) / len(labels))
    if accuracy < max(chance + PLACE_SHARE * (1 - chance), chance + PLACE_ERRORS * error):
        return None
    return Finding(
        "same_place",
        f"The photos' edges alone (the background) tell the bikes apart {accuracy:.0%} of the "
        f"time, against {chance:.0%} by chance: each bike was mostly photographed in a place "
        "of its own. A model can learn the place instead of the bike and then miss it in a "
        "listing photographed elsewhere; add photos of each bike in other places",
    )


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

    digests, hashes, edges, unreadable = _fingerprints(dataset)

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
    if place := _same_place(dataset, edges):
        findings.append(place)

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
