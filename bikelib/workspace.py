"""Per-session storage and background training for the app (plain Python, no Streamlit).

A hosted instance serves many visitors from one process and one disk, so every browser
session gets its own folder under a workspace root:

    $BIKE_RECOGNITION_WORKDIR/<session id>/uploads/   zips, and photos added in the browser
    $BIKE_RECOGNITION_WORKDIR/<session id>/models/    models trained in this session

The session id is a random hex uuid kept in the caller's state mapping (Streamlit's
`st.session_state`), so visitors never see or overwrite each other's files. Folders
idle for longer than a day are removed, at most once per process start. The built-in
demo photos and the shipped demo model are only ever read.

Training (`TrainingJob`) runs in a child process watched by a background thread, so
page reruns, other widgets and page switches do not interrupt it; a process-wide limit
keeps a small shared box from running several trainings at once (each would only get
slower and use more memory).

Environment: BIKE_RECOGNITION_WORKDIR (session folders), BIKE_RECOGNITION_SESSION_HOURS
(idle hours before a session folder is removed, 24), BIKE_RECOGNITION_MAX_TRAININGS (1),
BIKE_RECOGNITION_MAX_MODELS (kept per session, 20), BIKE_RECOGNITION_SERVER_FOLDERS
("0" on a hosted instance: no reading folders of the server), BIKE_RECOGNITION_DEMO_DATA
and BIKE_RECOGNITION_DEMO_MODEL (other built-in data or model).

Also the plain-Python half of the pages: labels for saved models, the rows of the
"past runs" table, and the mapping from the Train form's fields to a `TrainConfig`.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import pickle
import re
import shutil
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Iterable, MutableMapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from .artifacts import list_models, read_meta
from .config import Augmentation, TrainConfig
from .errors import BikeLibError, DatasetError, ModelLoadError
from .images import IMAGE_SUFFIXES, prune_cache

log = logging.getLogger(__name__)

APP_ROOT = Path(__file__).resolve().parent.parent
SESSION_KEY = "workspace_id"
PHOTO_SET = "my-bikes"  # the folder under uploads/ that "build a set in the browser" fills
_SESSION_ID = re.compile(r"^[0-9a-f]{32}$")
_BIKE_NAME = re.compile(r"^[\w][\w .()'+-]{0,49}$")


def _env_int(name: str, default: int) -> int:
    try:
        return max(1, int(os.environ.get(name, default)))
    except ValueError:
        return default


def workspace_root() -> Path:
    """Where session folders live: $BIKE_RECOGNITION_WORKDIR or ~/.cache/.../sessions."""
    configured = os.environ.get("BIKE_RECOGNITION_WORKDIR")
    if configured:
        return Path(configured).expanduser()
    return Path.home() / ".cache" / "bike-recognition" / "sessions"


def demo_dataset() -> Path:
    """The built-in demo photos (read-only); $BIKE_RECOGNITION_DEMO_DATA overrides."""
    return Path(os.environ.get("BIKE_RECOGNITION_DEMO_DATA") or APP_ROOT / "data" / "demo-bikes")


def demo_model() -> Path:
    """The model shipped with the demo photos (read-only); $BIKE_RECOGNITION_DEMO_MODEL."""
    return Path(os.environ.get("BIKE_RECOGNITION_DEMO_MODEL") or APP_ROOT / "data" / "demo-model")


def server_folders_allowed() -> bool:
    """Reading any folder on the server is for local use; a hosted app sets this env to 0."""
    return os.environ.get("BIKE_RECOGNITION_SERVER_FOLDERS", "1").strip() != "0"


def safe_filename(name: str, default: str = "file") -> str:
    """A file name without folders or odd characters (uploads name their own files)."""
    name = Path(name.replace("\\", "/")).name
    cleaned = re.sub(r"[^\w.-]+", "_", name).strip("._") or default
    stem, suffix = os.path.splitext(cleaned)
    return stem[:60] + suffix[:10].lower()


def check_bike_name(name: str) -> str:
    """A bike (class) name usable as a folder name, or DatasetError saying why not."""
    name = " ".join(name.split())
    if not _BIKE_NAME.match(name):
        raise DatasetError(
            "A bike name needs 1-50 letters, digits, spaces or - _ . ( ) ' + "
            f"and must start with a letter or digit, not '{name}'"
        )
    return name


def source_stamp(source: str | os.PathLike) -> str:
    """A cheap signature of a dataset source's files (names, sizes, modification times).

    Changes when a photo is added, removed or replaced, so caches keyed by it stay right
    without hashing every photo's bytes on each page view.
    """
    source = Path(source)
    digest = hashlib.sha256(str(source).encode())
    try:
        entries = [source] if source.is_file() else sorted(source.rglob("*"))
        for entry in entries:
            stat = entry.stat()
            digest.update(f"{entry}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    except OSError:
        digest.update(b"unreadable")
    return digest.hexdigest()[:16]


_prune_lock = threading.Lock()
_pruned_roots: set[Path] = set()


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
        except OSError:
            continue  # removed meanwhile by another process
    return removed


def prune_once(root: Path) -> None:
    """Prune old sessions under `root` the first time this process sees it."""
    with _prune_lock:
        if root in _pruned_roots:
            return
        _pruned_roots.add(root)
    hours = float(os.environ.get("BIKE_RECOGNITION_SESSION_HOURS", 24))
    removed = prune_sessions(root, hours * 3600)
    if removed:
        log.info("removed %d session folders idle for over %g h", len(removed), hours)
    # Decoded photos and unpacked zips are shared by all sessions; drop the unused ones.
    cached = prune_cache(hours * 3600)
    if cached:
        log.info("removed %d cache entries unused for over %g h", cached, hours)


class Workspace:
    """One browser session's folder: its uploads, its photo set and its trained models."""

    def __init__(self, session_id: str, root: str | os.PathLike | None = None) -> None:
        if not _SESSION_ID.match(session_id):
            raise ValueError(f"not a session id: {session_id!r}")
        self.session_id = session_id
        self.root = Path(root) if root else workspace_root()
        self.path = self.root / session_id

    @classmethod
    def for_session(
        cls, state: MutableMapping[str, Any], root: str | os.PathLike | None = None
    ) -> Workspace:
        """The workspace of the session whose state this is, its id created on first use."""
        if not _SESSION_ID.match(str(state.get(SESSION_KEY, ""))):
            state[SESSION_KEY] = uuid.uuid4().hex
        workspace = cls(state[SESSION_KEY], root)
        prune_once(workspace.root)
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

    # -- data ---------------------------------------------------------------------------

    def save_upload(self, name: str, data: bytes) -> Path:
        """Store an uploaded file (a dataset zip, say) in this session; returns its path."""
        target = self.uploads / safe_filename(name, "upload")
        partial = target.with_name(f".{target.name}.part")
        partial.write_bytes(data)
        os.replace(partial, target)
        return target

    def add_photos(self, bike: str, photos: Iterable[tuple[str, bytes]]) -> int:
        """Add photos of one bike to the session's photo set; returns how many were new.

        Files are named by their content, so adding the same photo twice keeps one copy
        (a camera names every shot `image.jpg`, which must not overwrite the last one).
        """
        bike = check_bike_name(bike)
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
        """Delete one bike and its photos from the session's photo set."""
        shutil.rmtree(self.photo_set / check_bike_name(bike), ignore_errors=True)

    def describe_source(self, source: str | os.PathLike | None) -> str:
        """A short human name for a dataset source, for headings and the Home page."""
        if not source:
            return "none"
        source = Path(source)
        if source == demo_dataset():
            return "the built-in demo bikes"
        if source == self.photo_set:
            return "your photos (added in the browser)"
        if source.parent == self.path / "uploads":
            return f"uploaded {source.name}"
        return f"folder {source}"

    def source_kind(self, source: str | os.PathLike | None) -> str:
        """Where a dataset source came from: demo, zip, photos (built here) or folder."""
        if not source or Path(source) == demo_dataset():
            return "demo"
        if Path(source) == self.photo_set:
            return "photos"
        if Path(source).parent == self.path / "uploads":
            return "zip"
        return "folder"

    def default_source(self) -> Path | None:
        """The demo photos where they are installed, so the app works on first start."""
        return demo_dataset() if demo_dataset().is_dir() else None

    # -- models -------------------------------------------------------------------------

    def new_model_dir(self, arch: str) -> Path:
        """A fresh, unused folder name for a model about to be trained."""
        stamp = time.strftime("%Y%m%d-%H%M%S")
        base = self.models / f"{arch}-{stamp}"
        candidate, n = base, 1
        while candidate.exists():
            n += 1
            candidate = base.with_name(f"{base.name}-{n}")
        return candidate

    def saved_models(self) -> list[dict]:
        """This session's models and the shipped demo model: model.json + path, newest first.

        Each entry has `shipped` True for the read-only demo model.
        """
        found = [{**meta, "shipped": False} for meta in list_models(self.models)]
        try:
            shipped = read_meta(demo_model())
        except ModelLoadError:
            shipped = None  # not built yet, or removed: the app says "train a model first"
        if shipped:
            found.append({**shipped, "path": str(demo_model()), "shipped": True})
        return sorted(found, key=lambda m: m.get("created", ""), reverse=True)

    def owns_model(self, path: str | os.PathLike) -> bool:
        """True for models this session trained (only those may be deleted)."""
        return Path(path).resolve().parent == self.models.resolve()

    def prune_models(self, keep: int | None = None) -> list[Path]:
        """Keep the newest `keep` models of this session (shared disk); returns removed."""
        keep = keep or _env_int("BIKE_RECOGNITION_MAX_MODELS", 20)
        mine = list_models(self.models)
        removed = [Path(meta["path"]) for meta in mine[keep:]]
        for path in removed:
            shutil.rmtree(path, ignore_errors=True)
        return removed


