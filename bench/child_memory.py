"""Memory of one training child alone: `python -m bikelib.job_child` as the app starts it.

One short run on the demo bikes (what the soak's Train action asks for: 2 epochs at
64 px), fed to the child the way `bikelib.jobs.TrainingJob` feeds it (a pickle on stdin,
JSON lines back), with the server's environment (MALLOC_ARENA_MAX as scripts/app.sh sets
it, unless given). Sampled every 0.25 s: RSS, PSS and USS from /proc/PID/smaps_rollup,
by phase (before the first progress line: start-up, imports and photos; training;
saving). Also lists which of the heavy or app-only modules the child imported
(`python -X importtime`): it needs TensorFlow, Keras, numpy and Pillow, nothing else.

    python bench/child_memory.py [--epochs 2] [--image-size 64] [--repeat 1]
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import pickle
import re
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from common import ROOT, machine, table
from soak import MB, memory_of

# Modules a training child has no use for; any of them imported is memory for nothing.
NOT_NEEDED = (
    "streamlit",
    "pandas",
    "altair",
    "pyarrow",
    "matplotlib",
    "scipy",
    "sklearn",
    "torch",
    "bikelib.gate",
    "bikelib.pretrained",
    "bikelib.explain",
    "bikelib.render",
    "bikelib.portable",
    "bikelib.scan",
)
PURE = {"streamlit", "altair"} | {m for m in NOT_NEEDED if m.startswith("bikelib.")}


def run_child(epochs: int, image_size: int) -> dict:
    from bikelib import TrainConfig, open_dataset
    from bikelib.jobs import TrainingJob

    dataset = open_dataset(ROOT / "data" / "demo-bikes")
    config = TrainConfig(epochs=epochs, image_size=image_size)
    env = dict(os.environ)
    env.setdefault("MALLOC_ARENA_MAX", "2")
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(ROOT), env.get("PYTHONPATH")) if p)
    env["TF_CPP_MIN_LOG_LEVEL"] = "2"
    with tempfile.TemporaryDirectory(prefix="child-memory-") as scratch:
        env["BIKELIB_CACHE_DIR"] = str(Path(scratch) / "cache")
        command = [TrainingJob.command[0], "-X", "importtime", *TrainingJob.command[1:]]
        child = subprocess.Popen(
            command,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env,
            cwd=scratch,
        )
        phase = ["start-up"]
        samples: list[tuple[str, dict]] = []
        stop = threading.Event()

        mapped: set[str] = set()  # packages with compiled code loaded in the child

        def sample() -> None:
            while not stop.is_set():
                memory = memory_of(child.pid)
                if memory:
                    samples.append((phase[0], memory))
                with contextlib.suppress(OSError):
                    maps = Path(f"/proc/{child.pid}/maps").read_text()
                    mapped.update(re.findall(r"site-packages/([^/\s]+)/\S*\.so", maps))
                stop.wait(0.25)

        stderr: list[bytes] = []
        threading.Thread(target=lambda: stderr.append(child.stderr.read()), daemon=True).start()
        sampler = threading.Thread(target=sample, daemon=True)
        began = time.monotonic()
        sampler.start()
        save_dir = Path(scratch) / "model"
        child.stdin.write(pickle.dumps((dataset, config, str(save_dir), "m", "demo bikes")))
        child.stdin.flush()  # kept open: its end is the stop request
        outcome = None
        for line in child.stdout:
            kind, payload = json.loads(line)
            if kind == "progress":
                phase[0] = "training"
            elif kind == "saving":
                phase[0] = "saving"
            else:
                outcome = (kind, payload)
                break
        child.stdin.close()
        child.wait(60)
        stop.set()
        sampler.join()
        seconds = time.monotonic() - began
    # importtime lists failed imports too (Keras tries matplotlib and sklearn, absent
    # here): pure-Python modules count when listed, packages with compiled code when
    # their code is mapped into the child.
    listed = {name.decode() for name in re.findall(rb"\|\s+(\S+)\n", b"".join(stderr))}
    unneeded = sorted(
        m for m in NOT_NEEDED if (m in listed and m in PURE) or m.split(".")[0] in mapped
    )
    peaks = {}
    for name in ("start-up", "training", "saving", "all"):
        mine = [m for p, m in samples if name in (p, "all")]
        peaks[name] = {k: max((m[k] for m in mine), default=0) for k in ("rss", "pss", "uss")}
    return {
        "outcome": outcome,
        "seconds": seconds,
        "peaks": peaks,
        "unneeded": unneeded,
        "compiled": sorted(mapped),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--image-size", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    print(f"{machine()}; MALLOC_ARENA_MAX={os.environ.get('MALLOC_ARENA_MAX', '2 (default)')}")
    rows = []
    for run in range(1, args.repeat + 1):
        result = run_child(args.epochs, args.image_size)
        if not result["outcome"] or result["outcome"][0] != "finished":
            sys.exit(f"the training did not finish: {result['outcome']}")
        peaks = result["peaks"]
        rows.append(
            [
                run,
                f"{result['seconds']:.0f}",
                *(
                    " / ".join(f"{peaks[p][k] / MB:.0f}" for k in ("rss", "pss", "uss"))
                    if peaks[p]["rss"]
                    else "(too short)"
                    for p in ("start-up", "training", "saving", "all")
                ),
                ", ".join(result["unneeded"]) or "none",
            ]
        )
    print(f"\n{args.epochs} epochs at {args.image_size} px on data/demo-bikes\n")
    headers = ["run", "s", "start-up", "training", "saving", "peak", "imported, not needed"]
    print("peak RSS / PSS / USS in MB by phase\n")
    print(table(headers, rows))
    print(f"\npackages with compiled code in the child: {', '.join(result['compiled'])}")


if __name__ == "__main__":
    main()
