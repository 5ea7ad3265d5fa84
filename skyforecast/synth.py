"""Procedural sky time-lapses in the Sky Timelapse layout, for training without the real data set.

The real training set (Sky Timelapse, 35k clips) cannot be redistributed, so this module renders look-alike
clips: daytime clouds of several kinds on perspective cloud decks that drift with the wind and change shape,
overcast decks, dusk and dawn colour ramps, starry nights turning around the celestial pole, aurora curtains,
and a static foreground (ridges, tree lines, buildings, water that mirrors the sky).

How it stays fast with numpy alone: every noise field is *value noise on a hashed integer lattice*, smoothed
with a cubic B-spline. B-spline interpolation is separable, so one octave of one frame is two small matrix
products (rows x lattice) @ (lattice) @ (lattice x columns) that BLAS does for all frames at once. Perspective
(clouds shrink and flatten towards the horizon) makes the horizontal scale depend on the row, which is not
separable; the sky is therefore cut into horizontal bands with a constant scale each, blended across band
borders. Octaves smaller than ~2 pixels are dropped per row, which also keeps the far sky free of aliasing.
Shapes evolve in time because each octave's lattice is rotated between two independent lattices
(``cos(phi) A + sin(phi) B``, which keeps the variance constant) while the wind translates it.

Everything is a closed-form function of the absolute frame index, so consecutive clips of one scene continue
seamlessly, and every random choice comes from the scene seed, so output is identical whatever the number of
worker processes.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

import numpy as np

__all__ = [
    "FAMILIES",
    "DatasetSummary",
    "RenderedClip",
    "Scene",
    "clip_seed",
    "make_scene",
    "render_clip",
    "render_clip_with_info",
    "write_dataset",
]

#: Scene families and how often :func:`make_scene` draws each (roughly the mix seen in Sky Timelapse:
#: mostly daytime clouds, a good share of sunsets, fewer nights).
FAMILIES: dict[str, float] = {
    "cumulus": 0.18,
    "altocumulus": 0.18,
    "cirrus": 0.10,
    "overcast": 0.14,
    "dusk": 0.22,
    "night": 0.07,
    "aurora": 0.06,
}

#: Every scene is composed on this virtual 640x360 canvas and then sampled at the requested size, so a
#: 128x128 render looks like a 640x360 render squashed to a square (which is what the trainer does).
VIRTUAL_W, VIRTUAL_H = 640.0, 360.0

_CHUNK_PIXELS = 2_000_000  # pixels x frames rendered together: amortises Python overhead, bounds memory
_MASK64 = (1 << 64) - 1
_PREVIEW = 128  # side of the preview render used to calibrate motion


# ---------------------------------------------------------------------------------------------------------
# hashed-lattice value noise
# ---------------------------------------------------------------------------------------------------------


def _mix_key(*parts: int) -> int:
    """Combine integers into one 64-bit key (splitmix64 steps); used to derive per-field lattice keys."""
    z = 0x243F6A8885A308D3
    for p in parts:
        z = (z ^ (int(p) & _MASK64)) & _MASK64
        z = (z + 0x9E3779B97F4A7C15) & _MASK64
        z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _MASK64
        z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _MASK64
        z ^= z >> 31
    return z


def _lattice(iy: np.ndarray, ix: np.ndarray, key: int) -> np.ndarray:
    """Pseudo-random values with unit variance at integer lattice points (broadcasting iy against ix).

    A hash instead of a stored random array means the lattice is unbounded (no visible tiling however far the
    wind carries the clouds) and only the cells a frame actually touches are ever computed.
    """
    z = iy.astype(np.int64).astype(np.uint64) * np.uint64(0xC2B2AE3D27D4EB4F)
    z = z ^ (ix.astype(np.int64).astype(np.uint64) * np.uint64(0x9E3779B97F4A7C15))
    z = z ^ np.uint64(key)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    z = z ^ (z >> np.uint64(31))
    u = (z >> np.uint64(40)).astype(np.float32) * np.float32(1.0 / (1 << 24))
    return (u - np.float32(0.5)) * np.float32(2.0 * math.sqrt(3.0))


def _bspline_weights(f: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Cubic B-spline weights of the 4 lattice points around fractional position f (C2-smooth noise)."""
    f2 = f * f
    f3 = f2 * f
    w0 = (1.0 - f) ** 3 / 6.0
    w1 = (3.0 * f3 - 6.0 * f2 + 4.0) / 6.0
    w2 = (-3.0 * f3 + 3.0 * f2 + 3.0 * f + 1.0) / 6.0
    w3 = f3 / 6.0
    return w0, w1, w2, w3


def _bspline_matrix(pos: np.ndarray) -> tuple[np.ndarray, int]:
    """Interpolation matrix for positions ``pos`` (..., n) in lattice units.

    Returns (M, lo) with M of shape (..., n, m): M[..., i, j] is the weight of lattice index lo + j, so
    ``M @ values[lo:lo+m]`` is the smooth noise at ``pos``.
    """
    i = np.floor(pos)
    f = (pos - i).astype(np.float32)
    i = i.astype(np.int64)
    lo = int(i.min()) - 1
    m = int(i.max()) - lo + 3
    mat = np.zeros(pos.shape + (m,), np.float32)
    flat = mat.reshape(-1)
    start = np.arange(pos.size, dtype=np.int64) * m + (i - lo - 1).reshape(-1)
    for k, w in enumerate(_bspline_weights(f)):
        flat[start + k] = w.reshape(-1)
    return mat, lo


