"""Training, evaluation and saved models, on tiny generated photos (seconds, not minutes)."""

import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pytest

from bikelib import (
    ConfigError,
    ModelLoadError,
    ModelNotFoundError,
    TrainConfig,
    crossval,
    embedding,
    export_zip,
    list_models,
    load_model,
    make_model,
    open_dataset,
    save_model,
    strangers,
    train,
)
from bikelib.evaluation import score
from bikelib.openset import calibrate as openset_calibrate
from bikelib.second import fingerprint as second_fingerprint

# 2 batches an epoch; one backbone (the second's own tests ask for it: it costs seconds).
FAST = {"image_size": 32, "batch_size": 8, "epochs": 3, "strangers": 0, "second_opinion": False}


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """One small training run shared by the tests that only read its result."""
    from helpers import write_dataset

    root = write_dataset(tmp_path_factory.mktemp("data") / "tiny")
    dataset = open_dataset(root, val_fraction=0.34, seed=0)
    reports = []
    result = train(dataset, TrainConfig(**FAST), on_progress=reports.append)
    return dataset, result, reports


def test_train_reports_progress_and_history(trained):
    dataset, result, reports = trained
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert all(len(v) == 3 for v in result.history.values())
    epochs = [r for r in reports if r.kind == "epoch"]
    batches = [r for r in reports if r.kind == "batch"]
    assert [r.epoch for r in epochs] == [1, 2, 3]
    assert len(batches) == 3 * 2  # 12 training photos in batches of 8
    assert epochs[-1].fraction == 1.0 and epochs[-1].seconds_left == 0
    assert "val_accuracy" in epochs[0].logs
    assert result.classes == dataset.classes and not result.stopped


def test_restored_best_epoch_is_what_gets_evaluated(trained):
    _, result, _ = trained
    best = result.history["val_accuracy"][result.best_epoch - 1]
    assert result.best_epoch >= 1
    assert result.evaluation.accuracy == pytest.approx(max(result.history["val_accuracy"]))
    assert result.evaluation.accuracy == pytest.approx(best)
    assert result.metrics["val_accuracy"] == result.evaluation.accuracy


def test_stop_request_ends_training_after_the_current_batch(tiny_dataset):
    dataset = open_dataset(tiny_dataset)
    batches, fitted = [], []
    result = train(
        dataset,
        TrainConfig(**{**FAST, "epochs": 50}),
        on_progress=lambda p: batches.append(p) if p.kind == "batch" else None,
        should_stop=lambda: len(batches) >= 3,
        on_fitted=lambda: fitted.append(len(batches)),
    )
    assert result.stopped and result.epochs_run == 2
    assert len(batches) == 3
    assert fitted == [3]  # once, after the last batch (the job shows "saving" from then)
    assert result.evaluation is not None  # the best weights so far are kept and scored


def test_same_seed_same_result(tiny_dataset):
    dataset = open_dataset(tiny_dataset)
    config = TrainConfig(**{**FAST, "epochs": 2, "strangers": 0})
    first, second = train(dataset, config), train(dataset, config)
    assert first.history["loss"] == pytest.approx(second.history["loss"], rel=1e-5)


def test_seed_cnn_is_the_2018_network():
    model = make_model("seed", 5, 150)
    kinds = [type(layer).__name__ for layer in model.layers]
    body = kinds[kinds.index("Rescaling") + 1 :]
    assert body == ["Conv2D", "MaxPooling2D"] * 4 + ["Flatten", "Dense", "Dropout", "Dense"]
    convs = [layer for layer in model.layers if type(layer).__name__ == "Conv2D"]
    assert [c.filters for c in convs] == [32, 32, 64, 64]
    assert all(c.kernel_size == (5, 5) for c in convs)
    assert model.output_shape == (None, 5)


def test_bad_settings_are_config_errors():
    with pytest.raises(ConfigError, match="epochs"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="architecture"):
        TrainConfig(arch="resnet")
    with pytest.raises(ConfigError, match="strangers"):
        TrainConfig(strangers=-1)
    assert TrainConfig().strangers == 40  # the measured defaults (bench/RESULTS.md)
    assert TrainConfig().contrastive == 1.0
    assert TrainConfig.recommended("seed").contrastive == 0.0  # the 2018 loss
    with pytest.raises(ConfigError, match="contrastive"):
        TrainConfig(contrastive=-0.5)


