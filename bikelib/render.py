"""Procedurally rendered photos of bicycles: the app's built-in demo data.

This module owns the five demo bicycles (`DEMO_BIKES`), the renderer that draws
photo-like pictures of them with Pillow and numpy alone, and the command that writes
`data/demo-bikes/` (and its contact sheet) again, byte for byte:

    python -m bikelib.render data/demo-bikes
    python -m bikelib.render --contact-sheet docs/demo-contact-sheet.png data/demo-bikes

Real photos cannot ship with the project, so each bicycle is a frozen set of traits
(`BikeIdentity`) and each photo a seeded draw of how people photograph a parked bike:
the whole bike from either side at some distance and angle, a part up close, a crop;
on asphalt, gravel, grass, paving or snow; before a wall, a hedge, a fence or a rack
of other bikes; in sun or overcast; then blur, sensor noise and JPEG. The bike is a
small 3-D model (millimetres, x forward, y up, z towards the drive side) seen through
a pinhole camera, drawn at twice the output size and averaged down for anti-aliasing.

Everything is deterministic: a photo depends only on its bike, seed and size (and on
the Pillow/libjpeg version, which encodes the JPEG). Imports stdlib, numpy and PIL only.
"""

from __future__ import annotations

import argparse
import io
import math
import sys
import time
import zlib
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter, ImageFont

__all__ = [
    "DEMO_BIKES",
    "PHOTO_SIZE",
    "BikeIdentity",
    "PlannedPhoto",
    "contact_sheet",
    "main",
    "plan_dataset",
    "random_bike",
    "render_dataset",
    "render_photo",
    "save_jpeg",
]

RGB = tuple[int, int, int]

DEFAULT_DATASET_SEED = 2018
JPEG_QUALITY = 82  # fixed, so the committed set can be rendered again byte for byte
PHOTO_SIZE = (640, 480)
SUPERSAMPLE = 2  # the bike is drawn at 2x and averaged down: smooth edges, thin spokes

FRAME_STYLES = ("diamond", "step-through", "mountain", "road")
HANDLEBARS = ("flat", "riser", "swept-back", "drop")
SADDLE_SHAPES = ("racing", "comfort", "sprung-leather")
BASKETS = ("none", "wire", "wicker", "crate")
LOCKS = ("none", "ring", "cable")

BLACK: RGB = (24, 24, 26)
TYRE_BLACK: RGB = (36, 36, 38)
SILVER: RGB = (176, 178, 182)
CHROME: RGB = (198, 200, 204)
BROWN_LEATHER: RGB = (118, 70, 36)
TAN_WALL: RGB = (176, 134, 84)
CREAM_WALL: RGB = (224, 212, 176)


# --------------------------------------------------------------------------- identities


@dataclass(frozen=True)
class BikeIdentity:
    """The traits that make one bicycle recognisable; colours are sRGB triples.

    `rim_diameter_mm` is the ISO bead seat diameter: 622 is 700c/28", 635 the old
    Dutch 28", 584 is 27.5", 559 is 26". Accessories left as None/"none"/False are absent.
    """

    name: str
    frame_style: str
    frame_color: RGB
    fork_color: RGB
    decal_color: RGB | None = None  # brand lettering along the down tube
    rim_diameter_mm: int = 622
    tyre_width_mm: int = 37
    tyre_sidewall: RGB = TYRE_BLACK  # tan or cream walls on city tyres
    knobby_tyres: bool = False
    rim_color: RGB = SILVER
    spoke_count: int = 36
    spoke_reflectors: bool = False
    saddle_shape: str = "comfort"
    saddle_color: RGB = BLACK
    handlebar: str = "flat"
    grip_color: RGB = BLACK
    basket: str = "none"
    basket_color: RGB = BLACK
    rear_rack: RGB | None = None
    fenders: RGB | None = None
    chain_guard: RGB | None = None
    child_seat: RGB | None = None
    bell: bool = False
    lights: bool = False
    sticker: RGB | None = None  # a label on the seat tube
    lock: str = "none"
    lock_color: RGB = BLACK
    kickstand: bool = True

    def __post_init__(self) -> None:
        for name, allowed in (
            ("frame_style", FRAME_STYLES),
            ("handlebar", HANDLEBARS),
            ("saddle_shape", SADDLE_SHAPES),
            ("basket", BASKETS),
            ("lock", LOCKS),
        ):
            if getattr(self, name) not in allowed:
                raise ValueError(f"{name} must be one of {', '.join(allowed)}")
        if self.spoke_count < 12 or self.spoke_count % 4:
            raise ValueError("spoke_count must be a multiple of 4, at least 12")

    def traits(self) -> dict[str, object]:
        """Every trait except the name: two bikes with equal traits look the same."""
        return {k: v for k, v in asdict(self).items() if k != "name"}

    def describe(self) -> str:
        """One line of the traits that are set, for READMEs and captions."""
        parts = []
        unused = {"basket_color": self.basket == "none", "lock_color": self.lock == "none"}
        for f in fields(self):
            value = getattr(self, f.name)
            if f.name == "name" or value in (None, False, "none") or unused.get(f.name):
                continue
            parts.append(f"{f.name.replace('_', ' ')}: {_color_text(value)}")
        return "; ".join(parts)


def _color_text(value: object) -> str:
    if isinstance(value, tuple) and len(value) == 3:
        return "#{:02x}{:02x}{:02x}".format(*value)
    return "yes" if value is True else str(value)


# Two pairs share a frame colour on purpose (black, red), so colour alone does not tell
# them apart: the frame shape, saddle, tyres and accessories must.
DEMO_BIKES: tuple[BikeIdentity, ...] = (
    BikeIdentity(
        name="black-mountain",
        frame_style="mountain",
        frame_color=(30, 31, 33),
        fork_color=(30, 30, 32),
        decal_color=(62, 196, 96),
        rim_diameter_mm=584,
        tyre_width_mm=56,
        knobby_tyres=True,
        rim_color=(34, 34, 36),
        spoke_count=32,
        spoke_reflectors=True,
        saddle_shape="racing",
        handlebar="riser",
        kickstand=False,
    ),
    BikeIdentity(
        name="black-step-through",
        frame_style="step-through",
        frame_color=(20, 20, 24),
        fork_color=(20, 20, 24),
        decal_color=(204, 164, 72),  # gold lettering, as on many Dutch bikes
        tyre_width_mm=40,
        saddle_shape="comfort",
        handlebar="swept-back",
        basket="wire",
        basket_color=(26, 26, 28),
        rear_rack=(26, 26, 28),
        fenders=(26, 26, 28),
        chain_guard=(26, 26, 28),
        bell=True,
        lights=True,
        lock="ring",
    ),
    BikeIdentity(
        name="red-road",
        frame_style="road",
        frame_color=(184, 26, 34),
        fork_color=(30, 30, 32),
        decal_color=(238, 238, 236),
        tyre_width_mm=25,
        rim_color=(38, 38, 40),
        spoke_count=28,
        saddle_shape="racing",
        saddle_color=(232, 232, 228),
        handlebar="drop",
        grip_color=(232, 232, 228),
        kickstand=False,
    ),
    BikeIdentity(
        name="red-step-through",
        frame_style="step-through",
        frame_color=(196, 34, 44),
        fork_color=(196, 34, 44),
        rim_diameter_mm=635,
        tyre_width_mm=40,
        tyre_sidewall=TAN_WALL,
        saddle_shape="sprung-leather",
        saddle_color=BROWN_LEATHER,
        handlebar="swept-back",
        grip_color=BROWN_LEATHER,
        rear_rack=CHROME,
        fenders=CHROME,
        chain_guard=(196, 34, 44),
        child_seat=(36, 92, 176),
        bell=True,
        lights=True,
        lock="cable",
        lock_color=(232, 196, 36),
    ),
    BikeIdentity(
        name="white-city",
        frame_style="diamond",
        frame_color=(232, 230, 222),
        fork_color=(232, 230, 222),
        decal_color=(70, 70, 74),
        tyre_width_mm=37,
        tyre_sidewall=CREAM_WALL,
        saddle_shape="comfort",
        saddle_color=BROWN_LEATHER,
        handlebar="swept-back",
        grip_color=BROWN_LEATHER,
        basket="wicker",
        basket_color=(156, 112, 60),
        rear_rack=(28, 28, 30),
        fenders=(28, 28, 30),
        sticker=(246, 200, 30),
        lights=True,
        lock="ring",
    ),
)

# Colours that random bikes (and background bikes) are painted with: common frame
# colours, demo colours included, so a stranger's bike can look like one of ours.
_FRAME_PALETTE: tuple[RGB, ...] = (
    (24, 24, 26),
    (232, 230, 222),
    (186, 28, 36),
    (30, 60, 140),
    (60, 120, 200),
    (24, 110, 70),
    (120, 160, 60),
    (230, 120, 30),
    (240, 200, 40),
    (226, 130, 170),
    (110, 40, 110),
    (140, 144, 150),
    (80, 56, 40),
    (20, 150, 160),
)