def _noise1d(pos: np.ndarray, key: int) -> np.ndarray:
    """Smooth 1-D value noise (unit-ish variance) at float positions ``pos`` of any shape."""
    i = np.floor(pos)
    f = (pos - i).astype(np.float32)
    i = i.astype(np.int64)
    zero = np.zeros_like(i)
    out = np.zeros(pos.shape, np.float32)
    for k, w in enumerate(_bspline_weights(f)):
        out += w * _lattice(zero, i - 1 + k, key)
    return out * np.float32(1.0 / 0.69)


def _fbm1d(pos: np.ndarray, key: int, octaves: int = 4, gain: float = 0.5) -> np.ndarray:
    """Multi-octave 1-D noise, normalised to roughly unit variance."""
    out = np.zeros(pos.shape, np.float32)
    norm = 0.0
    for o in range(octaves):
        a = gain**o
        out += np.float32(a) * _noise1d(pos * (2.03**o) + 17.3 * o, _mix_key(key, o))
        norm += a * a
    return out / np.float32(math.sqrt(norm))


def _static_noise(h: int, w: int, cells: tuple[float, float], key: int, octaves: int = 4) -> np.ndarray:
    """A still 2-D fBm image (h, w) with ``cells`` lattice cells across (x, y) at the first octave."""
    out = np.zeros((h, w), np.float32)
    norm = 0.0
    for o in range(octaves):
        s = 2.0**o
        if o and (cells[0] * s > w / 2 or cells[1] * s > h / 2):
            break  # finer than the pixels: invisible, and the lattice would only cost time
        bx, lx = _bspline_matrix((np.arange(w) + 0.5) / w * cells[0] * s + 11.1 * o)
        by, ly = _bspline_matrix((np.arange(h) + 0.5) / h * cells[1] * s + 7.7 * o)
        lat = _lattice(
            np.arange(ly, ly + by.shape[-1])[:, None], np.arange(lx, lx + bx.shape[-1])[None, :], key + o
        )
        out += np.float32(0.5**o) * (by @ lat @ bx.T)
        norm += 0.25**o
    return out / np.float32(math.sqrt(norm) * 0.48)


# ---------------------------------------------------------------------------------------------------------
# scene description
# ---------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class NoiseField:
    """One evolving multi-octave noise field on the cloud deck (plane units = cloud-deck heights)."""

    key: int
    freq: tuple[float, float]  # lattice cells per plane unit (x, y) at octave 0
    octaves: int
    gain: float
    wind: tuple[float, float]  # plane units per frame
    evolve: float  # lattice rotation, radians per frame at octave 0 (finer octaves change faster)
    lacunarity: float = 2.0
    turbulence: int = 99  # octaves from this index on use |noise|: puffy cauliflower bumps, cell patterns


@dataclass(frozen=True)
class CloudLayer:
    """A cloud deck: a noise field, how it is thresholded into cloud, and how the cloud is lit."""

    field: NoiseField
    coverage: float  # fraction of the deck that is cloud
    softness: float  # width of the cloud edge, in noise standard deviations
    opacity: float
    lit: tuple[float, float, float]  # colour of the sunlit side
    shade: tuple[float, float, float]  # colour of the thick/shadowed parts
    relief: float  # >0: lit from above (bright tops), <0: lit from below (sunset undersides)
    darken: float  # how much thickness darkens the cloud
    cells: NoiseField | None = None  # optional fine cell pattern mixed in (mackerel sky)
    cells_mix: float = 0.0
    detail: float = 0.3  # strength of small-scale light/shadow bumps inside the cloud


@dataclass(frozen=True)
class Palette:
    """Sky colours at one moment; dusk scenes interpolate between two of them over time."""

    zenith: tuple[float, float, float]
    mid: tuple[float, float, float]
    horizon: tuple[float, float, float]
    glow: tuple[float, float, float]
    glow_strength: float
    fg_light: float  # how bright the foreground is lit (day 1, dusk ~0.2, night ~0.05)


@dataclass(frozen=True)
class Scene:
    """Every random choice of one scene; rendering is a deterministic function of this and the frame index."""

    seed: int
    family: str
    fov: float  # horizontal field of view, radians
    horizon_y: float  # row of the horizon on the virtual 640x360 canvas (> 360: camera tilted up)
    palette_a: Palette
    palette_b: Palette
    palette_rate: float  # fraction of the a -> b ramp per frame
    palette_start: float
    sun: tuple[float, float]  # (x on the virtual canvas, elevation in radians)
    layers: tuple[CloudLayer, ...]
    exposure: tuple[float, float, float, float]  # log-gain: offset, drift per frame, wobble amp, wobble freq
    foreground: str
    stars: bool
    star_pole: tuple[float, float]  # virtual canvas position of the celestial pole
    star_speed: float  # radians per frame
    aurora: bool
    vignette: float
    side_gradient: float
    haze_scale: float  # radians of elevation over which clouds fade into the horizon haze
    extras: dict = field(default_factory=dict, compare=False)


def _jitter(rng: np.random.Generator, rgb: tuple[float, float, float], amount: float) -> tuple:
    c = np.clip(np.asarray(rgb) * np.exp(rng.normal(0.0, amount, 3)) * np.exp(rng.normal(0.0, amount)), 0, 1)
    return tuple(float(v) for v in c)


