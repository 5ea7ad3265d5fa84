"""Compositing a scene into frames: sky gradient and sun glow, night light, cloud layers, the static
foreground and water, exposure and vignette.

Everything is a closed-form function of the absolute frame index, so consecutive clips of one scene continue
seamlessly.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .deck import _cloud_fields, _deck, _noise_grid
from .foreground import _build_foreground, _reflect
from .night import _aurora, _stars
from .scene import VIRTUAL_W, Scene

_CHUNK_PIXELS = 2_000_000  # pixels x frames rendered together: amortises Python overhead, bounds memory


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


def _render_scene(scene: Scene, frames: int, w: int, h: int, start: int) -> RenderedClip:
    """Frames ``start`` .. ``start + frames - 1`` of ``scene`` at w x h, with the static-foreground mask.

    Takes a scene, never a seed: make_scene renders the preview that calibrates its motion with it, with no
    loop back to the entry points in ``render`` (which draw the scene from a seed when none is given).
    """
    import cv2

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
