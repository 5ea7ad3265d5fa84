"""Regenerate examples/sky-steady.jpg, README's contact sheet of the default output.

Top row: frames 0, 8, 16, 31 of ``skyforecast predict examples/sky.jpg`` (the default 32 frames). Bottom row:
frames 0, 30, 250, 479 of ``--frames 480``; frame 30 is the middle of a 60-frame cycle, where both phases
show most (the worst frame of a long video, shown on purpose). Made with the same one-call API as the CLI,
with the bundled model. Run: python examples/make_contact_sheet.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

import skyforecast

HERE = Path(__file__).resolve().parent
PHOTO = HERE / "sky.jpg"
OUT = HERE / "sky-steady.jpg"
TILE = (320, 180)
GAP = 4


def tile(frame: np.ndarray, label: str) -> Image.Image:
    im = Image.fromarray(frame).resize(TILE, Image.LANCZOS)
    draw = ImageDraw.Draw(im, "RGBA")
    font = ImageFont.load_default()
    box = draw.textbbox((4, 4), label, font=font)
    draw.rectangle((0, 0, box[2] + 4, box[3] + 4), fill=(0, 0, 0, 150))
    draw.text((4, 4), label, font=font, fill=(255, 255, 255))
    return im


def main() -> Path:
    """Render both videos of the sample photo and write the 2x4 sheet next to this script."""
    short = skyforecast.animate(PHOTO)
    long = skyforecast.animate(PHOTO, frames=480)
    rows = [
        [(short[t], "frame 0 (the photo)" if t == 0 else str(t)) for t in (0, 8, 16, 31)],
        [
            (long[t], f"--frames 480: {t}" if t == 0 else (f"{t} (mid-cycle)" if t == 30 else str(t)))
            for t in (0, 30, 250, 479)
        ],
    ]
    width, height = 4 * TILE[0] + 3 * GAP, 2 * TILE[1] + GAP
    sheet = Image.new("RGB", (width, height), (24, 24, 24))
    for r, row in enumerate(rows):
        for c, (frame, label) in enumerate(row):
            sheet.paste(tile(frame, label), (c * (TILE[0] + GAP), r * (TILE[1] + GAP)))
    sheet.save(OUT, quality=88)
    return OUT


if __name__ == "__main__":
    print(main())
