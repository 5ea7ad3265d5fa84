"""What a training run writes while it trains and when it ends: preview GIFs, validation scores (a new best
exported at once), checkpoints (what resuming needs), the exported model folder with its card, and its
upload to the Hub. A mixin of ``Trainer`` (``trainer``), kept apart from the loop that decides when each
is written.
"""

from __future__ import annotations

import datetime as _dt
import json
from dataclasses import asdict
from pathlib import Path

import torch

from ..io.clips import to_model_range
from ..model.networks import MDGAN, _batch_statistics
from ..model.pipeline import to_uint8_video
from .config import TrainError
from .distributed import unwrap
from .runfolder import (
    CHECKPOINT_FORMAT,
    atomic_torch_save,
    card_facts,
    list_checkpoints,
    rng_state,
    write_model_folder,
    write_preview,
)
from .validation import VAL_SYSTEMS


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


class RunArtifacts:
    """``Trainer``'s previews, validation, checkpoints, export and upload."""

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
