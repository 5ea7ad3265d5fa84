"""The cloud deck seen in perspective: per-row geometry, evolving noise on the deck, and the opacity and
lighting of each cloud layer.

Perspective (clouds shrink and flatten towards the horizon) makes the horizontal scale depend on the row,
which is not separable; the sky is therefore cut into horizontal bands with a constant scale each, blended
across band borders. Octaves smaller than ~2 pixels are dropped per row, which also keeps the far sky free
of aliasing. Shapes evolve in time because each octave's lattice is rotated between two independent
lattices (``cos(phi) A + sin(phi) B``, which keeps the variance constant) while the wind translates it.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .clouds import CloudLayer
from .noise import NoiseField, _bspline_matrix, _lattice, _mix_key
from .scene import VIRTUAL_H, VIRTUAL_W, Scene


@dataclass
class _Deck:
    """Per-row perspective geometry of the cloud deck on one pixel grid."""

    w: int
    h: int
    xv: np.ndarray  # (w,) virtual x of pixel centres
    elev: np.ndarray  # (h,) elevation of each row, radians
    n_sky: int  # rows 0..n_sky-1 are above the horizon
    Y: np.ndarray  # (n_sky,) depth on the deck (cot elevation)
    s: np.ndarray  # (n_sky,) deck units per virtual pixel, horizontally
    dy: np.ndarray  # (n_sky,) deck units per virtual pixel, vertically
    bands: list  # (row0, row1, scale, weights)
    cx: float


_E_MIN = 0.03  # elevation where the deck is cut off (farther clouds are lost in haze anyway)


def _deck(scene: Scene, w: int, h: int) -> _Deck:
    fovpx = scene.fov / VIRTUAL_W
    xv = (np.arange(w) + 0.5) * (VIRTUAL_W / w)
    yv = (np.arange(h) + 0.5) * (VIRTUAL_H / h)
    elev = (scene.horizon_y - yv) * fovpx
    n_sky = int(np.count_nonzero(elev > 0))
    e = np.clip(elev[:n_sky], _E_MIN, 1.45)
    Y = 1.0 / np.tan(e)
    s = fovpx / np.sin(e)
    dy = fovpx / np.sin(e) ** 2
    bands: list = []
    if n_sky:
        ls = np.log(s)
        lo, hi = float(ls.min()), float(ls.max())
        k = max(1, int(math.ceil((hi - lo) / math.log(1.12))))
        b = (ls - lo) / max(hi - lo, 1e-9) * k
        for j in range(k + 1):
            wgt = np.clip(1.0 - np.abs(b - j), 0.0, 1.0)
            rows = np.nonzero(wgt > 0)[0]
            if rows.size == 0:
                continue
            r0, r1 = int(rows.min()), int(rows.max()) + 1
            bands.append((r0, r1, float(np.exp(lo + (hi - lo) * j / k)), wgt[r0:r1].astype(np.float32)))
    return _Deck(w, h, xv, elev, n_sky, Y, s, dy, bands, VIRTUAL_W / 2)


def _fbm_deck(fld: NoiseField, deck: _Deck, t: np.ndarray) -> np.ndarray:
    """Evolving fBm of ``fld`` on the deck's sky rows for frames ``t``: (T, n_sky, w), ~unit variance."""
    T = t.size
    out = np.zeros((T, deck.n_sky, deck.w), np.float32)
    if deck.n_sky == 0:
        return out
    px_w = VIRTUAL_W / deck.w
    px_h = VIRTUAL_H / deck.h
    norm = np.zeros(deck.n_sky, np.float32)
    ox = fld.wind[0] * t
    oy = fld.wind[1] * t
    for o in range(fld.octaves):
        sc = fld.lacunarity**o
        fx, fy = fld.freq[0] * sc, fld.freq[1] * sc
        # size of one lattice cell in pixels of this grid, per row; fade octaves finer than ~2-3 px
        cell = np.minimum(1.0 / (fx * deck.s * px_w), 1.0 / (fy * deck.dy * px_h))
        cut = np.clip((cell - 1.8) / 1.7, 0.0, 1.0).astype(np.float32)
        if not cut.any():
            break
        amp = np.float32(fld.gain**o)
        norm += (amp * cut) ** 2
        key_a, key_b = _mix_key(fld.key, o, 1), _mix_key(fld.key, o, 2)
        phase = 0.7 * o + fld.evolve * (1.6**o) * t
        cph = np.cos(phase).astype(np.float32)[:, None, None]
        sph = np.sin(phase).astype(np.float32)[:, None, None]
        offx, offy = 31.7 * o + 0.37, 17.3 * o + 0.61
        for r0, r1, sb, wgt in deck.bands:
            cw = cut[r0:r1] * wgt
            if not cw.any():
                continue
            posx = ((deck.xv - deck.cx)[None, :] * sb + ox[:, None]) * fx + offx
            posy = (deck.Y[r0:r1][None, :] + oy[:, None]) * fy + offy
            bx, lx = _bspline_matrix(posx)  # (T, w, nx)
            by, ly = _bspline_matrix(posy)  # (T, nb, ny)
            iy = np.arange(ly, ly + by.shape[-1])[:, None]
            ix = np.arange(lx, lx + bx.shape[-1])[None, :]
            lat = cph * _lattice(iy, ix, key_a)[None] + sph * _lattice(iy, ix, key_b)[None]
            nb, ny, nx = r1 - r0, by.shape[-1], bx.shape[-1]
            if ny * nx * deck.w + nb * ny * deck.w < nb * ny * nx + nb * nx * deck.w:
                res = by @ (lat @ bx.transpose(0, 2, 1))
            else:
                res = (by @ lat) @ bx.transpose(0, 2, 1)
            if o >= fld.turbulence:  # |n| re-centred and re-scaled to the same mean and variance
                res = np.abs(res)
                res -= np.float32(0.383)
                res *= np.float32(1.66)
            out[:, r0:r1] += res * (amp * cw)[None, :, None]
    out /= (np.sqrt(np.maximum(norm, 1e-6)) * np.float32(0.48))[None, :, None]
    return out


