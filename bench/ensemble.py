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

    python bench/ensemble.py FIRST SECOND [--weights 1,0,0.5,0.7,0.3]
    (FIRST or SECOND may be "shipped": data/backbone)
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from common import machine, table
from openset import Untrained
from plda import DRAWS, PROTOCOLS, features, pool, summary

from bikelib import backbone
from bikelib.cohort import fit_plda
from bikelib.embedding import Embedder, Outputs
from bikelib.openset import calibrate, nearest_plus_plda, trade_off

SHIPPED = backbone.BACKBONE_DIR


def per_bike_scores(folder: Path) -> dict:
    """{(protocol, fold, set): (photos, bikes) scores} with the backbone in `folder`."""
    backbone.BACKBONE_DIR = folder
    size = backbone.image_size_of()
    embed = Embedder(Untrained(2, size).model, whitening=backbone.whitening_for())
    cohort, out = backbone.cohort_for(), {}
    for protocol, folds in features(embed, size).items():
        for i, fold in enumerate(folds):
            refs, labels = fold["refs"], fold["labels"]
            score = nearest_plus_plda(fit_plda(cohort, refs, labels))
            for name in ("known", "other", "held"):
                outputs = Outputs(fold[name], None, None)
                out[protocol, i, name] = np.stack(
                    [
                        score(outputs, refs[labels == b], labels[labels == b])
                        for b in np.unique(labels)
                    ],
                    axis=1,
                )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("first")
    parser.add_argument("second")
    parser.add_argument("--weights", default="1,0,0.5,0.7,0.3")
    args = parser.parse_args()
    folders = [SHIPPED if f == "shipped" else Path(f) for f in (args.first, args.second)]
    print(machine(), "| backbones:", *(f"{f} ({backbone.image_size_of(f)} px)" for f in folders))
    first, second = (per_bike_scores(folder) for folder in folders)
    rows = []
    for weight in (float(w) for w in args.weights.split(",")):
        row, drawn = [f"{weight:g} x first + {1 - weight:g} x second"], []
        for protocol in PROTOCOLS:
            folds = []
            for i in range(len([k for k in first if k[0] == protocol and k[2] == "held"])):
                k, u, held = (
                    (weight * first[protocol, i, s] + (1 - weight) * second[protocol, i, s]).max(1)
                    for s in ("known", "other", "held")
                )
                folds.append((k, u, calibrate(held)))
            row.append("{} ({})".format(*summary(folds)))
            drawn += folds if protocol in DRAWS else []
        known, unknown, threshold = pool(drawn)
        _, rejected = trade_off(np.quantile(known, 0.05), known, unknown)
        both = "{} ({})".format(*summary([(known, unknown, threshold)]))
        rows.append([*row, both, f"{rejected:.0%}"])
    ceiling = "both draws: rejected at 95% accepted (set on them)"
    print(table(["scores", *PROTOCOLS, "both draws", ceiling], rows))


if __name__ == "__main__":
    main()