def test_the_seed_cnn_refuses_photos_too_small_for_its_four_convolutions():
    from bikelib.config import SEED_MIN_IMAGE_SIZE

    make_model("seed", 2, SEED_MIN_IMAGE_SIZE)  # the smallest size that builds
    with pytest.raises(ValueError):  # Keras itself: the last pooling gets nothing
        make_model("seed", 2, SEED_MIN_IMAGE_SIZE - 1)
    with pytest.raises(ConfigError, match=f"at least {SEED_MIN_IMAGE_SIZE} pixels"):
        TrainConfig(arch="seed", image_size=SEED_MIN_IMAGE_SIZE - 1)


def test_rendered_strangers_calibrate_the_threshold(trained):
    from bikelib.strangers import STRANGER_SEEDS

    _, result, _ = trained
    # Calibration strangers are never trained on, and every one of them is scored.
    assert len(result.reference.other_scores) == len(STRANGER_SEEDS["calibration"])
    described = result.reference.describe()
    assert described["others_rejected"] == np.mean(
        np.asarray(result.reference.other_scores) < result.reference.threshold
    )


def test_strangers_join_the_training_batches_when_asked(tiny_dataset):
    dataset = open_dataset(tiny_dataset)
    batches = []
    config = TrainConfig(**{**FAST, "epochs": 1, "strangers": 20})
    train(dataset, config, on_progress=lambda p: batches.append(p) if p.kind == "batch" else None)
    assert len(batches) == -(-(len(dataset.train) + 20) // 8)


def test_not_mine_photos_are_trained_against_and_scored_in_calibration(tmp_path):
    from helpers import write_dataset, write_not_mine

    root = write_not_mine(write_dataset(tmp_path / "tiny"), count=7)
    dataset = open_dataset(root, val_fraction=0.34, seed=0)
    assert (len(dataset.not_mine_train), len(dataset.not_mine_validation)) == (5, 2)
    batches = []
    config = TrainConfig(**{**FAST, "epochs": 1, "second_opinion": True})
    result = train(
        dataset, config, on_progress=lambda p: batches.append(p) if p.kind == "batch" else None
    )
    assert len(batches) == -(-(12 + 5) // 8)  # the 5 not-mine training photos join
    assert result.not_mine == {"trained": 5, "calibration": 2}
    reference = result.reference
    assert len(reference.not_mine_scores) == 2
    assert len(reference.known_scores) == 6 + reference.crops and reference.crops == 4 * 6
    # The threshold is set from the known photos alone (see openset.fit_reference).
    assert reference.threshold == openset_calibrate(reference.known_scores)
    rejected = np.mean(np.asarray(reference.not_mine_scores) < reference.threshold)

    meta = json.loads((save_model(result, tmp_path / "m") / "model.json").read_text())
    assert meta["not_mine"] == {"trained": 5, "calibration": 2}
    assert meta["openset"]["not_mine_rejected"] == rejected
    assert meta["openset"]["not_mine_scores"] == list(reference.not_mine_scores)
    classifier = load_model(tmp_path / "m", gate=False)
    assert classifier.not_mine_rejected(classifier.threshold) == (round(rejected * 2), 2)
    lowest = min(*reference.not_mine_scores, *reference.known_scores)
    assert classifier.not_mine_rejected(lowest - 1.0) == (0, 2)
    without = train(open_dataset(write_dataset(tmp_path / "plain"), val_fraction=0.34), config)
    assert without.dataset_fingerprint != result.dataset_fingerprint


def test_a_model_without_not_mine_photos_says_so(trained, tmp_path):
    _, result, _ = trained
    meta = json.loads((save_model(result, tmp_path / "m") / "model.json").read_text())
    assert meta["not_mine"] == {"trained": 0, "calibration": 0}
    assert meta["openset"]["not_mine_rejected"] is None
    assert load_model(tmp_path / "m", gate=False).not_mine_rejected(0.5) is None


def test_strangers_are_the_shipped_photos_or_rendered_alike(tmp_path, monkeypatch):
    """data/strangers holds what the renderer draws; without it they are rendered."""
    assert all(p.exists() for k in ("training", "calibration") for p in strangers.stranger_paths(k))
    shipped = strangers.strangers("training", 48, 2).astype(int)
    monkeypatch.setattr(strangers, "STRANGERS_DIR", tmp_path / "missing")
    rendered = strangers.strangers("training", 48, 2).astype(int)
    assert np.abs(shipped - rendered).mean() < 4  # only the JPEG round trip differs
    assert np.abs(rendered[0] - rendered[1]).mean() > 10  # two different bikes


def test_score_counts_confusions_and_mistakes():
    probabilities = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])
    evaluation = score(probabilities, [0, 1, 1], ["a", "b"], ["x.jpg", "y.jpg", "z.jpg"])
    assert evaluation.accuracy == pytest.approx(2 / 3)
    assert evaluation.confusion_matrix == [[1, 0], [1, 1]]
    assert evaluation.per_class[0] == {"class": "a", "precision": 0.5, "recall": 1.0, "support": 1}
    assert evaluation.misclassified == [
        {"path": "z.jpg", "true": "b", "predicted": "a", "confidence": 0.6}
    ]
    assert evaluation.loss == pytest.approx(-(np.log(0.9) + np.log(0.8) + np.log(0.4)) / 3)