def model_name(meta: dict) -> str:
    """A saved model's name, marked "(shipped)" for the read-only demo model."""
    name = meta.get("name", Path(meta["path"]).name)
    return f"{name} (shipped)" if meta.get("shipped") else name


def model_summary(meta: dict) -> str:
    """One line to pick a model by: name, architecture, validation accuracy, shipped."""
    accuracy = meta.get("metrics", {}).get("val_accuracy", 0)
    name = meta.get("name", Path(meta["path"]).name)
    return f"{name} · {meta.get('architecture')} · {accuracy:.0%} validation accuracy" + (
        " · shipped" if meta.get("shipped") else ""
    )


def chosen_model(models: list[dict], path: str | None) -> dict | None:
    """The model saved at `path`, else the newest one (None when there are none)."""
    return next((m for m in models if m["path"] == path), models[0] if models else None)


def run_rows(models: list[dict]) -> list[dict]:
    """One row per saved model for a "past runs" table: when, what, how well, how long."""
    rows = []
    for meta in models:
        config = meta.get("config", {})
        augmentation = config.get("augmentation", {})
        metrics = meta.get("metrics", {})
        rows.append(
            {
                "created": meta.get("created", "")[:16].replace("T", " "),
                "name": meta.get("name", Path(meta["path"]).name),
                "val accuracy": metrics.get("val_accuracy"),
                "architecture": meta.get("architecture"),
                "epochs": metrics.get("epochs_run", config.get("epochs")),
                "seconds": metrics.get("train_seconds"),
                "image size": meta.get("image_size"),
                "batch size": config.get("batch_size"),
                "learning rate": config.get("learning_rate"),
                "augmentation": ", ".join(k for k, v in augmentation.items() if v) or "none",
                "shipped": meta.get("shipped", False),
            }
        )
    return rows


