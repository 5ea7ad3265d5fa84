"""Reading photos and writing videos. Everything that touches image or video files lives here, so that
robustness rules (clear errors, atomic writes, bounded memory) are enforced in one place.

No torch here: frames are numpy uint8 arrays shaped (T, H, W, 3).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import io
import os
import re
import shutil
import tempfile
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from .constants import IMAGE_SUFFIXES, MAX_SIDE, SIZE, ArgumentError, parse_wxh

# Pillow refuses images above 2x this many pixels as decompression bombs; we set the limit explicitly so
# a 12000x8000 photo (96 MP) opens while a forged 100000x100000 header is refused before decoding.
MAX_PIXELS = 180_000_000
Image.MAX_IMAGE_PIXELS = MAX_PIXELS // 2
# Pillow also warns from MAX_IMAGE_PIXELS up, as early as Image.open: a photo we accept (a 96 MP PNG) would
# print a stack line on every read. One process-wide filter (``warnings.catch_warnings`` is not safe across
# the decoding and prefetch threads), as MAX_IMAGE_PIXELS above is process-wide.
warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
FORMATS = ("mp4", "gif", "frames")
BIG_FRAME = 1920 * 1080  # pixels; bigger frames are encoded with bounded memory (see write_mp4)
SMALL_FRAME = 640 * 480  # pixels; smaller frames are encoded on one thread (see write_mp4)


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


def squash(image: Image.Image, size: int = SIZE) -> np.ndarray:
    """Resize to size x size ignoring aspect ratio, as the Sky Timelapse frames were for training.
    Returns (size, size, 3) uint8."""
    return np.asarray(image.resize((size, size), Image.BICUBIC, reducing_gap=3.0), dtype=np.uint8)


def output_size(photo_size: tuple[int, int], size: str | None) -> tuple[int, int]:
    """(width, height) of written frames. Default: the photo's aspect ratio at 128 px height, at most
    ``MAX_SIDE`` wide; ``"N"``: an N x N square; ``"WxH"``: exactly that. Even sides, because H.264 yuv420p
    needs them."""
    if size is None or size == "":
        w, h = photo_size
        width, height = SIZE * w / h, float(SIZE)
        if width > MAX_SIDE:  # a panorama over 64:1: as wide as encoders and players take
            width, height = MAX_SIDE, max(2.0, height * MAX_SIDE / width)
        return max(2, int(round(width / 2.0)) * 2), max(2, int(height) // 2 * 2)
    return parse_size(size)


def parse_size(text: str) -> tuple[int, int]:
    """``"N"`` or ``"WxH"`` (``constants.parse_wxh``) rounded down to even sides, which H.264 yuv420p needs;
    raises ValueError with a clear message."""
    w, h = parse_wxh(text)
    return w - w % 2, h - h % 2


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Resize every frame of a (T,H,W,3) uint8 video to ``size`` = (width, height)."""
    t, h, w, _ = frames.shape
    if (w, h) == tuple(size):
        return frames
    out = np.empty((t, size[1], size[0], 3), dtype=np.uint8)
    for i in range(t):
        out[i] = np.asarray(Image.fromarray(frames[i]).resize(size, Image.BICUBIC))
    return out


# ---- writing -----------------------------------------------------------------------------------


from .files import atomic_path  # noqa: E402  (kept importable as media.atomic_path)
from .gif import GIF_MAX_FPS, gif_delays, write_gif  # noqa: E402, F401  (the GIF writer, one of WRITERS)

