"""Seeing the 3-D model: where a bike stands (`_Pose`), the pinhole camera that
projects it (`_Camera`), and painting its shapes far to near onto Pillow canvases
(`_paint`), tubes shaded so they read as round.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from PIL import ImageDraw

from .geometry import _mix, _shade, _Shape


@dataclass(frozen=True)
class _Pose:
    """Where a bike stands in the world: turned by `heading` (radians, about the
    vertical through its middle) and moved by `offset` (mm)."""

    heading: float = 0.0
    offset: tuple[float, float, float] = (0.0, 0.0, 0.0)
    pivot_x: float = 0.0

    def apply(self, points: np.ndarray) -> np.ndarray:
        c, s = math.cos(self.heading), math.sin(self.heading)
        x = points[:, 0] - self.pivot_x
        z = points[:, 2]
        out = np.empty_like(points)
        out[:, 0] = x * c + z * s + self.pivot_x + self.offset[0]
        out[:, 1] = points[:, 1] + self.offset[1]
        out[:, 2] = -x * s + z * c + self.offset[2]
        return out


class _Camera:
    """A pinhole camera aimed at `target`, from `distance` mm away, seen from azimuth
    `yaw` (0: from +z, the drive side) and elevation `pitch`, tilted by `roll`."""

    def __init__(self, target, yaw, pitch, distance, focal, roll, size) -> None:
        self.target = np.asarray(target, float)
        toward_camera = np.array(
            [math.cos(pitch) * math.sin(yaw), math.sin(pitch), math.cos(pitch) * math.cos(yaw)]
        )
        self.position = self.target + distance * toward_camera
        forward = -toward_camera
        right = np.cross(forward, [0.0, 1.0, 0.0])
        right /= np.linalg.norm(right)
        up = np.cross(right, forward)
        cr, sr = math.cos(roll), math.sin(roll)
        self.right = cr * right + sr * up
        self.up = -sr * right + cr * up
        self.forward = forward
        self.focal = focal
        self.size = size
        self.yaw, self.pitch, self.distance = yaw, pitch, distance

    def project(self, points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Pixel coordinates (N, 2) and depth along the view axis (N,) of world points."""
        rel = points - self.position
        depth = rel @ self.forward
        safe = np.maximum(depth, 1e-3)
        u = self.size[0] / 2 + self.focal * (rel @ self.right) / safe
        v = self.size[1] / 2 - self.focal * (rel @ self.up) / safe
        return np.stack([u, v], axis=1), depth

    def pixel_rays(self) -> np.ndarray:
        """Unit world direction through the centre of every pixel, (H, W, 3) float32."""
        w, h = self.size
        u = ((np.arange(w, dtype=np.float32) + 0.5) - w / 2) / self.focal
        v = ((np.arange(h, dtype=np.float32) + 0.5) - h / 2) / self.focal
        rays = (
            self.right.astype(np.float32)[None, None, :] * u[None, :, None]
            - self.up.astype(np.float32)[None, None, :] * v[:, None, None]
            + self.forward.astype(np.float32)[None, None, :]
        )
        return rays / np.linalg.norm(rays, axis=2, keepdims=True)


# --------------------------------------------------------------------------- painting

_NEAR_CLIP_MM = 80.0


