"""Frame sequences rendered on demand: ``Frames`` (one frame at a time, as the encoder asks for it, so memory
does not grow with the size or length of a video), the model's frames resized to the output with the still
part kept, and ``--compare``'s labelled panels side by side."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import cv2
import numpy as np
from PIL import Image

from ..io.media import resize_frames


class Frames:
    """A video whose frames are made when they are read: ``len``, ``frames[i]`` (an (H, W, 3) uint8 array,
    not to be modified), iteration in order, ``shape``, and ``np.asarray(frames)`` for the whole video.

    The writers take it like any sequence of frames and encode each frame as it comes, so a full-resolution
    video costs one frame's work in memory instead of all its frames. Each read renders again: iterate once
    per output."""

    def __init__(
        self,
        count: int,
        size: tuple[int, int],
        frame: Callable[[int], np.ndarray],
        planar: Callable[[int], np.ndarray] | None = None,
    ):
        self._count, self._size, self._frame, self._planar = count, tuple(size), frame, planar

    def __len__(self) -> int:
        return self._count

    @property
    def shape(self) -> tuple[int, int, int, int]:
        return (self._count, self._size[1], self._size[0], 3)

    def __getitem__(self, i: int) -> np.ndarray:
        if not -self._count <= i < self._count:
            raise IndexError(f"frame {i} of {self._count}")
        return self._frame(i % self._count)

    def __iter__(self) -> Iterator[np.ndarray]:
        for i in range(self._count):
            yield self._frame(i)

    def yuv420p(self) -> Iterator[np.ndarray] | None:
        """The frames in order as planar yuv420p buffers (``planar.PlanarFrames``: each overwritten by the
        next) where the renderer makes them so, else None: the MP4 writer then converts the RGB frames."""
        if self._planar is None:
            return None
        return (self._planar(i) for i in range(self._count))

    def counted(self, tick: Callable[[int, int], None]) -> Frames:
        """The same video, calling ``tick(done, total)`` after each frame is made (``total``: the frame
        count)."""
        total, done = self._count, 0
        lock = threading.Lock()

        def counting(make: Callable[[int], np.ndarray]) -> Callable[[int], np.ndarray]:
            def frame(i: int) -> np.ndarray:
                nonlocal done
                out = make(i)
                with lock:
                    done += 1
                    count = done
                tick(count, total)
                return out

            return frame

        planar = None if self._planar is None else counting(self._planar)
        return Frames(self._count, self._size, counting(self._frame), planar)

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        out = np.empty(self.shape, np.uint8)
        for i, frame in enumerate(self):
            out[i] = frame
        return out if dtype is None else out.astype(dtype)


def _resized(
    video: np.ndarray, size: tuple[int, int], still: np.ndarray, alpha: np.ndarray | None
) -> Callable[[int], np.ndarray]:
    """Frames of a model-resolution video at ``size``, kept to the photo outside ``alpha``, one at a time."""
    beta = None if alpha is None else (1.0 - alpha).astype(np.float32)

    def get(i: int) -> np.ndarray:
        frame = resize_frames(video[i : i + 1], size)[0]
        if alpha is not None:
            frame = cv2.blendLinear(frame, still, alpha, beta)
        return frame

    return get


def side_by_side(panels: list[np.ndarray], labels: list[str], gap: int = 4) -> np.ndarray:
    """Place equally sized videos left to right with a dark gap and a small label in each panel's corner, as
    in the paper's figures."""
    t, h, w, _ = panels[0].shape
    compose = _Panels(labels, (w, h), gap)
    return np.stack([compose([panel[i] for panel in panels]) for i in range(t)])


class _Panels:
    """``side_by_side`` for one frame at a time: the labels are drawn once, each call places one frame of
    every panel."""

    def __init__(self, labels: list[str], size: tuple[int, int], gap: int = 4):
        w, h = size
        self.size, self.gap = (w, h), gap
        width = len(labels) * w + (len(labels) - 1) * gap
        self.width = width + width % 2
        from PIL import ImageFont  # --compare only: not imported on predict's default path

        font = ImageFont.load_default(size=max(10, h // 18))
        self.tags = [_label(label, font) for label in labels]

    def __call__(self, frames: list[np.ndarray]) -> np.ndarray:
        w, h = self.size
        out = np.full((h, self.width, 3), 16, np.uint8)
        for k, (frame, tag) in enumerate(zip(frames, self.tags, strict=True)):
            x = k * (w + self.gap)
            out[:, x : x + w] = frame
            th, tw = min(tag.shape[0], h), min(tag.shape[1], w)
            region = out[:th, x : x + tw].astype(np.float32)
            a = tag[:th, :tw, 3:4].astype(np.float32) / 255.0
            out[:th, x : x + tw] = (region * (1 - a) + tag[:th, :tw, :3] * a + 0.5).astype(np.uint8)
        return out


def _label(text: str, font) -> np.ndarray:
    from PIL import ImageDraw

    pad = 4
    box = font.getbbox(text)
    im = Image.new("RGBA", (box[2] + 2 * pad, box[3] + 2 * pad), (0, 0, 0, 140))
    ImageDraw.Draw(im).text((pad, pad), text, font=font, fill=(255, 255, 255, 255))
    return np.asarray(im)
