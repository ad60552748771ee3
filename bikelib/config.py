"""Settings as frozen dataclasses: what a training run is made of, without TensorFlow.

The Train page builds its form from these and the CLI its options, so this module
must stay importable without Keras (which costs seconds and hundreds of MB); the
Keras layers an `Augmentation` stands for are created only when a model is built.
"""

from __future__ import annotations

import dataclasses
import itertools
from dataclasses import dataclass, field
from typing import Any

from .errors import ConfigError

# Architecture names and how the UI labels them (the factories are in models.py).
ARCHITECTURE_LABELS = {
    "default": "default: compact CNN (recommended)",
    "seed": "seed: the 2018 assignment's CNN",
    "lite0": "lite0: EfficientNet-Lite0, ImageNet-pretrained, fine-tuned",
}
# What the Train page offers. `lite0` is kept for the CLI and bench/openset.py but not
# offered: measured, it tells a stranger's bike from yours far worse than `default`
# (real-photo AUROC 0.752 against 0.947 before the contrastive loss, bench/RESULTS.md).
OFFERED_ARCHITECTURES = ("default", "seed")

# What fills the edges a rotation, zoom-out or shift uncovers (Keras fill modes).
FILL_MODES = {
    "reflect": "a mirror image of the photo's own edge",
    "constant": "black",
    "nearest": "the edge pixels stretched outwards",
}

# The 2018 network's four unpadded 5x5 convolutions, each halved by pooling, leave
# nothing of a smaller photo: 76 -> 72 -> 36 -> 32 -> 16 -> 12 -> 6 -> 2 -> 1.
SEED_MIN_IMAGE_SIZE = 76


@dataclass(frozen=True)
class Augmentation:
    """Identity-preserving photo variations for the training path.

    No hue shifts: a bike's colour is part of what identifies it. Horizontal flips are
    safe (a bike photographed from its other side), vertical ones are not.
    """

    flip: bool = True
    zoom: float = 0.3  # fraction the view may zoom in or out (close-ups and distant shots)
    rotation: float = 18.0  # degrees either way (a tilted phone)
    translation: float = 0.1  # fraction of the side the view may shift
    brightness: float = 0.15  # fraction of the value range (sun, overcast)
    contrast: float = 0.15
    # What fills the uncovered edges. "reflect" by measurement (bench/fill.py, real
    # photos): the mirrored edge reads as more ground or wall, where black corners
    # ("constant") teach the network a frame that no real photo has.
    fill: str = "reflect"

    def __post_init__(self) -> None:
        if self.fill not in FILL_MODES:
            raise ConfigError(
                f"Invalid setting: augmentation fill must be one of {', '.join(FILL_MODES)}"
            )

    def layers(self, seed: int | None = None) -> list:
        """The Keras random layers for these settings (pixel values 0-255).

        Each layer gets its own seed (`seed`, `seed + 1`, ...): Keras 3 builds a layer's
        random stream from its seed alone, so one shared seed would make every layer draw
        the same numbers (every flipped photo also darkened, say), and five augmentations
        would collapse into one.
        """
        from .quiet import load_tensorflow

        load_tensorflow()  # quietly, if this is the first TensorFlow import
        from keras import layers  # only here: the config itself must not load TensorFlow

        stream = itertools.repeat(None) if seed is None else itertools.count(seed)
        chosen: list[layers.Layer] = []
        if self.flip:
            chosen.append(layers.RandomFlip("horizontal", seed=next(stream)))
        fill = self.fill
        if self.rotation:
            chosen.append(
                layers.RandomRotation(self.rotation / 360.0, fill_mode=fill, seed=next(stream))
            )
        if self.zoom:
            chosen.append(
                layers.RandomZoom((-self.zoom, self.zoom), fill_mode=fill, seed=next(stream))
            )
        if self.translation:
            shift = self.translation
            chosen.append(layers.RandomTranslation(shift, shift, fill_mode=fill, seed=next(stream)))
        if self.brightness:
            chosen.append(
                layers.RandomBrightness(self.brightness, value_range=(0, 255), seed=next(stream))
            )
        if self.contrast:
            chosen.append(
                layers.RandomContrast(self.contrast, value_range=(0, 255), seed=next(stream))
            )
        return chosen


