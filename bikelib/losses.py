"""The supervised contrastive loss beside cross-entropy (`TrainConfig.contrastive`).

Why: "is this listing one of my bikes?" compares a photo's normalised features with the
training photos' (bikelib.openset, score `nearest`), so training should make photos of
one bike close and photos of different bikes far apart. Cross-entropy alone only asks
that the bikes be separable; this loss asks for tight, well-spaced groups. Measured in
bench/RESULTS.md ("A supervised contrastive loss"). Imports Keras at module load, like
training.py, which is its one user.
"""

from __future__ import annotations

import keras

# Supervised contrastive loss (Khosla et al. 2020) on the unit-length features: the
# usual temperature for few classes; lower sharpens the pull towards the closest photos.
TEMPERATURE = 0.1


class JointLoss(keras.losses.Loss):
    """Cross-entropy on the probabilities plus `weight` x supervised contrastive loss.

    The training model's output is [probabilities | features] side by side, so one loss
    sees both and Keras' logs keep their plain names (loss, accuracy). Rows whose target
    is not one-hot (strangers, trained towards the uniform distribution) are negatives
    for every photo and anchors of none.
    """

    def __init__(self, classes: int, weight: float, label_smoothing: float, **kwargs):
        super().__init__(**kwargs)
        self.classes, self.weight, self.label_smoothing = classes, weight, label_smoothing

    def call(self, y_true, y_pred):
        ops = keras.ops
        probabilities, features = y_pred[:, : self.classes], y_pred[:, self.classes :]
        cross_entropy = keras.losses.categorical_crossentropy(
            y_true, probabilities, label_smoothing=self.label_smoothing
        )
        features = features / ops.maximum(ops.norm(features, axis=1, keepdims=True), 1e-12)
        similarity = ops.matmul(features, ops.transpose(features)) / TEMPERATURE
        n = ops.shape(similarity)[0]
        self_pair = ops.eye(n, dtype="bool")
        known = ops.max(y_true, axis=1) > 0.5
        label = ops.argmax(y_true, axis=1)
        same = ops.expand_dims(label, 1) == ops.expand_dims(label, 0)
        both_known = ops.logical_and(ops.expand_dims(known, 1), ops.expand_dims(known, 0))
        positive = ops.cast(
            ops.logical_and(ops.logical_and(same, both_known), ops.logical_not(self_pair)),
            "float32",
        )
        # log-softmax over every other photo in the batch (the photo itself left out)
        masked = ops.where(self_pair, -1e9, similarity)
        log_prob = masked - ops.logsumexp(masked, axis=1, keepdims=True)
        count = ops.sum(positive, axis=1)
        contrastive = -ops.sum(positive * log_prob, axis=1) / ops.maximum(count, 1.0)
        return cross_entropy + self.weight * contrastive


def joint_accuracy(classes: int):
    def accuracy(y_true, y_pred):
        predicted = keras.ops.argmax(y_pred[:, :classes], axis=1)
        return keras.ops.cast(predicted == keras.ops.argmax(y_true, axis=1), "float32")

    return accuracy
