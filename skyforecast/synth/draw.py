"""Drawing a scene from its seed: :func:`make_scene` and the draws it makes, in a fixed order, from one
random stream, then the motion calibration that renders a small preview."""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from .clouds import _draw_decks, _scaled_layer, _with_evolve
from .compose import _render_scene
from .noise import _MASK64
from .palettes import Palette, _day_palette, _dusk_palettes, _night_palette
from .scene import FAMILIES, VIRTUAL_H, VIRTUAL_W, Scene

_PREVIEW = 128  # side of the preview render used to calibrate motion


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


def _calibrate_motion(scene: Scene, target: float) -> Scene:
    """Scale wind and shape change so the clip's mean frame difference at 128x128 is about ``target``.

    How much a wind speed moves the pixels depends on cloud size, coverage, contrast and the view, so instead
    of guessing, render a tiny 3-frame preview and rescale (motion is close to linear in the speed). This
    makes the synthetic motion distribution match the real one by construction.
    """
    still = replace(scene, exposure=(scene.exposure[0], 0.0, 0.0, 0.0), stars=False, aurora=False)
    prev = _render_scene(still, 3, _PREVIEW, _PREVIEW, 0).frames.astype(np.float32)
    measured = float(np.abs(np.diff(prev, axis=0)).mean()) / 255.0
    k = float(np.clip(target / max(measured, 1e-5), 0.25, 4.0))
    return replace(scene, layers=tuple(_scaled_layer(ly, k) for ly in scene.layers))