def random_bike(seed: int) -> BikeIdentity:
    """A plausible bicycle that is none of `DEMO_BIKES`: for "not one of my bikes" tests.

    The same seed gives the same bike. Its name is `random-<seed>`.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, 0xB1C7]))
    while True:
        bike = _draw_random_bike(rng, f"random-{seed}")
        if all(bike.traits() != demo.traits() for demo in DEMO_BIKES):
            return bike


def _draw_random_bike(rng: np.random.Generator, name: str) -> BikeIdentity:
    def pick(options: Sequence):
        return options[int(rng.integers(len(options)))]

    def maybe(p: float, value):
        return value if rng.random() < p else None

    style = pick(FRAME_STYLES)
    frame = pick(_FRAME_PALETTE)
    city = style in ("diamond", "step-through")
    handlebar = {"road": "drop", "mountain": pick(("flat", "riser"))}.get(
        style, pick(("swept-back", "flat"))
    )
    accessory = pick((BLACK, SILVER, frame))
    return BikeIdentity(
        name=name,
        frame_style=style,
        frame_color=frame,
        fork_color=pick((frame, frame, BLACK, SILVER)),
        decal_color=maybe(0.5, pick(_FRAME_PALETTE)),
        rim_diameter_mm=pick((622, 584, 559)) if style == "mountain" else pick((622, 622, 635)),
        tyre_width_mm=int(
            {"road": rng.integers(23, 33), "mountain": rng.integers(45, 62)}.get(
                style, rng.integers(32, 48)
            )
        ),
        tyre_sidewall=pick((TYRE_BLACK, TYRE_BLACK, TAN_WALL, CREAM_WALL)) if city else TYRE_BLACK,
        knobby_tyres=style == "mountain" and rng.random() < 0.8,
        rim_color=pick((SILVER, BLACK)),
        spoke_count=pick((28, 32, 36)),
        spoke_reflectors=rng.random() < 0.3,
        saddle_shape="racing" if not city else pick(SADDLE_SHAPES),
        saddle_color=pick((BLACK, BLACK, BROWN_LEATHER, (232, 232, 228))),
        handlebar=handlebar,
        grip_color=pick((BLACK, BLACK, BROWN_LEATHER)),
        basket=pick(BASKETS) if city and rng.random() < 0.4 else "none",
        basket_color=pick((BLACK, SILVER, (156, 112, 60))),
        rear_rack=maybe(0.6 if city else 0.1, accessory),
        fenders=maybe(0.7 if city else 0.15, accessory),
        chain_guard=maybe(0.6 if city else 0.0, accessory),
        child_seat=maybe(0.1 if city else 0.0, pick(_FRAME_PALETTE)),
        bell=rng.random() < 0.5,
        lights=rng.random() < 0.5,
        sticker=maybe(0.2, pick(_FRAME_PALETTE)),
        lock=pick(LOCKS),
        lock_color=pick((BLACK, (232, 196, 36), (200, 40, 40))),
        kickstand=city or rng.random() < 0.3,
    )


# --------------------------------------------------------------------------- geometry

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


def _build_bike(bike: BikeIdentity, crank_angle: float) -> tuple[_Sketch, _Geometry]:
    """The 3-D shapes of `bike`, back to front in drawing order for equal depths."""
    geo = _geometry(bike)
    sketch = _Sketch()
    _add_wheel(sketch, bike, geo, geo.rear_axle, front=False)
    _add_wheel(sketch, bike, geo, geo.front_axle, front=True)
    if bike.fenders:
        _add_fenders(sketch, bike, geo)
    _add_frame(sketch, bike, geo)
    _add_drivetrain(sketch, bike, geo, crank_angle)
    _add_saddle(sketch, bike, geo)
    _add_handlebar(sketch, bike, geo)
    _add_accessories(sketch, bike, geo)
    return sketch, geo


def _add_wheel(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry, center, front: bool):
    r_rim, r_tyre = geo.rim_radius, geo.wheel_radius
    half_width = bike.tyre_width_mm / 2
    center = np.asarray(center, float)
    anchor = _p(center)
    # The tyre is drawn twice, at both sides of its width, so that it looks round and
    # fat when the camera is not square to the wheel.
    sketch.ring(center, r_rim, r_tyre, TYRE_BLACK, z=-half_width, anchor=_p(center, -1))
    # the tread between the two sides, so a wheel seen at an angle is one solid tyre
    angles = np.linspace(0, 2 * math.pi, 49)
    far_edge = _circle(center, r_tyre - 3, -half_width, angles)
    near_edge = _circle(center, r_tyre - 3, half_width, angles)
    tread = [[far_edge[i], far_edge[i + 1], near_edge[i + 1], near_edge[i]] for i in range(48)]
    sketch.polys(tread, _shade(TYRE_BLACK, 0.85), anchor=_p(center, -0.5))
    spokes = _spokes(bike, center, r_rim, front)
    spoke_color = (150, 152, 156) if bike.rim_color != BLACK else (60, 60, 62)
    sketch.lines(spokes, 2.0, spoke_color, anchor=anchor)
    if bike.spoke_reflectors:
        angle = 0.9 if front else 3.6
        mid = center + 0.55 * r_rim * np.array([math.cos(angle), math.sin(angle)])
        along = np.array([math.cos(angle), math.sin(angle)])
        across = np.array([-along[1], along[0]])
        quad = [mid + 45 * along + 14 * across, mid + 45 * along - 14 * across]
        quad += [mid - 45 * along - 14 * across, mid - 45 * along + 14 * across]
        sketch.polys([[_p(q, 2) for q in quad]], (236, 120, 30), anchor=anchor)
    hub_radius = 22 if front else 32
    sketch.ring(center, 0, hub_radius, (150, 152, 156), anchor=anchor)
    sketch.ring(center, 0, 9, (90, 90, 94), anchor=anchor)
    sketch.ring(center, r_rim - 20, r_rim, bike.rim_color, anchor=anchor)
    if bike.rim_color != BLACK and bike.rim_color[0] > 100:
        sketch.ring(center, r_rim - 12, r_rim - 4, _shade(bike.rim_color, 1.18), anchor=anchor)
    # valve
    sketch.tube([_p(center + _v(0, -r_rim + 20)), _p(center + _v(0, -r_rim + 48))], 6, SILVER)
    near = _p(center, half_width)
    sketch.ring(center, r_rim, r_tyre, TYRE_BLACK, z=half_width, anchor=near)
    sketch.ring(center, r_tyre - 4, r_tyre, (52, 52, 54), z=half_width, anchor=near)
    if bike.tyre_sidewall != TYRE_BLACK:
        wall_out = r_rim + 0.55 * (r_tyre - r_rim)
        for z in (-half_width, half_width):
            sketch.ring(center, r_rim + 2, wall_out, bike.tyre_sidewall, z=z, anchor=_p(center, z))
    if bike.knobby_tyres:
        knobs = []
        for a in np.arange(0, 2 * math.pi, 2 * math.pi / 64):
            ring = _circle(center, r_tyre + 5, half_width, np.array([a, a + 0.035]))
            base = _circle(center, r_tyre - 2, half_width, np.array([a + 0.035, a]))
            knobs.append(np.concatenate([ring, base]))
        sketch.polys(knobs, (30, 30, 32), anchor=near)


def _spokes(bike: BikeIdentity, center, r_rim: float, front: bool) -> np.ndarray:
    """Spoke segments, laced tangentially (radially on a road bike's front wheel)."""
    n = bike.spoke_count
    crosses = 0 if (front and bike.frame_style == "road") else (3 if n >= 32 else 2)
    offset = crosses * 4 * math.pi / n
    flange = 22 if front else 30
    segments = []
    for i in range(n):
        rim_angle = 2 * math.pi * i / n
        side = 1 if i % 2 else -1
        trailing = 1 if (i // 2) % 2 else -1
        hub_angle = rim_angle - trailing * offset
        hub = center + flange * np.array([math.cos(hub_angle), math.sin(hub_angle)])
        rim = center + (r_rim - 14) * np.array([math.cos(rim_angle), math.sin(rim_angle)])
        segments.append([_p(hub, side * 30), _p(rim, side * 2)])
    return np.array(segments)


def _add_fenders(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    r_in = geo.wheel_radius + 10
    r_out = r_in + 12
    color = bike.fenders
    for center, a0, a1 in ((geo.rear_axle, 0.75, 3.45), (geo.front_axle, 0.2, 3.7)):
        sketch.ring(center, r_in, r_out, _shade(color, 0.8), z=-18, a0=a0, a1=a1)
        sketch.ring(center, r_in, r_out, color, z=18, a0=a0, a1=a1, anchor=_p(center, 20))
        sketch.ring(
            center, r_out - 4, r_out, _shade(color, 1.25), z=18, a0=a0, a1=a1, anchor=_p(center, 21)
        )


def _add_frame(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    color, gloss = bike.frame_color, 0.8
    bb, seat_top, rear = geo.bottom_bracket, geo.seat_top, geo.rear_axle
    head_bottom, head_top, tube = geo.head_bottom, geo.head_top, geo.tube
    # stays first: the far ones end up behind the rear wheel, the near ones in front
    for z in (-1, 1):
        sketch.tube([_p(bb, 22 * z), _p(rear, 62 * z)], geo.stay, color, gloss)
        stay_top = seat_top - 25 * geo.seat_dir
        sketch.tube([_p(stay_top, 18 * z), _p(rear, 62 * z)], geo.stay * 0.9, color, gloss)
    sketch.tube([_p(bb), _p(seat_top)], tube * 0.95, color, gloss)
    style = bike.frame_style
    if style == "step-through":
        # two swept tubes from the head tube to the bottom bracket, low enough to step over
        upper_start = head_bottom + 0.75 * (head_top - head_bottom)
        bend = np.array([upper_start[0] - 170, bb[1] + 130])
        sketch.tube(
            [_p(q) for q in _bezier(upper_start, bend, bb + _v(15, 28))], tube, color, gloss
        )
        bend = np.array([head_bottom[0] - 130, bb[1] + 40])
        sketch.tube(
            [_p(q) for q in _bezier(head_bottom, bend, bb + _v(25, -4))], tube * 0.85, color, gloss
        )
    else:
        sketch.tube([_p(bb), _p(head_bottom + 15 * geo.head_dir)], tube * 1.1, color, gloss)
        # a mountain bike's top tube slopes down to the seat tube, for standover
        start = bb + 0.82 * (seat_top - bb) if style == "mountain" else seat_top - 20 * geo.seat_dir
        sketch.tube([_p(start), _p(head_top - 22 * geo.head_dir)], tube * 0.9, color, gloss)
    sketch.tube(
        [_p(head_bottom - 10 * geo.head_dir), _p(head_top + 10 * geo.head_dir)],
        tube * 1.25,
        _shade(color, 0.95),
        gloss,
    )
    _add_fork(sketch, bike, geo)
    if bike.decal_color:
        _add_decals(sketch, bike, geo)
    if bike.sticker:
        _add_sticker(sketch, bike, geo)


def _add_fork(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    front, head_bottom, head_dir = geo.front_axle, geo.head_bottom, geo.head_dir
    color = bike.fork_color
    sketch.tube([_p(head_bottom, -40), _p(head_bottom, 40)], 30, color, 0.6)
    for z in (-1, 1):
        if bike.frame_style == "mountain":
            # suspension fork: shiny stanchions into fat lowers
            lower_top = head_bottom - 0.42 * (head_bottom - front)
            sketch.tube([_p(head_bottom, 52 * z), _p(lower_top, 52 * z)], 32, CHROME, 0.9)
            sketch.tube([_p(lower_top + 15 * head_dir, 52 * z), _p(front, 52 * z)], 42, color, 0.6)
            if bike.decal_color:  # fork makers print their name down the lowers
                a, b = lower_top + 0.25 * (front - lower_top), lower_top + 0.8 * (front - lower_top)
                sketch.tube([_p(a, 73 * z), _p(b, 73 * z)], 12, bike.decal_color, 0.3)
        else:
            bend = head_bottom - 0.72 * np.linalg.norm(head_bottom - front) * head_dir
            path = _bezier(_p(head_bottom, 34 * z), _p(bend, 44 * z), _p(front, 50 * z), 10)
            sketch.tube(path, 22, color, 0.7)


def _add_decals(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    """Brand lettering: blocks of `decal_color` along both sides of the down tube."""
    rng = np.random.default_rng(zlib.crc32(bike.name.encode()))
    start, end = geo.bottom_bracket, geo.head_bottom
    if bike.frame_style == "step-through":
        start, end = geo.bottom_bracket + _v(40, 20), geo.head_bottom
    axis = (end - start) / np.linalg.norm(end - start)
    length = np.linalg.norm(end - start)
    half = geo.tube * 0.55 * (1.1 if bike.frame_style != "step-through" else 1.0)
    lettering = []
    pos = 0.28 * length
    while pos < 0.72 * length:
        width = rng.uniform(18, 46)
        a = start + pos * axis
        b = start + (pos + width) * axis
        lettering.append((a, b))
        pos += width + rng.uniform(6, 14)
    for z in (-1, 1):
        polys = []
        for a, b in lettering:
            normal = np.array([-axis[1], axis[0]])
            corners = [
                a + normal * half * 0.8,
                b + normal * half * 0.8,
                b - normal * half * 0.6,
                a - normal * half * 0.6,
            ]
            polys.append([_p(c, z * geo.tube * 0.56) for c in corners])
        sketch.polys(polys, bike.decal_color)
    if bike.frame_style == "mountain":
        # stripes along the top tube and the chainstays as well
        start = geo.bottom_bracket + 0.82 * (geo.seat_top - geo.bottom_bracket)
        end = geo.head_top - 22 * geo.head_dir
        for z in (-1, 1):
            a, b = start + 0.25 * (end - start), start + 0.8 * (end - start)
            sketch.tube([_p(a, z * 22), _p(b, z * 22)], 12, bike.decal_color, 0.3)
            a, b = geo.bottom_bracket, geo.rear_axle
            sketch.tube([_p(a + 0.3 * (b - a), 50 * z), _p(a + 0.75 * (b - a), 64 * z)], 8,
                        bike.decal_color, 0.3)  # fmt: skip


def _add_sticker(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    """A square-ish label with a white band on both sides of the seat tube."""
    bb, top = geo.bottom_bracket, geo.seat_top
    axis = (top - bb) / np.linalg.norm(top - bb)
    normal = np.array([-axis[1], axis[0]])
    center = bb + 0.55 * (top - bb)
    half = geo.tube * 0.6
    for z in (-1, 1):
        zz = z * geo.tube * 0.52
        corners = [
            center + s * 40 * axis + t * half * normal
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        sketch.polys([[_p(c, zz) for c in corners]], bike.sticker, anchor=_p(center, zz))
        band = [
            center + s * 10 * axis + t * half * normal
            for s, t in ((-1, -1), (1, -1), (1, 1), (-1, 1))
        ]
        sketch.polys(
            [[_p(c, zz * 1.02) for c in band]], (245, 245, 240), anchor=_p(center, zz * 1.05)
        )


def _add_drivetrain(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry, crank_angle: float):
    bb, rear = geo.bottom_bracket, geo.rear_axle
    ring_radius, cog_radius = (105 if bike.frame_style == "road" else 92), 38
    chain_color = (72, 72, 76)
    sketch.ring(rear, 0, cog_radius, (120, 120, 124), z=52)
    top = [_p(rear + _v(0, cog_radius), 54), _p(bb + _v(0, ring_radius - 4), 54)]
    bottom = [_p(rear - [0, cog_radius], 54), _p(bb - [0, ring_radius - 4], 54)]
    sketch.tube(top, 8, chain_color, 0.4)
    sketch.tube(bottom, 8, chain_color, 0.4)
    sketch.ring(bb, ring_radius - 9, ring_radius, (70, 70, 74), z=56)
    sketch.ring(bb, ring_radius - 24, ring_radius - 9, (170, 172, 176), z=56)
    sketch.ring(bb, 0, 34, (60, 60, 62), z=58)
    if bike.chain_guard:
        guard = [
            rear + _v(20, cog_radius + 22),
            bb + _v(30, ring_radius + 28),
            bb + _v(ring_radius + 20, 20),
            bb + _v(ring_radius - 20, 0),
            bb + _v(0, ring_radius - 30),
            rear + _v(40, cog_radius - 14),
        ]
        sketch.polys([[_p(q, 72) for q in guard]], bike.chain_guard)
    crank_color = (40, 40, 42) if bike.frame_style == "mountain" else (184, 186, 190)
    for z, angle in ((-1, crank_angle + math.pi), (1, crank_angle)):
        end = bb + 170 * np.array([math.cos(angle), math.sin(angle)])
        sketch.tube([_p(bb, 68 * z), _p(end, 78 * z)], 22, crank_color, 0.8)
        sketch.tube([_p(end, 84 * z), _p(end, 175 * z)], 30, (34, 34, 36), 0.3)
        sketch.tube([_p(end + _v(0, 10), 90 * z), _p(end + _v(0, 10), 170 * z)], 8, (70, 70, 72))
    if bike.kickstand:
        # folded up along the chainstay would be invisible; parked, it props the bike
        foot = bb + _v(-250, -bb[1] + 2)
        sketch.tube([_p(bb + _v(-110, 12), -40), _p(foot, -160)], 16, (60, 60, 64), 0.7)


def _add_saddle(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    post_top = geo.saddle
    sketch.tube([_p(geo.seat_top - 10 * geo.seat_dir), _p(post_top)], 27, CHROME, 0.9)
    shape = bike.saddle_shape
    length, width, thick = {
        "racing": (275, 140, 38),
        "comfort": (255, 225, 72),
        "sprung-leather": (280, 195, 48),
    }[shape]
    lift = {"racing": 22, "comfort": 36, "sprung-leather": 62}[shape]
    base = post_top + np.array([0.0, lift])
    # the clamp and rails that hold the saddle on the post
    sketch.tube([_p(post_top), _p(base + _v(0, 8))], 24, (50, 50, 54), 0.6)
    for z in (-1, 1):
        sketch.tube(
            [_p(base + _v(-0.3 * length, 6), 22 * z), _p(base + _v(0.4 * length, 10), 22 * z)],
            7,
            (120, 120, 124),
            0.8,
        )
    if shape != "racing":
        # coil springs under the rear, the mark of a city saddle
        for z in (-1, 1):
            coil = [
                _p(post_top + _v(-70 + 9 * math.sin(k), 4 + k * 4.5), z * 50 + 8 * math.cos(k))
                for k in np.arange(0, lift / 4.5, 0.5)
            ]
            sketch.tube(coil, 6, (70, 70, 74) if shape == "comfort" else CHROME, 0.9)
        sketch.tube([_p(post_top + _v(-75, 0), -50), _p(post_top + _v(-75, 0), 50)], 10, CHROME)
    # seen from above: a rounded back tapering into the nose (x from -0.4 to 0.6 length)
    along = np.linspace(-0.4, 0.6, 30)
    xs = along * length
    rounding = np.sqrt(1 - (1 - np.clip((along + 0.4) / 0.14, 0, 1)) ** 2)
    taper = np.clip((along + 0.2) / 0.8, 0, 1)
    nose_width = {"racing": 0.22, "comfort": 0.3, "sprung-leather": 0.26}[shape]
    half_width = 0.5 * width * np.maximum(rounding, 0.3) * (1 - (1 - nose_width) * taper**0.8)
    top = thick * (1 - 0.45 * taper) * (0.85 + 0.15 * rounding)
    bottom = thick * (0.5 - 0.2 * taper)
    color = bike.saddle_color
    top_edge = np.stack([base[0] + xs, base[1] + top], axis=1)
    bottom_edge = np.stack([base[0] + xs, base[1] + bottom], axis=1)
    for z in (-1, 1):
        skirt = [_p(q, z * w) for q, w in zip(top_edge, half_width, strict=True)]
        skirt += [
            _p(q, z * w * 0.85) for q, w in zip(bottom_edge[::-1], half_width[::-1], strict=True)
        ]
        sketch.polys([skirt], _shade(color, 0.7), anchor=_p(base, z * width * 0.5))
    surface = [_p(q, w) for q, w in zip(top_edge, half_width, strict=True)]
    surface += [_p(q, -w) for q, w in zip(top_edge[::-1], half_width[::-1], strict=True)]
    sketch.polys([surface], color, anchor=_p(base + _v(0, thick)))
    # a soft sheen along the middle of the top, where light catches the curve
    middle = slice(3, 25)
    sheen = [
        _p(q + _v(0, 1), w * 0.35)
        for q, w in zip(top_edge[middle], half_width[middle], strict=True)
    ]
    sheen += [
        _p(q + _v(0, 1), -w * 0.35)
        for q, w in zip(top_edge[middle][::-1], half_width[middle][::-1], strict=True)
    ]
    sketch.polys([sheen], _mix(color, (255, 255, 255), 0.1), anchor=_p(base + _v(0, thick + 1)))
    if shape == "sprung-leather":
        rivets = [
            _p(base + _v(xs[3] + 6, top[3] - 6), z * half_width[3] * 0.9)
            for z in np.linspace(-1, 1, 5)
        ]
        for rivet in rivets:
            sketch.tube(
                [rivet, rivet + _v(4, 0, 0)],
                9,
                (210, 190, 120),
                0.9,
                anchor=rivet + _v(0, 0, math.copysign(5, rivet[2])),
            )


def _handlebar_path(kind: str) -> tuple[np.ndarray, float, float]:
    """Half a handlebar (centre to the right end) relative to the stem clamp, plus the
    length of its grip and the bar diameter."""
    if kind == "flat":
        path = [(0, 0, 0), (0, 0, 290)]
        return np.array(path, float), 125, 24
    if kind == "riser":
        path = [(0, 0, 0), (0, 0, 60), (-5, 20, 120), (-12, 30, 190), (-15, 30, 360)]
        return np.array(path, float), 130, 28
    if kind == "swept-back":
        path = [
            (0, 0, 0),
            (20, 0, 110),
            (10, 8, 200),
            (-60, 20, 260),
            (-150, 28, 285),
            (-215, 30, 290),
        ]
        return np.array(path, float), 120, 24
    # drop bar: across, forward, then down and back into the hooks
    path = [
        (0, 0, 0),
        (0, 0, 150),
        (40, 0, 205),
        (90, -10, 215),
        (110, -60, 218),
        (90, -120, 220),
        (40, -140, 220),
        (-10, -135, 220),
    ]
    return np.array(path, float), 0, 26


def _add_handlebar(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    stem_color = (40, 40, 42) if bike.frame_style in ("mountain", "road") else CHROME
    sketch.tube([_p(geo.head_top), _p(geo.stem_top)], 26, stem_color, 0.8)
    sketch.tube([_p(geo.stem_top), _p(geo.bar)], 30, stem_color, 0.8)
    half, grip_length, diameter = _handlebar_path(bike.handlebar)
    bar_color = (40, 40, 42) if bike.handlebar in ("riser", "drop") else CHROME
    clamp = _p(geo.bar)
    for z in (-1, 1):
        path = clamp + half * [1, 1, z]
        if bike.handlebar == "drop":
            sketch.tube(path, diameter + 5, bike.grip_color, 0.25)  # bar tape all over
            hood = path[3]
            sketch.tube(
                [hood + _v(-15, 5, 0), hood + _v(35, 30, 0), hood + _v(20, -40, 0)],
                22,
                (34, 34, 36),
                0.3,
            )
            continue
        sketch.tube(path, diameter, bar_color, 0.9)
        grip_start = _along_path_from_end(path, grip_length)
        sketch.tube(grip_start, diameter + 10, bike.grip_color, 0.2)
        lever_root = grip_start[0]
        sketch.tube([lever_root, lever_root + _v(80, -25, -z * 30)], 9, (120, 120, 124), 0.8)
    if bike.bell:
        spot = clamp + half[len(half) // 2] * [1, 1, -1] + [0, 18, 0]
        sketch.tube([spot, spot + _v(0, 14, 0)], 52, CHROME, 1.0, anchor=spot + _v(0, 0, -5))


def _along_path_from_end(path: np.ndarray, length: float) -> np.ndarray:
    """The last `length` millimetres of a polyline, as a polyline."""
    out = [path[-1]]
    remaining = length
    for a, b in zip(path[::-1][1:], path[::-1][:-1], strict=True):
        seg = np.linalg.norm(b - a)
        if seg >= remaining:
            out.append(b + (a - b) * (remaining / seg))
            break
        out.append(a)
        remaining -= seg
    return np.array(out[::-1])


def _add_accessories(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    if bike.rear_rack or bike.child_seat:
        _add_rear_rack(sketch, bike, geo)
    if bike.child_seat:
        _add_child_seat(sketch, bike, geo)
    if bike.basket != "none":
        _add_basket(sketch, bike, geo)
    if bike.lights:
        _add_lights(sketch, bike, geo)
    if bike.lock == "ring":
        center = geo.rear_axle
        r = geo.wheel_radius
        sketch.ring(
            center,
            r - 14,
            r + 26,
            bike.lock_color,
            z=0,
            a0=1.1,
            a1=1.75,
            anchor=_p(center + _v(0, r), 70),
        )
        sketch.ring(
            center,
            r + 6,
            r + 24,
            _shade(bike.lock_color, 1.8),
            z=0,
            a0=1.45,
            a1=1.6,
            anchor=_p(center + _v(0, r), 71),
        )
    elif bike.lock == "cable":
        # a coiled cable lock hanging from the seat post
        post = geo.seat_top + 40 * geo.seat_dir
        angles = np.linspace(0, 2 * math.pi, 24)
        for k in range(4):
            center = post + np.array([-30 - 6 * k, -90 - 8 * k])
            loop = [
                _p(
                    center + 95 * np.array([0.55 * math.cos(a), math.sin(a)]),
                    40 + 4 * k + 25 * math.sin(a),
                )
                for a in angles
            ]
            sketch.tube(loop, 11, bike.lock_color, 0.5)


def _add_rear_rack(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    color = bike.rear_rack or (40, 40, 42)
    rear = geo.rear_axle
    height = geo.wheel_radius * 2 + (42 if bike.fenders else 26)
    back, front = -210.0, 230.0
    for z in (-1, 1):
        sketch.tube([_p([back, height], 70 * z), _p([front, height], 70 * z)], 11, color, 0.9)
        sketch.tube([_p(rear, 62 * z), _p([back + 40, height], 70 * z)], 11, color, 0.9)
        sketch.tube([_p(rear, 62 * z), _p([back + 200, height], 70 * z)], 10, color, 0.9)
        stay = geo.seat_top - 60 * geo.seat_dir
        sketch.tube([_p([front, height], 70 * z), _p(stay, 24 * z)], 8, color, 0.9)
    for x in (back, back + 150, back + 300):
        sketch.tube([_p([x, height], -70), _p([x, height], 70)], 9, color, 0.9)
    if bike.lights:
        # a red rear light facing backwards from the end of the rack
        corners = [(-40, height - 10), (40, height - 10), (40, height - 50), (-40, height - 50)]
        sketch.polys([[_p([back - 4, y], z) for z, y in corners]], (200, 20, 24))


def _add_child_seat(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    color = bike.child_seat
    base = geo.wheel_radius * 2 + (42 if bike.fenders else 26) + 12
    profile = np.array(
        [
            (-230, base + 20),
            (-250, base + 470),
            (-220, base + 520),
            (-150, base + 500),
            (-140, base + 120),
            (120, base + 110),
            (140, base + 40),
            (60, base),
        ]
    )
    for z in (-1, 1):
        sketch.polys([[_p(q, 150 * z) for q in profile]], _shade(color, 0.85 if z < 0 else 1.0))
        # footrests down towards the rear axle
        sketch.tube(
            [
                _p([110, base + 40], 140 * z),
                _p([150, base - 200], 170 * z),
                _p([200, base - 210], 170 * z),
            ],
            30,
            _shade(color, 0.9),
            0.4,
        )
    back = [(-240, base + 60), (-250, base + 470), (-220, base + 520)]
    panel = [_p(q, -150) for q in back] + [_p(q, 150) for q in back[::-1]]
    sketch.polys([panel], _shade(color, 0.7), anchor=_p([-240, base + 300], 0))
    seat = [
        _p([-140, base + 115], -140),
        _p([120, base + 105], -140),
        _p([120, base + 105], 140),
        _p([-140, base + 115], 140),
    ]
    sketch.polys([seat], (40, 40, 44), anchor=_p([-10, base + 110], 0))
    # safety strap across the seat
    sketch.tube([_p([-150, base + 300], -120), _p([-150, base + 300], 120)], 18, (30, 30, 30))


def _add_basket(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    color = bike.basket_color
    x0 = geo.head_top[0] + 70
    x1 = x0 + 310
    y0 = geo.head_top[1] - 70
    y1 = y0 + 230
    half = 175.0
    # struts from the basket floor down to the front axle
    for z in (-1, 1):
        sketch.tube([_p([x1 - 60, y0], 100 * z), _p(geo.front_axle, 55 * z)], 9, color, 0.8)
    faces = {  # each face as 4 corners, listed so that grids run along their edges
        "back": [(x0, y0, -half), (x0, y0, half), (x0, y1, half), (x0, y1, -half)],
        "front": [(x1, y0, -half), (x1, y0, half), (x1, y1, half), (x1, y1, -half)],
        "far": [(x0, y0, -half), (x1, y0, -half), (x1, y1, -half), (x0, y1, -half)],
        "near": [(x0, y0, half), (x1, y0, half), (x1, y1, half), (x0, y1, half)],
        "floor": [(x0, y0, -half), (x1, y0, -half), (x1, y0, half), (x0, y0, half)],
    }
    order = ("floor", "back", "far", "front", "near")
    if bike.basket == "wire":
        for name in order:
            c = np.array(faces[name], float)
            segments = []
            for t in np.linspace(0, 1, 9):
                segments.append([c[0] + t * (c[1] - c[0]), c[3] + t * (c[2] - c[3])])
            for t in np.linspace(0, 1, 7):
                segments.append([c[0] + t * (c[3] - c[0]), c[1] + t * (c[2] - c[1])])
            sketch.lines(np.array(segments), 4.5, color, anchor=c.mean(axis=0))
        rim = [
            _p([x0, y1], -half),
            _p([x1, y1], -half),
            _p([x1, y1], half),
            _p([x0, y1], half),
            _p([x0, y1], -half),
        ]
        sketch.tube(rim, 10, color, 0.7, anchor=_p([(x0 + x1) / 2, y1], 0))
        return
    weave = _shade(color, 0.7)
    for name in order:
        c = np.array(faces[name], float)
        shade = {"floor": 0.55, "back": 0.75, "far": 0.8, "front": 1.0, "near": 0.95}[name]
        sketch.polys([c], _shade(color, shade), anchor=c.mean(axis=0))
        segments = []
        rows = 11 if bike.basket == "wicker" else 5
        for t in np.linspace(0, 1, rows)[1:-1]:
            segments.append([c[0] + t * (c[3] - c[0]), c[1] + t * (c[2] - c[1])])
        if bike.basket == "wicker":
            for t in np.linspace(0, 1, 14)[1:-1]:
                segments.append([c[0] + t * (c[1] - c[0]), c[3] + t * (c[2] - c[3])])
        sketch.lines(
            np.array(segments),
            5 if bike.basket == "wicker" else 14,
            weave,
            anchor=c.mean(axis=0)
            + _v(0, 0, 0.5 * np.sign(c[0][2]) if name in ("near", "far") else 0),
        )
    rim = [
        _p([x0, y1], -half),
        _p([x1, y1], -half),
        _p([x1, y1], half),
        _p([x0, y1], half),
        _p([x0, y1], -half),
    ]
    sketch.tube(rim, 16, _shade(color, 0.85), 0.3, anchor=_p([(x0 + x1) / 2, y1 + 5], 0))


def _add_lights(sketch: _Sketch, bike: BikeIdentity, geo: _Geometry) -> None:
    # a headlamp on the fork crown, facing forward
    lamp = geo.head_bottom + np.array([25.0, -25.0])
    sketch.tube([_p(lamp), _p(lamp + _v(70, 4))], 52, (30, 30, 32), 0.7, anchor=_p(lamp, 45))
    sketch.tube([_p(lamp + _v(66, 4)), _p(lamp + _v(74, 4))], 56, CHROME, 1.0, anchor=_p(lamp, 46))
    if not (bike.rear_rack or bike.child_seat):
        # a red rear light on the seat post
        spot = geo.seat_top + 60 * geo.seat_dir
        sketch.tube([_p(spot + _v(-20, 0)), _p(spot + _v(-48, 0))], 30, (200, 20, 24), 0.6)


# --------------------------------------------------------------------------- camera


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


# --------------------------------------------------------------------------- scenes

GROUNDS = ("asphalt", "gravel", "grass", "paving", "snow")
BACKDROPS = ("brick-wall", "facade", "hedge", "fence")


@dataclass
class _Scene:
    ground: str
    backdrop: str
    backdrop_distance: float  # mm behind the bike, along the camera's view
    backdrop_turn: float  # radians the wall is turned away from square to the camera
    wall_height: float  # mm
    sunny: bool
    sun: np.ndarray  # unit vector towards the sun
    tint: np.ndarray  # per-scene variation of the ground/wall colours
    crowd: list[tuple[BikeIdentity, _Pose]]


class _Noise:
    """Smooth value noise on the plane from one seeded 256 x 256 lattice."""

    def __init__(self, rng: np.random.Generator) -> None:
        self.lattice = rng.random((256, 256), dtype=np.float32)

    def value(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        xf, yf = np.floor(x), np.floor(y)
        tx, ty = x - xf, y - yf
        tx, ty = tx * tx * (3 - 2 * tx), ty * ty * (3 - 2 * ty)
        xi, yi = xf.astype(np.int64) & 255, yf.astype(np.int64) & 255
        xj, yj = (xi + 1) & 255, (yi + 1) & 255
        grid = self.lattice
        a, b, c, d = grid[yi, xi], grid[yi, xj], grid[yj, xi], grid[yj, xj]
        return a + (b - a) * tx + (c - a) * ty + (a - b - c + d) * tx * ty

    def cells(self, i: np.ndarray, j: np.ndarray) -> np.ndarray:
        """One random value per integer cell, for bricks and pavers."""
        return self.lattice[(j.astype(np.int64) * 7 + 3) & 255, (i.astype(np.int64) * 13) & 255]

    def fractal(self, x, y, wavelengths, footprint) -> np.ndarray:
        """Octaves of noise, each faded to its mean once pixels grow larger than its
        wavelength: far-away ground turns smooth instead of aliasing into glitter."""
        total = np.zeros_like(x)
        weight_sum = 0.0
        for k, wavelength in enumerate(wavelengths):
            fade = np.clip(wavelength / (2.5 * footprint) - 0.5, 0, 1)
            octave = self.value(x / wavelength + 37.1 * k, y / wavelength + 11.7 * k)
            amplitude = wavelength**0.35
            total += amplitude * (0.5 + fade * (octave - 0.5))
            weight_sum += amplitude
        return total / weight_sum


def _fade(wavelength: float, footprint: np.ndarray) -> np.ndarray:
    return np.clip(wavelength / (2.5 * footprint) - 0.5, 0, 1)


def _ground_texture(kind, x, z, footprint, noise: _Noise, tint) -> np.ndarray:
    """Colour (N, 3) of the ground at world points x, z (metres)."""
    if kind == "asphalt":
        n = noise.fractal(x, z, [3.0, 0.7, 0.15, 0.04, 0.01, 0.004], footprint)
        grey = (62 + 30 * tint[0]) * (0.65 + 0.7 * n)
        speck = noise.value(x / 0.0035 + 500, z / 0.0035 + 900)
        grey = grey + 55 * np.clip((speck - 0.8) * 6, 0, 1) * _fade(0.0035, footprint)
        return grey[:, None] * np.array([1.0, 1.0, 1.04 - 0.06 * tint[1]])
    if kind == "gravel":
        stones = noise.value(x / 0.012 + 100, z / 0.012 + 300)
        shade = noise.fractal(x, z, [1.5, 0.3, 0.025, 0.006], footprint)
        fade = _fade(0.012, footprint)
        palette = np.array([[150, 141, 126], [118, 110, 98], [178, 170, 156], [98, 94, 88]])
        palette = palette * (0.85 + 0.25 * tint[0])
        idx = np.clip((stones * 4).astype(int), 0, 3)
        stone = palette[idx] * (0.7 + 0.6 * shade)[:, None]
        crack = np.abs((stones * 4) % 1 - 0.5) > 0.42  # dark gaps between stones
        stone[crack] *= 0.6
        mean = palette.mean(axis=0) * (0.7 + 0.6 * shade)[:, None] * 0.93
        return mean + fade[:, None] * (stone - mean)
    if kind == "grass":
        n = noise.fractal(x, z, [2.0, 0.5, 0.1, 0.025, 0.008], footprint)
        blades = noise.value(x / 0.0025 + 40, z / 0.02 + 70) * _fade(0.0025, footprint)
        dark = np.array([46, 86, 34]) * (0.8 + 0.3 * tint[0])
        light = np.array([118, 150, 62]) * (0.9 + 0.2 * tint[1])
        t = np.clip(n * 1.3 - 0.15 + 0.35 * (blades - 0.5), 0, 1)
        return dark + t[:, None] * (light - dark)
    if kind == "paving":
        width, height = 0.2, 0.1
        row = np.floor(z / height)
        col = np.floor(x / width + 0.5 * (row % 2))
        fx = (x / width + 0.5 * (row % 2)) % 1 * width
        fz = (z / height) % 1 * height
        joint = (np.minimum(fx, width - fx) < 0.006) | (np.minimum(fz, height - fz) < 0.006)
        joint_weight = joint * _fade(0.02, footprint)
        base = np.array([150, 146, 140]) if tint[2] < 0.5 else np.array([160, 110, 92])
        paver = base * (0.8 + 0.35 * noise.cells(col, row))[:, None]
        paver = paver * (0.8 + 0.4 * noise.fractal(x, z, [0.8, 0.05, 0.01], footprint))[:, None]
        return paver * (1 - 0.45 * joint_weight)[:, None]
    # snow with grey slush and tyre tracks, as outside a university in March
    n = noise.fractal(x, z, [4.0, 1.0, 0.25, 0.06, 0.015, 0.005], footprint)
    slush = np.clip((noise.fractal(x + 50, z + 50, [2.5, 0.6, 0.12], footprint) - 0.5) * 5, 0, 1)
    slush *= 0.5 + 0.5 * tint[0]
    # trodden and ridden tracks: streaks along one direction, faded out with distance
    tracks = noise.value(x / 0.12 + 7, z / 0.7 + 9) * _fade(0.12, footprint)
    slush = np.maximum(slush, np.clip((tracks - 0.75) * 4, 0, 1) * 0.5)
    snow = np.array([226, 232, 240]) * (0.88 + 0.16 * n)[:, None]
    wet = np.array([118, 116, 114]) * (0.75 + 0.5 * n)[:, None]
    return snow + slush[:, None] * (wet - snow)


def _backdrop_texture(kind, s, h, footprint, noise: _Noise, tint) -> tuple[np.ndarray, np.ndarray]:
    """Colour (N, 3) of the wall at horizontal s and height h (metres), and whether each
    point is wall at all (a hedge has a ragged top; above it is sky)."""
    solid = np.ones_like(s, dtype=bool)
    if kind == "brick-wall":
        width, height = 0.225, 0.075
        row = np.floor(h / height)
        col = np.floor(s / width + 0.5 * (row % 2))
        fx = (s / width + 0.5 * (row % 2)) % 1 * width
        fy = (h / height) % 1 * height
        mortar = (fx < 0.01) | (fy < 0.01)
        mortar_weight = mortar * _fade(0.03, footprint)
        brick = np.array([150, 66, 48]) * (0.85 + 0.2 * tint[0])
        brick = brick * (0.75 + 0.4 * noise.cells(col, row))[:, None]
        brick = brick * (0.85 + 0.3 * noise.fractal(s, h, [0.5, 0.05, 0.012], footprint))[:, None]
        mortar_color = np.array([176, 170, 160])
        return brick + mortar_weight[:, None] * (mortar_color - brick), solid
    if kind == "facade":
        plaster = [np.array([214, 176, 96]), np.array([200, 196, 186]), np.array([226, 210, 170])]
        color = plaster[int(tint[2] * 2.99)] * (0.9 + 0.1 * tint[0])
        n = noise.fractal(s, h, [2.0, 0.3, 0.05, 0.01], footprint)
        wall = color * (0.88 + 0.2 * n)[:, None]
        period, win_w = 2.6, 1.3
        local_s = (s + tint[1] * period) % period
        floor_h = 3.2
        local_h = h % floor_h
        in_window = (local_s < win_w) & (local_h > 0.9) & (local_h < 2.5) & (h < 9.0)
        frame = in_window & (
            (local_s < 0.07)
            | (local_s > win_w - 0.07)
            | (local_h < 0.97)
            | (local_h > 2.43)
            | (np.abs(local_s - win_w / 2) < 0.03)
        )
        glass = np.array([70, 88, 104]) * (0.6 + 0.6 * (local_h - 0.9) / 1.6)[:, None]
        wall = np.where(in_window[:, None], glass, wall)
        wall = np.where(frame[:, None], np.array([236, 236, 230]), wall)
        plinth = h < 0.45
        wall = np.where(plinth[:, None], np.array([110, 108, 104]) * (0.8 + 0.3 * n)[:, None], wall)
        return wall, solid
    if kind == "hedge":
        n = noise.fractal(s, h, [1.0, 0.3, 0.08, 0.025, 0.008], footprint)
        leaves = noise.value(s / 0.012 + 3, h / 0.012 + 5) * _fade(0.012, footprint)
        dark = np.array([24, 52, 22]) * (0.8 + 0.4 * tint[0])
        light = np.array([88, 128, 54])
        t = np.clip(n * 1.4 - 0.35 + 0.5 * (leaves - 0.5), 0, 1)
        ragged = noise.value(s / 0.4 + 90, np.zeros_like(s) + 0.5) * 0.35
        return dark + t[:, None] * (light - dark), h < (1.0 + ragged)
    # wooden fence: vertical planks with dark gaps
    plank = 0.12
    col = np.floor(s / plank)
    fs = (s / plank) % 1
    wood = np.array([150, 118, 82]) * (0.7 + 0.35 * tint[0])
    grain = noise.fractal(s * 8, h * 0.5, [0.5, 0.1, 0.02], footprint * 4)
    color = wood * (0.75 + 0.3 * noise.cells(col, col + 1))[:, None] * (0.8 + 0.3 * grain)[:, None]
    gap = (fs > 0.9) * _fade(0.03, footprint)
    color = color * (1 - 0.7 * gap)[:, None]
    return color, h < 0.25 + 1.55 * np.ones_like(s)


def _sky(rays: np.ndarray, sunny: bool, noise: _Noise) -> np.ndarray:
    elevation = np.clip(rays[:, 1], 0, 1)
    if sunny:
        horizon, zenith = np.array([206, 218, 232]), np.array([104, 150, 212])
    else:
        horizon, zenith = np.array([222, 224, 226]), np.array([188, 192, 198])
    t = np.clip(elevation * 2.2, 0, 1)[:, None]
    sky = horizon + t * (zenith - horizon)
    clouds = noise.value(rays[:, 0] * 4 + 3, rays[:, 2] * 4 + rays[:, 1] * 9)
    return sky + (clouds[:, None] - 0.5) * (30 if sunny else 18)


def _render_background(scene: _Scene, camera: _Camera, rng: np.random.Generator) -> np.ndarray:
    """Ground, wall and sky behind the bike, as (H, W, 3) float32 in 0..255."""
    w, h = camera.size
    noise = _Noise(rng)
    rays = camera.pixel_rays().reshape(-1, 3)
    origin = camera.position.astype(np.float32)
    t_ground = np.full(len(rays), np.inf, dtype=np.float32)
    down = rays[:, 1] < -1e-4
    t_ground[down] = -origin[1] / rays[down, 1]
    # the wall stands square to the camera's horizontal view, turned a little
    view = np.array([camera.forward[0], 0.0, camera.forward[2]])
    view /= np.linalg.norm(view)
    c, s = math.cos(scene.backdrop_turn), math.sin(scene.backdrop_turn)
    normal = -np.array([view[0] * c - view[2] * s, 0.0, view[0] * s + view[2] * c])
    tangent = np.array([-normal[2], 0.0, normal[0]])
    wall_point = camera.target + view * scene.backdrop_distance
    facing = rays @ normal.astype(np.float32)
    t_wall = np.full(len(rays), np.inf, dtype=np.float32)
    toward = facing < -1e-4
    t_wall[toward] = ((wall_point - origin) @ normal) / facing[toward]
    out = np.zeros((len(rays), 3), dtype=np.float32)
    sky = np.ones(len(rays), dtype=bool)

    wall_hit = t_wall < t_ground
    idx = np.nonzero(wall_hit)[0]
    if len(idx):
        points = origin + rays[idx] * t_wall[idx, None]
        height = points[:, 1] / 1000
        along = (points - wall_point) @ tangent / 1000
        footprint = t_wall[idx] / camera.focal / 1000 / np.maximum(np.abs(facing[idx]), 0.2)
        color, solid = _backdrop_texture(
            scene.backdrop, along, height, footprint, noise, scene.tint
        )
        solid &= height < scene.wall_height / 1000
        out[idx[solid]] = color[solid]
        sky[idx[solid]] = False
    ground = ~wall_hit & np.isfinite(t_ground)
    idx = np.nonzero(ground)[0]
    if len(idx):
        points = origin + rays[idx] * t_ground[idx, None]
        footprint = t_ground[idx] / camera.focal / 1000 / np.maximum(-rays[idx, 1], 0.05)
        out[idx] = _ground_texture(
            scene.ground, points[:, 0] / 1000, points[:, 2] / 1000, footprint, noise, scene.tint
        )
        sky[idx] = False
    idx = np.nonzero(sky)[0]
    if len(idx):
        out[idx] = _sky(rays[idx], scene.sunny, noise)
    # a little haze: far things fade towards the sky colour
    distance = np.where(sky, 0, np.minimum(t_wall, t_ground)) / 1000
    haze = (1 - np.exp(-np.nan_to_num(distance, posinf=0) / 120))[:, None]
    out = out + haze * (np.array([210, 214, 220]) - out)
    return out.reshape(h, w, 3)


# Where each demo bike is usually parked. People photograph their bike where it
# stands, so most photos of one bike share a place and its light, as in the 2018 set,
# where a colour histogram alone picks the right bike 90% of the time. Other bikes get
# a usual spot drawn from their name.
_USUAL_SPOTS: dict[str, tuple[str, str, bool]] = {
    "black-mountain": ("gravel", "hedge", True),
    "black-step-through": ("asphalt", "facade", False),
    "red-road": ("paving", "brick-wall", True),
    "red-step-through": ("grass", "fence", True),
    "white-city": ("snow", "facade", False),
}
_AT_USUAL_SPOT = 0.8  # chance that a photo's ground, wall and light are the usual ones


def _usual_spot(bike: BikeIdentity) -> tuple[str, str, bool, np.ndarray]:
    """Ground, backdrop, sunniness and colour tint of the place `bike` is usually parked."""
    rng = np.random.default_rng(zlib.crc32(bike.name.encode()))
    ground = GROUNDS[int(rng.integers(len(GROUNDS)))]
    backdrop = BACKDROPS[int(rng.integers(len(BACKDROPS)))]
    sunny = bool(rng.random() < 0.5)
    ground, backdrop, sunny = _USUAL_SPOTS.get(bike.name, (ground, backdrop, sunny))
    return ground, backdrop, sunny, rng.random(3)


def _random_scene(rng: np.random.Generator, bike: BikeIdentity, camera_side: float) -> _Scene:
    home_ground, home_backdrop, home_sunny, home_tint = _usual_spot(bike)
    at_home = rng.random(3) < _AT_USUAL_SPOT
    ground = home_ground if at_home[0] else GROUNDS[int(rng.integers(len(GROUNDS)))]
    backdrop = home_backdrop if at_home[1] else BACKDROPS[int(rng.integers(len(BACKDROPS)))]
    sunny = home_sunny if at_home[2] else bool(rng.random() < 0.5)
    tint = np.clip(home_tint + rng.normal(0, 0.08, 3), 0, 1) if at_home[0] else rng.random(3)
    azimuth = rng.uniform(0, 2 * math.pi)
    elevation = rng.uniform(0.35, 0.95)
    sun = np.array(
        [
            math.cos(elevation) * math.cos(azimuth),
            math.sin(elevation),
            math.cos(elevation) * math.sin(azimuth),
        ]
    )
    backdrop_distance = rng.uniform(2500, 9000)
    crowd = []
    # other people's bikes: rows of a rack right behind, or one or two further away,
    # always in front of the wall
    if rng.random() < 0.3:
        rows = [rng.uniform(750, 1000) * (k + 1) for k in range(int(rng.integers(1, 4)))]
    elif rng.random() < 0.3:
        rows = [rng.uniform(2500, 5000)]
    else:
        rows = []
    rows = [depth for depth in rows if depth < backdrop_distance - 700]
    for depth in rows:
        for _ in range(int(rng.integers(1, 3))):
            stranger = _draw_random_bike(rng, "stranger")
            heading = (math.pi if rng.random() < 0.5 else 0.0) + rng.normal(0, 0.12)
            offset = (rng.uniform(-1400, 1400), 0.0, -camera_side * depth)
            crowd.append((stranger, _Pose(heading, offset, 540.0)))
    return _Scene(
        ground=ground,
        backdrop=backdrop,
        backdrop_distance=backdrop_distance,
        backdrop_turn=rng.normal(0, 0.25),
        wall_height=rng.uniform(1800, 12000),
        sunny=sunny,
        sun=sun,
        tint=tint,
        crowd=crowd,
    )


# --------------------------------------------------------------------------- shots

SHOT_KINDS = ("whole", "partial", "close-up")


def _close_up_targets(bike: BikeIdentity, geo: _Geometry) -> list[tuple[np.ndarray, float]]:
    """Parts people photograph up close: (point in bike coordinates, frame width mm)."""
    targets = [
        (_p(geo.saddle + _v(0, 40)), 480.0),
        (_p(geo.rear_axle), 700.0),
        (_p(geo.front_axle), 700.0),
        (_p(geo.bottom_bracket + _v(20, 60)), 620.0),
        (_p(0.5 * (geo.bottom_bracket + geo.head_bottom)), 560.0),
        (_p(geo.head_top + _v(90, 40) if bike.basket != "none" else geo.bar), 700.0),
    ]
    if bike.rear_rack or bike.child_seat:
        targets.append((_p([0, geo.wheel_radius * 2 + 150]), 750.0))
    if bike.sticker:
        targets.append((_p(geo.bottom_bracket + 0.55 * (geo.seat_top - geo.bottom_bracket)), 450.0))
    return targets


def _frame_shot(
    rng: np.random.Generator,
    bike: BikeIdentity,
    geo: _Geometry,
    sketch: _Sketch,
    size: tuple[int, int],
) -> tuple[_Camera, str]:
    """A camera as a person with a phone would hold it, for a random kind of shot."""
    width, height = size
    focal = 0.78 * width  # a phone's main camera: about 65 degrees across
    roll = math.radians(rng.normal(0, 2.5))
    side = 0.0 if rng.random() < 0.5 else math.pi
    kind = rng.choice(SHOT_KINDS, p=[0.42, 0.14, 0.44])
    if kind == "close-up":
        targets = _close_up_targets(bike, geo)
        point, frame_mm = targets[int(rng.integers(len(targets)))]
        frame_mm *= rng.uniform(0.75, 1.35)
        yaw = side + rng.uniform(-0.7, 0.7)
        pitch = rng.uniform(0.15, 0.85)
        distance = max(380.0, focal * frame_mm / width)
        target = point + rng.normal(0, 0.06 * frame_mm, 3) * [1, 1, 0]
        return _Camera(target, yaw, pitch, distance, focal, roll, size), str(kind)
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
    return _Camera(target, yaw, pitch, max(distance, 600.0), focal, roll, size), str(kind)


# --------------------------------------------------------------------------- photos


def render_photo(bike: BikeIdentity, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> Image.Image:
    """A photo-like RGB picture of `bike`: same bike, seed and size give the same pixels.

    The seed picks the shot (whole bike, crop or close-up of a part), the place, the
    light, the bikes parked behind it and the camera's flaws (blur, noise, JPEG).
    """
    rng = np.random.default_rng(seed)
    sketch, geo = _build_bike(bike, crank_angle=rng.uniform(0, 2 * math.pi))
    camera, _ = _frame_shot(rng, bike, geo, sketch, size)
    scene = _random_scene(rng, bike, camera_side=1.0 if math.cos(camera.yaw) >= 0 else -1.0)
    background = _render_background(scene, camera, rng)
    light = _screen_light(scene, camera)
    contrast = 1.0 if scene.sunny else 0.55
    pose = _Pose(pivot_x=geo.front_axle[0] / 2)

    shadow = _shadow_mask(sketch, geo, pose, scene, camera)
    darkness = 0.45 if scene.sunny else 0.3
    background *= (1 - darkness * shadow)[:, :, None]

    # strangers' bikes, far ones first
    def depth_of(pose: _Pose) -> float:
        return float(camera.project(np.array([pose.offset]))[1][0])

    for stranger, stranger_pose in sorted(scene.crowd, key=lambda c: -depth_of(c[1])):
        stranger_sketch, _ = _build_bike(stranger, rng.uniform(0, 2 * math.pi))
        background = _composite(
            background, _paint_layer(stranger_sketch.shapes, stranger_pose, camera, light, contrast)
        )
    # a phone focused on a part up close blurs what is behind it
    blur = float(np.clip((900 - camera.distance) / 180, 0, 3.0))
    if blur > 0.3:
        background = _gaussian(background, blur)
    image = _composite(background, _paint_layer(sketch.shapes, pose, camera, light, contrast))
    return _camera_effects(image, rng, scene)


def _screen_light(scene: _Scene, camera: _Camera) -> np.ndarray:
    """The direction in the image (x right, y down) that light falls from."""
    if not scene.sunny:
        return np.array([0.0, -1.0])
    direction = np.array([scene.sun @ camera.right, -(scene.sun @ camera.up)])
    direction[1] -= 0.4  # the sky lights tops of tubes even when the sun is to the side
    return direction / max(np.linalg.norm(direction), 1e-6)


def _paint_layer(shapes, pose, camera, light, contrast) -> tuple[np.ndarray, np.ndarray]:
    """Shapes painted at SUPERSAMPLE x and averaged down: premultiplied colour, coverage."""
    w, h = camera.size
    big = (w * SUPERSAMPLE, h * SUPERSAMPLE)
    color = Image.new("RGB", big)
    coverage = Image.new("L", big)
    canvases = [(ImageDraw.Draw(color), False), (ImageDraw.Draw(coverage), True)]
    _paint(canvases, shapes, pose, camera, SUPERSAMPLE, light, contrast)
    color = np.asarray(color.reduce(SUPERSAMPLE), dtype=np.float32)
    alpha = np.asarray(coverage.reduce(SUPERSAMPLE), dtype=np.float32) / 255
    return color, alpha


def _composite(background: np.ndarray, layer: tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    color, alpha = layer
    return background * (1 - alpha[:, :, None]) + color


def _shadow_mask(sketch, geo, pose, scene, camera) -> np.ndarray:
    """How much each pixel of ground is shaded by the bike, 0..1 at the output size."""
    w, h = camera.size
    mask = Image.new("L", (w, h))
    draw = ImageDraw.Draw(mask)
    # contact shadows where the tyres meet the ground and under the bike
    for axle in (geo.rear_axle, geo.front_axle):
        blob = _circle([axle[0], 0], 90, 0, np.linspace(0, 2 * math.pi, 24))[:, [0, 2, 1]]
        uv, depth = camera.project(pose.apply(blob))
        if depth.min() > _NEAR_CLIP_MM:
            draw.polygon([tuple(q) for q in uv], fill=200)
    if scene.sunny:
        _paint([(draw, True)], sketch.shapes, pose, camera, 1, np.array([0.0, -1.0]), 0, scene.sun)
        radius = 1.2
    else:
        radius = 9.0
    return np.asarray(mask.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32) / 255


def _gaussian(image: np.ndarray, radius: float) -> np.ndarray:
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    return np.asarray(pil.filter(ImageFilter.GaussianBlur(radius)), dtype=np.float32)


def _camera_effects(image: np.ndarray, rng: np.random.Generator, scene: _Scene) -> Image.Image:
    """What a phone adds: exposure, white balance, vignetting, blur, noise, JPEG."""
    h, w, _ = image.shape
    warm = np.array([1.04, 1.0, 0.94]) if scene.sunny else np.array([0.97, 1.0, 1.04])
    gain = rng.uniform(0.82, 1.12) * warm * (1 + rng.normal(0, 0.025, 3))
    image = image * gain
    gray = image.mean(axis=2, keepdims=True)
    image = gray + (image - gray) * rng.uniform(0.8, 1.15)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    r2 = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2
    image = image * (1 - rng.uniform(0.05, 0.25) * r2 / 2)[:, :, None]
    pil = Image.fromarray(np.clip(image, 0, 255).astype(np.uint8))
    # most phone photos are a little soft; a few are shaken
    radius = float(rng.choice([0.3, 0.5, 0.7, 1.0, 1.5], p=[0.3, 0.3, 0.2, 0.12, 0.08]))
    pil = pil.filter(ImageFilter.GaussianBlur(radius))
    noisy = np.asarray(pil, dtype=np.float32)
    sigma = rng.uniform(1.5, 5.0)
    noisy = noisy + rng.normal(0, sigma, noisy.shape) + rng.normal(0, sigma * 0.7, (h, w, 1))
    pil = Image.fromarray(np.clip(noisy, 0, 255).round().astype(np.uint8))
    buffer = io.BytesIO()
    pil.save(buffer, "JPEG", quality=int(rng.integers(60, 93)))
    buffer.seek(0)
    return Image.open(buffer).convert("RGB")


# --------------------------------------------------------------------------- data set


@dataclass(frozen=True)
class PlannedPhoto:
    """One file of a rendered data set: where it goes, which bike, which seed."""

    relative_path: str
    bike: BikeIdentity
    seed: int


def plan_dataset(
    per_class_train: int = 16,
    per_class_val: int = 4,
    seed: int = DEFAULT_DATASET_SEED,
    bikes: Sequence[BikeIdentity] = DEMO_BIKES,
) -> list[PlannedPhoto]:
    """The files `render_dataset` writes, in order. A photo's seed depends only on the
    data set seed, its bike's name, split and number, so asking for fewer photos gives
    the first files of the full set, unchanged."""
    plan = []
    for bike in sorted(bikes, key=lambda b: b.name):
        for split, split_code, count in (
            ("train", 1, per_class_train),
            ("validation", 2, per_class_val),
        ):
            for number in range(1, count + 1):
                sequence = np.random.SeedSequence(
                    [seed, zlib.crc32(bike.name.encode()), split_code, number]
                )
                photo_seed = int(sequence.generate_state(1, dtype=np.uint32)[0])
                path = f"{split}/{bike.name}/{bike.name}-{number:02d}.jpg"
                plan.append(PlannedPhoto(path, bike, photo_seed))
    return plan


def render_dataset(
    out_dir: str | Path,
    per_class_train: int = 16,
    per_class_val: int = 4,
    seed: int = DEFAULT_DATASET_SEED,
    bikes: Sequence[BikeIdentity] = DEMO_BIKES,
    size: tuple[int, int] = PHOTO_SIZE,
    progress: Callable[[int, int], None] | None = None,
) -> list[Path]:
    """Render `out_dir/train/<bike>/*.jpg` and `out_dir/validation/<bike>/*.jpg`.

    JPEGs (640 x 480 unless `size` says otherwise) at a fixed quality with no metadata,
    so the same call writes the same bytes (with the same Pillow/libjpeg). Other .jpg
    files in those class folders are removed, so the folder holds exactly the planned
    set. `progress(done, total)` is called after each photo. Returns the written paths.
    """
    out_dir = Path(out_dir)
    plan = plan_dataset(per_class_train, per_class_val, seed, bikes)
    wanted = {out_dir / item.relative_path for item in plan}
    for folder in {path.parent for path in wanted}:
        folder.mkdir(parents=True, exist_ok=True)
        for stale in folder.glob("*.jpg"):
            if stale not in wanted:
                stale.unlink()
    written = []
    for done, item in enumerate(plan, start=1):
        path = out_dir / item.relative_path
        save_jpeg(render_photo(item.bike, item.seed, size), path)
        written.append(path)
        if progress:
            progress(done, len(plan))
    return written


def save_jpeg(image: Image.Image, path: str | Path | io.BytesIO) -> None:
    """Write a JPEG at the data set's fixed quality, without metadata."""
    image.save(path, "JPEG", quality=JPEG_QUALITY, optimize=True)


def contact_sheet(
    dataset_dir: str | Path,
    out_png: str | Path,
    thumb_size: tuple[int, int] = (160, 120),
    columns: int = 10,
) -> Path:
    """A PNG grid of every photo of `dataset_dir` (train, then validation, per class),
    each labelled with its class and split."""
    dataset_dir = Path(dataset_dir)
    entries = []
    classes = sorted(
        {
            p.name
            for split in ("train", "validation")
            for p in (dataset_dir / split).glob("*")
            if p.is_dir()
        }
    )
    for name in classes:
        for split in ("train", "validation"):
            for path in sorted((dataset_dir / split / name).glob("*.jpg")):
                entries.append((path, f"{name} · {'val' if split == 'validation' else split}"))
    if not entries:
        raise ValueError(f"no train/<class>/*.jpg photos under {dataset_dir}")
    tw, th = thumb_size
    label_h = 14
    rows = math.ceil(len(entries) / columns)
    sheet = Image.new("RGB", (columns * tw, rows * (th + label_h)), (250, 250, 250))
    draw = ImageDraw.Draw(sheet)
    font = ImageFont.load_default(size=11)
    for i, (path, label) in enumerate(entries):
        x, y = (i % columns) * tw, (i // columns) * (th + label_h)
        with Image.open(path) as photo:
            sheet.paste(photo.convert("RGB").resize(thumb_size, Image.Resampling.BOX), (x, y))
        draw.text((x + 3, y + th), label, fill=(20, 20, 20), font=font)
    out_png = Path(out_png)
    out_png.parent.mkdir(parents=True, exist_ok=True)
    # 256 colours keep a sheet of 100 photos around a megabyte and still read well
    sheet.quantize(256, method=Image.Quantize.MEDIANCUT).save(out_png, optimize=True)
    return out_png


def main(argv: Sequence[str] | None = None) -> int:
    """`python -m bikelib.render OUT_DIR` renders the demo set;
    `--contact-sheet PNG DATASET_DIR` draws the contact sheet of an existing set."""
    parser = argparse.ArgumentParser(
        prog="python -m bikelib.render",
        description="Render the built-in demo bicycles, or a contact sheet of a data set.",
    )
    parser.add_argument(
        "directory", help="data set folder to write (or to read, with --contact-sheet)"
    )
    parser.add_argument("--contact-sheet", metavar="PNG", help="draw a contact sheet of DIRECTORY")
    parser.add_argument("--train", type=int, default=16, help="training photos per bike")
    parser.add_argument("--validation", type=int, default=4, help="validation photos per bike")
    parser.add_argument("--seed", type=int, default=DEFAULT_DATASET_SEED)
    args = parser.parse_args(argv)
    if args.contact_sheet:
        try:
            path = contact_sheet(args.directory, args.contact_sheet)
        except (OSError, ValueError) as error:
            print(f"error: {error}", file=sys.stderr)
            return 1
        print(f"wrote {path}")
        return 0
    started = time.perf_counter()

    def report(done: int, total: int) -> None:
        if done % 10 == 0 or done == total:
            print(f"rendered {done}/{total}", file=sys.stderr, flush=True)

    paths = render_dataset(args.directory, args.train, args.validation, args.seed, progress=report)
    elapsed = time.perf_counter() - started
    size_mb = sum(p.stat().st_size for p in paths) / 1e6
    print(f"wrote {len(paths)} photos ({size_mb:.1f} MB) to {args.directory} in {elapsed:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