def _day_palette(rng: np.random.Generator, overcast: bool = False) -> Palette:
    if overcast:
        g = rng.uniform(0.62, 0.9)
        return Palette(
            _jitter(rng, (g * 0.88, g * 0.9, g * 0.95), 0.04),
            _jitter(rng, (g * 0.95, g * 0.96, g), 0.03),
            _jitter(rng, (g, g, g * 0.98), 0.03),
            (1.0, 0.98, 0.95),
            rng.uniform(0.0, 0.08),
            rng.uniform(0.5, 0.8),
        )
    deep = rng.uniform(0.0, 1.0)
    zen = (0.08 + 0.14 * (1 - deep), 0.22 + 0.2 * (1 - deep), 0.55 + 0.3 * (1 - deep) * 0.5 + 0.15 * deep)
    pale = rng.uniform(0.1, 0.55)  # real skies are often hazy and much less saturated than a clean blue

    def wash(c: tuple) -> tuple:
        g = sum(c) / 3.0
        return tuple(v * (1 - pale) + (g + 0.1) * pale for v in c)

    return Palette(
        _jitter(rng, wash(zen), 0.08),
        _jitter(rng, wash((0.35, 0.55, 0.85)), 0.08),
        _jitter(rng, wash((0.72, 0.82, 0.93)), 0.05),
        _jitter(rng, (1.0, 0.97, 0.9), 0.03),
        rng.uniform(0.1, 0.5),
        rng.uniform(0.7, 1.0),
    )


def _dusk_palettes(rng: np.random.Generator) -> tuple[Palette, Palette]:
    """An earlier and a later sunset palette (swapped for dawn)."""
    warm = rng.uniform(0.0, 1.0)  # 0: pink/purple sunset, 1: golden
    hor = (1.0, 0.55 + 0.25 * warm, 0.25 + 0.15 * (1 - warm))
    early = Palette(
        _jitter(rng, (0.25, 0.38, 0.68), 0.1),
        _jitter(rng, (0.75, 0.62, 0.62 - 0.2 * warm), 0.08),
        _jitter(rng, hor, 0.05),
        _jitter(rng, (1.0, 0.8, 0.5), 0.05),
        rng.uniform(0.4, 0.9),
        rng.uniform(0.25, 0.45),
    )
    late = Palette(
        _jitter(rng, (0.08, 0.1, 0.28), 0.12),
        _jitter(rng, (0.42, 0.25, 0.4), 0.1),
        _jitter(rng, (0.95, 0.42 + 0.15 * warm, 0.2), 0.06),
        _jitter(rng, (1.0, 0.5, 0.25), 0.05),
        rng.uniform(0.25, 0.6),
        rng.uniform(0.05, 0.15),
    )
    return early, late


def _night_palette(rng: np.random.Generator) -> Palette:
    b = rng.uniform(1.0, 2.6)  # long exposures make night skies anything from black to deep blue
    city = rng.uniform(0.0, 1.0) < 0.4
    hor = (0.22, 0.16, 0.12) if city else (0.1, 0.13, 0.24)
    return Palette(
        _jitter(rng, (0.012 * b, 0.02 * b, 0.06 * b), 0.15),
        _jitter(rng, (0.03 * b, 0.045 * b, 0.11 * b), 0.15),
        _jitter(rng, tuple(v * b for v in hor), 0.15),
        (0.3, 0.3, 0.35),
        rng.uniform(0.0, 0.1),
        rng.uniform(0.02, 0.06),
    )


def _field(
    rng: np.random.Generator,
    key: int,
    freq: tuple[float, float],
    wind_speed: float,
    octaves: int = 6,
    gain: float = 0.5,
    evolve: float = 0.02,
    turbulence: int = 99,
) -> NoiseField:
    ang = rng.uniform(0, 2 * math.pi)
    return NoiseField(
        key=key,
        freq=freq,
        octaves=octaves,
        gain=gain,
        wind=(wind_speed * math.cos(ang), wind_speed * math.sin(ang)),
        evolve=evolve,
        lacunarity=float(rng.uniform(1.9, 2.15)),
        turbulence=turbulence,
    )


def _cloud_colours(rng: np.random.Generator, family: str) -> tuple[tuple, tuple, float]:
    """(lit colour, shadow colour, relief sign) for clouds of the given family."""
    if family == "dusk":
        lit = _jitter(rng, (1.0, 0.62, 0.42), 0.08)
        shade = _jitter(rng, (0.26, 0.22, 0.3), 0.15)
        return lit, shade, -1.0
    if family in ("night", "aurora"):
        lit = _jitter(rng, (0.12, 0.11, 0.12), 0.3)
        return lit, tuple(v * 0.4 for v in lit), 0.3
    if family == "overcast":
        g = rng.uniform(0.75, 0.95)
        lit = _jitter(rng, (g, g, g * 1.02), 0.02)
        s = rng.uniform(0.4, 0.6)
        return lit, _jitter(rng, (s, s * 1.02, s * 1.08), 0.03), 1.0
    lit = _jitter(rng, (0.97, 0.97, 0.98), 0.02)
    s = rng.uniform(0.45, 0.7)
    return lit, _jitter(rng, (s * 0.9, s * 0.95, s * 1.05), 0.04), 1.0


# (lit colour, shadow colour, relief sign) of one deck, as _cloud_colours draws them
_Colours = tuple[tuple, tuple, float]


def _deck_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours, r: dict) -> CloudLayer:
    """A turbulent deck: cumulus heaps and overcast share the recipe and differ in the ranges ``r`` draws
    from (in this order: frequency, stretch, speed, roughness, cover, softness, relief, shading, detail)."""
    lit, shade, relief_sign = colours
    u = rng.uniform
    f = u(*r["freq"])
    fld = _field(
        rng, key, (f, f * u(*r["stretch"])), motion * u(*r["speed"]), 7, u(*r["rough"]), turbulence=r["turb"]
    )
    return CloudLayer(
        fld,
        u(*r["cover"]),
        u(*r["soft"]),
        r["opacity"],
        lit,
        shade,
        relief_sign * u(*r["relief"]),
        u(0.5, 1.0),
        detail=u(*r["detail"]),
    )


