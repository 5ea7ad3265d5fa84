"""What ``skyforecast predict`` does after the model (``PostProcess``), and the frame sequences it builds.

- ``PostProcess``: the options of ``skyforecast predict`` beyond the paper (``--resolution``, ``--mask``,
  ``--loop``, ``--frames``, ``--compare``, ``--speed``, ...) as one object that ``batch.run`` and
  ``skyforecast.animate`` call: ``predict`` in the model's thread, ``write``/``render`` after it. Frames are
  rendered one at a time as the writer encodes them (``Frames``), so memory does not grow with the size or
  length of the video;
- ``PlainOutput``: the model's own frames, as the paper's networks make them (``--resolution model`` with
  nothing else asked for).

Frame sequences live in ``render.frames``, chained predictions and loops of the model's frames in
``render.loops``; the names are importable from here as before.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar, Protocol

import numpy as np
from PIL import Image

from ..io.constants import FRAMES, MAX_SIDE, ArgumentError
from ..io.media import WRITERS, Encoding, InputError, Photo, load_photo, output_size, resize_frames
from . import flow, sizing, skymask, steady
from .frames import Frames, _Panels, _resized, side_by_side  # noqa: F401 - importable from here as before
from .loops import (  # noqa: F401 - importable from here as before
    LOOP_STYLES,
    fade_length,
    frames_needed,
    join,
    loop_frame,
    make_loop,
    predict_long,
)
from .planar import PlanarFrames

if TYPE_CHECKING:
    from ..model.pipeline import SkyPipeline

MAX_FRAMES = 960
# The default output (``--resolution`` not given): the photo's own size, scaled down to fit this box
# (turned for portrait photos) for MP4 and PNG frames, and this height for GIFs, whose palette encoding
# makes big frames slow to write and heavy to post.
DEFAULT_BOX = (1920, 1080)
DEFAULT_GIF_HEIGHT = 480
MIN_HEIGHT = 128  # a photo smaller than the model's square is enlarged to this height, never below


# ---- chaining --------------------------------------------------------------------------------------


# ---- loops -----------------------------------------------------------------------------------------


# ---- post-processing for predict -------------------------------------------------------------------


class Output(Protocol):
    """What ``batch.run`` asks of an output: the model's work for a batch of photos (in the model's thread),
    each photo's output size, and writing one photo's outputs (in a writer thread). ``PlainOutput`` and
    ``PostProcess`` are the two kinds. ``frame_by_frame``: the output is rendered frame by frame (progress
    within a photo is reported, and the model waits for busy writers rather than queue big renders).
    ``prefetch``: start the model-free part of the first jobs while the model loads."""

    frame_by_frame: ClassVar[bool]

    def predict(
        self, pipe: SkyPipeline, squares: np.ndarray, stage: int = 2, batch_size: int = 8
    ) -> list[np.ndarray]: ...

    def output_size(self, photo_size: tuple[int, int]) -> tuple[tuple[int, int], str | None]: ...

    def prefetch(self, jobs: Sequence, count: int = 2) -> None: ...

    def write(
        self,
        photo: Photo,
        videos: np.ndarray,
        targets: dict[str, Path],
        size: tuple[int, int] | None = None,
        fps: float = 8,
        on_frame: Callable[[int, int], None] | None = None,
        encoding: Encoding | None = None,
    ) -> list[str]: ...


def model_size(photo_size: tuple[int, int], size: str | None) -> tuple[tuple[int, int], str | None]:
    """``media.output_size``, and a note when a panorama's default size stopped at ``MAX_SIDE`` wide."""
    out = output_size(photo_size, size)
    if size is None and out[0] == MAX_SIDE:
        w, h = photo_size
        return out, f"{w}x{h} photo rendered at {out[0]}x{out[1]} (at most {MAX_SIDE} px a side)"
    return out, None


