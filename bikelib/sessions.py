"""Per-session storage: each browser session's own folder, safe names, pruning.

A hosted instance serves many visitors from one process and one disk, so every browser
session gets its own folder under the workspace root (`Settings.workdir`):

    <workdir>/<session id>/uploads/   zips, and photos added in the browser
    <workdir>/<session id>/models/    models trained in this session

The session id is a random hex uuid kept in the caller's state mapping (Streamlit's
`st.session_state`), so visitors never see or overwrite each other's files. Folders
idle for longer than `Settings.session_hours` are removed with the shared cache's unused
entries by a daemon thread (`start_pruner`, once per process, a round an hour), never in
a visitor's request. The built-in demo photos and the shipped demo model are only ever
read. Plain Python: no Streamlit, no TensorFlow.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import re
import shutil
import threading
import time
import uuid
from collections.abc import Iterable, MutableMapping
from pathlib import Path
from typing import Any

from .artifacts import list_models, read_meta
from .dataset import NOT_MINE_FOLDER, is_not_mine
from .errors import DatasetError, ModelLoadError, SessionFullError
from .images import IMAGE_SUFFIXES, prune_cache
from .saves import sweep_saves
from .settings import settings

log = logging.getLogger(__name__)

SESSION_KEY = "workspace_id"
PHOTO_SET = "my-bikes"  # the folder under uploads/ that "build a set in the browser" fills
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_BIKE_NAME = re.compile(r"^[\w][\w .()'+-]{0,49}$")
# One answer for every refused server folder (missing, a file, unreadable, or one of the
# app's own folders), so the Dataset page cannot be used to probe the server's disk.
FOLDER_REFUSED = "That folder cannot be used."
NO_BIKE_NAME = "Give the bike a name first."


def safe_filename(name: str, default: str = "file") -> str:
    """A file name without folders or odd characters (uploads name their own files)."""
    name = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._") or default
    stem, suffix = os.path.splitext(cleaned)
    return stem[:60] + suffix[:10].lower()


def check_bike_name(name: str) -> str:
    """A bike (class) name usable as a folder name, or DatasetError saying why not."""
    name = " ".join(name.split())
    if not name:
        raise DatasetError(NO_BIKE_NAME)
    if not _BIKE_NAME.match(name):
        raise DatasetError(
            "A bike name needs 1-50 letters, digits, spaces or - _ . ( ) ' + "
            f"and must start with a letter or digit, not '{name}'"
        )
    if is_not_mine(name):
        raise DatasetError(
            f"'{name}' is the name kept for photos of other people's bikes (not mine), "
            "so it cannot name one of your bikes."
        )
    return name


PRUNE_EVERY_S = 3600.0  # how often the pruner thread looks for idle sessions
_prune_lock = threading.Lock()
_pruner: threading.Thread | None = None


def prune_sessions(root: Path, max_age_s: float, now: float | None = None) -> list[Path]:
    """Remove session folders untouched for `max_age_s` seconds; returns what was removed."""
    now = time.time() if now is None else now
    removed = []
    if not root.is_dir():
        return removed
    for folder in root.iterdir():
        if not (folder.is_dir() and _SESSION_ID.match(folder.name)):
            continue  # never touch anything we did not create
        try:
            if now - folder.stat().st_mtime > max_age_s:
                shutil.rmtree(folder, ignore_errors=True)
                removed.append(folder)
            else:
                sweep_saves(folder / "models", now)
        except OSError:
            continue  # removed meanwhile by another process
    return removed


def prune_now(root: Path | None = None) -> None:
    """One round of pruning: idle sessions under `root` (the workdir), unused cache entries."""
    root = settings().workdir if root is None else root
    hours = settings().session_hours
    removed = prune_sessions(root, hours * 3600)
    if removed:
        log.info("removed %d session folders idle for over %g h", len(removed), hours)
    # Decoded photos and unpacked zips are shared by all sessions; drop the unused ones.
    cached = prune_cache(hours * 3600)
    if cached:
        log.info("removed %d cache entries unused for over %g h", cached, hours)


def _prune_forever(every_s: float) -> None:
    while True:
        try:
            prune_now()
        except Exception:  # a bad round must not end the thread (a shared disk fills up)
            log.exception("pruning failed; trying again in %g s", every_s)
        time.sleep(every_s)


def start_pruner(every_s: float = PRUNE_EVERY_S) -> threading.Thread:
    """Start this process's pruning thread (a daemon, a round every `every_s` seconds)
    unless it runs already; returns it. Visitors' requests never wait for a round."""
    global _pruner
    with _prune_lock:
        if _pruner is None or not _pruner.is_alive():
            _pruner = threading.Thread(
                target=_prune_forever, args=(every_s,), name="session-pruner", daemon=True
            )
            _pruner.start()
        return _pruner