_CUMULUS = dict(
    freq=(0.9, 2.4), stretch=(0.8, 1.3), speed=(0.5, 1.0), rough=(0.58, 0.68), turb=2,
    cover=(0.25, 0.6), soft=(0.1, 0.3), opacity=0.97, relief=(1.5, 3.0), detail=(1.0, 2.0),
)  # fmt: skip
_OVERCAST = dict(
    freq=(0.6, 1.6), stretch=(0.8, 1.5), speed=(0.5, 1.2), rough=(0.5, 0.62), turb=3,
    cover=(0.8, 0.99), soft=(0.5, 1.2), opacity=1.0, relief=(0.8, 2.0), detail=(0.6, 1.4),
)  # fmt: skip


def _cumulus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Puffy heaps: turbulent octaves from the third on give the cauliflower tops."""
    return _deck_layer(rng, key, motion, colours, _CUMULUS)


def _altocumulus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Patches of small rounded cells (mackerel sky, stratocumulus)."""
    lit, shade, relief_sign = colours
    u = rng.uniform
    f = u(0.5, 1.2)
    cf = f * u(4.0, 9.0)
    fld = _field(rng, key, (f, f), motion * u(0.3, 0.6), 3, 0.5)
    cells = NoiseField(
        _mix_key(key, 99),
        (cf, cf * u(0.6, 1.6)),
        5,
        u(0.5, 0.62),
        fld.wind,
        fld.evolve * 1.5,
        float(u(1.9, 2.15)),
        turbulence=0,
    )
    return CloudLayer(
        fld,
        u(0.35, 0.75),
        u(0.12, 0.3),
        u(0.85, 0.97),
        lit,
        shade,
        relief_sign * u(0.5, 1.5),
        u(0.4, 0.9),
        cells=cells,
        cells_mix=u(0.8, 1.4),
        detail=u(0.8, 1.6),
    )


def _cirrus_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Translucent patches of fine fibres: an isotropic patch field times streaks."""
    lit, _, relief_sign = colours
    u = rng.uniform
    f = u(0.4, 1.0)
    aniso = u(5.0, 14.0)
    cf = f * u(2.0, 4.0)
    freq = (cf, cf * aniso) if u() < 0.85 else (cf * aniso, cf)
    fld = _field(rng, key, (f, f), motion * u(0.5, 1.0), 3, 0.5)
    fibres = NoiseField(
        _mix_key(key, 77), freq, 6, u(0.55, 0.68), fld.wind, fld.evolve * 1.3, float(u(1.9, 2.15))
    )
    return CloudLayer(
        fld,
        u(0.15, 0.4),
        u(0.5, 0.9),
        u(0.3, 0.6),
        lit,
        lit,
        0.3 * relief_sign,
        0.1,
        cells=fibres,
        cells_mix=u(0.8, 1.4),
        detail=0.4,
    )


def _overcast_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """A deck covering (nearly) the whole sky, with soft edges where it breaks."""
    return _deck_layer(rng, key, motion, colours, _OVERCAST)


def _scud_layer(rng: np.random.Generator, key: int, motion: float, colours: _Colours) -> CloudLayer:
    """Low ragged dark cloud under an overcast deck, faster; its own grey, not the family's colours."""
    u = rng.uniform
    f = u(1.5, 3.0)
    fld = _field(rng, key, (f, f), motion * u(1.2, 2.0), 7, 0.58, turbulence=2)
    g = u(0.35, 0.55)
    return CloudLayer(
        fld,
        u(0.2, 0.45),
        u(0.2, 0.4),
        0.9,
        (g * 1.2, g * 1.2, g * 1.25),
        (g * 0.7, g * 0.72, g * 0.78),
        0.8,
        0.5,
        detail=0.4,
    )


_LAYER_KINDS: dict[str, Callable[[np.random.Generator, int, float, _Colours], CloudLayer]] = {
    "cumulus": _cumulus_layer,
    "altocumulus": _altocumulus_layer,
    "cirrus": _cirrus_layer,
    "overcast": _overcast_layer,
    "scud": _scud_layer,
}


def _make_layer(rng: np.random.Generator, kind: str, family: str, key: int, motion: float) -> CloudLayer:
    """One cloud deck of the given kind. ``motion`` sets the wind (deck units per frame) before scaling.

    The family's colours are drawn first for every kind (scud included), so the random stream, and with it
    every scene of a seed, stays the same whichever kind is drawn.
    """
    colours = _cloud_colours(rng, family)
    make = _LAYER_KINDS.get(kind)
    if make is None:
        raise ValueError(f"unknown cloud kind {kind!r}")
    return make(rng, key, motion, colours)


def _draw_family(rng: np.random.Generator, family: str | None) -> str:
    """The scene family: drawn with the FAMILIES weights (always, so the stream does not depend on a forced
    family), then replaced by ``family`` when one is given."""
    names = list(FAMILIES)
    probs = np.array([FAMILIES[n] for n in names])
    drawn = names[int(rng.choice(len(names), p=probs / probs.sum()))]
    family = family or drawn
    if family not in FAMILIES:
        raise ValueError(f"unknown family {family!r}; choose from {', '.join(FAMILIES)}")
    return family