@dataclass
class PlainOutput:
    """The paper's output: the model's 32 frames resized to ``size`` (``media.output_size``; by default the
    photo's aspect ratio at 128 px height), written whole. What ``predict --resolution model`` writes without
    a mask, loop, other frame count or comparison, and ``batch.run``'s default."""

    size: str | None = None
    frame_by_frame: ClassVar[bool] = False

    def predict(
        self, pipe: SkyPipeline, squares: np.ndarray, stage: int = 2, batch_size: int = 8
    ) -> list[np.ndarray]:
        """One (1, 32, 128, 128, 3) array per photo: its prediction, as one stage."""
        return [video[None] for video in pipe.predict_squares(squares, stage=stage, batch_size=batch_size)]

    def output_size(self, photo_size: tuple[int, int]) -> tuple[tuple[int, int], str | None]:
        return model_size(photo_size, self.size)

    def prefetch(self, jobs: Sequence, count: int = 2) -> None:
        """Nothing to start early: the model's frames are all this output needs."""

    def write(
        self,
        photo: Photo,
        videos: np.ndarray,
        targets: dict[str, Path],
        size: tuple[int, int] | None = None,
        fps: float = 8,
        on_frame: Callable[[int, int], None] | None = None,
        encoding: Encoding | None = None,
    ) -> list[str]:
        """Resize the prediction once and write it to each of ``targets`` ({format: path}); small enough to
        hold whole, so no progress within the photo (``on_frame`` is not called). No notes. ``encoding``: how
        MP4s are encoded (``media.Encoding``; default H.264 at CRF 18)."""
        frames = resize_frames(videos[0], size or self.output_size(photo.size)[0])
        for fmt, path in targets.items():
            WRITERS[fmt](frames, path, fps=fps, encoding=encoding)
        return []


def _still_at(photo: Photo, size: tuple[int, int]) -> np.ndarray:
    """The photo at the output ``size``: decoded straight to it from its file, or resized from the pixels
    it was given in memory (``skyforecast.animate``)."""
    return sizing.load_photo_at(photo.path, size) if photo.full is None else sizing.photo_at(photo.full, size)


def _auto_layer(still: np.ndarray) -> steady.SkyLayer:
    """``--mask auto``'s sky layer of a photo at its output size: the model-free part of a video."""
    return steady.sky_layer(still, skymask.sky_mask(still))


