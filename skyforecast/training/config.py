"""The settings of a training run, ``TrainConfig``, with their defaults and checks. Kept free of torch so that
the command line can read the defaults (they live here only) without importing the training engine.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

DEFAULT_LR = 2e-4
FINETUNE_LR = 1e-5
FINETUNE_FLICKER = 1000.0
FINETUNE_D_WARMUP = 20
FINETUNE_EMA = 0.99  # the exported model is the generator's weight average (held-out real clips: +0.24 dB)
# what `finetune` (command and Python API) runs with where `train`'s default would not do, unless given
FINETUNE_DEFAULTS = {"lr": FINETUNE_LR, "lambda_flicker": FINETUNE_FLICKER, "ema": FINETUNE_EMA}
DEFAULT_EPOCHS = 10
PRECISIONS = ("auto", "fp32", "bf16", "fp16")
LOGS = ("none", "tensorboard")  # --log: what watches a run besides metrics.jsonl (always written)
# settings that describe one session, not the run: `--resume` does not carry them over
SESSION_ONLY = ("resume", "stop_after", "progress")

__all__ = [
    "DEFAULT_EPOCHS",
    "DEFAULT_LR",
    "FINETUNE_DEFAULTS",
    "FINETUNE_D_WARMUP",
    "FINETUNE_EMA",
    "FINETUNE_FLICKER",
    "FINETUNE_LR",
    "LOGS",
    "PRECISIONS",
    "SESSION_ONLY",
    "TrainConfig",
    "TrainError",
]


class TrainError(Exception):
    """A training run that cannot start or continue (bad settings, diverged loss, nothing to resume).
    One clear line for the command line; never a traceback."""


@dataclass
class TrainConfig:
    """Every setting of a run. Saved as the run's ``config.json``.

    Loss weights: ``lambda_con`` weights the pixel L1 in both stages. The paper's value is not legible;
    we use pix2pix's 100 (with the GAN loss at weight 1): the L1 is a mean over pixels in [-1, 1]
    (about 0.1-0.5) and the BCE about 0.7, so 100 lets content dominate early, which keeps the
    adversarial game from drifting into artefacts while the discriminator is still weak, and the GAN
    term still sharpens what the L1 alone would blur. The paper adds the L1 to Stage II "similar to the
    objective in Stage I", so ``lambda_con2`` defaults to the same weight; ``--lambda-con2 1`` gives the
    literal unweighted reading of the spec's Stage II formula. ``lambda_rank`` = 1 is the paper's.

    D2 "maximises the ranking loss". Maximising ``-log p`` literally (``d_rank="negate"``) has no upper
    bound: D2 wins by scaling its conv1/conv3 features, the Gram distances grow without limit and the
    run diverges (we saw the term triple within 6 steps). The default ``d_rank="bounded"`` has D2
    minimise ``-log(1 - p)`` instead: the same push (rank Y2 nearer Y1 than Y), bounded below by 0,
    the way a GAN discriminator's BCE is.
    """

    data: str
    out: str
    stage: str = "all"  # "1", "2" or "all"
    steps: int | None = None  # optimiser steps per stage (wins over epochs)
    epochs: int | None = None  # passes over the data per stage (default DEFAULT_EPOCHS)
    batch_size: int = 8  # per process
    ngf: int = 32
    refine_ngf: int | None = None  # Refine-Net's width; None = ngf (or the starting weights' Refine-Net)
    ndf: int | None = None  # discriminator width; None = the generator's (ngf), or the shipped ones'
    lr: float = DEFAULT_LR
    beta1: float = 0.5
    beta2: float = 0.999
    lambda_con: float = 100.0
    lambda_con2: float | None = None  # Stage II L1 weight; None = lambda_con
    lambda_rank: float = 1.0
    lambda_flicker: float = 0.0  # weight of the 2nd-order frame-difference L1 (not in the paper; 0 = off)
    d_rank: str = "bounded"  # D2's side of the ranking loss: "bounded" (-log(1-p)) or "negate" (-L_rank)
    refine_init: str | None = None  # G2 at Stage II step 0: "base" | "weights" | "random"; None = auto
    device: str = "auto"
    precision: str = "auto"  # auto (bf16 where the device runs it natively, else fp32) | fp32 | bf16 | fp16
    bn: str | None = None  # generators' BatchNorm while training: "running" | "batch"; None = auto
    d_warmup: int | None = None  # D-only steps at a stage's start when its D starts fresh; None = auto
    ema: float = 0.0  # decay of an average of the trained generator's weights (0 = off)
    val: str | None = None  # clips to score checkpoints on (finetune); the best is exported
    val_split: float = 0.0  # or this share of DATA's sequences, held out from training
    val_every: int = 50  # steps between validations (each also writes a checkpoint)
    resume: bool = False
    weights: str | None = None  # start from these weights (finetune): folder, Hub id[@rev], ...
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    preview_every: int = 200
    log: str = "none"  # "tensorboard": also TensorBoard event files under RUN/tensorboard (tblog)
    checkpoint_every: int = 500
    keep_checkpoints: int = 3
    crop: str = "squash"
    clip_stride: int | None = None
    flip: bool = True
    sync_bn: bool = False
    deterministic: bool = False
    push_to_hub: str | None = None
    stop_after: int | None = None  # stop (checkpoint + export) after this many steps in this session
    progress: bool = True

    def validate(self) -> None:
        if self.stage not in ("1", "2", "all"):
            raise TrainError(f"--stage must be 1, 2 or all, got {self.stage!r}")
        if self.precision not in PRECISIONS:
            raise TrainError(f"--precision must be {', '.join(PRECISIONS)}, got {self.precision!r}")
        if self.bn not in (None, "running", "batch"):
            raise TrainError(f"--bn must be running or batch, got {self.bn!r}")
        if not (0.0 <= self.ema < 1.0):
            raise TrainError("--ema must be in [0, 1) (0 = off)")
        if not (0.0 <= self.val_split < 1.0):
            raise TrainError("--val-split must be in [0, 1)")
        if self.val and self.val_split:
            raise TrainError("give --val CLIPS or --val-split, not both")
        if self.d_warmup is not None and self.d_warmup < 0:
            raise TrainError("--d-warmup must be >= 0")
        if self.d_rank not in ("bounded", "negate"):
            raise TrainError(f"d_rank must be bounded or negate, got {self.d_rank!r}")
        if self.log not in LOGS:
            raise TrainError(f"--log must be {' or '.join(LOGS)}, got {self.log!r}")
        if self.refine_init not in (None, "base", "weights", "random"):
            raise TrainError(f"--refine-init must be base, weights or random, got {self.refine_init!r}")
        if self.refine_init == "weights" and not self.weights:
            raise TrainError("--refine-init weights needs starting --weights (use finetune)")
        from ..io.clips import CROPS  # deferred: data imports torch, this module must stay light

        if self.crop not in CROPS:
            raise TrainError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        if self.ndf is not None and self.ndf < 1:
            raise TrainError("--ndf must be at least 1")
        for name in ("batch_size", "ngf", "log_every", "preview_every", "checkpoint_every", "val_every"):
            if getattr(self, name) < 1:
                raise TrainError(f"--{name.replace('_', '-')} must be at least 1")
        if self.refine_ngf is not None and self.refine_ngf < 1:
            raise TrainError("--refine-ngf must be at least 1")
        if self.keep_checkpoints < 1:
            raise TrainError("keep_checkpoints must be at least 1")
        if self.steps is not None and self.steps < 0:
            raise TrainError("--steps must be >= 0")
        if self.epochs is not None and self.epochs < 0:
            raise TrainError("--epochs must be >= 0")
        if self.num_workers < 0:
            raise TrainError("--num-workers must be >= 0")
        if not (self.lambda_flicker >= 0 and math.isfinite(self.lambda_flicker)):
            raise TrainError("--lambda-flicker must be a number >= 0")
        if not (self.lr > 0 and math.isfinite(self.lr)):
            raise TrainError("--lr must be a positive number")

    @property
    def refine_start(self) -> str:
        """Where Refine-Net starts. Fine-tuning keeps the loaded Refine-Net. From scratch we copy the
        trained Base-Net into it (the two share every layer shape): a randomly initialised Refine-Net
        has no outer skips to carry detail, and in our runs it was still a grey checkerboard after 200
        steps (14.6 dB on real-sky-dev), while the copy starts from a network that already reproduces
        the scene. ``random`` is the paper's literal setting."""
        if self.refine_init is not None:
            return self.refine_init
        return "weights" if self.weights else "base"

    @property
    def bn_mode(self) -> str:
        """How the trained generator's BatchNorm normalises. A fine-tune keeps the running statistics
        the model predicts with, frozen: in batch-statistics mode the bundled Refine-Net's output on 4
        clips differs from its prediction by 0.32 (L1, values in [-1, 1]), more than its error (0.17), so
        the loss would train another function than the one exported, and the running averages drift
        away from the model's. From scratch there are no statistics yet: batch mode, as the paper."""
        if self.bn is not None:
            return self.bn
        return "running" if self.weights else "batch"

    @property
    def warmup_steps(self) -> int:
        """D-only steps at the start of a stage whose discriminator starts fresh in a fine-tune, so that
        the generator's first adversarial gradients come from a discriminator that has seen its output."""
        if self.d_warmup is not None:
            return self.d_warmup
        return FINETUNE_D_WARMUP if self.weights else 0

    @property
    def stages(self) -> list[int]:
        return {"1": [1], "2": [2], "all": [1, 2]}[self.stage]
