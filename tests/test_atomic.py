"""Outputs are whole or absent: atomic writes, Ctrl-C on a real `skyforecast predict` process, a rerun
that resumes, an output folder that cannot exist, and a full disk (simulated by the file-size limit).
"""

from __future__ import annotations

import os
import resource
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from videos import read_video

from skyforecast.io.media import atomic_path, write_frames, write_gif, write_mp4
from skyforecast.model.networks import MDGAN


def _video(t: int = 32, h: int = 64, w: int = 96) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (t, h, w, 3), dtype=np.uint8)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ---- atomic writers ---------------------------------------------------------------------------------


def test_atomic_path_failure_leaves_nothing(tmp_path):
    target = tmp_path / "out.bin"
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_bytes(b"half a file")
        raise RuntimeError("writer died")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


class _FailsAfter:
    """Frames that run out with an error after ``n`` (a renderer crashing mid-video). Records whether the
    writer's temporary file existed at that moment, to show the cleanup had something to clean."""

    def __init__(self, video: np.ndarray, n: int, folder: Path):
        self.video, self.n, self.folder = video, n, folder
        self.shape = video.shape
        self.partial_seen: list[str] = []

    def __getitem__(self, index):  # write_mp4 crops to even sides first
        self.video = self.video[index]
        return self

    def __iter__(self):
        yield from self.video[: self.n]
        self.partial_seen = _leftovers(self.folder)
        raise RuntimeError("renderer crashed")


def test_failing_mp4_write_leaves_no_partial_file(tmp_path):
    frames = _FailsAfter(_video(), 10, tmp_path)
    with pytest.raises(RuntimeError, match="renderer crashed"):
        write_mp4(frames, tmp_path / "v.mp4")
    assert frames.partial_seen and frames.partial_seen[0].startswith(".v.mp4.")  # it was being written
    assert list(tmp_path.iterdir()) == []


def test_mp4_frame_of_another_size_mid_video_is_refused_and_leaves_nothing(tmp_path):
    frames = list(_video(t=8))
    frames[4] = np.zeros((64, 80, 3), np.uint8)  # a renderer that changed size half way
    with pytest.raises(ValueError, match="64, 80, 3"):
        write_mp4(frames, tmp_path / "v.mp4")
    assert list(tmp_path.iterdir()) == []


def test_mp4_odd_sides_are_cropped_and_every_frame_survives(tmp_path):
    video = _video(t=9, h=65, w=97)
    write_mp4(iter(video), tmp_path / "v.mp4", fps=7.5)
    back = read_video(tmp_path / "v.mp4")
    assert back.shape == (9, 64, 96, 3)
    import imageio_ffmpeg

    reader = imageio_ffmpeg.read_frames(str(tmp_path / "v.mp4"))
    meta = next(reader)
    reader.close()
    assert meta["fps"] == pytest.approx(7.5) and meta["size"] == (96, 64)
    assert list(tmp_path.iterdir()) == [tmp_path / "v.mp4"]


def test_failing_frames_write_leaves_no_folder(tmp_path):
    frames = list(_video(t=8))
    frames[5] = np.zeros((4, 4, 7), np.uint8)  # Pillow cannot make an image of this
    with pytest.raises(TypeError):
        write_frames(frames, tmp_path / "clip_frames")
    assert list(tmp_path.iterdir()) == []


def test_failed_overwrite_keeps_the_old_output(tmp_path):
    target = tmp_path / "v.gif"
    write_gif(_video(t=4), target)
    before = target.read_bytes()
    bad = list(_video(t=4))
    bad[2] = np.zeros((4, 4, 7), np.uint8)
    with pytest.raises(ValueError, match="frames must be"):
        write_gif(bad, target)
    assert target.read_bytes() == before
    assert _leftovers(tmp_path) == []