def _draw_view(rng: np.random.Generator, family: str) -> tuple[float, float, bool]:
    """(field of view, horizon row on the virtual canvas, whether the camera is tilted up)."""
    fov = float(rng.uniform(0.9, 1.4))
    fovpx = fov / VIRTUAL_W
    up_view = rng.uniform() < (0.45 if family not in ("night", "aurora") else 0.1)
    if up_view:  # camera tilted up: horizon below the frame
        bottom_elev = rng.uniform(0.1, 0.45)
        horizon_y = VIRTUAL_H + bottom_elev / fovpx
        horizon_y = min(horizon_y, 1.35 / fovpx)
    else:
        horizon_y = VIRTUAL_H * rng.uniform(0.72, 0.97)
    return fov, horizon_y, up_view


def _draw_light(
    rng: np.random.Generator, family: str, sun_x: float
) -> tuple[Palette, Palette, tuple[float, float]]:
    """The two palettes of the colour ramp (the same one outside dusk) and the sun (x, elevation)."""
    if family in ("cumulus", "altocumulus", "cirrus"):
        pal = _day_palette(rng)
        return pal, pal, (sun_x, float(rng.uniform(0.3, 1.2)))
    if family == "overcast":
        pal = _day_palette(rng, overcast=True)
        return pal, pal, (sun_x, float(rng.uniform(0.3, 1.0)))
    if family == "dusk":
        pal, pal_b = _dusk_palettes(rng)
        sun_e = float(rng.uniform(-0.08, 0.06))
        return pal, pal_b, (float(rng.uniform(0.1, 0.9) * VIRTUAL_W), sun_e)
    pal = _night_palette(rng)  # night / aurora
    return pal, pal, (sun_x, -0.5)


def _draw_decks(rng: np.random.Generator, family: str, seed: int, motion: float) -> list[CloudLayer]:
    """The cloud decks of the family, far to near (a high cirrus veil, when there is one, comes first)."""
    keys = iter(_mix_key(seed, 1000 + i) for i in range(16))

    def deck(kind: str, speed: float = motion) -> CloudLayer:
        return _make_layer(rng, kind, family, next(keys), speed)

    layers: list[CloudLayer] = []
    if family == "cumulus":
        if rng.uniform() < 0.4:
            layers.append(deck("cirrus"))
        layers.append(deck("cumulus"))
    elif family in ("altocumulus", "cirrus"):
        layers.append(deck(family))
        if rng.uniform() < 0.3:
            layers.append(deck("cumulus"))
    elif family == "overcast":
        layers.append(deck("overcast"))
        if rng.uniform() < 0.5:
            layers.append(deck("scud"))
    elif family == "dusk":
        kinds = ["cumulus", "altocumulus", "cirrus", "overcast"]
        k = kinds[int(rng.choice(4, p=[0.3, 0.35, 0.25, 0.1]))]
        layers.append(deck(k))
        if k == "overcast":
            layers[-1] = replace(layers[-1], coverage=float(rng.uniform(0.55, 0.8)))
        if rng.uniform() < 0.35:
            layers.insert(0, deck("cirrus"))
    elif rng.uniform() < (0.45 if family == "night" else 0.2):  # night / aurora: a few clouds, slower
        kind = ["cumulus", "altocumulus", "cirrus"][int(rng.integers(3))]
        layers.append(deck(kind, motion * 0.7))
    return layers


def _with_evolve(layers: list[CloudLayer], evolve: float) -> list[CloudLayer]:
    """The decks with how fast their shapes change relative to their drift (varies a lot in real clips)."""
    return [
        replace(
            ly,
            field=replace(ly.field, evolve=evolve),
            cells=replace(ly.cells, evolve=evolve * 1.4) if ly.cells else None,
        )
        for ly in layers
    ]


def _draw_ramp(
    rng: np.random.Generator, family: str, pal: Palette, pal_b: Palette
) -> tuple[Palette, Palette, float, float]:
    """(palette a, palette b, ramp rate per frame, ramp start): a dusk ramp, or none (rate 0)."""
    if family != "dusk":
        return pal, pal_b, 0.0, 0.0
    palette_rate = float(rng.uniform(0.002, 0.008))
    palette_start = float(rng.uniform(0.0, 0.6))
    if rng.uniform() < 0.4:  # dawn: the same ramp run backwards
        pal, pal_b = pal_b, pal
    return pal, pal_b, palette_rate, palette_start


def _draw_exposure(rng: np.random.Generator, family: str) -> tuple[float, float, float, float]:
    """Log-gain of the camera: offset, drift per frame, wobble amplitude, wobble frequency."""
    drift = float(rng.normal(0.0, 0.0025))
    if rng.uniform() < 0.1:
        drift *= 4.0  # sometimes a large exposure change (sun behind a cloud bank, auto exposure)
    return (
        float(rng.normal(0.15 if family in ("cumulus", "altocumulus", "cirrus", "overcast") else 0.05, 0.12)),
        drift,
        float(abs(rng.normal(0, 0.02))),
        float(rng.uniform(0.05, 0.2)),
    )


def _draw_foreground_kind(rng: np.random.Generator, up_view: bool) -> str:
    """What stands in front of the sky; a camera tilted up sees little of the ground."""
    fg_choices = ["none", "trees", "building"] if up_view else ["ridge", "trees", "city", "water", "flat"]
    fg_probs = np.array([0.55, 0.3, 0.15]) if up_view else np.array([0.28, 0.25, 0.17, 0.15, 0.15])
    return fg_choices[int(rng.choice(len(fg_choices), p=fg_probs))]


