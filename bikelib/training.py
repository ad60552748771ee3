"""Training: the loop around `model.fit`, progress, stop, best weights; cross-validation.

`train()` (a `TrainConfig` from config.py in, a `TrainResult` out) is what the CLI,
the Train page's child process (jobs.py) and the benchmarks all call. It reports
through one plain callable (`on_progress`, a `Progress` per batch and epoch), so a
progress bar, a live chart or a terminal bar need no Keras knowledge, and it checks
`should_stop()` between batches so a Stop button ends the run at once, keeping the
best weights seen so far. `crossval()` trains k folds to their last epoch and pools
their validation answers: with 4 validation photos per bike one photo moves the
accuracy by 5%, so a single split says little. Imports Keras at module load; bikelib's
`__init__` loads this module only on first use.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import keras
import numpy as np

from .config import TrainConfig
from .dataset import Dataset, LoadedSplit, fingerprint, load_split
from .embedding import Embedder
from .errors import DatasetError, ImageReadError
from .evaluation import Evaluation, evaluate_arrays
from .images import DecodeCache, corner_crops
from .losses import JointLoss, joint_accuracy
from .models import FEATURES, make_model
from .openset import CALIBRATION_CROP, Reference, fit_reference
from .strangers import strangers


@dataclass(frozen=True)
class Progress:
    """One progress report: after a batch (`kind == "batch"`) or an epoch."""

    kind: str  # "batch" or "epoch"
    epoch: int  # 1-based
    epochs: int
    step: int  # 1-based batch within the epoch
    steps: int
    elapsed: float  # seconds since training started
    logs: dict[str, float]  # this epoch's loss/accuracy (and val_ ones after an epoch)

    @property
    def fraction(self) -> float:
        return ((self.epoch - 1) + self.step / max(self.steps, 1)) / self.epochs

    @property
    def seconds_left(self) -> float | None:
        return self.elapsed * (1 - self.fraction) / self.fraction if self.fraction else None


@dataclass
class TrainResult:
    """A trained model and everything a saved model should say about itself."""

    model: keras.Model
    classes: tuple[str, ...]
    config: TrainConfig
    history: dict[str, list[float]]
    evaluation: Evaluation | None  # on the validation photos (None without any)
    seconds: float
    epochs_run: int
    best_epoch: int
    stopped: bool  # True when should_stop() ended the run early
    dataset_fingerprint: str
    skipped: list[dict] = field(default_factory=list)
    reference: Reference | None = None  # for "is this one of my bikes?" (bikelib.openset)
    # The training photos behind `reference.features`, in its order: saved as thumbnails
    # so a verdict can show which of the owner's photos a listing photo matched.
    reference_paths: tuple[Path, ...] = ()
    # The user's photos of other people's bikes used: {"trained": n, "calibration": n}.
    not_mine: dict[str, int] = field(default_factory=lambda: {"trained": 0, "calibration": 0})

    @property
    def metrics(self) -> dict[str, float]:
        if self.evaluation is None:
            return {}
        return {"val_accuracy": self.evaluation.accuracy, "val_loss": self.evaluation.loss}


class _Reporter(keras.callbacks.Callback):
    """Turns Keras callback hooks into Progress reports, stop checks and best weights."""

    def __init__(self, epochs, steps, on_progress, should_stop, track_best, keep):
        super().__init__()
        self.keep = keep  # the model whose weights are the result (not a training wrapper)
        self.epochs, self.steps = epochs, steps
        self.on_progress, self.should_stop = on_progress, should_stop
        self.track_best = track_best
        self.start = time.perf_counter()
        self.epoch = 0
        self.epochs_run = 0
        self.stopped = False
        self.best_key: tuple[float, float] | None = None
        self.best_epoch = 0
        self.best_weights: list[np.ndarray] | None = None

    def _report(self, kind, step, logs):
        if self.on_progress:
            clean = {k: float(v) for k, v in (logs or {}).items() if np.isscalar(v)}
            elapsed = time.perf_counter() - self.start
            self.on_progress(
                Progress(kind, self.epoch + 1, self.epochs, step, self.steps, elapsed, clean)
            )

    def on_epoch_begin(self, epoch, logs=None):
        self.epoch = epoch

    def on_train_batch_end(self, batch, logs=None):
        self._report("batch", batch + 1, logs)
        if self.should_stop and self.should_stop():
            self.stopped = True
            self.model.stop_training = True

    def on_epoch_end(self, epoch, logs=None):
        logs = logs or {}
        self.epochs_run = epoch + 1
        if self.track_best:
            # Highest validation accuracy; among equals the lowest validation loss.
            key = (
                logs.get("val_accuracy", logs.get("accuracy", 0.0)),
                -logs.get("val_loss", logs.get("loss", 0.0)),
            )
            if self.best_key is None or key > self.best_key:
                self.best_key, self.best_epoch = key, epoch + 1
                self.best_weights = [w.copy() for w in self.keep.get_weights()]
        self._report("epoch", self.steps, logs)


def _batches(split: LoadedSplit, n_classes, batch_size, seed, repeat, negatives=None):
    import tensorflow as tf  # the tf.data input pipeline; Keras 3 takes it directly

    images = split.images
    targets = keras.utils.to_categorical(split.labels, n_classes).astype("float32")
    if negatives is not None and len(negatives):
        # Outlier exposure: other bikes, each with the uniform target "none of these".
        images = np.concatenate([images, negatives])
        uniform = np.full((len(negatives), n_classes), 1.0 / n_classes, dtype="float32")
        targets = np.concatenate([targets, uniform])
    data = tf.data.Dataset.from_tensor_slices((images, targets))
    data = data.shuffle(len(targets), seed=seed, reshuffle_each_iteration=True)
    if repeat:
        data = data.repeat()
    return data.batch(batch_size).prefetch(2)


def _learning_rate(config: TrainConfig, total_steps: int):
    if config.schedule == "constant":
        return config.learning_rate
    # Warm-up keeps the first steps, on untrained BatchNorm statistics, from overshooting.
    warmup = int(total_steps * 0.05)
    return keras.optimizers.schedules.CosineDecay(
        0.0 if warmup else config.learning_rate,
        decay_steps=max(total_steps - warmup, 1),
        warmup_target=config.learning_rate if warmup else None,
        warmup_steps=warmup,
    )


def train(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    on_progress: Callable[[Progress], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    callbacks: Sequence[keras.callbacks.Callback] = (),
    cache: DecodeCache | None = None,
    negatives: np.ndarray | None = None,
    others: np.ndarray | None = None,
    on_fitted: Callable[[], None] | None = None,
) -> TrainResult:
    """Train a model on `dataset` and evaluate it on the validation photos.

    `negatives`: photos of other bikes (uint8, image size), trained towards the uniform
    distribution over the known bikes (outlier exposure); by default the first
    `config.strangers` rendered strangers. The dataset's own not-mine training photos
    (other people's bikes the user added) always join them, whatever `negatives` is.
    `others`: photos of other bikes never trained on, scored at the end so the saved
    model can show what its threshold trades; by default the rendered calibration
    strangers. The not-mine validation photos are scored apart from them (never
    trained on), so the trade-off can name them. `on_fitted()` is called when the last
    batch is done, before that scoring. Raises DatasetError when there are too few
    readable training photos.
    """
    config = config or TrainConfig()
    keras.utils.set_random_seed(config.seed)
    if negatives is None and config.strangers:
        negatives = strangers("training", config.image_size, config.strangers, cache)
    if others is None:
        others = strangers("calibration", config.image_size, cache=cache)
    train_split = load_split(dataset.train, config.image_size, cache=cache)
    val_split = load_split(dataset.validation, config.image_size, cache=cache)
    parts = (dataset.not_mine_train, dataset.not_mine_validation)
    not_mine_splits = [load_split(part, config.image_size, cache=cache) for part in parts]
    if len(not_mine_splits[0].images):
        listed = [] if negatives is None else [np.asarray(negatives, np.uint8)]
        negatives = np.concatenate([*listed, not_mine_splits[0].images])
    present = set(train_split.labels.tolist())
    missing = [name for i, name in enumerate(dataset.classes) if i not in present]
    if missing:
        raise DatasetError(f"No readable training photos for: {', '.join(missing)}")

    n_classes = len(dataset.classes)
    model = make_model(
        config.arch, n_classes, config.image_size, config.augmentation, random_seed=config.seed
    )
    if config.pretrained:
        from .backbone import freeze, load_into

        load_into(model)  # every layer but the new softmax over these bikes
        if config.frozen:
            freeze(model)
    n_train = len(train_split.labels) + (0 if negatives is None else len(negatives))
    steps = config.steps_per_epoch or -(-n_train // config.batch_size)
    optimizer = keras.optimizers.AdamW(
        _learning_rate(config, steps * config.epochs), weight_decay=config.weight_decay
    )
    trainer, accuracy = model, "accuracy"
    loss = keras.losses.CategoricalCrossentropy(label_smoothing=config.label_smoothing)
    # With the backbone frozen the features cannot move: the contrastive loss's gradient
    # would reach only frozen layers, so it would train nothing and only add to the loss.
    if config.contrastive and not config.frozen:
        # A wrapper sharing every layer: what is trained is `model` itself.
        joint = keras.layers.Concatenate(name="probabilities_and_features")(
            [model.output, model.get_layer(FEATURES).output]
        )
        trainer = keras.Model(model.input, joint, name=f"{model.name}_contrastive")
        loss = JointLoss(n_classes, config.contrastive, config.label_smoothing)
        accuracy = keras.metrics.MeanMetricWrapper(joint_accuracy(n_classes), "accuracy")
    trainer.compile(optimizer=optimizer, loss=loss, metrics=[accuracy])
    has_validation = len(val_split.labels) > 0
    reporter = _Reporter(
        config.epochs, steps, on_progress, should_stop, track_best=config.restore_best, keep=model
    )
    started = time.perf_counter()
    history = trainer.fit(
        _batches(
            train_split,
            n_classes,
            config.batch_size,
            config.seed,
            repeat=config.steps_per_epoch is not None,
            negatives=negatives,
        ),
        steps_per_epoch=config.steps_per_epoch,
        epochs=config.epochs,
        validation_data=(
            (val_split.images, keras.utils.to_categorical(val_split.labels, n_classes))
            if has_validation
            else None
        ),
        callbacks=[reporter, *callbacks],
        shuffle=False,  # the tf.data pipeline shuffles, seeded
        verbose=0,
    )
    seconds = time.perf_counter() - started
    if on_fitted:  # training is over; evaluation and the open-set reference follow
        on_fitted()
    if config.restore_best and reporter.best_weights is not None:
        model.set_weights(reporter.best_weights)
    best_epoch = reporter.best_epoch if config.restore_best else reporter.epochs_run

    evaluation = evaluate_arrays(model, val_split, dataset.classes) if has_validation else None
    # The backbone's whitening fits its features only: a frozen training's, no other.
    whitening = cohort = second = None
    if config.pretrained and config.frozen:
        from .backbone import cohort_for, whitening_for

        whitening = whitening_for()
        cohort = cohort_for() if whitening is not None else None
    if config.second_opinion:
        from .second import load_second

        second = load_second()
    held_out_crops = None
    if second is not None and has_validation:  # measured with both backbones only
        held_out_crops = validation_crops(val_split.paths, config.image_size)
    reference = fit_reference(
        Embedder(model, whitening=whitening, second=second),
        train_split.images,
        train_split.labels,
        val_split.images if has_validation else None,
        others,
        not_mine=not_mine_splits[1].images,
        cohort=cohort,
        held_out_crops=held_out_crops,
    )
    skipped = [*dataset.skipped, *train_split.failed, *val_split.failed]
    skipped += [failure for split in not_mine_splits for failure in split.failed]
    return TrainResult(
        model=model,
        classes=dataset.classes,
        config=config,
        history={k: [float(v) for v in values] for k, values in history.history.items()},
        evaluation=evaluation,
        seconds=seconds,
        epochs_run=reporter.epochs_run,
        best_epoch=best_epoch,
        stopped=reporter.stopped,
        dataset_fingerprint=fingerprint(dataset.classes, train_split, val_split, *not_mine_splits),
        skipped=[{"path": str(s.path), "reason": s.reason} for s in skipped],
        reference=reference,
        reference_paths=tuple(train_split.paths),
        not_mine={
            "trained": len(not_mine_splits[0].labels),
            "calibration": len(not_mine_splits[1].labels),
        },
    )


def validation_crops(paths, size: int) -> np.ndarray | None:
    """The corners of each held-out photo (`openset.CALIBRATION_CROP`), for the threshold
    to be set on beside the photos; one that cannot be read again (it was read a moment
    ago) is left out. None when none can."""
    crops = []
    for path in paths:
        try:
            crops.append(corner_crops(path, size, CALIBRATION_CROP))
        except ImageReadError:
            continue
    return np.concatenate(crops) if crops else None


@dataclass(frozen=True)
class CrossValidation:
    """k-fold cross-validation: every photo is validated once, by a model that never saw it."""

    folds: int
    fold_accuracies: list[float]
    accuracy: float  # pooled over all photos (= mean for equal folds)
    evaluation: Evaluation  # pooled confusion matrix, per-class scores, mistakes
    seconds: float

    def to_dict(self) -> dict:
        return {
            "folds": self.folds,
            "fold_accuracies": self.fold_accuracies,
            "accuracy": self.accuracy,
            "std": float(np.std(self.fold_accuracies)),
            "seconds": self.seconds,
            **{k: v for k, v in self.evaluation.to_dict().items() if k != "accuracy"},
        }


def crossval(
    dataset: Dataset,
    config: TrainConfig | None = None,
    *,
    folds: int = 5,
    on_fold: Callable[[int, int, Evaluation], None] | None = None,
    cache: DecodeCache | None = None,
) -> CrossValidation:
    """Stratified k-fold cross-validation over all photos of `dataset`.

    Each fold trains to its last epoch (no best-epoch selection), since picking weights
    by validation score would make the estimate optimistic.
    """
    from .dataset import kfold
    from .evaluation import score

    config = dataclasses.replace(config or TrainConfig(), restore_best=False)
    started = time.perf_counter()
    probabilities, labels, paths, accuracies = [], [], [], []
    for index, fold in enumerate(kfold(dataset, folds, seed=config.seed), start=1):
        result = train(fold, config, cache=cache)
        split = load_split(fold.validation, config.image_size, cache=cache)
        probabilities.append(result.model.predict(split.images, batch_size=32, verbose=0))
        labels.append(split.labels)
        paths += split.paths
        accuracies.append(result.evaluation.accuracy)
        if on_fold:
            on_fold(index, folds, result.evaluation)
        keras.backend.clear_session()  # free the fold's graph before the next
    pooled = score(np.concatenate(probabilities), np.concatenate(labels), dataset.classes, paths)
    return CrossValidation(
        folds=folds,
        fold_accuracies=accuracies,
        accuracy=pooled.accuracy,
        evaluation=pooled,
        seconds=time.perf_counter() - started,
    )
