"""The bicycle gate at smaller inputs: is 224 px needed, or does a cheaper size do?

The gate is most of a scan's cost (bench/RESULTS.md, "Scanning listings"). EfficientNet
ends in global pooling, so the same weights run at any input size; this prints, for each
size side by side, the share of pictures that pass the gate (bicycle probability above
the threshold) and the CPU time per photo, so the choice and its margin are visible.

Rows: real phone photos of bikes (should pass), rendered demo bikes at their usual spot
and at new places (should pass), and pictures with no bicycle (should not): rendered
places without a bike (`render_scene`), uniform noise, plain colours, gradients.

    python bench/gate_size.py [--sizes 224,192,160,128] [--n 64]
"""

from __future__ import annotations

import argparse
import os

import numpy as np
from common import ROOT, machine, require_shared_bikes, table
from gate import timed

from bikelib import decode, pretrained
from bikelib.gate import (
    BICYCLE_CLASSES,
    GATE_SIZE,
    GATE_THRESHOLD,
    QUICK_SIZE,
    load_gate,
    load_pretrained_model,
)
from bikelib.images import to_array


def pictures(size: int, n: int) -> dict[str, np.ndarray]:
    from bikelib import render

    rng = np.random.default_rng(0)
    real = sorted(require_shared_bikes().rglob("*.jpg"))
    demo = sorted((ROOT / "data" / "demo-bikes").rglob("*.jpg"))
    new_places = [
        render.render_photo(bike, 50_000 + i, (320, 240), place="new")
        for bike in render.DEMO_BIKES
        for i in range(n // len(render.DEMO_BIKES))
    ]
    scenes = [render.render_scene(70_000 + i, (320, 240)) for i in range(n)]
    y, x = np.mgrid[0:size, 0:size] / (size - 1)
    gradients = []
    for _ in range(n):
        angle, (a, b) = rng.uniform(0, 2 * np.pi), rng.integers(0, 256, (2, 3))
        t = (np.cos(angle) * x + np.sin(angle) * y)[..., None]
        gradients.append((a + (b - a) * (t - t.min()) / np.ptp(t)).round().astype(np.uint8))
    return {
        "umea-bikes (real bikes)": np.stack([decode(p, size) for p in real]),
        "demo bikes, usual spot": np.stack([decode(p, size) for p in demo]),
        "demo bikes, new places": np.stack([to_array(p, size) for p in new_places]),
        "rendered places, no bike": np.stack([to_array(p, size) for p in scenes]),
        "uniform noise": rng.integers(0, 256, (n, size, size, 3), dtype=np.uint8),
        "plain colours": np.broadcast_to(
            rng.integers(0, 256, (n, 1, 1, 3)).astype(np.uint8), (n, size, size, 3)
        ).copy(),
        "two-colour gradients": np.stack(gradients),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", default="224,192,160,128")
    parser.add_argument("--n", type=int, default=64, help="pictures per rendered/synthetic row")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    base = load_pretrained_model()
    sizes = [int(s) for s in args.sizes.split(",")]
    passed: dict[str, list[str]] = {}
    costs = []
    for size in sizes:
        # The same network and weights, built for another input size.
        model = pretrained.efficientnet_lite0(include_top=True, size=size)
        model.set_weights(base.get_weights())
        for name, images in pictures(size, args.n).items():
            probabilities = model.predict(images, batch_size=32, verbose=0)
            share = (probabilities[:, BICYCLE_CLASSES].sum(axis=1) > GATE_THRESHOLD).mean()
            passed.setdefault(name, [name, str(len(images))]).append(f"{share:.0%}")
        batch = pictures(size, 32)["umea-bikes (real bikes)"]
        model.predict(batch[:32], verbose=0)  # warm-up: the first call traces the graph
        _, wall, cpu = timed(lambda m=model, b=batch: [m.predict(b, verbose=0) for _ in range(3)])
        count = 3 * len(batch)
        costs.append([f"{size} px", f"{wall / count * 1000:.1f}", f"{cpu / count * 1000:.1f}"])

    # What the app runs: the gate's two looks (QUICK_SIZE, then GATE_SIZE where unsure).
    gate = load_gate()
    two_looks = f"two looks ({QUICK_SIZE}, then {GATE_SIZE})"
    full = pictures(GATE_SIZE, args.n)
    for name, images in full.items():
        share = (gate.bicycle_probability(images) > GATE_THRESHOLD).mean()
        passed[name].append(f"{share:.0%}")
    for name in ("umea-bikes (real bikes)", "rendered places, no bike"):
        batch = full[name][:32]
        gate.bicycle_probability(batch)  # warm-up
        _, wall, cpu = timed(lambda b=batch: [gate.bicycle_probability(b) for _ in range(3)])
        count = 3 * len(batch)
        costs.append(
            [f"{two_looks}, {name}", f"{wall / count * 1000:.1f}", f"{cpu / count * 1000:.1f}"]
        )
    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"Bicycle gate by input size, {machine()}, load average {load}\n")
    print(f"Share of pictures that pass (bicycle probability > {GATE_THRESHOLD}):\n")
    print(table(["pictures", "n", *[f"{s} px" for s in sizes], two_looks], list(passed.values())))
    print()
    print(table(["input", "wall ms/photo", "CPU ms/photo"], costs))


if __name__ == "__main__":
    main()
