"""Scan listings: rank many photos by how likely each shows one chosen bike.

An owner whose bike was stolen goes through dozens or thousands of listing photos and
needs the few that may be theirs on top. `listing_photos` walks photos, folders and
zips lazily (a zip's members are read one at a time, never extracted), `scan` decodes
and scores them in batches, so 10,000 photos need no more memory than one batch plus a
small row per photo. Unreadable photos become rows with an error, never a stop.
Where each folder is one listing (a seller's photos of one bike), `by_listing` pools its
photos' matches into the listing's.
"""

from __future__ import annotations

import base64
import csv
import io
import os
import zipfile
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

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


MAX_MEMBER_BYTES = 100_000_000  # a zip member larger than this is refused unread (a bomb)
ZIP_SUFFIX = ".zip"


def _zip_members(label: str, archive: zipfile.ZipFile) -> Iterator[tuple[str, object]]:
    """(label/member, bytes or ImageReadError) for each photo in an open zip, one at a time."""
    for info in archive.infolist():
        if info.is_dir() or not _is_photo(info.filename):
            continue
        name = f"{label}/{info.filename}"
        if info.file_size > MAX_MEMBER_BYTES:
            reason = f"larger than {MAX_MEMBER_BYTES // 1_000_000} MB once unpacked"
            yield name, ImageReadError(f"{name}: {reason}")
            continue
        try:
            data = archive.read(info)
        except (OSError, RuntimeError, zipfile.BadZipFile, ValueError, EOFError) as error:
            yield name, ImageReadError(f"{name}: {error}")
            continue
        yield name, data


def listing_photos(sources: Iterable[str | os.PathLike]) -> Iterator[tuple[str, object]]:
    """(name, path, bytes or error) for every photo in the given files, folders and zips.

    Every source is checked before the first photo is read, so a mistyped path is one
    clear error (DatasetError) instead of a scan that stops half-way.
    """
    sources = [Path(s) for s in sources]
    for source in sources:
        if not source.exists():
            raise DatasetError(f"{source}: no such file or folder")
    return _walk(sources)


def _walk(sources: list[Path]) -> Iterator[tuple[str, object]]:
    for source in sources:
        if source.is_dir():
            for path in sorted(source.rglob("*")):
                if path.is_file() and _is_photo(path.name):
                    yield str(path), path
        elif source.suffix.lower() == ZIP_SUFFIX:
            try:
                archive = zipfile.ZipFile(source)
            except (OSError, zipfile.BadZipFile) as error:
                raise DatasetError(f"{source} is not a readable zip file") from error
            with archive:
                yield from _zip_members(source.name, archive)
        else:
            yield str(source), source


def listing_uploads(files: Iterable[tuple[str, bytes]]) -> Iterator[tuple[str, object]]:
    """The same for uploaded files, (name, content): photos, and zips of photos.

    Unlike a path given on the command line, a damaged zip among uploads is one
    unreadable entry, not a stop: the visitor still gets the rest of the ranking.
    """
    for name, data in files:
        if not name.lower().endswith(ZIP_SUFFIX):
            yield name, data
            continue
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except (OSError, zipfile.BadZipFile) as error:
            yield name, ImageReadError(f"{name}: not a readable zip file ({error})")
            continue
        with archive:
            yield from _zip_members(name, archive)


def count_uploads(files: Iterable[tuple[str, bytes]]) -> int:
    """How many entries `listing_uploads` will give, from zip directories alone (no unpacking)."""
    count = 0
    for name, data in files:
        if not name.lower().endswith(ZIP_SUFFIX):
            count += 1
            continue
        try:
            with zipfile.ZipFile(io.BytesIO(data)) as archive:
                members = archive.infolist()
            count += sum(1 for i in members if not i.is_dir() and _is_photo(i.filename))
        except (OSError, zipfile.BadZipFile):
            count += 1
    return count


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
    for count, names, decoded, failed in _decoded_batches(classifier, photos, batch_size):
        rows.extend(failed)
        if decoded:
            rows.extend(_score_batch(classifier, index, names, decoded))
        done += count
        if on_progress:
            on_progress(done)
    return sorted(rows, key=lambda r: (bool(r.error), r.verdict == openset.NO_BICYCLE, -r.score))