# RGB -> YUV with the BT.709 matrix into TV range (ffmpeg's default conversion uses BT.601's), and tags that
# say so: a player reads the tags to pick the matrix back, and players that meet untagged video guess, and
# guess differently (mpv, for one, takes video below HD size for BT.601), shifting reds and greens. BT.709
# shares sRGB's primaries, so sRGB photos (``load_photo`` converts others) keep their colours.
BT709_PARAMS = "setparams=colorspace=bt709:color_primaries=bt709:color_trc=bt709:range=tv"
BT709_CONVERSION = f"scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,{BT709_PARAMS}"
# what write_mp4 pipes to ffmpeg: yuv420p made here (``yuv.I420``: a third of the CPU time ffmpeg spends on
# the same conversion, half the bytes through the pipe), or rgb24 that ffmpeg converts (the reference)
FEEDS = ("yuv420p", "rgb24")
BT709_TAGS = "-colorspace bt709 -color_primaries bt709 -color_trc bt709 -color_range tv".split()
CODECS = {"h264": "libx264", "h265": "libx265"}
# x264 CRF 18 is close to visually lossless. x265's scale sits higher for the same look (ffmpeg's guide:
# x265 28 ~ x264 23); on a 1080p render x265 20 measured within 0.2 dB PSNR of x264 18 at half the size
# (x265 23: 0.5 dB below, a third of the size), so switching the codec keeps the quality (README, "Video
# options")
DEFAULT_CRF = {"h264": 18, "h265": 20}
MAX_CRF = 51


@dataclass(frozen=True)
class Encoding:
    """How MP4s are encoded: ``codec`` "h264" (plays everywhere) or "h265" (half the size at 1080p, 82% at
    640x360; plays in Safari, on phones and in most players, not in every browser), ``crf`` 0-51 (lower:
    better and larger; None: 18 for H.264, 20 for H.265). GIFs and PNG frames are not encoded with a codec
    and ignore it.
    Raises ``ArgumentError`` for a value out of range."""

    codec: str = "h264"
    crf: int | None = None

    def __post_init__(self) -> None:
        if self.codec not in CODECS:
            raise ArgumentError("codec", f"must be {' or '.join(CODECS)}, got {self.codec!r}")
        if self.crf is not None and (
            isinstance(self.crf, bool) or not isinstance(self.crf, int) or not 0 <= self.crf <= MAX_CRF
        ):
            raise ArgumentError("crf", f"must be a whole number from 0 to {MAX_CRF}, got {self.crf!r}")

    @property
    def quality(self) -> int:
        """The CRF given to the encoder."""
        return DEFAULT_CRF[self.codec] if self.crf is None else self.crf

    def check(self, exe: str | None = None) -> None:
        """Raise ``ArgumentError`` (one line) when ffmpeg (``exe``, default: the bundled one) lacks the
        encoder: not every ffmpeg build has libx265. An ffmpeg that cannot list its encoders passes here
        and fails when it encodes, with its own reason."""
        if exe is None:
            import imageio_ffmpeg

            exe = imageio_ffmpeg.get_ffmpeg_exe()
        encoders = ffmpeg_encoders(exe)
        if encoders and CODECS[self.codec] not in encoders:
            raise ArgumentError(
                "codec",
                f"{self.codec} needs an ffmpeg with {CODECS[self.codec]}, which {exe} lacks; use h264",
            )


@functools.lru_cache(maxsize=4)
def ffmpeg_encoders(exe: str) -> frozenset[str]:
    """The names of the encoders an ffmpeg binary was built with (``ffmpeg -encoders``), asked once; empty
    when it cannot say."""
    import subprocess

    try:
        listing = subprocess.run(
            [exe, "-hide_banner", "-nostdin", "-encoders"], capture_output=True, text=True, timeout=60
        ).stdout
    except (OSError, subprocess.SubprocessError):
        return frozenset()
    names = set()
    for line in listing.splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6 and parts[0][0] == "V":
            names.add(parts[1])
    return frozenset(names)


def _x265_params(pixels: int) -> str:
    """x265's own settings (it ignores ffmpeg's ``-threads``): one thread for small frames, as x264 gets in
    ``write_mp4`` (batches run an encoder per core); its log kept to errors so that a failure's last line is
    the reason. Big frames keep x265's defaults: a shorter lookahead with fewer threads did not lower its
    peak memory at 3000x2000 (about 0.8 GB either way)."""
    params = ["log-level=error"]
    if pixels <= SMALL_FRAME:
        params += ["pools=1", "frame-threads=1"]
    return ":".join(params)