def test_saved_model_describes_itself_and_predicts_the_same(trained, tmp_path):
    dataset, result, _ = trained
    directory = save_model(result, tmp_path / "models" / "tiny")
    meta = json.loads((directory / "model.json").read_text())
    assert meta["classes"] == list(dataset.classes)
    assert meta["image_size"] == 32 and meta["architecture"] == "default"
    assert meta["config"]["epochs"] == 3
    assert meta["metrics"]["val_accuracy"] == result.evaluation.accuracy
    assert {"val_loss", "train_seconds"} <= set(meta["metrics"])
    assert len(meta["history"]["loss"]) == 3 and meta["dataset_fingerprint"]
    assert {"keras", "tensorflow", "numpy", "pillow"} <= set(meta["versions"])
    assert meta["openset"]["zooms"] == list(embedding.ZOOMS)  # how its features were made

    classifier = load_model(directory)
    assert classifier.embed.zooms == embedding.ZOOMS
    photo = dataset.validation[0].path
    prediction = classifier.predict(photo)
    assert prediction.label in dataset.classes
    assert sum(prediction.probabilities.values()) == pytest.approx(1.0, abs=1e-4)
    direct = result.model.predict(classifier.decode(photo)[None], verbose=0)[0]
    np.testing.assert_allclose(list(prediction.probabilities.values()), direct, atol=1e-5)
    assert prediction.confidence == prediction.probabilities[prediction.label]
    assert [m["path"] for m in list_models(tmp_path / "models")] == [str(directory)]
    with zipfile.ZipFile(io.BytesIO(export_zip(directory))) as archive:
        names = {Path(n).name for n in archive.namelist()}
        assert {"model.keras", "model.json", "reference.npz", "reference-photos.npz"} <= names
        assert archive.testzip() is None  # every member's CRC checks out
        meta_name = next(n for n in archive.namelist() if n.endswith("model.json"))
        exported = json.loads(archive.read(meta_name))
    assert exported["classes"] == list(dataset.classes)


def test_a_saved_model_is_served_with_the_views_its_features_were_made_with(trained, tmp_path):
    _, result, _ = trained
    directory = save_model(result, tmp_path / "m")
    meta = json.loads((directory / "model.json").read_text())
    meta["openset"]["zooms"] = [1.0, 0.5]  # as a model made with zoomed views records it
    (directory / "model.json").write_text(json.dumps(meta))
    assert load_model(directory, gate=False).embed.zooms == (1.0, 0.5)
    del meta["openset"]["zooms"]  # saved before zoomed views: the whole photo alone
    (directory / "model.json").write_text(json.dumps(meta))
    assert load_model(directory, gate=False).embed.zooms == (1.0,)


def test_saving_over_a_model_replaces_it_whole(trained, tmp_path):
    _, result, _ = trained
    target = tmp_path / "m"
    save_model(result, target)
    (target / "stale.txt").write_text("from the old model")
    save_model(result, target)
    assert sorted(p.name for p in target.iterdir()) == [
        "model.json",
        "model.keras",
        "reference-photos.npz",
        "reference.npz",
    ]
    assert [p.name for p in tmp_path.iterdir()] == ["m"]  # no staging folders left