def _decode_batch(classifier, batch: list) -> tuple[int, list[str], list, list[ScanRow]]:
    """(photos, names, decoded arrays, rows of the unreadable) for one batch."""
    decoded, names, failed = [], [], []
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
            failed.append(ScanRow(name, float("-inf"), "", error=str(error)))
    return len(batch), names, decoded, failed


def _decoded_batches(classifier, photos: Iterable, batch_size: int) -> Iterator[tuple]:
    """`_decode_batch` of each batch, one batch ahead in a worker thread: the next photos
    decode (Pillow lets go of the GIL) while the networks score these, so decoding and
    scoring share the two cores instead of taking turns. At most two batches in memory."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="scan-decode") as pool:
        ahead = None
        for batch in _batches(iter(photos), batch_size):
            future = pool.submit(_decode_batch, classifier, batch)
            if ahead is not None:
                yield ahead.result()
            ahead = future
        if ahead is not None:
            yield ahead.result()


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


# -- listings: a seller's several photos of one bike ----------------------------------------


@dataclass(frozen=True)
class ListingRow:
    """One listing (the photos of one folder): its pooled match and verdict."""

    listing: str  # the folder ("ads.zip/ad-17"); "" for photos uploaded on their own
    photos: int  # readable photos in it
    score: float  # openset.POOL of the scores of its photos that show a bicycle
    verdict: str  # "bike", "not_mine", or "no_bicycle" when none of its photos shows one
    best: str  # the file of its best-matching photo

    def to_dict(self) -> dict:
        return asdict(self)


def listing_of(file: str) -> str:
    """The folder a photo is in: a listing's photos are saved together."""
    return file.rsplit("/", 1)[0] if "/" in file else ""


def by_listing(rows: list[ScanRow], threshold: float, pool: str = openset.POOL) -> list[ListingRow]:
    """The photos grouped by folder, best listing first; photos with no folder (uploaded
    on their own) are each a listing of one. The threshold is the model's, set on single
    photos; photos the gate finds no bicycle in (a receipt, a map) are left out of the
    pooled score."""
    groups: dict[str, list[ScanRow]] = {}
    for row in rows:
        if not row.error:
            groups.setdefault(listing_of(row.file) or row.file, []).append(row)
    listings = []
    for name, photos in groups.items():
        bikes = [r for r in photos if r.verdict != openset.NO_BICYCLE]
        best = max(bikes or photos, key=lambda r: r.score)
        if not bikes:
            score, verdict = best.score, openset.NO_BICYCLE
        else:
            score = openset.POOLS[pool](np.array([r.score for r in bikes]))
            verdict = openset.BIKE if score >= threshold else openset.NOT_MINE
        folder = name if listing_of(photos[0].file) else ""
        listings.append(ListingRow(folder, len(photos), score, verdict, best.file))
    return sorted(listings, key=lambda r: (r.verdict == openset.NO_BICYCLE, -r.score))


def can_group(rows: list[ScanRow]) -> bool:
    """Whether grouping by folder could mean listings: two folders or more, one of them
    with two photos or more. (Whether each folder is one listing only the user knows.)"""
    folders = [listing_of(r.file) for r in rows if not r.error and listing_of(r.file)]
    return len(set(folders)) >= 2 and len(folders) > len(set(folders))


# -- what the Scan page shows -------------------------------------------------------------

WORDS = {
    openset.BIKE: "may be your bike",
    openset.NOT_MINE: "another bike",
    openset.NO_BICYCLE: "no bicycle",
}


def lead(rows: list[ScanRow], bike: str) -> str:
    """One line for the top of the results: how many photos may show the bike."""
    readable = [r for r in rows if not r.error]
    found = sum(r.verdict == openset.BIKE for r in readable)
    line = f"{found} of {len(readable)} photos may be your bike {bike}."
    if len(readable) < len(rows):
        line += f" {len(rows) - len(readable)} could not be read."
    return line