def write_mp4(
    frames: Iterable[np.ndarray],
    path: str | os.PathLike,
    fps: float = 8,
    encoding: Encoding | None = None,
    feed: str = "yuv420p",
) -> None:
    """H.264 yuv420p with the index at the front (faststart), which every browser plays (or H.265:
    ``encoding``), converted from RGB with the BT.709 matrix and tagged BT.709. ``feed``: ``"yuv420p"``
    converts each frame here (``yuv.I420``) and pipes that; ``"rgb24"`` pipes the RGB frames and lets
    ffmpeg convert them (``BT709_CONVERSION``): the same colours within a level, at more CPU time.

    ``frames`` is any iterable of (H, W, 3) uint8 frames, consumed one at a time while ffmpeg encodes:
    a generator that renders each frame on demand keeps only a frame or two in memory, whatever the
    length or size of the video.

    ffmpeg is driven directly (the binary that imageio-ffmpeg ships) rather than through imageio's writer,
    which polls for ffmpeg's exit in 10 ms sleeps and wraps each frame in Python calls: with the model's
    128 px clips that overhead was as large as the encoding itself. x264 threads by frame size:
    - up to ``SMALL_FRAME``, one thread: batches run one encoder per core, and x264's own threads only
      add hand-offs at this size (two encoders side by side: 0.033 s per clip against 0.041);
    - above ``BIG_FRAME``, 2 threads and a 4-frame lookahead: x264 holds ~30 bytes per pixel for every
      frame in flight (measured at 3000x2000: 0.80 GB with the defaults, 0.55 GB so, 30% less CPU,
      0.3 dB lower PSNR at CRF 18);
    - in between, x264's defaults.
    x265 runs one thread up to ``SMALL_FRAME`` too, and its defaults above (``_x265_params``)."""
    import imageio_ffmpeg

    encoding = encoding or Encoding()
    if feed not in FEEDS:
        raise ValueError(f"feed must be one of {', '.join(FEEDS)}, got {feed!r}")
    exe = imageio_ffmpeg.get_ffmpeg_exe()
    encoding.check(exe)
    with atomic_path(path) as tmp, tempfile.TemporaryFile() as log:
        proc = None
        shape = None
        convert = None
        try:
            for frame in frames:
                if proc is None:
                    h, w = frame.shape[:2]
                    shape = (h - h % 2, w - w % 2, 3)  # yuv420p needs even sides
                    if frame.dtype != np.uint8 or frame.shape[2:] != (3,) or min(shape[:2]) < 2:
                        raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
                    if feed == "yuv420p":
                        from .yuv import I420

                        convert = I420(shape[1], shape[0])
                    proc = _start_encoder(exe, tmp, shape, fps, log, encoding, feed)
                frame = frame[: shape[0], : shape[1]]
                if frame.shape != shape or frame.dtype != np.uint8:
                    raise ValueError(f"frame of shape {frame.shape} in a video of {shape} frames")
                data = np.ascontiguousarray(frame) if convert is None else convert(frame)
                try:
                    proc.stdin.write(data.data)
                except BrokenPipeError:  # ffmpeg stopped early (full disk ...): its log says why
                    break
            if proc is None:
                raise ValueError("no frames to write")
            with contextlib.suppress(BrokenPipeError):
                proc.stdin.close()
            code = proc.wait()
        except BaseException:
            if proc is not None:
                proc.kill()
                proc.wait()
            raise
        if code != 0:
            log.seek(0)
            lines = [x for x in log.read().decode("utf-8", "replace").splitlines() if x.strip()]
            detail = lines[-1].strip() if lines else _exit_reason(code)
            raise OSError(_write_errno(tmp, tmp.stat().st_size if tmp.exists() else 0), f"ffmpeg: {detail}")
        check_mp4(tmp)


def _exit_reason(code: int) -> str:
    if code < 0:
        import signal

        try:
            return f"stopped by {signal.Signals(-code).name}"
        except ValueError:
            pass
    return f"exit code {code}"