def past_runs(models: list[dict]) -> list[dict]:
    """`run_rows` as the Train page lists them: "(shipped)" in the name, not a column."""
    rows = []
    for row in run_rows(models):
        shipped = row.pop("shipped")
        rows.append({**row, "name": row["name"] + (" (shipped)" if shipped else "")})
    return rows


def curve_rows(models: list[dict]) -> list[dict]:
    """Long-form training curves of saved models, for one overlaid chart."""
    rows = []
    for meta in models:
        name = meta.get("name", Path(meta["path"]).name)
        for metric, values in meta.get("history", {}).items():
            for epoch, value in enumerate(values, start=1):
                rows.append({"run": name, "epoch": epoch, "metric": metric, "value": value})
    return rows


# -- the Train form ---------------------------------------------------------------------

# The choices the form's sliders offer (each recipe's own value is added to them).
FORM_CHOICES = {
    "batch_size": (4, 8, 16, 32, 64),
    "learning_rate": (1e-4, 3e-4, 1e-3, 2e-3, 3e-3, 1e-2),
    "image_size": (32, 64, 96, 128, 150, 160, 192, 224),
}
# TrainConfig fields the form sets; the others come from the recipe as they are.
FORM_FIELDS = {*FORM_CHOICES, "arch", "epochs", "augmentation", "val_fraction", "seed"}
AUGMENTATION_STRENGTHS = ("zoom", "rotation", "translation", "brightness", "contrast")


