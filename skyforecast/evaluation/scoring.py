"""Scoring predictions against real time-lapses: PSNR, SSIM and motion, for predict's output, the model and
baselines.

Every 32-frame clip of a dataset is predicted from its first frame and frames 1..31 of the prediction are
compared with the real frames 1..31 (frame 0 is the input itself, so it would only flatter the score).
Pixel metrics reward a video that does not move (repeating the first frame beats the authors' Stage II by
9 dB on real-sky-dev), so a motion ratio is always reported beside them, and the same run scores two
baselines: the first frame repeated 32 times (``copy``) and Base-Net alone (``stage1``). ``transfer``
scores the model's motion apart from its pixels: the input photo itself warped by the optical flow of the
Stage II prediction, with its slow brightness change (``skyforecast.render.transfer``: the warp ``predict
--resolution`` applies, here to the 128x128 input and with no mask). It separates the cost of the
generator's blur (none here) from the cost of the motion. It says little about the motion's direction:
for the bundled model on real-sky-dev the same flow negated scores only 0.3 dB less. ``default`` scores what
``skyforecast predict`` writes by default, at 128x128 from the clip's first frame
(``steady.default_output``: the photo's sky moved by the steady field of the Stage II prediction).

Definitions (all on RGB in [0, 1]):

- PSNR of a clip: the mean over frames 1..31 of the per-frame PSNR ``10 log10(1 / MSE_t)``, MSE_t pooled
  over the frame's pixels and channels; a frame predicted exactly (MSE 0) counts as ``PSNR_CAP`` = 100 dB.
  With 8-bit frames of 128x128 the smallest non-zero MSE gives about 95 dB, so the cap never hides an
  error. ``psnr_pooled`` (one PSNR from the MSE pooled over all 31 frames) is reported too.
- SSIM of a clip: Wang et al. (2004) with an 11x11 Gaussian window (sigma 1.5), K1 = 0.01, K2 = 0.03,
  data range 1, computed per RGB channel over the valid region (no padding), averaged over channels, then
  over frames 1..31.
- frame change of a video: the mean absolute difference of consecutive frames over all 32 frames;
  a clip's motion ratio is the prediction's frame change over the real clip's (1 = as much change as
  reality, 0 = frozen; undefined, and left out of the mean, when the real clip does not change at all).
- inner motion ratio: the same over the inner frame steps only (1->2 ... 29->30), leaving out the step
  from frame 0 and the step into frame 31. A 3D U-Net's temporal padding makes its first and last frames
  jump (in our models each end step is 2.4-3.4x a real step), and two jumps out of 31 steps can make a video
  that hardly moves score a motion ratio of 0.5; this ratio says whether the middle of the video moves.
- speed, steadiness, leak and direction: measured from DIS optical flow over the inner frames 1..30
  (``skyforecast.evaluation.motion_metrics`` defines them). The speed ratio of a system is the sum over clips
  of its mean flow length over the sum of the real clips' (a ratio of means: clips that move more weigh more);
  the leak pools clips the same way (the sum of the system's still-region steps over the sum of the real
  clips' moving-region steps); steadiness is the mean over clips that move. Direction: in how many clips
  the system's dominant direction is within 90 degrees of the real clip's. The real clips themselves are
  measured the same way once per clip (``real_clip``) and reported as a "real clip" row, so a reader sees
  what a ratio of 1 means in px per step.
- Every other system score is the mean of its per-clip scores.
"""

from __future__ import annotations

import math
import os
from collections import Counter
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from ..io.constants import FRAMES
from . import motion_metrics as mm

# The metrics, the per-clip scores, the reports and their tables live in their own modules; their names stay
# importable from here, where code and documentation written before the split import them.
from .clip_scores import DIRECTION_AGREES as DIRECTION_AGREES
from .clip_scores import ClipScore, RealClip, real_clip, score_clip
from .metrics import PSNR_CAP, copy_baseline, frame_change, inner_frame_change, psnr_frames, ssim_frames
from .metrics import SSIM_K1 as SSIM_K1
from .metrics import SSIM_K2 as SSIM_K2
from .metrics import SSIM_SIGMA as SSIM_SIGMA
from .metrics import SSIM_WINDOW as SSIM_WINDOW
from .reports import DEFINITIONS as DEFINITIONS
from .reports import REFERENCE_REAL_SKY_DEV, SYSTEMS, EvalReport, RealReport, SystemReport
from .reports import SYSTEM_LABELS as SYSTEM_LABELS
from .tables import _table as _table
from .tables import report_tables as report_tables

