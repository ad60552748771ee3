"""What surfaces look like: seeded value noise (`_Noise`) and the procedural
textures of the grounds (asphalt, gravel, grass, paving, snow), the backdrops (brick
wall, facade, hedge, fence) and the sky, faded to their mean where pixels grow large.
"""

from __future__ import annotations

import numpy as np


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
