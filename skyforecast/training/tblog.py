"""TensorBoard logs of a training run (``--log tensorboard``), for people who watch their runs there.

``metrics.jsonl`` stays the plain record of a run; this writes the same numbers again, as TensorBoard event
files under ``RUN_DIR/tensorboard/`` (so ``tensorboard --logdir runs/`` lists each run), at the run's global
step (the ``step`` of metrics.jsonl and of the preview file names):

- ``stage1/<loss>``, ``stage2/<loss>``: each metrics line's losses (loss_g, loss_d, adv, l1, flicker, rank,
  rank_d, d_real, d_fake), and ``train/samples_per_s``. One group per stage: Stage II's generator loss has a
  ranking term Stage I's has not, so one curve through both would jump at the boundary for no reason.
- ``lr/<network>``: the learning rate of each network the stage trains (g1/d1, then g2/d2).
- at each preview: ``preview`` is the preview GIF itself (input | Stage I | Stage II | real), and
  ``preview_stage1/...``, ``preview_stage2/...`` the scores ``skyforecast evaluate`` gives on that clip
  (``evaluate.score_clip``: psnr, ssim, motion_ratio, inner_motion_ratio, speed, speed_ratio, steadiness,
  leak; one that is undefined on the clip, say steadiness of a still video, is left out), with the real
  clip's own speed, steadiness and leak under ``preview_real/...``.

TensorBoard's video summary is an animated GIF inside an image summary (what ``SummaryWriter.add_video``
writes through moviepy). The preview is already a GIF, so its bytes go into the summary as they are: no
moviepy, no second encoding, and TensorBoard shows exactly the file in ``previews/``.

The ``tensorboard`` package is optional (``pip install "skyforecast[tensorboard]"``) and imported only here,
only when a run asks for it. Only the process that writes the run folder (rank 0) opens a log.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

from .config import TrainError

if TYPE_CHECKING:
    import numpy as np

FOLDER = "tensorboard"
INSTALL = 'pip install "skyforecast[tensorboard]"'
# the evaluate scores logged per preview, and the real clip's own measurements
SYSTEM_SCORES = (
    "psnr",
    "ssim",
    "motion_ratio",
    "inner_motion_ratio",
    "speed",
    "speed_ratio",
    "steadiness",
    "leak",
)
REAL_SCORES = ("speed", "steadiness", "leak")

__all__ = ["FOLDER", "INSTALL", "RunLog", "missing_package", "open_log"]


def missing_package() -> str | None:
    """None when TensorBoard logs can be written here; otherwise the one line that says how to install
    what is missing. Cheap (no torch): the command line asks before a run starts."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return f"the tensorboard package is not installed: {INSTALL}"
    return None


class RunLog:
    """One run's TensorBoard writer. ``purge_step``: the first step a resumed session trains again; events
    an earlier session logged from that step on (after its last checkpoint) are hidden by TensorBoard, so
    each step shows once, with the values of the session that kept it (metrics.jsonl is cut the same way)."""

    def __init__(self, run_dir: str | os.PathLike, purge_step: int | None = None):
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as e:  # tensorboard missing, or too old for PyTorch (which says so)
            raise TrainError(f"--log tensorboard: {missing_package() or e}") from None

        self.folder = Path(run_dir) / FOLDER
        self.writer = SummaryWriter(log_dir=str(self.folder), purge_step=purge_step)
        self._reference = None  # the run's preview clip is fixed: its real clip is measured once

    def scalars(self, step: int, values: dict[str, float]) -> None:
        """``tag -> value`` at ``step``; None values are left out."""
        for tag, value in values.items():
            if value is not None:
                self.writer.add_scalar(tag, float(value), global_step=step)
        self.writer.flush()

    def losses(
        self, step: int, stage: int, values: dict[str, float], rate: float, lrs: dict[str, float]
    ) -> None:
        """One metrics line: the stage's losses, the clips/s rate and each trained network's learning rate."""
        tags = {f"stage{stage}/{name}": v for name, v in values.items()}
        tags["train/samples_per_s"] = rate
        tags.update({f"lr/{name}": lr for name, lr in lrs.items()})
        self.scalars(step, tags)

    def preview(self, step: int, gif: Path, videos: dict[str, np.ndarray]) -> None:
        """The preview GIF as a video summary, and the motion scores of ``videos`` (``"Stage I"``,
        ``"Stage II"`` and ``"real"``: (T,H,W,3) uint8) as ``evaluate`` scores them."""
        from PIL import Image

        data = Path(gif).read_bytes()
        with Image.open(gif) as im:
            width, height = im.size
        self._add_gif("preview", data, width, height, step)
        self.scalars(step, self._scores(videos))

    def _scores(self, videos: dict[str, np.ndarray]) -> dict[str, float | None]:
        from ..evaluation.scoring import real_clip, score_clip

        real = videos["real"]
        if self._reference is None:
            self._reference = real_clip(real, "preview")
        ref = self._reference
        tags: dict[str, float | None] = {f"preview_real/{k}": getattr(ref, k) for k in REAL_SCORES}
        for label, name in (("Stage I", "stage1"), ("Stage II", "stage2")):
            if label in videos:
                score = score_clip(videos[label], real, "preview", reference=ref)
                tags.update({f"preview_{name}/{k}": getattr(score, k) for k in SYSTEM_SCORES})
        return tags

    def _add_gif(self, tag: str, data: bytes, width: int, height: int, step: int) -> None:
        """An image summary holding an animated GIF: TensorBoard's video (its image tab plays it)."""
        from tensorboard.compat.proto.summary_pb2 import Summary

        image = Summary.Image(height=height, width=width, colorspace=3, encoded_image_string=data)
        summary = Summary(value=[Summary.Value(tag=tag, image=image)])
        # SummaryWriter has no public call for a ready-made summary; add_video uses this same file writer
        self.writer._get_file_writer().add_summary(summary, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()


def open_log(kind: str, run_dir: str | os.PathLike, purge_step: int | None = None) -> RunLog | None:
    """The log a run asked for (``TrainConfig.log``): a ``RunLog`` for ``tensorboard``, None for ``none``."""
    return RunLog(run_dir, purge_step) if kind == "tensorboard" else None
