"""Why this answer: Grad-CAM heatmaps showing where in a photo a model looked.

Grad-CAM (Selvaraju et al., 2017) weights each channel of the last convolution's output
by how much the class score rises with it (the gradient, averaged over the picture),
sums the weighted channels and keeps the positive part: the places whose features
argued *for* the class. The map has the convolution's resolution (12x12 for the
default model at 96 px, 11x11 for the seed CNN at 150 px) and is interpolated back over
the photo with each cell placed on the centre of the pixels it sees (for the seed CNN's
valid-padded convolutions, that is not the same as stretching the map edge to edge).

    explain.heatmap(model, pixels)            # (h, w) float32 in [0, 1]
    explain.overlay(pixels, heat)             # uint8 RGB to show beside the answer

It works on any functional bikelib model, freshly built or reloaded from model.keras:
both architectures take raw pixels of any size, so the photo goes in as it is.

The class score is the class's logit minus the mean logit when the model ends in a
softmax (a shift shared by all logits changes no probability, so it explains nothing,
and logits do not saturate the way probabilities do on a confident answer).

Importing this module is cheap (numpy only); TensorFlow is loaded by the first heatmap.
The colours of the overlay are `colormap.py`'s.
"""

from __future__ import annotations

import threading
import weakref
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from .colormap import colormap
from .errors import BikeLibError

if TYPE_CHECKING:
    import keras


class ExplainError(BikeLibError, ValueError):
    """A model or photo Grad-CAM cannot work with."""


@dataclass(frozen=True)
class Explanation:
    """One Grad-CAM answer: the map, which class it explains and what the model said."""

    heat: np.ndarray  # (h, w) float32 in [0, 1], the photo's size; all zeros: no evidence
    class_index: int  # the class explained (the predicted one unless one was asked for)
    probabilities: np.ndarray  # the model's output for this photo, (num_classes,)
    layer: str  # the convolution explained


# --- which layer ------------------------------------------------------------------------


def _graph(model) -> tuple[object, dict[str, set[str]]]:
    """The functional graph behind `model` and each layer's parents (by name)."""
    graph = getattr(model, "_functional", None) or model  # a built Sequential wraps one
    by_depth = getattr(graph, "_nodes_by_depth", None)
    if by_depth is None:
        raise ExplainError(
            f"Cannot explain model '{getattr(model, 'name', model)}': only functional "
            "(or built Sequential) Keras models have a layer graph to follow"
        )
    parents: dict[str, set[str]] = {layer.name: set() for layer in graph.layers}
    for nodes in by_depth.values():
        for node in nodes:
            name = node.operation.name
            if name in parents:
                parents[name].update(p.operation.name for p in node.parent_nodes)
    return graph, parents


def last_conv_layer(model: keras.Model) -> str:
    """The name of the layer Grad-CAM explains: the deepest 2-D convolution's output.

    "Deepest" counts convolutions on the way from the input, so a shallow side branch
    (the default model's 1x1 colour-bin convolution, built after the main stack) is
    never taken for the last one. When the convolution is followed by its batch
    normalisation and activation, the activation is returned: its output is what the
    rest of the network sees. Raises ExplainError for a model without a convolution.
    """
    from keras import layers as kl

    convs = (kl.Conv2D, kl.SeparableConv2D, kl.DepthwiseConv2D, kl.Conv2DTranspose)
    followers = (kl.BatchNormalization, kl.Activation, kl.ReLU, kl.LeakyReLU, kl.PReLU, kl.ELU)
    graph, parents = _graph(model)
    layers = {layer.name: layer for layer in graph.layers}

    depth: dict[str, int] = {}

    def conv_depth(name: str) -> int:  # memoised; graphs are a few dozen layers deep
        if name not in depth:
            above = max((conv_depth(p) for p in parents.get(name, ())), default=0)
            depth[name] = above + isinstance(layers.get(name), convs)
        return depth[name]

    candidates = [
        name
        for name, layer in layers.items()
        if isinstance(layer, convs) and len(layer.output.shape) == 4
    ]
    if not candidates:
        raise ExplainError(
            f"Model '{model.name}' has no 2-D convolution, so there is nothing for a "
            "heatmap to show"
        )
    best = max(candidates, key=lambda name: (conv_depth(name), candidates.index(name)))

    children: dict[str, list[str]] = {name: [] for name in layers}
    for name, above in parents.items():
        for parent in above:
            children.setdefault(parent, []).append(name)
    while len(children[best]) == 1:
        (child,) = children[best]
        layer = layers[child]
        same_shape = tuple(layer.output.shape) == tuple(layers[best].output.shape)
        if not (isinstance(layer, followers) and same_shape):
            break
        best = child
    return best