@dataclass(frozen=True)
class TrainConfig:
    """Everything that decides a training run. Same config + same data = same model."""

    arch: str = "default"
    epochs: int = 50
    batch_size: int = 16
    learning_rate: float = 3e-3  # the peak, after warm-up
    image_size: int = 96
    schedule: str = "cosine"  # 5% linear warm-up then cosine decay to 0, or "constant"
    weight_decay: float = 1e-4  # AdamW's decoupled weight decay (0: plain Adam)
    label_smoothing: float = 0.1  # softer targets: fewer over-confident mistakes
    augmentation: Augmentation = field(default_factory=Augmentation)
    val_fraction: float = 0.2  # used only when the data has no train/validation folders
    seed: int = 0
    steps_per_epoch: int | None = None  # None: one pass over the training photos
    restore_best: bool = True  # end with the weights of the best validation epoch
    # Rendered photos of other people's bikes trained to match none of yours (outlier
    # exposure). 40, by measurement (bench/RESULTS.md, real photos, leave one bike out):
    # "is it one of mine?" nearest-neighbour AUROC 0.881 with none, 0.947 with 40, 0.955
    # with 100; naming the right bike 96%, 92% and 87%. 40 buys most of the first for
    # little of the second. 0: off.
    strangers: int = 40
    # Weight of a supervised contrastive loss on the normalised penultimate features,
    # beside cross-entropy: photos of one bike pulled together, of different bikes (and
    # strangers) pushed apart, so "nearest known photo" separates mine from not mine.
    # 1.0, by measurement (bench/RESULTS.md, real photos, with the 40 strangers): nearest
    # AUROC 0.947 -> 0.983 (worst fold 0.828 -> 0.931), naming the right bike 92% -> 100%
    # (3 seeds); 0.5 gave 0.971 and 95%. 0: off. Only where the features train: with the
    # backbone frozen (the default) it could move nothing, so it is left out.
    contrastive: float = 1.0
    # Start from the bike backbone (bikelib.backbone, data/backbone): the default CNN
    # pretrained to tell 300 rendered bikes apart, every photo at a new place. None (the
    # default) means "where the network has it": True for the default network, False
    # for the seed CNN (random weights, as in 2018) and Lite0 (ImageNet's). On, by
    # measurement (bench/RESULTS.md, "A backbone pretrained on rendered bikes"), leave
    # one bike out on the real photos: nearest AUROC 0.989 -> 1.000 (worst fold 0.959 ->
    # 1.000), naming the right bike 98.3% -> 100% (3 seeds); the rendered listings at
    # new places 0.57-0.62 -> 0.785-0.789.
    pretrained: bool | None = None
    # Keep the backbone's layers as pretrained: only the softmax over your bikes trains.
    # None means "when starting from the backbone". By measurement (bench/RESULTS.md,
    # "Training only the softmax"): fine-tuning the backbone on an owner's photos at one
    # spot gave back part of what it learned about new places (rendered listings 0.785 /
    # 0.789 fine-tuned, 0.835 frozen; the owner's photos there accepted at the threshold
    # 48-52% against 90%), for real photos 1.000 against 0.997 and 100% named right both
    # (the 30-epoch backbone). Frozen features can also be whitened (cohort.Whitening).
    frozen: bool | None = None
    # Match photos with a second backbone too (bikelib.second, data/second-backbone: Lite0
    # trained on the rendered bikes), its score averaged with the first's. None means "when
    # the backbone is frozen" (the only training whose features are the backbone's). On, by
    # measurement (bench/RESULTS.md, "A second opinion"): the bike's photos at new places
    # against strangers' there, AUROC 0.944 -> 0.967; the real photos 0.999 -> 1.000.
    second_opinion: bool | None = None

    def __post_init__(self) -> None:
        # Resolved once, so a saved config says what was done.
        if self.pretrained is None:
            object.__setattr__(self, "pretrained", self.arch == "default")
        if self.frozen is None:
            object.__setattr__(self, "frozen", self.pretrained)
        if self.second_opinion is None:
            object.__setattr__(self, "second_opinion", self.frozen)
        checks = [
            (
                self.arch in ARCHITECTURE_LABELS,
                f"architecture must be one of {', '.join(ARCHITECTURE_LABELS)}",
            ),
            (1 <= self.epochs <= 1000, "epochs must be between 1 and 1000"),
            (1 <= self.batch_size <= 512, "batch size must be between 1 and 512"),
            (0 < self.learning_rate <= 1, "learning rate must be in (0, 1]"),
            (32 <= self.image_size <= 512, "image size must be between 32 and 512 pixels"),
            (self.schedule in ("cosine", "constant"), "schedule must be cosine or constant"),
            (0 <= self.weight_decay < 1, "weight decay must be in [0, 1)"),
            (0 <= self.label_smoothing < 1, "label smoothing must be in [0, 1)"),
            (0 <= self.val_fraction < 1, "validation fraction must be in [0, 1)"),
            (self.steps_per_epoch is None or self.steps_per_epoch >= 1, "steps per epoch >= 1"),
            (0 <= self.strangers <= 1000, "strangers must be between 0 and 1000"),
            (0 <= self.contrastive <= 10, "contrastive weight must be between 0 and 10"),
            (
                not self.pretrained or self.arch == "default",
                "only the default network has pretrained bike weights to start from",
            ),
            (not self.frozen or self.pretrained, "only pretrained layers can be kept frozen"),
            (not self.second_opinion or self.frozen, "a second opinion needs a frozen backbone"),
            (
                self.arch != "seed" or self.image_size >= SEED_MIN_IMAGE_SIZE,
                f"the seed CNN needs images of at least {SEED_MIN_IMAGE_SIZE} pixels "
                "(its four 5x5 convolutions and poolings shrink them to nothing)",
            ),
        ]
        for ok, message in checks:
            if not ok:
                raise ConfigError(f"Invalid setting: {message}")

    @classmethod
    def recommended(cls, arch: str = "default", **overrides: Any) -> TrainConfig:
        """The settings each architecture was tuned with, plus any overrides."""
        # The 2018 network at its own input size and optimiser (Adam, 1e-3, hard targets).
        seed_cnn = {
            "contrastive": 0.0,  # cross-entropy alone, as in 2018 (not measured with it)
            "image_size": 150,
            "learning_rate": 1e-3,
            "schedule": "constant",
            "weight_decay": 0.0,
            "label_smoothing": 0.0,
        }
        # The pretrained network fine-tuned: a small input (its cost grows with the
        # pixels: 128 px keeps a training near a minute on 2 cores) and a tenth of the
        # default's learning rate (its weights start close to where they should end;
        # 1e-3 collapses its features, 5e-4 did once with fewer frozen blocks).
        lite0 = {"image_size": 128, "learning_rate": 3e-4, "epochs": 20, "contrastive": 0.0}
        base = {"seed": seed_cnn, "lite0": lite0}.get(arch, {})
        return cls(arch=arch, **{**base, **overrides})

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        data = dict(data)
        data["augmentation"] = Augmentation(**data.get("augmentation", {}))
        # Saved before the contrastive loss existed: trained with cross-entropy alone.
        data.setdefault("contrastive", 0.0)
        data.setdefault("pretrained", False)  # saved before the bike backbone existed
        data.setdefault("frozen", False)  # every layer trained, before frozen existed
        data.setdefault("second_opinion", False)  # one backbone, before the second existed
        known = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})
