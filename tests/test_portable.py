"""Models that travel: a downloaded model zip opens again, and nothing else does."""

from __future__ import annotations

import io
import json
import re
import zipfile

import numpy as np
import pytest
from helpers import write_dataset

from bikelib import (
    ModelLoadError,
    TrainConfig,
    export_zip,
    import_zip,
    load_model,
    open_dataset,
    save_model,
    train,
)


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    root = tmp_path_factory.mktemp("portable")
    dataset = open_dataset(write_dataset(root / "data", per_class=6), val_fraction=0.34)
    result = train(dataset, TrainConfig(epochs=2, image_size=32, batch_size=8, strangers=0))
    return save_model(result, root / "my-bikes")


def rezip(original: bytes, change: dict[str, bytes | None]) -> bytes:
    """The zip with some members replaced (None: removed) or added."""
    out = io.BytesIO()
    with zipfile.ZipFile(io.BytesIO(original)) as source, zipfile.ZipFile(out, "w") as target:
        for info in source.infolist():
            name = info.filename.split("/")[-1]
            if name in change:
                if change[name] is not None:
                    target.writestr(info.filename, change.pop(name))
                else:
                    change.pop(name)
                continue
            target.writestr(info.filename, source.read(info))
        for name, data in change.items():
            target.writestr(f"my-bikes/{name}", data)
    return out.getvalue()


def test_a_downloaded_model_opens_again_and_predicts_the_same(saved, tmp_path):
    reopened = import_zip(export_zip(saved), tmp_path / "reopened")
    photo = next((saved.parent / "data").rglob("*.png"))
    before, after = load_model(saved).predict(photo), load_model(reopened).predict(photo)
    assert after.label == before.label and after.verdict == before.verdict
    assert np.allclose(list(after.probabilities.values()), list(before.probabilities.values()))
    assert after.threshold == pytest.approx(before.threshold)
    closest = load_model(reopened, gate=False).closest_photo(photo)  # the photos travel too
    assert closest is not None and closest == load_model(saved, gate=False).closest_photo(photo)


def test_files_at_the_zip_root_work_too(saved, tmp_path):
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        for name in ("model.keras", "model.json"):
            archive.write(saved / name, name)
    assert load_model(import_zip(out.getvalue(), tmp_path / "m")).classes


@pytest.mark.parametrize(
    ("change", "says"),
    [
        ({"notes.txt": b"hello"}, "it holds 'notes.txt'"),
        ({"model.json": None}, "model.json missing"),
        ({"model.json": b"{not json"}, "not valid JSON"),
        ({"model.json": json.dumps({"format": "other"}).encode()}, "description"),
        ({"model.keras": b"PK\x03\x04 not really"}, "cannot be loaded safely"),
    ],
)
def test_anything_else_is_refused_with_one_sentence(saved, tmp_path, change, says):
    bad = rezip(export_zip(saved), dict(change))
    with pytest.raises(ModelLoadError, match=says):
        import_zip(bad, tmp_path / "m")
    assert not (tmp_path / "m").exists() and not list(tmp_path.glob(".import-*"))


def test_classes_that_do_not_fit_the_network_are_refused(saved, tmp_path):
    meta = json.loads((saved / "model.json").read_text())
    meta["classes"] = [*meta["classes"], "one-more"]
    bad = rezip(export_zip(saved), {"model.json": json.dumps(meta).encode()})
    with pytest.raises(ModelLoadError, match="answers for"):
        import_zip(bad, tmp_path / "m")


def test_a_model_with_code_inside_is_refused(saved, tmp_path):
    """safe_mode: a Lambda layer (arbitrary Python) is never deserialised."""
    import keras

    inputs = keras.Input((32, 32, 3))
    outputs = keras.layers.Dense(3, activation="softmax")(
        keras.layers.Flatten()(keras.layers.Lambda(lambda x: x * 2)(inputs))
    )
    keras.Model(inputs, outputs).save(tmp_path / "evil.keras")
    bad = rezip(export_zip(saved), {"model.keras": (tmp_path / "evil.keras").read_bytes()})
    with pytest.raises(ModelLoadError, match="cannot be loaded safely"):
        import_zip(bad, tmp_path / "m")


def test_not_a_zip_and_unsafe_paths_are_refused(saved, tmp_path):
    with pytest.raises(ModelLoadError, match="not a readable zip"):
        import_zip(b"just some bytes", tmp_path / "m")
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as archive:
        archive.writestr("../model.json", "{}")
    with pytest.raises(ModelLoadError, match=re.escape("holds '../model.json'")):
        import_zip(out.getvalue(), tmp_path / "m")
    (tmp_path / "taken").mkdir()
    with pytest.raises(ModelLoadError, match="exists already"):
        import_zip(export_zip(saved), tmp_path / "taken")


def test_the_tflite_export_gives_the_keras_probabilities(saved, tmp_path):
    """python -m bikelib export: the phone model answers as the app does, photo for photo,
    in LiteRT, the runtime phones run it with (TensorFlow's own tf.lite.Interpreter is
    deprecated in its favour)."""
    from ai_edge_litert.interpreter import Interpreter

    from bikelib import cli
    from bikelib.images import decode

    assert cli.main(["export", str(saved), "--format", "tflite", "--out", str(tmp_path)]) == 0
    about = json.loads((tmp_path / "model.tflite.json").read_text())
    classifier = load_model(saved, gate=False)
    assert about["classes"] == list(classifier.classes)
    photos = sorted((saved.parent / "data").rglob("*.png"))[:6]
    pixels = np.stack([decode(p, about["image_size"]) for p in photos]).astype(np.float32)
    interpreter = Interpreter(model_path=str(tmp_path / "model.tflite"))
    given = interpreter.get_input_details()[0]["index"]
    interpreter.resize_tensor_input(given, pixels.shape)
    interpreter.allocate_tensors()
    interpreter.set_tensor(given, pixels)
    interpreter.invoke()
    phone = interpreter.get_tensor(interpreter.get_output_details()[0]["index"])
    app = np.stack([list(classifier.predict(p).probabilities.values()) for p in photos])
    assert np.abs(phone - app).max() < 1e-4


def test_the_phone_download_holds_the_tflite_model_and_its_classes(saved):
    from bikelib import tflite_zip

    with zipfile.ZipFile(io.BytesIO(tflite_zip(saved))) as archive:
        assert sorted(archive.namelist()) == ["model.tflite", "model.tflite.json"]
        about = json.loads(archive.read("model.tflite.json"))
        assert about["classes"] == json.loads((saved / "model.json").read_text())["classes"]
        assert archive.read("model.tflite")[4:8] == b"TFL3"  # the flatbuffer's identifier