class Workspace:
    """One browser session's folder: its uploads, its photo set and its trained models."""

    def __init__(self, session_id: str, root: str | os.PathLike | None = None) -> None:
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"not a session id: {session_id!r}")
        self.session_id = session_id
        self.settings = settings()  # read per workspace: tests change the environment
        self.root = Path(root) if root else self.settings.workdir
        self.path = self.root / session_id

    @classmethod
    def for_session(
        cls, state: MutableMapping[str, Any], root: str | os.PathLike | None = None
    ) -> Workspace:
        """The workspace of the session whose state this is, its id created on first use."""
        if not _SESSION_ID.match(str(state.get(SESSION_KEY, ""))):
            state[SESSION_KEY] = uuid.uuid4().hex
        workspace = cls(state[SESSION_KEY], root)
        start_pruner()
        workspace.touch()
        return workspace

    def touch(self) -> None:
        """Mark the session as in use, so pruning leaves it alone (cheap; no folder yet is ok)."""
        with contextlib.suppress(OSError):
            os.utime(self.path)

    def _folder(self, name: str) -> Path:
        folder = self.path / name
        folder.mkdir(parents=True, exist_ok=True)
        return folder

    @property
    def uploads(self) -> Path:
        return self._folder("uploads")

    @property
    def models(self) -> Path:
        return self._folder("models")

    @property
    def photo_set(self) -> Path:
        """The dataset a user builds in the browser: uploads/my-bikes/<bike>/<photo>."""
        return self.uploads / PHOTO_SET

    # -- space --------------------------------------------------------------------------

    def used_bytes(self) -> int:
        """Bytes this session's files take on disk: uploads, photo set and models."""
        total = 0
        for folder, _, files in os.walk(self.path):
            for name in files:
                with contextlib.suppress(OSError):  # removed meanwhile
                    total += os.path.getsize(os.path.join(folder, name))
        return total

    def check_space(self, adding: int = 0) -> None:
        """SessionFullError when `adding` more bytes would pass `Settings.session_mb`."""
        limit_mb = self.settings.session_mb
        if self.used_bytes() + adding > limit_mb * 2**20:
            size = f"{limit_mb // 1024} GB" if limit_mb % 1024 == 0 else f"{limit_mb} MB"
            raise SessionFullError(
                f"This session has used its {size} of space: remove a bike or an old model first."
            )

    # -- data ---------------------------------------------------------------------------

    def save_upload(self, name: str, data: bytes) -> Path:
        """Store an uploaded file (a dataset zip, say) in this session; returns its path."""
        target = self.uploads / safe_filename(name, "upload")
        replaced = target.stat().st_size if target.is_file() else 0  # the same zip again
        self.check_space(len(data) - replaced)
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(data)
        os.replace(partial, target)
        return target

    def add_photos(
        self, bike: str, photos: Iterable[tuple[str, bytes]], *, not_mine: bool = False
    ) -> int:
        """Add photos of one bike to the session's photo set; returns how many were new.

        Files are named by their content, so adding the same photo twice keeps one copy
        (a camera names every shot `image.jpg`, which must not overwrite the last one).
        `not_mine`: photos of other people's bikes, kept in the not-mine folder (`bike`
        is ignored).
        """
        bike = NOT_MINE_FOLDER if not_mine else check_bike_name(bike)
        photos = list(photos)
        self.check_space(sum(len(data) for _, data in photos))
        added = 0
        folder = self.photo_set / bike
        for name, data in photos:
            suffix = Path(safe_filename(name)).suffix.lower() or ".jpg"
            if suffix not in IMAGE_SUFFIXES:
                raise DatasetError(f"{name} is not a photo ({', '.join(sorted(IMAGE_SUFFIXES))})")
            stem = Path(safe_filename(name, "photo")).stem[:40]
            digest = hashlib.sha256(data).hexdigest()[:12]
            if folder.is_dir() and any(folder.glob(f"*-{digest}.*")):
                continue  # this very photo is already there, under whatever name
            folder.mkdir(parents=True, exist_ok=True)
            (folder / f"{stem}-{digest}{suffix}").write_bytes(data)
            added += 1
        return added

    def photo_set_counts(self) -> dict[str, int]:
        """Bike name -> number of photos in the session's photo set."""
        if not self.photo_set.is_dir():
            return {}
        return {
            folder.name: sum(1 for f in folder.iterdir() if f.is_file())
            for folder in sorted(self.photo_set.iterdir())
            if folder.is_dir()
        }

    def remove_bike(self, bike: str) -> None:
        """Delete one bike (or the not-mine group) and its photos from the photo set."""
        folder = bike if bike == NOT_MINE_FOLDER else check_bike_name(bike)
        shutil.rmtree(self.photo_set / folder, ignore_errors=True)

    def describe_source(self, source: str | os.PathLike | None) -> str:
        """A short human name for a dataset source, for headings and the Home page."""
        if not source:
            return "none"
        source = Path(source)
        if source == self.settings.demo_data:
            return "the built-in demo bikes"
        if source == self.photo_set:
            return "your photos (added in the browser)"
        if source.parent == self.path / "uploads":
            return f"uploaded {source.name}"
        return f"folder {source}"

    def source_kind(self, source: str | os.PathLike | None) -> str:
        """Where a dataset source came from: demo, zip, photos (built here) or folder."""
        if not source or Path(source) == self.settings.demo_data:
            return "demo"
        if Path(source) == self.photo_set:
            return "photos"
        if Path(source).parent == self.path / "uploads":
            return "zip"
        return "folder"

    def server_folder(self, text: str) -> Path:
        """The dataset folder a visitor typed, or DatasetError(FOLDER_REFUSED).

        Missing, not a folder, unreadable, and inside the app's own storage (every
        session's uploads and models, the shared cache) all get the same sentence, so
        the answer never tells whether a path exists on the server. A folder that holds
        the app's storage (say the home folder above ~/.cache) is refused too.
        """
        path = Path(text.strip()).expanduser()
        if not path.is_absolute():
            raise DatasetError("Give the folder's full path, starting with / or ~.")
        try:
            path = path.resolve()
            own = [self.settings.workdir.resolve(), self.settings.cache_dir.resolve()]
            usable = path.is_dir() and os.access(path, os.R_OK | os.X_OK)
        except (OSError, RuntimeError):  # a symlink loop, a name too long, ...
            usable = False
        # Inside the app's storage, or above it (which would read every session's photos).
        overlaps = any(path == r or r in path.parents or path in r.parents for r in own)
        if not usable or overlaps:
            raise DatasetError(FOLDER_REFUSED)
        return path

    def default_source(self) -> Path | None:
        """The demo photos where they are installed, so the app works on first start."""
        demo = self.settings.demo_data
        return demo if demo.is_dir() else None

    # -- models -------------------------------------------------------------------------

    def new_model_dir(self, arch: str) -> Path:
        """A fresh, unused folder name for a model about to be trained (or opened);
        SessionFullError when the session has no space left for one."""
        self.check_space(1)
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.models / f"{arch}-{stamp}"
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
        return candidate

    def open_model_zip(self, data: bytes) -> Path:
        """Put a model zip the app offered for download back among this session's models.

        Checked and loaded in safe mode first (`bikelib.portable.import_zip`): anything
        that is not a model of this app is refused with one sentence.
        """
        from .portable import import_zip  # loads Keras: only when a zip is opened
        from .quiet import load_tensorflow

        load_tensorflow()

        directory = import_zip(data, self.new_model_dir("opened"))
        self.prune_models()
        return directory

    def saved_models(self) -> list[dict]:
        """This session's models and the shipped demo model: model.json + path, newest first.

        Each entry has `shipped` True for the read-only demo model.
        """
        sweep_saves(self.models)  # a save killed midway: its previous model back, its rest gone
        found = [{**meta, "shipped": False} for meta in list_models(self.models)]
        try:
            shipped = read_meta(self.settings.demo_model)
        except ModelLoadError:
            shipped = None  # not built yet, or removed: the app says "train a model first"
        if shipped:
            found.append({**shipped, "path": str(self.settings.demo_model), "shipped": True})
        return sorted(found, key=lambda m: m.get("created", ""), reverse=True)

    def prune_models(self, keep: int | None = None) -> list[Path]:
        """Keep the newest `keep` models of this session (shared disk); returns removed."""
        keep = keep or self.settings.max_models
        mine = list_models(self.models)
        removed = [Path(meta["path"]) for meta in mine[keep:]]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed
