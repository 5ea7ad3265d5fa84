"""Writing a data set of clips in the Sky Timelapse layout, in one process or a pool of workers.

Every random choice comes from the scene seed, so output is identical whatever the number of worker
processes.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from .draw import make_scene
from .noise import _MASK64
from .render import render_clip_with_info


def clip_seed(seed: int, video_index: int) -> int:
    """Scene seed of video ``video_index`` of a data set made with ``seed`` (independent of workers)."""
    return int(
        np.random.SeedSequence([int(seed) & _MASK64, int(video_index)]).generate_state(1, np.uint64)[0]
    )


@dataclass
class DatasetSummary:
    """What :func:`write_dataset` wrote."""

    out: Path
    clips: int
    videos: int
    frames_per_clip: int
    size: tuple[int, int]
    seed: int
    seconds: float
    families: dict[str, int]

    @property
    def clips_per_minute(self) -> float:
        return 60.0 * self.clips / max(self.seconds, 1e-9)


def _video_id(index: int) -> str:
    return f"synth{index:06d}"


def _write_one(args: tuple) -> tuple[int, str]:
    """Render and save clip ``index`` (a top-level function so worker processes can run it)."""
    out, index, seed, frames, size, per_video, quality = args
    from PIL import Image

    video, part = divmod(index, per_video)
    scene = make_scene(clip_seed(seed, video))
    clip = render_clip_with_info(scene.seed, frames, size, start=part * frames, scene=scene)
    vid = _video_id(video)
    cid = f"{vid}_{part + 1}"
    folder = Path(out) / vid / cid
    folder.mkdir(parents=True, exist_ok=True)
    for n, frame in enumerate(clip.frames):
        Image.fromarray(frame).save(folder / f"{cid}_frames_{n:08d}.jpg", quality=quality)
    return index, scene.family


def _init_worker() -> None:
    # Each worker is one process on a shared machine: keep BLAS and OpenCV single-threaded in it.
    try:
        import cv2

        cv2.setNumThreads(1)
    except Exception:  # pragma: no cover - cv2 missing only matters for big frames
        pass


def write_dataset(
    out: str | os.PathLike,
    clips: int,
    seed: int = 0,
    *,
    frames: int = 32,
    size: tuple[int, int] = (640, 360),
    clips_per_video: int = 2,
    workers: int = 1,
    quality: int = 90,
    progress: Callable[[int], None] | None = None,
) -> DatasetSummary:
    """Write ``clips`` procedural clips as ``out/<video_id>/<clip_id>/<clip_id>_frames_<n:08d>.jpg``.

    Clip i belongs to video i // clips_per_video and continues the previous clip of that video in time. Each
    video's scene is seeded from (seed, video index), so the bytes written do not depend on ``workers``.
    ``progress`` is called with the number of clips finished so far.
    """
    if clips < 0:
        raise ValueError("clips must be >= 0")
    if clips_per_video < 1:
        raise ValueError("clips_per_video must be >= 1")
    if not 1 <= quality <= 100:
        raise ValueError("quality must be in 1..100")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    jobs = [(str(out), i, seed, frames, tuple(size), clips_per_video, quality) for i in range(clips)]
    families: dict[str, int] = {}
    done = 0
    if workers <= 1 or clips <= 1:
        results = map(_write_one, jobs)
        for _, fam in results:
            done += 1
            families[fam] = families.get(fam, 0) + 1
            if progress:
                progress(done)
    else:
        import multiprocessing as mp

        ctx = mp.get_context("spawn")
        with ctx.Pool(workers, initializer=_init_worker) as pool:
            for _, fam in pool.imap_unordered(_write_one, jobs, chunksize=1):
                done += 1
                families[fam] = families.get(fam, 0) + 1
                if progress:
                    progress(done)
    videos = (clips + clips_per_video - 1) // clips_per_video
    return DatasetSummary(
        out, clips, videos, frames, (int(size[0]), int(size[1])), seed, time.perf_counter() - t0, families
    )
