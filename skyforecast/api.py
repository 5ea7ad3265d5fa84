"""The one-call library API: a photo in, its sky time-lapse out, rendered exactly as ``skyforecast predict``
renders it (the same ``PostProcess``: the steady sky field at the photo's size by default).

    >>> import skyforecast
    >>> frames = skyforecast.animate("photo.jpg", loop=True, frames=64)   # (64, H, W, 3) uint8

The model is loaded on the first call and kept for later calls with the same ``weights``, ``device`` and
``engine``, so a script that animates many photos pays for loading once. On the CPU the default engine is
numpy alone, as for a one-photo ``predict`` (``skyforecast.model.engines``): the first video comes without
torch's import. A script that animates hundreds of photos gets them faster with ``engine="torch"``, which
may round a few pixels 1 of 255 levels away from the numpy engine.
Bad option values raise ``ArgumentError`` (a ``ValueError``) naming the argument: ``speed: must be ...``.
"""

from __future__ import annotations

import functools
import os
import warnings

import numpy as np
from PIL import Image

from .io.constants import FRAMES, ArgumentError
from .io.media import Photo, load_photo, photo_from_image, squash
from .model import engines
from .model.weights import locate
from .render.frames import Frames
from .render.postprocess import PostProcess

PhotoInput = str | os.PathLike | Image.Image | np.ndarray


def animate(
    photo: PhotoInput,
    *,
    resolution: str | int | None = None,
    loop: bool = False,
    loop_style: str = "fade",
    frames: int = FRAMES,
    mask: str | os.PathLike | None = None,
    speed: str | float | None = None,
    direction: str | float | None = None,
    light: bool = False,
    compare: bool = False,
    flow: str = "dis",
    stage: int = 2,
    weights: str | os.PathLike | None = None,
    device: str = "auto",
    engine: str = "auto",
    lazy: bool = False,
) -> np.ndarray | Frames:
    """Animate one photo: a (T, H, W, 3) uint8 RGB array, T = ``frames``.

    ``photo``: a file path, a PIL image or an (H, W, 3) uint8 RGB array. The options are ``predict``'s,
    with the same defaults and meaning (``skyforecast predict --help``): ``resolution`` (None: the photo's
    size scaled down to fit 1920x1080; ``"native"``, a height such as 1080, or ``"model"``), ``loop`` and
    ``loop_style`` (``"fade"`` or ``"pingpong"``), ``mask`` (None, ``"auto"``, ``"none"`` or a mask image
    path), ``speed`` (``1.5``, ``"1.5x"`` or ``"3px"``), ``direction`` (``"left"``, degrees, ...),
    ``light``, ``compare`` (photo | Stage I | Stage II side by side), ``flow``, ``stage`` (1 or 2).
    ``weights``/``device`` pick the model as ``SkyPipeline.from_pretrained`` does; ``engine`` (``"auto"``,
    ``"torch"``, ``"numpy"``) what runs it, as ``predict --engine`` does for one photo.

    ``lazy=True`` returns the video as ``predict`` writes it instead: a ``Frames`` sequence (``len``,
    ``shape``, ``frames[i]``, iteration, ``np.asarray``) whose frames are rendered when read, so a long or
    big video never sits in memory whole, and which ``io.media.write_mp4`` encodes from planes rendered
    straight in yuv420p: the very MP4 ``predict`` makes, sooner than from RGB frames.

    Notes ``predict`` would print (no sky found, an animated file's first frame used) come as warnings.
    Raises ``ArgumentError`` for a bad option, ``media.InputError`` for an unreadable photo file,
    ``weights.WeightsError`` for weights that cannot be loaded."""
    post = PostProcess(
        resolution=resolution,
        mask=None if mask is None else os.fspath(mask),
        loop=loop_style if loop else None,
        frames=frames,
        compare=compare,
        flow=flow,
        speed=None if speed is None else str(speed),
        direction=None if direction is None else str(direction),
        light=light,
    )
    if stage not in (1, 2):
        raise ArgumentError("stage", f"must be 1 or 2, got {stage!r}")
    source = _as_photo(photo)
    pipe = load_pipeline(None if weights is None else os.fspath(weights), device, engine)
    (videos,) = post.predict(pipe, squash(source.image)[None], stage=stage)
    video, notes = post.stream(source, videos) if lazy else post.render(source, videos)
    for note in source.notes + notes:
        warnings.warn(note, stacklevel=2)
    return video


@functools.lru_cache(maxsize=4)
def load_pipeline(weights: str | None = None, device: str = "auto", engine: str = "auto"):
    """The pipeline for ``weights`` on ``device`` run by ``engine`` (``engines.load_pipeline`` for one photo
    at a time), loaded once and shared by later calls (a few at most are kept: each holds a model).
    ``load_pipeline.cache_clear()`` frees them."""
    files = locate(weights)
    try:
        chosen = engines.pick_engine(engine, device, 1, files)
    except ValueError as e:
        raise ArgumentError("engine", str(e)) from None
    return engines.load_pipeline(files, device, engine=chosen)


def _as_photo(photo: PhotoInput) -> Photo:
    if isinstance(photo, Photo):
        return photo
    if isinstance(photo, (Image.Image, np.ndarray)):
        try:
            return photo_from_image(photo)
        except ValueError as e:
            raise ArgumentError("photo", str(e)) from None
    if isinstance(photo, (str, os.PathLike)):
        return load_photo(photo)
    raise ArgumentError("photo", f"must be a file path, a PIL image or an array, got {type(photo).__name__}")


__all__ = ["ArgumentError", "animate", "load_pipeline"]