def make_scene(seed: int, family: str | None = None) -> Scene:
    """Draw every parameter of one scene from ``seed`` (optionally forcing the family).

    Separate from rendering so that tests and tools can inspect or tweak a scene, and so that consecutive
    clips of one video share it exactly. The helpers draw from one random stream in a fixed order: changing
    that order changes every scene of every seed.
    """
    rng = np.random.default_rng(np.random.SeedSequence([int(seed) & _MASK64, 0x5C7]))
    family = _draw_family(rng, family)
    fov, horizon_y, up_view = _draw_view(rng, family)

    # Wind in deck units per frame and shape change in radians per frame; both are rescaled at the end by
    # _calibrate_motion, so only their spread and their ratio matter here.
    motion = float(np.exp(rng.normal(np.log(0.02), 0.3)))
    evolve = float(np.exp(rng.normal(np.log(0.02), 0.4)))

    pal, pal_b, sun = _draw_light(rng, family, float(rng.uniform(-0.4, 1.4) * VIRTUAL_W))
    layers = _with_evolve(_draw_decks(rng, family, seed, motion), evolve)
    pal, pal_b, palette_rate, palette_start = _draw_ramp(rng, family, pal, pal_b)
    exposure = _draw_exposure(rng, family)
    foreground = _draw_foreground_kind(rng, up_view)

    lat = rng.uniform(0.35, 1.1)
    pole = (float(rng.uniform(-1.0, 2.0) * VIRTUAL_W), float(horizon_y - lat / (fov / VIRTUAL_W)))
    # Target motion, drawn to match real Sky Timelapse clips: mean |frame t+1 - frame t| at 128x128 of real
    # clips is ~0.0097 (0.004 .. 0.016 over the 16 clips in real-sky-dev).
    motion_target = float(np.clip(np.exp(rng.normal(np.log(0.0095), 0.35)), 0.0035, 0.02))
    scene = Scene(
        seed=int(seed),
        family=family,
        fov=fov,
        horizon_y=float(horizon_y),
        palette_a=pal,
        palette_b=pal_b,
        palette_rate=palette_rate,
        palette_start=palette_start,
        sun=sun,
        layers=tuple(layers),
        exposure=exposure,
        foreground=foreground,
        stars=family in ("night", "aurora"),
        star_pole=pole,
        star_speed=float(rng.uniform(0.0008, 0.0025)) * (1 if rng.uniform() < 0.5 else -1),
        aurora=family == "aurora",
        vignette=float(rng.uniform(0.0, 0.35)),
        side_gradient=float(rng.normal(0.0, 0.12)),
        haze_scale=float(rng.uniform(0.05, 0.14)),
        extras={"fg_seed": int(rng.integers(1 << 62)), "star_seed": int(rng.integers(1 << 62))},
    )
    if layers and family not in ("night", "aurora"):
        scene = _calibrate_motion(scene, motion_target)
    return scene


def _scaled_layer(layer: CloudLayer, k: float) -> CloudLayer:
    def fld(f: NoiseField) -> NoiseField:
        return replace(f, wind=(f.wind[0] * k, f.wind[1] * k), evolve=f.evolve * k)

    return replace(layer, field=fld(layer.field), cells=fld(layer.cells) if layer.cells else None)


def _calibrate_motion(scene: Scene, target: float) -> Scene:
    """Scale wind and shape change so the clip's mean frame difference at 128x128 is about ``target``.

    How much a wind speed moves the pixels depends on cloud size, coverage, contrast and the view, so instead
    of guessing, render a tiny 3-frame preview and rescale (motion is close to linear in the speed). This
    makes the synthetic motion distribution match the real one by construction.
    """
    still = replace(scene, exposure=(scene.exposure[0], 0.0, 0.0, 0.0), stars=False, aurora=False)
    prev = render_clip_with_info(scene.seed, 3, (_PREVIEW, _PREVIEW), scene=still).frames.astype(np.float32)
    measured = float(np.abs(np.diff(prev, axis=0)).mean()) / 255.0
    k = float(np.clip(target / max(measured, 1e-5), 0.25, 4.0))
    return replace(scene, layers=tuple(_scaled_layer(ly, k) for ly in scene.layers))


# ---------------------------------------------------------------------------------------------------------
# geometry and noise on the cloud deck
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# foreground
# ---------------------------------------------------------------------------------------------------------


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


# ---------------------------------------------------------------------------------------------------------
# rendering
# ---------------------------------------------------------------------------------------------------------


@dataclass
class RenderedClip:
    """A rendered clip plus what tests and tools need to check it."""

    frames: np.ndarray  # (T, H, W, 3) uint8
    foreground_mask: np.ndarray  # (H, W) bool: pixels covered by the static foreground
    scene: Scene


def _lerp_palette(scene: Scene, t: np.ndarray) -> dict[str, np.ndarray]:
    u = np.clip(scene.palette_start + scene.palette_rate * t, 0.0, 1.0).astype(np.float32)[:, None]
    a, b = scene.palette_a, scene.palette_b
    out = {}
    for name in ("zenith", "mid", "horizon", "glow"):
        ca, cb = np.asarray(getattr(a, name), np.float32), np.asarray(getattr(b, name), np.float32)
        out[name] = ca[None] * (1 - u) + cb[None] * u
    out["glow_strength"] = (a.glow_strength * (1 - u) + b.glow_strength * u)[:, 0]
    return out


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


