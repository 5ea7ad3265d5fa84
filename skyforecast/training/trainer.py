"""Training and fine-tuning MD-GAN: Stage I (Base-Net G1 vs D1) then Stage II (Refine-Net G2 vs D2 on the
frozen Base-Net's outputs). ``train(TrainConfig(...))`` is the API the CLI and the tests call.

Where things are: the settings in ``trainconfig`` (``TrainConfig``), the run folder (checkpoints, RNG state,
metrics, previews, the exported model) in ``runfolder``, single-process vs ``torchrun`` in ``distributed``;
this module holds the loop. ``Trainer._step`` is what one training step does, ``Trainer._after_step`` what
follows it on its cadence (metrics, preview, checkpoint). ``Trainer`` is assembled from mixins, one module
each: the session's start (data, networks, resume) in ``startup``, each stage's training step in ``steps``,
and the files a run writes (previews, validation, checkpoints, the exported model) in ``artifacts``.

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
import time
from contextlib import nullcontext
from dataclasses import fields
from pathlib import Path

import torch
import torch.distributed as dist
from torch import nn

from ..io.clips import DataError, collate_clips, to_model_range
from .artifacts import RunArtifacts
from .config import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    FINETUNE_DEFAULTS,
    FINETUNE_LR,
    SESSION_ONLY,
    TrainConfig,
    TrainError,
)
from .distributed import all_reduce_mean, dist_from_env, unwrap, wrap
from .runfolder import (
    check_out_folder,
    export_checkpoint,
    latest_checkpoint,
    list_checkpoints,
    resumed_config,
    stored_config,
    write_model_folder,
)
from .startup import SessionStartup
from .startup import effective_precision as effective_precision
from .steps import TrainingSteps, _set_requires_grad
from .steps import WeightAverage as WeightAverage
from .tblog import missing_package, open_log

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


# ---- the trainer ---------------------------------------------------------------------------------------


class Trainer(SessionStartup, TrainingSteps, RunArtifacts):
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
        self.session_steps = 0  # steps trained since this process started (--stop-after counts these)
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

    def total_steps(self) -> int:
        if self.cfg.steps is not None:
            return self.cfg.steps
        return (self.cfg.epochs if self.cfg.epochs is not None else DEFAULT_EPOCHS) * self.batches_per_epoch

    @property
    def stage(self) -> int:
        return self.cfg.stages[self.stage_idx]

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