def test_broken_model_directories_say_what_is_wrong(trained, tmp_path):
    _, result, _ = trained
    with pytest.raises(ModelNotFoundError):
        load_model(tmp_path / "nothing")
    with pytest.raises(FileNotFoundError):  # also a FileNotFoundError
        load_model(tmp_path / "nothing")
    directory = save_model(result, tmp_path / "m")
    (directory / "model.json").write_text("{not json")
    with pytest.raises(ModelLoadError, match="not valid JSON"):
        load_model(directory)
    save_model(result, directory)
    (directory / "model.keras").write_bytes(b"garbage")
    with pytest.raises(ModelLoadError, match="could not be loaded"):
        load_model(directory)
    (directory / "model.keras").unlink()
    with pytest.raises(ModelLoadError, match=r"model\.keras missing"):
        load_model(directory)


def test_crossval_validates_each_photo_once(tiny_dataset):
    dataset = open_dataset(tiny_dataset)
    result = crossval(dataset, TrainConfig(**{**FAST, "epochs": 1, "strangers": 0}), folds=2)
    assert len(result.fold_accuracies) == 2
    assert result.evaluation.n == 18
    matrix = np.array(result.evaluation.confusion_matrix)
    assert matrix.sum() == 18  # every photo validated exactly once, by one fold
    assert result.accuracy == pytest.approx(np.trace(matrix) / 18)  # pooled over the folds
    assert result.accuracy == pytest.approx(np.mean(result.fold_accuracies))  # equal folds


def test_contrastive_loss_rewards_photos_of_one_bike_close_together():
    from bikelib.losses import JointLoss

    labels = np.array([0, 0, 1, 1, 2, 2])
    y_true = np.eye(3, dtype="float32")[labels]
    probabilities = np.full((6, 3), 1 / 3, dtype="float32")
    apart = np.eye(3, dtype="float32")[labels]  # each bike's photos share one direction
    mixed = np.eye(3, dtype="float32")[[0, 1, 2, 0, 1, 2]]  # every pair split up
    loss = JointLoss(3, weight=1.0, label_smoothing=0.0, reduction=None)
    together = np.asarray(loss(y_true, np.concatenate([probabilities, apart], axis=1)))
    split = np.asarray(loss(y_true, np.concatenate([probabilities, mixed], axis=1)))
    assert (together < split).all()
    cross_entropy = np.log(3)
    assert together == pytest.approx(cross_entropy, abs=1e-3)  # nothing left to pull


def test_strangers_are_pushed_away_but_anchor_nothing():
    from bikelib.losses import JointLoss

    uniform = np.full((4, 2), 0.5, dtype="float32")  # strangers' targets: none of mine
    features = np.random.default_rng(0).normal(size=(4, 5)).astype("float32")
    loss = JointLoss(2, weight=1.0, label_smoothing=0.0, reduction=None)
    values = np.asarray(loss(uniform, np.concatenate([uniform, features], axis=1)))
    assert values == pytest.approx(np.log(2), abs=1e-5)  # cross-entropy only


def test_contrastive_training_saves_the_plain_classifier(tiny_dataset, tmp_path):
    dataset = open_dataset(tiny_dataset)
    config = TrainConfig(**{**FAST, "contrastive": 0.5})
    result = train(dataset, config)
    assert set(result.history) == {"loss", "accuracy", "val_loss", "val_accuracy"}
    assert result.model.output_shape == (None, len(dataset.classes))
    assert result.evaluation.accuracy == pytest.approx(max(result.history["val_accuracy"]))
    save_model(result, tmp_path / "model")
    loaded = load_model(tmp_path / "model", gate=False)
    assert loaded.meta["config"]["contrastive"] == 0.5
    assert loaded.predict_arrays(np.zeros((1, 32, 32, 3), "uint8")).shape == (1, 3)


@pytest.fixture
def whitened_backbone(tmp_path, monkeypatch):
    """The shipped backbone with a whitening fitted at 32 px on 3 rendered bikes."""
    import shutil

    from bikelib import backbone as bb

    folder = tmp_path / "backbone"
    folder.mkdir()
    shutil.copy(bb.BACKBONE_DIR / bb.WEIGHTS, folder / bb.WEIGHTS)
    monkeypatch.setattr(bb, "PHOTOS_PER_BIKE", 2)
    monkeypatch.setattr(bb, "VALIDATION_PER_BIKE", 1)
    bb.fit_backbone_whitening(folder, tmp_path / "cohort", first=300, bikes=3, image_size=32)
    monkeypatch.setattr(bb, "BACKBONE_DIR", folder)
    return folder


