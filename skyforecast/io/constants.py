"""Numbers and names the whole package shares, defined once, and the one parser of sizes written ``WxH``.

Plain Python (of the standard library only ``collections.abc``), so any module (and ``import skyforecast``)
can use it for free.
"""

from __future__ import annotations

from collections.abc import Callable

FRAMES = 32  # frames in a clip: what the model predicts from one photo and what training reads
MAX_FRAMES = 960  # the longest video predict and the app make (2 minutes at 8 fps)
SIZE = 128  # the model sees SIZE x SIZE frames

# Photo suffixes we read (by Pillow; HEIC/HEIF through the pillow-heif plugin, AVIF by Pillow itself or by
# the plugin). ``.gif`` is also a video suffix for training data (data.VIDEO_EXTS): a data folder must look
# for videos first.
IMAGE_SUFFIXES = frozenset(
    {".jpg", ".jpeg", ".jfif", ".png", ".webp", ".bmp", ".tif", ".tiff", ".gif", ".ppm", ".pgm"}
    | {".heic", ".heif", ".hif", ".avif"}
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


class ArgumentError(ValueError):
    """A bad value for one named argument of the library API (``skyforecast.animate``, ``PostProcess``).

    ``str()`` names the argument as Python callers spell it (``"speed: must be ..."``); the command line
    words the same problem with its flags (``worded``), so both name what the user typed. ``problem`` may
    refer to other arguments as ``{name}`` for each name in ``refers``."""

    def __init__(self, argument: str, problem: str, refers: tuple[str, ...] = ()):
        self.argument, self.problem, self.refers = argument, problem, refers
        super().__init__(f"{argument}: {self._problem(str)}")

    def worded(self, name: Callable[[str], str]) -> str:
        """The message with each argument written as ``name(argument)``, e.g. ``--speed must be ...``."""
        return f"{name(self.argument)} {self._problem(name)}"

    def _problem(self, name: Callable[[str], str]) -> str:
        text = self.problem
        for other in self.refers:
            text = text.replace("{" + other + "}", name(other))
        return text