# --- where each cell of the map lies in the photo ---------------------------------------

# Per image axis, (step, offset, frame): cell o's receptive field is centred on pixel
# step * o + offset of a frame of `frame` pixels that the model stretched the photo to.
Axis = tuple[float, float, int]


def _window(layer, axis: int, size_in: int) -> tuple[int, int, int] | None:
    """(kernel extent, stride, padding before) of a convolution or pooling layer."""
    if getattr(layer, "data_format", "") != "channels_last":
        return None
    if hasattr(layer, "kernel_size"):
        dilation = getattr(layer, "dilation_rate", (1, 1))[axis]
        extent = (layer.kernel_size[axis] - 1) * dilation + 1
    else:
        extent = layer.pool_size[axis]
    stride = layer.strides[axis]
    padding = str(layer.padding).lower()
    if padding == "valid":
        return extent, stride, 0
    if padding == "same":  # TensorFlow's rule: the odd pixel of padding goes after
        size_out = -(-size_in // stride)
        return extent, stride, max((size_out - 1) * stride + extent - size_in, 0) // 2
    return None


def _geometry(model, layer_name: str) -> tuple[Axis, Axis] | None:
    """Where the cells of `layer_name`'s map sit in the photo, or None if unknown.

    Follows the layers from the map back to the model's Resizing layer (or its input,
    when that has a fixed size), composing each convolution's and pooling's stride and
    offset. A valid-padded network such as the seed CNN sees only the middle of the
    photo with the centres of its last cells: 11 cells centred from pixel 33.5 to 113.5
    of 150, not spread evenly from edge to edge, so stretching the map would misplace
    it. None (then the map is stretched evenly) for anything this cannot follow:
    branches, transposed convolutions, reshapes, a Resizing that crops or pads.
    """
    from keras import layers as kl

    windowed = (
        kl.Conv2D,
        kl.SeparableConv2D,
        kl.DepthwiseConv2D,
        kl.MaxPooling2D,
        kl.AveragePooling2D,
    )
    graph, parents = _graph(model)
    layers = {layer.name: layer for layer in graph.layers}
    steps, offsets = [1.0, 1.0], [0.0, 0.0]
    name = layer_name
    while True:
        layer = layers[name]
        if isinstance(layer, (kl.InputLayer, kl.Resizing)):
            if isinstance(layer, kl.Resizing) and (
                layer.crop_to_aspect_ratio or getattr(layer, "pad_to_aspect_ratio", False)
            ):
                return None
            frame = layer.output.shape[1:3]
            if None in frame:
                return None
            return tuple((steps[i], offsets[i], int(frame[i])) for i in (0, 1))
        above = list(parents.get(name, ()))
        if len(above) != 1:
            return None
        shape_in = tuple(layers[above[0]].output.shape)
        shape_out = tuple(layer.output.shape)
        if len(shape_in) != 4 or len(shape_out) != 4:
            return None
        if isinstance(layer, windowed):
            for i in (0, 1):
                if shape_in[1 + i] is None:
                    return None
                window = _window(layer, i, shape_in[1 + i])
                if window is None:
                    return None
                extent, stride, before = window
                # output cell o covers input pixels stride*o - before ... + extent - 1
                offsets[i] = stride * offsets[i] - before + (extent - 1) / 2
                steps[i] *= stride
        elif shape_in[1:3] != shape_out[1:3]:  # resamples in a way not followed here
            return None
        name = above[0]


def _spread(cam: np.ndarray, height: int, width: int, geometry) -> np.ndarray:
    """The map (rows, cols) bilinearly interpolated over a (height, width) photo."""
    rows, cols = cam.shape
    if geometry is None:  # cells evenly over the photo
        geometry = ((1.0, 0.0, rows), (1.0, 0.0, cols))

    def position(pixels: int, cells: int, axis) -> tuple[np.ndarray, np.ndarray]:
        step, offset, frame = axis
        # photo pixel -> frame pixel (half-pixel centres, as image resizing does)
        at = (np.arange(pixels) + 0.5) * frame / pixels - 0.5
        index = np.clip((at - offset) / step, 0, cells - 1)
        low = np.minimum(np.floor(index).astype(np.intp), max(cells - 2, 0))
        return low, (index - low).astype(np.float32)

    low, frac = position(height, rows, geometry[0])
    high = np.minimum(low + 1, rows - 1)
    by_row = cam[low] * (1 - frac)[:, None] + cam[high] * frac[:, None]
    low, frac = position(width, cols, geometry[1])
    high = np.minimum(low + 1, cols - 1)
    return by_row[:, low] * (1 - frac) + by_row[:, high] * frac


# --- the gradient model, built once per (model, layer) ----------------------------------

_functions: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_lock = threading.Lock()


def _score_source(model):
    """What the class scores are computed from: (tensor, kind, dense layer or None).

    kind "dense": the model ends in a Dense with softmax; its logits are recomputed from
    its input and weights. "logits": a separate softmax layer; its input is the logits.
    "scores": anything else; the output itself is taken as the class scores.
    """
    from keras import layers as kl

    if len(model.outputs) != 1:
        raise ExplainError(f"Model '{model.name}' has {len(model.outputs)} outputs, not one")
    output = model.outputs[0]
    layer = output._keras_history.operation
    activation = getattr(getattr(layer, "activation", None), "__name__", "")
    if isinstance(layer, kl.Dense) and activation == "softmax":
        return layer.input, "dense", layer
    softmax_layer = isinstance(layer, kl.Activation) and activation == "softmax"
    if isinstance(layer, kl.Softmax) or softmax_layer:
        return layer.input, "logits", None
    return output, "scores", None


def _build(model, layer_name: str):
    import keras
    import tensorflow as tf

    try:
        target = model.get_layer(layer_name).output
    except ValueError as error:
        raise ExplainError(f"Model '{model.name}' has no layer '{layer_name}'") from error
    if len(target.shape) != 4:
        raise ExplainError(
            f"Layer '{layer_name}' gives {len(target.shape)}-D output; Grad-CAM needs a "
            "4-D (batch, height, width, channels) one"
        )
    source, kind, dense = _score_source(model)
    inner = keras.Model(model.inputs, [target, source], name=f"gradcam_{layer_name}")

    @tf.function(
        input_signature=[
            tf.TensorSpec([1, None, None, 3], tf.float32),
            tf.TensorSpec([], tf.int32),
        ],
        reduce_retracing=True,
    )
    def run(pixels, class_index):
        with tf.GradientTape() as tape:
            tape.watch(pixels)  # records the path even when no weight is trainable
            features, last = inner(pixels, training=False)
            if kind == "dense":
                last = tf.matmul(last, tf.convert_to_tensor(dense.kernel))
                if dense.use_bias:
                    last += tf.convert_to_tensor(dense.bias)
            if kind == "scores":
                probabilities, scores = last[0], last[0]
            else:  # softmax ignores a shift shared by all logits: take it out
                probabilities = tf.nn.softmax(last[0])
                scores = last[0] - tf.reduce_mean(last[0])
            predicted = tf.argmax(probabilities, output_type=tf.int32)
            chosen = tf.where(class_index < 0, predicted, class_index)
            score = scores[chosen]
        gradients = tape.gradient(score, features)
        weights = tf.reduce_mean(gradients, axis=(1, 2), keepdims=True)
        cam = tf.nn.relu(tf.reduce_sum(features * weights, axis=-1))
        return cam[0], probabilities, chosen

    return run


def _function(model, layer_name: str):
    with _lock:
        per_model = _functions.setdefault(model, {})
        if layer_name not in per_model:
            per_model[layer_name] = (_build(model, layer_name), _geometry(model, layer_name))
        return per_model[layer_name]


# --- public -----------------------------------------------------------------------------


def _pixels(image: np.ndarray) -> np.ndarray:
    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3 or 0 in image.shape:
        raise ExplainError(f"Expected an RGB image of shape (h, w, 3), not {image.shape}")
    return image.astype(np.float32)[None]


def explain(
    model: keras.Model,
    image: np.ndarray,
    class_index: int | None = None,
    layer: str | None = None,
) -> Explanation:
    """Grad-CAM for one photo: the map, the class it explains and the model's output.

    `image` is RGB pixels 0-255, (h, w, 3), as the model takes them; the map has the
    same (h, w). `class_index` None explains the predicted class; `layer` None explains
    `last_conv_layer(model)`. A map with no positive evidence is all zeros, never NaN.
    """
    pixels = _pixels(image)
    if len(model.outputs) != 1:
        raise ExplainError(f"Model '{model.name}' has {len(model.outputs)} outputs, not one")
    num_classes = int(model.outputs[0].shape[-1])
    if class_index is not None and not 0 <= class_index < num_classes:
        raise ExplainError(f"class_index {class_index} is not one of the {num_classes} classes")
    layer = layer or last_conv_layer(model)
    run, geometry = _function(model, layer)
    cam, probabilities, chosen = run(pixels, np.int32(-1 if class_index is None else class_index))
    cam = np.nan_to_num(np.asarray(cam, dtype=np.float32), nan=0.0, posinf=0.0, neginf=0.0)
    heat = _spread(cam, pixels.shape[1], pixels.shape[2], geometry).astype(np.float32)
    peak = float(heat.max())
    heat = np.clip(heat / peak, 0.0, 1.0) if peak > 0 else np.zeros_like(heat)
    return Explanation(heat, int(chosen), np.asarray(probabilities), layer)


def heatmap(
    model: keras.Model,
    image: np.ndarray,
    class_index: int | None = None,
    layer: str | None = None,
) -> np.ndarray:
    """Where the model saw evidence for the class: (h, w) float32 in [0, 1].

    See `explain`, which also says which class was explained and what was predicted.
    """
    return explain(model, image, class_index, layer).heat


# --- showing it -------------------------------------------------------------------------


def overlay(image: np.ndarray, heat: np.ndarray, alpha: float = 0.45) -> np.ndarray:
    """The photo with the heatmap blended over it: uint8 (h, w, 3).

    Each pixel is (1 - alpha) x photo + alpha x colour(heat): cold places darken
    towards near-black, hot ones turn orange-yellow.
    """
    image = np.asarray(image)
    heat = np.asarray(heat)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ExplainError(f"Expected an RGB image of shape (h, w, 3), not {image.shape}")
    if heat.shape != image.shape[:2]:
        raise ExplainError(f"Heatmap shape {heat.shape} does not match image {image.shape[:2]}")
    if not 0.0 <= alpha <= 1.0:
        raise ExplainError(f"alpha must be between 0 and 1, not {alpha}")
    photo = np.clip(image.astype(np.float32), 0, 255)
    blended = (1.0 - alpha) * photo + alpha * colormap(heat).astype(np.float32)
    return np.round(blended).astype(np.uint8)
