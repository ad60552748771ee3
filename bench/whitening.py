"""Which linear map of the backbone's features to score matches in (cohort.Whitening).

The default model keeps the bike backbone frozen, so its features are the backbone's:
scored here without any training, on bench/openset.py's real (leave one bike out) and
rendered (the demo bikes at new places against strangers there) protocols, and on the
photos of its 4-photo listings each alone (`listings`: 200 against 200), as
bench/zooms.py does. Every candidate map is fitted on a cohort of rendered bikes the
backbone never trained on (`backbone.COHORT_BIKES` bikes after its own, rendered into
`--cohort` unless there), and applied to the unit-length features (photo and mirror):

- `none`: the features as they are (every model before whitening);
- `wccn S`: within-class covariance normalisation with shrink S (`fit_whitening`);
- `lda K`: the K most discriminant directions (between- over within-bike scatter, shrink
  0.1), then whitened: a smaller map, dropping what varies least between bikes;
- `nap K`: the K directions in which photos of one bike vary most projected away.

For the chosen score and centroid: AUROC (mean / worst fold), and at the threshold
calibrated on the held-out known photos (95% accepted), the share of known test photos
accepted and of unknown ones rejected.

    python bench/whitening.py [--backbone DIR] [--cohort DIR] [--protocols real,rendered,listings]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import machine, table
from openset import Untrained
from zooms import case_photos, scored

from bikelib import backbone, load_split, open_dataset
from bikelib.cohort import WHITENING_SHRINK, Whitening, fit_whitening
from bikelib.embedding import Embedder
from bikelib.openset import COSINE_SCORE

SHRINKS = (0.03, 0.1, 0.3, 1.0, 3.0)  # WHITENING_SHRINK is one of them


def lda(features: np.ndarray, labels: np.ndarray, keep: int) -> Whitening:
    """Whitened, then the `keep` directions along which the bikes' means spread most."""
    whitened = fit_whitening(features, labels, shrink=0.1)
    centred = whitened(features)  # unit length, whitened
    means = np.stack([centred[labels == c].mean(axis=0) for c in np.unique(labels)])
    means -= means.mean(axis=0)
    _, vectors = np.linalg.eigh(means.T @ means)
    return Whitening(whitened.mean, whitened.matrix @ vectors[:, ::-1][:, :keep])


def nap(features: np.ndarray, labels: np.ndarray, remove: int) -> Whitening:
    """The `remove` directions of most within-bike variation projected away."""
    centred = np.concatenate(
        [features[labels == c] - features[labels == c].mean(axis=0) for c in np.unique(labels)]
    )
    _, vectors = np.linalg.eigh(centred.T @ centred)
    nuisance = vectors[:, ::-1][:, :remove]
    return Whitening(features.mean(axis=0), np.eye(len(nuisance)) - nuisance @ nuisance.T)


def candidates(features: np.ndarray, labels: np.ndarray) -> dict[str, Whitening | None]:
    maps: dict[str, Whitening | None] = {"none": None}
    for shrink in SHRINKS:
        chosen = " (chosen)" if shrink == WHITENING_SHRINK else ""
        maps[f"wccn {shrink:g}{chosen}"] = fit_whitening(features, labels, shrink)
    for keep in (64, 128):
        maps[f"lda {keep}"] = lda(features, labels, keep)
    for remove in (16, 64):
        maps[f"nap {remove}"] = nap(features, labels, remove)
    return maps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--protocols", default="real,rendered,listings")
    parser.add_argument("--backbone", help="a candidate backbone folder (default: the shipped)")
    parser.add_argument("--cohort", default="/tmp/bike-cohort", help="where its bikes are")
    parser.add_argument("--first", type=int, default=backbone.BIKES, help="its first bike")
    args = parser.parse_args()
    if args.backbone:
        backbone.BACKBONE_DIR = Path(args.backbone)
    print(machine(), "| backbone:", args.backbone or "shipped", "| cohort from bike", args.first)
    started = time.perf_counter()
    backbone.render_pretraining_photos(args.cohort, backbone.COHORT_BIKES, first=args.first)
    embed = Embedder(Untrained(2).model)  # unwhitened: each candidate maps these
    cohort = load_split(open_dataset(args.cohort).samples, 96)
    maps = candidates(embed(cohort.images).features, cohort.labels)
    print(f"cohort: {len(cohort.labels)} photos, {time.perf_counter() - started:.0f} s")
    rows = []
    for protocol in args.protocols.split(","):
        results: dict[tuple[str, str], list[tuple]] = {}
        for _, labels, photos in case_photos(protocol):
            plain = {name: embed(x).features for name, x in photos.items()}
            for name, whitening in maps.items():
                features = {k: whitening(x) if whitening else x for k, x in plain.items()}
                for score in (COSINE_SCORE, "centroid"):
                    results.setdefault((name, score), []).append(scored(features, labels, score))
        for (name, score), folds in results.items():
            v = np.asarray(folds)
            auc, worst = f"{v[:, 0].mean():.3f}", f"{v[:, 0].min():.3f}"
            shares = f"{v[:, 1].mean():.0%}", f"{v[:, 2].mean():.0%}"
            rows.append([protocol, name, score, auc, worst, *shares])
    headers = ["protocol", "map", "score", "AUROC mean", "worst", "known accepted"]
    print(table([*headers, "others rejected"], rows))


if __name__ == "__main__":
    main()
