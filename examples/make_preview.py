"""Regenerate examples/preview.webp, the animated preview at the top of README.md.

It is ``skyforecast predict examples/sky.jpg --loop --frames 48`` with the bundled model, made through the
same one-call API as the command line, shown at 480 px wide so the page loads fast (under 1 MB). An
animated WebP keeps the photo's colours (a GIF has 256) at a fraction of a GIF's size; every current browser
and GitHub show it. Run: python examples/make_preview.py
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image

import skyforecast
from skyforecast.io.files import atomic_path

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "sky.jpg"
OUT = HERE / "preview.webp"
WIDTH = 480
FPS = 8
LIMIT = 1_000_000  # bytes


def main() -> Path:
    """Render the loop, scale it to ``WIDTH`` and write an endlessly looping WebP; refuse to keep a file
    over ``LIMIT``."""
    frames = skyforecast.animate(PHOTO, loop=True, frames=48)
    h, w = frames.shape[1:3]
    size = (WIDTH, round(h * WIDTH / w / 2) * 2)
    images = [Image.fromarray(f).resize(size, Image.LANCZOS) for f in frames]
    with atomic_path(OUT) as tmp:
        images[0].save(
            tmp,
            format="WEBP",
            save_all=True,
            append_images=images[1:],
            duration=1000 // FPS,
            loop=0,
            quality=80,
            method=6,
        )
        if tmp.stat().st_size > LIMIT:
            raise SystemExit(f"{OUT.name}: {tmp.stat().st_size} bytes, over the {LIMIT} byte limit")
    return OUT


if __name__ == "__main__":
    path = main()
    print(f"wrote {path} ({path.stat().st_size / 1e3:.0f} kB)")
