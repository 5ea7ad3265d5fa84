"""The training commands as a user meets them : `--resume` keeps the run's settings, one step
numbering in every file of a run folder, labelled previews, `finetune` without `-w`, `--weights RUN_DIR`
for every command, `skyforecast export` and the model card it writes. Tiny models (ngf=4) on 4 synthetic
128x128 clips, 1-2 steps per stage: each training session takes a few seconds on CPU."""

from __future__ import annotations

import json
import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from runs import make_clips, read_metrics
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.evaluation.scoring import evaluate
from skyforecast.model.networks import MDGAN
from skyforecast.training.config import FINETUNE_EMA, FINETUNE_FLICKER, FINETUNE_LR
from skyforecast.training.trainer import TrainConfig, finetune, latest_checkpoint, start_weights, train

TINY = ["--ngf", "4", "--ndf", "4", "--num-workers", "0", "--log-every", "1", "-q"]
WIDE = {"COLUMNS": "200"}  # help texts on one line each


def _invoke(*args: str, env: dict | None = None) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={**WIDE, **(env or {})})
    return result.exit_code, result.output


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("clips"), 4)


@pytest.fixture(scope="module")
def two_stage_run(clips: Path, tmp_path_factory) -> tuple[Path, str]:
    """A run in two sessions: Stage I with --batch-size 2 (and a non-default lr), then `--stage 2 --resume`
    with neither. Returns the run folder and the second session's output."""
    run = tmp_path_factory.mktemp("runs") / "run"
    code, out = _invoke(
        "train", str(clips), "--out", str(run), "--stage", "1", "--steps", "1", "--batch-size", "2",
        "--lr", "1e-3", *TINY,
    )  # fmt: skip
    assert code == 0, out
    code, out = _invoke(
        "train", str(clips), "--out", str(run), "--stage", "2", "--steps", "1", "--resume", "-q"
    )
    assert code == 0, out
    return run, out


def test_resume_carries_every_stored_setting_and_names_the_changed_ones(two_stage_run):
    run, out = two_stage_run
    stored = json.loads((run / "config.json").read_text())
    cfg, effective = stored["config"], stored["effective"]
    # 4 clips: the default batch of 8 would have run as batches of 4
    assert cfg["batch_size"] == 2 and effective["batch_size_per_process"] == 2
    assert (cfg["lr"], cfg["ngf"], cfg["ndf"], cfg["num_workers"], cfg["log_every"]) == (1e-3, 4, 4, 0, 1)
    notes = [line for line in out.replace("\n", " ").split("note:")[1:] if "changed settings" in line]
    assert len(notes) == 1 and "stage 1 -> 2" in notes[0]
    assert "batch_size" not in notes[0] and "lr" not in notes[0]


def test_one_step_numbering_in_metrics_checkpoints_and_previews(two_stage_run):
    run, _ = two_stage_run
    records = read_metrics(run)
    assert [(r["step"], r["stage"], r["stage_step"]) for r in records] == [(1, 1, 1), (2, 2, 1)]
    assert [p.name for p in sorted((run / "checkpoints").iterdir())] == [
        "step_00000001.pt",
        "step_00000002.pt",
    ]
    gifs = sorted(p.name for p in (run / "previews").iterdir())
    assert gifs == ["step_00000000.gif", "step_00000001.gif", "step_00000002.gif"]
    ck = torch.load(run / "checkpoints" / "step_00000002.pt", weights_only=True)
    assert ck["global_step"] == 2 and ck["stage_steps"] == {"1": 1, "2": 1}


def test_preview_panels_are_labelled(two_stage_run):
    run, _ = two_stage_run
    frame = np.asarray(Image.open(run / "previews" / "step_00000002.gif").convert("RGB"))
    assert frame.shape == (128, 4 * 128, 3)
    corners = [frame[:12, 128 * i : 128 * i + 20].astype(int) for i in range(4)]
    for corner in corners:  # white text on a black box, whatever the video shows there
        assert (corner.sum(-1) < 60).mean() > 0.5 and (corner.min(-1) > 200).sum() >= 10
    texts = [frame[:12, 128 * i : 128 * i + 40].min(-1) > 200 for i in range(4)]  # each panel its own label
    assert all(not np.array_equal(texts[i], texts[j]) for i in range(4) for j in range(i + 1, 4))


