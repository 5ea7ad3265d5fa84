"""Reading photos: any still image Pillow can open (HEIC/AVIF through a plugin), turned upright by its EXIF,
converted to sRGB by its ICC profile, reduced early when only a small version is needed, and refused with one
clear line when unusable. Apart from the video writers because reading needs Pillow's colour management and
the writers need ffmpeg; ``skyforecast.io.media`` re-exports these names.

No torch here: photos come back as PIL images in a ``Photo``.
"""

from __future__ import annotations

import functools
import io
import os
import re
import warnings
from dataclasses import dataclass, field

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .constants import SIZE

# Pillow refuses images above 2x this many pixels as decompression bombs; we set the limit explicitly so
# a 12000x8000 photo (96 MP) opens while a forged 100000x100000 header is refused before decoding.
MAX_PIXELS = 180_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
# Pillow also warns from MAX_IMAGE_PIXELS up, as early as Image.open: a photo we accept (a 96 MP PNG) would
# print a stack line on every read. One process-wide filter (``warnings.catch_warnings`` is not safe across
# the decoding and prefetch threads), as MAX_IMAGE_PIXELS above is process-wide.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)


class InputError(Exception):
    """A photo that cannot be used. ``str()`` is one line naming the file and the reason."""

    def __init__(self, path: str | os.PathLike, reason: str):
        super().__init__(f"{path}: {reason}")
        self.path = str(path)
        self.reason = reason


@dataclass
class Photo:
    """A decoded photo, upright and RGB. ``image`` may be decoded at reduced scale (JPEG draft mode)
    when only a small version is needed; ``size`` is always the full upright size (width, height).
    ``full``: the whole image, for a photo given in memory (``path`` is then empty); a photo from a file is
    decoded again at the size it is rendered at."""

    path: str
    image: Image.Image
    size: tuple[int, int]
    notes: list[str] = field(default_factory=list)
    full: Image.Image | None = None

    @property
    def aspect(self) -> float:
        return self.size[0] / self.size[1]


def load_photo(path: str | os.PathLike, min_side: int | None = 2 * SIZE) -> Photo:
    """Open any still image Pillow can read and return it upright as 8-bit RGB.

    ``min_side``: the smallest side needed downstream. Big photos are then shrunk by an integer factor
    right after decoding, keeping the short side >= ``min_side``: JPEGs are even decoded at reduced scale
    (DCT draft mode: a 12000x8000 photo costs ~18 MB instead of 288 MB); other formats are decoded in
    full once (their decoders cannot scale) and reduced before any conversion copies them.
    ``None`` decodes and returns the full resolution.
    An embedded ICC colour profile (Adobe RGB, Display P3 ...) is applied: the pixels come back in sRGB,
    what the model was trained on and what videos are tagged as (``_to_srgb8``).
    Raises ``InputError`` with a one-line reason for anything unreadable.
    """
    path = str(path)
    notes: list[str] = []
    try:
        if os.path.getsize(path) == 0:
            raise InputError(path, "empty file (0 bytes)")
    except OSError as e:
        raise InputError(path, f"cannot read ({e.strerror or e})") from None
    try:
        with _open_image(path) as im:
            n_frames = getattr(im, "n_frames", 1)
            if n_frames > 1:
                im.seek(0)
                kind = "animated image" if im.format in {"GIF", "PNG", "WEBP"} else "multi-page image"
                notes.append(f"{kind} with {n_frames} frames; using the first")
            orientation = _exif_orientation(im)
            icc = im.info.get("icc_profile")
            full = im.size if orientation not in (5, 6, 7, 8) else im.size[::-1]
            if full[0] * full[1] > MAX_PIXELS:
                raise InputError(path, f"image too large ({full[0]}x{full[1]} pixels; limit {MAX_PIXELS:,})")
            if min_side and im.format == "JPEG":
                scale = min(im.size) / float(min_side)
                if scale >= 2:
                    im.draft(im.mode, (max(1, int(im.size[0] / scale)), max(1, int(im.size[1] / scale))))
            im.load()
            small = _reduce(im, min_side) if min_side else im
            if orientation not in (None, 1):
                small = ImageOps.exif_transpose(small if small is not im else im.copy())
            rgb = _to_srgb8(small, icc, notes)
            if rgb is im:
                rgb = im.copy()  # detach from the file that the with-block closes
    except InputError:
        raise
    except Image.DecompressionBombError as e:
        declared = re.search(r"\((\d+) pixels\)", str(e))
        size = f"declares {int(declared.group(1)):,} pixels; " if declared else ""
        raise InputError(
            path, f"image too large ({size}limit {MAX_PIXELS:,}): refused as a possible decompression bomb"
        ) from None
    except UnidentifiedImageError:
        raise InputError(path, "not an image file Pillow can read") from None
    except MemoryError:
        raise InputError(path, "not enough memory to decode this image") from None
    except (OSError, SyntaxError, ValueError, EOFError) as e:
        reason = str(e).splitlines()[0] if str(e) else type(e).__name__
        if "truncated" in reason.lower() or isinstance(e, EOFError):
            reason = "truncated or damaged image data"
        raise InputError(path, reason) from None
    except Exception as e:  # Pillow's plugins raise all sorts on malformed files (struct.error, KeyError)
        raise InputError(path, f"damaged or unsupported image ({type(e).__name__}: {e})") from None
    return Photo(path=path, image=rgb, size=full, notes=notes)