def _start_encoder(
    exe: str, path: Path, shape: tuple[int, int, int], fps: float, log, encoding: Encoding, feed: str
):
    import subprocess

    h, w = shape[:2]
    vf = BT709_CONVERSION if feed == "rgb24" else BT709_PARAMS  # yuv420p: only the tags to set
    if encoding.codec == "h265":
        codec = ["-c:v", "libx265", "-x265-params", _x265_params(w * h), "-tag:v", "hvc1"]
    elif w * h <= SMALL_FRAME:
        codec = ["-c:v", "libx264", "-threads", "1"]
    elif w * h > BIG_FRAME:
        codec = ["-c:v", "libx264", "-threads", "2", "-rc-lookahead", "4"]
    else:
        codec = ["-c:v", "libx264"]
    cmd = [
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", feed, "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "pipe:0",
        "-an", "-vf", vf, *codec, "-preset", "veryfast", "-crf", str(encoding.quality),
        "-pix_fmt", "yuv420p", *BT709_TAGS, "-movflags", "+faststart", "-f", "mp4", str(path),
    ]  # fmt: skip
    # its own session: a Ctrl-C in the terminal goes to our process group and must not cut this video
    # short; the batch finishes the videos in flight before it stops (ffmpeg ends anyway at end of input)
    own_session = os.name == "posix"
    return subprocess.Popen(
        cmd, stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=log, start_new_session=own_session
    )


def check_mp4(path: str | os.PathLike) -> None:
    """Raise ``OSError`` unless ``path`` is a structurally complete MP4: top-level boxes that add up to the
    file size, with ``ftyp``, ``moov`` and ``mdat``. ffmpeg can hit a full disk (or a file-size limit)
    and still exit quietly, leaving a truncated file that would otherwise be renamed into place."""
    path = Path(path)
    size = path.stat().st_size
    seen, offset = set(), 0
    with open(path, "rb") as f:
        while offset < size:
            f.seek(offset)
            header = f.read(16)
            if len(header) < 8:
                break
            box = int.from_bytes(header[:4], "big")
            kind = header[4:8]
            if box == 1 and len(header) == 16:
                box = int.from_bytes(header[8:16], "big")
            elif box == 0:
                box = size - offset
            if box < 8:
                break
            seen.add(kind)
            offset += box
    if offset == size and {b"ftyp", b"moov", b"mdat"} <= seen:
        return
    raise OSError(_write_errno(path, size), f"ffmpeg wrote an incomplete MP4 ({size:,} bytes)", str(path))


def _write_errno(path: Path, size: int) -> int:
    """Best guess at why a writer stopped early: a full disk, the process's file-size limit, or an I/O
    error. Lets the batch tell 'stop everything' from 'this photo failed'."""
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_FSIZE)
        if soft != resource.RLIM_INFINITY and size >= soft:
            return errno.EFBIG
    except (ImportError, OSError, ValueError):  # no resource module on Windows
        pass
    if shutil.disk_usage(path.parent).free < 1 << 20:
        return errno.ENOSPC
    return errno.EIO


def write_frames(frames: Iterable[np.ndarray], folder: str | os.PathLike) -> None:
    """A folder of numbered PNG frames (frame_000.png ...), written as a whole or not at all, one frame in
    memory at a time."""
    with atomic_path(folder, is_dir=True) as tmp:
        for i, f in enumerate(frames):
            Image.fromarray(f).save(tmp / f"frame_{i:03d}.png", compress_level=1)


# every writer takes (frames, path, fps=, encoding=); only MP4 uses the encoding
WRITERS = {
    "mp4": write_mp4,
    "gif": write_gif,
    "frames": lambda frames, path, fps=8, encoding=None: write_frames(frames, path),
}


def output_name(stem: str, fmt: str) -> str:
    return f"{stem}_frames" if fmt == "frames" else f"{stem}.{fmt}"


def list_images(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Image files in a folder by suffix, sorted, hidden files and our own partial outputs excluded."""
    folder = Path(folder)
    it = folder.rglob("*") if recursive else folder.iterdir()
    found = [
        p
        for p in it
        if p.is_file()
        and p.suffix.lower() in IMAGE_SUFFIXES
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    ]
    return sorted(found)
