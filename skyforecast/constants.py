"""Numbers and names the whole package shares, defined once, and the one parser of sizes written ``WxH``.

Plain Python without imports, so any module (and ``import skyforecast``) can use it for free.
"""

from __future__ import annotations

FRAMES = 32  # frames in a clip: what the model predicts from one photo and what training reads
SIZE = 128  # the model sees SIZE x SIZE frames

# Photo suffixes we read (by Pillow). ``.gif`` is also a video suffix for training data (data.VIDEO_EXTS):
# a data folder must look for videos first. ``.heic`` is listed so that such a photo gets a clear
# "cannot read" line instead of being skipped in silence (Pillow reads it only with a plugin).
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm", ".heic"}
)

MAX_SIDE = 8192  # the largest frame side any command writes


def parse_wxh(
    text: str, *, smallest: int = 2, largest: int = MAX_SIDE, flag: str = "--size"
) -> tuple[int, int]:
    """``"WxH"`` (``*`` or ``X`` also separate) or ``"N"`` (an N x N square) -> (width, height).

    A ``ValueError`` naming ``flag`` when the text is not that or a side is outside smallest..largest;
    callers round further where they must (H.264 needs even sides)."""
    parts = text.lower().replace("*", "x").split("x")
    try:
        sides = [int(p) for p in parts]
    except ValueError:
        raise ValueError(f"{flag} must be N or WxH, got {text!r}") from None
    if len(sides) == 1:
        sides *= 2
    if len(sides) != 2 or min(sides) < smallest or max(sides) > largest:
        raise ValueError(f"{flag} must be N or WxH with sides {smallest}..{largest}, got {text!r}")
    return sides[0], sides[1]