def _static_layers(scene: Scene, w: int, h: int) -> dict:
    """Everything that does not change from frame to frame, computed once per clip."""
    pal0 = scene.palette_a
    fovpx = scene.fov / VIRTUAL_W
    deck_full = _deck(scene, w, h)
    nw, nh = _noise_grid(w, h)
    xv = deck_full.xv
    e = deck_full.elev[:, None]
    e_pos = np.maximum(deck_full.elev, 0.0)[:, None]
    sun_x, sun_e = scene.sun
    dist = np.hypot((xv[None, :] - sun_x) * fovpx, e - sun_e)
    glow = np.exp(-dist / 0.06) * 0.6 + np.exp(-dist / 0.4) * 0.5
    side = 1.0 + scene.side_gradient * (xv[None, :] / VIRTUAL_W - 0.5) * 2
    w_mid = np.exp(-e_pos / 0.45)
    w_hor = np.exp(-e_pos / 0.12)
    basis = np.stack(
        [(1 - w_mid) * side, (w_mid - w_hor) * side, w_hor * side, np.broadcast_to(glow, (h, w))], axis=-1
    )
    yy = ((np.arange(h) + 0.5) / h - 0.5)[:, None] * 2
    xx = ((np.arange(w) + 0.5) / w - 0.5)[None, :] * 2
    vignette = 1.0 - scene.vignette * 0.5 * (xx**2 + yy**2)

    # the static foreground layers composited once: premultiplied colour F and coverage A
    fg, water = _build_foreground(scene, w, h, pal0)
    A = np.zeros((h, w), np.float32)
    F = np.zeros((h, w, 3), np.float32)
    rows = np.arange(h, dtype=np.float32)[:, None] + 0.5
    for layer in fg:
        a = np.clip(rows - layer.top[None, :].astype(np.float32) + 0.5, 0, 1)
        F = F * (1 - a[..., None]) + layer.colour * a[..., None]
        A = A * (1 - a) + a
    covered = np.nonzero(A.max(axis=1) > 0)[0]
    fg_row0 = int(covered.min()) if covered.size else h
    mask = A > 0.5
    if water is not None:
        mask[int(math.ceil(water["row"] - 0.5)) :] = False
    e_row = np.maximum(deck_full.elev, 0.0).astype(np.float32)
    return {
        "deck_noise": _deck(scene, nw, nh) if (nw, nh) != (w, h) else deck_full,
        "basis": np.ascontiguousarray(np.moveaxis(basis, -1, 0), dtype=np.float32),
        "vignette": vignette.astype(np.float32),
        "fg_row0": fg_row0,
        "fg_keep": np.ascontiguousarray((1 - A)[fg_row0:], dtype=np.float32),
        "fg_colour": np.ascontiguousarray(np.moveaxis(F[fg_row0:], -1, 0), dtype=np.float32),
        "mask": mask,
        "water": water,
        "haze": np.exp(-e_row / scene.haze_scale).astype(np.float32),
    }


