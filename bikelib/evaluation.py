"""Evaluation as plain data: accuracy, loss, confusion matrix, per-class scores, mistakes.

`score()` turns predicted probabilities and true labels into an `Evaluation` (numpy
only, no Keras); `evaluate_arrays()` runs a model over a loaded split first. Training,
the CLI's `evaluate` and cross-validation (`training.crossval`) all report through it,
and `Evaluation.to_dict()` is what model.json and `--json` carry.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np

from .dataset import LoadedSplit

CHANCE_FACTOR = 1.5  # at most 1.5 x the accuracy of guessing counts as "about chance"


def near_chance(meta: dict) -> bool:
    """Whether a saved model's validation accuracy (its model.json `meta`) is at most
    1.5 / number of bikes, about what guessing gets (say a run stopped after its first
    epoch): its match scores then order photos at random."""
    accuracy = meta.get("metrics", {}).get("val_accuracy")
    bikes = len(meta.get("classes", ()))
    return accuracy is not None and bikes > 1 and accuracy <= CHANCE_FACTOR / bikes


@dataclass(frozen=True)
class Evaluation:
    """How a model did on a set of labelled photos."""

    accuracy: float
    loss: float  # mean categorical cross-entropy
    n: int
    classes: list[str]
    confusion_matrix: list[list[int]]  # rows: true class, columns: predicted class
    per_class: list[dict]  # class, precision, recall, support
    misclassified: list[dict]  # path, true, predicted, confidence

    def to_dict(self) -> dict:
        return asdict(self)


def score(
    probabilities: np.ndarray,
    labels: np.ndarray,
    classes: Sequence[str],
    paths: Sequence[object] = (),
) -> Evaluation:
    """Evaluation from predicted probabilities (n, classes) and true labels (n,)."""
    probabilities = np.asarray(probabilities, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.int64)
    n, k = len(labels), len(classes)
    predicted = probabilities.argmax(axis=1) if n else np.zeros(0, np.int64)
    eps = 1e-7
    loss = (
        float(-np.log(np.clip(probabilities[np.arange(n), labels], eps, 1.0)).mean()) if n else 0.0
    )
    confusion = np.zeros((k, k), dtype=np.int64)
    np.add.at(confusion, (labels, predicted), 1)
    per_class = []
    for i, name in enumerate(classes):
        predicted_i, support = confusion[:, i].sum(), confusion[i, :].sum()
        per_class.append(
            {
                "class": name,
                "precision": float(confusion[i, i] / predicted_i) if predicted_i else 0.0,
                "recall": float(confusion[i, i] / support) if support else 0.0,
                "support": int(support),
            }
        )
    misclassified = [
        {
            "path": str(paths[j]) if len(paths) else str(j),
            "true": classes[labels[j]],
            "predicted": classes[predicted[j]],
            "confidence": float(probabilities[j, predicted[j]]),
        }
        for j in np.flatnonzero(predicted != labels)
    ]
    return Evaluation(
        accuracy=float((predicted == labels).mean()) if n else 0.0,
        loss=loss,
        n=n,
        classes=list(classes),
        confusion_matrix=confusion.tolist(),
        per_class=per_class,
        misclassified=misclassified,
    )


def evaluate_arrays(model, split: LoadedSplit, classes: Sequence[str]) -> Evaluation:
    """Run a Keras model over decoded photos and score it."""
    if len(split.labels) == 0:
        return score(np.zeros((0, len(classes))), split.labels, classes)
    probabilities = model.predict(split.images, batch_size=32, verbose=0)
    return score(probabilities, split.labels, classes, split.paths)
