"""How a person with a phone frames a bike: the kinds of shot (whole bike, partial,
close-up of a part) and the camera placed for each (`_frame_shot`).
"""

from __future__ import annotations

import math

import numpy as np

from .bikes import BikeIdentity
from .camera import _Camera
from .geometry import _Geometry, _p, _Sketch, _v

SHOT_KINDS = ("whole", "partial", "close-up")


# The parts `_close_up_targets` aims at; a bike without a basket, rack or sticker has
# fewer (the handlebar takes the basket's place).
CLOSE_UP_PARTS = (
    "saddle",
    "rear wheel",
    "front wheel",
    "cranks",
    "down tube",
    "handlebar",
    "basket",
    "rack",
    "sticker",
)


def _close_up_targets(bike: BikeIdentity, geo: _Geometry) -> list[tuple[str, np.ndarray, float]]:
    """Parts people photograph up close: (part, point in bike coordinates, frame width mm)."""
    basket = bike.basket != "none"
    targets = [
        ("saddle", _p(geo.saddle + _v(0, 40)), 480.0),
        ("rear wheel", _p(geo.rear_axle), 700.0),
        ("front wheel", _p(geo.front_axle), 700.0),
        ("cranks", _p(geo.bottom_bracket + _v(20, 60)), 620.0),
        ("down tube", _p(0.5 * (geo.bottom_bracket + geo.head_bottom)), 560.0),
        (
            "basket" if basket else "handlebar",
            _p(geo.head_top + _v(90, 40) if basket else geo.bar),
            700.0,
        ),
    ]
    if bike.rear_rack or bike.child_seat:
        targets.append(("rack", _p([0, geo.wheel_radius * 2 + 150]), 750.0))
    if bike.sticker:
        on_seat_tube = geo.bottom_bracket + 0.55 * (geo.seat_top - geo.bottom_bracket)
        targets.append(("sticker", _p(on_seat_tube), 450.0))
    return targets


def _frame_shot(
    rng: np.random.Generator,
    bike: BikeIdentity,
    geo: _Geometry,
    sketch: _Sketch,
    size: tuple[int, int],
) -> tuple[_Camera, str, str | None]:
    """A camera as a person with a phone would hold it, for a random kind of shot: the
    camera, the kind (`SHOT_KINDS`) and, for a close-up, the part (`CLOSE_UP_PARTS`)."""
    width, height = size
    focal = 0.78 * width  # a phone's main camera: about 65 degrees across
    roll = math.radians(rng.normal(0, 2.5))
    side = 0.0 if rng.random() < 0.5 else math.pi
    kind = rng.choice(SHOT_KINDS, p=[0.42, 0.14, 0.44])
    if kind == "close-up":
        targets = _close_up_targets(bike, geo)
        part, point, frame_mm = targets[int(rng.integers(len(targets)))]
        frame_mm *= rng.uniform(0.75, 1.35)
        yaw = side + rng.uniform(-0.7, 0.7)
        pitch = rng.uniform(0.15, 0.85)
        distance = max(380.0, focal * frame_mm / width)
        target = point + rng.normal(0, 0.06 * frame_mm, 3) * [1, 1, 0]
        return _Camera(target, yaw, pitch, distance, focal, roll, size), str(kind), part
    yaw = side + rng.uniform(-0.8, 0.8)
    pitch = rng.uniform(0.12, 0.5)
    points = np.concatenate([s.points.reshape(-1, 3) for s in sketch.shapes])[::7]
    fill = rng.uniform(0.68, 0.94) if kind == "whole" else rng.uniform(1.25, 1.9)
    target = _p([geo.front_axle[0] / 2, geo.wheel_radius + 100])
    if kind == "partial":
        target = target + _v(rng.uniform(-450, 450), rng.uniform(-100, 250), 0)
    aim = np.array([rng.uniform(-0.08, 0.08) * width, rng.uniform(-0.05, 0.1) * height])
    distance = 2200.0
    for _ in range(3):
        camera = _Camera(target, yaw, pitch, distance, focal, roll, size)
        uv, _ = camera.project(points)
        span = max(
            (uv[:, 0].max() - uv[:, 0].min()) / width,
            (uv[:, 1].max() - uv[:, 1].min()) / height / 0.95,
        )
        distance *= span / fill
        if kind == "whole":
            # centre the bike (plus a little jitter): move the target across the view
            center = (uv.min(axis=0) + uv.max(axis=0)) / 2 - np.array(size) / 2 - aim
            shift = center * (camera.distance / focal)
            target = target + shift[0] * camera.right - shift[1] * camera.up
    camera = _Camera(target, yaw, pitch, max(distance, 600.0), focal, roll, size)
    return camera, str(kind), None
