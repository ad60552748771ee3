"""Dataset zips: checked from their directory before anything is unpacked, then unpacked
into a content-addressed cache folder shared by identical uploads.

A hosted server reads whatever visitors upload, so a zip is refused with one sentence
(`ArchiveError`, a `DatasetError`) when it is damaged, encrypted, uses an unknown
compression method, holds unsafe paths or symbolic links, or is over the limits of
`ZipLimits` (a zip bomb, too many files, too many bytes). Unpacking goes to a
temporary folder renamed into place, so a refused zip leaves nothing behind.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import stat
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .errors import ArchiveError, DatasetError
from .images import default_cache_dir, file_sha256, mark_used

JUNK_NAMES = frozenset({".ds_store", "thumbs.db", "desktop.ini", "__macosx"})


def is_junk(path: Path) -> bool:
    """OS junk a zip or folder carries along (`.DS_Store`, `__MACOSX/`, `._*`, ...)."""
    return any(
        part.lower() in JUNK_NAMES or part.startswith(".")  # also `._*` resource forks
        for part in path.parts
    )


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
        if relative.parts and not is_junk(relative):  # OS junk is never unpacked
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
