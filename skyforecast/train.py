"""Training and fine-tuning MD-GAN: Stage I (Base-Net G1 vs D1) then Stage II (Refine-Net G2 vs D2 on the
frozen Base-Net's outputs), with a run folder a person can read:

    RUN_DIR/
      config.json            the settings of the run (and of each resumed session)
      metrics.jsonl          one JSON object per logged step
      previews/step_*.gif    input | Stage I | Stage II | real, for one fixed clip (labelled panels)
      checkpoints/step_*.pt  the last few full training states (atomic writes)
      model/                 the exported MDGAN (config.json + model.safetensors + README.md card)

One step numbering everywhere: ``step`` is the run's global optimiser step (Stage I's steps, then Stage II's),
the same number in metrics.jsonl, ``step_{step:08d}.pt`` and ``step_{step:08d}.gif``; ``stage_step`` counts
within the stage. ``steps``/``epochs`` are each stage's budget: a resumed run trains the stage in progress
(and those after it) to the budget it is given now; a stage that has ended, with the run moved on to the
next one, is never reopened.

The same code runs single-process and under ``torchrun`` (DDP): every rank trains on its shard of the
clips, rank 0 alone writes files. ``train(TrainConfig(...))`` is the API the CLI and the tests call.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from . import __version__
from .data import (
    CROPS,
    FRAMES,
    SIZE,
    ClipDataset,
    ClipSampler,
    DataError,
    collate_clips,
    discover_clips,
    to_model_range,
)
from .files import atomic_path, atomic_write_bytes
from .losses import adversarial_loss, content_loss, frame_difference_loss, ranking_loss_layers
from .models import MDGAN, Discriminator, Generator, _batch_statistics, widened_state
from .weights import TRAIN_CHECKPOINT_FORMAT as CHECKPOINT_FORMAT

DEFAULT_LR = 2e-4
FINETUNE_LR = 5e-5
DEFAULT_EPOCHS = 10
# settings that describe one session, not the run: `--resume` does not carry them over
SESSION_ONLY = ("resume", "stop_after", "progress")

__all__ = [
    "DEFAULT_LR",
    "FINETUNE_LR",
    "TrainConfig",
    "TrainError",
    "Trainer",
    "export_checkpoint",
    "finetune",
    "latest_checkpoint",
    "resumed_config",
    "start_weights",
    "stored_config",
    "train",
    "write_model_folder",
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
    ndf: int = 32
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
    precision: str = "fp32"  # fp32 | bf16 | fp16
    resume: bool = False
    weights: str | None = None  # start from these weights (finetune): folder, Hub id[@rev], ...
    num_workers: int = 2
    seed: int = 0
    log_every: int = 10
    preview_every: int = 200
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
        if self.precision not in ("fp32", "bf16", "fp16"):
            raise TrainError(f"--precision must be fp32, bf16 or fp16, got {self.precision!r}")
        if self.d_rank not in ("bounded", "negate"):
            raise TrainError(f"d_rank must be bounded or negate, got {self.d_rank!r}")
        if self.refine_init not in (None, "base", "weights", "random"):
            raise TrainError(f"--refine-init must be base, weights or random, got {self.refine_init!r}")
        if self.refine_init == "weights" and not self.weights:
            raise TrainError("--refine-init weights needs starting --weights (use finetune)")
        if self.crop not in CROPS:
            raise TrainError(f"--crop must be one of {', '.join(CROPS)}, got {self.crop!r}")
        for name in ("batch_size", "ngf", "ndf", "log_every", "preview_every", "checkpoint_every"):
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
    def stages(self) -> list[int]:
        return {"1": [1], "2": [2], "all": [1, 2]}[self.stage]


# ---- distributed bookkeeping --------------------------------------------------------------------------


@dataclass
class _Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1


def _dist_from_env() -> _Dist:
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return _Dist()
    return _Dist(int(os.environ.get("RANK", "0")), world, int(os.environ.get("LOCAL_RANK", "0")))


def _unwrap(m: nn.Module) -> nn.Module:
    return m.module if isinstance(m, nn.parallel.DistributedDataParallel) else m


def _init_weights(m: nn.Module) -> None:
    """DCGAN/pix2pix initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0.
    Small initial weights keep the Tanh output and the discriminator logits near their linear range."""
    if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _set_requires_grad(m: nn.Module, flag: bool) -> None:
    for p in m.parameters():
        p.requires_grad_(flag)


def _pick_device(name: str, d: _Dist) -> torch.device:
    # Not pipeline.pick_device: training's `auto` skips MPS on purpose (3D transposed convolutions are
    # not reliably supported there), and under DDP each process takes its local rank's GPU.
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    try:
        device = torch.device(name)
    except RuntimeError as e:
        raise TrainError(f"--device {name!r}: {e}") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise TrainError("--device cuda: no CUDA device is available here")
        if d.on or device.index is None:
            device = torch.device("cuda", d.local_rank if d.on else torch.cuda.current_device())
        torch.cuda.set_device(device)
    if device.type == "mps" and not torch.backends.mps.is_available():
        raise TrainError("--device mps: MPS is not available here")
    return device


# ---- run folder helpers --------------------------------------------------------------------------------


def _atomic_torch_save(obj, path: Path) -> None:
    """``files.atomic_path`` with an fsync: a crash (or a full disk) mid-write leaves the previous checkpoints
    intact and never a half-written ``step_*.pt``."""
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        torch.save(obj, f)
        f.flush()
        os.fsync(f.fileno())


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """A run's checkpoints, oldest first."""
    folder = Path(run_dir) / "checkpoints"
    if not folder.is_dir():
        return []
    return sorted(folder.glob("step_*.pt"))


def latest_checkpoint(run_dir: str | os.PathLike) -> Path | None:
    ckpts = list_checkpoints(run_dir)
    return ckpts[-1] if ckpts else None