def form_choices(recipe: TrainConfig, name: str) -> list:
    """The values a slider for the TrainConfig field `name` offers, the recipe's included."""
    return sorted({*FORM_CHOICES[name], getattr(recipe, name)})


def augmentation_switches(recipe: TrainConfig) -> list[tuple[str, str, bool]]:
    """(field, label, on in the recipe) for each augmentation that has a strength.

    A switch the recipe has off still shows the strength it would get: `Augmentation()`'s
    default, so there is one place that decides strengths.
    """
    switches = []
    for name in AUGMENTATION_STRENGTHS:
        value = augmentation_strength(recipe, name)
        shown = f"{value:g}°" if name == "rotation" else f"{value:.0%}"
        switches.append(
            (name, f"{name.capitalize()} ±{shown}", bool(getattr(recipe.augmentation, name)))
        )
    return switches


def augmentation_strength(recipe: TrainConfig, name: str) -> float:
    """The strength a switched-on augmentation gets: the recipe's, else the default."""
    return getattr(recipe.augmentation, name) or getattr(Augmentation(), name)


def config_from_form(
    recipe: TrainConfig, *, flip: bool, switched_on: Iterable[str], seed: int, **values: Any
) -> TrainConfig:
    """The recipe with the form's settings: `values` are TrainConfig fields (epochs, ...),
    `switched_on` the augmentations ticked. Raises ConfigError for an invalid setting."""
    switched_on = set(switched_on)
    strengths = {
        name: augmentation_strength(recipe, name) if name in switched_on else 0.0
        for name in AUGMENTATION_STRENGTHS
    }
    augmentation = Augmentation(flip=flip, **strengths)
    return replace(recipe, augmentation=augmentation, seed=int(seed), **values)


def recipe_extras(recipe: TrainConfig) -> str:
    """The recipe's settings the form does not show, as "name: value, ..."."""
    return ", ".join(
        f"{f.name.replace('_', ' ')}: {getattr(recipe, f.name)}"
        for f in fields(recipe)
        if f.name not in FORM_FIELDS and getattr(recipe, f.name) is not None
    )


# -- background training ---------------------------------------------------------------

_slots_lock = threading.Lock()
_slots: threading.BoundedSemaphore | None = None


def _training_slots() -> threading.BoundedSemaphore:
    """Process-wide limit on simultaneous trainings ($BIKE_RECOGNITION_MAX_TRAININGS, 1)."""
    global _slots
    with _slots_lock:
        if _slots is None:
            _slots = threading.BoundedSemaphore(_env_int("BIKE_RECOGNITION_MAX_TRAININGS", 1))
        return _slots