def _open_image(path: str) -> Image.Image:
    """``Image.open``, and for a file Pillow alone does not know, once more with the HEIF/AVIF plugin: the
    plugin's import (~50 ms) is paid only by the photos that need it, never by a JPEG's ``predict``."""
    try:
        return Image.open(path)
    except UnidentifiedImageError:
        if not _register_plugins():
            raise
        return Image.open(path)


@functools.cache
def _register_plugins() -> bool:
    """Teach Pillow HEIC/HEIF (iPhone photos), and AVIF where Pillow's own build lacks it, through the
    pillow-heif plugin; False without it. libheif turns the image upright by the file's rotation and mirror
    boxes and then reports EXIF orientation 1, so ``load_photo`` does not turn it twice; the ICC profile
    (Display P3 on iPhones) comes in ``info`` as for a JPEG."""
    try:
        import pillow_heif
    except ImportError:  # a dependency; without it such photos get Pillow's "cannot read"
        return False
    from PIL import features

    pillow_heif.register_heif_opener()
    if not features.check("avif") and "register_avif_opener" in dir(pillow_heif):
        pillow_heif.register_avif_opener()
    return True


def photo_from_image(image: Image.Image | np.ndarray) -> Photo:
    """A photo given in memory (a PIL image of any mode, or an (H, W, 3) uint8 RGB array) as a ``Photo``:
    its model input reduced as ``load_photo`` reduces a file's, the whole image kept for rendering. A PIL
    image's ICC profile (``image.info["icc_profile"]``) is applied as ``load_photo`` applies a file's.
    Raises ``ValueError`` for an array of another shape or type."""
    if isinstance(image, np.ndarray):
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"an array photo must be (H, W, 3) uint8 RGB, got {image.dtype} {image.shape}")
        image = Image.fromarray(image)
    notes: list[str] = []
    rgb = _to_srgb8(image, image.info.get("icc_profile"), notes)
    if rgb is image:
        rgb = image.copy()  # the caller may change theirs later
    return Photo(path="", image=_reduce(rgb, 2 * SIZE), size=rgb.size, full=rgb, notes=notes)


def _reduce(im: Image.Image, min_side: int) -> Image.Image:
    """Shrink by the largest integer factor that keeps the short side >= ``min_side`` (box filter).
    Palette and 1-bit images are converted first (averaging palette indices would be noise), 16-bit
    ones widened to 32-bit, the only modes ``Image.reduce`` refuses."""
    factor = min(im.size) // min_side
    if factor < 2:
        return im
    if im.mode in ("P", "PA", "1"):
        im = im.convert("RGBA" if (im.mode == "PA" or "transparency" in im.info) else "RGB")
    elif im.mode.startswith("I;16"):
        return im.convert("I").reduce(factor).convert("I;16")  # keep "16-bit" for the value scaling
    return im.reduce(factor)


def peek_jpeg_size(path: str | os.PathLike) -> tuple[int, int] | None:
    """(width, height) of a JPEG as ``load_photo`` will orient it, from its header alone (JPEG keeps its
    EXIF before the pixels; a PNG's may follow them, and Pillow decodes the whole image to find it); None for
    any other file or an unreadable header (``load_photo`` then says why)."""
    try:
        with Image.open(path) as im:
            if im.format != "JPEG":
                return None
            return im.size[::-1] if _exif_orientation(im) in (5, 6, 7, 8) else im.size
    except Exception:  # noqa: BLE001 - any unreadable header: the caller falls back to load_photo
        return None


