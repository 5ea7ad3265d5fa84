"""Writing MP4s: frames streamed to the ffmpeg that imageio-ffmpeg ships, as H.264 (or H.265) yuv420p
converted with the BT.709 matrix and tagged so, written atomically and checked complete before it takes the
file's name. Apart from reading photos because encoding needs only numpy and ffmpeg; ``skyforecast.io.media``
re-exports these names beside the GIF and PNG writers.

No torch here: frames are numpy uint8 arrays shaped (H, W, 3).
"""

from __future__ import annotations

import contextlib
import errno
import functools
import os
import shutil
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .constants import ArgumentError
from .files import atomic_path

BIG_FRAME = 1920 * 1080  # pixels; bigger frames are encoded with bounded memory (see write_mp4)
# One keyframe per video: x264's default of one every 250 frames showed in a long video as a pop (frame step
# 249 -> 250 1.6x the median, still clouds snapping to the keyframe's sharper copy); our videos are at most
# 960 frames (two minutes at 8 fps) and are played from the start, so seeking needs no more of them.
KEYFRAME_INTERVAL = 1000
SMALL_FRAME = 640 * 480  # pixels; smaller frames are encoded on one thread (see write_mp4)

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
# x264's sub-pixel motion search at its cheapest setting (veryfast's own is 2): clouds drift slowly and
# smoothly, and the finer search bought little. 32 frames at 1080p (examples/sky.jpg and four real photos):
# 18-29 % less encoder CPU, files 0-10 % larger, luma PSNR 0.1-0.3 dB lower at 51-55 dB
X264_PARAMS = "subme=1"
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
        # frames that a renderer makes as yuv420p itself (``Frames.yuv420p``) are piped as they come
        planar = frames.yuv420p() if feed == "yuv420p" and hasattr(frames, "yuv420p") else None
        try:
            for frame in frames if planar is None else planar:
                if proc is None:
                    shape = tuple(frames.shape[1:]) if planar is not None else _shape_of(frame)
                    if feed == "yuv420p" and planar is None:
                        from .yuv import I420

                        convert = I420(shape[1], shape[0])
                    proc = _start_encoder(exe, tmp, shape, fps, log, encoding, feed)
                if planar is not None:
                    data = frame
                else:
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


def _shape_of(frame: np.ndarray) -> tuple[int, int, int]:
    """The video's frame shape from its first frame: even sides, which yuv420p needs (an odd last row or
    column is dropped)."""
    h, w = frame.shape[:2]
    shape = (h - h % 2, w - w % 2, 3)
    if frame.dtype != np.uint8 or frame.shape[2:] != (3,) or min(shape[:2]) < 2:
        raise ValueError(f"frames must be (H, W, 3) uint8, got {frame.shape} {frame.dtype}")
    return shape


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
        codec = ["-c:v", "libx264", "-x264-params", X264_PARAMS, "-threads", "1"]
    elif w * h > BIG_FRAME:
        codec = ["-c:v", "libx264", "-x264-params", X264_PARAMS, "-threads", "2", "-rc-lookahead", "4"]
    else:
        codec = ["-c:v", "libx264", "-x264-params", X264_PARAMS]
    cmd = [
        exe, "-nostdin", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", feed, "-s", f"{w}x{h}", "-framerate", f"{fps:g}", "-i", "pipe:0",
        "-an", "-vf", vf, *codec, "-g", str(KEYFRAME_INTERVAL),
        "-preset", "veryfast", "-crf", str(encoding.quality),
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
