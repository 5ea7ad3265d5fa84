"""``skyforecast app`` without a browser: the request handler the page calls (``Studio.render``) on real
photos and bad uploads, its files, its memory over many requests, and the command without Gradio.
The page itself, in a real browser, is tests/test_app_browser.py."""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from test_bad_inputs import forged_header_png
from test_cli_text import test_help_at_80_columns_is_plain_and_complete as check_help
from typer.testing import CliRunner
from videos import read_video

from skyforecast.app import INSTALL_HINT, Options, Studio
from skyforecast.cli import app

PHOTOS = Path(__file__).parent / "data" / "photos"


@pytest.fixture(scope="module")
def studio(tiny_weights):
    studio = Studio(tiny_weights, "cpu")
    yield studio
    studio.close()


def upload(studio: Studio, source: Path, name: str | None = None) -> str:
    """Put a file where Gradio puts an upload: its own new folder inside the app's folder."""
    folder = Path(tempfile.mkdtemp(dir=studio.folder))
    target = folder / (name or source.name)
    shutil.copyfile(source, target)
    return str(target)


def test_a_photo_becomes_a_32_frame_mp4_at_its_own_size(studio):
    seen = []
    result = studio.render(upload(studio, PHOTOS / "cumulus.jpg"), progress=lambda p, desc="": seen.append(p))
    assert result.ok, result.status
    assert result.video == result.download and result.gif is None
    assert Path(result.video).name == "cumulus.mp4"  # a download keeps the photo's name
    frames = read_video(result.video)
    assert frames.shape == (32, 180, 320, 3)
    assert np.abs(frames[-1].astype(int) - frames[0]).mean() > 0.5  # the sky moved
    assert result.status == "cumulus.mp4: 32 frames of 320x180 at 8 fps"
    assert [p for p in seen if isinstance(p, tuple)] == [(i, 32) for i in range(33)]  # progress per frame


def test_the_options_reach_the_video(studio, tmp_path):
    options = Options(fmt="gif", frames=40, loop=True, compare=True, speed=2, direction="left")
    result = studio.render(upload(studio, PHOTOS / "dusk.jpg"), options=options)
    assert result.ok, result.status
    assert result.gif == result.download and result.video is None and result.download.endswith("dusk.gif")
    frames = read_video(result.gif)
    assert frames.shape[:2] == (40, 180) and 3 * 320 <= frames.shape[2] < 3 * 320 + 20  # three panels

    def motion(mask: Path | None) -> float:
        result = studio.render(upload(studio, PHOTOS / "dusk.jpg"), mask and upload(studio, mask))
        assert result.ok, result.status
        frames = read_video(result.video).astype(int)
        return float(np.abs(frames[-1] - frames[0]).mean())

    black = tmp_path / "still.png"
    Image.new("L", (160, 90), 0).save(black)  # white = sky that may move: nothing may
    free, still = motion(None), motion(black)
    print(f"mean change first -> last frame: {free:.2f} free, {still:.2f} with a black mask")
    assert still < 0.2 * free


def test_the_page_writes_what_predict_writes(studio, tiny_weights, tmp_path):
    """The same photo and options through the page and through ``skyforecast predict``: the same video
    (the API's note: a later call may round a pixel a level away), the GIF at predict's GIF size."""
    photo = PHOTOS / "hills.jpg"
    for fmt in ("mp4", "gif"):
        ours = studio.render(upload(studio, photo), options=Options(fmt=fmt, speed=1.5, loop=True))
        assert ours.ok, ours.status
        out = tmp_path / f"hills.{fmt}"
        args = ["predict", str(photo), "-o", str(out), "-w", str(tiny_weights), "--device", "cpu", "-q"]
        result = CliRunner().invoke(app, [*args, "--speed", "1.5", "--loop"])
        assert result.exit_code == 0, result.output
        mine, theirs = read_video(ours.download).astype(int), read_video(out).astype(int)
        assert mine.shape == theirs.shape
        # both encode the planes rendered straight in yuv420p (an MP4 from RGB frames decodes 1.1 levels
        # away here: the kept light's offsets are rounded in RGB and in YCbCr apart)
        assert np.abs(mine - theirs).mean() < 0.05


