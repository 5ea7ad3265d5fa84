"""`train --log tensorboard`: a real tiny run's event file, read back the way TensorBoard reads it
(its EventAccumulator), holds the losses and learning rates at the run's steps, the preview GIFs and their
`evaluate` motion scores; a resumed run continues the same log without showing a redone step twice; without
--log no tensorboard folder is written; without the package --log tensorboard is one usage line.
Tiny models (ngf=4) on 2 synthetic 128x128 clips, 2 steps per stage."""

from __future__ import annotations

import io
import json
import math
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image
from runs import make_clips, read_metrics
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.evaluation.scoring import real_clip
from skyforecast.io.clips import ClipDataset, discover_clips, to_model_range
from skyforecast.model.pipeline import to_uint8_video

TINY = ["--ngf", "4", "--ndf", "4", "--num-workers", "0", "--batch-size", "1", "--log-every", "1", "-q"]
LOSSES = ("loss_g", "loss_d", "adv", "l1", "flicker", "d_real", "d_fake")
NO_TENSORBOARD = "import sys; sys.modules['tensorboard'] = None\n"  # `import tensorboard` now fails


def _train(*args: str) -> None:
    result = CliRunner().invoke(app, ["train", *args, *TINY], env={"COLUMNS": "200"})
    assert result.exit_code == 0, result.output


def _events(run: Path):
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    return EventAccumulator(str(run / "tensorboard"), size_guidance={"scalars": 0, "images": 0}).Reload()


def _steps(acc, tag: str) -> list[int]:
    return [e.step for e in acc.Scalars(tag)]


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("clips"), 2)


@pytest.fixture(scope="module")
def tb_run(clips: Path, tmp_path_factory) -> Path:
    """Stage I then Stage II, 2 steps each (global steps 1-4), a checkpoint every step, TensorBoard on."""
    pytest.importorskip("tensorboard", reason="pip install 'skyforecast[tensorboard]' (in the dev extra)")
    run = tmp_path_factory.mktemp("runs") / "run"
    _train(str(clips), "--out", str(run), "--steps", "2", "--checkpoint-every", "1", "--log", "tensorboard")
    return run


def test_losses_and_learning_rates_at_the_runs_steps(tb_run: Path):
    acc = _events(tb_run)
    records = read_metrics(tb_run)
    assert [r["step"] for r in records] == [1, 2, 3, 4]
    for record in records:
        for name in LOSSES + (("rank", "rank_d") if record["stage"] == 2 else ()):
            [event] = [e for e in acc.Scalars(f"stage{record['stage']}/{name}") if e.step == record["step"]]
            assert math.isclose(event.value, record[name], rel_tol=1e-5, abs_tol=1e-6), (name, record)
    assert _steps(acc, "stage1/loss_g") == [1, 2] and _steps(acc, "stage2/loss_g") == [3, 4]
    assert "stage1/rank" not in acc.Tags()["scalars"]  # Stage I has no ranking loss
    lr = json.loads((tb_run / "config.json").read_text())["config"]["lr"]
    for net, steps in (("g1", [1, 2]), ("d1", [1, 2]), ("g2", [3, 4]), ("d2", [3, 4])):
        assert _steps(acc, f"lr/{net}") == steps
        assert all(math.isclose(e.value, lr, rel_tol=1e-6) for e in acc.Scalars(f"lr/{net}"))
    assert _steps(acc, "train/samples_per_s") == [1, 2, 3, 4]


def test_previews_are_videos_with_their_motion_scores(tb_run: Path, clips: Path):
    acc = _events(tb_run)
    gifs = sorted((tb_run / "previews").glob("step_*.gif"))
    assert [p.name for p in gifs] == [f"step_{s:08d}.gif" for s in (0, 2, 4)]
    images = acc.Images("preview")
    assert [e.step for e in images] == [0, 2, 4]
    for event, gif in zip(images, gifs, strict=True):
        assert event.encoded_image_string == gif.read_bytes()  # what previews/ holds, not a copy of it
        with Image.open(io.BytesIO(event.encoded_image_string)) as im:
            assert im.format == "GIF" and im.n_frames == 32
            assert (im.width, im.height) == (event.width, event.height) == (4 * 128, 128)
    # the scores evaluate gives, on the preview clip (the run's first clip)
    for system in ("stage1", "stage2"):
        for score in ("psnr", "ssim", "motion_ratio", "speed", "speed_ratio", "leak"):
            events = acc.Scalars(f"preview_{system}/{score}")
            assert [e.step for e in events] == [0, 2, 4], (system, score)
            assert all(math.isfinite(e.value) for e in events)
    first = ClipDataset(discover_clips(str(clips), 32, None), 128, "squash")[0]
    real = real_clip(to_uint8_video(to_model_range(first[None]))[0])
    assert real.speed > 0.1  # the synthetic clip moves: the ratios are defined
    for score in ("speed", "steadiness", "leak"):
        logged = [e.value for e in acc.Scalars(f"preview_real/{score}")]
        assert len(logged) == 3 and all(math.isclose(v, getattr(real, score), rel_tol=1e-5) for v in logged)
    stage2_speed = acc.Scalars("preview_stage2/speed")[-1].value
    ratio = acc.Scalars("preview_stage2/speed_ratio")[-1].value
    assert math.isclose(ratio, stage2_speed / real.speed, rel_tol=1e-4)


