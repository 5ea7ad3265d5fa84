"""Training data: find 32-frame clips in a folder, read and squash their frames, flip them.

Three layouts are accepted, all found by one recursive walk (every folder that directly holds images is
one frame sequence, every video file is one sequence):

1. Sky Timelapse: ``<root>/<video>/<clip>/*.jpg`` (frames sorted by name);
2. a folder of video files (mp4, mov, webm, gif, avi, mkv, m4v), decoded with imageio-ffmpeg;
3. a folder of image sequences without a video level: ``<root>/<sequence>/*.jpg`` (or the images
   directly in ``<root>``).

A sequence of n frames gives ``floor((n - 32) / stride) + 1`` clips; the default stride 32 gives the
paper's non-overlapping clips (``floor(n / 32)``), a smaller ``clip_stride`` takes overlapping clips
from few long videos. Sequences shorter than 32 frames, unreadable videos and clips with an unreadable
frame are skipped and counted, never raised, because one bad file in 35,000 clips must not stop a
day-long run. Only an empty result is an error (:class:`DataError`, one line).

Clips are returned as uint8 tensors (3, T, H, W): four times less to move between DataLoader workers
and the trainer than float32; :func:`to_model_range` maps them to [-1, 1] on the training device.
"""

from __future__ import annotations

import logging
import os
import re
from collections import OrderedDict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, DistributedSampler, Sampler

from .constants import FRAMES, IMAGE_SUFFIXES, SIZE

VIDEO_EXTS = frozenset({".mp4", ".mov", ".webm", ".gif", ".avi", ".mkv", ".m4v"})
CROPS = ("squash", "center")

# imageio-ffmpeg warns on every read that the output size differs from the source: that is intended.
logging.getLogger("imageio_ffmpeg").setLevel(logging.ERROR)

__all__ = [
    "CROPS",
    "Clip",
    "ClipDataset",
    "ClipIndex",
    "ClipSampler",
    "DataError",
    "FrameSequence",
    "collate_clips",
    "discover_clips",
    "read_image_frame",
    "to_model_range",
]


class DataError(Exception):
    """Training data that cannot be used at all (missing folder, no usable clip). One clear line."""


@dataclass(frozen=True)
class FrameSequence:
    """One source of consecutive frames: a folder of images (``frames`` lists them in order) or a video
    file (``frames`` is empty, ``length`` comes from ffmpeg's frame count)."""

    path: str
    kind: str  # "images" | "video"
    length: int
    frames: tuple[str, ...] = ()


@dataclass(frozen=True)
class Clip:
    """``FRAMES`` consecutive frames of one sequence, starting at frame ``start``."""

    sequence: int
    start: int


@dataclass
class ClipIndex:
    """What discovery found: the sequences, the clips cut from them and what was skipped and why."""

    root: str
    sequences: list[FrameSequence]
    clips: list[Clip]
    short_sequences: int = 0
    unreadable_videos: int = 0
    skipped_examples: list[str] = field(default_factory=list)

    def summary(self) -> str:
        kinds = {k: sum(1 for s in self.sequences if s.kind == k) for k in ("images", "video")}
        parts = [f"{len(self.clips)} clips from {kinds['images']} frame folders and {kinds['video']} videos"]
        if self.short_sequences:
            parts.append(f"skipped {self.short_sequences} sequences shorter than {FRAMES} frames")
        if self.unreadable_videos:
            parts.append(f"skipped {self.unreadable_videos} unreadable videos")
        return "; ".join(parts)


