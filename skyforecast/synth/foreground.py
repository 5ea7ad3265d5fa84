"""The static foreground in front of the sky: ridges, flat land, tree lines, city skylines and buildings,
and lakes that mirror the sky."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from .noise import _fbm1d, _lattice, _static_noise
from .palettes import Palette, _jitter
from .scene import VIRTUAL_H, VIRTUAL_W, Scene


@dataclass
class _FgLayer:
    top: np.ndarray  # (w,) top edge in output pixel rows (float); rows below it are this layer
    colour: np.ndarray  # (h, w, 3) float32, lit colour at exposure 1
    static: bool = True


def _ridge_profile(xv: np.ndarray, key: int, base: float, amp: float, scale: float) -> np.ndarray:
    n = _fbm1d(xv / scale, key, octaves=6, gain=0.55)
    sharp = 1.0 - np.abs(_fbm1d(xv / (scale * 0.7) + 50, key + 1, octaves=4))  # ridged: crests
    return base + amp * (0.6 * n + 0.5 * sharp)


def _trees_profile(rng: np.random.Generator, xv: np.ndarray, base: np.ndarray, height: float) -> np.ndarray:
    """Heights (virtual px) of a tree line: conifer triangles and round crowns on top of ``base``."""
    n = int(VIRTUAL_W / max(height * 0.35, 2.0) * rng.uniform(0.6, 1.2)) + 4
    cx = rng.uniform(-20, VIRTUAL_W + 20, n)
    hh = height * rng.uniform(0.5, 1.3, n)
    conifer = rng.uniform(size=n) < rng.uniform(0.0, 1.0)
    wid = np.where(conifer, hh * rng.uniform(0.18, 0.3, n), hh * rng.uniform(0.3, 0.6, n))
    d = np.abs(xv[None, :] - cx[:, None]) / wid[:, None]
    tri = hh[:, None] * (1.0 - d)
    dome = hh[:, None] * np.sqrt(np.clip(1.0 - d * d, 0.0, 1.0))
    prof = np.where(conifer[:, None], tri, dome).max(axis=0)
    jag = _fbm1d(xv / 1.7, int(rng.integers(1 << 40)), octaves=3) * height * 0.05
    return base + np.maximum(prof + jag * (prof > 0), 0.0)


@dataclass
class _FgCanvas:
    """What every foreground kind draws with: pixel grid, light, random stream, and the layers so far."""

    rng: np.random.Generator
    w: int
    h: int
    xv: np.ndarray  # (w,) virtual x of pixel centres
    yv: np.ndarray  # (h,) virtual y of pixel centres
    hy: float  # horizon row on the virtual canvas
    haze: np.ndarray  # (3,) horizon colour, what distance fades towards
    light: float
    tex_key: int
    layers: list[_FgLayer] = field(default_factory=list)

    def colour(self, base: tuple, far: float, tex_amp: float = 0.25, grad: float = 0.3) -> np.ndarray:
        """Lit (h, w, 3) colour of the next layer: ``base`` faded into the haze by ``far``, with texture."""
        rng = self.rng
        cells = (rng.uniform(20, 60), rng.uniform(8, 20))
        tex = _static_noise(self.h, self.w, cells, self.tex_key + len(self.layers))
        c = np.asarray(base, np.float32) * self.light
        c = c * (1 - far) + self.haze * far * (0.6 + 0.4 * self.light)
        shade = 1.0 + tex_amp * tex[..., None] - grad * (self.yv / VIRTUAL_H)[:, None, None]
        return (c[None, None, :] * np.clip(shade, 0.2, 2.0)).astype(np.float32)

    def to_rows(self, height_vpx: np.ndarray, ground_y: float) -> np.ndarray:
        """Output rows of the tops of things ``height_vpx`` virtual pixels tall standing at ``ground_y``."""
        return (ground_y - height_vpx) * (self.h / VIRTUAL_H)

    def add(self, top: np.ndarray, colour: np.ndarray) -> None:
        self.layers.append(_FgLayer(top, colour))


def _fg_ridges(cv: _FgCanvas, green: tuple) -> None:
    """One to three mountain ridges, farther ones hazier."""
    rng = cv.rng
    n = int(rng.integers(1, 4))
    for i in range(n):
        far = (n - 1 - i) / max(n, 1) * rng.uniform(0.4, 0.8)
        amp = rng.uniform(20, 90) * (1 + 0.3 * i)
        base = rng.uniform(0, 20) + 12 * i
        prof = _ridge_profile(cv.xv, int(rng.integers(1 << 40)), base, amp, rng.uniform(60, 240))
        rock = (rng.uniform(0.15, 0.35), rng.uniform(0.14, 0.3), rng.uniform(0.12, 0.28))
        base_col = rock if rng.uniform() < 0.4 else green
        cv.add(cv.to_rows(np.maximum(prof, 4.0), cv.hy), cv.colour(base_col, far))


def _fg_flat(cv: _FgCanvas, green: tuple) -> None:
    """Low hills on the horizon and a field in front of them."""
    rng = cv.rng
    far_h = _ridge_profile(cv.xv, int(rng.integers(1 << 40)), 3, rng.uniform(2, 10), 300)
    cv.add(cv.to_rows(np.maximum(far_h, 1.0), cv.hy), cv.colour(green, 0.5))
    field_top = cv.hy + rng.uniform(2, 10)
    cv.add(np.full(cv.w, field_top * (cv.h / VIRTUAL_H)), cv.colour((0.25, 0.28, 0.1), 0.0, 0.35, -0.4))


def _fg_trees(cv: _FgCanvas, green: tuple) -> None:
    """A tree line on the horizon, or poking in from the bottom edge when the camera looks up."""
    rng = cv.rng
    ground = cv.hy
    base = _fbm1d(cv.xv / 200, int(rng.integers(1 << 40)), 3) * 6 + rng.uniform(0, 10)
    if cv.hy > VIRTUAL_H:  # looking up: trees poke in from the bottom edge
        ground = VIRTUAL_H
        base = base * 0 + rng.uniform(-10, 10)
    prof = _trees_profile(rng, cv.xv, base, rng.uniform(12, 60))
    cv.add(cv.to_rows(prof, ground), cv.colour(green, 0.0, 0.2, 0.0))


def _skyline(rng: np.random.Generator, xv: np.ndarray, kind: str) -> np.ndarray:
    """Heights (virtual px) of a city skyline, or of a few big buildings seen from below."""
    x = -10.0
    prof = np.zeros(xv.size)
    while x < VIRTUAL_W + 10:
        bw = rng.uniform(10, 60) if kind == "city" else rng.uniform(60, 160)
        bh = rng.lognormal(np.log(30), 0.6) if kind == "city" else rng.uniform(60, 260)
        if kind == "building" and rng.uniform() < 0.6:
            bh = 0.0
        sel = (xv >= x) & (xv < x + bw)
        prof[sel] = np.maximum(prof[sel], bh)
        if bh > 0 and rng.uniform() < 0.15:  # antenna
            ax = x + bw * rng.uniform(0.2, 0.8)
            prof[np.abs(xv - ax) < 1.2] = bh + rng.uniform(8, 25)
        x += bw + (rng.uniform(0, 30) if kind == "building" else rng.uniform(-5, 8))
    if kind == "building" and prof.max() == 0:
        side = xv > VIRTUAL_W * 0.7 if rng.uniform() < 0.5 else xv < VIRTUAL_W * 0.3
        prof[side] = rng.uniform(80, 250)
    return prof


def _fg_buildings(cv: _FgCanvas, kind: str) -> None:
    """A skyline ("city") or big buildings from below ("building"), with lit windows."""
    rng, xv, yv = cv.rng, cv.xv, cv.yv
    ground = min(cv.hy, VIRTUAL_H) if kind == "city" else VIRTUAL_H
    night = cv.light < 0.2
    prof = _skyline(rng, xv, kind)
    wx, wy = rng.uniform(4, 9), rng.uniform(5, 10)
    win = ((xv % wx) < wx * 0.55)[None, :] & ((yv % wy) < wy * 0.55)[:, None]
    cell_on = _lattice(np.floor(yv / wy)[:, None], np.floor(xv / wx)[None, :], cv.tex_key)
    on = cell_on > (1.2 if night else 0.3)
    lit = (win & on).astype(np.float32)
    g = rng.uniform(0.25, 0.5)
    col = cv.colour((g, g * 0.98, g * 0.95), 0.15 if kind == "city" else 0.0, 0.1, 0.0)
    glow = np.asarray((1.0, 0.75, 0.4) if night else (0.55, 0.62, 0.7), np.float32)
    col = col * (1 - lit[..., None] * 0.8) + lit[..., None] * glow * (0.8 if night else 0.35 * cv.light)
    cv.add(cv.to_rows(prof, ground), col.astype(np.float32))


def _fg_water(cv: _FgCanvas, green: tuple) -> dict:
    """A far shore (hills or trees) and the lake in front of it; returns the water description."""
    rng, xv = cv.rng, cv.xv
    shore = rng.uniform()
    if shore < 0.5:
        prof = _ridge_profile(xv, int(rng.integers(1 << 40)), 1.0, rng.uniform(5, 50), rng.uniform(80, 250))
    else:
        prof = _trees_profile(rng, xv, np.zeros_like(xv), rng.uniform(4, 14))
    top = cv.to_rows(np.maximum(prof, 0.5), cv.hy)
    cv.add(top, cv.colour(green, 0.3))
    return {
        "row": cv.hy * (cv.h / VIRTUAL_H),
        "reflect": float(rng.uniform(0.5, 0.85)),
        "tint": np.asarray(_jitter(rng, (0.85, 0.95, 1.0), 0.05), np.float32),
        "ripple": float(rng.uniform(0.5, 3.0)),
        "key": int(rng.integers(1 << 40)),
    }


def _build_foreground(scene: Scene, w: int, h: int, pal: Palette) -> tuple[list[_FgLayer], dict | None]:
    """Static foreground layers (far to near) and, for lakes, the water description."""
    rng = np.random.default_rng(scene.extras["fg_seed"])
    xv = (np.arange(w) + 0.5) * (VIRTUAL_W / w)
    yv = (np.arange(h) + 0.5) * (VIRTUAL_H / h)
    haze = np.asarray(pal.horizon, np.float32)
    cv = _FgCanvas(rng, w, h, xv, yv, scene.horizon_y, haze, pal.fg_light, int(rng.integers(1 << 40)))
    day_green = (rng.uniform(0.04, 0.12), rng.uniform(0.06, 0.15), rng.uniform(0.03, 0.08))
    kind = scene.foreground
    water = None
    if kind == "ridge":
        _fg_ridges(cv, day_green)
    elif kind == "trees":
        _fg_trees(cv, day_green)
    elif kind == "flat":
        _fg_flat(cv, day_green)
    elif kind in ("city", "building"):
        _fg_buildings(cv, kind)
    elif kind == "water":
        water = _fg_water(cv, day_green)
    return cv.layers, water


def _reflect(planes: np.ndarray, water: dict, t: float, w: int, h: int) -> None:
    """Mirror the sky (and far shore) into the rows below the horizon, with rippled horizontal streaks.

    ``planes`` is one frame as (3, h, w) colour planes, changed in place.
    """
    r0 = int(math.ceil(water["row"] - 0.5))
    if r0 >= h:
        return
    wr = np.arange(r0, h)
    src = np.clip(np.round(2 * water["row"] - wr - 1).astype(np.int64), 0, h - 1)
    depth = (wr - water["row"] + 1) / max(h - water["row"], 1)
    shift = water["ripple"] * (w / VIRTUAL_W) * (0.3 + depth) * _fbm1d(wr * 0.9 + 0.25 * t, water["key"], 2)
    xi = np.clip(np.arange(w)[None, :] + np.round(shift)[:, None].astype(np.int64), 0, w - 1)
    dark = (water["reflect"] * (1 - 0.3 * depth)).astype(np.float32)[:, None]
    for c in range(3):
        planes[c, r0:] = planes[c][src[:, None], xi] * (dark * water["tint"][c])
