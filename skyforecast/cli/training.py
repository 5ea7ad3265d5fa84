"""``skyforecast train``, ``finetune`` and ``export``: the training options declared once, parsed into a
``TrainConfig``, and the run started."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Optional

import typer

from ..training.config import (
    DEFAULT_EPOCHS,
    DEFAULT_LR,
    FINETUNE_DEFAULTS,
    FINETUNE_EMA,
    FINETUNE_FLICKER,
    FINETUNE_LR,
    LOGS,
    TrainConfig,
)
from .common import Ending, _fail, app

# ---- train / finetune ----


def _short(x: float) -> str:
    """2e-4, not 0.0002, in help texts."""
    return f"{x:.0e}".replace("e-0", "e-")


def _per_command(flag: str, help: str, train: str, finetune: str):
    """An option whose default depends on the command (``FINETUNE_DEFAULTS``): None when not given, and
    both defaults in its help."""
    return Annotated[
        Optional[float],  # noqa: UP045
        typer.Option(flag, help=f"{help}  [default: {train} train, {finetune} finetune]", show_default=False),
    ]


_Stage = Annotated[
    str,
    typer.Option("--stage", help="1 = Base-Net, 2 = Refine-Net (needs a trained Base-Net), all = 1 then 2."),
]
_Epochs = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--epochs", help=f"Passes over the data per stage (default {DEFAULT_EPOCHS}).", show_default=False
    ),
]
_Steps = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--steps",
        help="Optimiser steps per stage (each stage's budget); wins over --epochs. On --resume it extends "
        "the stage in progress and those after it.",
        show_default=False,
    ),
]
_Batch = Annotated[int, typer.Option("--batch-size", help="Clips per step per process.")]
_Ngf = Annotated[int, typer.Option("--ngf", help="Generator base width (paper: 32).")]
_Ndf = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--ndf",
        help="Discriminator base width (paper: 32).  [default: the generators' width, or the width of the "
        "discriminators stored with the starting weights]",
        show_default=False,
    ),
]
_Device = Annotated[str, typer.Option("--device", help="auto, cpu, cuda, cuda:N or mps.")]
_Precision = Annotated[
    str,
    typer.Option(
        "--precision",
        help="auto (bf16 autocast where the CPU or GPU runs bf16 natively, else fp32), fp32, bf16 or fp16 "
        "(fp16 adds loss scaling).",
    ),
]
_Bn = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--bn",
        help="Generators' BatchNorm while training: running (the frozen statistics the model predicts with) "
        "or batch.  [default: running for finetune, batch for train]",
        show_default=False,
    ),
]
_DWarmup = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--d-warmup",
        min=0,
        help="Discriminator-only steps at the start of each stage when its discriminator starts fresh (the "
        "generator is held).  [default: 20 for finetune, 0 for train]",
        show_default=False,
    ),
]
_Ema = _per_command(
    "--ema",
    "Decay of a moving average of the generator weights to export (0 = off).",
    "0",
    f"{FINETUNE_EMA:g}",
)
_Val = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--val",
        metavar="CLIPS",
        help="Clips not trained on: every --val-every steps the model is scored on them (as `evaluate`) and "
        "the best step, the starting model included, is exported as model/.",
        show_default=False,
    ),
]
_ValSplit = Annotated[
    float,
    typer.Option("--val-split", help="Or hold out this share of DATA's sequences for the same (e.g. 0.2)."),
]
_ValEvery = Annotated[
    int, typer.Option("--val-every", help="Steps between validations (each one checkpoints).")
]
_Resume = Annotated[
    bool,
    typer.Option(
        "--resume",
        help="Continue the run in --out from its last checkpoint, exactly, with the settings it stored; "
        "options given again replace them.",
    ),
]
_Workers = Annotated[int, typer.Option("--num-workers", help="DataLoader worker processes.")]
_Seed = Annotated[int, typer.Option("--seed", help="Seed for weights, shuffling and flips.")]
_LogEvery = Annotated[int, typer.Option("--log-every", help="Steps between metrics.jsonl lines.")]
_PreviewEvery = Annotated[int, typer.Option("--preview-every", help="Steps between preview GIFs.")]


def _log_kind(value: str) -> str:
    """``--log``: one of LOGS, with its package installed (a usage error before anything starts)."""
    if value not in LOGS:
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(LOGS)}")
    if value == "tensorboard":
        from ..training.tblog import missing_package

        if missing := missing_package():
            raise typer.BadParameter(missing)
    return value


_Log = Annotated[
    str,
    typer.Option(
        "--log",
        callback=_log_kind,
        help="none, or tensorboard: also TensorBoard logs in RUN/tensorboard (losses, lr, previews and "
        "their motion scores; needs skyforecast[tensorboard]). metrics.jsonl is always written.",
    ),
]
_CkptEvery = Annotated[int, typer.Option("--checkpoint-every", help="Steps between checkpoints.")]
_Keep = Annotated[int, typer.Option("--keep-checkpoints", help="How many recent checkpoints to keep.")]
_Lr = _per_command("--lr", "Adam learning rate.", _short(DEFAULT_LR), _short(FINETUNE_LR))
_LamCon = Annotated[float, typer.Option("--lambda-con", help="Weight of the pixel L1 loss (pix2pix's 100).")]
_LamCon2 = Annotated[
    Optional[float],  # noqa: UP045
    typer.Option("--lambda-con2", help="Stage II L1 weight.  [default: --lambda-con]", show_default=False),
]
_LamRank = Annotated[
    float, typer.Option("--lambda-rank", help="Weight of the Gram-matrix ranking loss (paper: 1).")
]
_LamFlicker = _per_command(
    "--lambda-flicker",
    "Weight of an L1 on second-order frame differences, against flicker (not in the paper).",
    "0",
    f"{FINETUNE_FLICKER:g}",
)
_RefineNgf = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--refine-ngf",
        min=1,
        help="Refine-Net's own width (default: --ngf, or the starting weights'). It has no outer skips, so "
        "its width limits detail; a multiple of its source's width starts as a widened copy.",
        show_default=False,
    ),
]
_RefineInit = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--refine-init",
        help="Refine-Net at Stage II start: base (a copy of Base-Net), weights (the loaded one) or random "
        "(the paper).  [default: base for train, weights for finetune]",
        show_default=False,
    ),
]
_Crop = Annotated[
    str,
    typer.Option(
        "--crop", help="squash (whole frame to 128x128, as the paper) or center (square crop first)."
    ),
]
_Stride = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--clip-stride", help="Frames between clip starts.  [default: 32, no overlap]", show_default=False
    ),
]
_Flip = Annotated[bool, typer.Option("--flip/--no-flip", help="Random horizontal flips.")]
_SyncBn = Annotated[bool, typer.Option("--sync-bn", help="SyncBatchNorm across DDP processes (CUDA only).")]
_Det = Annotated[
    bool, typer.Option("--deterministic", help="Deterministic kernels (slower; for exact reproduction).")
]
_Push = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--push-to-hub", help="Upload the exported model to this Hub repo at the end.", show_default=False
    ),
]
_StopAfter = Annotated[
    Optional[int],  # noqa: UP045
    typer.Option(
        "--stop-after",
        help="Stop after N steps this session (checkpoint + export); continue later with --resume.",
        show_default=False,
    ),
]
_Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]
_Out = Annotated[
    Path,
    typer.Option(
        "--out", "-o", help="Run folder (config, metrics, previews, checkpoints, model/).", show_default=False
    ),
]


# The options `train` and `finetune` share, in --help order: one declaration each; every default comes from
# TrainConfig (`_train_options` puts them into the command's signature). `lr`, `lambda_flicker` and `ema`
# have none here: their defaults depend on the command (FINETUNE_DEFAULTS for finetune), `quiet` is
# TrainConfig's `progress` turned round.
_TRAIN_OPTIONS = {
    "stage": _Stage,
    "epochs": _Epochs,
    "steps": _Steps,
    "batch_size": _Batch,
    "ngf": _Ngf,
    "ndf": _Ndf,
    "device": _Device,
    "precision": _Precision,
    "bn": _Bn,
    "d_warmup": _DWarmup,
    "ema": _Ema,
    "val": _Val,
    "val_split": _ValSplit,
    "val_every": _ValEvery,
    "resume": _Resume,
    "num_workers": _Workers,
    "seed": _Seed,
    "log_every": _LogEvery,
    "preview_every": _PreviewEvery,
    "log": _Log,
    "checkpoint_every": _CkptEvery,
    "keep_checkpoints": _Keep,
    "lr": _Lr,
    "lambda_con": _LamCon,
    "lambda_con2": _LamCon2,
    "lambda_rank": _LamRank,
    "lambda_flicker": _LamFlicker,
    "refine_init": _RefineInit,
    "refine_ngf": _RefineNgf,
    "crop": _Crop,
    "clip_stride": _Stride,
    "flip": _Flip,
    "sync_bn": _SyncBn,
    "deterministic": _Det,
    "push_to_hub": _Push,
    "stop_after": _StopAfter,
    "quiet": _Quiet,
}
_DEFAULTED = ("DEFAULT", "DEFAULT_MAP")  # click's ParameterSource names for "not given by the user"


def _train_options(*, without: tuple[str, ...] = ()):
    """Give a command the shared training options after its own parameters (its ``**options`` receives
    them), with TrainConfig's defaults."""
    import inspect
    from dataclasses import MISSING, fields

    defaults = {f.name: f.default for f in fields(TrainConfig) if f.default is not MISSING}
    defaults.update(lr=None, lambda_flicker=None, ema=None, quiet=not defaults["progress"])

    def add(command):
        own = [
            p
            for p in inspect.signature(command, eval_str=True).parameters.values()
            if p.kind != p.VAR_KEYWORD
        ]
        shared = [
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=option, default=defaults[name])
            for name, option in _TRAIN_OPTIONS.items()
            if name not in without
        ]
        command.__signature__ = inspect.Signature(own + shared)
        return command

    return add


