"""Which score to match photos with in the whitened backbone features: cosine, a PLDA, both.

The default model keeps the bike backbone frozen and whitened, so its features are the
backbone's: scored here without any training, on bench/openset.py's protocols: real
(leave one bike out on the umea photos), rendered (the demo bikes' 50 photos at new places
against 50 strangers' there), rendered200 (200 against 200, the same first seeds),
rendered200b (another 200 against 200 at other seeds, never used to choose) and listings
(the 200 photos of the 4-photo listings against 200 strangers', each alone).
Candidates, side by side:

- `nearest`: cosine similarity to the nearest training photo (the app's score before);
- `centroid`: cosine similarity to the bike's mean training feature;
- `plda K a`: cohort.Plda over the K directions in which the cohort's bikes differ most
  ("all": every direction), its within-bike covariance moved a share `a` of the way to the
  owner's training photos' (`fit_plda`);
- `nearest + plda K a / S`: the two fused, bike by bike: the cosine plus the ratio
  divided by S (`openset.nearest_plus_plda`; the app's, S = PLDA_SCALE), then the best
  bike.

`--backbone DIR` scores a candidate backbone (`python -m bikelib pretrain DIR ...`) instead of
the shipped one, on photos at the size it was pretrained at (its card's).
The cohort is the backbone's (`backbone.cohort_for`), or with `--cohort DIR` another set of
rendered bikes (whitened with the shipped map), to see that the choice does not hang on
which bikes it learns from. For each: AUROC (mean / worst fold), and at the threshold
calibrated on the held-out known photos (95% accepted) the share of known test photos
accepted and of unknown ones rejected; both 200 / 200 draws pooled (400 / 400: the same
training photos, so the same threshold); for each draw, the AUROC by kind of shot; and
for the app's score, both draws pooled, by what a photo shows (the whole bike, part of
it, or which part up close: `render.close_up_part`).

    python bench/plda.py [--backbone DIR] [--cohort DIR] [--dims all,128,64,32] [--adapt 0,0.2,0.5]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import machine, table
from openset import RENDERED_SEEDS, Untrained, listing_shots
from zooms import case_photos

from bikelib import backbone, load_split, open_dataset, render
from bikelib.cohort import PLDA_ADAPT, PLDA_DIMS, PLDA_SCALE, cohort_statistics, fit_plda
from bikelib.embedding import Embedder, Outputs
from bikelib.openset import (
    auroc,
    calibrate,
    centroid_similarity,
    nearest_plus_plda,
    nearest_similarity,
    trade_off,
)

PROTOCOLS = ("real", "rendered", "rendered200", "rendered200b", "listings")


def features(embed: Embedder, size: int = 96) -> dict[str, list[dict]]:
    """{protocol: [fold: {refs, labels, held, known, other}]}, whitened features of the
    photos at `size` px; the 50/50 rendered protocol is the first photos of rendered200
    (asserted: the same seeds)."""
    own, strangers = RENDERED_SEEDS["rendered"]
    own200, strangers200 = RENDERED_SEEDS["rendered200"]
    assert own200[: len(own)] == own and strangers200[: len(strangers)] == strangers
    out: dict[str, list[dict]] = {}
    for protocol in ("real", "rendered200", "rendered200b", "listings"):
        for dataset, labels, photos in case_photos(protocol, size):
            fold = {name: embed(x).features for name, x in photos.items()}
            fold.update(labels=labels, classes=dataset.classes)
            out.setdefault(protocol, []).append(fold)
    r200 = out["rendered200"][0]
    bikes = len(np.unique(r200["labels"]))
    known = r200["known"].reshape(bikes, len(own200), -1)[:, : len(own)]
    subset = {
        "known": known.reshape(bikes * len(own), -1),
        "other": r200["other"][: len(strangers)],
    }
    out["rendered"] = [{**r200, **subset}]
    return out


def candidates(cohort, dims, adapts) -> dict:
    """{name: (features, refs, labels) -> scores}."""

    def cosine(score):
        return lambda x, refs, labels: score(Outputs(x, None, None), refs, labels)

    found = {"nearest": cosine(nearest_similarity), "centroid": cosine(centroid_similarity)}
    for keep in dims:
        for adapt in adapts:

            def plda(x, refs, labels, keep=keep, adapt=adapt):
                fitted = fit_plda(cohort, refs, labels, adapt=adapt, dims=keep or len(refs[0]))
                return fitted.score(Outputs(x, None, None), refs, labels)

            found[f"plda {keep or 'all'} {adapt:g}"] = plda

    for scale in (30.0, PLDA_SCALE, 300.0):
        chosen = " (chosen)" if scale == PLDA_SCALE else ""

        def fused(x, refs, labels, scale=scale):
            fitted = fit_plda(cohort, refs, labels)
            return nearest_plus_plda(fitted, scale)(Outputs(x, None, None), refs, labels)

        found[f"nearest + plda {PLDA_DIMS} {PLDA_ADAPT:g} / {scale:g}{chosen}"] = fused
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cohort", help="rendered bikes to fit the PLDA on (default: shipped)")
    parser.add_argument("--backbone", help="a candidate backbone folder (default: the shipped)")
    parser.add_argument("--dims", default="all,128,64,32")
    parser.add_argument("--adapt", default="0,0.2,0.5")
    args = parser.parse_args()
    if args.backbone:
        backbone.BACKBONE_DIR = Path(args.backbone)
    size = backbone.image_size_of()  # the photos at the size the backbone learned at
    print(machine(), "| backbone:", args.backbone or "shipped", f"({size} px)", end=" ")
    print("| PLDA cohort:", args.cohort or "the backbone's")
    started = time.perf_counter()
    embed = Embedder(Untrained(2, size).model, whitening=backbone.whitening_for())
    cohort = backbone.cohort_for()
    if args.cohort:
        photos = load_split(open_dataset(args.cohort).samples, size)
        cohort = cohort_statistics(embed(photos.images).features, photos.labels)
    by_protocol = features(embed, size)
    print(f"features: {time.perf_counter() - started:.0f} s")
    dims = [None if d == "all" else int(d) for d in args.dims.split(",")]
    scores = candidates(cohort, dims, [float(a) for a in args.adapt.split(",")])
    shots, parts = {}, {}
    for protocol in DRAWS:
        known_parts, other_parts = listing_shots(protocol, shown_part)
        classes = by_protocol[protocol][0]["classes"]  # the order its known photos are in
        parts[protocol] = (
            np.array([k for name in classes for k in known_parts[name]]),
            np.array(other_parts),
        )
        # A close-up's part says its kind: whole and partial shots are named by kind.
        shots[protocol] = tuple(
            np.where(np.isin(p, render.CLOSE_UP_PARTS), "close-up", p) for p in parts[protocol]
        )
    rows, chosen = [], None
    for name, score in scores.items():
        row, by_shot, drawn = [name], [], []
        for protocol in PROTOCOLS:
            folds = []
            for fold in by_protocol[protocol]:
                refs, labels = fold["refs"], fold["labels"]
                k, u = (score(fold[s], refs, labels) for s in ("known", "other"))
                folds.append((k, u, calibrate(score(fold["held"], refs, labels))))
                if protocol in DRAWS:
                    known_shots, other_shots = shots[protocol]
                    by_shot += [auroc(k[known_shots == s], u[other_shots == s]) for s in SHOTS]
            row += summary(folds)
            drawn += folds if protocol in DRAWS else []
        if "(chosen)" in name:
            chosen = (name, *pool(drawn))
        rows.append([*row, *summary([pool(drawn)]), " ".join(f"{a:.3f}" for a in by_shot)])
    headers = ["score"]
    for protocol in (*PROTOCOLS, "both draws"):
        headers += [f"{protocol} AUROC", "accepted / rejected"]
    shot_columns = ", ".join(f"{p} {s}" for p in DRAWS for s in SHOTS)
    print(table([*headers, f"by shot: {shot_columns}"], rows))
    print(by_part(*chosen, parts))


def summary(folds: list[tuple]) -> tuple[str, str]:
    """("AUROC", "accepted / rejected") of a protocol's folds, each (the known photos'
    scores, the unknown photos', the threshold): the mean, and the worst fold where there
    are several."""
    v = np.asarray([(auroc(k, u), *trade_off(threshold, k, u)) for k, u, threshold in folds])
    worst = f" / {v[:, 0].min():.3f}" if len(v) > 1 else ""
    return f"{v[:, 0].mean():.3f}{worst}", f"{v[:, 1].mean():.0%} / {v[:, 2].mean():.0%}"


def pool(draws: list[tuple]) -> tuple:
    """The draws' folds as one (known, unknown, threshold): both 200 / 200 draws share
    their training photos, so their threshold (checked)."""
    (threshold,) = {threshold for _, _, threshold in draws}
    known, unknown = (np.concatenate([draw[i] for draw in draws]) for i in (0, 1))
    return known, unknown, threshold


def shown_part(bike, seed: int, size) -> str:
    """The part a close-up shows, or the kind of a whole or partial shot."""
    return render.close_up_part(bike, seed, size) or render.shot_kind(bike, seed, size)


def by_part(name: str, known, other, threshold: float, parts: dict) -> str:
    """The chosen score on both draws pooled, by what each photo shows: the bike's photos
    against strangers' photos of the same part (AUROC), and each side at the threshold."""
    known_parts, other_parts = (np.concatenate(p) for p in zip(*parts.values(), strict=True))
    rows = []
    for part in ("whole", "partial", *render.CLOSE_UP_PARTS):
        k, u = known[known_parts == part], other[other_parts == part]
        if len(k) and len(u):
            accepted, rejected = trade_off(threshold, k, u)
            rows.append(
                [part, len(k), len(u), f"{auroc(k, u):.3f}", f"{accepted:.0%}", f"{rejected:.0%}"]
            )
    headers = ["shows", "bike's photos", "strangers'", "AUROC", "accepted", "rejected"]
    return f"{name}, both draws, by what a photo shows:\n" + table(headers, rows)


SHOTS = ("whole", "partial", "close-up")
DRAWS = ("rendered200", "rendered200b")  # the 200 / 200 draws, scored apart and pooled

if __name__ == "__main__":
    main()