def test_a_resumed_run_continues_the_log_without_showing_a_step_twice(tb_run: Path, clips: Path, tmp_path):
    """The run is cut back to its step-3 checkpoint (as if it had stopped there after logging step 4) and
    resumed with a larger budget, without --log (the run stored it): step 4 is trained again and shows
    once, the session's events follow on (steps 4 and 5), and the end-of-stage preview of the discarded
    step 4 is hidden."""
    run = tmp_path / "run"
    shutil.copytree(tb_run, run)
    (run / "checkpoints" / "step_00000004.pt").unlink()
    _train(str(clips), "--out", str(run), "--steps", "3", "--resume")
    assert json.loads((run / "config.json").read_text())["config"]["log"] == "tensorboard"
    assert len(list((run / "tensorboard").glob("events.out.tfevents.*"))) == 2
    acc = _events(run)
    assert _steps(acc, "stage1/loss_g") == [1, 2]
    assert _steps(acc, "stage2/loss_g") == [3, 4, 5]
    assert _steps(acc, "lr/g2") == [3, 4, 5]
    assert [e.step for e in acc.Images("preview")] == [0, 2, 5]
    assert _steps(acc, "preview_stage2/speed") == [0, 2, 5]
    new = {r["step"]: r for r in read_metrics(run)}
    assert sorted(new) == [1, 2, 3, 4, 5]
    assert math.isclose(acc.Scalars("stage2/l1")[-1].value, new[5]["l1"], rel_tol=1e-5)


@pytest.mark.slow
def test_under_torchrun_rank_0_alone_writes_the_log(clips: Path, tmp_path: Path):
    """Two gloo processes: one event file, each step once. `--` after `-m skyforecast`: torchrun's own
    parser would take `--log` for an abbreviation of its `--log-dir` (README says so)."""
    pytest.importorskip("tensorboard")
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"]
    cmd += ["-m", "skyforecast", "--", "train", str(clips), "--out", str(run), "--stage", "1", "--steps", "2"]
    cmd += [*TINY, "--log", "tensorboard"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-3000:]
    assert len(list((run / "tensorboard").iterdir())) == 1
    acc = _events(run)
    assert _steps(acc, "stage1/loss_g") == [1, 2] and _steps(acc, "lr/g1") == [1, 2]
    assert [e.step for e in acc.Images("preview")] == [0, 2]
    assert all(r["world_size"] == 2 for r in read_metrics(run))


def test_without_log_no_tensorboard_folder(clips: Path, tmp_path: Path):
    run = tmp_path / "run"
    _train(str(clips), "--out", str(run), "--stage", "1", "--steps", "1")
    assert (run / "metrics.jsonl").is_file() and (run / "model").is_dir()
    assert not (run / "tensorboard").exists()
    assert json.loads((run / "config.json").read_text())["config"]["log"] == "none"


def test_without_the_package_log_tensorboard_is_one_usage_line(clips: Path, tmp_path: Path):
    out = tmp_path / "run"
    cli = NO_TENSORBOARD + "from skyforecast.cli import main\nmain()"
    args = ["train", str(clips), "--out", str(out), "--log", "tensorboard"]
    proc = subprocess.run([sys.executable, "-c", cli, *args], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: invalid value for '--log'"), proc.stderr
    assert 'the tensorboard package is not installed: pip install "skyforecast[tensorboard]"' in lines[0]
    assert proc.stdout == "" and not out.exists()  # nothing started, nothing written

    # the Python API says the same, before it reads data or writes anything
    api = NO_TENSORBOARD + (
        "from skyforecast.training.trainer import TrainConfig, TrainError, train\n"
        f"try:\n    train(TrainConfig(data={str(clips)!r}, out={str(out)!r}, log='tensorboard'))\n"
        "except TrainError as e:\n    print(e)\n"
    )
    proc = subprocess.run([sys.executable, "-c", api], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == (
        '--log tensorboard: the tensorboard package is not installed: pip install "skyforecast[tensorboard]"'
    )
    assert not out.exists()


def test_log_takes_none_or_tensorboard():
    result = CliRunner().invoke(app, ["train", "x", "--out", "y", "--log", "wandb"])
    assert result.exit_code == 2
    assert "invalid value for '--log': 'wandb' is not one of none, tensorboard" in result.output