def _frame_colours(scene: Scene, t: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per frame: (T, 4, 3) colours for the sky basis, exposure gain (T,), foreground light (T,)."""
    pal = _lerp_palette(scene, t)
    cols = np.stack(
        [pal["zenith"], pal["mid"], pal["horizon"], pal["glow"] * pal["glow_strength"][:, None]], 1
    )
    e0, drift, wob, wf = scene.exposure
    gain = np.exp(e0 + drift * t + wob * np.sin(wf * t + scene.seed % 7))
    # the foreground is lit by the sky: it dims with a dusk ramp (the exposure gain applies on top)
    fg_light = np.clip(pal["horizon"].mean(axis=1) / np.mean(scene.palette_a.horizon), 0.2, 1.5)
    return cols.astype(np.float32), gain.astype(np.float32), fg_light.astype(np.float32)


def render_clip_with_info(
    seed: int,
    frames: int = 32,
    size: tuple[int, int] = (640, 360),
    start: int = 0,
    scene: Scene | None = None,
) -> RenderedClip:
    """Render ``frames`` frames of the scene for ``seed`` starting at absolute frame ``start``.

    Returns the frames with the static-foreground mask (for tests: those pixels must not move).
    """
    import cv2

    w, h = int(size[0]), int(size[1])
    if w < 8 or h < 8:
        raise ValueError(f"frame size must be at least 8x8, got {w}x{h}")
    if frames < 1:
        raise ValueError("frames must be >= 1")
    scene = scene or make_scene(seed)
    st = _static_layers(scene, w, h)
    r0 = st["fg_row0"]
    water = st["water"]
    basis = st["basis"]
    out = np.empty((frames, h, w, 3), np.uint8)
    star_colour = (1.0, 0.97, 0.92)
    chunk = max(1, _CHUNK_PIXELS // (w * h))
    for c0 in range(0, frames, chunk):
        t = np.arange(start + c0, start + min(frames, c0 + chunk), dtype=np.float64)
        T = t.size
        cols, gain, fg_light = _frame_colours(scene, t)
        fields = [_cloud_fields(ly, scene, t, st["deck_noise"], w, h, st["haze"]) for ly in scene.layers]
        stars = _stars(scene, t, w, h) if scene.stars else None
        aurora = _aurora(scene, t, w, h) if scene.aurora else None
        # Colour planes (3, T, h, w): every operation below is a contiguous 2-D op with a per-frame scalar,
        # several times faster in numpy than broadcasting over a trailing axis of length 3.
        img = np.empty((3, T, h, w), np.float32)
        tmp = np.empty((T, h, w), np.float32)
        for c in range(3):
            np.multiply(basis[0][None], cols[:, 0, c][:, None, None], out=img[c])
            for k in range(1, 4):
                np.multiply(basis[k][None], cols[:, k, c][:, None, None], out=tmp)
                img[c] += tmp
            if stars is not None:
                img[c] += stars * np.float32(star_colour[c])
            if aurora is not None:
                img[c] += aurora[c]
        for layer, (alpha, light) in zip(scene.layers, fields, strict=True):
            lit = np.broadcast_to(np.asarray(layer.lit, np.float32), (T, 3))
            shade = np.asarray(layer.shade, np.float32)
            if scene.family == "dusk":  # clouds follow the sky ramp: dimmer and redder later
                ratio = cols[:, 2] / np.asarray(scene.palette_a.horizon, np.float32)
                lit = lit * np.clip(ratio, 0.3, 1.5)
            for c in range(3):
                np.multiply(light, (lit[:, c] - shade[c])[:, None, None], out=tmp)
                tmp += shade[c]
                tmp -= img[c]
                tmp *= alpha
                img[c] += tmp
        if r0 < h:
            for c in range(3):
                img[c, :, r0:] *= st["fg_keep"][None]
                np.multiply(st["fg_colour"][c][None], fg_light[:, None, None], out=tmp[:, r0:])
                img[c, :, r0:] += tmp[:, r0:]
        if water is not None:
            for i in range(T):
                _reflect(img[:, i], water, float(t[i]), w, h)
        np.multiply(st["vignette"][None], gain[:, None, None], out=tmp)
        img *= tmp[None]
        for i in range(T):
            out[c0 + i] = cv2.convertScaleAbs(cv2.merge([img[0, i], img[1, i], img[2, i]]), alpha=255.0)
    return RenderedClip(out, st["mask"], scene)


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


def render_clip(
    seed: int, frames: int = 32, size: tuple[int, int] = (640, 360), start: int = 0
) -> np.ndarray:
    """Render one clip of the scene drawn from ``seed``: (frames, H, W, 3) uint8 with size = (W, H).

    ``start`` is the absolute frame index in the scene's time line; clips with start 0, 32, 64 ... of one
    seed continue each other seamlessly (same clouds, same wind, same colour ramp).
    """
    return render_clip_with_info(seed, frames, size, start).frames


# ---------------------------------------------------------------------------------------------------------
# data set writing
# ---------------------------------------------------------------------------------------------------------


def clip_seed(seed: int, video_index: int) -> int:
    """Scene seed of video ``video_index`` of a data set made with ``seed`` (independent of workers)."""
    return int(
        np.random.SeedSequence([int(seed) & _MASK64, int(video_index)]).generate_state(1, np.uint64)[0]
    )


@dataclass
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    out: Path
    clips: int
    videos: int
    frames_per_clip: int
    size: tuple[int, int]
    seed: int
    seconds: float
    families: dict[str, int]

    @property
    def clips_per_minute(self) -> float:
        return 60.0 * self.clips / max(self.seconds, 1e-9)


def _video_id(index: int) -> str:
    return f"synth{index:06d}"


def _write_one(args: tuple) -> tuple[int, str]:
    """Render and save clip ``index`` (a top-level function so worker processes can run it)."""
    out, index, seed, frames, size, per_video, quality = args
    from PIL import Image

    video, part = divmod(index, per_video)
    scene = make_scene(clip_seed(seed, video))
    clip = render_clip_with_info(scene.seed, frames, size, start=part * frames, scene=scene)
    vid = _video_id(video)
    cid = f"{vid}_{part + 1}"
    folder = Path(out) / vid / cid
    folder.mkdir(parents=True, exist_ok=True)
    for n, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(folder / f"{cid}_frames_{n:08d}.jpg", quality=quality)
    return index, scene.family


def _init_worker() -> None:
    # Each worker is one process on a shared machine: keep BLAS and OpenCV single-threaded in it.
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 missing only matters for big frames
        pass


def write_dataset(
    out: str | os.PathLike,
    clips: int,
    seed: int = 0,
    *,
    frames: int = 32,
    size: tuple[int, int] = (640, 360),
    clips_per_video: int = 2,
    workers: int = 1,
    quality: int = 90,
    progress: Callable[[int], None] | None = None,
) -> DatasetSummary:
    """Write ``clips`` procedural clips as ``out/<video_id>/<clip_id>/<clip_id>_frames_<n:08d>.jpg``.

    Clip i belongs to video i // clips_per_video and continues the previous clip of that video in time. Each
    video's scene is seeded from (seed, video index), so the bytes written do not depend on ``workers``.
    ``progress`` is called with the number of clips finished so far.
    """
    if clips < 0:
        raise ValueError("clips must be >= 0")
    if clips_per_video < 1:
        raise ValueError("clips_per_video must be >= 1")
    if not 1 <= quality <= 100:
        raise ValueError("quality must be in 1..100")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(str(out), i, seed, frames, tuple(size), clips_per_video, quality) for i in range(clips)]
    families: dict[str, int] = {}
    done = 0
    if workers <= 1 or clips <= 1:
        results = map(_write_one, jobs)
        for _, fam in results:
            done += 1
            families[fam] = families.get(fam, 0) + 1
            if progress:
                progress(done)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for _, fam in pool.imap_unordered(_write_one, jobs, chunksize=1):
                done += 1
                families[fam] = families.get(fam, 0) + 1
                if progress:
                    progress(done)
    videos = (clips + clips_per_video - 1) // clips_per_video
    return DatasetSummary(
        out, clips, videos, frames, (int(size[0]), int(size[1])), seed, time.perf_counter() - t0, families
    )
