"""What a scene is: the families, the virtual canvas every scene is composed on, and :class:`Scene`,
every random choice of one scene (drawn by :func:`~skyforecast.synth.draw.make_scene`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from .clouds import CloudLayer
from .palettes import Palette

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
