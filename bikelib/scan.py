"""Scan listings: rank many photos by how likely each shows one chosen bike.

An owner whose bike was stolen goes through dozens or thousands of listing photos and
needs the few that may be theirs on top. `listing_photos` walks photos, folders and
zips lazily (a zip's members are read one at a time, never extracted), `scan` decodes
and scores them in batches, so 10,000 photos need no more memory than one batch plus a
small row per photo. Unreadable photos become rows with an error, never a stop.
"""

from __future__ import annotations

import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

from . import openset
from .errors import BikeLibError, DatasetError, ImageReadError
from .images import IMAGE_SUFFIXES

BATCH = 32


@dataclass(frozen=True)
class ScanRow:
    """One listing photo: how well it matches the chosen bike, and the verdict for it."""

    file: str
    score: float  # similarity to the chosen bike's photos; higher: more likely that bike
    verdict: str  # "bike" (may be yours), "not_mine" or "no_bicycle"; "" with an error
    closest: str = ""  # the known bike it resembles most
    bicycle: float | None = None
    error: str = ""

    def to_dict(self) -> dict:
        return asdict(self)


def _is_photo(name: str) -> bool:
    base = os.path.basename(name)
    return Path(name).suffix.lower() in IMAGE_SUFFIXES and not base.startswith(("._", "."))


def listing_photos(sources: Iterable[str | os.PathLike]) -> Iterator[tuple[str, object]]:
    """(name, path or bytes) for every photo in the given files, folders and zips."""
    for source in map(Path, sources):
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and _is_photo(path.name):
                    yield str(path), path
        elif source.suffix.lower() == ".zip":
            try:
                archive = zipfile.ZipFile(source)
            except (OSError, zipfile.BadZipFile) as error:
                raise DatasetError(f"{source} is not a readable zip file") from error
            with archive:
                for info in archive.infolist():
                    if info.is_dir() or not _is_photo(info.filename):
                        continue
                    try:
                        data = archive.read(info)
                    except (OSError, RuntimeError, zipfile.BadZipFile, ValueError) as error:
                        yield f"{source.name}/{info.filename}", ImageReadError(str(error))
                        continue
                    yield f"{source.name}/{info.filename}", data
        else:
            yield str(source), source


def _batches(items: Iterator, size: int) -> Iterator[list]:
    batch = []
    for item in items:
        batch.append(item)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch


def scan(
    classifier,
    bike: str,
    photos: Iterable[tuple[str, object]],
    *,
    batch_size: int = BATCH,
    on_progress: Callable[[int], None] | None = None,
) -> list[ScanRow]:
    """Every photo scored against `bike`, best match first (errors last)."""
    if bike not in classifier.classes:
        raise DatasetError(
            f"This model does not know a bike called '{bike}'; it knows "
            f"{', '.join(classifier.classes)}"
        )
    index = classifier.classes.index(bike)
    rows: list[ScanRow] = []
    done = 0
    for batch in _batches(iter(photos), batch_size):
        decoded, names = [], []
        for name, source in batch:
            try:
                if isinstance(source, BikeLibError):
                    raise source
                if isinstance(source, bytes):
                    source = io.BytesIO(source)
                    source.name = name
                decoded.append(classifier._decode_both(source))
                names.append(name)
            except ImageReadError as error:
                rows.append(ScanRow(name, float("-inf"), "", error=str(error)))
        if decoded:
            rows.extend(_score_batch(classifier, index, names, decoded))
        done += len(batch)
        if on_progress:
            on_progress(done)
    return sorted(rows, key=lambda r: (bool(r.error), r.verdict == openset.NO_BICYCLE, -r.score))


def _score_batch(classifier, index: int, names: list[str], decoded: list) -> list[ScanRow]:
    predictions = classifier.predict_decoded(decoded, bike=index)
    return [
        ScanRow(name, p.score, p.verdict, p.label, p.bicycle)
        for name, p in zip(names, predictions, strict=True)
    ]


def to_csv(rows: list[ScanRow]) -> str:
    """The ranking as CSV text: rank, file, score, verdict, closest, bicycle, error."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(["rank", "file", "score", "verdict", "closest", "bicycle", "error"])
    for rank, row in enumerate(rows, start=1):
        bicycle = "" if row.bicycle is None else f"{row.bicycle:.4f}"
        score = "" if row.error else f"{row.score:.4f}"
        writer.writerow([rank, row.file, score, row.verdict, row.closest, bicycle, row.error])
    return buffer.getvalue()