def test_stage_boundary_stop_then_larger_steps_extends_the_stage_in_progress(clips: Path, tmp_path: Path):
    """Stopped right as Stage I ends: the checkpoint is Stage II step 0, so resuming with more --steps
    extends Stage II (the stage in progress), not the finished Stage I; and --stop-after 1 stops after 1."""
    common = dict(data=str(clips), out=str(tmp_path / "run"), batch_size=2, ngf=4, ndf=4, num_workers=0)
    common.update(progress=False, log_every=1, preview_every=100)
    train(TrainConfig(steps=1, stop_after=1, **common))
    ck = torch.load(latest_checkpoint(tmp_path / "run"), weights_only=True)
    assert (ck["stage"], ck["step"], ck["global_step"]) == (2, 0, 1)
    train(TrainConfig(steps=2, resume=True, **common))
    records = read_metrics(tmp_path / "run")
    assert [(r["step"], r["stage"], r["stage_step"]) for r in records] == [(1, 1, 1), (2, 2, 1), (3, 2, 2)]


def test_model_card_of_a_training_run(two_stage_run, clips: Path):
    run, _ = two_stage_run
    card = (run / "model" / "README.md").read_text()
    assert "More Information Needed" not in card and "PytorchModelHubMixin" not in card
    assert f"`{clips.name}`, 4 clips" in card and str(clips) not in card  # no local path in a card
    assert "Stage I: 1, Stage II: 1 (global step 2)" in card
    assert "| `batch_size` | 2 |" in card and "| `lr` | 0.001 |" in card
    assert "skyforecast predict photo.jpg --weights" in card and "SkyPipeline.from_pretrained" in card
    assert "Not evaluated" in card


def test_weights_run_folder_means_its_model_for_every_command(two_stage_run, clips: Path, tmp_path: Path):
    run, _ = two_stage_run
    photo = tmp_path / "sky.png"
    Image.fromarray(np.full((48, 64, 3), (90, 140, 200), np.uint8)).save(photo)
    code, out = _invoke("predict", str(photo), "-w", str(run), "-o", str(tmp_path / "out"), "--device", "cpu")
    assert code == 0, out
    assert (tmp_path / "out" / "sky.mp4").stat().st_size > 1000
    report = evaluate(clips, str(run), device="cpu", limit=1, systems=("stage2",))
    assert report.weights.startswith(f"model folder {run / 'model'}")
    spec, line = start_weights(str(run))  # what finetune starts from
    assert spec == str(run / "model") and "model folder" in line


def test_a_training_checkpoint_as_weights_points_to_export(two_stage_run, tmp_path: Path):
    run, _ = two_stage_run
    ckpt = run / "checkpoints" / "step_00000002.pt"
    loose = tmp_path / "elsewhere.pt"  # recognised by content too, without unpickling
    shutil.copy(ckpt, loose)
    foreign = tmp_path / "foreign.pt"
    torch.save({"weight": torch.zeros(2)}, foreign)
    photo = tmp_path / "sky.png"
    Image.fromarray(np.full((48, 64, 3), 128, np.uint8)).save(photo)
    for weights in (ckpt, loose):
        code, out = _invoke(
            "predict", str(photo), "-w", str(weights), "-o", str(tmp_path / "o"), "--overwrite"
        )
        assert code == 1 and f"skyforecast export {weights} OUT" in out and "convert-official" not in out
        assert "Traceback" not in out
    code, out = _invoke("predict", str(photo), "-w", str(foreign), "-o", str(tmp_path / "o"), "--overwrite")
    assert code == 1 and "convert-official" in out and "skyforecast export" not in out


def test_export_writes_a_loadable_model_with_a_real_card(two_stage_run, clips: Path, tmp_path: Path):
    run, _ = two_stage_run
    out = tmp_path / "stage1"
    code, text = _invoke("export", str(run / "checkpoints" / "step_00000001.pt"), str(out))
    assert code == 0, text
    names = {p.name for p in out.iterdir()}
    assert names == {"config.json", "model.safetensors", "discriminators.safetensors", "README.md"}
    model = MDGAN.from_pretrained(out)
    ck = torch.load(run / "checkpoints" / "step_00000001.pt", weights_only=True)
    for k, v in model.base.state_dict().items():
        assert torch.equal(v, ck["models"]["g1"][k].half().to(v.dtype)), k  # fp16 by default
    card = (out / "README.md").read_text()
    assert "Stage I: 1, Stage II: 0 (global step 1)" in card and "Refine-Net was not trained" in card
    assert "step_00000001.pt" in card and "4 clips" in card and "More Information Needed" not in card

    # a run folder: its latest checkpoint, scored on clips, the card carrying the measured numbers
    scored = tmp_path / "scored"
    code, text = _invoke(
        "export", str(run), str(scored), "--evaluate", str(clips), "--limit", "2", "--device", "cpu"
    )
    assert code == 0, text
    ck = torch.load(latest_checkpoint(run), weights_only=True)
    stored = MDGAN.from_pretrained(scored).refine.conv1.weight
    assert torch.equal(stored, ck["models"]["g2"]["conv1.weight"].half().float())  # fp16 by default
    card = (scored / "README.md").read_text()
    report = evaluate(clips, str(scored), device="cpu", limit=2, systems=("stage2",))
    row = re.search(r"\| model \(Stage II\) \| ([\d.]+) \| ([\d.]+) \| ([\d.]+) \|", card)
    assert row, card
    assert float(row[1]) == pytest.approx(report.systems["stage2"].psnr, abs=0.006)
    assert float(row[2]) == pytest.approx(report.systems["stage2"].ssim, abs=0.0006)
    assert f"`{clips.name}`, 2 clips" in card and "Stage I: 1, Stage II: 1 (global step 2)" in card

    code, text = _invoke("export", str(run), str(scored))
    assert code == 1 and "--overwrite" in text
    code, text = _invoke("export", str(run), str(run / "checkpoints"))
    assert code == 1 and "not a model folder" in text and "Traceback" not in text
    code, text = _invoke("export", str(clips), str(tmp_path / "x"))
    assert code == 1 and "no checkpoints" in text and not (tmp_path / "x").exists()


