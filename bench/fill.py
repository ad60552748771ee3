"""What fills the edges augmentation uncovers: "reflect" against "constant" (black).

Trains the `default` recipe on the real photos (../shared/datasets/umea-bikes, its
original split) with each fill mode and the same seeds, and prints the final-epoch
validation accuracy side by side (no best-epoch selection: the validation photos never
pick the model). Skips, saying why, where the photos are absent.

    python bench/fill.py [--seeds 3] [--modes reflect,constant]
"""

from __future__ import annotations

import argparse
import os
import statistics
from dataclasses import replace

from common import machine, require_shared_bikes, table

from bikelib import open_dataset


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--modes", default="reflect,constant")
    args = parser.parse_args()
    data = require_shared_bikes()
    import keras

    from bikelib import TrainConfig, train

    dataset = open_dataset(data)
    modes = args.modes.split(",")
    results: dict[str, list[tuple[float, float]]] = {mode: [] for mode in modes}
    for seed in range(args.seeds):  # seeds outside, so a busy spell hits both modes alike
        for mode in modes:
            config = TrainConfig.recommended("default", seed=seed, restore_best=False)
            config = replace(config, augmentation=replace(config.augmentation, fill=mode))
            result = train(dataset, config)
            results[mode].append((result.evaluation.accuracy, result.seconds))
            print(
                f"{mode} seed {seed}: {result.evaluation.accuracy:.0%} in {result.seconds:.0f} s"
                f" (load {os.getloadavg()[0]:.1f})",
                flush=True,
            )
            keras.backend.clear_session()
    rows = []
    for mode in modes:
        accuracies = [a for a, _ in results[mode]]
        rows.append(
            [
                mode,
                f"{statistics.mean(accuracies):.1%}",
                f"{min(accuracies):.0%}",
                " ".join(f"{a:.0%}" for a in accuracies),
                f"{statistics.mean(s for _, s in results[mode]):.0f} s",
            ]
        )
    print(f"\nValidation accuracy on {data} (its own split), {machine()}\n")
    print(table(["fill", "mean", "worst", "per seed", "fit wall (mean)"], rows))


if __name__ == "__main__":
    main()
