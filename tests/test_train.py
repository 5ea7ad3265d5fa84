"""Short real training runs on CPU (ngf=4, 1-2 real clips): learning, export, fine-tuning, exact resume,
a 2-process DDP run and the command line's handling of bad data. Tiny widths keep this near a minute."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runs import read_metrics
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.io.clips import ClipDataset, discover_clips, to_model_range
from skyforecast.model.networks import MDGAN
from skyforecast.training.trainer import TrainConfig, Trainer, TrainError, latest_checkpoint, train

TINY = {"ngf": 4, "ndf": 4, "num_workers": 0, "progress": False, "log_every": 1}


def _clips(real_sky_dev: Path, dest: Path, names=("grid00", "grid03")) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    for name in names:
        (dest / name).symlink_to(real_sky_dev / name)
    return dest


def _first_clip(data: Path) -> torch.Tensor:
    return to_model_range(ClipDataset(discover_clips(data))[0][None])


@pytest.fixture(scope="module")
def trained_run(tmp_path_factory) -> tuple[Path, Path]:
    """6 Stage I steps on 2 real clips (batch 2, so every step sees the same clips and the L1 values
    are comparable step to step), then the same run continued with 2 Stage II steps (--resume)."""
    real = Path(__file__).resolve().parents[2] / "shared" / "data" / "real-sky-dev"
    if not real.exists():
        pytest.skip(f"needs {real} (the team's shared real data), absent here")
    base = tmp_path_factory.mktemp("trained")
    data = _clips(real, base / "data")
    run = base / "run"
    common = dict(data=str(data), out=str(run), batch_size=2, lr=1e-3, preview_every=3, **TINY)
    train(TrainConfig(stage="1", steps=6, **common))
    train(TrainConfig(stage="2", steps=2, resume=True, **common))
    return data, run


@pytest.mark.slow
def test_stage1_l1_falls_and_run_folder_is_complete(trained_run):
    data, run = trained_run
    records = read_metrics(run)
    stage1 = [r["l1"] for r in records if r["stage"] == 1]
    stage2 = [r for r in records if r["stage"] == 2]
    assert len(stage1) == 6 and len(stage2) == 2
    assert stage1[-1] < 0.9 * stage1[0], stage1  # measured: 0.507 -> 0.439
    assert all(np.isfinite(r["rank"]) and r["rank"] >= 0 for r in stage2)
    assert [r["step"] for r in records] == list(range(1, 9))  # one numbering: the run's step
    assert [r["stage_step"] for r in records] == [1, 2, 3, 4, 5, 6, 1, 2]
    config = json.loads((run / "config.json").read_text())
    assert config["config"]["ngf"] == 4 and len(config["sessions"]) == 2
    assert config["effective"]["clips"] == 2
    ckpts = sorted(p.name for p in (run / "checkpoints").iterdir())
    assert ckpts == ["step_00000006.pt", "step_00000008.pt"]  # no temp files left behind
    gifs = sorted(p.name for p in (run / "previews").iterdir())
    assert gifs[0] == "step_00000000.gif" and "step_00000006.gif" in gifs and gifs[-1] == "step_00000008.gif"
    preview = Image.open(run / "previews" / "step_00000006.gif")
    assert preview.size == (4 * 128, 128) and preview.n_frames == 32
    assert {"config.json", "model.safetensors"} <= {p.name for p in (run / "model").iterdir()}


@pytest.mark.slow
def test_exported_model_loads_and_predicts(trained_run):
    data, run = trained_run
    model = MDGAN.from_pretrained(run / "model")
    assert model.ngf == 4 and not model.training
    ck = torch.load(latest_checkpoint(run), weights_only=True)
    for k, v in model.base.state_dict().items():  # stored in fp16, as the bundled model
        assert torch.equal(v, ck["models"]["g1"][k].half().to(v.dtype)), k
    real = _first_clip(data)
    with torch.no_grad():
        y1 = model(real[:, :, :1].expand_as(real), stage=1)
        y2 = model(real[:, :, :1].expand_as(real))
    assert y2.shape == (1, 3, 32, 128, 128) and torch.isfinite(y2).all()
    assert y2.abs().max() <= 1 and not torch.equal(y1, y2)
    # and it learned something about the clip: closer to it than an untrained model of the same width
    torch.manual_seed(0)
    untrained = MDGAN(ngf=4).eval()
    with torch.no_grad():
        y_untrained = untrained(real[:, :, :1].expand_as(real), stage=1)
    assert (y1 - real).abs().mean() < (y_untrained - real).abs().mean()


@pytest.mark.slow
def test_predict_command_runs_the_exported_model(trained_run, real_photos: Path, tmp_path: Path):
    _, run = trained_run
    photo = real_photos / "coast.png"
    result = CliRunner().invoke(
        app, ["predict", str(photo), "--weights", str(run / "model"), "-o", str(tmp_path), "--device", "cpu"]
    )
    assert result.exit_code == 0, result.output
    videos = list(tmp_path.glob("*.mp4"))
    assert len(videos) == 1 and videos[0].stat().st_size > 1000


@pytest.mark.slow
def test_finetune_starts_from_the_given_weights(trained_run, tmp_path: Path):
    data, run = trained_run
    source = MDGAN.from_pretrained(run / "model")
    trainer = Trainer(
        TrainConfig(
            data=str(data), out=str(tmp_path / "ft"), weights=str(run / "model"), **{**TINY, "ngf": 32}
        )
    )
    trainer.setup()
    assert trainer.cfg.ngf == 4  # the width comes from the weights, not the default
    real = _first_clip(data)
    x = real[:, :, :1].expand_as(real)
    trainer.g1.eval()
    trainer.g2.eval()
    with torch.no_grad():
        assert torch.equal(trainer.g1(x), source.base(x))
        assert torch.equal(trainer.g2(trainer.g1(x)), source(x))

    # --stage 2 tunes motion only: one step changes the Refine-Net and leaves the Base-Net exactly as loaded
    out = tmp_path / "ft2"
    result = CliRunner().invoke(
        app,
        ["finetune", str(data), "--weights", str(run / "model"), "--out", str(out), "--stage", "2"]
        + ["--steps", "1", "--batch-size", "2", "--ndf", "4", "--num-workers", "0", "--d-warmup", "0", "-q"],
    )
    assert result.exit_code == 0, result.output
    tuned = MDGAN.from_pretrained(out / "model")
    for k, v in source.base.state_dict().items():
        assert torch.equal(v, tuned.base.state_dict()[k]), k
    assert any(
        not torch.equal(v, tuned.refine.state_dict()[k]) for k, v in source.refine.state_dict().items()
    )
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["lr"] == 1e-5 and cfg["weights"] == str(run / "model")


@pytest.mark.slow
def test_finetune_refine_init_random_replaces_the_loaded_refine_net(trained_run, tmp_path: Path):
    """``finetune --refine-init random``: Base-Net as loaded, Refine-Net freshly initialised (it used to
    keep the loaded one silently)."""
    data, run = trained_run
    source = MDGAN.from_pretrained(run / "model")
    cfg = TrainConfig(
        data=str(data), out=str(tmp_path / "ft"), weights=str(run / "model"), refine_init="random", **TINY
    )
    trainer = Trainer(cfg)
    trainer.setup()
    for k, v in source.base.state_dict().items():
        assert torch.equal(v, trainer.g1.state_dict()[k]), k
    loaded = dict(source.refine.named_parameters())
    assert all((p - loaded[n]).abs().max().item() > 1e-3 for n, p in trainer.g2.named_parameters())


def _final_state(run: Path) -> dict:
    return torch.load(latest_checkpoint(run), weights_only=True)


@pytest.mark.slow
def test_resume_is_exact(real_sky_dev: Path, tmp_path: Path):
    """Both stages, 2 steps each, one clip per step over 2 clips (epochs roll over). Uninterrupted vs
    stopped after step 1 (mid Stage I) and after step 3 (mid Stage II, mid epoch) and resumed."""
    data = _clips(real_sky_dev, tmp_path / "data")
    common = dict(data=str(data), steps=2, batch_size=1, checkpoint_every=100, preview_every=100, **TINY)
    straight = tmp_path / "straight"
    train(TrainConfig(out=str(straight), **common))
    parts = tmp_path / "parts"
    train(TrainConfig(out=str(parts), stop_after=1, **common))
    assert _final_state(parts)["global_step"] == 1
    train(TrainConfig(out=str(parts), stop_after=2, resume=True, **common))
    mid = _final_state(parts)
    assert (mid["stage"], mid["step"], mid["global_step"]) == (2, 1, 3)
    train(TrainConfig(out=str(parts), resume=True, **common))

    a, b = _final_state(straight), _final_state(parts)
    assert a["global_step"] == b["global_step"] == 4 and (a["epoch"], a["batch_in_epoch"]) == (1, 0)
    # a Stage II checkpoint keeps what resuming needs: no D1, and only Stage II's Adam moments
    assert set(a["models"]) == set(b["models"]) == {"g1", "g2", "d2"}
    assert set(a["optim"]) == set(b["optim"]) == {"g2", "d2"}
    for net in a["models"]:
        for k, v in a["models"][net].items():
            assert torch.equal(v, b["models"][net][k]), f"{net}.{k}"
    for net in a["optim"]:
        sa, sb = a["optim"][net]["state"], b["optim"][net]["state"]
        assert sa.keys() == sb.keys()
        for i in sa:
            assert torch.equal(sa[i]["exp_avg_sq"], sb[i]["exp_avg_sq"])
    assert torch.equal(a["rng"]["torch"], b["rng"]["torch"])
    strip = ("time", "samples_per_s")
    ma = [{k: v for k, v in r.items() if k not in strip} for r in read_metrics(straight)]
    mb = [{k: v for k, v in r.items() if k not in strip} for r in read_metrics(parts)]
    assert ma == mb


@pytest.mark.slow
@pytest.mark.parametrize("refine_init", ["base", "random"])
def test_refine_net_start(real_sky_dev: Path, tmp_path: Path, refine_init: str):
    """Stage II's Refine-Net starts as a copy of the trained Base-Net by default (--refine-init base),
    or from fresh random weights (random, the paper's literal setting). One Stage II step at lr 1e-9
    moves no weight measurably, so the exported Refine-Net shows where it started."""
    data = _clips(real_sky_dev, tmp_path / "data", names=("grid00",))
    run = tmp_path / "run"
    common = dict(data=str(data), out=str(run), batch_size=1, preview_every=100, **TINY)
    train(TrainConfig(stage="1", steps=2, lr=1e-3, **common))
    train(TrainConfig(stage="2", steps=1, lr=1e-9, resume=True, refine_init=refine_init, **common))
    models = _final_state(run)["models"]  # fp32 (the exported model is fp16)
    gaps = [(p - models["g1"][k]).abs().max().item() for k, p in models["g2"].items() if k.endswith("weight")]
    if refine_init == "base":
        assert max(gaps) < 1e-6
    else:
        assert min(gaps) > 1e-3


@pytest.mark.slow
def test_wider_refine_net_starts_as_a_widened_copy(real_sky_dev: Path, tmp_path: Path):
    """``--refine-ngf`` twice the Base-Net's width: Stage II starts from Base-Net with every channel repeated
    (plus 1% noise), so after one step at lr 1e-9 the exported two-width model still predicts about what
    Base-Net predicts; a width that is not a multiple cannot be a copy and is refused in one line."""
    data = _clips(real_sky_dev, tmp_path / "data", names=("grid00",))
    run = tmp_path / "run"
    common = dict(data=str(data), out=str(run), batch_size=1, preview_every=100, **TINY)
    train(TrainConfig(stage="1", steps=2, lr=1e-3, **common))
    train(TrainConfig(stage="2", steps=1, lr=1e-9, resume=True, refine_ngf=8, **common))
    assert json.loads((run / "model" / "config.json").read_text()) == {
        "ngf": 4,
        "batch_stats": False,
        "refine_ngf": 8,
    }
    model = MDGAN.from_pretrained(run / "model")
    assert model.refine.conv1.weight.shape[0] == 8
    x = _first_clip(data)
    with torch.no_grad():
        y1 = model(x, stage=1)
        gap = (model.refine(y1) - model.base(y1)).abs().mean().item()
    assert gap < 0.02

    result = CliRunner().invoke(
        app,
        ["train", str(data), "--out", str(tmp_path / "odd"), "--ngf", "4", "--ndf", "4", "--refine-ngf", "6"]
        + ["--refine-init", "base", "--steps", "1", "--num-workers", "0", "-q"],
    )
    assert result.exit_code == 1
    assert "--refine-init base: Base-Net is 4 wide, Refine-Net here 6" in result.output
    assert "Traceback" not in result.output and not (tmp_path / "odd" / "model").exists()


@pytest.mark.slow
def test_nan_loss_stops_and_keeps_the_last_good_checkpoint(real_sky_dev: Path, tmp_path: Path):
    data = _clips(real_sky_dev, tmp_path / "data", names=("grid00",))
    run = tmp_path / "run"
    common = dict(data=str(data), out=str(run), stage="1", batch_size=1, **TINY)
    train(TrainConfig(steps=1, **common))
    good = latest_checkpoint(run)
    before = good.read_bytes()
    with pytest.raises(TrainError, match=r"not finite at step 2 \(Stage 1 step 2; .*step_00000001\.pt"):
        train(TrainConfig(steps=3, resume=True, lambda_con=float("nan"), **common))
    assert latest_checkpoint(run) == good and good.read_bytes() == before


@pytest.mark.slow
def test_ddp_two_processes_gloo_rank0_writes(real_sky_dev: Path, tmp_path: Path):
    data = _clips(real_sky_dev, tmp_path / "data", names=("grid00", "grid03", "grid06", "grid09"))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "skyforecast", "train", str(data), "--out", str(run), "--stage", "1", "--steps", "2"]
    cmd += ["--batch-size", "1", "--ngf", "4", "--ndf", "4", "--num-workers", "0", "--log-every", "1", "-q"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    records = read_metrics(run)
    assert [r["step"] for r in records] == [1, 2]  # one writer, not two interleaved
    assert all(r["world_size"] == 2 for r in records)
    assert proc.stdout.count("model exported") == 1
    names = sorted(str(p.relative_to(run)) for p in run.rglob("*") if p.is_file())
    assert not [n for n in names if ".tmp" in n or n.startswith(".")]
    assert [n for n in names if n.startswith("checkpoints/")] == ["checkpoints/step_00000002.pt"]
    cfg = json.loads((run / "config.json").read_text())
    assert cfg["effective"]["global_batch_size"] == 2 and cfg["sessions"][0]["world_size"] == 2
    assert torch.isfinite(
        MDGAN.from_pretrained(run / "model")(_first_clip(data)[:, :, :1].expand(1, 3, 32, 128, 128))
    ).all()


def _cli_train(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, ["train", *args, "--ngf", "4", "--ndf", "4", "--num-workers", "0", "-q"])
    return result.exit_code, result.output


def test_cli_bad_data_gives_one_clear_error(real_short_clip: Path, tmp_path: Path):
    empty = tmp_path / "empty"
    empty.mkdir()
    for data, expected in [
        (empty, "no images or videos found"),
        (tmp_path / "missing", "no such folder"),
        (real_short_clip, "8 frames"),
    ]:
        code, out = _cli_train(str(data), "--out", str(tmp_path / "run"), "--steps", "1")
        assert code == 1, out
        assert "error:" in out and expected in out and "Traceback" not in out
    assert not (tmp_path / "run").exists()


@pytest.mark.slow
def test_cli_counts_corrupt_clips_and_refuses_to_mix_runs(real_sky_dev: Path, tmp_path: Path):
    data = _clips(real_sky_dev, tmp_path / "data", names=("grid00",))
    broken = data / "broken" / "clip"
    broken.mkdir(parents=True)
    for i, frame in enumerate(sorted((real_sky_dev / "grid03" / "grid03_1").iterdir())):
        (broken / frame.name).write_bytes(b"garbage" if i == 7 else frame.read_bytes())
    run = tmp_path / "run"
    code, out = _cli_train(
        str(data), "--out", str(run), "--stage", "1", "--steps", "2", "--batch-size", "1", "--log-every", "1"
    )
    assert code == 0, out
    records = read_metrics(run)
    assert len(records) == 2 and records[-1]["skipped_clips"] >= 1

    code, out = _cli_train(str(data), "--out", str(run), "--steps", "1")
    assert code == 1 and "already holds a run" in out and "Traceback" not in out
    code, out = _cli_train(str(data), "--out", str(tmp_path / "fresh"), "--stage", "2", "--steps", "1")
    assert code == 1 and "Stage II trains on a trained Base-Net" in out and "--weights" not in out
    code, out = _cli_train(str(data), "--out", str(tmp_path / "none"), "--resume", "--steps", "1")
    assert code == 1 and "no checkpoint to resume" in out
