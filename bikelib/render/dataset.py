"""The demo data set on disk: which files with which bikes and seeds
(`plan_dataset`), writing them (`render_dataset`, `save_jpeg`) and a contact sheet of
a data set folder (`contact_sheet`).
"""

from __future__ import annotations

import io
import math
import zlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from .bikes import DEMO_BIKES, BikeIdentity
from .photo import PHOTO_SIZE, render_photo

DEFAULT_DATASET_SEED = 2018
JPEG_QUALITY = 82  # fixed, so the committed set can be rendered again byte for byte


@dataclass(frozen=True)
class PlannedPhoto:
    """One file of a rendered data set: where it goes, which bike, which seed."""

    relative_path: str
    bike: BikeIdentity
    seed: int


def plan_dataset(
    per_class_train: int = 16,
    per_class_val: int = 4,
    seed: int = DEFAULT_DATASET_SEED,
    bikes: Sequence[BikeIdentity] = DEMO_BIKES,
) -> list[PlannedPhoto]:
    """The files `render_dataset` writes, in order. A photo's seed depends only on the
    data set seed, its bike's name, split and number, so asking for fewer photos gives
    the first files of the full set, unchanged."""
    plan = []
    for bike in sorted(bikes, key=lambda b: b.name):
        for split, split_code, count in (
            ("train", 1, per_class_train),
            ("validation", 2, per_class_val),
        ):
            for number in range(1, count + 1):
                sequence = np.random.SeedSequence(
                    [seed, zlib.crc32(bike.name.encode()), split_code, number]
                )
                photo_seed = int(sequence.generate_state(1, dtype=np.uint32)[0])
                path = f"{split}/{bike.name}/{bike.name}-{number:02d}.jpg"
                plan.append(PlannedPhoto(path, bike, photo_seed))
    return plan


def render_dataset(
    out_dir: str | Path,
    per_class_train: int = 16,
    per_class_val: int = 4,
    seed: int = DEFAULT_DATASET_SEED,
    bikes: Sequence[BikeIdentity] = DEMO_BIKES,
    size: tuple[int, int] = PHOTO_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Render `out_dir/train/<bike>/*.jpg` and `out_dir/validation/<bike>/*.jpg`.

    JPEGs (640 x 480 unless `size` says otherwise) at a fixed quality with no metadata,
    so the same call writes the same bytes (with the same Pillow/libjpeg). Other .jpg
    files in those class folders are removed, so the folder holds exactly the planned
    set. `progress(done, total)` is called after each photo. Returns the written paths.
    """
    out_dir = Path(out_dir)
    plan = plan_dataset(per_class_train, per_class_val, seed, bikes)
    wanted = {out_dir / item.relative_path for item in plan}
    for folder in {path.parent for path in wanted}:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.jpg"):
            if stale not in wanted:
                stale.unlink()
    written = []
    for done, item in enumerate(plan, start=1):
        path = out_dir / item.relative_path
        save_jpeg(render_photo(item.bike, item.seed, size), path)
        written.append(path)
        if progress:
            progress(done, len(plan))
    return written


def save_jpeg(image: Image.Image, path: str | Path | io.BytesIO) -> None:
    """Write a JPEG at the data set's fixed quality, without metadata."""
    image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)


def contact_sheet(
    dataset_dir: str | Path,
    out_png: str | Path,
    thumb_size: tuple[int, int] = (160, 120),
    columns: int = 10,
) -> Path:
    """A PNG grid of every photo of `dataset_dir` (train, then validation, per class),
    each labelled with its class and split."""
    dataset_dir = Path(dataset_dir)
    entries = []
    classes = sorted(
        {
            p.name
            for split in ("train", "validation")
            for p in (dataset_dir / split).glob("*")
            if p.is_dir()
        }
    )
    for name in classes:
        for split in ("train", "validation"):
            for path in sorted((dataset_dir / split / name).glob("*.jpg")):
                entries.append((path, f"{name} · {'val' if split == 'validation' else split}"))
    if not entries:
        raise ValueError(f"no train/<class>/*.jpg photos under {dataset_dir}")
    tw, th = thumb_size
    label_h = 14
    rows = math.ceil(len(entries) / columns)
    sheet = Image.new("RGB", (columns * tw, rows * (th + label_h)), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for i, (path, label) in enumerate(entries):
        x, y = (i % columns) * tw, (i // columns) * (th + label_h)
        with Image.open(path) as photo:
            sheet.paste(photo.convert("RGB").resize(thumb_size, Image.Resampling.BOX), (x, y))
        draw.text((x + 3, y + th), label, fill=(20, 20, 20), font=font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours keep a sheet of 100 photos around a megabyte and still read well
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(out_png, optimize=True)
    return out_png
