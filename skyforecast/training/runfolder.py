"""A training run folder, the files a person (and ``--resume``) reads:

    RUN_DIR/
      config.json            the settings of the run (and of each resumed session)
      metrics.jsonl          one JSON object per logged step
      previews/step_*.gif    input | Stage I | Stage II | real, for one fixed clip (labelled panels)
      checkpoints/step_*.pt  the last few full training states (atomic writes)
      model/                 the exported MDGAN (config.json + model.safetensors + README.md card)
      tensorboard/           with ``--log tensorboard``: TensorBoard event files
      (``skyforecast.training.tblog``)

Reading and writing checkpoints (with the RNG state that makes a resume exact), metrics, previews, the
exported model folder, and ``export_checkpoint`` (any checkpoint -> a model folder). Every file is written
through ``files.atomic_path``: a crash leaves the previous version, never a half-written one.
"""

from __future__ import annotations

import json
import os
import random
from dataclasses import fields
from pathlib import Path

import numpy as np
import torch

from ..io.constants import FRAMES
from ..io.files import atomic_path, atomic_write_bytes
from ..model.networks import MDGAN
from ..model.pipeline import to_uint8_video
from ..model.weights import TRAIN_CHECKPOINT_FORMAT as CHECKPOINT_FORMAT
from .config import SESSION_ONLY, TrainConfig, TrainError

__all__ = [
    "CHECKPOINT_FORMAT",
    "atomic_torch_save",
    "card_facts",
    "check_out_folder",
    "export_checkpoint",
    "latest_checkpoint",
    "list_checkpoints",
    "load_checkpoint",
    "resumed_config",
    "rng_state",
    "set_rng_state",
    "stage_steps_of",
    "stored_config",
    "truncate_metrics",
    "write_model_folder",
    "write_preview",
]


def atomic_torch_save(obj, path: Path) -> None:
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


