"""End to end: `skyforecast predict` with tiny random-init weights written by the test, on the synthetic
sample photos the repository carries (and on a real photo when ../shared/data is there)."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

from skyforecast.cli import app
from skyforecast.io.media import load_photo, resize_frames
from skyforecast.model.engines import load_pipeline
from skyforecast.model.networks import WeightsError
from skyforecast.model.pipeline import SkyPipeline

runner = CliRunner()


def predict(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def test_mp4_and_gif_decode_to_32_frames_of_the_photo_aspect(tmp_path, real_photos, tiny_weights):
    photo = real_photos / "coast.png"
    code, out = predict(
        str(photo), "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "mp4", "-f", "gif",
        "--resolution", "model",
    )  # fmt: skip
    assert code == 0, out
    for name in ("coast.mp4", "coast.gif"):
        video = read_video(tmp_path / name)
        # 640x360 photo -> aspect restored at 128 px height: 227.6 rounded to an even 228
        assert video.shape == (32, 128, 228, 3), name
        assert video.std() > 5  # not a blank video
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp leftovers


def test_frame_zero_is_the_models_output_not_the_input(tmp_path, sample_photos, tiny_weights):
    photo = sample_photos / "dusk.jpg"
    code, out = predict(
        str(photo), "-w", str(tiny_weights), "-o", str(tmp_path), "-f", "frames", "-f", "mp4",
        "--resolution", "model",
    )  # fmt: skip
    assert code == 0, out
    frames_dir = tmp_path / "dusk_frames"
    pngs = sorted(frames_dir.glob("frame_*.png"))
    assert len(pngs) == 32
    frames = np.stack([np.asarray(Image.open(p)) for p in pngs])

    # exactly what the engine predict picks for one photo (numpy) predicts
    expected = load_pipeline(tiny_weights, device="cpu", photos=1)([photo])[0]
    expected = resize_frames(expected, (228, 128))
    assert np.array_equal(frames, expected)  # PNG frames are exactly the model's output
    theirs = SkyPipeline.from_pretrained(tiny_weights, device="cpu")([photo])[0]
    assert np.abs(resize_frames(theirs, (228, 128)).astype(int) - frames).max() <= 1  # torch's, to a level

    loaded = load_photo(photo).image.resize((228, 128), Image.BICUBIC)
    input_frame = np.asarray(loaded, dtype=np.float32)
    assert np.abs(frames[0].astype(np.float32) - input_frame).mean() > 10  # not a copy of the input

    def blocks(v: np.ndarray) -> np.ndarray:  # 4x4 block means: compare content, not codec noise
        return v.astype(np.float32).reshape(32, 32, 4, 57, 4, 3).mean(axis=(2, 4))

    mp4 = read_video(tmp_path / "dusk.mp4")
    assert np.abs(blocks(mp4) - blocks(frames)).mean() < 6  # H.264 close to the lossless frames
    assert np.abs(blocks(mp4) - blocks(np.roll(frames, 1, axis=0))).mean() > 6  # and in the same order


def test_size_option_and_stage_one(tmp_path, sample_photos, tiny_weights):
    photo = str(sample_photos / "cirrus.png")
    code, out = predict(photo, "-w", str(tiny_weights), "-o", str(tmp_path / "s2.mp4"), "--size", "128")
    assert code == 0, out
    code, out = predict(
        photo, "-w", str(tiny_weights), "-o", str(tmp_path / "s1.mp4"), "--size", "128", "--stage", "1"
    )
    assert code == 0, out
    s2, s1 = read_video(tmp_path / "s2.mp4"), read_video(tmp_path / "s1.mp4")
    assert s1.shape == s2.shape == (32, 128, 128, 3)
    assert np.abs(s1.astype(int) - s2.astype(int)).mean() > 5  # Base-Net alone differs from the full model

    code, out = predict(photo, "-w", str(tiny_weights), "-o", str(tmp_path / "wide.gif"), "--size", "96x64")
    assert code == 0, out
    assert read_video(tmp_path / "wide.gif").shape == (32, 64, 96, 3)


def test_gif_loops_forever_at_the_requested_fps(tmp_path, sample_photos, tiny_weights):
    photo = str(sample_photos / "cirrus.png")
    code, out = predict(photo, "-w", str(tiny_weights), "-o", str(tmp_path / "a.gif"), "--fps", "10")
    assert code == 0, out
    with Image.open(tmp_path / "a.gif") as im:
        assert im.info.get("loop") == 0
        assert im.info.get("duration") == 100
        assert im.n_frames == 32


def test_folder_batch_writes_one_output_per_photo_and_rerun_skips(tmp_path, sample_photos, tiny_weights):
    out_dir = tmp_path / "out"
    code, out = predict(str(sample_photos), "-w", str(tiny_weights), "-o", str(out_dir), "--batch-size", "3")
    assert code == 0, out
    stems = sorted(p.stem for p in sample_photos.iterdir())
    assert sorted(p.stem for p in out_dir.glob("*.mp4")) == stems
    assert "4 done" in out
    mtimes = {p: p.stat().st_mtime_ns for p in out_dir.iterdir()}

    code, out = predict(str(sample_photos), "-w", str(tiny_weights), "-o", str(out_dir))
    assert code == 0, out
    assert "0 done" in out and "4 skipped" in out
    assert {p: p.stat().st_mtime_ns for p in out_dir.iterdir()} == mtimes

    (out_dir / "cirrus.mp4").unlink()  # an interrupted batch: only the missing one is redone
    code, out = predict(str(sample_photos), "-w", str(tiny_weights), "-o", str(out_dir))
    assert code == 0 and "1 done" in out and "3 skipped" in out
    assert read_video(out_dir / "cirrus.mp4").shape[0] == 32

    code, out = predict(str(sample_photos), "-w", str(tiny_weights), "-o", str(out_dir), "--overwrite")
    assert code == 0 and "4 done" in out


def test_outputs_go_to_the_current_folder_by_default(tmp_path, sample_photos, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    code, out = predict(str(sample_photos / "cirrus.png"), "-w", str(tiny_weights))
    assert code == 0, out
    assert (tmp_path / "cirrus.mp4").is_file()


def test_recursive_keeps_the_folder_structure(tmp_path, sample_photos, tiny_weights):
    src = tmp_path / "src"
    (src / "a" / "b").mkdir(parents=True)
    Image.open(sample_photos / "cirrus.png").save(src / "top.png")
    Image.open(sample_photos / "dusk.jpg").save(src / "a" / "b" / "deep.jpg")
    code, out = predict(str(src), "-w", str(tiny_weights), "-o", str(tmp_path / "o"))
    assert code == 0, out
    assert [p.name for p in (tmp_path / "o").rglob("*.mp4")] == ["top.mp4"]
    code, out = predict(str(src), "-w", str(tiny_weights), "-o", str(tmp_path / "o"), "--recursive")
    assert code == 0, out
    assert (tmp_path / "o" / "a" / "b" / "deep.mp4").is_file()


def test_usage_errors_exit_2(tmp_path, sample_photos, tiny_weights):
    code, out = predict(str(sample_photos), "-w", str(tiny_weights), "-o", str(tmp_path / "x.mp4"))
    assert code == 2 and "exactly one input" in out
    code, out = predict(str(sample_photos / "cirrus.png"), "-w", str(tiny_weights), "-f", "avi")
    assert code == 2 and "avi" in out
    code, out = predict(str(sample_photos / "cirrus.png"), "-w", str(tiny_weights), "--size", "big")
    assert code == 2
    assert not list(tmp_path.iterdir())


def test_missing_input_fails_but_the_rest_is_done(tmp_path, sample_photos, tiny_weights):
    code, out = predict(
        str(tmp_path / "nope.jpg"),
        str(sample_photos / "cirrus.png"),
        "-w",
        str(tiny_weights),
        "-o",
        str(tmp_path),
    )
    assert code == 1
    assert "nope.jpg: no such file or folder" in out
    assert (tmp_path / "cirrus.mp4").is_file()


def test_no_weights_anywhere_says_what_was_tried(tmp_path, monkeypatch):
    import skyforecast.model.weights as w

    monkeypatch.delenv(w.ENV_VAR, raising=False)
    monkeypatch.setattr(w, "bundled_weights_dir", lambda: tmp_path / "empty")
    with pytest.raises(WeightsError) as e:
        w.load_model(None)
    msg = str(e.value)
    assert "--weights" in msg and w.ENV_VAR in msg and "bundled" in msg and "\n" not in msg


def test_weights_from_environment_variable(tmp_path, sample_photos, tiny_weights, monkeypatch):
    monkeypatch.setenv("SKYFORECAST_WEIGHTS", str(tiny_weights))
    code, out = predict(str(sample_photos / "cirrus.png"), "-o", str(tmp_path / "e.gif"))
    assert code == 0, out
    assert (tmp_path / "e.gif").is_file()


def test_help_is_fast_and_does_not_import_torch():
    code = "import sys, skyforecast.cli; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)
    env = dict(os.environ, COLUMNS="100")
    out = subprocess.run(
        [sys.executable, "-m", "skyforecast", "predict", "--help"], capture_output=True, text=True, env=env
    )
    assert out.returncode == 0 and "--format" in out.stdout and "--weights" in out.stdout


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread nice values are Linux's")
def test_encoder_threads_and_their_processes_yield_to_the_model():
    """Writer threads lower their own priority (and so that of the ffmpeg they start), not the process's."""
    from concurrent.futures import ThreadPoolExecutor

    from skyforecast.batch import WRITER_NICENESS, _lower_priority

    def niceness() -> tuple[int, int]:
        import threading

        child = subprocess.run(
            [sys.executable, "-c", "import os; print(os.getpriority(os.PRIO_PROCESS, 0))"],
            capture_output=True,
            text=True,
            check=True,
        )
        return os.getpriority(os.PRIO_PROCESS, threading.get_native_id()), int(child.stdout)

    before = os.getpriority(os.PRIO_PROCESS, 0)
    with ThreadPoolExecutor(1, initializer=_lower_priority) as pool:
        thread, child = pool.submit(niceness).result()
    assert thread == child == min(19, before + WRITER_NICENESS)
    assert os.getpriority(os.PRIO_PROCESS, 0) == before  # the model's threads keep their priority


def test_console_script_ends_with_the_right_code_and_complete_output(tmp_path, sample_photos, tiny_weights):
    """``cli.main`` ends a predict run without interpreter teardown: the exit code, the printed summary and
    the written video must all be there, for a success and for a partial failure."""
    photo = sorted(sample_photos.iterdir())[0]
    env = {k: v for k, v in os.environ.items() if k != "SKYFORECAST_WEIGHTS"}
    cmd = [sys.executable, "-m", "skyforecast", "predict", "-w", str(tiny_weights)]
    target = tmp_path / "a.mp4"
    ok = subprocess.run([*cmd, str(photo), "-o", str(target)], capture_output=True, text=True, env=env)
    assert ok.returncode == 0, ok.stderr
    assert "1 done" in ok.stderr and "a.mp4" in ok.stderr
    assert read_video(target).shape[0] == 32
    partial = subprocess.run(
        [*cmd, str(photo), str(tmp_path / "missing.jpg"), "-o", str(tmp_path / "b")],
        capture_output=True,
        text=True,
        env=env,
    )
    assert partial.returncode == 1
    assert "1 done" in partial.stderr and "missing.jpg" in partial.stderr
    assert (tmp_path / "b" / f"{photo.stem}.mp4").is_file()
