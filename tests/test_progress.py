"""Progress within a photo: a full-resolution render reports each frame as it is made, so a long render
does not sit at 0/1 until it is done; and -q stays quiet."""

from __future__ import annotations

import numpy as np
from PIL import Image
from typer.testing import CliRunner

from skyforecast.batch import plan, run
from skyforecast.cli import app
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.render.postprocess import PostProcess


def _photos(folder, n: int = 2):
    folder.mkdir()
    for i in range(n):
        rng = np.random.default_rng(i)
        Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(folder / f"p{i}.png")
    return folder


def test_native_render_reports_every_frame_of_every_format_before_the_photo_is_done(tmp_path, tiny_weights):
    jobs, _ = plan([_photos(tmp_path / "in")], tmp_path / "out", ["mp4", "gif"])
    events: list[tuple[str, str, str]] = []
    pipe = SkyPipeline.from_pretrained(tiny_weights, device="cpu")
    post = PostProcess(resolution="native", mask="none", frames=12)
    result = run(
        pipe,
        jobs,
        post=post,
        on_event=lambda kind, job, detail: events.append((kind, job.source.name, detail)),
    )
    assert len(result.done) == 2
    for name in ("p0.png", "p1.png"):
        mine = [(kind, detail) for kind, src, detail in events if src == name]
        frames = [detail for kind, detail in mine if kind == "frame"]
        assert frames == [f"{i}/24" for i in range(1, 25)]  # 12 frames, twice (mp4 and gif)
        assert mine[-1] == ("done", "")  # every frame event came before the photo was counted done


def test_plain_prediction_sends_no_frame_events(tmp_path, tiny_weights):
    jobs, _ = plan([_photos(tmp_path / "in", 1)], tmp_path / "out", ["mp4"])
    kinds: list[str] = []
    run(
        SkyPipeline.from_pretrained(tiny_weights, device="cpu"),
        jobs,
        on_event=lambda k, j, d: kinds.append(k),
    )
    assert kinds == ["done"]


def test_quiet_native_render_prints_only_the_summary(tmp_path, tiny_weights):
    photos = _photos(tmp_path / "in", 1)
    args = ["predict", str(photos / "p0.png"), "-o", str(tmp_path / "out"), "-w", str(tiny_weights)]
    result = CliRunner().invoke(
        app, [*args, "--resolution", "native", "--mask", "none", "--frames", "8", "-q"]
    )
    assert result.exit_code == 0, result.output
    assert result.output == "1 done, 0 skipped (outputs exist), 0 failed\n"  # no progress bar, no frames
    assert (tmp_path / "out" / "p0.mp4").is_file()
