"""Starting a training session: the runtime (process group, device, precision), the run folder's state (no
two runs mixed in one folder; the checkpoint to resume and the settings it keeps), seeds, the starting
weights of a fine-tune, the data, the four networks and their optimisers, the loop state and the run's
``config.json``. A mixin of ``Trainer`` (``trainer``): everything ``Trainer.setup()`` does before the first
step, apart from the loop that follows it.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import random
from dataclasses import asdict
from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from .. import __version__
from ..io.clips import FRAMES, SIZE, ClipDataset, ClipSampler, discover_clips
from ..io.files import atomic_write_bytes
from ..model.networks import MDGAN, Discriminator, Generator, widened_state
from .config import SESSION_ONLY, TrainError
from .distributed import init_process_group, pick_device
from .runfolder import (
    check_out_folder,
    load_checkpoint,
    set_rng_state,
    stage_steps_of,
    stored_config,
    truncate_metrics,
)
from .steps import WeightAverage
from .validation import Validation, split_index

if TYPE_CHECKING:
    from .trainer import Trainer


def _init_weights(m: nn.Module) -> None:
    """DCGAN/pix2pix initialisation: conv weights N(0, 0.02), BatchNorm scale N(1, 0.02) and shift 0.
    Small initial weights keep the Tanh output and the discriminator logits near their linear range."""
    if isinstance(m, (nn.Conv3d, nn.ConvTranspose3d)):
        nn.init.normal_(m.weight, 0.0, 0.02)
    elif isinstance(m, nn.modules.batchnorm._BatchNorm):
        nn.init.normal_(m.weight, 1.0, 0.02)
        nn.init.zeros_(m.bias)


def _seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


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


class SessionStartup:
    """``Trainer.setup()`` and its phases; ``Trainer.__init__`` checks the run folder with
    ``_check_run_folder`` before any process writes to it."""

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
