"""What `skyforecast predict` reports: -q keeps the summary, a left-out sub-folder is mentioned, every failure
is repeated in the summary (one as well as many), photos are reported in input order whichever finishes
first, and --json writes the same facts for programs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

from skyforecast.batch import plan, run
from skyforecast.cli import app
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.render.postprocess import PostProcess

MODEL = ["--resolution", "model"]  # the model's own frames: the fastest output


def _photo(path: Path, seed: int, size: tuple[int, int] = (64, 36)) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(path)
    return path


def _predict(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(app, ["predict", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.stdout, result.stderr


def _lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def test_quiet_prints_only_the_summary_when_all_succeed(tmp_path, tiny_weights):
    photos = [_photo(tmp_path / f"p{i}.png", i) for i in range(2)]
    code, out, err = _predict(
        *map(str, photos), "-o", str(tmp_path / "out"), "-w", str(tiny_weights), "-q", *MODEL
    )
    assert code == 0, err
    assert _lines(err) == ["2 done, 0 skipped (outputs exist), 0 failed"] and out == ""


def test_photos_left_in_sub_folders_are_mentioned(tmp_path, tiny_weights):
    folder = tmp_path / "photos"
    _photo(folder / "top.png", 1)
    for i in range(3):
        _photo(folder / "sub" / f"deep{i}.png", i)
    code, _, err = _predict(str(folder), "-o", str(tmp_path / "out"), "-w", str(tiny_weights), *MODEL)
    assert code == 0, err
    assert "note: 3 photos in sub-folders; -r includes them" in err
    code, _, err = _predict(str(folder), "-r", "-o", str(tmp_path / "out2"), "-w", str(tiny_weights), *MODEL)
    assert code == 0 and "sub-folder" not in err and "4 done" in err


def test_a_single_failure_is_repeated_in_the_summary(tmp_path, tiny_weights):
    good = _photo(tmp_path / "good.png", 1)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    code, _, err = _predict(str(good), str(bad), "-o", str(tmp_path / "out"), "-w", str(tiny_weights), *MODEL)
    assert code == 1, err
    lines = _lines(err)
    at = lines.index("1 done, 0 skipped (outputs exist), 1 failed")
    assert lines[at + 1 :] == ["failures:", f"  {bad}: not an image file Pillow can read"]


def test_photos_are_reported_in_input_order_whichever_is_written_first(tmp_path, tiny_weights):
    # the first photo takes far longer to render than the others, and each is its own model call (batch
    # size 1): the small ones are written while the first is still rendering
    big = _photo(tmp_path / "a_big.png", 1, (1920, 1080))
    smalls = [_photo(tmp_path / f"small{i}.png", 2 + i, (64, 36)) for i in range(4)]
    jobs, _ = plan([big, *smalls], tmp_path / "out", ["mp4"])
    pipe = SkyPipeline.from_pretrained(tiny_weights, device="cpu")
    events: list[tuple[str, Path]] = []
    result = run(
        pipe,
        jobs,
        batch_size=1,
        post=PostProcess(resolution="native"),
        on_event=lambda k, j, d: events.append((k, j.source)),
    )
    assert result.done == [big, *smalls]
    assert [s for k, s in events if k == "done"] == [big, *smalls]
    assert set(result.seconds[big]) == {"read", "predict", "write"}
    # a small one's video was finished before the big one's (two writer threads: the big one renders in one
    # while the small ones are written one after another in the other), yet it is reported after it. Not
    # timed: the write seconds of a small photo can match the big one's, its mask made at the same size.
    written = {p: (tmp_path / "out" / f"{p.stem}.mp4").stat().st_mtime_ns for p in [big, *smalls]}
    assert written[big] > min(written[s] for s in smalls)


def test_json_report_to_a_file_and_to_stdout(tmp_path, tiny_weights):
    good = _photo(tmp_path / "good.png", 1)
    bad = tmp_path / "bad.jpg"
    bad.write_text("not a photo")
    missing = tmp_path / "missing.jpg"
    out = tmp_path / "out"
    report = tmp_path / "report.json"
    args = [
        str(missing),
        str(good),
        str(bad),
        "-o",
        str(out),
        "-w",
        str(tiny_weights),
        "-f",
        "mp4",
        "-f",
        "gif",
    ]
    code, stdout, err = _predict(*args, "--json", str(report), *MODEL)
    assert code == 1, err
    assert stdout == ""  # the people's summary stays on stderr
    doc = json.loads(report.read_text())
    assert {k: doc[k] for k in ("version", "exit_code", "done", "skipped", "failed", "unfinished")} == {
        "version": 1, "exit_code": 1, "done": 1, "skipped": 0, "failed": 2, "unfinished": 0,
    }  # fmt: skip
    assert doc["seconds"] > 0
    entries = {e["input"]: e for e in doc["inputs"]}
    assert [e["input"] for e in doc["inputs"]] == [str(missing), str(good), str(bad)]
    assert entries[str(missing)] == {
        "input": str(missing), "status": "failed", "outputs": {}, "reason": "no such file or folder",
        "notes": [], "renamed": None, "seconds": {},
    }  # fmt: skip
    done = entries[str(good)]
    assert done["status"] == "done" and done["reason"] is None
    assert done["outputs"] == {"mp4": str(out / "good.mp4"), "gif": str(out / "good.gif")}
    assert all(read_video(Path(p)).shape[0] == 32 for p in done["outputs"].values())
    assert set(done["seconds"]) == {"read", "predict", "write"} and all(
        v >= 0 for v in done["seconds"].values()
    )
    assert entries[str(bad)]["status"] == "failed"
    assert entries[str(bad)]["reason"] == "not an image file Pillow can read"

    # again, to standard output: the good photo is skipped now, and stdout holds nothing but the JSON
    code, stdout, err = _predict(*args, "--json", "-", *MODEL)
    doc = json.loads(stdout)
    skipped = next(e for e in doc["inputs"] if e["input"] == str(good))
    assert skipped["status"] == "skipped" and skipped["reason"] == "outputs exist" and doc["skipped"] == 1
    assert "1 skipped" in err


@pytest.mark.parametrize("target", ["photo", "folder", "nowhere"])
def test_a_json_path_that_cannot_be_written_is_a_usage_error_before_any_work(tmp_path, tiny_weights, target):
    good = _photo(tmp_path / "good.png", 1)
    before = good.read_bytes()
    path = {"photo": good, "folder": tmp_path, "nowhere": tmp_path / "no" / "r.json"}[target]
    code, _, err = _predict(
        str(good), "-o", str(tmp_path / "out"), "-w", str(tiny_weights), "--json", str(path)
    )
    assert code == 2 and _lines(err)[0].startswith(f"error: --json {path}: ") and len(_lines(err)) == 1
    assert good.read_bytes() == before and not (tmp_path / "out").exists()


def test_motion_options_with_the_model_resolution_get_a_note(tmp_path, tiny_weights):
    photo = _photo(tmp_path / "p.png", 1)
    args = [str(photo), "-o", str(tmp_path / "out"), "-w", str(tiny_weights), *MODEL]
    code, _, err = _predict(*args, "--speed", "2x", "--direction", "left")
    assert code == 0, err
    assert _lines(err)[0] == (
        "note: --speed and --direction shape the sky's steady motion, which --resolution model does not use "
        "(it writes the prediction's own frames): ignored"
    )
    code, _, err = _predict(*args, "--overwrite")
    assert code == 0 and "note:" not in err