def _ndtri(p: float) -> float:
    """Inverse standard normal CDF (threshold that leaves a fraction p of a unit Gaussian below it)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(min(max(p, 1e-4), 1 - 1e-4))


def _noise_grid(w: int, h: int) -> tuple[int, int]:
    """Grid the cloud noise is computed on: half resolution for big frames (noise is smooth at that scale)."""
    if w * h > 200_000:
        return max(1, w // 2), max(1, h // 2)
    return w, h


def _smooth(x: np.ndarray) -> np.ndarray:
    """Smoothstep in place (x already in [0, 1]); soft cloud edges without a visible threshold line."""
    y = np.multiply(x, np.float32(-2.0))
    y += np.float32(3.0)
    y *= x
    y *= x
    return y


def _cloud_fields(
    layer: CloudLayer, scene: Scene, t: np.ndarray, deck_noise: _Deck, w: int, h: int, haze: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Opacity and lighting (both (T, h, w) float32) of one cloud layer for frames ``t``.

    Scalar fields only: the colour is applied per frame later, which keeps the full-resolution RGB work (the
    slow part on a small CPU) to a handful of in-place operations.
    """
    import cv2

    T = t.size
    n = _fbm_deck(layer.field, deck_noise, t)
    if layer.cells is not None:
        cells = _fbm_deck(layer.cells, deck_noise, t)
        n *= np.float32(0.8)
        n += cells * np.float32(layer.cells_mix)
        n *= np.float32(1.0 / math.sqrt(0.64 + layer.cells_mix**2))
    ns = deck_noise.n_sky
    if ns < deck_noise.h:  # below the horizon: repeat the last sky row (only water reflections look there)
        full = np.empty((T, deck_noise.h, deck_noise.w), np.float32)
        full[:, :ns] = n
        full[:, ns:] = n[:, ns - 1 : ns] if ns else 0.0
        n = full
    if (deck_noise.w, deck_noise.h) != (w, h):
        n = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_CUBIC) for f in n])
    thr = np.float32(_ndtri(1.0 - layer.coverage))
    n -= thr  # now: > 0 inside the cloud
    a = np.multiply(n, np.float32(1.0 / layer.softness))
    a += np.float32(0.5)
    np.clip(a, 0.0, 1.0, out=a)
    a = _smooth(a)
    a *= (np.float32(layer.opacity) * (1 - haze * np.float32(0.85)))[None, :, None]
    # Lighting, cheaply: a large-scale vertical gradient (bright tops when lit from above, glowing undersides
    # at sunset), a high-pass of the noise as small bumps, and darkening with thickness.
    k = max(1, int(round(6 * h / VIRTUAL_H)))
    light = np.empty_like(n)
    if h > k:
        np.subtract(n[:, k:], n[:, :-k], out=light[:, k:])  # > 0 where the cloud gets denser downwards
        light[:, :k] = light[:, k : k + 1]
    else:
        light[:] = 0.0
    light *= np.float32(layer.relief * 0.35 * (6 * h / VIRTUAL_H) / k)
    sigma = 4.0 * w / VIRTUAL_W
    if layer.detail and sigma > 0.4:
        for i in range(T):
            blur = cv2.GaussianBlur(n[i], (0, 0), sigma)
            light[i] += (n[i] - blur) * np.float32(layer.detail)
    np.clip(n, 0.0, 1.0 / 0.6, out=n)
    n *= np.float32(0.6 * layer.darken)  # thickness darkens
    light -= n
    light += np.float32(0.75)
    np.clip(light, 0.0, 1.0, out=light)
    return a, light
