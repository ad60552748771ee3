"""What a rider touches and bolts on, sketched in 3-D: saddle, stem and handlebar,
rear rack, child seat, basket, lights and lock.
"""

from __future__ import annotations

import math

import numpy as np

from .bikes import CHROME, BikeIdentity
from .geometry import _Geometry, _mix, _p, _shade, _Sketch, _v


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