@pytest.mark.parametrize(
    ("name", "content", "expected"),
    [
        ("notes.txt", b"these are words, not pixels\n", "notes.txt: not an image file Pillow can read"),
        ("cut.jpg", "truncated", "cut.jpg: truncated or damaged image data"),
        ("empty.jpg", b"", "empty.jpg: empty file (0 bytes)"),
        ("forged.png", "forged", "forged.png: image too large"),
    ],
)
def test_a_bad_upload_is_one_clear_line(studio, tmp_path, name, content, expected):
    source = tmp_path / name
    if content == "truncated":
        source.write_bytes((PHOTOS / "cumulus.jpg").read_bytes()[:3000])
    elif content == "forged":
        forged_header_png(source)
    else:
        source.write_bytes(content)
    result = studio.render(upload(studio, source))
    assert not result.ok and result.video is None and result.gif is None and result.download is None
    assert result.status.startswith(f"error: {expected}"), result.status
    assert "\n" not in result.status and "Traceback" not in result.status
    assert str(studio.folder) not in result.status  # the photo's name, not where Gradio keeps it


def test_bad_options_and_a_mask_for_another_photo_are_messages(studio, tmp_path):
    result = studio.render(upload(studio, PHOTOS / "dusk.jpg"), options=Options(speed=50))
    assert result.status == "error: speed: 50x: at most 20x real speed"
    square = tmp_path / "square.png"
    Image.new("L", (64, 64), 255).save(square)
    result = studio.render(upload(studio, PHOTOS / "dusk.jpg"), upload(studio, square))
    assert result.status == "error: square.png: mask is 64x64 but the photo is 320x180: aspect ratios differ"
    assert studio.render(None).status.startswith("error: choose a photo first")
    # the page's own limits hold for calls through Gradio's API too
    photo = upload(studio, PHOTOS / "dusk.jpg")
    assert studio.render(photo, options=Options(frames=5000)).status == (
        "error: frames: must be 1..960 in the app, got 5000"
    )
    assert studio.render(photo, options=Options(resolution="native")).status == (
        "error: resolution: must be one of auto, 1080, 720, 480, model, got 'native'"
    )
    assert studio.render(photo, options=Options(fmt="webm")).status == (
        "error: format: must be mp4 or gif, got 'webm'"
    )


def _rss_mb() -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    raise AssertionError("no VmRSS")


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads RSS from /proc (Linux)")
def test_twenty_requests_keep_memory_flat_and_leave_no_files(tiny_weights, tmp_path, monkeypatch):
    """20 requests in a row, good and bad uploads mixed: RSS grows by less than 200 MB, after each request
    the app's folder holds only that request's files, nothing lands in the system's temporary folder,
    and closing the app removes its folder."""
    system_tmp = tmp_path / "tmp"
    system_tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(system_tmp))
    studio = Studio(tiny_weights, "cpu", folder=str(tmp_path / "app"))
    bad = tmp_path / "notes.jpg"
    bad.write_text("not a photo\n")
    photos = sorted(PHOTOS.glob("*.jpg"))
    try:
        studio.render(upload(studio, photos[0]))  # warm: the model's first call, the encoder, the allocator
        before = _rss_mb()
        for i in range(20):
            source = bad if i % 5 == 4 else photos[i % len(photos)]
            options = Options(fmt="gif" if i % 3 == 2 else "mp4", frames=32)
            photo = upload(studio, source)
            result = studio.render(photo, options=options)
            assert result.ok == (source is not bad), result.status
            kept = [photo, result.download] if result.ok else [photo]
            assert {p.name for p in studio.folder.iterdir()} == {Path(p).parent.name for p in kept}
            if result.ok:
                assert len(read_video(result.download)) == 32
        grown = _rss_mb() - before
        assert list(system_tmp.iterdir()) == []
    finally:
        studio.close()
    assert not studio.folder.exists()
    print(f"RSS grew {grown:.1f} MB over 20 requests")
    assert grown < 200, grown