def rng_state() -> dict:
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


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    n = state["numpy"]
    np.random.set_state(
        (n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"])
    )
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


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


def stage_steps_of(ck: dict) -> dict[int, int]:
    """Steps each stage trained, from a checkpoint (older checkpoints: derived from stage/step/global)."""
    if "stage_steps" in ck:
        return {int(k): int(v) for k, v in ck["stage_steps"].items()}
    stage, step, total = int(ck["stage"]), int(ck["step"]), int(ck["global_step"])
    return {1: total - step, 2: step} if stage == 2 and total > step else {stage: step}


def card_facts(
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
    known = {f.name for f in fields(TrainConfig)}
    if "data" in settings and "out" in settings:  # the automatic choices, as the run made them
        auto = TrainConfig(**{k: v for k, v in settings.items() if k in known})
        settings.setdefault("bn", None)
        settings["bn"] = settings["bn"] or auto.bn_mode
        settings["d_warmup"] = auto.warmup_steps if settings.get("d_warmup") is None else settings["d_warmup"]
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


def write_model_folder(
    model: MDGAN, final: Path, facts, *, discriminators: dict | None = None, dtype: str = "fp16"
) -> Path:
    """Write ``final`` (config.json, model.safetensors in ``dtype``, the run's discriminators when given, the
    README.md card) into a temporary sibling folder, then swap it in: a crash leaves the previous folder or
    none, never a mix. Files are world-readable like any other output (0644, the folder 0755)."""
    from ..model.weights import save_discriminators, save_model
    from .card import model_card

    with atomic_path(final, is_dir=True) as tmp:
        save_model(model, tmp, half=dtype == "fp16")
        if discriminators:
            save_discriminators(discriminators, tmp)
        # the card replaces the placeholder README the mixin writes
        (tmp / "README.md").write_text(model_card(facts), encoding="utf-8")
        for f in tmp.iterdir():
            f.chmod(0o644)
        tmp.chmod(0o755)
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
    dtype: str = "fp16",
) -> Path:
    """Make a model folder (what ``--weights`` takes) from one training checkpoint: a ``step_*.pt`` of a run,
    or a run folder (its latest checkpoint). The card records the run's data, steps and settings; with
    ``evaluate_on`` (clips) the model is scored with ``skyforecast.evaluation.scoring`` and the scores go in
    the card. Our own checkpoints are read with ``torch.load(weights_only=True)``: tensors and plain values
    only. ``dtype`` fp16 (default) halves the file; the tests check predictions stay within 1/255 of
    fp32's."""
    if dtype not in ("fp16", "fp32"):
        raise TrainError(f"--dtype must be fp16 or fp32, got {dtype!r}")
    ckpt = _checkpoint_file(Path(source))
    ck = _read_checkpoint(ckpt)
    out = Path(out)
    _check_model_out(out, overwrite)
    g1, g2 = ck["models"]["g1"], ck["models"]["g2"]
    model = MDGAN(
        ngf=g1["conv1.weight"].shape[0],
        batch_stats=bool(ck.get("batch_stats", False)),
        refine_ngf=g2["conv1.weight"].shape[0],
    )
    model.base.load_state_dict(g1)
    model.refine.load_state_dict(g2)
    model.eval()
    clips, summary = _checkpoint_data(ck, ckpt)
    facts = card_facts(
        model,
        ck["config"],
        stage_steps_of(ck),
        int(ck["global_step"]),
        clips=clips,
        data_summary=summary,
        world_size=int(ck.get("world_size", 1)),
        source=f"checkpoint `{_public_checkpoint_name(ckpt)}`",
    )
    discriminators = {n: ck["models"][n] for n in ("d1", "d2") if n in ck["models"]}
    write_model_folder(
        model, out, facts, discriminators=discriminators if len(discriminators) == 2 else None, dtype=dtype
    )
    if evaluate_on is not None:
        from ..evaluation.scoring import evaluate
        from .card import model_card

        systems = ("default", "stage2", "stage1", "copy")
        report = evaluate(evaluate_on, str(out), device=device, limit=limit, systems=systems)
        facts.scores = {r.label: r.to_dict() for r in report.systems.values()}
        facts.eval_data, facts.eval_clips = str(evaluate_on), report.num_clips
        atomic_write_bytes(out / "README.md", model_card(facts).encode())
    return out


def _public_checkpoint_name(ckpt: Path) -> str:
    """How a card names the checkpoint it came from: ``RUN/checkpoints/step_*.pt`` by the run folder's own
    name, never the path on the machine that trained it."""
    if ckpt.parent.name == "checkpoints":
        return f"{ckpt.resolve().parent.parent.name}/checkpoints/{ckpt.name}"
    return ckpt.name


def _checkpoint_file(src: Path) -> Path:
    """The checkpoint ``export`` reads: ``src`` itself, or a run folder's latest."""
    if src.is_file():
        return src
    if not src.is_dir():
        raise TrainError(f"{src}: no such checkpoint file or run folder")
    ckpt = latest_checkpoint(src)
    if ckpt is None:
        raise TrainError(f"{src}: no checkpoints/step_*.pt here (a run folder is what `train --out` made)")
    return ckpt


def _read_checkpoint(ckpt: Path) -> dict:
    """One of our checkpoints, or a TrainError that says why ``ckpt`` is not one."""
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
    return ck


def _check_model_out(out: Path, overwrite: bool) -> None:
    """Refuse to write a model over anything that is not a model folder, or over one without ``overwrite``."""
    if not out.exists():
        return
    is_model = (out / "config.json").is_file() or (out / "model.safetensors").is_file()
    if not out.is_dir() or (any(out.iterdir()) and not is_model):
        raise TrainError(f"{out}: exists and is not a model folder; choose another output folder")
    if is_model and not overwrite:
        raise TrainError(f"{out}: already holds a model; pass --overwrite to replace it")


def _checkpoint_data(ck: dict, ckpt: Path) -> tuple[int | None, str | None]:
    """How many clips the run trained on and its data summary, for the card."""
    clips, summary = ck.get("clips"), ck.get("data_summary")
    run = ckpt.parent.parent if ckpt.parent.name == "checkpoints" else None
    if clips is None and run is not None:  # checkpoints written before these entries: the run's config
        try:
            effective = json.loads((run / "config.json").read_text())["effective"]
            clips, summary = effective.get("clips"), effective.get("data")
        except (OSError, ValueError, KeyError, TypeError):
            pass
    return clips, summary


def load_checkpoint(out: Path, log) -> dict:
    """The newest readable checkpoint of the run in ``out``; unreadable newer ones are skipped with a warning
    through ``log`` (a crash can truncate the last one)."""
    errors = []
    for path in reversed(list_checkpoints(out)):
        try:
            ck = torch.load(path, map_location="cpu", weights_only=True)
            if ck.get("format") != CHECKPOINT_FORMAT:
                raise ValueError("not a skyforecast training checkpoint")
            if errors:
                log(f"[yellow]warning:[/] skipped unreadable checkpoint(s): {'; '.join(errors)}")
            log(f"resuming from {path}")
            return ck
        except Exception as e:  # truncated / foreign file: fall back to the previous one
            errors.append(f"{path.name} ({str(e).splitlines()[0][:80] if str(e) else type(e).__name__})")
    raise TrainError(f"{out}: no readable checkpoint ({'; '.join(errors)})")


def truncate_metrics(path: Path, global_step: int) -> None:
    """Drop metric lines logged after the checkpoint we resumed from: those steps are redone."""
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


def write_preview(path: Path, videos: dict[str, torch.Tensor]) -> Path:
    """A GIF of labelled panels side by side, one per (3, T, H, W) video in [-1, 1] (label -> video)."""
    import imageio.v3 as iio

    panels = [_label(to_uint8_video(v[None])[0], text) for text, v in videos.items()]
    with atomic_path(path) as tmp:
        iio.imwrite(tmp, np.concatenate(panels, axis=2), duration=125, loop=0)
    return path


# What a run folder holds (the module docstring); anything else in ``--out`` is someone else's.
RUN_ENTRIES = frozenset({"config.json", "metrics.jsonl", "previews", "checkpoints", "model", "tensorboard"})
SHOW_AT_MOST = 3  # foreign names listed in the refusal


def check_out_folder(out: str | os.PathLike, resume: bool) -> None:
    """Refuse a training ``--out`` whose files a run would overwrite, before any work: it must be a new or
    empty folder, or a run folder of ours (resumed with ``resume``). A model folder (``finetune -w m --out
    m`` would replace the model it starts from) or any file a run does not write is refused, and nothing
    in the folder is touched. Reads only, so every process of a multi-process run decides alike."""
    out = Path(out)
    if not out.exists():
        entries = []
    elif not out.is_dir():
        raise TrainError(f"--out {out}: is a file; name a new or empty folder")
    else:
        entries = sorted(p.name for p in out.iterdir())
    foreign = [name for name in entries if name not in RUN_ENTRIES]
    is_run = stored_config(out) is not None or latest_checkpoint(out) is not None
    if "config.json" in entries and stored_config(out) is None:
        foreign.insert(0, "config.json")  # a model's config (or any other), not a run's
    if "model.safetensors" in entries:
        raise TrainError(
            f"--out {out}: holds a model, which a training run would overwrite; name a new or empty folder "
            "(the model can still be the starting point: finetune -w)"
        )
    if foreign:
        names = ", ".join(foreign[:SHOW_AT_MOST]) + (" ..." if len(foreign) > SHOW_AT_MOST else "")
        raise TrainError(
            f"--out {out}: holds files that are not a skyforecast training run ({names}); name a new or "
            "empty folder"
        )
    if entries and not is_run:
        raise TrainError(f"--out {out}: is not a skyforecast training run; name a new or empty folder")
    ckpt = latest_checkpoint(out)
    if resume and ckpt is None:
        raise TrainError(f"{out}: no checkpoint to resume from (checkpoints/step_*.pt)")
    if not resume and (ckpt is not None or (out / "metrics.jsonl").exists()):
        raise TrainError(f"{out} already holds a run: pass --resume to continue it, or another --out")


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