# Measured (bench/RESULTS.md, "A listing's photos together", "A PLDA score"): a bike's
# listings photographed somewhere new passed its threshold 40-46% of the time after the
# default training of 2026-12-02, 92% with cosine scores of the whitened backbone and
# 100% with `nearest+plda` (one seed, rendered listings), yet ranked near the top throughout.
# Real photos elsewhere may pass less often: when nothing passes, the ranking still says
# where to look.
NONE_PASSED = (
    "None passed the match threshold. Look at the first few anyway: your bike, "
    "photographed somewhere new by someone else, matches your own photos of it less "
    "well than they match each other, so it can fall just below the threshold."
)


def none_passed(rows: list[ScanRow] | list[ListingRow]) -> bool:
    """True when some photo (or listing) shows a bicycle but none passed the threshold:
    the case for `NONE_PASSED`."""
    verdicts = {row.verdict for row in rows if not getattr(row, "error", None)}
    return openset.NOT_MINE in verdicts and openset.BIKE not in verdicts


def thumbnails(
    photos: Iterable[tuple[str, object]], names: Iterable[str], size: int = 96
) -> dict[str, bytes]:
    """JPEG thumbnails of the named photos (one more pass over the listing, streamed)."""
    from .images import thumbnail

    wanted, found = set(names), {}
    for name, source in photos:
        if name in wanted and not isinstance(source, BikeLibError):
            try:
                found[name] = thumbnail(source, size, square=False)
            except ImageReadError:
                continue
    return found


def common_folder(rows: list[ScanRow]) -> str:
    """The folders every readable photo's name starts with ("listings.zip/ads/"), or "".

    The table names each photo after it: photos from one zip otherwise all begin alike
    and a narrow column shows only what they share. The CSV keeps the whole names."""
    return _shared_folders([r.file for r in rows if not r.error])


def _shared_folders(names: list[str]) -> str:
    parts = [name.split("/")[:-1] for name in names]
    shared = []
    for level in zip(*parts, strict=False):  # as deep as the shallowest name
        if len(set(level)) > 1:
            break
        shared.append(level[0])
    return "".join(f"{part}/" for part in shared) if parts else ""


def table_rows(rows: list[ScanRow], thumbs: dict[str, bytes]) -> list[dict]:
    """The ranking as table rows: rank, inline thumbnail, file (after `common_folder`),
    verdict in words, score, closest known bike, bicycle probability."""
    table, folder = [], common_folder(rows)
    for rank, row in enumerate((r for r in rows if not r.error), start=1):
        table.append(
            {
                "rank": rank,
                "photo": _data_url(thumbs.get(row.file)),
                "file": row.file[len(folder) :],
                "verdict": WORDS.get(row.verdict, row.verdict),
                "score": row.score,
                "closest": row.closest,
                "bicycle": row.bicycle,
            }
        )
    return table


def listing_lead(listings: list[ListingRow], bike: str) -> str:
    """One line for the top of grouped results: how many listings may show the bike."""
    found = sum(r.verdict == openset.BIKE for r in listings)
    return f"{found} of {len(listings)} listings may be your bike {bike}."


def listing_table_rows(listings: list[ListingRow], thumbs: dict[str, bytes]) -> list[dict]:
    """The listings as table rows: rank, its best photo, folder (after `common_folder`),
    photos, verdict, match."""
    folder = _shared_folders([row.listing or row.best for row in listings])
    return [
        {
            "rank": rank,
            "photo": _data_url(thumbs.get(row.best)),
            "listing": (row.listing or row.best)[len(folder) :],
            "photos": row.photos,
            "verdict": WORDS.get(row.verdict, row.verdict),
            "score": row.score,
        }
        for rank, row in enumerate(listings, start=1)
    ]


def _data_url(jpeg: bytes | None) -> str | None:
    return f"data:image/jpeg;base64,{base64.b64encode(jpeg).decode()}" if jpeg else None