def test_truncated_mp4_is_refused(tmp_path):
    from skyforecast.io.media import check_mp4

    write_mp4(_video(t=8), tmp_path / "ok.mp4")
    check_mp4(tmp_path / "ok.mp4")
    data = (tmp_path / "ok.mp4").read_bytes()
    (tmp_path / "cut.mp4").write_bytes(data[: len(data) // 2])
    with pytest.raises(OSError, match="incomplete MP4"):
        check_mp4(tmp_path / "cut.mp4")


# ---- the CLI: Ctrl-C, resume, unusable output folders, full disk -------------------------------------


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> tuple[Path, Path]:
    """30 small photos and tiny weights."""
    root = tmp_path_factory.mktemp("many")
    photos = root / "photos"
    photos.mkdir()
    for i in range(30):
        pixels = np.random.default_rng(i).integers(0, 255, (72, 128, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(photos / f"p{i:02d}.jpg")
    torch.manual_seed(0)
    MDGAN(ngf=4).eval().save_pretrained(root / "tiny")
    return photos, root / "tiny"


def _env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if k != "SKYFORECAST_WEIGHTS"}


def _predict(*args: str, **kwargs) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "skyforecast", "predict", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600, **kwargs)


def _complete_mp4s(out: Path) -> list[str]:
    names = []
    for p in sorted(out.glob("*.mp4")):
        assert read_video(p).shape == (32, 128, 228, 3), p  # every output decodes in full
        names.append(p.stem)
    return names


def test_a_ctrl_c_right_after_a_photo_is_counted_does_not_count_it_twice():
    """Python raises a Ctrl-C's KeyboardInterrupt wherever the main thread happens to be; landing just after
    a finished video was counted (here: in the progress callback that follows the count), the cleanup
    counted that video again (seen as "6 done" with 5 videos written)."""
    from concurrent.futures import Future

    from skyforecast.batch import Job, _Batch

    events: list[tuple[str, str]] = []

    def emit(kind, job, text):
        events.append((kind, job.source.name))
        if len(events) == 1:
            raise KeyboardInterrupt

    batch = _Batch(None, None, stage=2, fps=8.0, batch_size=1, overwrite=False, emit=emit)
    for name in ("a.jpg", "b.jpg"):
        fut: Future = Future()
        fut.set_result([])
        batch.pending_writes.append((Job(Path(name), {}), fut))
    with pytest.raises(KeyboardInterrupt):
        batch._settle_writes(block=False)
    batch.finish_interrupted([])
    assert batch.result.done == [Path("a.jpg"), Path("b.jpg")]
    assert batch.result.interrupted and batch.pending_writes == []


def test_ctrl_c_stops_cleanly_and_a_rerun_resumes(setup, tmp_path):
    photos, weights = setup
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "skyforecast", "predict", str(photos), "-o", str(out)]
    cmd += ["-w", str(weights), "--batch-size", "1"]
    # its own session, and SIGINT to the whole group: what a terminal's Ctrl-C does. SIGINT's default
    # action restored first: a suite started in the background by a shell without job control inherits
    # SIGINT ignored, and Python then never turns it into KeyboardInterrupt
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=_env(),
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    lines: list[tuple[float, str]] = []  # stderr lines with the moment each arrived
    reader = threading.Thread(target=lambda: lines.extend((time.monotonic(), ln) for ln in proc.stderr))
    reader.start()
    deadline = time.monotonic() + 300
    while not (out.is_dir() and list(out.glob("*.mp4"))):
        assert proc.poll() is None, lines
        assert time.monotonic() < deadline
        time.sleep(0.05)
    pressed = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=120)
    reader.join(timeout=10)
    proc.stdout.close()
    err = "".join(line for _, line in lines)
    acks = [(t, i) for i, (t, line) in enumerate(lines) if line.startswith("Ctrl-C: stopping")]
    assert len(acks) == 1, err  # acknowledged once, at once, before the summary
    assert acks[0][0] - pressed < 2.0
    assert acks[0][1] < next(i for i, (_, line) in enumerate(lines) if " done, " in line)

    assert proc.returncode == 130, err
    assert "Traceback" not in err
    finished = _complete_mp4s(out)
    assert 1 <= len(finished) < 30
    assert f"{len(finished)} done" in err and f"interrupted with {30 - len(finished)} not finished" in err
    assert "run the same command again" in err
    assert _leftovers(out) == []  # no temporary files or half-written videos

    again = _predict(str(photos), "-o", str(out), "-w", str(weights), "-q")
    assert again.returncode == 0, again.stderr
    assert f"{30 - len(finished)} done, {len(finished)} skipped" in again.stderr or again.stderr == ""
    assert _complete_mp4s(out) == [f"p{i:02d}" for i in range(30)]
    assert _leftovers(out) == []