__all__ = [
    "PSNR_CAP",
    "REFERENCE_REAL_SKY_DEV",
    "SYSTEMS",
    "ClipScore",
    "EvalReport",
    "RealClip",
    "RealReport",
    "SystemReport",
    "copy_baseline",
    "evaluate",
    "frame_change",
    "inner_frame_change",
    "psnr_frames",
    "real_clip",
    "score_clip",
    "ssim_frames",
]


# ---- the evaluation loop ------------------------------------------------------------------------


def _clip_name(index, clip, clips_per_sequence: dict[int, int]) -> str:
    """A readable clip id: the frame folder or video relative to the data root, plus ``@start`` when a
    sequence gives several clips."""
    seq = index.sequences[clip.sequence]
    try:
        name = Path(seq.path).relative_to(index.root).as_posix()
    except ValueError:
        name = seq.path
    if name in ("", "."):
        name = Path(index.root).name
    return f"{name}@{clip.start}" if clips_per_sequence[clip.sequence] > 1 else name


def _checked_systems(
    systems: Sequence[str], batch_size: int, photo_size: int | None, directions: int | None
) -> Sequence[str]:
    """``evaluate``'s arguments checked (``ValueError`` names the bad one); the systems to score, with the
    default output added when ``directions`` asks for its best of K."""
    unknown = [s for s in systems if s not in SYSTEMS]
    if unknown or not systems:
        raise ValueError(f"systems must be among {SYSTEMS}, got {list(systems)}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, got {batch_size}")
    if photo_size is not None and not 16 <= photo_size <= 4096:
        raise ValueError(f"photo size must be 16..4096 px, got {photo_size}")
    if directions is not None and not 1 <= directions <= 64:
        raise ValueError(f"directions must be 1..64, got {directions}")
    if directions is not None and "default" not in systems:
        systems = (*systems, "default")
    return systems


def evaluate(
    data: str | os.PathLike,
    weights: str | os.PathLike | None = None,
    *,
    systems: Sequence[str] = SYSTEMS,
    device: str = "auto",
    batch_size: int = 8,
    limit: int | None = None,
    pipeline=None,
    on_clip: Callable[[str, int, int], None] | None = None,
    photo_size: int | None = None,
    directions: int | None = None,
    index=None,
) -> EvalReport:
    """Predict every 32-frame clip of ``data`` from its first frame and score the chosen ``systems``.

    Clips are found and read exactly as training reads them (``skyforecast.io.clips``: Sky Timelapse
    ``<video>/<clip>/*.jpg``, image-sequence folders or video files; frames squashed to 128x128), so
    evaluation sees what training saw. Clips are predicted and scored ``batch_size`` at a time, never all
    held in memory. ``pipeline`` (a ``SkyPipeline``) overrides ``weights``/``device``; model systems are
    only loaded when asked for, so ``systems=("copy",)`` needs no weights. Raises ``DataError`` for
    unusable data and ``WeightsError`` for unusable weights. ``on_clip(name, done, total)`` is called after
    each clip. ``photo_size``: the default output starts from the first frame enlarged to that many pixels
    (what a user's photo looks like to the renderer), scored at 128 px. ``directions``: also score the
    default output's best of that many directions (the system ``best``).
    ``index`` (a ``data.ClipIndex``) scores those clips instead of discovering ``data``'s (a
    training run's held-out share).
    """
    from ..io.clips import ClipDataset, discover_clips

    systems = _checked_systems(systems, batch_size, photo_size, directions)
    index = discover_clips(data, frames=FRAMES) if index is None else index
    count = len(index.clips) if limit is None else min(len(index.clips), max(0, int(limit)))
    dataset = ClipDataset(index, crop="squash")

    needs_model = any(s != "copy" for s in systems)
    weights_text = None
    if needs_model and pipeline is None:
        from ..model.pipeline import SkyPipeline
        from ..model.weights import resolve

        weights_text = resolve(weights).describe()
        pipeline = SkyPipeline.from_pretrained(weights, device=device)
    elif needs_model:
        weights_text = "a SkyPipeline passed in"

    report = EvalReport(
        data=str(data),
        weights=weights_text,
        device=str(pipeline.device) if needs_model else None,
        systems={s: SystemReport(s) for s in systems},
        photo_size=photo_size,
        directions=directions,
    )
    if directions is not None:
        report.systems["best"] = SystemReport(
            "best", label_text=f"best of {directions} directions", real=report.real.clips
        )
    per_sequence = Counter(c.sequence for c in index.clips)
    for start in range(0, count, batch_size):
        names, reals = [], []
        for i in range(start, min(start + batch_size, count)):
            name = _clip_name(index, index.clips[i], per_sequence)
            item = dataset[i]
            if item is None:
                report.skipped.append(f"{name}: a frame could not be read")
                continue
            names.append(name)
            reals.append(item.numpy().transpose(1, 2, 3, 0))  # (3,T,H,W) -> (T,H,W,3)
        if not reals:
            continue
        real = np.stack(reals)
        preds, fits = _system_videos(pipeline, real, systems, batch_size, photo_size)
        for i, name in enumerate(names):
            ref = real_clip(real[i], name)  # the real clip's flows: computed once, used by every system
            report.real.clips[name] = ref
            report.real_motion[name] = ref.motion
            for s in systems:
                report.systems[s].clips.append(score_clip(preds[s][i], real[i], clip=name, reference=ref))
            if directions is not None:
                best = _best_direction(real[i], preds["stage2"][i], directions, photo_size)
                report.systems["best"].clips.append(score_clip(best, real[i], clip=name, reference=ref))
            if "default" in systems:
                used, fitted = fits[i]
                agrees = None
                if ref.direction is not None:
                    agrees = mm.agree_within(fitted, ref.direction, DIRECTION_AGREES)
                report.systems["default"].auto_direction[name] = (used, agrees)
            if on_clip is not None:
                on_clip(name, len(report.real_motion) + len(report.skipped), count)
    return report


