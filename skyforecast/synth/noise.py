"""Hashed-lattice value noise: the one source of every texture in the generator.

Every noise field is value noise on a hashed integer lattice, smoothed with a cubic B-spline. B-spline
interpolation is separable, so one octave of one frame is two small matrix products (rows x lattice) @
(lattice) @ (lattice x columns) that BLAS does for all frames at once; the cloud deck (``deck.py``) builds
its evolving fields from the pieces here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

_MASK64 = (1 << 64) - 1


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
