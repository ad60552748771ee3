"""Making one photo: `render_photo` puts the pieces together (bike, shot, scene,
strangers' bikes), with the bike's shadow, anti-aliased compositing and what a phone
camera adds (exposure, white balance, vignetting, blur, noise, JPEG). `render_scene`
makes the same kind of photo of a place with no bicycle in it.
"""

from __future__ import annotations

import io
import math

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

from .bikes import BikeIdentity, _draw_random_bike
from .camera import _NEAR_CLIP_MM, _Camera, _paint, _Pose
from .geometry import _circle
from .parts import _build_bike
from .scene import _random_scene, _render_background, _Scene
from .shots import _frame_shot

PHOTO_SIZE = (640, 480)
SUPERSAMPLE = 2  # the bike is drawn at 2x and averaged down: smooth edges, thin spokes
PLACES = ("planned", "new")  # where render_photo puts the bike: see there
_SCENE_STREAM = 0x5CE4E  # keeps render_scene's numbers apart from render_photo's
_PLACE_STREAM = 0x91ACE  # and a place_seed's apart from both


def render_photo(
    bike: BikeIdentity,
    seed: int,
    size: tuple[int, int] = PHOTO_SIZE,
    *,
    place: str = "planned",
    place_seed: int | None = None,
) -> Image.Image:
    """A photo-like RGB picture of `bike`: same bike, seed, size and place give the same
    pixels.

    The seed picks the shot (whole bike, crop or close-up of a part), the place, the
    light, the bikes parked behind it and the camera's flaws (blur, noise, JPEG).
    `place="planned"` (the demo set's photos) is mostly the bike's usual spot: its
    ground, backdrop and light are each the usual ones 4 times in 5. `place="new"` is
    never the usual spot: ground, backdrop, light and colours are drawn at random, as
    for a stolen bike photographed by a stranger. Both take the same shot; the place,
    and all that is drawn after it, differ.

    `place_seed` draws the place (ground, backdrop, light, the bikes parked there) from
    its own numbers, so that photos with different seeds and one `place_seed` are shots
    of one place, as the several photos of one marketplace listing are. None (the
    default) draws it from `seed`, as the demo set's photos were.
    """
    if place not in PLACES:
        raise ValueError(f"place must be one of {', '.join(PLACES)}")
    rng, sketch, geo, camera, _, _ = _framed(bike, seed, size)
    place_rng = rng
    if place_seed is not None:
        place_rng = np.random.default_rng(np.random.SeedSequence([place_seed, _PLACE_STREAM]))
    scene = _random_scene(
        place_rng,
        bike,
        camera_side=1.0 if math.cos(camera.yaw) >= 0 else -1.0,
        usual_spot=place == "planned",
    )
    background = _render_background(scene, camera, place_rng)
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
    background = _focus_blur(background, camera)
    image = _composite(background, _paint_layer(sketch.shapes, pose, camera, light, contrast))
    return _camera_effects(image, rng, scene)


def shot_kind(bike: BikeIdentity, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> str:
    """The kind of shot (`SHOT_KINDS`: whole, partial, close-up) that `render_photo` takes
    of `bike` with this seed and size, at either place: for benchmarks that ask which
    kinds of photo a model gets wrong."""
    return _framed(bike, seed, size)[4]


def close_up_part(bike: BikeIdentity, seed: int, size: tuple[int, int] = PHOTO_SIZE) -> str | None:
    """The part (`CLOSE_UP_PARTS`) that `render_photo`'s close-up of `bike` with this seed
    and size shows; None for a whole or partial shot."""
    return _framed(bike, seed, size)[5]


def _framed(bike: BikeIdentity, seed: int, size: tuple[int, int]):
    """The photo's random numbers, the bike's sketch, the camera and the shot: it comes
    first in every photo, so `shot_kind`, `close_up_part` and `render_photo` draw it from
    the same numbers."""
    rng = np.random.default_rng(seed)
    sketch, geo = _build_bike(bike, crank_angle=rng.uniform(0, 2 * math.pi))
    camera, kind, part = _frame_shot(rng, bike, geo, sketch, size)
    return rng, sketch, geo, camera, kind, part


def render_scene(seed: int, size: tuple[int, int] = PHOTO_SIZE) -> Image.Image:
    """A photo-like RGB picture of a random place with no bicycle in it at all (no
    bike in front, none parked behind): same seed and size give the same pixels.

    Framed as a phone would frame a bike standing there (a random bike that is not
    drawn), with the grounds, backdrops, light and camera flaws of `render_photo`: for
    "no bicycle" pictures.
    """
    rng = np.random.default_rng(np.random.SeedSequence([seed, _SCENE_STREAM]))
    nobody = _draw_random_bike(rng, "nobody")
    sketch, geo = _build_bike(nobody, crank_angle=0.0)
    camera, _, _ = _frame_shot(rng, nobody, geo, sketch, size)
    camera_side = 1.0 if math.cos(camera.yaw) >= 0 else -1.0
    scene = _random_scene(rng, nobody, camera_side, usual_spot=False)
    background = _render_background(scene, camera, rng)  # scene.crowd is never drawn
    return _camera_effects(_focus_blur(background, camera), rng, scene)


def _focus_blur(background: np.ndarray, camera: _Camera) -> np.ndarray:
    """A phone focused on a part up close blurs what is behind it."""
    blur = float(np.clip((900 - camera.distance) / 180, 0, 3.0))
    if blur > 0.3:
        background = _gaussian(background, blur)
    return background


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
