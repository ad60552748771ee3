"""The bicycle gate (ImageNet EfficientNet-Lite0): what it says about bikes and non-bikes.

Rows: the shared real photos, the rendered demo photos, and pictures with no bicycle
(uniform noise, plain colours, two-colour gradients); where scikit-image is installed
(`pip install -r bench/requirements.txt`: its wheel ships a few real photos), also its
photos with no bicycle in them (a cat, coffee, an astronaut, a rocket, textures, ...) and
its one real motorbike (a stereo pair: 2 views x 6 framings x mirrored, none showing the
bicycle that leans at the left edge of the garage). Columns: how many, the share with
a bicycle class in the top 5, the share whose summed bicycle probability is above the
gate's threshold, and the share the network finds more motorbike than bicycle. Then the
costs: importing Keras, converting the weights (first use ever), loading the converted
file (every later process) and classifying in batches of 32.

    python bench/gate.py [--demo data/demo-bikes] [--synthetic 64]

A picture the gate does not pass gets the verdict "no bicycle" (bikelib.openset.decide).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
from common import ROOT, machine, require_shared_bikes, table

from bikelib import decode
from bikelib.gate import (
    BATCH_SIZE,
    GATE_SIZE,
    GATE_THRESHOLD,
    BicycleGate,
    converted_model_path,
    load_pretrained_model,
)


def photos(folder: Path) -> np.ndarray:
    return np.stack([decode(p, GATE_SIZE) for p in sorted(folder.rglob("*.jpg"))])


def noise(rng, n: int) -> np.ndarray:
    return rng.integers(0, 256, (n, GATE_SIZE, GATE_SIZE, 3), dtype=np.uint8)


def plain(rng, n: int) -> np.ndarray:
    """Black, white, grey, primaries, then random colours."""
    fixed = [(0, 0, 0), (255, 255, 255), (128, 128, 128), (255, 0, 0), (0, 255, 0), (0, 0, 255)]
    colours = np.concatenate([np.array(fixed), rng.integers(0, 256, (n - len(fixed), 3))])
    return np.broadcast_to(
        colours[:, None, None, :].astype(np.uint8), (n, GATE_SIZE, GATE_SIZE, 3)
    ).copy()


def gradients(rng, n: int) -> np.ndarray:
    """Linear blends between two random colours, in a random direction."""
    y, x = np.mgrid[0:GATE_SIZE, 0:GATE_SIZE] / (GATE_SIZE - 1)
    out = np.empty((n, GATE_SIZE, GATE_SIZE, 3), np.uint8)
    for i in range(n):
        angle = rng.uniform(0, 2 * np.pi)
        t = np.cos(angle) * x + np.sin(angle) * y
        t = (t - t.min()) / (t.max() - t.min())
        a, b = rng.integers(0, 256, (2, 3))
        out[i] = (a + (b - a) * t[..., None]).round().astype(np.uint8)
    return out


def square(picture: np.ndarray, box=None) -> np.ndarray:
    """An RGB picture (or a box of it) squashed to the gate's square input, as decode does."""
    from PIL import Image

    image = Image.fromarray(picture)
    if image.mode != "RGB":
        image = image.convert("RGB")
    if box is not None:
        image = image.crop(box)
    return np.asarray(image.resize((GATE_SIZE, GATE_SIZE), Image.Resampling.BILINEAR))