def _run_training(
    ctx: typer.Context, data: Path, out: Path, options: dict, weights: str | None = None
) -> None:
    """Shared body of `train` and `finetune`: one TrainConfig from the options the user gave (the others are
    TrainConfig's defaults), run it, turn every expected failure (bad data, bad weights, diverged loss) into
    one red line. With --resume only the options given on the command line replace the run's stored
    settings (click tells given options from defaults)."""
    from rich.console import Console

    from ..io.clips import DataError
    from ..model.weights import WeightsError
    from ..training.trainer import TrainError, check_out_folder, resumed_config, start_weights, train

    try:  # before any work (the starting weights are not even looked up): nothing in --out is touched
        check_out_folder(out, options["resume"])
    except TrainError as e:
        _fail(str(e))

    given = {
        name
        for name in ctx.params
        if getattr(ctx.get_parameter_source(name), "name", "DEFAULT") not in _DEFAULTED and name in options
    }
    settings = {name: options[name] for name in given if name != "quiet"}
    # what every session states anew (SESSION_ONLY), given or not
    settings.update(data=str(data), out=str(out), resume=options["resume"], stop_after=options["stop_after"])
    settings["progress"] = not options["quiet"]
    console = Console()
    resume = options["resume"]
    if ctx.command.name == "finetune" and not resume:  # no -w: $SKYFORECAST_WEIGHTS, else bundled
        try:
            weights, line = start_weights(weights)
        except TrainError as e:
            _fail(str(e))
        console.print(line, highlight=False, soft_wrap=True)
        settings = {**FINETUNE_DEFAULTS, **settings}
    if weights is not None:
        settings["weights"] = weights
    try:
        config = resumed_config(out, settings) if resume else TrainConfig(**settings)
        model_dir = train(config, console=console)
    except (TrainError, DataError, WeightsError) as e:
        _fail(str(e))
    except KeyboardInterrupt:
        _fail(
            f"interrupted; continue from the last checkpoint: skyforecast {ctx.command.name} {data} "
            f"--out {out} --resume",
            130,
        )
    else:
        if not options["quiet"]:
            typer.echo(f"model: {model_dir}  (skyforecast predict PHOTO --weights {model_dir})")
        # the model, checkpoints and logs are written and closed, the process group is gone: skip the
        # interpreter's teardown (see main()); a torchrun rank once aborted there ("terminate called without
        # an active exception", exit -6) after a finished run, failing the whole launch
        Ending.without_teardown = True


