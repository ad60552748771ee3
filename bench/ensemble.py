"""Two backbones at once: their match scores averaged, bike by bike.

Each backbone (the shipped one, or a candidate made with `python -m bikelib pretrain DIR
...`) sees the photos at the size it was pretrained at, whitened by its own map and scored
with its own `nearest+plda` (`openset.nearest_plus_plda`, the app's score); a weight w
takes w times the first backbone's score plus (1 - w) times the second's for each bike,
then the best bike. On bench/plda.py's protocols, for each weight: AUROC (mean / worst
fold) and, at the threshold calibrated on the held-out photos (95% accepted), the bike's
photos accepted / other bikes' rejected; both 200 / 200 draws pooled last. The last column
is a ceiling for any calibration, not one: the strangers' photos rejected on both draws at
the line that accepts 95% of the bike's photos there, set on those photos themselves.

`--calibrations` sets the line on other photos than the held-out ones: `held-out+crops`
adds bench/gallery.py's crops of each held-out photo (`CALIBRATION_GRID`), so that the line
is set on photos framed as listings frame a bike (close-ups of a part) as well as whole;
`held-out+corners` the app's (`images.corner_crops`, `openset.CALIBRATION_CROP`).

`--second-mirror yes,no` scores the second backbone with and without each photo's mirror
image averaged in (the first always has it): rows for each, side by side, because the
mirror doubles the second network's cost on every photo a scan or Classify sees.

`--decode-at N` decodes every photo at N px, and each network resizes it to its own size
inside (as a model does with any photo): both backbones fed the same arrays, as one
model would feed them; by default each sees photos decoded at its own size.

    python bench/ensemble.py FIRST SECOND [--weights 1,0,0.5,0.7,0.3]
        [--calibrations held-out,held-out+crops,held-out+corners] [--decode-at N]
        [--second-mirror yes,no]
    (FIRST or SECOND may be "shipped": data/backbone)

A second table pools the listings protocol's 4-photo listings as the app does
(`listing_pools`): Classify's "These photos are one listing" (each bike's mean match over
the listing's photos, the best bike's) and Scan's "Each folder is one listing" (the mean
match to the bike looked for: each demo bike's 10 listings against the 50 strangers',
averaged over the bikes), at the same line as the single photos.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import ROOT, machine, table
from gallery import CALIBRATION_GRID, GRIDS, crops
from openset import PHOTOS_PER_LISTING, Untrained, app_pools
from plda import DRAWS, PROTOCOLS, features, pool, summary
from zooms import case_photos

from bikelib import backbone
from bikelib.cohort import fit_plda
from bikelib.dataset import open_dataset
from bikelib.embedding import Embedder, Outputs
from bikelib.images import corner_crops
from bikelib.openset import CALIBRATION_CROP, calibrate, nearest_plus_plda, trade_off

SHIPPED = backbone.BACKBONE_DIR


# What the line may be set on beside the held-out photos: crops of each, cut from the
# full-size photo and decoded at the photos' size.
CROPS = {
    "held-out+crops": lambda path, size: crops(path, GRIDS[CALIBRATION_GRID], size),
    "held-out+corners": lambda path, size: corner_crops(path, size, CALIBRATION_CROP),
}


def held_crops(embed: Embedder, size: int, cut) -> dict:
    """{(protocol, fold): features of the crops `cut` makes of its held-out photos}."""
    out, cropped = {}, {}
    for protocol in ("real", *DRAWS, "listings"):
        for i, (dataset, _, _) in enumerate(case_photos(protocol, size)):
            for sample in dataset.validation:  # the real folds share photos: each once
                if sample.path not in cropped:
                    cropped[sample.path] = embed(cut(sample.path, size)).features
            out[protocol, i] = np.concatenate([cropped[s.path] for s in dataset.validation])
    out["rendered", 0] = out[DRAWS[0], 0]  # the 50 / 50 is rendered200's first photos
    return out


def per_bike_scores(
    folder: Path, calibrations=(), decode: int | None = None, mirror: bool = True
) -> dict:
    """{(protocol, fold, set): (photos, bikes) scores} with the backbone in `folder`, the
    photos decoded at `decode` px (default: the backbone's size), each photo's mirror
    image averaged in or not; the sets: known, other, held, and each of `calibrations`'
    crops."""
    backbone.BACKBONE_DIR = folder
    model = Untrained(2, backbone.image_size_of()).model
    embed = Embedder(model, whitening=backbone.whitening_for(), flip=mirror)
    size = decode or backbone.image_size_of()
    cohort, out = backbone.cohort_for(), {}
    cut = {name: held_crops(embed, size, CROPS[name]) for name in calibrations if name in CROPS}
    for protocol, folds in features(embed, size).items():
        for i, fold in enumerate(folds):
            refs, labels = fold["refs"], fold["labels"]
            score = nearest_plus_plda(fit_plda(cohort, refs, labels))
            sets = {name: fold[name] for name in ("known", "other", "held")}
            sets |= {name: crops[protocol, i] for name, crops in cut.items()}
            for name, x in sets.items():
                outputs = Outputs(x, None, None)
                out[protocol, i, name] = np.stack(
                    [
                        score(outputs, refs[labels == b], labels[labels == b])
                        for b in np.unique(labels)
                    ],
                    axis=1,
                )
    return out


def listing_pools(known: np.ndarray, other: np.ndarray, classes, threshold: float) -> list:
    """[Classify, Scan] "AUROC (accepted / rejected)" of the 4-photo listings, from their
    photos' (photos, bikes) scores in listing order (bench/openset.py's
    `multi_photo_listings`: LISTINGS_PER_BIKE of each demo bike, then the strangers')."""
    k, u = (s.reshape(-1, PHOTOS_PER_LISTING, s.shape[1]).mean(axis=1).T for s in (known, other))
    pools = app_pools(k, u, list(classes), threshold)
    return [
        "{auroc:.3f} ({accepted:.0%} / {rejected:.0%})".format(**pools[page])
        for page in ("Classify", "Scan")
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--weights", default="1,0,0.5,0.7,0.3")
    parser.add_argument("--calibrations", default="held-out")
    parser.add_argument("--decode-at", type=int, help="px (default: each backbone's own size)")
    parser.add_argument("--second-mirror", default="yes", help="yes, no or yes,no")
    args = parser.parse_args()
    mirrors = [m == "yes" for m in args.second_mirror.split(",")]
    assert set(args.second_mirror.split(",")) <= {"yes", "no"}, args.second_mirror
    calibrations = args.calibrations.split(",")
    assert set(calibrations) <= {"held-out", *CROPS}, calibrations
    folders = [SHIPPED if f == "shipped" else Path(f) for f in (args.first, args.second)]
    print(machine(), "| backbones:", *(f"{f} ({backbone.image_size_of(f)} px)" for f in folders))
    print("photos decoded at", f"{args.decode_at} px" if args.decode_at else "each one's size")
    first = per_bike_scores(folders[0], calibrations, args.decode_at)
    seconds = {m: per_bike_scores(folders[1], calibrations, args.decode_at, m) for m in mirrors}
    rows, listing_rows = [], []
    classes = open_dataset(ROOT / "data" / "demo-bikes").classes
    for weight, calibration, mirror in (
        (float(w), c, m) for w in args.weights.split(",") for c in calibrations for m in mirrors
    ):
        second = seconds[mirror]
        scores = f"{weight:g} x first + {1 - weight:g} x second"
        if len(mirrors) > 1:
            scores += " (its mirror too)" if mirror else " (no mirror)"
        row, drawn = [scores, calibration], []
        for protocol in PROTOCOLS:
            folds = []
            for i in range(len([k for k in first if k[0] == protocol and k[2] == "held"])):
                cropped = [calibration] if calibration in CROPS else []
                k, u, held, *crop_scores = (
                    (weight * first[protocol, i, s] + (1 - weight) * second[protocol, i, s]).max(1)
                    for s in ("known", "other", "held", *cropped)
                )
                held = np.concatenate([held, *crop_scores])
                folds.append((k, u, calibrate(held)))
                if protocol == "listings":
                    k_all, u_all = (
                        weight * first[protocol, i, s] + (1 - weight) * second[protocol, i, s]
                        for s in ("known", "other")
                    )
                    pooled = listing_pools(k_all, u_all, classes, folds[-1][2])
                    listing_rows.append([*row[:2], "{} ({})".format(*summary(folds[-1:])), *pooled])
            row.append("{} ({})".format(*summary(folds)))
            drawn += folds if protocol in DRAWS else []
        known, unknown, threshold = pool(drawn)
        _, rejected = trade_off(np.quantile(known, 0.05), known, unknown)
        both = "{} ({})".format(*summary([(known, unknown, threshold)]))
        rows.append([*row, both, f"{rejected:.0%}"])
    ceiling = "both draws: rejected at 95% accepted (set on them)"
    print(table(["scores", "calibrated on", *PROTOCOLS, "both draws", ceiling], rows))
    print("\n4-photo listings pooled as the app pools them, at the same line:")
    head = [
        "scores",
        "calibrated on",
        "each photo alone",
        "Classify (best bike)",
        "Scan (per bike)",
    ]
    print(table(head, listing_rows))


if __name__ == "__main__":
    main()
