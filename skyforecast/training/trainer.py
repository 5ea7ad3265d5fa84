"""Training and fine-tuning MD-GAN: Stage I (Base-Net G1 vs D1) then Stage II (Refine-Net G2 vs D2 on the
frozen Base-Net's outputs). ``train(TrainConfig(...))`` is the API the CLI and the tests call.

Where things are: the settings in ``trainconfig`` (``TrainConfig``), the run folder (checkpoints, RNG state,
metrics, previews, the exported model) in ``runfolder``, single-process vs ``torchrun`` in ``distributed``;
this module holds the loop. ``Trainer._step`` is what one training step does, ``Trainer._after_step`` what
follows it on its cadence (metrics, preview, checkpoint).

One step numbering everywhere: ``step`` is the run's global optimiser step (Stage I's steps, then Stage II's),
the same number in metrics.jsonl, ``step_{step:08d}.pt`` and ``step_{step:08d}.gif``; ``stage_step`` counts
within the stage. ``steps``/``epochs`` are each stage's budget: a resumed run trains the stage in progress
(and those after it) to the budget it is given now; a stage that has ended, with the run moved on to the
next one, is never reopened.
"""

from __future__ import annotations

import datetime as _dt
import json
import math
import os
import random
import time
from contextlib import nullcontext
from dataclasses import asdict, fields
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from .. import __version__
from ..io.clips import (
    FRAMES,
    SIZE,
    ClipDataset,
    ClipSampler,
    DataError,
    collate_clips,
    discover_clips,
    to_model_range,
)
from ..io.files import atomic_write_bytes
from ..model.networks import MDGAN, Discriminator, Generator, _batch_statistics, widened_state
from ..model.pipeline import to_uint8_video
from .config import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    FINETUNE_DEFAULTS,
    FINETUNE_LR,
    SESSION_ONLY,
    TrainConfig,
    TrainError,
)
from .distributed import all_reduce_mean, dist_from_env, init_process_group, pick_device, unwrap, wrap
from .losses import adversarial_loss, content_loss, frame_difference_loss, ranking_loss_layers
from .runfolder import (
    CHECKPOINT_FORMAT,
    atomic_torch_save,
    card_facts,
    check_out_folder,
    export_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    resumed_config,
    rng_state,
    set_rng_state,
    stage_steps_of,
    stored_config,
    truncate_metrics,
    write_model_folder,
    write_preview,
)
from .tblog import missing_package, open_log
from .validation import VAL_SYSTEMS, Validation, split_index

__all__ = [
    "DEFAULT_LR",
    "FINETUNE_LR",
    "SESSION_ONLY",
    "TrainConfig",
    "TrainError",
    "Trainer",
    "check_out_folder",
    "export_checkpoint",
    "finetune",
    "latest_checkpoint",
    "list_checkpoints",
    "resumed_config",
    "start_weights",
    "stored_config",
    "train",
    "write_model_folder",
]


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


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


class _Meter:
    """Running means of the step losses between two metrics lines, and the clips/s rate over that span."""

    def __init__(self) -> None:
        self.sums: dict[str, float] = {}
        self.counts: dict[str, int] = {}
        self.samples = 0
        self.t_last = time.perf_counter()
        self.rate = 0.0

    def add(self, values: dict[str, float], samples: int) -> None:
        for k, v in values.items():  # per key: a discriminator warm-up step logs no generator loss
            self.sums[k] = self.sums.get(k, 0.0) + v
            self.counts[k] = self.counts.get(k, 0) + 1
        self.samples += samples

    def flush(self) -> dict[str, float]:
        """The means since the last flush (and the rate, in ``self.rate``); starts a new span."""
        now = time.perf_counter()
        self.rate = self.samples / max(now - self.t_last, 1e-9)
        means = {k: v / self.counts[k] for k, v in self.sums.items()}
        self.sums, self.counts, self.samples, self.t_last = {}, {}, 0, now
        return means


class WeightAverage:
    """An exponential moving average of the trained generator's weights (``--ema DECAY``), restarted at
    each stage's start from the generator as it is then. The averaged weights are what previews, validation
    and the exported model use; a finished Stage I hands its average on as the Base-Net Stage II trains on."""

    def __init__(self, decay: float):
        self.decay = decay
        self.state: dict[str, torch.Tensor] = {}

    def reset(self, model: nn.Module) -> None:
        self.state = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.is_floating_point():
                self.state[k].lerp_(v.detach(), 1.0 - self.decay)
            else:
                self.state[k].copy_(v)