def test_a_frozen_training_scores_in_the_whitened_features_and_its_model_keeps_them(
    whitened_backbone, tiny_dataset, tmp_path
):
    dataset = open_dataset(tiny_dataset, val_fraction=0.34, seed=0)
    result = train(dataset, TrainConfig(**{**FAST, "second_opinion": True}))
    whitening = result.reference.whitening
    assert whitening is not None and whitening.matrix.shape == (544, 544)
    assert result.reference.score == "nearest+plda" and result.reference.plda is not None
    directory = save_model(result, tmp_path / "m")
    described = json.loads((directory / "model.json").read_text())["openset"]
    assert described["whitened"] is True and described["score"] == "nearest+plda"
    # The second backbone's features and PLDA are the model's; its network is the app's,
    # named by fingerprint.
    assert (
        described["second"]["backbone"] == second_fingerprint() == result.reference.second.backbone
    )
    # The threshold is set on the validation photos and their four corners (CALIBRATION_CROP).
    crops = 4 * len(dataset.validation)
    assert result.reference.crops == described["crops"] == crops
    assert len(result.reference.known_scores) == len(dataset.validation) + crops
    assert result.reference.threshold == openset_calibrate(result.reference.known_scores)
    classifier = load_model(directory, gate=False)
    np.testing.assert_array_equal(classifier.embed.whitening.matrix, whitening.matrix)
    np.testing.assert_array_equal(
        classifier.reference.second.features, result.reference.second.features
    )
    assert classifier.reference.crops == crops
    np.testing.assert_array_equal(
        classifier.reference.plda.transform, result.reference.plda.transform
    )
    # Served as trained: the validation photos score what calibration saw.
    served = [classifier.predict(s.path).score for s in dataset.validation]
    photos = result.reference.known_scores[: len(dataset.validation)]
    np.testing.assert_allclose(served, photos, rtol=1e-5, atol=1e-4)
    # Served by another second backbone than it was made with, its scores would mean nothing.
    meta = json.loads((directory / "model.json").read_text())
    meta["openset"]["second"]["backbone"] = "0123456789abcdef"
    (directory / "model.json").write_text(json.dumps(meta))
    with pytest.raises(ModelLoadError, match="another second backbone"):
        load_model(directory, gate=False)
    meta["openset"]["second"]["backbone"] = second_fingerprint()
    (directory / "model.json").write_text(json.dumps(meta))
    # A reference file that says whitened but lost its map, or holds one of another size,
    # is a broken model, not a silently unwhitened one.
    stored = dict(np.load(directory / "reference.npz"))
    np.savez(directory / "reference.npz", features=stored["features"], labels=stored["labels"])
    with pytest.raises(ModelLoadError, match="unreadable"):
        load_model(directory, gate=False)
    plda = {k: v for k, v in stored.items() if k.startswith("plda_")}
    small = {"whitening_mean": stored["whitening_mean"][:8], "whitening_matrix": np.eye(8)}
    second_arrays = {k: v for k, v in stored.items() if k.startswith("second_")}
    kept = {k: stored[k] for k in ("features", "labels")} | second_arrays
    np.savez(directory / "reference.npz", **kept, **small, **plda)
    with pytest.raises(ModelLoadError, match="whitening does not fit"):
        load_model(directory, gate=False)
    # Nor is one whose PLDA is lost, or of another size: its scores would mean nothing.
    kept |= {k: stored[k] for k in ("whitening_mean", "whitening_matrix")}
    np.savez(directory / "reference.npz", **kept)
    with pytest.raises(ModelLoadError, match="unreadable"):
        load_model(directory, gate=False)
    plda["plda_transform"] = np.eye(8)
    np.savez(directory / "reference.npz", **kept, **plda)
    with pytest.raises(ModelLoadError, match="PLDA does not fit"):
        load_model(directory, gate=False)
    # The second backbone's features must be of the same photos (one a photo).
    plda["plda_transform"] = stored["plda_transform"]
    short = kept | {"second_features": second_arrays["second_features"][:-1]}
    np.savez(directory / "reference.npz", **short, **plda)
    with pytest.raises(ModelLoadError, match="second does not fit"):
        load_model(directory, gate=False)
    # Fine-tuned features move away from the backbone's: its whitening would not fit them.
    tuned = train(dataset, TrainConfig(**FAST, frozen=False))
    assert tuned.reference.whitening is None and tuned.reference.score == "nearest"
    assert (
        json.loads((save_model(tuned, tmp_path / "t") / "model.json").read_text())["openset"][
            "whitened"
        ]
        is False
    )
    assert load_model(tmp_path / "t", gate=False).embed.whitening is None
