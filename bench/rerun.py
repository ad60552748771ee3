"""Cheap reruns: what a page run asks again on every click, cold and from the caches.

Streamlit reruns a page on every click. Two things each run asks again are measured here,
with `bikelib.stamps` cold (the first run, or a cleared cache) and reused (the next runs):
  - the stamp of a dataset folder of many files (`source_stamp`; a server folder, say),
  - the listing of a session's saved models (`Workspace.saved_models`: every model.json).

Files are written to a temporary folder (no real photos needed: only names and sizes
count). Medians of `--repeat` runs.

    python bench/rerun.py [--files 5000] [--models 20] [--repeat 7]
"""

from __future__ import annotations

import argparse
import hashlib
import os
import shutil
import statistics
import tempfile
import time
import uuid
from pathlib import Path

from common import ROOT, machine, table

from bikelib import stamps
from bikelib.sessions import Workspace
from bikelib.stamps import source_stamp


def median_ms(function, repeat: int, before=None) -> float:
    times = []
    for _ in range(repeat):
        if before:
            before()
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def old_stamp(source: Path) -> str:
    """The stamp as every page run computed it before `bikelib.stamps` (rglob + stat)."""
    digest = hashlib.sha256(str(source).encode())
    for entry in sorted(source.rglob("*")):
        stat = entry.stat()
        digest.update(f"{entry}:{stat.st_size}:{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


def photo_folder(root: Path, files: int, per_folder: int = 250) -> Path:
    """`files` small files in folders of `per_folder`, dated a minute back (quiet)."""
    past = time.time() - 60
    for i in range(files):
        folder = root / f"bike-{i // per_folder:03d}"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / f"photo{i:05d}.jpg").write_bytes(b"x" * (100 + i % 50))
    for folder, _, names in os.walk(root):
        for path in [folder, *(os.path.join(folder, n) for n in names)]:
            os.utime(path, (past, past))
    return root


def models_folder(workspace: Workspace, count: int) -> None:
    """`count` copies of the shipped demo model's model.json (an empty model.keras)."""
    meta = (ROOT / "data" / "demo-model" / "model.json").read_text()
    for i in range(count):
        model = workspace.models / f"default-{i:03d}"
        model.mkdir()
        (model / "model.keras").write_bytes(b"")
        (model / "model.json").write_text(meta)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--files", type=int, default=5000, help="files in the stamped folder")
    parser.add_argument("--models", type=int, default=20, help="saved models listed")
    parser.add_argument("--repeat", type=int, default=7, help="runs measured, median kept")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="bench-rerun-"))
    try:
        folder = photo_folder(work / "photos", args.files)
        os.environ["BIKE_RECOGNITION_WORKDIR"] = str(work / "sessions")
        os.environ["BIKE_RECOGNITION_DEMO_MODEL"] = str(ROOT / "data" / "demo-model")
        workspace = Workspace(uuid.uuid4().hex)
        models_folder(workspace, args.models)

        def clear_stamps() -> None:
            stamps.invalidate()

        def clear_json() -> None:
            stamps._json.clear()

        source_stamp(folder)  # the OS's own caches warm in every column
        stamp_before = median_ms(lambda: old_stamp(folder), args.repeat)
        stamp_cold = median_ms(lambda: source_stamp(folder), args.repeat, clear_stamps)
        source_stamp(folder)
        stamp_reused = median_ms(lambda: source_stamp(folder), args.repeat)
        workspace.saved_models()
        list_cold = median_ms(workspace.saved_models, args.repeat, clear_json)
        workspace.saved_models()
        list_reused = median_ms(workspace.saved_models, args.repeat)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    print(machine())
    rows = [
        [
            f"stamp a folder of {args.files:,} files",
            f"{stamp_before:.1f}",
            f"{stamp_cold:.1f}",
            f"{stamp_reused:.2f}",
        ],
        [
            f"list {args.models} saved models + the shipped one",
            "= cold (every model.json parsed)",
            f"{list_cold:.1f}",
            f"{list_reused:.2f}",
        ],
    ]
    print(table(["each page run", "before (ms)", "cold (ms)", "reused (ms)"], rows))
    print(f"(medians of {args.repeat} runs; reused: within the {stamps.TTL_S:g} s TTL)")


if __name__ == "__main__":
    main()
