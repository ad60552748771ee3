"""The heatmap colours: a perceptually uniform near-black -> purple -> orange -> pale
yellow map, built once from OKLCH (no matplotlib), for Grad-CAM overlays (`explain`).
"""

from __future__ import annotations

from functools import cache

import numpy as np

# OKLab -> LMS' and linear LMS -> linear sRGB (Björn Ottosson's published matrices).
_OKLAB_TO_LMS = np.array(
    [
        [1.0, 0.3963377774, 0.2158037573],
        [1.0, -0.1055613458, -0.0638541728],
        [1.0, -0.0894841775, -1.2914855480],
    ]
)
_LMS_TO_RGB = np.array(
    [
        [4.0767416621, -3.3077115913, 0.2309699292],
        [-1.2684380046, 2.6097574011, -0.3413193965],
        [-0.0041960863, -0.7034186147, 1.7076147010],
    ]
)


def _oklch_to_linear_rgb(lightness, chroma, hue):
    lab = np.stack([lightness, chroma * np.cos(hue), chroma * np.sin(hue)], axis=-1)
    return ((lab @ _OKLAB_TO_LMS.T) ** 3) @ _LMS_TO_RGB.T


@cache
def _colour_table() -> np.ndarray:
    """256 colours, near-black -> purple -> red -> orange -> pale yellow.

    Lightness rises in equal steps of OKLab (a perceptually uniform space), so equal
    steps of heat look equally different and the map reads in greyscale too; the hue
    turns from purple to yellow, with the most colour the sRGB gamut allows at each
    step, up to a chroma that peaks mid-way.
    """
    t = np.linspace(0.0, 1.0, 256)
    lightness = 0.15 + 0.80 * t
    hue = np.radians(290.0 + 175.0 * t)
    wanted = 0.06 + 0.16 * np.sin(np.pi * 0.85 * t)
    low, high = np.zeros_like(t), wanted
    for _ in range(30):  # bisect the largest in-gamut chroma, colour by colour
        mid = (low + high) / 2
        rgb = _oklch_to_linear_rgb(lightness, mid, hue)
        inside = np.all((rgb >= 0) & (rgb <= 1), axis=-1)
        low, high = np.where(inside, mid, low), np.where(inside, high, mid)
    linear = np.clip(_oklch_to_linear_rgb(lightness, low, hue), 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * linear ** (1 / 2.4) - 0.055)
    table = np.round(srgb * 255).astype(np.uint8)
    table.setflags(write=False)
    return table


def colormap(values: np.ndarray) -> np.ndarray:
    """Values in [0, 1] (any shape; NaN counts as 0) -> uint8 RGB colours, shape + (3,)."""
    values = np.nan_to_num(np.asarray(values, dtype=np.float32), nan=0.0)
    index = np.round(np.clip(values, 0.0, 1.0) * 255).astype(np.intp)
    return _colour_table()[index]
