"""Helpers shared by the benchmark scripts: where the real photos are, the machine, tables."""

from __future__ import annotations

import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SHARED_BIKES = ROOT.parent / "shared" / "datasets" / "umea-bikes"
sys.path.insert(0, str(ROOT))  # run as `python bench/x.py` from anywhere


def require_shared_bikes() -> Path:
    """The real photos, or exit with the reason (they are not part of the repository)."""
    if not SHARED_BIKES.is_dir():
        sys.exit(f"skipped: {SHARED_BIKES} is absent (the real photos are not in the repository)")
    return SHARED_BIKES


def machine() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{platform.system()} {platform.machine()}, {os.cpu_count()} cores ({cpu}), " + (
        f"Python {platform.python_version()}, {time.strftime('%Y-%m-%d')}"
    )


def table(headers: list[str], rows: list[list[object]]) -> str:
    """A Markdown table, so the output can be pasted into bench/RESULTS.md as is."""
    cells = [[str(c) for c in row] for row in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]

    def line(values: list[str]) -> str:
        return "| " + " | ".join(v.ljust(w) for v, w in zip(values, widths, strict=True)) + " |"

    return "\n".join(
        [line(headers), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, cells)]
    )
