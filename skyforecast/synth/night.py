"""Night light: stars turning around the celestial pole, and aurora curtains."""

from __future__ import annotations

import math

import numpy as np

from .noise import _fbm1d
from .palettes import _jitter
from .scene import VIRTUAL_H, VIRTUAL_W, Scene


def _stars(scene: Scene, t: np.ndarray, w: int, h: int) -> np.ndarray:
    """(T, h, w) star light, splatted bilinearly; stars turn around the pole as the frames go by."""
    rng = np.random.default_rng(scene.extras["star_seed"])
    px, py = scene.star_pole
    corners = np.array([[0, 0], [VIRTUAL_W, 0], [0, VIRTUAL_H], [VIRTUAL_W, VIRTUAL_H]])
    d = np.hypot(corners[:, 0] - px, corners[:, 1] - py)
    inside = 0 <= px <= VIRTUAL_W and 0 <= py <= VIRTUAL_H
    r_lo = 0.0 if inside else max(0.0, float(d.min()) - VIRTUAL_H)
    r_hi = float(d.max()) + 10
    if inside:
        a_lo, a_hi = 0.0, 2 * math.pi
    else:
        ang = np.arctan2(corners[:, 1] - py, corners[:, 0] - px)
        ang = np.unwrap(np.sort(ang))
        a_lo, a_hi = float(ang.min()) - 0.6, float(ang.max()) + 0.6
        if a_hi - a_lo > 2 * math.pi:
            a_lo, a_hi = 0.0, 2 * math.pi
    area = 0.5 * (a_hi - a_lo) * (r_hi**2 - r_lo**2)
    density = rng.uniform(0.002, 0.006)
    n = int(min(area * density, 60000))
    r = np.sqrt(rng.uniform(r_lo**2, r_hi**2, n))
    a = rng.uniform(a_lo, a_hi, n)
    flux = np.minimum(0.35 * rng.uniform(0.0, 1.0, n) ** -1.3, 4.0) * rng.uniform(0.3, 1.0, n)
    tint = np.where(rng.uniform(size=n) < 0.5, 1.0, 0.85)
    flux = (flux * tint * (w * h) / (VIRTUAL_W * VIRTUAL_H)).astype(np.float32)
    out = np.zeros((t.size, h * w), np.float32)
    for i, ti in enumerate(t):
        th = a + scene.star_speed * ti
        x = (px + r * np.cos(th)) * (w / VIRTUAL_W) - 0.5
        y = (py + r * np.sin(th)) * (h / VIRTUAL_H) - 0.5
        ok = (x > -1) & (x < w) & (y > -1) & (y < h)
        x, y, f = x[ok], y[ok], flux[ok]
        twinkle = 1.0 + 0.15 * np.sin(ti * 1.7 + r[ok] * 0.37)
        f = f * twinkle.astype(np.float32)
        x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
        fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
        for dx, dy, wgt in (
            (0, 0, (1 - fx) * (1 - fy)),
            (1, 0, fx * (1 - fy)),
            (0, 1, (1 - fx) * fy),
            (1, 1, fx * fy),
        ):
            xi, yi = x0 + dx, y0 + dy
            keep = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out[i] += np.bincount(yi[keep] * w + xi[keep], weights=(f * wgt)[keep], minlength=h * w).astype(
                np.float32
            )
    return out.reshape(t.size, h, w)


def _aurora(scene: Scene, t: np.ndarray, w: int, h: int) -> np.ndarray:
    """(3, T, h, w) additive aurora light: folded curtains with vertical rays, green below, purple above."""
    rng = np.random.default_rng(scene.extras["star_seed"] + 1)
    xv = (np.arange(w) + 0.5) * (VIRTUAL_W / w)
    yv = (np.arange(h) + 0.5) * (VIRTUAL_H / h)
    out = np.zeros((3, t.size, h, w), np.float32)
    for c in range(int(rng.integers(1, 3))):
        key = int(rng.integers(1 << 40))
        base0 = scene.horizon_y - rng.uniform(40, 140) - 50 * c
        amp = rng.uniform(15, 60)
        height = rng.uniform(60, 180)
        strength = rng.uniform(0.5, 1.1) / (1 + c)
        green = np.asarray(_jitter(rng, (0.25, 1.0, 0.45), 0.1), np.float32)
        top = np.asarray(_jitter(rng, (0.7, 0.25, 0.8), 0.2), np.float32)
        f1, f2, fr = rng.uniform(150, 400), rng.uniform(60, 200), rng.uniform(4, 12)
        v1, v2, vr = rng.normal(0, 0.03), rng.normal(0, 0.05), rng.uniform(0.05, 0.2)
        for i, ti in enumerate(t):
            base = base0 + amp * _fbm1d(xv / f1 + v1 * ti, key, 3)
            fold = np.clip(0.5 + 0.6 * _fbm1d(xv / f2 + v2 * ti, key + 1, 3), 0, 1) ** 2
            rays = np.clip(0.5 + 0.5 * _fbm1d(xv / fr + vr * ti, key + 2, 2), 0, 1) ** 2
            inten = (strength * fold * (0.35 + 0.65 * rays)).astype(np.float32)
            dy = (base[None, :] - yv[:, None]).astype(np.float32)  # >0 above the lower edge
            hgt = height * (0.7 + 0.6 * fold)[None, :]
            prof = np.where(dy > 0, np.exp(-dy / hgt), np.exp(-((dy / 6.0) ** 2))).astype(np.float32)
            u = np.clip(dy / (1.2 * hgt), 0, 1).astype(np.float32)
            light = inten[None, :] * prof
            for ch in range(3):
                out[ch, i] += light * (green[ch] + (top[ch] - green[ch]) * u)
    return out