def _rng_state() -> dict:
    np_state = np.random.get_state()
    state = {
        "python": random.getstate(),
        "numpy": {
            "name": np_state[0],
            "keys": torch.from_numpy(np_state[1].astype(np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached": float(np_state[4]),
        },
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def _uint8_frames(v: torch.Tensor) -> np.ndarray:
    """(3, T, H, W) in [-1, 1] -> (T, H, W, 3) uint8."""
    v = ((v.detach().float().clamp(-1, 1) + 1) * 127.5).round().to(torch.uint8)
    return v.permute(1, 2, 3, 0).cpu().numpy()


# ---- the trainer ---------------------------------------------------------------------------------------


class Trainer:
    """Holds the four networks, their optimisers and the loop state. ``setup()`` builds everything
    (data, models, resume); ``run()`` trains to the end of the plan and returns the exported model
    folder. Split in two so tests can look at the models before the first step."""

    def __init__(self, config: TrainConfig, console=None):
        config.validate()
        self.cfg = config
        self.d = _dist_from_env()
        self.out = Path(config.out)
        self.console = console
        self.is_setup = False

    # -- printing
    def log(self, message: str) -> None:
        if not self.d.main:
            return
        if self.console is not None:
            self.console.print(message, highlight=False)
        else:
            print(message, flush=True)

    # -- setup
    def setup(self) -> Trainer:
        cfg, d = self.cfg, self.d
        if d.on and not dist.is_initialized():
            backend = (
                "nccl"
                if (cfg.device.startswith("cuda") or (cfg.device == "auto" and torch.cuda.is_available()))
                else "gloo"
            )
            dist.init_process_group(backend=backend)
        self.device = _pick_device(cfg.device, d)
        if cfg.sync_bn and self.device.type != "cuda":
            raise TrainError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel)")
        if cfg.precision == "fp16" and self.device.type == "cpu":
            self.log("[yellow]note:[/] fp16 on CPU is slow and rarely helps; bf16 is the CPU option")
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not cfg.deterministic

        # the run folder: refuse to mix two runs in one folder
        ckpt = latest_checkpoint(self.out)
        if cfg.resume and ckpt is None:
            raise TrainError(f"{self.out}: no checkpoint to resume from (checkpoints/step_*.pt)")
        if not cfg.resume and (ckpt is not None or (self.out / "metrics.jsonl").exists()):
            raise TrainError(
                f"{self.out} already holds a run: pass --resume to continue it, or another --out"
            )

        checkpoint = self._load_checkpoint() if cfg.resume else None
        if checkpoint is not None:
            saved = checkpoint["config"]
            # Refine-Net's width may still change while its stage has not begun (a Stage I run continued
            # with --stage 2 --resume): it has not been trained, and Stage II starts it afresh anyway
            refine_open = int(checkpoint["stage"]) == 1 and cfg.refine_ngf is not None
            for key in ("ngf", "ndf") if refine_open else ("ngf", "ndf", "refine_ngf"):
                given, kept = getattr(cfg, key), saved.get(key)  # runs before refine_ngf existed: None
                # finetune has no --ngf (its width comes from its weights); refine_ngf None = not given
                user_set = {"ngf": not cfg.weights, "ndf": True, "refine_ngf": given is not None}[key]
                if given != kept and user_set:
                    self.log(f"note: resuming with the run's {key}={kept} (not {given})")
                setattr(cfg, key, kept)
            self._note_changed_settings(stored_config(self.out) or saved)

        # seeds before building anything random
        random.seed(cfg.seed)
        np.random.seed(cfg.seed)
        torch.manual_seed(cfg.seed)

        # initial weights (finetune) decide the width
        self.init_model: MDGAN | None = None
        self.batch_stats = False
        if cfg.weights and checkpoint is None:
            from .models import WeightsError
            from .weights import load_model

            try:  # a run folder stands for its model/ (weights.run_model_folder), as for every command
                self.init_model = load_model(cfg.weights, device="cpu")
            except WeightsError as e:
                raise TrainError(str(e)) from None
            cfg.ngf = self.init_model.ngf
            if cfg.refine_ngf is None and self.init_model.refine_ngf != cfg.ngf:
                cfg.refine_ngf = self.init_model.refine_ngf
            self.batch_stats = self.init_model.batch_stats
        if checkpoint is not None:
            self.batch_stats = bool(checkpoint.get("batch_stats", False))

        # data
        self.index = discover_clips(cfg.data, FRAMES, cfg.clip_stride)
        self.dataset = ClipDataset(self.index, SIZE, cfg.crop)
        self.sampler = ClipSampler(
            len(self.dataset), shuffle=True, flip=cfg.flip, seed=cfg.seed, num_replicas=d.world, rank=d.rank
        )
        per_rank = self.sampler.per_rank()
        self.batch_size = cfg.batch_size
        if per_rank < self.batch_size:
            self.log(
                f"note: {len(self.dataset)} clips over {d.world} process(es) is fewer than --batch-size "
                f"{cfg.batch_size}; using batches of {per_rank}"
            )
            self.batch_size = per_rank
        self.batches_per_epoch = per_rank // self.batch_size
        self.log(f"data: {self.index.summary()}")

        # models
        self.refine_start = self._refine_start()
        self.g1 = Generator(cfg.ngf, outer_skips=True)
        self.g2 = Generator(cfg.refine_ngf or cfg.ngf, outer_skips=False)
        self.d1 = Discriminator(cfg.ndf)
        self.d2 = Discriminator(cfg.ndf)
        for m in (self.g1, self.g2, self.d1, self.d2):
            m.apply(_init_weights)
        if self.init_model is not None:
            self.g1.load_state_dict(self.init_model.base.state_dict())
            if self.refine_start == "weights":
                self.g2.load_state_dict(self._widened(self.init_model.refine))
        if cfg.sync_bn and d.on:
            self.g1, self.g2, self.d1, self.d2 = (
                nn.SyncBatchNorm.convert_sync_batchnorm(m) for m in (self.g1, self.g2, self.d1, self.d2)
            )
        for m in (self.g1, self.g2, self.d1, self.d2):
            m.to(self.device)
        betas = (cfg.beta1, cfg.beta2)
        self.opt = {
            name: torch.optim.Adam(getattr(self, name).parameters(), lr=cfg.lr, betas=betas)
            for name in ("g1", "g2", "d1", "d2")
        }
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[cfg.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=cfg.precision == "fp16")

        # loop state
        self.stage_idx = 0
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.skipped_clips = 0
        self.stage_steps: dict[int, int] = {}  # steps each stage has trained so far in this run
        if checkpoint is not None:
            self._restore(checkpoint)
        elif 2 in cfg.stages and 1 not in cfg.stages and self.init_model is None:
            raise TrainError(
                "Stage II trains on a trained Base-Net's outputs: run --stage 1 first and continue that run "
                "with --stage 2 --resume, or start from trained weights with `skyforecast finetune --stage 2`"
            )

        self.lambda_con2 = cfg.lambda_con if cfg.lambda_con2 is None else cfg.lambda_con2
        self._preview_clip = self._pick_preview_clip()
        if d.main:
            self.out.mkdir(parents=True, exist_ok=True)
            (self.out / "checkpoints").mkdir(exist_ok=True)
            (self.out / "previews").mkdir(exist_ok=True)
            self._write_run_config()
            if checkpoint is not None:
                self._truncate_metrics(self.global_step)
        self.is_setup = True
        return self

    def _load_checkpoint(self) -> dict:
        errors = []
        for path in reversed(list_checkpoints(self.out)):
            try:
                ck = torch.load(path, map_location="cpu", weights_only=True)
                if ck.get("format") != CHECKPOINT_FORMAT:
                    raise ValueError("not a skyforecast training checkpoint")
                if errors:
                    self.log(f"[yellow]warning:[/] skipped unreadable checkpoint(s): {'; '.join(errors)}")
                self.log(f"resuming from {path}")
                return ck
            except Exception as e:  # truncated / foreign file: fall back to the previous one
                errors.append(f"{path.name} ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__})")
        raise TrainError(f"{self.out}: no readable checkpoint ({'; '.join(errors)})")

    def _restore(self, ck: dict) -> None:
        cfg = self.cfg
        for name in ("g1", "g2", "d1", "d2"):
            if name == "g2" and ck["models"][name]["conv1.weight"].shape != self.g2.conv1.weight.shape:
                continue  # a new Refine-Net width before Stage II began (see setup): nothing trained to keep
            getattr(self, name).load_state_dict(ck["models"][name])
            self.opt[name].load_state_dict(ck["optim"][name])
            for group in self.opt[name].param_groups:  # a resumed run may change the learning rate
                group["lr"] = cfg.lr
        if "scaler" in ck and ck["scaler"]:
            self.scaler.load_state_dict(ck["scaler"])
        stage = int(ck["stage"])
        self.global_step = int(ck["global_step"])
        self.skipped_clips = int(ck.get("skipped_clips", 0))
        self.stage_steps = _stage_steps(ck)
        if stage not in cfg.stages:
            if stage == 1 and cfg.stages == [2]:  # Stage I run continued as Stage II
                self.stage_idx, self.step, self.epoch, self.batch_in_epoch = 0, 0, 0, 0
                _set_rng_state(ck["rng"])
                return
            raise TrainError(f"the checkpoint is in Stage {stage}, which --stage {cfg.stage} does not train")
        self.stage_idx = cfg.stages.index(stage)
        self.step = int(ck["step"])
        self.epoch = int(ck["epoch"])
        self.batch_in_epoch = int(ck["batch_in_epoch"])
        _set_rng_state(ck["rng"])

    def _note_changed_settings(self, stored: dict) -> None:
        """One note naming every setting of this session that differs from what the run stored (the CLI
        carries the stored ones over unless they are given again, see ``resumed_config``)."""
        changed = [
            f"{k} {stored[k]} -> {v}"
            for k, v in asdict(self.cfg).items()
            if k in stored and k not in SESSION_ONLY and stored[k] != v
        ]
        if changed:
            self.log(
                f"note: resuming with changed settings: {', '.join(changed)}; the others as the run had them"
            )

    def _write_run_config(self) -> None:
        path = self.out / "config.json"
        sessions = []
        if path.exists():
            try:
                sessions = json.loads(path.read_text()).get("sessions", [])
            except (OSError, ValueError):
                sessions = []
        sessions.append(
            {
                "started": _dt.datetime.now().isoformat(timespec="seconds"),
                "resumed_at_global_step": self.global_step if self.cfg.resume else None,
                "world_size": self.d.world,
                "device": str(self.device),
            }
        )
        info = {
            "config": asdict(self.cfg),
            "effective": {
                "batch_size_per_process": self.batch_size,
                "global_batch_size": self.batch_size * self.d.world,
                "batches_per_epoch": self.batches_per_epoch,
                # the budget of each stage this session trains (from the current one on), and what each
                # stage had already trained when it started
                "steps_per_stage": {str(s): self.total_steps() for s in self.cfg.stages[self.stage_idx :]},
                "steps_done": {str(s): n for s, n in sorted(self.stage_steps.items())},
                "lambda_con2": self.cfg.lambda_con if self.cfg.lambda_con2 is None else self.cfg.lambda_con2,
                "clips": len(self.dataset),
                "data": self.index.summary(),
            },
            "versions": {"skyforecast": __version__, "torch": torch.__version__},
            "sessions": sessions,
        }
        atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())

    def _truncate_metrics(self, global_step: int) -> None:
        """Drop metric lines logged after the checkpoint we resumed from: those steps are redone."""
        path = self.out / "metrics.jsonl"
        if not path.exists():
            return
        keep = []
        for line in path.read_text().splitlines():
            try:
                record = json.loads(line)  # lines of runs before one numbering carry "global_step"
                if record.get("global_step", record.get("step", 0)) <= global_step:
                    keep.append(line)
            except ValueError:
                continue
        atomic_write_bytes(path, ("\n".join(keep) + "\n" if keep else "").encode())

    def _refine_start(self) -> str:
        """``cfg.refine_start``, checked against the widths. A wider Refine-Net than its source (Base-Net, or
        the loaded Refine-Net) starts as a widened copy when its width is a multiple of the source's
        (``models.widened_state``); otherwise it starts random, unless a copy was asked for by name, which
        is an error."""
        cfg = self.cfg
        start = cfg.refine_start
        width = cfg.refine_ngf or cfg.ngf
        source = {"base": cfg.ngf, "weights": self.init_model.refine_ngf if self.init_model else width}
        if start in source and width % source[start]:
            what = "Base-Net" if start == "base" else "the loaded Refine-Net"
            if cfg.refine_init is not None:
                raise TrainError(
                    f"--refine-init {start}: {what} is {source[start]} wide, Refine-Net here {width} "
                    "(--refine-ngf), not a multiple; use --refine-init random"
                )
            self.log(f"note: Refine-Net ({width} wide) starts random: {what} is {source[start]} wide")
            return "random"
        return start

    def _widened(self, source: Generator) -> dict[str, torch.Tensor]:
        """``source``'s weights for Refine-Net: a plain copy at the same width; at k times the width each
        channel repeated k times, with 1% noise so that the copies can drift apart while training."""
        width, narrow = self.cfg.refine_ngf or self.cfg.ngf, source.conv1.weight.shape[0]
        state = widened_state(source, width, noise=0.0 if narrow == width else 0.01, seed=self.cfg.seed)
        if narrow != width:
            self.log(f"Refine-Net: {width} wide, each channel of the {narrow}-wide copy repeated")
        return state

    def _pick_preview_clip(self) -> torch.Tensor | None:
        for i in range(min(len(self.dataset), 8)):
            clip = self.dataset[i]
            if clip is not None:
                return clip
        return None

    def total_steps(self) -> int:
        if self.cfg.steps is not None:
            return self.cfg.steps
        return (self.cfg.epochs if self.cfg.epochs is not None else DEFAULT_EPOCHS) * self.batches_per_epoch

    @property
    def stage(self) -> int:
        return self.cfg.stages[self.stage_idx]

    # -- the steps
    def _autocast(self):
        if self.amp_dtype is None:
            return nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _base_output(self, x: torch.Tensor) -> torch.Tensor:
        """Frozen Base-Net (Stage II): eval mode, no grad; batch statistics if the weights need them."""
        g1 = _unwrap(self.g1)
        with torch.no_grad(), _batch_statistics(g1, self.batch_stats), self._autocast():
            return g1(x).float()

    def _backward_step(self, loss: torch.Tensor, name: str) -> None:
        opt = self.opt[name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def train_step_stage1(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g1, d1 = self.g1, self.d1
        x = real[:, :, :1].expand_as(real)  # the first frame duplicated 32 times
        with self._autocast():
            y1 = g1(x)
        # D1: real clips vs Base-Net clips
        _set_requires_grad(d1, True)
        with self._autocast():
            o_real, o_fake = d1(real), d1(y1.detach())
        loss_d = adversarial_loss(o_real.logit, True) + adversarial_loss(o_fake.logit, False)
        self._backward_step(loss_d, "d1")
        # G1: fool the (updated) D1 and match the real clip pixel by pixel
        _set_requires_grad(d1, False)
        with self._autocast():
            o_gen = _unwrap(d1)(y1)  # D1's gradients are not needed: bypass DDP's all-reduce
        adv = adversarial_loss(o_gen.logit, True)
        l1 = content_loss(y1, real)
        flicker = frame_difference_loss(y1, real, order=2)
        loss_g = adv + self.cfg.lambda_con * l1
        if self.cfg.lambda_flicker:
            loss_g = loss_g + self.cfg.lambda_flicker * flicker
        self._backward_step(loss_g, "g1")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            "d_real": torch.sigmoid(o_real.logit.detach().float()).mean(),
            "d_fake": torch.sigmoid(o_fake.logit.detach().float()).mean(),
        }

    def train_step_stage2(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g2, d2, lam = self.g2, self.d2, self.cfg.lambda_rank
        x = real[:, :, :1].expand_as(real)
        y1 = self._base_output(x)
        with self._autocast():
            y2 = g2(y1)
        # D2: tell real from refined, and *maximise* the ranking loss (adversarial ranking)
        _set_requires_grad(d2, True)
        with self._autocast():
            o_real, o_fake, o_base = d2(real), d2(y2.detach()), d2(y1)
        loss_d_adv = adversarial_loss(o_real.logit, True) + adversarial_loss(o_fake.logit, False)
        if self.cfg.d_rank == "negate":  # the literal reading: D2 minimises -L_rank (unbounded)
            rank_d = -ranking_loss_layers(o_fake, o_real, o_base)
        else:  # bounded: D2 minimises -log(1 - p), same direction, saturates like a GAN's BCE
            rank_d = ranking_loss_layers(o_fake, o_real, o_base, reverse=True)
        loss_d = loss_d_adv + lam * rank_d
        self._backward_step(loss_d, "d2")
        # G2: fool D2, move toward the real clip's motion and away from Stage I's, keep content
        _set_requires_grad(d2, False)
        d2m = _unwrap(d2)
        with self._autocast():
            o_gen = d2m(y2)
            with torch.no_grad():
                f_real, f_base = d2m(real), d2m(y1)
        rank_g = ranking_loss_layers(o_gen, f_real, f_base)
        adv = adversarial_loss(o_gen.logit, True)
        l1 = content_loss(y2, real)
        flicker = frame_difference_loss(y2, real, order=2)
        loss_g = adv + lam * rank_g + self.lambda_con2 * l1
        if self.cfg.lambda_flicker:
            loss_g = loss_g + self.cfg.lambda_flicker * flicker
        self._backward_step(loss_g, "g2")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            "rank": rank_g.detach(),
            "rank_d": rank_d.detach(),
            "d_real": torch.sigmoid(o_real.logit.detach().float()).mean(),
            "d_fake": torch.sigmoid(o_fake.logit.detach().float()).mean(),
        }

    # -- previews, checkpoints, export
    @torch.no_grad()
    def write_preview(self) -> Path | None:
        """GIF of input | Stage I | Stage II | real for one fixed clip, generators in eval mode (the way the
        exported model predicts)."""
        if not self.d.main or self._preview_clip is None:
            return None
        import imageio.v3 as iio

        real = to_model_range(self._preview_clip[None].to(self.device))
        x = real[:, :, :1].expand_as(real)
        g1, g2 = _unwrap(self.g1), _unwrap(self.g2)
        modes = (g1.training, g2.training)
        g1.eval()
        g2.eval()
        try:
            with _batch_statistics(g1, self.batch_stats), _batch_statistics(g2, self.batch_stats):
                y1 = g1(x).float()
                y2 = g2(y1).float()
        finally:
            g1.train(modes[0])
            g2.train(modes[1])
        panels = [_uint8_frames(v[0]) for v in (x, y1, y2, real)]
        labels = ("input", "Stage I", "Stage II", "real")
        grid = np.concatenate([_label(p, t) for p, t in zip(panels, labels, strict=True)], axis=2)
        path = self.out / "previews" / f"step_{self.global_step:08d}.gif"
        with atomic_path(path) as tmp:
            iio.imwrite(tmp, grid, duration=125, loop=0)
        return path

    def checkpoint_state(self) -> dict:
        return {
            "format": CHECKPOINT_FORMAT,
            "config": asdict(self.cfg),
            "stage": self.stage,
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "global_step": self.global_step,
            "stage_steps": {str(k): v for k, v in self.stage_steps.items()},
            "clips": len(self.dataset),
            "data_summary": self.index.summary(),
            "world_size": self.d.world,
            "skipped_clips": self.skipped_clips,
            "batch_stats": self.batch_stats,
            "models": {n: _unwrap(getattr(self, n)).state_dict() for n in ("g1", "g2", "d1", "d2")},
            "optim": {n: o.state_dict() for n, o in self.opt.items()},
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": _rng_state(),
        }

    def save_checkpoint(self) -> Path | None:
        if not self.d.main:
            return None
        folder = self.out / "checkpoints"
        path = folder / f"step_{self.global_step:08d}.pt"
        _atomic_torch_save(self.checkpoint_state(), path)
        for old in list_checkpoints(self.out)[: -self.cfg.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def export(self) -> Path | None:
        """Write ``RUN_DIR/model`` (config.json + model.safetensors + README.md card), atomically."""
        if not self.d.main:
            return None
        model = MDGAN(ngf=self.cfg.ngf, batch_stats=self.batch_stats, refine_ngf=self.cfg.refine_ngf)
        model.base.load_state_dict(_plain_bn(_unwrap(self.g1).state_dict()))
        model.refine.load_state_dict(_plain_bn(_unwrap(self.g2).state_dict()))
        facts = _card_facts(
            model,
            asdict(self.cfg),
            self.stage_steps,
            self.global_step,
            clips=len(self.dataset),
            data_summary=self.index.summary(),
            world_size=self.d.world,
        )
        final = write_model_folder(model, self.out / "model", facts)
        self._exported_model = model
        return final

    # -- the loop
    def _loader(self):
        from torch.utils.data import DataLoader

        nw = self.cfg.num_workers
        return DataLoader(
            self.dataset,
            batch_size=self.batch_size,
            sampler=self.sampler,
            num_workers=nw,
            collate_fn=collate_clips,
            drop_last=True,
            pin_memory=self.device.type == "cuda",
            persistent_workers=nw > 0,
            prefetch_factor=2 if nw > 0 else None,
            # its own generator: the worker base seed is then not drawn from the global torch RNG, so
            # how many epochs a session starts does not change the RNG state a resumed run restores
            generator=torch.Generator().manual_seed(self.cfg.seed),
        )

    def _wrap(self, name: str) -> None:
        m = getattr(self, name)
        if self.d.on and not isinstance(m, nn.parallel.DistributedDataParallel):
            ids = [self.device.index] if self.device.type == "cuda" else None
            setattr(self, name, nn.parallel.DistributedDataParallel(m, device_ids=ids))

    def run(self) -> Path:
        if not self.is_setup:
            self.setup()
        cfg = self.cfg
        self._loader_obj = self._loader()
        self.session_steps = 0
        self._metrics_file = open(self.out / "metrics.jsonl", "a") if self.d.main else None  # noqa: SIM115
        if self.global_step == 0 and self.step == 0:
            self.write_preview()
        progress = self._progress()
        stopped = False
        try:
            with progress if progress is not None else nullcontext():
                while self.stage_idx < len(cfg.stages):
                    stopped = self._run_stage(progress)
                    if stopped or self.stage_idx + 1 >= len(cfg.stages):
                        break
                    # The stage has ended and the run moves on. The checkpoint says so (next stage, step 0):
                    # resuming never reopens a finished stage, wherever the run is stopped, so a larger
                    # --steps always extends the stage in progress and those after it.
                    self.stage_idx += 1
                    self.step = self.epoch = self.batch_in_epoch = 0
                    self.stage_steps.setdefault(self.stage, 0)
                    self.save_checkpoint()
                    if cfg.stop_after is not None and self.session_steps >= cfg.stop_after:
                        stopped = True
                        break
        finally:
            if self._metrics_file is not None:
                self._metrics_file.close()
        model_dir = self.export()
        if self.d.main:
            where = (
                f"stopped at step {self.global_step} (Stage {'I' if self.stage == 1 else 'II'} step "
                f"{self.step} of {self.total_steps()})"
                if stopped
                else f"finished at step {self.global_step}"
            )
            self.log(f"{where}; model exported to {model_dir}")
            if cfg.push_to_hub and not stopped:
                self._push(model_dir)
        if self.d.on:
            dist.barrier()
        return self.out / "model"

    def _push(self, model_dir: Path) -> None:
        """Upload the exported folder as it is (with its card; the mixin's push_to_hub would write a
        placeholder card of its own)."""
        try:
            from huggingface_hub import HfApi

            api = HfApi()
            repo = api.create_repo(self.cfg.push_to_hub, exist_ok=True)
            api.upload_folder(folder_path=str(model_dir), repo_id=repo.repo_id, commit_message="skyforecast")
            url = repo.url if hasattr(repo, "url") else str(repo)
        except Exception as e:  # network / auth problems: the run itself succeeded
            raise TrainError(f"trained and exported to {model_dir}, but the Hub upload failed: {e}") from None
        self.log(f"pushed to {url}")

    def _progress(self):
        if not (self.d.main and self.cfg.progress):
            return None
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        return Progress(
            TextColumn("[bold]Stage {task.fields[stage]}"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("epoch {task.fields[epoch]}"),
            TextColumn("{task.fields[rate]} clips/s"),
            TimeRemainingColumn(),
            TextColumn("{task.fields[losses]}"),
            console=self.console,
            transient=False,
        )

    def _run_stage(self, progress) -> bool:
        """Train the current stage to its step budget. Returns True when the session stops early."""
        cfg, total = self.cfg, self.total_steps()
        stage = self.stage
        train_gen = self.g1 if stage == 1 else self.g2
        models = (self.g1, self.d1) if stage == 1 else (self.g2, self.d2)
        for m in models:
            m.train()
        _set_requires_grad(train_gen, True)
        if stage == 2:
            self.g1.eval()
            _set_requires_grad(self.g1, False)
            _set_requires_grad(self.d1, False)
        else:
            _set_requires_grad(self.g2, False)
            _set_requires_grad(self.d2, False)
        self._wrap("g1" if stage == 1 else "g2")
        self._wrap("d1" if stage == 1 else "d2")
        step_fn = self.train_step_stage1 if stage == 1 else self.train_step_stage2
        if stage == 2 and self.step == 0 and self.refine_start == "base":
            _unwrap(self.g2).load_state_dict(self._widened(_unwrap(self.g1)))
            self.log("Stage II: Refine-Net starts as a copy of Base-Net (--refine-init base)")
        task = None
        if progress is not None:
            task = progress.add_task(
                "",
                total=total,
                completed=self.step,
                stage="I" if stage == 1 else "II",
                epoch=self.epoch,
                rate="-",
                losses="",
            )
        sums: dict[str, float] = {}
        count, t_last, samples = 0, time.perf_counter(), 0
        rate = 0.0
        if self.step >= total:
            return False
        while self.step < total:
            self.sampler.set_epoch(self.epoch)
            self.sampler.set_start(self.batch_in_epoch * self.batch_size)
            seen_any = False
            for batch in self._loader_obj:
                self.skipped_clips += batch["skipped"]
                if batch["video"] is None:  # every clip of this batch was unreadable
                    self.batch_in_epoch += 1
                    if self.batch_in_epoch >= self.batches_per_epoch:
                        self.epoch += 1
                        self.batch_in_epoch = 0
                        break
                    continue
                seen_any = True
                real = to_model_range(batch["video"].to(self.device, non_blocking=True))
                stats = step_fn(real)
                names = sorted(stats)
                vec = torch.stack([stats[n].float() for n in names])
                if self.d.on:
                    dist.all_reduce(vec)
                    vec /= self.d.world
                values = dict(zip(names, vec.tolist(), strict=True))
                if not all(math.isfinite(v) for v in values.values()):
                    last = latest_checkpoint(self.out)
                    bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
                    raise TrainError(
                        f"loss is not finite at step {self.global_step + 1} (Stage {stage} step "
                        f"{self.step + 1}; {bad}); stopped without saving. Last good checkpoint: "
                        f"{last if last else 'none'}. Try a lower --lr"
                        + (" or --precision fp32" if cfg.precision != "fp32" else "")
                    )
                self.step += 1
                self.global_step += 1
                self.stage_steps[stage] = self.step
                self.batch_in_epoch += 1
                self.session_steps += 1
                samples += real.shape[0] * self.d.world
                for k, v in values.items():
                    sums[k] = sums.get(k, 0.0) + v
                count += 1
                if self.batch_in_epoch >= self.batches_per_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
                end_of_stage = self.step >= total
                stop_now = cfg.stop_after is not None and self.session_steps >= cfg.stop_after
                if self.step % cfg.log_every == 0 or end_of_stage or stop_now:
                    now = time.perf_counter()
                    rate = samples / max(now - t_last, 1e-9)
                    self._log_metrics({k: v / count for k, v in sums.items()}, rate)
                    if task is not None:
                        shown = {k: sums[k] / count for k in ("loss_g", "loss_d", "l1", "rank") if k in sums}
                        progress.update(task, losses="  ".join(f"{k} {v:.3f}" for k, v in shown.items()))
                    sums, count, t_last, samples = {}, 0, now, 0
                if task is not None:
                    progress.update(
                        task, completed=self.step, epoch=self.epoch, rate=f"{rate:.2f}" if rate else "-"
                    )
                if self.step % cfg.preview_every == 0 or end_of_stage:
                    self.write_preview()
                last_stage = self.stage_idx + 1 >= len(cfg.stages)
                if (self.step % cfg.checkpoint_every == 0 or end_of_stage or stop_now) and (
                    last_stage or not end_of_stage  # else run() checkpoints the start of the next stage
                ):
                    self.save_checkpoint()
                if end_of_stage:
                    return False
                if stop_now:
                    return True
                if self.batch_in_epoch == 0:
                    break  # epoch finished: re-seed the sampler for the next one
            else:  # loader exhausted without the counter wrapping (cannot happen with drop_last; be safe)
                if self.batch_in_epoch:
                    self.epoch += 1
                    self.batch_in_epoch = 0
            if not seen_any and self.batch_in_epoch == 0 and self.step < total:
                raise DataError(
                    f"{cfg.data}: no clip of a whole epoch could be read "
                    f"({self.skipped_clips} unreadable clips)"
                )
        return False

    def _log_metrics(self, values: dict[str, float], rate: float) -> None:
        if self._metrics_file is None:
            return
        record = {
            "time": _dt.datetime.now().isoformat(timespec="seconds"),
            "step": self.global_step,  # the run's step, as in checkpoint and preview names
            "stage": self.stage,
            "stage_step": self.step,
            "epoch": self.epoch,
            **{k: round(v, 6) for k, v in values.items()},
            "samples_per_s": round(rate, 3),
            "skipped_clips": self.skipped_clips,
            "world_size": self.d.world,
        }
        self._metrics_file.write(json.dumps(record) + "\n")
        self._metrics_file.flush()


def _label(frames: np.ndarray, text: str) -> np.ndarray:
    """Write ``text`` (white on a black box, Pillow's default font) into the top-left corner of every frame
    of a (T, H, W, 3) uint8 panel, so a preview says which panel is which."""
    from PIL import Image, ImageDraw, ImageFont

    font = ImageFont.load_default()
    box = ImageDraw.Draw(Image.new("RGB", (1, 1))).textbbox((2, 1), text, font=font)
    stamp = Image.new("RGB", (box[2] + 2, box[3] + 2))
    ImageDraw.Draw(stamp).text((2, 1), text, fill=(255, 255, 255), font=font)
    h, w = min(stamp.height, frames.shape[1]), min(stamp.width, frames.shape[2])
    out = frames.copy()
    out[:, :h, :w] = np.asarray(stamp)[:h, :w]
    return out


def _stage_steps(ck: dict) -> dict[int, int]:
    """Steps each stage trained, from a checkpoint (older checkpoints: derived from stage/step/global)."""
    if "stage_steps" in ck:
        return {int(k): int(v) for k, v in ck["stage_steps"].items()}
    stage, step, total = int(ck["stage"]), int(ck["step"]), int(ck["global_step"])
    return {1: total - step, 2: step} if stage == 2 and total > step else {stage: step}


def _plain_bn(state: dict) -> dict:
    """SyncBatchNorm and BatchNorm share state-dict keys; nothing to rename, kept as a seam."""
    return state


def _card_facts(
    model: MDGAN,
    settings: dict,
    stage_steps: dict[int, int],
    global_step: int,
    *,
    clips: int | None,
    data_summary: str | None = None,
    world_size: int = 1,
    source: str | None = None,
):
    from .card import CardFacts

    settings = dict(settings)  # the values the run used where the config says "auto"
    if settings.get("lambda_con2") is None:
        settings["lambda_con2"] = settings.get("lambda_con")
    if settings.get("refine_init") is None:
        settings["refine_init"] = "weights" if settings.get("weights") else "base"
    if settings.get("clip_stride") is None:
        settings["clip_stride"] = FRAMES
    return CardFacts(
        ngf=model.ngf,
        refine_ngf=model.refine_ngf,
        batch_stats=model.batch_stats,
        parameters=sum(p.numel() for p in model.parameters()),
        settings=settings,
        stage_steps=dict(stage_steps),
        global_step=global_step,
        clips=clips,
        data_summary=data_summary,
        world_size=world_size,
        source=source,
    )


def write_model_folder(model: MDGAN, final: Path, facts) -> Path:
    """Write ``final`` (config.json + model.safetensors + the README.md card) into a temporary sibling folder,
    then swap it in: a crash leaves the previous folder or none, never a mix."""
    from .card import model_card

    with atomic_path(final, is_dir=True) as tmp:
        model.save_pretrained(tmp)
        # the card replaces the placeholder README the mixin writes
        (tmp / "README.md").write_text(model_card(facts), encoding="utf-8")
    return final


def _first_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__


def export_checkpoint(
    source: str | os.PathLike,
    out: str | os.PathLike,
    *,
    overwrite: bool = False,
    evaluate_on: str | os.PathLike | None = None,
    device: str = "auto",
    limit: int | None = None,
) -> Path:
    """Make a model folder (what ``--weights`` takes) from one training checkpoint: a ``step_*.pt`` of a run,
    or a run folder (its latest checkpoint). The card records the run's data, steps and settings; with
    ``evaluate_on`` (clips) the model is scored with ``skyforecast.evaluate`` and the scores go in the card.
    Our own checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain values only."""
    src = Path(source)
    if src.is_dir():
        ckpt = latest_checkpoint(src)
        if ckpt is None:
            raise TrainError(
                f"{src}: no checkpoints/step_*.pt here (a run folder is what `train --out` made)"
            )
    elif src.is_file():
        ckpt = src
    else:
        raise TrainError(f"{src}: no such checkpoint file or run folder")
    import zipfile

    if not zipfile.is_zipfile(ckpt):
        raise TrainError(f"{ckpt}: not a skyforecast training checkpoint (not a PyTorch zip file)")
    try:
        ck = torch.load(ckpt, map_location="cpu", weights_only=True)
    except Exception as e:  # truncated, or holding objects beyond tensors and plain values (not ours)
        reason = "it holds more than tensors and plain values" if "weights_only" in str(e) else _first_line(e)
        raise TrainError(f"{ckpt}: not a readable skyforecast training checkpoint ({reason})") from None
    if not isinstance(ck, dict) or ck.get("format") != CHECKPOINT_FORMAT:
        raise TrainError(f"{ckpt}: not a skyforecast training checkpoint")
    out = Path(out)
    if out.exists():
        is_model = (out / "config.json").is_file() or (out / "model.safetensors").is_file()
        if not out.is_dir() or (any(out.iterdir()) and not is_model):
            raise TrainError(f"{out}: exists and is not a model folder; choose another output folder")
        if is_model and not overwrite:
            raise TrainError(f"{out}: already holds a model; pass --overwrite to replace it")
    g1, g2 = ck["models"]["g1"], ck["models"]["g2"]
    model = MDGAN(
        ngf=g1["conv1.weight"].shape[0],
        batch_stats=bool(ck.get("batch_stats", False)),
        refine_ngf=g2["conv1.weight"].shape[0],
    )
    model.base.load_state_dict(g1)
    model.refine.load_state_dict(g2)
    model.eval()
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    clips, summary = ck.get("clips"), ck.get("data_summary")
    if clips is None and run is not None:  # checkpoints written before these entries: the run's config
        try:
            effective = json.loads((run / "config.json").read_text())["effective"]
            clips, summary = effective.get("clips"), effective.get("data")
        except (OSError, ValueError, KeyError, TypeError):
            pass
    facts = _card_facts(
        model,
        ck["config"],
        _stage_steps(ck),
        int(ck["global_step"]),
        clips=clips,
        data_summary=summary,
        world_size=int(ck.get("world_size", 1)),
        source=f"checkpoint `{ckpt}`",
    )
    write_model_folder(model, out, facts)
    if evaluate_on is not None:
        from .card import model_card
        from .evaluate import evaluate

        systems = ("stage2", "stage1", "copy")
        report = evaluate(evaluate_on, str(out), device=device, limit=limit, systems=systems)
        facts.scores = {r.label: r.to_dict() for r in report.systems.values()}
        facts.eval_data, facts.eval_clips = str(evaluate_on), report.num_clips
        atomic_write_bytes(out / "README.md", model_card(facts).encode())
    return out


def stored_config(out: str | os.PathLike) -> dict | None:
    """The settings a run folder holds in its config.json (those of its latest session), or None."""
    try:
        config = json.loads((Path(out) / "config.json").read_text())["config"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return config if isinstance(config, dict) else None


def resumed_config(out: str | os.PathLike, given: dict) -> TrainConfig:
    """What ``train --resume`` runs with: every setting the run stored (its config.json, else its latest
    checkpoint), replaced by the settings in ``given``, the ones the user gave again. Session-only
    settings (``SESSION_ONLY``: stop_after, progress) are never carried over. The Trainer names every
    setting that changed in one note."""
    stored = stored_config(out)
    ckpt = latest_checkpoint(out)
    if stored is None and ckpt is not None:
        try:
            stored = torch.load(ckpt, map_location="cpu", weights_only=True).get("config")
        except Exception:  # the Trainer reports unreadable checkpoints when it loads them
            stored = None
    known = {f.name for f in fields(TrainConfig)}
    settings = {k: v for k, v in (stored or {}).items() if k in known and k not in SESSION_ONLY}
    settings.update(given)
    settings.update(out=str(out), resume=True)
    return TrainConfig(**settings)


def start_weights(spec: str | None) -> tuple[str, str]:
    """The weights a fine-tuning run starts from, by the rule every command follows (``weights.resolve``):
    ``spec``, else ``$SKYFORECAST_WEIGHTS``, else the bundled default model. Returns the spec to record
    and one line saying which it is."""
    from .weights import WeightsError, resolve

    try:
        source = resolve(spec)
    except WeightsError as e:
        raise TrainError(str(e)) from None
    location = source.location + (f"@{source.revision}" if source.revision else "")
    return location, f"starting weights: {source.describe()}"


def train(config: TrainConfig, console=None) -> Path:
    """Train (or resume, or fine-tune) as ``config`` says; returns ``RUN_DIR/model``."""
    trainer = Trainer(config, console=console)
    try:
        return trainer.run()
    finally:
        if trainer.d.on and dist.is_initialized():
            dist.destroy_process_group()


def finetune(
    data: str,
    weights: str | None,
    out: str,
    *,
    stage: str = "all",
    lr: float = FINETUNE_LR,
    **settings,
) -> Path:
    """Fine-tune existing weights (anything ``predict --weights`` accepts; None: ``$SKYFORECAST_WEIGHTS``,
    else the bundled model) on new clips. ``stage="2"`` tunes only the Refine-Net (motion) on the loaded
    Base-Net's outputs. Discriminators start fresh."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    if weights is None and settings.get("resume"):  # a resumed run keeps the weights it started from
        weights = (stored_config(out) or {}).get("weights")
    spec, line = start_weights(weights)
    print(line, flush=True)
    return train(TrainConfig(data=data, out=out, stage=stage, lr=lr, weights=spec, **settings))