def _paint(
    canvases: Sequence[tuple[ImageDraw.ImageDraw, bool]],
    shapes: Sequence[_Shape],
    pose: _Pose,
    camera: _Camera,
    scale: float,
    light: np.ndarray,
    contrast: float,
    sun: np.ndarray | None = None,
) -> None:
    """Paint `shapes` far to near on each (draw, mask) canvas; a mask canvas gets every
    shape in white (coverage only). With `sun` (unit vector towards the sun) the shapes
    are first flattened onto the ground along the sun's rays: their shadow.
    """
    if not shapes:
        return
    # one transform for all points: per-shape numpy calls would dominate the time
    counts = [shape.points.size // 3 for shape in shapes]
    world = pose.apply(np.concatenate([shape.points.reshape(-1, 3) for shape in shapes]))
    if sun is not None:
        world = world - np.outer(world[:, 1], sun / sun[1])
        world[:, 1] = 0.0
    uv, depth = camera.project(world)
    _, anchor_depth = camera.project(pose.apply(np.stack([shape.anchor for shape in shapes])))
    splits = np.cumsum(counts)[:-1]
    uv_parts, depth_parts = np.split(uv * scale, splits), np.split(depth, splits)
    focal = camera.focal * scale
    for i in sorted(range(len(shapes)), key=lambda i: (-anchor_depth[i], i)):
        shape, uv, depth = shapes[i], uv_parts[i], depth_parts[i]
        if depth.min() < _NEAR_CLIP_MM:
            continue  # behind or at the lens: skip rather than smear across the frame
        for draw, mask in canvases:
            _paint_shape(
                draw, shape, uv, depth, 255 if mask else shape.color, focal, mask, light, contrast
            )


def _paint_shape(draw, shape, uv, depth, color, focal, mask, light, contrast) -> None:
    if shape.kind == "polys":
        for polygon in uv.reshape(*shape.points.shape[:-1], 2):
            draw.polygon(polygon.ravel().tolist(), fill=color)
    elif shape.kind == "ring":
        outer, inner = uv.reshape(2, -1, 2)
        draw.polygon(np.concatenate([outer, inner[::-1]]).ravel().tolist(), fill=color)
    elif shape.kind == "lines":
        pairs = uv.reshape(-1, 4).tolist()
        widths = np.maximum(1, np.round(shape.width * focal / depth.reshape(-1, 2).mean(axis=1)))
        for pair, width in zip(pairs, widths.astype(int).tolist(), strict=True):
            draw.line(pair, fill=color, width=width)
    else:
        radii = 0.5 * shape.width * focal / depth
        _draw_tube(draw, uv, radii, color, shape.gloss * contrast, light, mask)


def _draw_tube(draw, points, radii, color, gloss, light, mask_only) -> None:
    """A cylinder along a projected path: base colour, a dark band on the side away
    from the light and a highlight on the lit side, so that tubes read as round."""
    steps = np.diff(points, axis=0)
    lengths = np.linalg.norm(steps, axis=1)
    keep = np.concatenate([[True], lengths > 1e-6])
    points, radii = points[keep], radii[keep]
    if len(points) < 2:
        r = radii[0]
        x, y = points[0]
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
        return
    steps = np.diff(points, axis=0)
    seg_normals = np.stack([-steps[:, 1], steps[:, 0]], axis=1)
    seg_normals /= np.linalg.norm(seg_normals, axis=1, keepdims=True)
    normals = np.concatenate(
        [seg_normals[:1], seg_normals[:-1] + seg_normals[1:], seg_normals[-1:]]
    )
    normals /= np.maximum(np.linalg.norm(normals, axis=1, keepdims=True), 1e-6)
    if (normals @ light).mean() < 0:
        normals = -normals

    def band(a: float, b: float) -> list[float]:
        side_a = points + normals * (radii[:, None] * a)
        side_b = points + normals * (radii[:, None] * b)
        return np.concatenate([side_a, side_b[::-1]]).ravel().tolist()

    draw.polygon(band(1.0, -1.0), fill=color)
    for (x, y), r in ((points[0], radii[0]), (points[-1], radii[-1])):
        draw.ellipse([x - r, y - r, x + r, y + r], fill=color)
    if mask_only or radii.max() < 0.8:
        return
    draw.polygon(band(-0.35, -1.0), fill=_shade(color, 1 - 0.35 * max(gloss, 0.4)))
    if gloss > 0.05:
        highlight = _mix(color, (255, 255, 255), 0.45 * gloss)
        draw.polygon(band(0.25, 0.6), fill=highlight)
