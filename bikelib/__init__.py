"""bikelib: learn to recognise specific bicycles from a few photos each.

The public surface, in the order a user meets it:

    dataset = open_dataset("photos/")                  # folders or a .zip
    result = train(dataset, TrainConfig(epochs=40))    # progress, stop, best weights
    save_model(result, "models/my-bikes")              # model.keras + model.json
    classifier = load_model("models/my-bikes")
    classifier.predict("marketplace-photo.jpg")        # label, confidence, probabilities

TensorFlow is imported only when a name that needs it is first used, so code that
only reads datasets (the Dataset page, say) starts fast.
"""

from importlib import import_module

from . import quiet
from .config import ARCHITECTURE_LABELS, Augmentation, TrainConfig
from .dataset import Dataset, Sample, Skipped, kfold, load_split, open_dataset, summarize
from .errors import (
    BikeLibError,
    ConfigError,
    DatasetError,
    ImageReadError,
    ModelLoadError,
    ModelNotFoundError,
)
from .images import DecodeCache, decode, open_image

# Names whose modules import Keras/TensorFlow, loaded on first use (PEP 562).
_LAZY = {
    "ARCHITECTURES": "models",
    "make_model": "models",
    "TrainResult": "training",
    "Progress": "training",
    "train": "training",
    "crossval": "training",
    "Evaluation": "evaluation",
    "Classifier": "classifier",
    "Prediction": "artifacts",
    "load_model": "classifier",
    "save_model": "artifacts",
    "list_models": "artifacts",
    "read_meta": "artifacts",
    "export_zip": "portable",
    "import_zip": "portable",
    "tflite_zip": "portable",
}


def __getattr__(name: str):
    if name in _LAZY:
        quiet.load_tensorflow()  # the first TensorFlow import, without its start-up lines
        return getattr(import_module(f".{_LAZY[name]}", __name__), name)
    raise AttributeError(f"module 'bikelib' has no attribute '{name}'")


__all__ = [
    "ARCHITECTURE_LABELS",
    "Augmentation",
    "TrainConfig",
    "BikeLibError",
    "ConfigError",
    "Dataset",
    "DatasetError",
    "DecodeCache",
    "ImageReadError",
    "ModelLoadError",
    "ModelNotFoundError",
    "Sample",
    "Skipped",
    "decode",
    "kfold",
    "load_split",
    "open_dataset",
    "open_image",
    "summarize",
    *_LAZY,
]
