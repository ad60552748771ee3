"""Accuracy and training time of the recipes on the real photos (the issue's targets).

On ../shared/datasets/umea-bikes with its original split (80 train, 20 validation):
  - `default`: validation accuracy per seed (final epoch, no best-epoch selection, so
    the validation photos never choose the model) and fit seconds;
  - `seed` (the 2018 network) under this pipeline, with the same epochs as `default`;
  - `lite0` (the fine-tuned ImageNet EfficientNet-Lite0, its recommended settings; only
    with `--only`, not in the default run);
  - `2018`: the 2018 recipe as published: seed CNN, 5 epochs of 80 batches of 16,
    zoom 0.2 + horizontal flips only;
  - a colour-histogram nearest neighbour (no learning) as the floor;
  - k-fold cross-validation of `default` over all 100 photos.

    python bench/accuracy.py [--seeds 5] [--only default,seed,2018,histogram,crossval,lite0]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time

import numpy as np
from common import machine, require_shared_bikes, table

from bikelib import load_split, open_dataset

RECIPES = ("histogram", "default", "seed", "2018", "crossval")


def colour_histogram_knn(dataset) -> float:
    """1-nearest-neighbour on 8x8x8 RGB histograms (chi-square distance)."""

    def histograms(samples):
        split = load_split(samples, 128)
        bins = (split.images // 32).reshape(len(split.images), -1, 3).astype(np.int64)
        flat = bins[..., 0] * 64 + bins[..., 1] * 8 + bins[..., 2]
        hist = np.stack([np.bincount(row, minlength=512) for row in flat]).astype(float)
        return hist / hist.sum(axis=1, keepdims=True), split.labels

    train_h, train_y = histograms(dataset.train)
    val_h, val_y = histograms(dataset.validation)
    distance = ((val_h[:, None] - train_h[None]) ** 2) / (val_h[:, None] + train_h[None] + 1e-9)
    predicted = train_y[distance.sum(axis=2).argmin(axis=1)]
    return float((predicted == val_y).mean())


def nearest_photo_accuracy(result, dataset, image_size: int) -> float:
    """How often the bike of the closest training photo (the match score's photo, by
    feature similarity) is the right one: the label the app would give if it named the
    bike its match is with instead of the most probable bike."""
    from openset import app_embedder

    embed = app_embedder(result)
    train = load_split(dataset.train, image_size)
    validation = load_split(dataset.validation, image_size)
    similarity = embed(validation.images).features @ embed(train.images).features.T
    return float((train.labels[similarity.argmax(axis=1)] == validation.labels).mean())


def config_for(recipe: str, seed: int):
    from bikelib import Augmentation, TrainConfig

    if recipe == "2018":
        return TrainConfig(
            arch="seed",
            image_size=150,
            epochs=5,
            steps_per_epoch=80,
            batch_size=16,
            learning_rate=1e-3,
            seed=seed,
            restore_best=False,
            augmentation=Augmentation(
                zoom=0.2, flip=True, rotation=0, translation=0, brightness=0, contrast=0
            ),
        )
    overrides = dict(OVERRIDES)
    if recipe != "default":  # only the default network has a backbone to start from
        overrides.pop("pretrained", None)
    return TrainConfig.recommended(recipe, seed=seed, restore_best=False, **overrides)


# --strangers N / --contrastive W / --[no-]pretrained: the default recipe changed
OVERRIDES: dict = {}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=5)
    parser.add_argument("--strangers", type=int, help="rendered strangers trained against")
    parser.add_argument("--contrastive", type=float, help="supervised contrastive weight")
    parser.add_argument(
        "--pretrained",
        action=argparse.BooleanOptionalAction,
        help="start the default network from the bike backbone (or not)",
    )
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--only", default=",".join(RECIPES))
    parser.add_argument("--data", help="dataset folder (default: the shared real photos)")
    parser.add_argument("--json", help="also write the raw numbers to this file")
    args = parser.parse_args()
    if args.strangers is not None:
        OVERRIDES["strangers"] = args.strangers
    if args.contrastive is not None:
        OVERRIDES["contrastive"] = args.contrastive
    if args.pretrained is not None:
        OVERRIDES["pretrained"] = args.pretrained
    import keras

    from bikelib import crossval, train

    data = args.data or require_shared_bikes()
    dataset = open_dataset(data)
    chosen = args.only.split(",")
    rows, raw = [], {}
    if "histogram" in chosen:
        accuracy = colour_histogram_knn(dataset)
        raw["histogram"] = accuracy
        row = ["colour histogram 1-NN (no learning)", f"{accuracy:.0%}", "", "", "", "", "", ""]
        rows.append(row)
    for recipe in (r for r in ("default", "seed", "2018", "lite0") if r in chosen):
        accuracies, nearest, seconds, cpu = [], [], [], []
        for seed in range(args.seeds):
            cpu_start = time.process_time()
            result = train(dataset, config_for(recipe, seed))
            cpu.append(time.process_time() - cpu_start)
            accuracies.append(result.evaluation.accuracy)
            seconds.append(result.seconds)
            size = config_for(recipe, seed).image_size
            nearest.append(nearest_photo_accuracy(result, dataset, size))
            print(
                f"{recipe} seed {seed}: {accuracies[-1]:.0%} (nearest photo's bike "
                f"{nearest[-1]:.0%}) in {seconds[-1]:.0f}s "
                f"({cpu[-1]:.0f} CPU s, load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            keras.backend.clear_session()
        config = config_for(recipe, 0)
        steps = config.steps_per_epoch or -(-len(dataset.train) // config.batch_size)
        raw[recipe] = {
            "accuracies": accuracies,
            "nearest_photo": nearest,
            "seconds": seconds,
            "cpu_seconds": cpu,
        }
        rows.append(
            [
                f"{recipe} ({config.arch}, {config.image_size}px, {config.epochs} x {steps} steps)",
                f"{statistics.mean(accuracies):.1%}",
                f"{min(accuracies):.0%}",
                f"{max(accuracies):.0%}",
                " ".join(f"{a:.0%}" for a in accuracies),
                f"{statistics.mean(nearest):.1%} ({' '.join(f'{a:.0%}' for a in nearest)})",
                f"{statistics.mean(seconds):.0f} s",
                f"{statistics.mean(cpu):.0f} s",
            ]
        )
    if "crossval" in chosen:
        started = time.perf_counter()
        result = crossval(
            dataset,
            config_for("default", 0),
            folds=args.folds,
            on_fold=lambda i, n, e: print(f"fold {i}/{n}: {e.accuracy:.0%}", flush=True),
        )
        raw["crossval"] = result.to_dict()
        folds = " ".join(f"{a:.0%}" for a in result.fold_accuracies)
        rows.append(
            [
                f"default, {args.folds}-fold cross-validation (100 photos)",
                f"{result.accuracy:.1%}",
                f"{min(result.fold_accuracies):.0%}",
                f"{max(result.fold_accuracies):.0%}",
                folds,
                "",
                f"{(time.perf_counter() - started) / args.folds:.0f} s/fold",
                "",
            ]
        )
    if args.json:
        with open(args.json, "w") as f:
            json.dump(raw, f, indent=2)
    print(f"\nValidation accuracy on {data} (its own split), {machine()}\n")
    # Wall time depends on what else the 2 cores run; CPU time (all threads) does not.
    # "nearest photo names": the closest training photo's bike as the label (the photo the
    # match score is with), mean and per seed, beside the most probable bike's ("mean").
    headers = ["recipe", "mean", "worst", "best", "per seed / fold", "nearest photo names"]
    headers += ["fit wall", "CPU time"]
    print(table(headers, rows))


if __name__ == "__main__":
    main()
