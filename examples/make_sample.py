"""Regenerate examples/sky.jpg, the project's redistributable sample input photo.

The photo is frame 0 of a procedural scene from skyforecast.synth (cumulus over a low ridge), so the project
owns it outright and can ship it under its own licence. Run: python examples/make_sample.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

from skyforecast.synth import make_scene, render_clip_with_info

SEED = 6  # picked by eye from the first cumulus scenes with a visible horizon and a land foreground
FAMILY = "cumulus"
OUT = Path(__file__).resolve().parent / "sky.jpg"


def main() -> Path:
    """Render the sample at 640x360 and write it as a JPEG next to this script."""
    scene = make_scene(SEED, family=FAMILY)
    frame = render_clip_with_info(SEED, frames=1, size=(640, 360), scene=scene).frames[0]
    Image.fromarray(frame).save(OUT, quality=92)
    return OUT


if __name__ == "__main__":
    print(main())
