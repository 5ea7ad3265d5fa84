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

The modules, each importing only those listed before it: ``noise`` (hashed-lattice noise, NoiseField),
``palettes`` (sky colours), ``clouds`` (cloud deck kinds and which a family gets), ``scene`` (families, the
virtual canvas, Scene), ``deck`` (the deck in perspective: cloud opacity and lighting), ``foreground``
(land, buildings, water), ``night`` (stars, aurora), ``compose`` (a scene into frames), ``draw``
(make_scene), ``render`` (clips from a seed), ``dataset`` (write_dataset).
"""

from __future__ import annotations

# ``X as X``: importable from here as before the split, though not in __all__ (the parts of a Scene).
from .clouds import CloudLayer as CloudLayer
from .compose import RenderedClip
from .dataset import DatasetSummary, clip_seed, write_dataset
from .draw import make_scene
from .noise import NoiseField as NoiseField
from .palettes import Palette as Palette
from .render import render_clip, render_clip_with_info
from .scene import FAMILIES, Scene
from .scene import VIRTUAL_H as VIRTUAL_H
from .scene import VIRTUAL_W as VIRTUAL_W

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
