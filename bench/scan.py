"""Scanning listings: photos per second, where the time goes, and precision at k.

A listing set of rendered 640 x 480 JPEGs is written once to a folder (kept for the
next run): for each demo bike, `--true` photos of it at new places (as a stranger who
stole it would photograph it), and photos of random other bikes up to `--photos` in all.
Then, with the shipped model and the bicycle gate on:

- throughput: `bikelib.scan.scan` over the folder, as `python -m bikelib scan` runs it,
  and the same work cut into its steps (decode, gate, the model's own pass), each timed
  alone over every photo;
- precision at k: each demo bike in turn is "my bike"; k = its number of true photos;
  the share of the top k of the ranking (best first, "no bicycle" last, as `scan`
  sorts) that really are that bike. Also without the gate's reordering.

    python bench/scan.py [--model data/demo-model] [--photos 1000] [--true 10]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
from common import ROOT, machine, table

SIZE = (640, 480)
STRANGER_SEED = 2_000_000  # far from the seeds the demo set and the strangers use


def _render(job: tuple[str, int, str]) -> None:
    from bikelib.render import DEMO_BIKES, random_bike, render_photo, save_jpeg

    bike, seed, path = job
    identity = next((b for b in DEMO_BIKES if b.name == bike), None) or random_bike(seed)
    save_jpeg(render_photo(identity, seed, SIZE, place="new"), path)


def listing_folder(photos: int, true: int) -> tuple[Path, dict[str, list[str]]]:
    """The rendered listing set (made once), and the files that show each demo bike."""
    from bikelib.render import DEMO_BIKES

    folder = Path(tempfile.gettempdir()) / f"bike-scan-bench-{photos}-{true}-{SIZE[0]}"
    folder.mkdir(exist_ok=True)
    jobs, truth = [], {}
    for b, bike in enumerate(DEMO_BIKES):
        names = [str(folder / f"{bike.name}-{i:03d}.jpg") for i in range(true)]
        truth[bike.name] = names
        jobs += [(bike.name, 7_000 + 100 * b + i, n) for i, n in enumerate(names)]
    strangers = photos - len(jobs)
    jobs += [
        ("", STRANGER_SEED + i, str(folder / f"zz-other-{i:04d}.jpg")) for i in range(strangers)
    ]
    todo = [job for job in jobs if not os.path.exists(job[2])]
    if todo:
        print(f"rendering {len(todo)} listing photos into {folder} (once)…", flush=True)
        with ProcessPoolExecutor(os.cpu_count() or 1) as pool:
            list(pool.map(_render, todo, chunksize=8))
    return folder, truth


CPU = {}  # step name -> process CPU seconds (the machine is shared: wall time says little)


def timed(function, *args, name: str = ""):
    started, cpu = time.perf_counter(), time.process_time()
    value = function(*args)
    CPU[name] = time.process_time() - cpu
    return value, time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=str(ROOT / "data" / "demo-model"))
    parser.add_argument("--photos", type=int, default=1000)
    parser.add_argument("--true", type=int, default=10, help="photos of each demo bike")
    args = parser.parse_args()
    folder, truth = listing_folder(args.photos, args.true)

    from bikelib import load_model
    from bikelib import scan as scanning
    from bikelib.gate import GATE_SIZE, QUICK_SIZE

    classifier = load_model(args.model)
    assert classifier.gate is not None, "the bicycle gate is not installed"
    files = sorted(str(p) for p in folder.glob("*.jpg"))
    bike = classifier.classes[0]
    scanning.scan(classifier, bike, ((f, f) for f in files[:32]))  # warm-up: graphs, caches
    rows, seconds = timed(
        scanning.scan, classifier, bike, scanning.listing_photos([folder]), name="scan"
    )
    assert len(rows) == len(files) and not any(r.error for r in rows)

    decoded, t_decode = timed(lambda: [classifier._decode_both(f) for f in files], name="decode")
    small = np.stack([d[0] for d in decoded])
    big = np.stack([d[1] for d in decoded])
    _, t_gate = timed(classifier.gate.bicycle_probability, big, name="gate")
    if classifier.embed is not None:
        out, t_model = timed(classifier.embed, small, name="model")
        scores = {b: classifier.reference.scores(out, i) for i, b in enumerate(classifier.classes)}
        model_step = "embedder (features, flipped too)"
    else:
        probs, t_model = timed(classifier.predict_arrays, small, name="model")
        scores = {b: probs[:, i] for i, b in enumerate(classifier.classes)}
        model_step = "model (probabilities: no open-set reference)"
    bicycle = classifier.gate.bicycle_probability(big)
    n = len(files)
    print(
        f"\n{machine()}; model {args.model} ({classifier.name}, {classifier.image_size} px, "
        f"reference: {'yes' if classifier.reference else 'no'}); {n} photos {SIZE[0]}x{SIZE[1]}\n"
    )
    print(
        table(
            ["step", "wall s", "photos/s (wall)", "ms/photo (wall)", "CPU ms/photo"],
            [
                [
                    name,
                    f"{t:.1f}",
                    f"{n / t:.1f}",
                    f"{1000 * t / n:.1f}",
                    f"{1000 * CPU[k] / n:.1f}",
                ]
                for name, k, t in (
                    ("scan() end to end, gate on", "scan", seconds),
                    (
                        f"decode JPEG to {classifier.image_size} + {GATE_SIZE} px",
                        "decode",
                        t_decode,
                    ),
                    (f"bicycle gate (looks at {QUICK_SIZE}, {GATE_SIZE} px)", "gate", t_gate),
                    (model_step, "model", t_model),
                )
            ],
        )
    )

    no_bicycle = bicycle < classifier.gate_threshold
    result = []
    for name, true_files in truth.items():
        if name not in scores:
            continue
        k, wanted = len(true_files), {files.index(f) for f in true_files}
        gated = sorted(range(n), key=lambda i: (no_bicycle[i], -scores[name][i]))[:k]
        plain = np.argsort(-scores[name])[:k]
        missed_by_gate = sum(no_bicycle[i] for i in wanted)
        result.append(
            [
                name,
                k,
                f"{len(wanted & set(gated)) / k:.0%}",
                f"{len(wanted & set(plain.tolist())) / k:.0%}",
                missed_by_gate,
            ]
        )
    print()
    print(
        table(
            [
                "my bike",
                "k",
                "precision@k (scan order)",
                "without the gate",
                "true photos gated as no bicycle",
            ],
            result,
        )
    )
    print(f"\nphotos the gate calls 'no bicycle': {no_bicycle.mean():.0%} of all")


if __name__ == "__main__":
    main()