@app.command(no_args_is_help=True)
@_train_options()
def train(
    ctx: typer.Context,
    data: Annotated[
        Path,
        typer.Argument(
            help="Clips: <video>/<clip>/*.jpg, image-sequence folders, or video files.", show_default=False
        ),
    ],
    out: _Out,
    **options,
) -> None:
    """Train MD-GAN from scratch: Stage I (Base-Net) then Stage II (Refine-Net).

    Many GPUs or machines: torchrun --nproc-per-node N -m skyforecast train ...
    """
    _run_training(ctx, data, out, options)


@app.command(no_args_is_help=True)
@_train_options(without=("ngf",))  # the width comes from the starting weights
def finetune(
    ctx: typer.Context,
    data: Annotated[Path, typer.Argument(help="Clips, in any layout `train` accepts.", show_default=False)],
    out: _Out,
    weights: Annotated[
        Optional[str],  # noqa: UP045
        typer.Option(
            "--weights",
            "-w",
            help="Starting weights: model folder, training run folder or Hub repo id with optional "
            "@revision. Default: $SKYFORECAST_WEIGHTS, else the bundled model (as predict).",
            show_default=False,
        ),
    ] = None,
    **options,
) -> None:
    """Fine-tune existing weights on your clips (lower lr; --stage 2 tunes motion only)."""
    _run_training(ctx, data, out, options, weights)