def test_finetune_without_weights_follows_the_weights_rule(
    two_stage_run, clips: Path, tmp_path: Path, monkeypatch
):
    run, _ = two_stage_run
    out = tmp_path / "ft"
    code, text = _invoke(
        "finetune", str(clips), "--out", str(out), "--stage", "2", "--steps", "1", "--batch-size", "2",
        "--ndf", "4", "--num-workers", "0", "-q",
        env={"SKYFORECAST_WEIGHTS": str(run)},
    )  # fmt: skip
    assert code == 0, text
    assert f"starting weights: model folder {run / 'model'} (from $SKYFORECAST_WEIGHTS)" in text.replace(
        "\n", ""
    )
    cfg = json.loads((out / "config.json").read_text())["config"]
    assert cfg["weights"] == str(run / "model") and cfg["ngf"] == 4
    # finetune's own defaults (the command's and the Python API's): the lower lr and the flicker term the
    # bundled model was trained with; `train` keeps the flicker term off
    assert (cfg["lr"], cfg["lambda_flicker"]) == (FINETUNE_LR, FINETUNE_FLICKER) and FINETUNE_FLICKER > 0
    assert cfg["ema"] == FINETUNE_EMA > 0  # the exported model is the weight average
    trained = json.loads((run / "config.json").read_text())["config"]
    assert trained["lambda_flicker"] == 0 and trained["ema"] == 0
    api = tmp_path / "api"
    finetune(str(clips), str(run), str(api), stage="2", steps=1, batch_size=2, ndf=4, num_workers=0,
             progress=False, lambda_flicker=5.0)  # fmt: skip
    cfg = json.loads((api / "config.json").read_text())["config"]
    assert (cfg["lr"], cfg["lambda_flicker"]) == (FINETUNE_LR, 5.0)  # given settings win
    monkeypatch.delenv("SKYFORECAST_WEIGHTS", raising=False)
    spec, line = start_weights(None)
    assert (Path(spec) / "model.safetensors").is_file() and line.startswith(
        "starting weights: bundled default"
    )


def test_train_messages_and_help(clips: Path, tmp_path: Path):
    code, out = _invoke(
        "train", str(clips), "--out", str(tmp_path / "fresh"), "--stage", "2", "--steps", "1", *TINY
    )
    assert code == 1 and "Stage II trains on a trained Base-Net" in out
    assert "--weights" not in out and "skyforecast finetune --stage 2" in out
    for command in ("train", "finetune"):
        code, out = _invoke(command, "--help")
        assert code == 0
        flat = " ".join(out.split())  # the plain help wraps at 80 columns
        assert "Adam learning rate. [default: 2e-4 train, 1e-5 finetune]" in flat
        assert "Stage II L1 weight. [default: --lambda-con]" in flat
        assert "against flicker (not in the paper). [default: 0 train, 1000 finetune]" in flat
        assert "Frames between clip starts. [default: 32, no overlap]" in flat
        assert not re.search(r"\w \.(?!\.)", out), re.findall(r".{30}\w \.(?!\.).{10}", out)


def test_the_training_benchmark_runs_a_setting(clips: Path):
    """``bench/train.py`` drives the trainer's steps directly: one Stage II setting at ngf 4, one timed step,
    in its own process as the benchmark runs it (it broke once when the trainer gained a counter)."""
    import subprocess
    import sys

    bench = Path(__file__).resolve().parents[1] / "bench" / "train.py"
    cmd = [sys.executable, str(bench), "--one", "2", "4", "defaults", "--steps", "1", "--data", str(clips)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    row = json.loads(proc.stdout.strip().splitlines()[-1])
    assert row["stage"] == "2" and row["ngf"] == 4 and row["clips_per_s"] > 0 and len(row["step_s"]) == 1