def effective_precision(precision: str, device: torch.device) -> str:
    """``auto``: bf16 autocast where the device runs bf16 natively (CPUs with AVX512-BF16 or AMX, CUDA GPUs
    that support it), else fp32. On this project's 2-core AVX512-BF16 CPU a Stage II fine-tune step at
    ngf 8 ran 1.5x faster in bf16 with the same losses (``bench/train.py``)."""
    if precision != "auto":
        return precision
    if device.type == "cpu":
        from ..model.fast import cpu_supports_bf16

        return "bf16" if cpu_supports_bf16() else "fp32"
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return "bf16"
    return "fp32"


def _d_scores(o_real, o_fake) -> dict[str, torch.Tensor]:
    """The discriminator's mean probabilities of "real" on real and generated clips, as logged."""
    return {
        "d_real": torch.sigmoid(o_real.logit.detach().float()).mean(),
        "d_fake": torch.sigmoid(o_fake.logit.detach().float()).mean(),
    }


# ---- the trainer ---------------------------------------------------------------------------------------


class Trainer:
    """Holds the four networks, their optimisers and the loop state. ``setup()`` builds everything
    (data, models, resume); ``run()`` trains to the end of the plan and returns the exported model
    folder. Split in two so tests can look at the models before the first step."""

    def __init__(self, config: TrainConfig, console=None):
        config.validate()
        self.cfg = config
        self.d = dist_from_env()
        self.out = Path(config.out)
        self.console = console
        self.is_setup = False
        self._tb = None  # the TensorBoard log (--log tensorboard), open while run() runs, on rank 0
        if config.log == "tensorboard" and (missing := missing_package()):
            raise TrainError(f"--log tensorboard: {missing}")  # before anything is loaded or written
        self._check_run_folder()  # every process reads the folder before any of them writes to it

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
        """Build everything, phase by phase: the runtime (process group, device), the run folder's state
        (refuse to mix runs; the checkpoint to resume), seeds, starting weights, data, networks and
        optimisers, the loop state, and the run folder's files."""
        self._init_runtime()
        checkpoint = load_checkpoint(self.out, self.log) if self.cfg.resume else None
        if checkpoint is not None:
            self._keep_run_settings(checkpoint)
        _seed_everything(self.cfg.seed)  # before building anything random
        self._load_start_weights(checkpoint)
        self._build_data()
        self._build_models()
        self._init_loop_state(checkpoint)
        self.lambda_con2 = self.cfg.lambda_con if self.cfg.lambda_con2 is None else self.cfg.lambda_con2
        self._preview_clip = self._pick_preview_clip()
        self._prepare_run_folder(resumed=checkpoint is not None)
        self.is_setup = True
        return self

    def _init_runtime(self) -> None:
        cfg = self.cfg
        init_process_group(cfg.device, self.d)
        self.device = pick_device(cfg.device, self.d)
        if cfg.sync_bn and self.device.type != "cuda":
            raise TrainError("--sync-bn needs CUDA devices (PyTorch's SyncBatchNorm has no CPU kernel)")
        self.precision = effective_precision(cfg.precision, self.device)
        if self.precision == "fp16" and self.device.type == "cpu":
            self.log("[yellow]note:[/] fp16 on CPU is slow and rarely helps; bf16 is the CPU option")
        if cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
            torch.use_deterministic_algorithms(True, warn_only=True)
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = not cfg.deterministic

    def _check_run_folder(self) -> None:
        """Refuse to mix two runs in one folder, to write over anything that is not a run of ours, and to
        resume where there is nothing to resume."""
        check_out_folder(self.out, self.cfg.resume)

    def _keep_run_settings(self, checkpoint: dict) -> None:
        """A resumed run keeps its network widths; every other changed setting is named in one note."""
        cfg, saved = self.cfg, checkpoint["config"]
        # Refine-Net's width may still change while its stage has not begun (a Stage I run continued
        # with --stage 2 --resume): it has not been trained, and Stage II starts it afresh anyway
        refine_open = int(checkpoint["stage"]) == 1 and cfg.refine_ngf is not None
        for key in ("ngf", "ndf") if refine_open else ("ngf", "ndf", "refine_ngf"):
            given, kept = getattr(cfg, key), saved.get(key)  # runs before refine_ngf existed: None
            # finetune has no --ngf (its width comes from its weights); refine_ngf None = not given
            user_set = not cfg.weights if key == "ngf" else given is not None
            if given != kept and user_set:
                self.log(f"note: resuming with the run's {key}={kept} (not {given})")
            setattr(cfg, key, kept)
        self._note_changed_settings(stored_config(self.out) or saved)

    def _load_start_weights(self, checkpoint: dict | None) -> None:
        """Fine-tuning's starting weights (not on resume: the checkpoint has them); they decide the width."""
        cfg = self.cfg
        self.init_model: MDGAN | None = None
        self.init_discriminators: dict[str, dict[str, torch.Tensor]] = {}
        self.batch_stats = False
        if cfg.weights and checkpoint is None:
            from ..model.weights import WeightsError, load_discriminators, load_model

            try:  # a run folder stands for its model/ (weights.run_model_folder), as for every command
                self.init_model = load_model(cfg.weights, device="cpu")
                self.init_discriminators = load_discriminators(cfg.weights)
            except WeightsError as e:
                raise TrainError(str(e)) from None
            if self.init_discriminators:
                width = self.init_discriminators["d1"]["conv1.0.weight"].shape[0]
                if cfg.ndf not in (None, width):
                    self.log(
                        f"note: the starting weights' discriminators are {width} wide; --ndf {cfg.ndf} "
                        "starts fresh ones instead"
                    )
                    self.init_discriminators = {}
                else:
                    cfg.ndf = width
                    self.log("discriminators: loaded with the starting weights")
            cfg.ngf = self.init_model.ngf
            if cfg.refine_ngf is None and self.init_model.refine_ngf != cfg.ngf:
                cfg.refine_ngf = self.init_model.refine_ngf
            self.batch_stats = self.init_model.batch_stats
        if checkpoint is not None:
            self.batch_stats = bool(checkpoint.get("batch_stats", False))

    def _build_data(self) -> None:
        cfg, d = self.cfg, self.d
        self.index = discover_clips(cfg.data, FRAMES, cfg.clip_stride)
        self.val_index = None
        if cfg.val_split:
            self.index, self.val_index = split_index(self.index, cfg.val_split, cfg.seed)
        elif cfg.val:
            self.val_index = discover_clips(cfg.val, FRAMES)
        if self.val_index is not None:
            self.log(
                f"validation: {len(self.val_index.clips)} clips not trained on, scored every "
                f"{cfg.val_every} steps; the best step is exported"
            )
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

    def _build_models(self) -> None:
        """The four networks (initialised, or from the starting weights), their optimisers, the AMP setup."""
        cfg = self.cfg
        self.refine_start = self._refine_start()
        if cfg.ndf is None:  # as wide as the generators: a 4x wider D won a fine-tune within 30 steps
            cfg.ndf = cfg.ngf
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
        for name, state in self.init_discriminators.items():
            getattr(self, name).load_state_dict(state)
        if cfg.sync_bn and self.d.on:
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
        self.amp_dtype = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}[self.precision]
        self.scaler = torch.amp.GradScaler(self.device.type, enabled=self.precision == "fp16")
        self.ema = WeightAverage(cfg.ema) if cfg.ema else None
        self.d_loaded = bool(self.init_discriminators)  # shipped discriminators: no warm-up needed
        self.validation = Validation()
        self._best: tuple[MDGAN, dict] | None = None  # the best validated model and its discriminators

    def _init_loop_state(self, checkpoint: dict | None) -> None:
        self.stage_idx = 0
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.global_step = 0
        self.skipped_clips = 0
        self.stage_steps: dict[int, int] = {}  # steps each stage has trained so far in this run
        if checkpoint is not None:
            self._restore(checkpoint)
        elif 2 in self.cfg.stages and 1 not in self.cfg.stages and self.init_model is None:
            raise TrainError(
                "Stage II trains on a trained Base-Net's outputs: run --stage 1 first and continue that run "
                "with --stage 2 --resume, or start from trained weights with `skyforecast finetune --stage 2`"
            )

    def _prepare_run_folder(self, resumed: bool) -> None:
        if not self.d.main:
            return
        self.out.mkdir(parents=True, exist_ok=True)
        (self.out / "checkpoints").mkdir(exist_ok=True)
        (self.out / "previews").mkdir(exist_ok=True)
        self._write_run_config()
        if resumed:
            truncate_metrics(self.out / "metrics.jsonl", self.global_step)

    def _restore(self, ck: dict) -> None:
        cfg = self.cfg
        for name in ("g1", "g2", "d1", "d2"):
            if name not in ck["models"]:
                continue  # a finished stage's discriminator: never trained again, not kept
            if name == "g2" and ck["models"][name]["conv1.weight"].shape != self.g2.conv1.weight.shape:
                continue  # a new Refine-Net width before Stage II began (see setup): nothing trained to keep
            getattr(self, name).load_state_dict(ck["models"][name])
            if name not in ck["optim"]:
                continue  # only the stage in progress keeps its Adam moments (a new stage starts fresh)
            self.opt[name].load_state_dict(ck["optim"][name])
            for group in self.opt[name].param_groups:  # a resumed run may change the learning rate
                group["lr"] = cfg.lr
        if self.ema is not None and ck.get("ema"):
            self.ema.state = ck["ema"]
        self.d_loaded = bool(ck.get("d_loaded", False))
        self.validation = Validation.from_dict(ck.get("validation"), int(ck["global_step"]))
        if "scaler" in ck and ck["scaler"]:
            self.scaler.load_state_dict(ck["scaler"])
        stage = int(ck["stage"])
        self.global_step = int(ck["global_step"])
        self.skipped_clips = int(ck.get("skipped_clips", 0))
        self.stage_steps = stage_steps_of(ck)
        if stage not in cfg.stages:
            if stage == 1 and cfg.stages == [2]:  # Stage I run continued as Stage II
                self.stage_idx, self.step, self.epoch, self.batch_in_epoch = 0, 0, 0, 0
                set_rng_state(ck["rng"])
                return
            raise TrainError(f"the checkpoint is in Stage {stage}, which --stage {cfg.stage} does not train")
        self.stage_idx = cfg.stages.index(stage)
        self.step = int(ck["step"])
        self.epoch = int(ck["epoch"])
        self.batch_in_epoch = int(ck["batch_in_epoch"])
        set_rng_state(ck["rng"])

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
                "precision": self.precision,
                "ndf": self.cfg.ndf,
                "bn": self.cfg.bn_mode,
                "d_warmup": 0 if self.d_loaded else self.cfg.warmup_steps,
            },
            "versions": {"skyforecast": __version__, "torch": torch.__version__},
            "sessions": sessions,
        }
        atomic_write_bytes(path, (json.dumps(info, indent=2) + "\n").encode())

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
        g1 = unwrap(self.g1)
        with torch.no_grad(), _batch_statistics(g1, self.batch_stats), self._autocast():
            return g1(x).float()

    def _backward_step(self, loss: torch.Tensor, name: str) -> None:
        opt = self.opt[name]
        opt.zero_grad(set_to_none=True)
        self.scaler.scale(loss).backward()
        self.scaler.step(opt)

    def train_step_stage1(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g1, d1 = self.g1, self.d1
        warm = self.step < self.warmup  # discriminator-only step: the generator is held
        x = real[:, :, :1].expand_as(real)  # the first frame duplicated 32 times
        with self._autocast(), torch.set_grad_enabled(not warm):
            y1 = g1(x)
        # D1: real clips vs Base-Net clips
        _set_requires_grad(d1, True)
        with self._autocast():
            o_real, o_fake = d1(real), d1(y1.detach())
        loss_d = adversarial_loss(o_real.logit, True) + adversarial_loss(o_fake.logit, False)
        self._backward_step(loss_d, "d1")
        if warm:
            return self._warmup_stats(loss_d, y1, real, o_real, o_fake)
        # G1: fool the (updated) D1 and match the real clip pixel by pixel
        _set_requires_grad(d1, False)
        with self._autocast():
            o_gen = unwrap(d1)(y1)  # D1's gradients are not needed: bypass DDP's all-reduce
        adv = adversarial_loss(o_gen.logit, True)
        l1 = content_loss(y1, real)
        flicker = frame_difference_loss(y1, real, order=2)
        loss_g = adv + self.cfg.lambda_con * l1
        if self.cfg.lambda_flicker:
            loss_g = loss_g + self.cfg.lambda_flicker * flicker
        self._g_update(loss_g, "g1")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            **_d_scores(o_real, o_fake),
        }

    def train_step_stage2(self, real: torch.Tensor) -> dict[str, torch.Tensor]:
        g2, d2, lam = self.g2, self.d2, self.cfg.lambda_rank
        warm = self.step < self.warmup  # discriminator-only step: the generator is held
        x = real[:, :, :1].expand_as(real)
        y1 = self._base_output(x)
        with self._autocast(), torch.set_grad_enabled(not warm):
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
        if warm:
            return {**self._warmup_stats(loss_d, y2, real, o_real, o_fake), "rank_d": rank_d.detach()}
        # G2: fool D2, move toward the real clip's motion and away from Stage I's, keep content
        _set_requires_grad(d2, False)
        d2m = unwrap(d2)
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
        self._g_update(loss_g, "g2")
        self.scaler.update()
        return {
            "loss_g": loss_g.detach(),
            "loss_d": loss_d.detach(),
            "adv": adv.detach(),
            "l1": l1.detach(),
            "flicker": flicker.detach(),
            "rank": rank_g.detach(),
            "rank_d": rank_d.detach(),
            **_d_scores(o_real, o_fake),
        }

    def _warmup_stats(self, loss_d, fake, real, o_real, o_fake) -> dict[str, torch.Tensor]:
        """What a discriminator-only step logs: D's loss and scores, and the held generator's L1."""
        self.scaler.update()
        return {
            "loss_d": loss_d.detach(),
            "l1": content_loss(fake.detach(), real).detach(),
            **_d_scores(o_real, o_fake),
        }

    # -- previews, checkpoints, export
    @torch.no_grad()
    def write_preview(self) -> Path | None:
        """GIF of input | Stage I | Stage II | real for one fixed clip, predicted the way the exported model
        predicts (eval mode, the averaged weights with --ema). Each panel says what it shows: at step 0 of a
        fine-tune the starting model's prediction, from scratch an untrained network."""
        if not self.d.main or self._preview_clip is None:
            return None
        real = to_model_range(self._preview_clip[None].to(self.device))
        x = real[:, :, :1].expand_as(real)
        model = self._snapshot().to(self.device)
        stats = self.batch_stats
        with _batch_statistics(model.base, stats), _batch_statistics(model.refine, stats):
            y1 = model.base(x).float()
            y2 = model.refine(y1).float()
        if self.global_step == 0:
            when = " (start)" if self.cfg.weights else " (untrained)"
        else:
            when = f", step {self.global_step}"
        path = self.out / "previews" / f"step_{self.global_step:08d}.gif"
        panels = {"input": x[0], f"Stage I{when}": y1[0], f"Stage II{when}": y2[0], "real": real[0]}
        write_preview(path, panels)
        if self._tb is not None:
            videos = {"Stage I": y1, "Stage II": y2, "real": real}
            self._tb.preview(self.global_step, path, {k: to_uint8_video(v)[0] for k, v in videos.items()})
        return path

    def _snapshot(self) -> MDGAN:
        """The model as it stands, on the CPU in eval mode: both generators, the one in training replaced by
        its weight average with --ema."""
        model = MDGAN(ngf=self.cfg.ngf, batch_stats=self.batch_stats, refine_ngf=self.cfg.refine_ngf)
        states = {"g1": unwrap(self.g1).state_dict(), "g2": unwrap(self.g2).state_dict()}
        if self.ema is not None and self.ema.state:
            states[f"g{self.stage}"] = self.ema.state
        model.base.load_state_dict(states["g1"])
        model.refine.load_state_dict(states["g2"])
        return model.eval()

    def _discriminators(self) -> dict[str, dict[str, torch.Tensor]]:
        return {
            n: {k: v.detach().cpu().clone() for k, v in unwrap(getattr(self, n)).state_dict().items()}
            for n in ("d1", "d2")
        }

    def _validate(self) -> None:
        """Score the model as it stands on the validation clips; log it (metrics.jsonl, TensorBoard, one
        console line); a new best is exported to ``model/`` at once."""
        if not self.d.main or self.val_index is None:
            return
        from .validation import score_model

        model = self._snapshot()
        scores = score_model(model, self.cfg.val or self.cfg.data, self.val_index, str(self.device))
        new_best = self.validation.add({"step": self.global_step, "stage": self.stage, **scores})
        record = {
            "time": _dt.datetime.now().isoformat(timespec="seconds"),
            "step": self.global_step,
            "stage": self.stage,
            "val": scores,
            "best_step": self.validation.best_step,
        }
        self._metrics_file.write(json.dumps(record) + "\n")
        self._metrics_file.flush()
        if self._tb is not None:
            self._tb.scalars(
                self.global_step,
                {f"val_{system}/{k}": v for system in VAL_SYSTEMS for k, v in scores[system].items()},
            )
        raw = scores["stage2"]
        self.log(
            f"validation at step {self.global_step}: Stage II PSNR {raw['psnr']}, speed ratio "
            f"{raw['speed_ratio']}, steadiness {raw['steadiness']}, leak {raw['leak']}"
            + ("  [best so far]" if new_best else "")
        )
        if new_best:
            self._best = (model, self._discriminators())
            self.export(*self._best)

    def checkpoint_state(self) -> dict:
        kept = ("g1", "g2", "d2") if self.stage == 2 else ("g1", "g2", "d1", "d2")
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
            # what resuming needs: both generators (the model), the discriminators still to be trained, and
            # the Adam moments of the stage in progress only (a finished stage is never reopened, a new one
            # starts its optimisers afresh)
            "models": {n: unwrap(getattr(self, n)).state_dict() for n in kept},
            "optim": {n: self.opt[n].state_dict() for n in (f"g{self.stage}", f"d{self.stage}")},
            "ema": self.ema.state if self.ema is not None else None,
            "d_loaded": self.d_loaded,
            "validation": self.validation.to_dict(),
            "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
            "rng": rng_state(),
        }

    def save_checkpoint(self) -> Path | None:
        if not self.d.main:
            return None
        folder = self.out / "checkpoints"
        path = folder / f"step_{self.global_step:08d}.pt"
        atomic_torch_save(self.checkpoint_state(), path)
        for old in list_checkpoints(self.out)[: -self.cfg.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    def export(self, model: MDGAN | None = None, discriminators: dict | None = None) -> Path | None:
        """Write ``RUN_DIR/model`` (config.json, model.safetensors, discriminators.safetensors, the README.md
        card), atomically: the model as it stands, or the one given (the best validated)."""
        if not self.d.main:
            return None
        model = self._snapshot() if model is None else model
        settings = asdict(self.cfg)
        settings["precision"] = self.precision
        facts = card_facts(
            model,
            settings,
            self.stage_steps,
            self.global_step,
            clips=len(self.dataset),
            data_summary=self.index.summary(),
            world_size=self.d.world,
        )
        if self.validation.history:
            facts.selection = self.validation.reason()
            facts.validation = self.validation.history
            # the steps the exported weights had trained, not the run's
            facts.stage_steps = _stage_steps_at(self.validation.best, self.stage_steps, self.global_step)
            facts.global_step = self.validation.best_step
        final = write_model_folder(
            model, self.out / "model", facts, discriminators=discriminators or self._discriminators()
        )
        self._exported_model = model
        return final

    def _export_best(self) -> Path | None:
        """At the end of a validated run: the best step's model again, its card with the whole history."""
        if self._best is None:  # a resumed run whose best came before this session: it is in model/
            from ..model.weights import load_discriminators, load_folder

            folder = self.out / "model"
            self._best = (load_folder(folder), load_discriminators(str(folder)))
        path = self.export(*self._best)
        if self.validation.best_step == self.validation.start["step"]:
            self.log(
                "[yellow]note:[/] no validated step beat the starting model on the validation clips: "
                f"{path} holds the starting weights (scores in metrics.jsonl and the card)"
            )
        else:
            self.log(f"exported the best validated step: {self.validation.reason()}")
        return path

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
        setattr(self, name, wrap(getattr(self, name), self.device, self.d))

    def run(self) -> Path:
        if not self.is_setup:
            self.setup()
        cfg = self.cfg
        self._loader_obj = self._loader()
        self.session_steps = 0
        if self.d.main:  # a resumed session redoes the steps after its checkpoint: hide their old events
            self._tb = open_log(cfg.log, self.out, self.global_step + 1 if cfg.resume else None)
        self._metrics_file = open(self.out / "metrics.jsonl", "a") if self.d.main else None  # noqa: SIM115
        if self.global_step == 0 and self.step == 0:
            self.write_preview()
            self._validate()
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
                    if self.ema is not None:  # the finished stage hands on its averaged generator
                        unwrap(self.g1 if self.stage == 1 else self.g2).load_state_dict(self.ema.state)
                        self.ema.state = {}
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
            if self._tb is not None:
                self._tb.close()
                self._tb = None
        model_dir = self._export_best() if self.validation.history else self.export()
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
        total = self.total_steps()
        step_fn = self._enter_stage()
        self._bar = (progress, self._stage_task(progress, total))
        meter = _Meter()
        while self.step < total:
            for real in self._epoch_batches(total):
                values = self._step(step_fn, real)
                meter.add(values, real.shape[0] * self.d.world)
                end_of_stage, stop_now = self._after_step(meter, total)
                if end_of_stage:
                    return False
                if stop_now:
                    return True
        return False

    def _step(self, step_fn, real: torch.Tensor) -> dict[str, float]:
        """One training step: the stage's discriminator then generator update on one batch (``step_fn``:
        ``train_step_stage1`` or ``train_step_stage2``), its losses averaged over the processes and checked
        to be finite, then the counters advanced (run step, stage step, batch within the epoch)."""
        stats = step_fn(real)
        names = sorted(stats)
        vec = all_reduce_mean(torch.stack([stats[n].float() for n in names]), self.d)
        values = dict(zip(names, vec.tolist(), strict=True))
        if not all(math.isfinite(v) for v in values.values()):
            last = latest_checkpoint(self.out)
            bad = ", ".join(f"{k}={v}" for k, v in values.items() if not math.isfinite(v))
            raise TrainError(
                f"loss is not finite at step {self.global_step + 1} (Stage {self.stage} step "
                f"{self.step + 1}; {bad}); stopped without saving. Last good checkpoint: "
                f"{last if last else 'none'}. Try a lower --lr"
                + (" or --precision fp32" if self.precision != "fp32" else "")
            )
        self.step += 1
        self.global_step += 1
        self.stage_steps[self.stage] = self.step
        self.session_steps += 1
        self._next_batch()
        return values

    def _after_step(self, meter: _Meter, total: int) -> tuple[bool, bool]:
        """What follows a step, each on its cadence: a metrics line (--log-every), the progress bar, a
        preview (--preview-every), a checkpoint (--checkpoint-every); all of them at the end of the stage
        and when the session stops. Returns (the stage has ended, the session stops now)."""
        cfg = self.cfg
        end_of_stage = self.step >= total
        stop_now = cfg.stop_after is not None and self.session_steps >= cfg.stop_after
        if self.step % cfg.log_every == 0 or end_of_stage or stop_now:
            means = meter.flush()
            self._log_metrics(means, meter.rate)
            shown = {k: means[k] for k in ("loss_g", "loss_d", "l1", "rank") if k in means}
            self._show(losses="  ".join(f"{k} {v:.3f}" for k, v in shown.items()))
        self._show(completed=self.step, epoch=self.epoch, rate=f"{meter.rate:.2f}" if meter.rate else "-")
        if self.step % cfg.preview_every == 0 or end_of_stage:
            self.write_preview()
        validate = self.val_index is not None and (self.step % cfg.val_every == 0 or end_of_stage)
        if validate:
            self._validate()
        last_stage = self.stage_idx + 1 >= len(cfg.stages)
        if (self.step % cfg.checkpoint_every == 0 or validate or end_of_stage or stop_now) and (
            last_stage or not end_of_stage  # else run() checkpoints the start of the next stage
        ):
            self.save_checkpoint()
        return end_of_stage, stop_now

    def _enter_stage(self):
        """Put the networks in their roles for the current stage (the trained pair in train mode with
        gradients, the rest frozen; DDP-wrapped when distributed) and return its step function."""
        stage = self.stage
        self._train_mode(self.g1 if stage == 1 else self.g2)
        (self.d1 if stage == 1 else self.d2).train()
        _set_requires_grad(self.g1 if stage == 1 else self.g2, True)
        if stage == 2:
            self.g1.eval()
            _set_requires_grad(self.g1, False)
            _set_requires_grad(self.d1, False)
        else:
            _set_requires_grad(self.g2, False)
            _set_requires_grad(self.d2, False)
        self._wrap("g1" if stage == 1 else "g2")
        self._wrap("d1" if stage == 1 else "d2")
        if stage == 2 and self.step == 0 and self.refine_start == "base":
            unwrap(self.g2).load_state_dict(self._widened(unwrap(self.g1)))
            self.log("Stage II: Refine-Net starts as a copy of Base-Net (--refine-init base)")
        if self.ema is not None and (self.step == 0 or not self.ema.state):
            self.ema.reset(unwrap(self.g1 if stage == 1 else self.g2))
        self.warmup = 0 if self.d_loaded else self.cfg.warmup_steps
        if self.step < self.warmup:
            self.log(
                f"Stage {'I' if stage == 1 else 'II'}: {self.warmup} discriminator-only steps first "
                "(the generator is held; --d-warmup)"
            )
        return self.train_step_stage1 if stage == 1 else self.train_step_stage2

    def _train_mode(self, g: nn.Module) -> None:
        """Training mode for a generator. With ``--bn running`` (a fine-tune's default) its BatchNorm keeps
        normalising with the frozen running statistics the model predicts with (``TrainConfig.bn_mode``)."""
        g.train()
        if self.cfg.bn_mode == "running":
            for m in g.modules():
                if isinstance(m, nn.modules.batchnorm._BatchNorm):
                    m.eval()

    def _g_update(self, loss: torch.Tensor, name: str) -> None:
        """The generator's optimiser step, then its weight average."""
        self._backward_step(loss, name)
        if self.ema is not None:
            self.ema.update(unwrap(getattr(self, name)))

    def _epoch_batches(self, total: int):
        """The batches left in the current epoch, on the device in [-1, 1]. A batch whose clips were all
        unreadable is counted and skipped; an epoch in which no clip could be read is an error."""
        self.sampler.set_epoch(self.epoch)
        self.sampler.set_start(self.batch_in_epoch * self.batch_size)
        seen_any = False
        for batch in self._loader_obj:
            self.skipped_clips += batch["skipped"]
            if batch["video"] is None:  # every clip of this batch was unreadable
                if self._next_batch():
                    break
                continue
            seen_any = True
            yield to_model_range(batch["video"].to(self.device, non_blocking=True))
            if self.batch_in_epoch == 0:
                break  # epoch finished (the step wrapped the counter): re-seed the sampler for the next one
        else:  # loader exhausted without the counter wrapping (cannot happen with drop_last; be safe)
            if self.batch_in_epoch:
                self.epoch += 1
                self.batch_in_epoch = 0
        if not seen_any and self.batch_in_epoch == 0 and self.step < total:
            raise DataError(
                f"{self.cfg.data}: no clip of a whole epoch could be read "
                f"({self.skipped_clips} unreadable clips)"
            )

    def _next_batch(self) -> bool:
        """Count one batch of the epoch; True when that ends the epoch."""
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.batches_per_epoch:
            self.epoch += 1
            self.batch_in_epoch = 0
            return True
        return False

    def _stage_task(self, progress, total: int):
        if progress is None:
            return None
        stage = "I" if self.stage == 1 else "II"
        return progress.add_task(
            "", total=total, completed=self.step, stage=stage, epoch=self.epoch, rate="-", losses=""
        )

    def _show(self, **fields) -> None:
        progress, task = self._bar
        if task is not None:
            progress.update(task, **fields)

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
        if self._tb is not None:
            lrs = {n: self.opt[n].param_groups[0]["lr"] for n in (f"g{self.stage}", f"d{self.stage}")}
            self._tb.losses(self.global_step, self.stage, values, rate, lrs)


def _stage_steps_at(record: dict | None, stage_steps: dict[int, int], global_step: int) -> dict[int, int]:
    """Each stage's steps at a validated run step (``record``), from the run's steps now."""
    if record is None:
        return dict(stage_steps)
    behind = global_step - record["step"]
    out = dict(stage_steps)
    for stage in sorted(out, reverse=True):  # undo the latest steps first
        undo = min(out[stage], behind)
        out[stage] -= undo
        behind -= undo
    return {k: v for k, v in out.items() if v or k == record["stage"]}


def start_weights(spec: str | None) -> tuple[str, str]:
    """The weights a fine-tuning run starts from, by the rule every command follows (``weights.resolve``):
    ``spec``, else ``$SKYFORECAST_WEIGHTS``, else the bundled default model. Returns the spec to record
    and one line saying which it is."""
    from ..model.weights import WeightsError, resolve

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
    **settings,
) -> Path:
    """Fine-tune existing weights (anything ``predict --weights`` accepts; None: ``$SKYFORECAST_WEIGHTS``,
    else the bundled model) on new clips. ``stage="2"`` tunes only the Refine-Net (motion) on the loaded
    Base-Net's outputs. Discriminators come from the weights' ``discriminators.safetensors`` when they have
    one; otherwise they start fresh and train alone for ``d_warmup`` steps first. ``val``/``val_split``
    score the model on held-out clips and export the best step (``skyforecast.training.validation``).
    Settings not given take ``FINETUNE_DEFAULTS`` where they differ from ``train``'s."""
    known = {f.name for f in fields(TrainConfig)}
    unknown = set(settings) - known
    if unknown:
        raise TypeError(f"unknown settings: {sorted(unknown)}")
    if weights is None and settings.get("resume"):  # a resumed run keeps the weights it started from
        weights = (stored_config(out) or {}).get("weights")
    spec, line = start_weights(weights)
    print(line, flush=True)
    settings = {**FINETUNE_DEFAULTS, **settings}
    return train(TrainConfig(data=data, out=out, stage=stage, weights=spec, **settings))