@app.command("export", no_args_is_help=True)
def export_command(
    source: Annotated[
        Path,
        typer.Argument(
            help="A training checkpoint (RUN/checkpoints/step_*.pt) or a run folder (its latest checkpoint).",
            show_default=False,
            metavar="SOURCE",
        ),
    ],
    out: Annotated[
        Path,
        typer.Argument(
            help="Model folder to write: config.json, model.safetensors, README.md (its card).",
            show_default=False,
            metavar="OUT",
        ),
    ],
    overwrite: Annotated[
        bool, typer.Option("--overwrite", help="Replace a model folder already there.")
    ] = False,
    evaluate_on: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option(
            "--evaluate",
            metavar="CLIPS",
            help="Score the exported model on these clips (as `evaluate`) and put the numbers in its card.",
            show_default=False,
        ),
    ] = None,
    limit: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(min=1, help="With --evaluate: only the first N clips.", show_default=False),
    ] = None,
    device: _Device = "auto",
    dtype: Annotated[
        str,
        typer.Option(
            "--dtype",
            help="fp16 (half the size; predictions within 1/255 of fp32's) or fp32 (the checkpoint's own).",
        ),
    ] = "fp16",
) -> None:
    """Make a model folder for --weights from any checkpoint of a training run, with a model card
    (data, steps per stage, settings, scores when --evaluate is given).

    \b
    Examples:
      skyforecast export runs/sky/checkpoints/step_00004000.pt sky-4000/
      skyforecast export runs/sky sky-latest/ --evaluate clips/  # latest, scored
      skyforecast predict photo.jpg -w sky-4000/
    """
    from ..io.clips import DataError
    from ..model.weights import WeightsError
    from ..training.trainer import TrainError, export_checkpoint

    try:
        folder = export_checkpoint(
            source, out, overwrite=overwrite, evaluate_on=evaluate_on, device=device, limit=limit, dtype=dtype
        )
    except (TrainError, DataError, WeightsError, ValueError) as e:
        _fail(str(e))
    except OSError as e:
        _fail(f"{out}: cannot write ({e.strerror or e})")
    except KeyboardInterrupt:
        _fail("interrupted", 130)
    typer.echo(f"wrote {folder} (use it with --weights {folder})")