QUEUED, PREPARING, TRAINING, SAVING = "queued", "preparing", "training", "saving"
DONE, STOPPED, FAILED = "done", "stopped", "failed"
_ACTIVE = (QUEUED, PREPARING, TRAINING, SAVING)


@dataclass(frozen=True)
class JobStatus:
    """A consistent snapshot of a training job, safe to read from any thread."""

    state: str = QUEUED
    epoch: int = 0  # 1-based epoch in progress (0 before the first batch)
    epochs: int = 0
    step: int = 0
    steps: int = 0
    fraction: float = 0.0
    elapsed: float = 0.0  # seconds of training so far (after the photos are decoded)
    seconds_left: float | None = None
    history: tuple[dict, ...] = ()  # one row per finished epoch: epoch, loss, accuracy, val_*
    error: str | None = None
    model_dir: Path | None = None  # set once the model is saved
    metrics: dict = field(default_factory=dict)
    stop_requested: bool = False

    @property
    def active(self) -> bool:
        return self.state in _ACTIVE

    @property
    def finished(self) -> bool:
        return not self.active

    @property
    def label(self) -> str:
        """The progress bar's caption: which epoch, and the time left once it is known."""
        if self.fraction >= 1 or self.state == SAVING:
            return f"Epoch {self.epoch} of {self.epochs} done; checking and saving the model…"
        if self.seconds_left is not None:
            return f"Epoch {self.epoch} of {self.epochs}, about {self.seconds_left:.0f} s left"
        return f"Epoch {self.epoch} of {self.epochs}"


def _child_main() -> None:
    """`python -m bikelib.workspace`: one training run for a TrainingJob, in its own process.

    Reads (dataset, config, save_dir, name) as a pickle on stdin, then treats the end of
    stdin as a stop request (the parent closes it to stop, and it also ends when the
    parent is gone, so no training outlives the app). Reports JSON lines on stdout.
    """
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # anything else printed (TF, warnings) goes to stderr, not the protocol
    dataset, config, save_dir, name = pickle.load(sys.stdin.buffer)
    stop = threading.Event()

    def wait_for_stop() -> None:
        sys.stdin.buffer.read()  # returns at end of input
        stop.set()

    threading.Thread(target=wait_for_stop, daemon=True).start()

    def send(kind: str, payload: Any = None) -> None:
        protocol.write(json.dumps([kind, payload]) + "\n")

    from .artifacts import save_model
    from .training import train

    def report(progress) -> None:
        fields = ("kind", "epoch", "epochs", "step", "steps", "elapsed", "logs")
        payload = {key: getattr(progress, key) for key in fields}
        send("progress", {**payload, "fraction": progress.fraction, "left": progress.seconds_left})

    try:
        result = train(dataset, config, on_progress=report, should_stop=stop.is_set)
        send("saving")
        save_model(result, save_dir, name=name)
        metrics = {
            **result.metrics,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "train_seconds": result.seconds,
        }
        send("finished", {"stopped": result.stopped, "metrics": metrics})
    except BikeLibError as error:
        send("failed", str(error))
    except Exception as error:  # the parent shows one sentence; stderr keeps the trace
        log.exception("training %s failed", Path(save_dir).name)
        send("failed", f"Training failed: {type(error).__name__}: {error}")
    protocol.flush()
    sys.stderr.flush()
    # Exit now: the stdin watcher is blocked in a read that would stall interpreter shutdown.
    os._exit(0)


