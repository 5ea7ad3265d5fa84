"""The model card (``README.md``) written next to every model folder that training or ``skyforecast export``
makes. It says what the model is, what it was trained on and for how long, with which settings, how it
scored when it was evaluated, and how to load it: the facts a person needs to decide whether to use it.
Plain text formatting only; the caller gathers the facts (``train.py``)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import PurePath

from .. import __version__

PAPER = "https://arxiv.org/abs/1709.07592"
# settings shown in the card, in this order (the rest of the run's config is in its config.json)
_SHOWN = (
    "batch_size",
    "lr",
    "beta1",
    "beta2",
    "lambda_con",
    "lambda_con2",
    "lambda_rank",
    "lambda_flicker",
    "d_rank",
    "refine_init",
    "ndf",
    "crop",
    "clip_stride",
    "flip",
    "precision",
    "bn",
    "d_warmup",
    "ema",
    "val",
    "val_split",
    "seed",
)


@dataclass
class CardFacts:
    """What a card reports. ``stage_steps`` maps stage (1, 2) to the optimiser steps it was trained for;
    ``scores`` maps a system label to its mean ``psnr``/``ssim``/``motion_ratio`` when evaluated."""

    ngf: int
    refine_ngf: int
    batch_stats: bool
    parameters: int
    settings: dict
    stage_steps: dict[int, int]
    global_step: int
    clips: int | None
    data_summary: str | None = None
    source: str | None = None  # e.g. "checkpoint runs/sky/checkpoints/step_00000800.pt"
    world_size: int = 1
    scores: dict[str, dict] = field(default_factory=dict)
    eval_data: str | None = None
    eval_clips: int | None = None
    selection: str | None = None  # why these weights: the best validated step of the run
    validation: list[dict] = field(default_factory=list)  # the validated steps (``validation.Validation``)


def public_name(value) -> str | None:
    """A path as a card may show it: relative paths as given, absolute ones by their last part only. The
    card travels (the Hub); where the data lay on the training machine is nobody's business. Hub ids
    (``user/name``) are relative and stay."""
    if value is None:
        return None
    path = PurePath(os.path.expanduser(str(value)))
    return path.name if path.is_absolute() else str(value)


def _fmt(value) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:g}"
    return str(value)


# the Hub reads this YAML header to list and tag the model
_HEADER = [
    "---",
    "library_name: skyforecast",
    "license: mit",
    "pipeline_tag: image-to-video",
    "tags:",
    "- md-gan",
    "- time-lapse",
    "- video-prediction",
    "---",
    "",
]

_HOW_TO_LOAD = [
    "",
    "## How to load",
    "",
    "```bash",
    "skyforecast predict photo.jpg --weights THIS_FOLDER        # or set SKYFORECAST_WEIGHTS=THIS_FOLDER",
    "skyforecast finetune my_clips/ --weights THIS_FOLDER --out runs/mine",
    "```",
    "",
    "```python",
    "from skyforecast.model.pipeline import SkyPipeline",
    "",
    'pipe = SkyPipeline.from_pretrained("THIS_FOLDER")',
    'video = pipe(["photo.jpg"])[0]  # (32, 128, 128, 3) uint8',
    "```",
    "",
    "`THIS_FOLDER` is this folder, or the Hub repo id it was uploaded to (`user/name[@revision]`).",
    "",
]


def _summary(facts: CardFacts) -> list[str]:
    """Title, one paragraph on what the model does, and the table of what it is and how it was trained."""
    s = facts.settings
    s1, s2 = facts.stage_steps.get(1, 0), facts.stage_steps.get(2, 0)
    widths = f"ngf={facts.ngf}" + (
        f", refine_ngf={facts.refine_ngf}" if facts.refine_ngf != facts.ngf else ""
    )
    data = f"`{public_name(s.get('data'))}`"
    data += f", {facts.clips} clips of 32 frames" if facts.clips is not None else " (clip count not recorded)"
    if facts.data_summary:
        data += f" ({facts.data_summary})"
    start = "scratch (random initialisation)"
    if s.get("weights"):
        start = f"the weights `{public_name(s['weights'])}`"
    lines = [
        f"# MD-GAN sky time-lapse model ({widths})",
        "",
        "From one outdoor photo, a 32-frame 128x128 time-lapse of what the sky does next: MD-GAN "
        f"([Xiong et al., CVPR 2018]({PAPER})), Base-Net (Stage I, content) then Refine-Net (Stage II, "
        f"motion), trained with skyforecast {__version__}.",
        "",
        "| | |",
        "|---|---|",
        f"| architecture | Base-Net + Refine-Net, 3D U-Nets on 32x128x128 clips; {widths} (paper: 32); "
        f"{facts.parameters:,} parameters |",
        f"| files | `config.json` (ngf, batch_stats={str(facts.batch_stats).lower()}), `model.safetensors` |",
        f"| training data | {data} |",
        f"| steps | Stage I: {s1}, Stage II: {s2} (global step {facts.global_step}); batch "
        f"{_fmt(s.get('batch_size'))} per process x {facts.world_size} process(es) |",
        f"| started from | {start} |",
    ]
    if facts.source:
        lines.append(f"| exported from | {facts.source} |")
    return lines


def _settings(settings: dict) -> list[str]:
    """The table of the settings in _SHOWN that the run recorded."""
    lines = ["", "## Settings", "", "| setting | value |", "|---|---|"]
    shown = {k: public_name(v) if k == "val" else v for k, v in settings.items()}
    return lines + [f"| `{k}` | {_fmt(shown.get(k))} |" for k in _SHOWN if k in shown]


def _evaluation(facts: CardFacts) -> list[str]:
    """The scores table, or how to score the model when it was exported without an evaluation."""
    lines = ["", "## Evaluation", ""]
    if not facts.scores:
        lines.append(
            "Not evaluated when exported. Score it on real clips with "
            "`skyforecast evaluate CLIPS --weights THIS_FOLDER` (or export with `--evaluate CLIPS`)."
        )
        return lines
    where = f"`{public_name(facts.eval_data)}`"
    if facts.eval_clips is not None:
        where += f", {facts.eval_clips} clips"
    lines += [
        f"`skyforecast evaluate` on {where}, frames 1..31 against the real clips:",
        "",
        "| system | PSNR (dB) | SSIM | motion ratio |",
        "|---|---|---|---|",
    ]
    for label, row in facts.scores.items():
        psnr, ssim, motion = (row.get(k) for k in ("psnr", "ssim", "motion_ratio"))
        cells = [f"{psnr:.2f}" if psnr is not None else "-", f"{ssim:.3f}" if ssim is not None else "-"]
        cells.append(f"{motion:.2f}" if motion is not None else "-")
        lines.append(f"| {label} | {' | '.join(cells)} |")
    return lines


def _validation(facts: CardFacts) -> list[str]:
    """Which step of the run these weights are and why, with the scores of every validated step."""
    if not facts.selection:
        return []
    lines = [
        "",
        "## Chosen by validation",
        "",
        f"These weights are {facts.selection}. Scores on clips the run did not train on (`skyforecast "
        "evaluate`; raw model = Stage II at 128x128, predict = the default output):",
        "",
        "| step | stage | raw PSNR | raw speed ratio | raw steadiness | raw leak | predict PSNR |",
        "|---|---|---|---|---|---|---|",
    ]
    for h in facts.validation:
        raw, default = h.get("stage2", {}), h.get("default", {})
        cells = [raw.get("psnr"), raw.get("speed_ratio"), raw.get("steadiness"), raw.get("leak")]
        cells.append(default.get("psnr"))
        text = " | ".join("-" if v is None else f"{v:.2f}" for v in cells)
        lines.append(f"| {h['step']} | {h['stage']} | {text} |")
    return lines


def model_card(facts: CardFacts) -> str:
    """The card's Markdown text, with the Hub's YAML header."""
    lines = _HEADER + _summary(facts) + _settings(facts.settings) + _validation(facts) + _evaluation(facts)
    if facts.stage_steps.get(2, 0) == 0:
        lines += [
            "",
            "**Refine-Net was not trained (0 Stage II steps)**: predict with `--stage 1`, or continue the "
            "run with `skyforecast train DATA --out RUN --stage 2 --resume`.",
        ]
    lines += _HOW_TO_LOAD
    return "\n".join(lines)
