"""Regenerate examples/night.jpg (a night photo of our own) and examples/night-steady.jpg, README's picture
of a night sky: frames 0 and 31 of ``skyforecast predict examples/night.jpg`` and the brightest value of each
pixel over the 32 frames, which draws the stars' paths as short arcs about the pole while the skyline and
its lit windows stay exactly as in the photo.

The photo is frame 0 of a procedural night scene from skyforecast.synth (a city skyline under stars), so
the project owns it. Made with the same one-call API as the CLI, with the bundled model.
Run: python examples/make_night_sheet.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from make_contact_sheet import GAP, TILE, tile
from PIL import Image

import skyforecast
from skyforecast.synth import make_scene, render_clip_with_info

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "night.jpg"
OUT = HERE / "night-steady.jpg"
SEED = 3  # the first night scene with a city skyline and lit windows


def main() -> Path:
    """Render the night photo and its video, and write the 1x3 sheet next to this script."""
    scene = make_scene(SEED, family="night")
    frame = render_clip_with_info(SEED, frames=1, size=(640, 360), scene=scene).frames[0]
    Image.fromarray(frame).save(PHOTO, quality=92)
    video = skyforecast.animate(PHOTO)
    tiles = [(video[0], "frame 0 (the photo)"), (video[31], "31"), (video.max(axis=0), "brightest of 0..31")]
    sheet = Image.new("RGB", (3 * TILE[0] + 2 * GAP, TILE[1]), (24, 24, 24))
    for c, (image, label) in enumerate(tiles):
        sheet.paste(tile(np.ascontiguousarray(image), label), (c * (TILE[0] + GAP), 0))
    sheet.save(OUT, quality=88)
    return OUT


if __name__ == "__main__":
    print(main())