def _default_video(
    first: np.ndarray, prediction: np.ndarray, photo_size: int | None, direction: float | None = None
):
    """``steady.default_output`` for a clip's first frame, at ``photo_size`` when given (the frame enlarged
    bicubically, the output shrunk back to the clip's size): (frames, field)."""
    import cv2

    from ..render.steady import default_output

    if photo_size is None:
        return default_output(first, prediction, direction)
    h, w = first.shape[:2]
    big = cv2.resize(first, (photo_size, photo_size), interpolation=cv2.INTER_CUBIC)
    video, fit = default_output(big, prediction, direction)
    small = np.stack([cv2.resize(f, (w, h), interpolation=cv2.INTER_AREA) for f in video])
    return small, fit


def _best_direction(real: np.ndarray, prediction: np.ndarray, k: int, photo_size: int | None) -> np.ndarray:
    """The default output with the direction (of 0, 360/k, ...) whose PSNR against ``real`` is best."""
    best, best_psnr = None, -math.inf
    for i in range(k):
        video, _ = _default_video(real[0], prediction, photo_size, 360.0 * i / k)
        psnr = float(psnr_frames(video[1:], real[1:]).mean())
        if psnr > best_psnr:
            best, best_psnr = video, psnr
    return best


def _system_videos(
    pipeline, real: np.ndarray, systems: Sequence[str], batch_size: int, photo_size: int | None = None
) -> tuple[dict[str, np.ndarray], list[tuple[bool, float | None]]]:
    """Each asked system's videos for a batch of real clips (N,T,H,W,3), and for the default system, per
    clip, whether ``--direction auto`` took the prediction's direction and the direction it fitted. The
    default and transfer systems start from Stage II's prediction, made once for both."""
    preds: dict[str, np.ndarray] = {}
    for s in systems:
        if s == "copy":
            preds[s] = np.stack([copy_baseline(r) for r in real])
        elif s in ("stage1", "stage2"):
            preds[s] = pipeline.predict_squares(real[:, 0], stage=int(s[-1]), batch_size=batch_size)
    if ("default" in systems or "transfer" in systems) and "stage2" not in preds:
        preds["stage2"] = pipeline.predict_squares(real[:, 0], stage=2, batch_size=batch_size)
    fits: list[tuple[bool, float | None]] = []
    if "default" in systems:
        made = [_default_video(r[0], y, photo_size) for r, y in zip(real, preds["stage2"], strict=True)]
        preds["default"] = np.stack([video for video, _ in made])
        fits = [(fit.source == "prediction", fit.direction) for _, fit in made]
    if "transfer" in systems:
        from ..render.transfer import transfer

        preds["transfer"] = np.stack([transfer(r[0], y) for r, y in zip(real, preds["stage2"], strict=True)])
    return preds, fits