def scikit_image_photos() -> dict[str, np.ndarray]:
    """Real photos with no bicycle, and one real motorbike, from scikit-image's wheel."""
    try:
        from skimage import data
    except ImportError:
        print("skipped the real non-bicycle rows: scikit-image is not installed", flush=True)
        return {}
    grey = [data.camera(), data.brick(), data.grass(), data.gravel(), data.coins()]
    grey += [data.moon(), data.page(), (data.horse() * 255).astype(np.uint8)]
    colour = [data.chelsea(), data.coffee(), data.astronaut(), data.rocket()]
    colour += [data.hubble_deep_field(), data.retina(), data.immunohistochemistry()]
    colour += [data.logo()[..., :3], data.colorwheel()]
    no_bicycle = [square(p) for p in colour] + [square(np.stack([p] * 3, -1)) for p in grey]
    left, right, _ = data.stereo_motorcycle()
    h, w = left.shape[:2]
    # Fractions of the frame; every box leaves out the left fifth, where a bicycle leans.
    framings = [(0.2, 0, 1, 1), (0.2, 0.1, 0.9, 1), (0.55, 0.1, 1, 1), (0.2, 0.2, 0.6, 1)]
    framings += [(0.35, 0.3, 0.75, 0.9), (0.25, 0, 0.95, 0.8)]
    motorbike = [
        view
        for picture in (left, right)
        for x0, y0, x1, y1 in framings
        for framed in [square(picture, (int(x0 * w), int(y0 * h), int(x1 * w), int(y1 * h)))]
        for view in (framed, framed[:, ::-1])
    ]
    return {
        "real photos, no bicycle (scikit-image)": np.stack(no_bicycle),
        "a real motorbike (scikit-image, 24 framings)": np.stack(motorbike),
    }


def timed(function):
    """(result, wall seconds, CPU seconds of this process)."""
    wall, cpu = time.perf_counter(), time.process_time()
    result = function()
    return result, time.perf_counter() - wall, time.process_time() - cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--demo", default=str(ROOT / "data" / "demo-bikes"))
    parser.add_argument("--synthetic", type=int, default=64, help="pictures per synthetic row")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    rng = np.random.default_rng(0)
    sets = {
        "umea-bikes (real phone photos)": photos(require_shared_bikes()),
        "demo-bikes (rendered)": photos(Path(args.demo)),
        "uniform noise": noise(rng, args.synthetic),
        "plain colours": plain(rng, args.synthetic),
        "two-colour gradients": gradients(rng, args.synthetic),
        **scikit_image_photos(),
    }

    costs = []
    _, wall, cpu = timed(lambda: __import__("keras"))
    costs.append(["import Keras + TensorFlow", f"{wall:.1f} s", f"{cpu:.1f} s"])
    with tempfile.TemporaryDirectory() as scratch:
        model, wall, cpu = timed(lambda: load_pretrained_model(scratch))
        size = converted_model_path(scratch).stat().st_size / 1e6
        costs.append(
            [
                f"convert .pth -> .keras (first use; {size:.1f} MB file)",
                f"{wall:.1f} s",
                f"{cpu:.1f} s",
            ]
        )
        model, wall, cpu = timed(lambda: load_pretrained_model(scratch))
        costs.append(
            ["load the converted .keras (later processes)", f"{wall:.1f} s", f"{cpu:.1f} s"]
        )
    gate = BicycleGate(model)

    rows = []
    for name, images in sets.items():
        scores = gate.scores(images)
        rows.append(
            [
                name,
                len(images),
                f"{scores.bicycle_in_top(5).mean():.0%}",
                f"{scores.passes().mean():.0%}",
                f"{(scores.motorbike > scores.bicycle).mean():.0%}",
                f"{np.median(scores.bicycle):.3f}",
            ]
        )

    images = sets["umea-bikes (real phone photos)"]
    gate.scores(images[:BATCH_SIZE])  # warm-up: the first call traces the graph
    _, wall, cpu = timed(lambda: [gate.scores(images) for _ in range(3)])
    count = 3 * len(images)
    costs.append(
        [
            f"classify, batches of {BATCH_SIZE} (224 px arrays, decoding not included)",
            f"{wall / count * 1000:.1f} ms/photo",
            f"{cpu / count * 1000:.1f} ms/photo",
        ]
    )

    load = ", ".join(f"{v:.1f}" for v in os.getloadavg())
    print(f"Bicycle gate (EfficientNet-Lite0, ImageNet), {machine()}, load average {load}\n")
    headers = ["pictures", "n", "bicycle in top 5", f"bicycle prob > {GATE_THRESHOLD}"]
    headers += ["motorbike > bicycle", "median bicycle prob"]
    print(table(headers, rows))
    print()
    print(table(["cost", "wall", "CPU time"], costs))


if __name__ == "__main__":
    main()
