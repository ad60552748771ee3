"""A bike's 3-D model vocabulary: the frame geometry of each style (`_geometry`, key
points in millimetres) and the shapes a bike is sketched with (`_Sketch`: tubes,
polygons, wires, rings), plus the small vector and colour helpers the parts use.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .bikes import RGB, BikeIdentity

# Per frame style, in millimetres and degrees (seat and head tube angles from the
# horizontal). Fork clearance is the gap above the tyre: large for a suspension fork.
_GEOMETRY_KEYS = (
    "wheelbase", "bb_height", "chainstay", "seat_angle", "seat_tube", "head_angle",
    "head_tube", "fork_clearance", "rake", "stem_rise", "stem_reach", "seat_post", "tube",
    "stay",
)  # fmt: skip
_STYLE_GEOMETRY: dict[str, dict[str, float]] = {
    style: dict(zip(_GEOMETRY_KEYS, values, strict=True))
    for style, values in {
        "diamond": (1070, 285, 450, 72, 560, 69, 180, 55, 45, 110, 60, 190, 32, 17),
        "step-through": (1100, 280, 460, 70, 520, 67, 200, 60, 50, 150, 40, 220, 36, 18),
        "mountain": (1100, 310, 430, 73, 440, 68, 120, 130, 44, 35, 75, 240, 44, 19),
        "road": (990, 270, 410, 73.5, 540, 73, 150, 40, 45, 25, 100, 170, 29, 15),
    }.items()
}


@dataclass
class _Geometry:
    """Key points of one bike's side view (x, y in mm; the wheels touch y = 0)."""

    rim_radius: float
    wheel_radius: float
    rear_axle: np.ndarray
    front_axle: np.ndarray
    bottom_bracket: np.ndarray
    seat_top: np.ndarray
    head_bottom: np.ndarray
    head_top: np.ndarray
    stem_top: np.ndarray
    bar: np.ndarray
    saddle: np.ndarray
    seat_dir: np.ndarray  # unit vector up the seat tube
    head_dir: np.ndarray  # unit vector up the steering axis
    tube: float
    stay: float


def _geometry(bike: BikeIdentity) -> _Geometry:
    g = _STYLE_GEOMETRY[bike.frame_style]
    rim_radius = bike.rim_diameter_mm / 2
    wheel_radius = rim_radius + 0.9 * bike.tyre_width_mm
    rear = np.array([0.0, wheel_radius])
    front = np.array([g["wheelbase"], wheel_radius])
    head_angle, seat_angle = math.radians(g["head_angle"]), math.radians(g["seat_angle"])
    head_dir = np.array([-math.cos(head_angle), math.sin(head_angle)])
    rake_dir = np.array([math.sin(head_angle), math.cos(head_angle)])  # forward, across axis
    head_bottom = front + (wheel_radius + g["fork_clearance"]) * head_dir - g["rake"] * rake_dir
    head_top = head_bottom + g["head_tube"] * head_dir
    drop = wheel_radius - g["bb_height"]
    bottom_bracket = np.array([math.sqrt(g["chainstay"] ** 2 - drop**2), g["bb_height"]])
    seat_dir = np.array([-math.cos(seat_angle), math.sin(seat_angle)])
    seat_top = bottom_bracket + g["seat_tube"] * seat_dir
    stem_top = head_top + g["stem_rise"] * head_dir
    return _Geometry(
        rim_radius=rim_radius,
        wheel_radius=wheel_radius,
        rear_axle=rear,
        front_axle=front,
        bottom_bracket=bottom_bracket,
        seat_top=seat_top,
        head_bottom=head_bottom,
        head_top=head_top,
        stem_top=stem_top,
        bar=stem_top + np.array([g["stem_reach"], 0.0]),
        saddle=seat_top + g["seat_post"] * seat_dir,
        seat_dir=seat_dir,
        head_dir=head_dir,
        tube=g["tube"],
        stay=g["stay"],
    )


# --------------------------------------------------------------------------- 3-D sketch


@dataclass
class _Shape:
    """One drawable piece of a bike, in the bike's own 3-D coordinates (mm).

    kind "polys": points (K, M, 3), K filled polygons; "tube": points (N, 3), a shaded
    cylinder along a path of diameter `width`; "lines": points (K, 2, 3), thin wires of
    width `width`; "ring": points (2, N, 3), the outer and inner edge of a flat band.
    Shapes are painted far to near by the camera depth of `anchor`.
    """

    kind: str
    points: np.ndarray
    color: RGB
    width: float = 0.0
    gloss: float = 0.0
    anchor: np.ndarray = field(default_factory=lambda: np.zeros(3))


class _Sketch:
    """Collects the shapes of one bicycle."""

    def __init__(self) -> None:
        self.shapes: list[_Shape] = []

    def _add(self, kind, points, color, width=0.0, gloss=0.0, anchor=None) -> None:
        points = np.asarray(points, dtype=np.float64)
        if anchor is None:
            anchor = points.reshape(-1, 3).mean(axis=0)
        self.shapes.append(_Shape(kind, points, color, width, gloss, np.asarray(anchor, float)))

    def tube(self, path, diameter, color, gloss=0.5, anchor=None) -> None:
        self._add("tube", path, color, diameter, gloss, anchor)

    def polys(self, polygons, color, anchor=None) -> None:
        self._add("polys", polygons, color, anchor=anchor)

    def lines(self, segments, width, color, anchor=None) -> None:
        self._add("lines", segments, color, width, anchor=anchor)

    def ring(self, center, r_in, r_out, color, z=0.0, a0=0.0, a1=2 * math.pi, anchor=None):
        """A flat band around `center` (x, y) in the plane at depth z, from angle a0 to a1."""
        n = max(8, int(96 * (a1 - a0) / (2 * math.pi)))
        angles = np.linspace(a0, a1, n)
        outer = _circle(center, r_out, z, angles)
        inner = _circle(center, r_in, z, angles)
        if anchor is None:
            anchor = (center[0], center[1], z)
        self._add("ring", np.stack([outer, inner]), color, anchor=anchor)


def _circle(center, radius, z, angles) -> np.ndarray:
    return np.stack(
        [
            center[0] + radius * np.cos(angles),
            center[1] + radius * np.sin(angles),
            np.full_like(angles, z),
        ],
        axis=1,
    )


def _v(*components: float) -> np.ndarray:
    """A vector to add to a point (a list would be concatenated, not added)."""
    return np.array(components, dtype=np.float64)


def _p(xy, z=0.0) -> np.ndarray:
    return np.array([xy[0], xy[1], z], dtype=np.float64)


def _bezier(p0, p1, p2, n=14) -> np.ndarray:
    t = np.linspace(0, 1, n)[:, None]
    p0, p1, p2 = (np.asarray(p, float) for p in (p0, p1, p2))
    return (1 - t) ** 2 * p0 + 2 * (1 - t) * t * p1 + t**2 * p2


def _shade(color: RGB, factor: float) -> RGB:
    return tuple(int(max(0, min(255, round(c * factor)))) for c in color)


def _mix(a: RGB, b: RGB, t: float) -> RGB:
    return tuple(round(x + (y - x) * t) for x, y in zip(a, b, strict=True))