def test_an_upload_made_during_a_request_is_kept(studio):
    """A photo dropped on the page while another renders arrives in the app's folder mid-request: the
    clean-up after that request must not delete it."""
    first = upload(studio, PHOTOS / "cumulus.jpg")

    def later_upload(progress, desc=""):
        if progress == (1, 32) and not arrived:
            arrived.append(upload(studio, PHOTOS / "dusk.jpg"))

    arrived: list[str] = []
    assert studio.render(first, progress=later_upload).ok
    assert Path(arrived[0]).exists()
    assert studio.render(arrived[0]).ok
    assert not Path(first).exists()  # an earlier request's upload is gone


def test_two_requests_at_once_run_one_after_the_other(studio):
    """Two tabs: both photos uploaded, both Animate pressed. One model: the second request waits until the
    first is written, and the first one's clean-up keeps the photo waiting in the queue."""
    events: list[str] = []
    photos = {name: upload(studio, PHOTOS / "cumulus.jpg", f"{name}.jpg") for name in ("a", "b")}

    def request(name: str) -> None:
        result = studio.render(photos[name], progress=lambda p, desc="": events.append(name))
        events.append(result.status)

    threads = [threading.Thread(target=request, args=(name,)) for name in ("a", "b")]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    first, second = events[0], "b" if events[0] == "a" else "a"
    done = "{}.mp4: 32 frames of 320x180 at 8 fps"
    # reading, predicting, 33 steps of writing: never interleaved
    assert events == [first] * 35 + [done.format(first)] + [second] * 35 + [done.format(second)]


def test_a_photo_removed_since_it_was_dropped_is_a_message(studio):
    photo = upload(studio, PHOTOS / "hills.jpg")
    shutil.rmtree(Path(photo).parent)
    result = studio.render(photo)
    assert result.status == "error: hills.jpg: no longer on the server; drop it on the page again"


def test_help_is_plain_at_80_columns():
    check_help(["app"])


def _skyforecast(code: str, *args: str) -> subprocess.CompletedProcess:
    script = f"import sys\n{code}\nsys.argv = ['skyforecast', *{list(args)!r}]\n"
    script += "from skyforecast.cli import main\nmain()"
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)


def test_without_gradio_the_command_says_how_to_install_it():
    """A Python where ``import gradio`` fails (as where the extra is not installed)."""
    result = _skyforecast("sys.modules['gradio'] = None", "app", "--port", "7999")
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert lines == [f"error: {INSTALL_HINT}"]
    assert 'pip install "skyforecast[app]"' in INSTALL_HINT


def test_bad_weights_stop_the_app_with_one_line(tmp_path):
    pytest.importorskip("gradio")
    result = _skyforecast("", "app", "--weights", str(tmp_path / "nothing-here"), "--port", "7999")
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:") and "nothing-here" in lines[0], lines


def test_a_port_in_use_is_one_line(tiny_weights):
    pytest.importorskip("gradio")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = _skyforecast("", "app", "--port", str(port), "--weights", str(tiny_weights))
    assert result.returncode == 1
    lines = [line for line in (result.stdout + result.stderr).splitlines() if line.strip()]
    reason = "the port is in use or not allowed; choose another with --port"
    assert lines == [f"error: cannot serve on 127.0.0.1:{port}: {reason}"]


def test_the_package_and_the_command_line_do_not_import_gradio():
    probe = "import json, sys, skyforecast, skyforecast.cli; print(json.dumps('gradio' in sys.modules))"
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) is False