def _natural_key(name: str) -> list:
    """Sort ``f2.jpg`` before ``f10.jpg``; zero-padded names (Sky Timelapse) sort the same either way."""
    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def discover_clips(
    root: str | os.PathLike, frames: int = FRAMES, clip_stride: int | None = None
) -> ClipIndex:
    """Walk ``root`` and cut every frame folder and video into ``frames``-long clips.

    Only file names are listed for image folders (no image is opened), so discovery of the full Sky
    Timelapse set (about 1.1 M files) stays a directory walk; unreadable images are found, skipped and
    counted when a clip is loaded. Videos are frame-counted by ffmpeg here, since their length decides
    how many clips they give.
    """
    root_path = Path(root)
    if not root_path.exists():
        raise DataError(f"{root}: no such folder")
    if not root_path.is_dir():
        raise DataError(f"{root}: not a folder (give the folder that holds the clips or videos)")
    stride = frames if clip_stride is None else int(clip_stride)
    if stride < 1:
        raise DataError(f"clip stride must be at least 1, got {stride}")

    import imageio_ffmpeg

    index = ClipIndex(root=str(root_path), sequences=[], clips=[])

    def add(seq: FrameSequence) -> None:
        if seq.length < frames:
            index.short_sequences += 1
            if len(index.skipped_examples) < 5:
                index.skipped_examples.append(f"{seq.path}: {seq.length} frames")
            return
        i = len(index.sequences)
        index.sequences.append(seq)
        for start in range(0, seq.length - frames + 1, stride):
            index.clips.append(Clip(i, start))

    for dirpath, dirnames, filenames in os.walk(root_path, followlinks=True):
        dirnames[:] = sorted((d for d in dirnames if not d.startswith(".")), key=_natural_key)
        images, videos = [], []
        for name in sorted(filenames, key=_natural_key):
            if name.startswith("."):
                continue
            ext = os.path.splitext(name)[1].lower()
            if ext in VIDEO_EXTS:  # first: .gif is both, and in training data it is a video
                videos.append(os.path.join(dirpath, name))
            elif ext in IMAGE_SUFFIXES:
                images.append(os.path.join(dirpath, name))
        if images:
            add(FrameSequence(dirpath, "images", len(images), tuple(images)))
        for video in videos:
            try:
                n, _ = imageio_ffmpeg.count_frames_and_secs(video)
            except Exception:  # ffmpeg's error for a corrupt or non-video file is a page of text
                index.unreadable_videos += 1
                if len(index.skipped_examples) < 5:
                    index.skipped_examples.append(f"{video}: unreadable video")
                continue
            add(FrameSequence(video, "video", int(n)))

    if not index.clips:
        found = len(index.sequences) + index.short_sequences + index.unreadable_videos
        if found == 0:
            raise DataError(
                f"{root}: no images or videos found (expected <video>/<clip>/*.jpg frame folders, "
                f"image-sequence folders, or video files: {', '.join(sorted(VIDEO_EXTS))})"
            )
        raise DataError(
            f"{root}: no usable {frames}-frame clip: {index.short_sequences} sequences shorter than "
            f"{frames} frames, {index.unreadable_videos} unreadable videos"
            + (f" (e.g. {index.skipped_examples[0]})" if index.skipped_examples else "")
        )
    return index


def read_image_frame(path: str, size: int = SIZE, crop: str = "squash") -> np.ndarray:
    """Read one image as (size, size, 3) uint8. ``squash`` resizes the whole frame to a square (what the
    paper did with 640x360 frames); ``center`` first cuts the central square so shapes are not
    distorted. Raises ``OSError``/``ValueError`` for unreadable files (the dataset counts them)."""
    with Image.open(path) as im:
        if im.format == "JPEG":
            im.draft("RGB", (size, size))  # DCT-domain downscale: much faster, still >= size per side
        im = im.convert("RGB")
        if crop == "center":
            w, h = im.size
            s = min(w, h)
            left, top = (w - s) // 2, (h - s) // 2
            im = im.crop((left, top, left + s, top + s))
        if im.size != (size, size):
            im = im.resize((size, size), Image.Resampling.BILINEAR)
        return np.asarray(im, dtype=np.uint8)


def _video_filter(size: int, crop: str) -> str:
    scale = f"scale={size}:{size}:flags=bilinear"
    if crop == "center":
        return f"crop='min(iw,ih)':'min(iw,ih)',{scale}"
    return scale


def read_video_frames(
    path: str, size: int = SIZE, crop: str = "squash", start: int = 0, count: int | None = None
) -> np.ndarray:
    """Decode frames ``start .. start+count`` of a video (all when ``count`` is None) as (n, size, size, 3)
    uint8, scaled by ffmpeg itself (cheaper than decoding full-size frames into Python)."""
    import imageio_ffmpeg

    gen = imageio_ffmpeg.read_frames(path, pix_fmt="rgb24", output_params=["-vf", _video_filter(size, crop)])
    try:
        next(gen)  # metadata
        out = []
        for i, raw in enumerate(gen):
            if i < start:
                continue
            out.append(np.frombuffer(raw, dtype=np.uint8).reshape(size, size, 3))
            if count is not None and len(out) == count:
                break
    finally:
        gen.close()
    if not out:
        return np.zeros((0, size, size, 3), np.uint8)
    return np.stack(out)