def _exif_orientation(im: Image.Image) -> int | None:
    try:
        return im.getexif().get(0x0112)
    except Exception:  # broken EXIF blocks must not make a good photo unreadable
        return None


def _to_rgb8(im: Image.Image) -> Image.Image:
    """Convert every Pillow mode to 8-bit RGB: 16-bit and float greyscale are rescaled (Pillow's own
    conversion clips them), transparency is flattened onto white."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        a = np.asarray(im, dtype=np.float64)
        top = 65535.0 if (im.mode.startswith("I;16") or a.max(initial=0) > 255) else 255.0
        if im.mode == "F":
            top = max(1.0, float(a.max(initial=1.0))) if a.max(initial=0) > 1 else 1.0
        g = np.clip(a / top * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Image.fromarray(g).convert("RGB")
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    if im.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        im = im.convert("RGBA")
        background = Image.new("RGBA", im.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, im).convert("RGB")
    if im.mode != "RGB":
        return im.convert("RGB")
    return im


def _to_srgb8(im: Image.Image, icc: bytes | None, notes: list[str]) -> Image.Image:
    """``_to_rgb8``, with the colours of an embedded ICC profile converted to sRGB.

    Photos from phones (Display P3) and cameras set to Adobe RGB store other colours than sRGB for the same
    numbers: read as sRGB they come out dull, and the videos (tagged BT.709, which shares sRGB's primaries)
    would show them so. No profile means sRGB, and the pixels are left exactly as stored; so are those of a
    profile that maps colours onto themselves (an embedded sRGB profile). A profile that cannot be read or
    does not fit the image (a CMYK profile on an RGB image) adds a note and leaves the pixels as stored."""
    if not icc:
        return _to_rgb8(im)
    space, transform, problem = _srgb_transform(bytes(icc), im.mode)
    if problem:
        notes.append(f"embedded colour profile not used ({problem}); colours taken as sRGB")
    if transform is None:
        return _to_rgb8(im)
    from PIL import ImageCms

    try:
        if space == "RGB":  # flatten (alpha, palettes, 16-bit) first: white stays white in any profile
            return ImageCms.applyTransform(_to_rgb8(im), transform)
        return ImageCms.applyTransform(im, transform)  # CMYK or L straight to RGB
    except (ImageCms.PyCMSError, OSError, ValueError) as e:
        notes.append(f"embedded colour profile not used ({_first_line(e)}); colours taken as sRGB")
        return _to_rgb8(im)


# the image modes a profile's colour space converts from ("RGB" covers every mode _to_rgb8 makes RGB)
_ICC_MODES = {"RGB": None, "CMYK": ("CMYK",), "GRAY": ("L",)}


@functools.lru_cache(maxsize=16)
def _srgb_transform(icc: bytes, mode: str):
    """(profile colour space, transform to sRGB or None, problem or "") for an embedded profile and the
    image mode it came with. Cached: photos from one camera share their profile. The transform is None for
    a profile that maps a cube of test colours within one level of themselves: sRGB under another name."""
    from PIL import ImageCms

    try:
        source = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        space = source.profile.xcolor_space.strip().upper()
    except Exception as e:  # LittleCMS refuses damaged profiles in several ways
        return "", None, f"unreadable: {_first_line(e)}"
    modes = _ICC_MODES.get(space, ())
    if space == "GRAY" and mode not in modes:
        return space, None, ""  # grey with alpha or 16 bits: grey in any profile, only its tones would move
    if modes is not None and mode not in modes:
        return space, None, f"a {space or 'unknown'} profile on a {mode} image"
    in_mode = "RGB" if space == "RGB" else mode
    try:
        # no 1-pixel cache: LittleCMS needs that for one transform used by several threads (the decoding
        # thread and the writers share the cached transform)
        transform = ImageCms.buildTransform(
            source,
            ImageCms.createProfile("sRGB"),
            in_mode,
            "RGB",
            ImageCms.Intent.PERCEPTUAL,
            flags=ImageCms.Flags.NOCACHE,
        )
        if space == "RGB":
            levels = np.arange(0, 256, 51, dtype=np.uint8)
            cube = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(1, -1, 3)
            out = np.asarray(ImageCms.applyTransform(Image.fromarray(cube), transform))
            if np.abs(out.astype(int) - cube).max() <= 1:
                return space, None, ""
    except Exception as e:
        return space, None, f"unusable: {_first_line(e)}"
    return space, transform, ""


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return text.splitlines()[0] if text else type(e).__name__