def test_a_predict_killed_outright_leaves_nothing_once_run_again(setup, tmp_path):
    """SIGKILL (the kernel's out-of-memory killer, ``kill -9``) leaves no time for cleanup: the temporary
    files of the videos being written stay. The next run in that folder removes them, because the process
    that wrote them is gone; a writer that still runs, here a process holding the temporary file of
    another output in the same folder, keeps its own."""
    all_photos, weights = setup
    photos = tmp_path / "photos"
    photos.mkdir()
    for src in sorted(all_photos.iterdir())[:3]:
        (photos / src.name).write_bytes(src.read_bytes())
    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "skyforecast", "predict", str(photos), "-o", str(out)]
    cmd += ["-w", str(weights), "--batch-size", "1", "-q"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=_env())
    deadline = time.monotonic() + 300
    while not (out.is_dir() and [p for p in _leftovers(out) if p.endswith(".partial")]):
        assert proc.poll() is None and time.monotonic() < deadline
        time.sleep(0.01)
    proc.kill()
    proc.wait(timeout=60)
    left = [p for p in _leftovers(out) if p.endswith(".partial")]
    assert left  # what the kill left behind
    holder = subprocess.Popen(  # another writer in the same folder, alive through the rerun
        [sys.executable, "-c", _HOLD, str(out / "other.mp4")], stdout=subprocess.PIPE, text=True, env=_env()
    )
    try:
        assert holder.stdout.readline().strip() == "holding"
        held = [p for p in _leftovers(out) if p.startswith(".other.mp4.")]
        assert len(held) == 1
        again = _predict(str(photos), "-o", str(out), "-w", str(weights), "-q")
        assert again.returncode == 0, again.stderr
        assert _complete_mp4s(out) == ["p00", "p01", "p02"]
        assert _leftovers(out) == held  # the killed run's are gone, the live writer's stays
    finally:
        holder.kill()
        holder.wait(timeout=60)


_HOLD = """
import sys, time
from skyforecast.io.files import atomic_path
with atomic_path(sys.argv[1]) as tmp:
    tmp.write_bytes(b"being written")
    print("holding", flush=True)
    time.sleep(600)
"""


def test_output_under_a_regular_file_is_one_clear_error(setup, tmp_path):
    photos, weights = setup
    blocker = tmp_path / "somefile.txt"
    blocker.write_text("I am a file")
    proc = _predict(str(photos / "p00.jpg"), "-o", str(blocker / "sub"), "-w", str(weights))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    assert lines == [
        f"error: cannot write to output folder {blocker / 'sub'}: {blocker} is a file, not a folder"
    ]


def _file_size_limit(limit: int):
    """Child-process setup standing in for a full disk: writes past ``limit`` bytes fail with EFBIG
    (SIGXFSZ is ignored so the write returns an error instead of killing the process). The limit is
    inherited by ffmpeg too. A real full disk needs root and a small file system to stage."""

    def apply() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))

    return apply


@pytest.mark.parametrize("fmt", ["gif", "mp4"])
def test_full_disk_stops_the_batch_with_one_clear_line(setup, tmp_path, fmt):
    photos, weights = setup
    out = tmp_path / "out"
    proc = _predict(
        str(photos), "-o", str(out), "-w", str(weights), "-f", fmt, "-q", preexec_fn=_file_size_limit(8_000)
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "disk full" in errors[0], proc.stderr  # stops after the first, not 30 lines
    assert "not started" in proc.stderr
    assert list(out.iterdir()) == []  # no truncated video was renamed into place, no temp left
