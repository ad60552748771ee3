"""Where a photo is taken: the place (`_Scene`: ground, backdrop, sun, other
people's bikes), each bike's usual spot, drawing a random scene, and ray-casting
ground, wall and sky into the background picture (`_render_background`).
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np

from .bikes import BikeIdentity, _draw_random_bike
from .camera import _Camera, _Pose
from .textures import _backdrop_texture, _ground_texture, _Noise, _sky

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


def _random_scene(
    rng: np.random.Generator, bike: BikeIdentity, camera_side: float, usual_spot: bool = True
) -> _Scene:
    """Where `bike` is photographed. Usually its usual spot (each of ground, backdrop and
    light with chance `_AT_USUAL_SPOT`); with `usual_spot=False` never: everything is
    drawn as for a strange place. The same numbers are drawn up to that point either way,
    so the scenes of `usual_spot=True` do not depend on this option."""
    home_ground, home_backdrop, home_sunny, home_tint = _usual_spot(bike)
    at_home = rng.random(3) < _AT_USUAL_SPOT
    if not usual_spot:
        at_home[:] = False
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