@dataclass
class PostProcess:
    """What ``skyforecast predict`` does after the model beyond resizing: see the module docstring.

    ``resolution``: ``"auto"`` (the default: the photo's own size up to ``DEFAULT_BOX``, GIFs
    ``DEFAULT_GIF_HEIGHT`` high), ``"native"`` or a height: the photo animated by the steady field of its
    prediction (``skyforecast.render.steady``); ``"model"``: the prediction's own pixels at ``size``.
    ``mask``: ``None`` (auto for the photo, none for model), ``"auto"`` (``skymask.sky_mask``), ``"none"`` or
    a mask image path (white = sky). ``speed``/``direction``: ``--speed``/``--direction`` text (see
    ``steady.parse_speed``/``parse_direction``); ``light``: carry the prediction's global light trend."""

    resolution: str | int = "auto"
    mask: str | None = None
    loop: str | None = None
    frames: int = FRAMES
    compare: bool = False
    flow: str = "dis"
    size: str | None = None
    speed: str | None = None
    direction: str | None = None
    light: bool = False
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _prep_lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _early: dict[tuple[str, tuple[int, int]], Future] = field(default_factory=dict, repr=False)
    _mask_photo: Photo | None = field(default=None, repr=False)  # the mask file, read once
    frame_by_frame: ClassVar[bool] = True

    def __post_init__(self) -> None:
        text = "auto" if self.resolution is None else str(self.resolution).strip().lower()
        self.resolution = "auto" if text == "auto" else sizing.parse_resolution(text)
        self._speed = steady.parse_speed(self.speed)
        self._direction = steady.parse_direction(self.direction)
        if not 1 <= self.frames <= MAX_FRAMES:
            raise ArgumentError("frames", f"must be 1..{MAX_FRAMES}, got {self.frames}")
        if self.loop is not None and self.loop not in LOOP_STYLES:
            raise ArgumentError("loop_style", f"must be one of {', '.join(LOOP_STYLES)}, got {self.loop!r}")
        if self.loop is not None and self.frames < 4:
            raise ArgumentError("loop", "needs {frames} 4 or more", refers=("frames",))
        if self.flow not in flow.FLOW_METHODS:
            raise ArgumentError("flow", f"must be one of {', '.join(flow.FLOW_METHODS)}, got {self.flow!r}")
        if self.size is not None and self.resolution == "auto":
            self.resolution = "model"  # --size alone: the model's pixels at that size, as before
        if self.size is not None and self.resolution != "model":
            raise ArgumentError(
                "size",
                "sets the model-resolution output size; with {resolution} use one or the other",
                refers=("resolution",),
            )
        if self.mask is None:
            self.mask = "none" if self.resolution == "model" else "auto"
        if self.mask not in ("auto", "none"):
            if not Path(self.mask).is_file():
                raise ArgumentError("mask", f"{self.mask}: no such file (use a mask image, auto or none)")
            try:  # a bad mask is the command's mistake, found before any photo is read, not each photo's
                self._mask_photo = load_photo(self.mask, min_side=None)
            except InputError as e:
                raise ArgumentError("mask", f"{self.mask}: {e.reason}") from None

    @property
    def ignored(self) -> list[str]:
        """The options given that this output does not use: the steady field's ``speed``, ``direction`` and
        ``light`` mean nothing for the model's own frames (``resolution="model"``)."""
        if self.resolution != "model":
            return []
        given = {
            "speed": self.speed is not None,
            "direction": self.direction is not None,
            "light": self.light,
        }
        return [name for name, used in given.items() if used]

    @property
    def is_plain(self) -> bool:
        """True when the output is exactly what plain ``predict`` writes (so the batch keeps its old path)."""
        return (
            self.resolution == "model"
            and self.mask == "none"
            and self.loop is None
            and self.frames == FRAMES
            and not self.compare
        )

    @property
    def stages(self) -> tuple[int, ...] | None:
        return (1, 2) if self.compare else None

    @property
    def model_frames(self) -> int:
        """Frames to predict: the steady renderer makes any number from one 32-frame prediction; the
        model-resolution output chains predictions."""
        if self.resolution != "model":
            return FRAMES
        return frames_needed(self.frames, self.loop)

    def predict(
        self, pipe: SkyPipeline, squares: np.ndarray, stage: int = 2, batch_size: int = 8
    ) -> list[np.ndarray]:
        """Model work for a batch (runs in the model's thread): one (S, T, 128, 128, 3) array per photo, with
        S = 2 stages for ``compare`` (Stage I, Stage II) else 1."""
        stages = self.stages or (stage,)
        per_stage = [
            predict_long(pipe, squares, self.model_frames, stage=s, batch_size=batch_size) for s in stages
        ]
        return [np.stack([v[i] for v in per_stage]) for i in range(len(squares))]

    def output_size(self, photo_size: tuple[int, int]) -> tuple[tuple[int, int], str | None]:
        """(width, height) of one panel, and a note when a full-resolution size had to be capped."""
        return self.format_size(photo_size, "mp4")

    def format_size(self, photo_size: tuple[int, int], fmt: str) -> tuple[tuple[int, int], str | None]:
        """``output_size`` for one output format (the default size differs for GIFs)."""
        if self.resolution == "model":
            return model_size(photo_size, self.size)
        panels = 3 if self.compare else 1
        if self.resolution != "auto":
            return sizing.frame_size(photo_size, self.resolution, panels)
        w, h = photo_size
        if fmt == "gif":
            height = max(MIN_HEIGHT, min(h, DEFAULT_GIF_HEIGHT))
            return sizing.frame_size((w, h), height, panels)
        box = DEFAULT_BOX if w >= h else DEFAULT_BOX[::-1]
        scale = min(1.0, box[0] / (w * panels), box[1] / h)
        scale = max(scale, min(MIN_HEIGHT / h, box[0] / (w * panels)))  # a tiny photo: up to 128 px high
        return sizing._even_size(w * scale, h * scale), None

    def write(
        self,
        photo: Photo,
        videos: np.ndarray,
        targets: dict[str, str | Path],
        size: tuple[int, int] | None = None,
        fps: float = 8,
        on_frame: Callable[[int, int], None] | None = None,
        encoding: Encoding | None = None,
    ) -> list[str]:
        """Render one photo's video and write it to ``targets`` ({format: path}), frame by frame (runs in a
        writer thread). Big frames are rendered one photo at a time: each render holds ~50 bytes per pixel of
        buffers and an encoder. ``on_frame(done, total)`` is called after each rendered frame (all formats
        counted: a full-resolution photo can take a minute, and progress should show it). ``encoding``: how
        MP4s are encoded (``media.Encoding``). Returns notes for the user."""
        notes: list[str] = []
        for k, (fmt, path) in enumerate(targets.items()):
            fmt_size = size
            if self.resolution == "auto" or size is None:
                fmt_size, capped = self.format_size(photo.size, fmt)
                if capped and capped != self.output_size(photo.size)[1] and capped not in notes:
                    notes.append(capped)  # a GIF's own size (the batch says the MP4's before writing)
            with contextlib.ExitStack() as held:
                prepared = self._take_turn(photo, fmt_size, held)
                frames, more = self.stream(photo, videos, fmt_size, prepared)
                if on_frame is not None:
                    n, formats = len(frames), len(targets)
                    frames = frames.counted(lambda done, _n, b=k * n, t=n * formats: on_frame(b + done, t))
                # each format renders again: nothing is kept
                WRITERS[fmt](frames, path, fps=fps, encoding=encoding)
            notes.extend(n for n in more if n not in notes)
        return notes

    def render(
        self, photo: Photo, videos: np.ndarray, size: tuple[int, int] | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """All frames of ``stream()`` as one (T, H, W, 3) array, and notes; for small videos and tests (a big
        one is better written with ``write``, which never holds more than a frame)."""
        if size is None:
            size, _ = self.output_size(photo.size)
        with self._lock if self._is_big(size) else contextlib.nullcontext():
            frames, notes = self.stream(photo, videos, size)
            return np.asarray(frames), notes

    @staticmethod
    def _is_big(size: tuple[int, int]) -> bool:
        return size[0] * size[1] > 1_000_000

    def _take_turn(self, photo: Photo, size: tuple[int, int], held: contextlib.ExitStack) -> tuple | None:
        """Wait for this photo's turn to render at ``size`` (held until ``held`` closes). A big frame's
        render waits for the one before it to finish, ffmpeg's last frames included; meanwhile this photo's
        model-free work (its decode at ``size`` and sky layer, as ``stream`` would make them) is done
        here, one photo ahead at most, on the core the encoder leaves idle. A folder of six 1080p photos:
        7.5 s against 8.2 s (medians of four runs each). Returns what ``stream`` takes as ``prepared``."""
        if not self._is_big(size):
            return None
        with self._prep_lock:  # held until the render lock is ours: one photo prepared ahead at most
            prepared = self._prepare(photo, size)
            held.enter_context(self._lock)
        return prepared

    def _prepare(self, photo: Photo, size: tuple[int, int]) -> tuple[np.ndarray, steady.SkyLayer] | None:
        """The photo at ``size`` and its auto mask's ``SkyLayer``; None where ``stream`` has nothing to take
        (the model's own frames, a mask file or none, work ``prefetch`` started)."""
        if self.resolution == "model" or self.mask != "auto":
            return None
        if photo.full is None and (str(photo.path), tuple(size)) in self._early:
            return None
        still = _still_at(photo, size)
        return still, _auto_layer(still)

    def stream(
        self,
        photo: Photo,
        videos: np.ndarray,
        size: tuple[int, int] | None = None,
        prepared: tuple[np.ndarray, steady.SkyLayer] | None = None,
    ) -> tuple[Frames, list[str]]:
        """The video to write for one photo, made frame by frame as it is read, and notes for the user.

        The per-video work (the photo at the output size, flows, masks) happens here, once; each frame is
        then rendered on demand: the sky's motion, loop cross-fade and panels of ``--compare`` included.
        ``prepared``: the photo at ``size`` and its sky layer, made already (``_prepare``)."""
        if size is None:
            size, _ = self.output_size(photo.size)
        early = self._early.pop((str(photo.path), tuple(size)), None) if photo.full is None else None
        layer = None
        if self.resolution == "model":
            still = np.asarray(photo.image.resize(size, Image.BICUBIC, reducing_gap=3.0), dtype=np.uint8)
        elif prepared is not None:
            still, layer = prepared
        elif early is not None and early.exception() is None:
            still, layer = early.result()
        else:
            still = _still_at(photo, size)
        file_mask = None
        if self.mask not in ("auto", "none"):
            file_mask = skymask.load_mask(self._mask_photo, size, photo.size)
        if self.resolution == "model":
            return self._stream_model(still, videos, size, file_mask)
        return self._stream_steady(still, videos, size, file_mask, layer)

    def __getstate__(self) -> dict:
        """Pickled (for ``predict --workers``'s processes) without the locks and the work started early, which
        belong to this process."""
        state = dict(self.__dict__)
        state["_lock"], state["_prep_lock"], state["_early"] = None, None, {}
        return state

    def __setstate__(self, state: dict) -> None:
        self.__dict__.update(state, _lock=threading.Lock(), _prep_lock=threading.Lock())

    def prefetch(self, jobs: Sequence, count: int = 2) -> None:
        """Start the first ``count`` jobs' model-free work (the photo decoded at its output size and its sky
        mask, ~0.3 s for a 1080p photo) in a background thread, for ``stream`` to pick up. ``predict`` calls
        it before it loads the model: importing torch holds one core for a second while OpenCV's mask work
        runs on the other, so one photo end to end is that much sooner. Results are identical to what
        ``stream`` computes itself; a failure here is ignored (``stream`` then does the work and meets it).
        JPEGs only (draft-mode decoding keeps even a 100 MP one small); other photos are left to ``stream``:
        their decoders cannot scale, and a second full decode beside the batch's would double the memory."""
        if self.resolution == "model" or self.mask != "auto":
            return
        work: list[tuple[Path, str, Future]] = []
        for job in list(jobs)[:count]:
            fut: Future = Future()
            work.append((Path(job.source), next(iter(job.outputs)), fut))

        def run() -> None:
            from ..io.media import peek_jpeg_size

            for path, fmt, fut in work:
                try:
                    photo_size = peek_jpeg_size(path)
                    if photo_size is None:
                        continue  # not a JPEG: its full decode would sit in memory twice
                    size, _ = self.format_size(photo_size, fmt)
                    self._early[(str(path), tuple(size))] = fut
                    still = sizing.load_photo_at(path, size)
                    fut.set_result((still, _auto_layer(still)))
                except Exception as e:  # noqa: BLE001 - the writer redoes the work and reports it
                    fut.set_exception(e)

        # not a daemon: Python joins it before tearing down, so an early exit (bad weights, Ctrl-C during
        # the model load) waits for its last OpenCV call (< 0.5 s) instead of killing it inside one; a thread
        # killed while it hands the GIL back aborts the process ("terminate called without an active
        # exception", pytorch/pytorch#38228)
        threading.Thread(target=run, name="skyforecast-prefetch", daemon=False).start()

    def _stream_model(
        self, still: np.ndarray, videos: np.ndarray, size: tuple[int, int], file_mask: np.ndarray | None
    ) -> tuple[Frames, list[str]]:
        """The prediction's own frames resized to ``size``, kept to the photo outside the mask (``--mask
        auto``: where the prediction moves, refined on the photo)."""
        notes: list[str] = []
        panels: list[Callable[[int], np.ndarray]] = []
        for video in videos:
            if self.mask == "auto":
                small = skymask.auto_mask(video, flow.estimate_flows(video, method=self.flow))
                if not small.any():
                    notes.append(
                        "no moving sky found in the prediction (--mask auto): the video stands still"
                    )
                mask = skymask.refine_mask(small, still)
            else:
                mask = file_mask
            alpha = None if mask is None else skymask.soft_alpha(mask)
            get = _resized(video, size, still, alpha)
            if self.loop is not None:
                get = functools.partial(loop_frame, get, frames=self.frames, style=self.loop)
            panels.append(get)
        if self.compare:
            compose = _Panels(["photo", "Stage I", "Stage II"], size)
            width = compose.width
            return Frames(
                self.frames, (width, size[1]), lambda i: compose([still] + [get(i) for get in panels])
            ), list(dict.fromkeys(notes))
        return Frames(self.frames, size, panels[0]), list(dict.fromkeys(notes))

    def _stream_steady(
        self,
        still: np.ndarray,
        videos: np.ndarray,
        size: tuple[int, int],
        file_mask: np.ndarray | None,
        layer: steady.SkyLayer | None = None,
    ) -> tuple[Frames, list[str]]:
        """The photo moved by the steady field of each prediction (``skyforecast.render.steady``); ``layer``:
        the auto mask's ``SkyLayer`` when ``prefetch`` made it already."""
        notes: list[str] = []
        if self.mask == "auto":
            layer = layer or _auto_layer(still)
            if not layer.sky.any():
                notes.append(
                    "no sky found (--mask auto): the video stands still; draw a mask file (white = sky)"
                )
        else:  # made once for every panel of --compare
            layer = steady.sky_layer(still, None if self.mask == "none" else file_mask)
        pingpong = self.loop == "pingpong"
        count = frames_needed(self.frames, "pingpong") if pingpong else self.frames
        panels: list[Callable[[int], np.ndarray]] = []
        renderers: list[steady.SteadyRenderer] = []
        for video in videos:
            renderer, _ = steady.animate_frames(
                still,
                video,
                layer,
                frames=count,
                speed=self._speed,
                direction=self._direction,
                loop=self.loop == "fade",
                light=self.light,
                method=self.flow,
            )
            renderers.append(renderer)
            get: Callable[[int], np.ndarray] = renderer.__getitem__
            if pingpong:
                get = functools.partial(loop_frame, get, frames=self.frames, style="pingpong")
            panels.append(get)
        if self.compare:
            compose = _Panels(["photo", "Stage I", "Stage II"], size)
            return Frames(
                self.frames, (compose.width, size[1]), lambda i: compose([still] + [g(i) for g in panels])
            ), notes
        planar = None if pingpong else PlanarFrames(renderers[0]).__getitem__  # MP4s: made as yuv420p
        return Frames(self.frames, size, panels[0], planar), notes


__all__ = [
    "Frames",
    "LOOP_STYLES",
    "Output",
    "PlainOutput",
    "PostProcess",
    "fade_length",
    "frames_needed",
    "join",
    "loop_frame",
    "make_loop",
    "predict_long",
    "side_by_side",
]
