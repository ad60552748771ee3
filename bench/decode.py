"""Decode throughput and prediction latency.

12 MP phone photos are made by upscaling the shared 640x480 photos to 4032x3024 (the
pixels are not real detail, but the decoder does the same work). Measures:
  - cold decode of 12 MP JPEGs with and without reduced-size (draft) decoding,
  - warm load of the whole dataset from the decoded-array cache,
  - warm `predict` latency for one 12 MP and one 640x480 JPEG.

    python bench/decode.py [--model data/demo-model] [--count 20]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from common import machine, require_shared_bikes, table
from PIL import Image

from bikelib import DecodeCache, decode, load_split, open_dataset


def timed(function, repeat: int = 1) -> float:
    """Median seconds of `repeat` calls."""
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="data/demo-model", help="saved model for latency")
    parser.add_argument("--count", type=int, default=20, help="12 MP photos to decode")
    parser.add_argument("--size", type=int, default=128, help="model input size")
    args = parser.parse_args()
    photos = sorted(require_shared_bikes().rglob("*.jpg"))
    rows = []
    with tempfile.TemporaryDirectory() as scratch:
        scratch = Path(scratch)
        big = []
        for i, photo in enumerate(photos[: args.count]):
            target = scratch / f"big{i}.jpg"
            Image.open(photo).resize((4032, 3024), Image.Resampling.BICUBIC).save(
                target, quality=92
            )
            big.append(target)
        megabytes = sum(p.stat().st_size for p in big) / len(big) / 1e6
        for label, draft in (("full decode", False), ("draft (reduced-size) decode", True)):
            seconds = timed(lambda draft=draft: [decode(p, args.size, draft=draft) for p in big])
            rows.append(
                [
                    f"12 MP JPEG ({megabytes:.1f} MB), {label}",
                    f"{len(big) / seconds:.1f} photos/s",
                    f"{seconds / len(big) * 1000:.0f} ms",
                ]
            )

        dataset = open_dataset(require_shared_bikes())
        cache = DecodeCache(scratch / "cache")
        cold = timed(lambda: load_split(dataset.samples, args.size, cache=cache))
        warm = timed(lambda: load_split(dataset.samples, args.size, cache=cache), repeat=3)
        n = len(dataset.samples)
        rows.append(
            [
                f"whole dataset ({n} x 640x480 JPEG), cold, fills cache",
                f"{n / cold:.0f} photos/s",
                f"{cold * 1000:.0f} ms total",
            ]
        )
        rows.append(
            [
                f"whole dataset ({n} photos), warm from cache",
                f"{n / warm:.0f} photos/s",
                f"{warm * 1000:.0f} ms total",
            ]
        )

        if Path(args.model).is_dir():
            from bikelib import load_model

            start = time.perf_counter()
            classifier = load_model(args.model)
            rows.append(
                [
                    "load model (first time, includes importing TensorFlow)",
                    "",
                    f"{(time.perf_counter() - start) * 1000:.0f} ms",
                ]
            )
            small = photos[0]
            for label, photo in (("12 MP JPEG", big[0]), ("640x480 JPEG", small)):
                classifier.predict(photo)  # warm-up: the first call traces the graph
                seconds = timed(lambda photo=photo: classifier.predict(photo), repeat=10)
                rows.append([f"warm predict, one {label}", "", f"{seconds * 1000:.0f} ms"])
        else:
            print(f"(no model at {args.model}: prediction latency not measured)")
    print(f"Decode and predict, {machine()}\n")
    print(table(["what", "throughput", "time"], rows))


if __name__ == "__main__":
    main()
