"""Builds the 3-D sketch of a whole bike (`_build_bike`) and its structure: wheels
and tyres, fenders, frame, fork, decals and sticker, drivetrain and kickstand.

Saddle, handlebar and accessories come from `accessories`.
"""

from __future__ import annotations

import math
import zlib

import numpy as np

from .accessories import _add_accessories, _add_handlebar, _add_saddle
from .bikes import BLACK, CHROME, SILVER, TYRE_BLACK, BikeIdentity
from .geometry import _bezier, _circle, _Geometry, _geometry, _p, _shade, _Sketch, _v


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
