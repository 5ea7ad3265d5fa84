"""Fine-tuning that keeps the model it starts from: the generators train with the BatchNorm statistics they
predict with, fresh discriminators get a warm-up, clips held out of training score every validated step and
the best one (the starting model included) is what model/ holds, with a card that says which and why. Also
the files a run leaves: slim checkpoints, fp16 model folders readable by everyone, discriminators beside the
model, cards without the training machine's paths. Tiny widths (ngf=4) on synthetic clips."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runs import make_clips, read_metrics
from safetensors import safe_open
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.io.clips import ClipDataset, discover_clips
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.model.weights import load_model, read_state_dict
from skyforecast.training.runfolder import _label, list_checkpoints
from skyforecast.training.trainer import TrainConfig, Trainer
from skyforecast.training.validation import Validation, split_index

FAST = ["--num-workers", "0", "--log-every", "1", "--batch-size", "2", "-q"]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("ftclips"), 5)


@pytest.fixture(scope="module")
def ft_run(clips: Path, tiny_weights: Path, tmp_path_factory) -> tuple[Path, str]:
    """`finetune --stage 2` of the tiny model: 1 discriminator-only step, then 1 step; 2 of the 5 clips held
    out and scored at steps 0 and 2."""
    run = tmp_path_factory.mktemp("ft") / "run"
    args = ["finetune", str(clips), "-w", str(tiny_weights), "--out", str(run), "--stage", "2"]
    args += ["--steps", "2"]
    args += ["--val-split", "0.4", "--val-every", "2", "--d-warmup", "1", *FAST]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    return run, result.output


def _bn_buffers(state: dict) -> dict:
    return {k: v.float() for k, v in state.items() if k.endswith(("running_mean", "running_var"))}


@pytest.mark.slow
def test_generators_keep_their_batchnorm_statistics_and_warm_up_holds_them(ft_run, tiny_weights: Path):
    run, _ = ft_run
    start = load_model(str(tiny_weights)).refine.state_dict()
    ck = torch.load(list_checkpoints(run)[-1], map_location="cpu", weights_only=True)
    trained = ck["models"]["g2"]
    for k, v in _bn_buffers(start).items():  # running statistics: exactly the starting model's
        assert torch.equal(trained[k].float(), v), k
    moved = [k for k, v in trained.items() if k.endswith("weight") and not torch.equal(v, start[k])]
    assert moved  # yet the generator did train (its one generator step)
    records = [r for r in read_metrics(run) if "val" not in r]
    assert [r["step"] for r in records] == [1, 2]
    assert "loss_g" not in records[0] and "loss_d" in records[0]  # step 1: discriminator only
    assert "loss_g" in records[1]
    effective = json.loads((run / "config.json").read_text())["effective"]
    assert (effective["bn"], effective["ndf"], effective["d_warmup"]) == ("running", 4, 1)


@pytest.mark.slow
def test_every_validated_step_is_logged_and_model_holds_the_best(ft_run, tiny_weights: Path, clips: Path):
    run, output = ft_run
    vals = [r for r in read_metrics(run) if "val" in r]
    assert [r["step"] for r in vals] == [0, 2]
    for r in vals:
        assert r["val"]["clips"] == 2 and set(r["val"]) == {"clips", "stage2", "default"}
        assert all(isinstance(r["val"]["stage2"][k], float) for k in ("psnr", "leak"))
    best = vals[-1]["best_step"]
    psnr = {r["step"]: r["val"]["stage2"]["psnr"] for r in vals}
    leak = {r["step"]: r["val"]["stage2"]["leak"] for r in vals}
    assert best == (2 if psnr[2] > psnr[0] and leak[2] <= leak[0] else 0)
    exported = read_state_dict(run / "model" / "model.safetensors")
    if best == 0:  # the starting weights, and the user is told
        source = read_state_dict(Path(tiny_weights) / "model.safetensors")
        assert "no validated step beat the starting model" in " ".join(output.split())
    else:
        ck = torch.load(list_checkpoints(run)[-1], map_location="cpu", weights_only=True)
        source = {f"refine.{k}": v for k, v in ck["models"]["g2"].items()}
        source |= {f"base.{k}": v for k, v in ck["models"]["g1"].items()}
        assert "exported the best validated step: step 2" in " ".join(output.split())
    for k, v in exported.items():
        assert torch.allclose(v.float(), source[k].float().half().float()), k
    card = (run / "model" / "README.md").read_text()
    assert "## Chosen by validation" in card and f"| {best} | " in card
    assert ("the starting model (step 0)" in card) == (best == 0)


@pytest.mark.slow
def test_the_model_folder_is_fp16_readable_and_carries_its_discriminators(ft_run):
    run, _ = ft_run
    folder = run / "model"
    for f in folder.iterdir():
        assert f.stat().st_mode & 0o777 == 0o644, f
    with safe_open(str(folder / "model.safetensors"), "pt") as f:
        assert {f.get_tensor(k).dtype for k in f.keys() if "num_batches" not in k} == {torch.float16}
    d = read_state_dict(folder / "discriminators.safetensors")
    assert {k.split(".")[0] for k in d} == {"d1", "d2"} and d["d2.conv1.0.weight"].shape[0] == 4


@pytest.mark.slow
def test_a_finetune_from_a_model_with_discriminators_loads_them_and_skips_warm_up(ft_run, clips, tmp_path):
    run, _ = ft_run
    out = tmp_path / "again"
    result = CliRunner().invoke(
        app,
        [
            "finetune",
            str(clips),
            "-w",
            str(run / "model"),
            "--out",
            str(out),
            "--stage",
            "2",
            "--steps",
            "1",
            *FAST,
        ],
    )
    assert result.exit_code == 0, result.output
    assert "discriminators: loaded with the starting weights" in result.output
    assert "discriminator-only" not in result.output
    assert "loss_g" in read_metrics(out)[0]  # the first step already trains the generator
    shipped = read_state_dict(run / "model" / "discriminators.safetensors")
    ck = torch.load(list_checkpoints(out)[-1], map_location="cpu", weights_only=True)
    assert "d1" not in ck["models"]  # Stage II does not need Stage I's discriminator to resume
    assert set(ck["optim"]) == {"g2", "d2"}  # nor the Adam moments of a stage it never reopens
    d1 = (
        Trainer(
            TrainConfig(
                data=str(clips),
                out=str(tmp_path / "x"),
                weights=str(run / "model"),
                progress=False,
                num_workers=0,
            )
        )
        .setup()
        .d1.state_dict()
    )
    assert all(torch.equal(d1[k], shipped[f"d1.{k}"].float()) for k in d1 if d1[k].is_floating_point())


@pytest.mark.slow
def test_the_step0_preview_is_the_starting_models_prediction_and_says_so(ft_run, tiny_weights, clips):
    run, _ = ft_run
    gif = Image.open(run / "previews" / "step_00000000.gif")
    frames = []
    for i in range(gif.n_frames):
        gif.seek(i)
        frames.append(np.asarray(gif.convert("RGB")))
    panel = np.stack(frames)[:, :, 2 * 128 : 3 * 128].astype(int)  # Stage II
    shown = frames[0][14:, 3 * 128 :].astype(int)  # the real panel's first frame, below its label
    dataset = ClipDataset(discover_clips(clips))
    firsts = [dataset[i].numpy()[:, 0].transpose(1, 2, 0) for i in range(len(dataset))]
    first = min(firsts, key=lambda f: np.abs(f[14:].astype(int) - shown).mean())  # the preview's clip
    pipe = SkyPipeline(load_model(str(tiny_weights)), device="cpu")
    expected = pipe.predict_squares(first[None], stage=2)[0].astype(int)
    body = (slice(None), slice(14, None))  # below the label
    assert np.abs(panel[body] - expected[body]).mean() < 6  # GIF palette rounding only
    white = _label(np.full((1, 128, 128, 3), 255, np.uint8), "Stage II (start)")[0]
    w = int(np.flatnonzero((white.min(-1) < 255).any(0)).max()) + 1  # the expected label's box
    shown_text = panel[0, :12, :w].mean(-1)

    def distance(text: str) -> float:  # from the label ``text`` would have (GIF palettes blur grey edges)
        stamp = _label(np.zeros((1, 128, 128, 3), np.uint8), text)[0, :12, :w].mean(-1)
        return float(np.abs(stamp - shown_text).mean())

    assert distance("Stage II (start)") * 3 < min(distance("Stage II"), distance("Stage II (untrained)"))


def test_split_holds_out_whole_sequences():
    from skyforecast.io.clips import Clip, ClipIndex, FrameSequence

    seqs = [FrameSequence(f"s{i}", "video", 96) for i in range(5)]
    index = ClipIndex("root", seqs, [Clip(i, s) for i in range(5) for s in (0, 32, 64)])
    train, held = split_index(index, 0.4, seed=1)
    assert len(held.sequences) == 2 and len(train.sequences) == 3 and len(held.clips) == 6
    assert not {s.path for s in train.sequences} & {s.path for s in held.sequences}
    assert all(c.sequence < len(held.sequences) for c in held.clips)
    assert split_index(index, 0.4, seed=1)[1].sequences == held.sequences  # the same seed, the same split


def test_the_choice_needs_a_better_psnr_without_more_leak():
    def rec(step, psnr, leak):
        return {"step": step, "stage": 2, "stage2": {"psnr": psnr, "leak": leak}}

    v = Validation()
    assert v.add(rec(0, 20.0, 0.5))
    assert not v.add(rec(50, 21.0, 0.6))  # sharper but the ground moves more: not chosen
    assert not v.add(rec(100, 19.0, 0.4))
    assert v.add(rec(150, 20.5, 0.5)) and v.best_step == 150
    again = Validation.from_dict(v.to_dict(), up_to=100)  # a run resumed from step 100
    assert again.best_step == 0 and [h["step"] for h in again.history] == [0, 50, 100]


def test_the_choice_says_what_the_chosen_step_does_worse_than_the_start():
    """The numbers of a real run (seed 1, 12 of real-sky-dev's clips, the other 4 validated): PSNR and leak
    better at step 175, but the raw model less steady and the default output's PSNR lower."""

    def rec(step, psnr, steady, speed, leak, default):
        raw = {"psnr": psnr, "steadiness": steady, "speed_ratio": speed, "leak": leak}
        return {"step": step, "stage": 2, "stage2": raw, "default": {"psnr": default}}

    v = Validation()
    v.add(rec(0, 20.2816, 0.3088, 0.124, 0.3742, 24.7874))
    v.add(rec(175, 21.2934, 0.2445, 0.1259, 0.3134, 24.6711))
    reason = v.reason()
    assert v.best_step == 175
    assert "worse than the start in the raw model's steadiness 0.24 (start: 0.31)" in reason
    assert "predict's default output's PSNR 24.67 dB (start: 24.79 dB)" in reason
    assert "speed ratio" not in reason  # 0.13 is nearer 1 than 0.12
    v.add(rec(200, 21.5, 0.3088, 0.124, 0.30, 24.79))  # better or equal on everything
    assert v.best_step == 200 and "worse" not in v.reason()


def test_precision_auto_is_bf16_where_the_cpu_has_it(clips: Path, tmp_path: Path):
    from skyforecast.model.fast import cpu_supports_bf16

    t = Trainer(
        TrainConfig(
            data=str(clips), out=str(tmp_path / "r"), ngf=4, device="cpu", progress=False, num_workers=0
        )
    ).setup()
    assert t.precision == ("bf16" if cpu_supports_bf16() else "fp32")
    assert t.cfg.ndf == 4  # the discriminators are as wide as the generators
    assert t.cfg.bn_mode == "batch" and t.cfg.warmup_steps == 0  # from scratch: as the paper


@pytest.mark.slow
def test_export_is_fp16_by_default_within_one_level_of_fp32_with_a_card_without_local_paths(
    ft_run, clips: Path, tmp_path: Path
):
    run, _ = ft_run
    ckpt = list_checkpoints(run)[-1]
    runner = CliRunner()
    half, full = tmp_path / "half", tmp_path / "full"
    result = runner.invoke(app, ["export", str(ckpt), str(half), "--evaluate", str(clips), "--limit", "2"])
    assert result.exit_code == 0, result.output
    assert runner.invoke(app, ["export", str(ckpt), str(full), "--dtype", "fp32"]).exit_code == 0
    assert (half / "model.safetensors").stat().st_size < 0.6 * (full / "model.safetensors").stat().st_size
    assert (half / "model.safetensors").stat().st_mode & 0o777 == 0o644
    dataset = ClipDataset(discover_clips(clips))
    firsts = np.stack([dataset[i].numpy()[:, 0].transpose(1, 2, 0) for i in range(len(dataset))])
    videos = [
        SkyPipeline(load_model(str(f)), device="cpu", fast=False).predict_squares(firsts, stage=2)
        for f in (half, full)
    ]
    assert np.abs(videos[0].astype(int) - videos[1].astype(int)).max() <= 1  # within 1/255
    card = (half / "README.md").read_text()
    assert str(tmp_path) not in card and str(run) not in card and str(clips) not in card
    assert f"`{run.name}/checkpoints/{ckpt.name}`" in card and f"`{clips.name}`, 2 clips" in card
    assert "| predict (default) |" in card and "| model (Stage II) |" in card