class TrainingJob:
    """One training run, supervised by a background thread: progress, stop, saved result.

    The thread waits for a free training slot, then runs `bikelib.train` in a child
    process (`python -m bikelib.workspace`) and relays its progress into a snapshot any
    thread can read. The child saves the model (the best epoch so far when stopped) to
    `save_dir` and exits.

    Why a process and not just the thread: Streamlit calls `keras.backend.clear_session()`
    after every script run (a fragment redrawing progress each second included), which
    resets Keras' global state under a model being built or trained in another thread of
    the same process. A child process is also the only way to hand a run's memory back
    to the system on a small hosted instance, and it keeps the GIL free for the UI.
    """

    def __init__(self, dataset, config, save_dir: str | os.PathLike, *, name: str | None = None):
        self.dataset = dataset
        self.config = config
        self.save_dir = Path(save_dir)
        self.name = name or self.save_dir.name
        self.created = time.time()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._child: subprocess.Popen | None = None
        self._status = JobStatus(epochs=config.epochs)
        self._thread = threading.Thread(
            target=self._run, name=f"train-{self.save_dir.name}", daemon=True
        )

    @classmethod
    def start(cls, dataset, config, save_dir: str | os.PathLike, **kwargs) -> TrainingJob:
        """Create a job and start its thread."""
        job = cls(dataset, config, save_dir, **kwargs)
        job._thread.start()
        return job

    def stop(self) -> None:
        """Ask the run to end after the current batch; it keeps the best model so far."""
        with self._lock:
            self._stop.set()
            self._status = replace(self._status, stop_requested=True)
            child = self._child
        if child is not None:
            with contextlib.suppress(OSError, ValueError):
                child.stdin.close()  # the child's signal to stop

    def status(self) -> JobStatus:
        with self._lock:
            return self._status

    def wait(self, timeout: float | None = None) -> JobStatus:
        """Block until the job has finished (or `timeout` passed); returns the status."""
        self._thread.join(timeout)
        return self.status()

    def _update(self, **changes) -> None:
        with self._lock:
            self._status = replace(self._status, **changes)

    def _on_progress(self, progress: dict) -> None:
        changes = {
            "state": TRAINING,
            "seconds_left": progress["left"],
            **{k: progress[k] for k in ("epoch", "epochs", "step", "steps", "elapsed", "fraction")},
        }
        if progress["kind"] == "epoch":
            row = {"epoch": progress["epoch"], **progress["logs"]}
            changes["history"] = (*self.status().history, row)
        self._update(**changes)

    def _run(self) -> None:
        slots = _training_slots()
        while not slots.acquire(timeout=0.2):  # queued behind another session's training
            if self._stop.is_set():
                self._update(state=STOPPED)
                return
        try:
            if self._stop.is_set():
                self._update(state=STOPPED)
                return
            self._update(state=PREPARING)
            self._supervise()
        except Exception as error:  # a thread must report its failure, not die silently
            log.exception("training job %s failed", self.save_dir.name)
            self._update(state=FAILED, error=f"Training failed: {type(error).__name__}: {error}")
        finally:
            slots.release()

    def _supervise(self) -> None:
        """Start the child process and relay its messages until it has finished."""
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (str(APP_ROOT), env.get("PYTHONPATH")) if p)
        env.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        child = subprocess.Popen(
            [sys.executable, "-m", "bikelib.workspace"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            env=env,
        )
        with contextlib.suppress(BrokenPipeError):  # a child that died at once is reported below
            child.stdin.write(pickle.dumps((self.dataset, self.config, self.save_dir, self.name)))
            child.stdin.flush()
        with self._lock:
            self._child = child  # from now on stop() closes stdin itself
            stopped_meanwhile = self._stop.is_set()
        if stopped_meanwhile:
            with contextlib.suppress(OSError):
                child.stdin.close()
        final = None
        for line in child.stdout:
            kind, payload = json.loads(line)
            if kind == "progress":
                self._on_progress(payload)
            elif kind == "saving":
                self._update(state=SAVING)
            else:
                final = (kind, payload)
        child.wait()
        if final is None:
            self._update(
                state=FAILED,
                error=f"The training process ended unexpectedly (exit code {child.returncode}); "
                "the machine may be out of memory",
            )
        elif final[0] == "failed":
            self._update(state=FAILED, error=final[1])
        else:
            self._update(
                state=STOPPED if final[1]["stopped"] else DONE,
                model_dir=self.save_dir,
                metrics=final[1]["metrics"],
            )


if __name__ == "__main__":
    _child_main()