class ClipDataset(Dataset):
    """Clips as uint8 tensors (3, T, size, size), or ``None`` when a frame cannot be read.

    Items are addressed by ``(clip_index, flip)`` pairs from :class:`ClipSampler` (so the flip decision
    is part of the deterministic sample order and a resumed run sees exactly the same augmentations), or
    by a plain index (no flip). Videos are decoded whole once per worker and kept in a small LRU cache:
    with overlapping clips from few videos that turns ~N decodes per epoch into one per video.
    """

    def __init__(
        self,
        index: ClipIndex,
        size: int = SIZE,
        crop: str = "squash",
        frames: int = FRAMES,
        video_cache_bytes: int = 512 * 2**20,
    ):
        if crop not in CROPS:
            raise ValueError(f"crop must be one of {CROPS}, got {crop!r}")
        self.index = index
        self.size = size
        self.crop = crop
        self.frames = frames
        self.video_cache_bytes = video_cache_bytes
        self._cache: OrderedDict[str, np.ndarray] = OrderedDict()

    def __len__(self) -> int:
        return len(self.index.clips)

    def __getitem__(self, item: int | tuple[int, bool]) -> torch.Tensor | None:
        i, flip = (item, False) if isinstance(item, int) else (int(item[0]), bool(item[1]))
        try:
            video = self._read_clip(self.index.clips[i])
        except Exception:  # an unreadable/truncated frame or video: counted by collate_clips
            return None
        if video.shape[0] != self.frames:
            return None
        if flip:
            video = video[:, :, ::-1]
        return torch.from_numpy(np.ascontiguousarray(video.transpose(3, 0, 1, 2)))

    def _read_clip(self, clip: Clip) -> np.ndarray:
        seq = self.index.sequences[clip.sequence]
        if seq.kind == "images":
            names = seq.frames[clip.start : clip.start + self.frames]
            return np.stack([read_image_frame(p, self.size, self.crop) for p in names])
        frame_bytes = self.size * self.size * 3
        if seq.length * frame_bytes > self.video_cache_bytes:  # too long to cache: decode just this clip
            return read_video_frames(seq.path, self.size, self.crop, clip.start, self.frames)
        frames = self._cache.get(seq.path)
        if frames is None:
            frames = read_video_frames(seq.path, self.size, self.crop)
            self._cache[seq.path] = frames
            while (
                sum(v.nbytes for v in self._cache.values()) > self.video_cache_bytes and len(self._cache) > 1
            ):
                self._cache.popitem(last=False)
        else:
            self._cache.move_to_end(seq.path)
        return frames[clip.start : clip.start + self.frames]


def collate_clips(batch: list[torch.Tensor | None]) -> dict:
    """Stack the readable clips of a batch and count the unreadable ones (``skipped``). ``video`` is
    None when no clip of the batch could be read; the trainer then skips that batch."""
    good = [b for b in batch if b is not None]
    return {"video": torch.stack(good) if good else None, "skipped": len(batch) - len(good)}


def to_model_range(video: torch.Tensor) -> torch.Tensor:
    """uint8 [0, 255] -> float32 [-1, 1], the generator's value range."""
    return video.float().div_(127.5).sub_(1.0)


class ClipSampler(Sampler):
    """Shuffled, flip-augmented, shardable and resumable sample order.

    Sharding across DDP processes is PyTorch's own :class:`DistributedSampler` (a seeded permutation per
    epoch, padded to a multiple of the world size, every ``world_size``-th index to each rank). On top of
    it each index is paired with a horizontal-flip bit drawn from a generator seeded by (seed, epoch), and
    ``set_start`` skips the samples a resumed run has already seen in this epoch, so a resumed run sees
    exactly the samples (and flips) an uninterrupted one would.
    """

    def __init__(
        self,
        num_clips: int,
        *,
        shuffle: bool = True,
        flip: bool = True,
        seed: int = 0,
        num_replicas: int = 1,
        rank: int = 0,
    ):
        self.num_clips = num_clips
        self.flip = flip
        self.seed = seed
        self.epoch = 0
        self.start = 0
        self._dist = DistributedSampler(
            range(num_clips), num_replicas=num_replicas, rank=rank, shuffle=shuffle, seed=seed
        )

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch
        self._dist.set_epoch(epoch)

    def set_start(self, start: int) -> None:
        """Skip the first ``start`` samples of this rank's order for the current epoch."""
        self.start = max(0, int(start))

    def per_rank(self) -> int:
        """Samples per epoch for this rank (before ``set_start``)."""
        return len(self._dist)

    def __len__(self) -> int:
        return max(0, len(self._dist) - self.start)

    def __iter__(self) -> Iterator[tuple[int, bool]]:
        if self.flip:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + self.epoch + 7919)
            flips = torch.randint(0, 2, (self.num_clips,), generator=g).tolist()
        else:
            flips = [0] * self.num_clips
        order = list(self._dist)[self.start :]
        return iter([(i, bool(flips[i])) for i in order])
