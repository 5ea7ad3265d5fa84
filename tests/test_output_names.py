"""Output naming of `skyforecast predict`: two photos never share an output (no silent overwrite), existing
outputs that are kept are named, and an output name we cannot write is a usage error, not a folder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from typer.testing import CliRunner
from videos import read_video

from skyforecast.batch import UsageError, plan
from skyforecast.cli import app

runner = CliRunner()


def _photo(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    Image.fromarray(rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)).save(path)
    return path


def _predict(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["predict", *args])
    assert "Traceback" not in result.output
    return result.exit_code, result.output


def _outputs(jobs) -> list[Path]:
    return [p for job in jobs for p in job.outputs.values()]


def test_same_stem_in_two_folders_gets_two_files_and_the_summary_says_so(tmp_path, tiny_weights):
    a = _photo(tmp_path / "a" / "coast.png", 1)
    b = _photo(tmp_path / "b" / "coast.png", 2)
    out = tmp_path / "out"
    code, text = _predict(str(a), str(b), "-o", str(out), "-w", str(tiny_weights), "-f", "gif")
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == ["coast.gif", "coast_2.gif"]
    first, second = read_video(out / "coast.gif"), read_video(out / "coast_2.gif")
    assert np.abs(first.astype(int) - second.astype(int)).mean() > 1  # two photos, two different videos
    assert "2 done" in text
    assert "1 renamed" in text and f"{b}: written as {out / 'coast_2.gif'} ({a} has the same name)" in text


def test_every_kind_of_clash_gets_distinct_outputs(tmp_path):
    photos = tmp_path / "photos"
    in_folder = _photo(photos / "coast.png", 1)
    nested = _photo(photos / "sub" / "coast.png", 2)  # sub-folder structure: no clash
    loose = _photo(tmp_path / "other" / "coast.png", 3)
    jpg, png = _photo(tmp_path / "x.jpg", 4), _photo(tmp_path / "x.png", 5)
    upper = _photo(tmp_path / "more" / "COAST.png", 6)  # a clash on case-insensitive file systems
    jobs, problems = plan(
        [photos, loose, jpg, png, upper, in_folder], tmp_path / "out", ["mp4", "frames"], recursive=True
    )
    assert problems == []
    assert [j.source for j in jobs] == [in_folder, nested, loose, jpg, png, upper]  # in_folder once
    outs = _outputs(jobs)
    assert len({str(p).casefold() for p in outs}) == len(outs) == 12
    names = {j.source: j.outputs["mp4"].relative_to(tmp_path / "out").as_posix() for j in jobs}
    assert names == {
        in_folder: "coast.mp4",
        nested: "sub/coast.mp4",
        loose: "coast_2.mp4",
        jpg: "x_jpg.mp4",
        png: "x_png.mp4",
        upper: "COAST_3.mp4",
    }
    assert jobs[0].renamed is None and jobs[1].renamed is None
    assert jobs[2].renamed and str(in_folder) in jobs[2].renamed


def test_an_output_that_would_be_the_folder_of_another_is_renamed(tmp_path):
    photos = tmp_path / "photos"
    inner = _photo(photos / "x_frames" / "a.png", 1)  # -> out/x_frames/a_frames/
    top = _photo(photos / "x.png", 2)  # its frames folder would be out/x_frames/ too
    jobs, _ = plan([photos], tmp_path / "out", ["frames"], recursive=True)
    got = {j.source: j.outputs["frames"].relative_to(tmp_path / "out").as_posix() for j in jobs}
    assert got == {top: "x_2_frames", inner: "x_frames/a_frames"}


def test_same_names_are_the_same_on_a_rerun_so_the_rerun_skips_them(tmp_path, tiny_weights):
    a = _photo(tmp_path / "a" / "sky.jpg", 1)
    b = _photo(tmp_path / "b" / "sky.jpg", 2)
    out = tmp_path / "out"
    args = [str(a), str(b), "-o", str(out), "-w", str(tiny_weights)]
    assert _predict(*args)[0] == 0
    code, text = _predict(*args)
    assert code == 0, text
    assert "0 done, 2 skipped" in text
    assert f"{out / 'sky.mp4'}, {out / 'sky_2.mp4'}" in text and "--overwrite replaces them" in text


def test_a_skipped_output_is_named_with_the_overwrite_hint(tmp_path, tiny_weights):
    photo = _photo(tmp_path / "sky.jpg", 1)
    out = tmp_path / "out"
    assert _predict(str(photo), "-o", str(out), "-w", str(tiny_weights))[0] == 0
    code, text = _predict(str(photo), "-o", str(out), "-w", str(tiny_weights), "--stage", "1")
    assert code == 0, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines[0] == "0 done, 1 skipped (outputs exist), 0 failed"
    assert lines[1] == (
        f"not replaced (made by an earlier run, perhaps with other options): {out / 'sky.mp4'}; "
        "--overwrite replaces them"
    )


def test_many_skipped_outputs_show_the_first_few_and_a_count(tmp_path, tiny_weights):
    photos = tmp_path / "photos"
    for i in range(7):
        _photo(photos / f"p{i}.png", i)
    out = tmp_path / "out"
    out.mkdir()
    for i in range(7):
        (out / f"p{i}.mp4").write_bytes(b"an earlier run's video")
    code, text = _predict(str(photos), "-o", str(out), "-w", str(tiny_weights))
    assert code == 0, text
    assert f"{out / 'p4.mp4'} and 2 more; --overwrite replaces them" in text
    assert "p5.mp4" not in text


@pytest.mark.parametrize("name", ["named.mov", "clip.MKV", "still.png", "anim.webm"])
def test_output_with_a_media_suffix_we_do_not_write_is_a_usage_error(tmp_path, name, tiny_weights):
    photo = _photo(tmp_path / "sky.jpg", 1)
    code, text = _predict(str(photo), "-o", str(tmp_path / name), "-w", str(tiny_weights))
    assert code == 2, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: -o ") and ".mp4 or .gif" in lines[0]
    assert not (tmp_path / name).exists()  # no folder made


def test_a_trailing_slash_or_an_existing_folder_keeps_any_name_a_folder(tmp_path):
    photo = _photo(tmp_path / "sky.jpg", 1)
    jobs, _ = plan([photo], f"{tmp_path / 'renders.mov'}/")
    assert jobs[0].outputs["mp4"] == tmp_path / "renders.mov" / "sky.mp4"
    (tmp_path / "old.webm").mkdir()
    jobs, _ = plan([photo], tmp_path / "old.webm")
    assert jobs[0].outputs["mp4"] == tmp_path / "old.webm" / "sky.mp4"
    with pytest.raises(UsageError, match=r"\.avi is not a format"):
        plan([photo], tmp_path / "new.avi")


def test_the_only_input_missing_still_prints_a_summary(tmp_path):
    code, text = _predict(str(tmp_path / "nothere.jpg"))
    assert code == 1
    lines = [line for line in text.splitlines() if line.strip()]
    assert lines == [
        f"error: {tmp_path / 'nothere.jpg'}: no such file or folder",
        "0 done, 0 skipped (outputs exist), 1 failed",
        "failures:",
        f"  {tmp_path / 'nothere.jpg'}: no such file or folder",
    ]


def _frames(folder: Path) -> list[Path]:
    return sorted(folder.glob("frame_*.png"))


@pytest.mark.parametrize("overwrite", [False, True])
def test_a_gif_photo_is_never_replaced_by_its_own_video(tmp_path, tiny_weights, monkeypatch, overwrite):
    photo = tmp_path / "sunset.gif"
    rng = np.random.default_rng(3)
    still = [Image.fromarray(rng.integers(0, 255, (36, 64, 3), dtype=np.uint8)) for _ in range(2)]
    still[0].save(photo, save_all=True, append_images=still[1:], duration=100)
    before = photo.read_bytes()
    monkeypatch.chdir(tmp_path)  # the default output folder is the photo's own
    extra = ["--overwrite"] if overwrite else []
    code, text = _predict("sunset.gif", "-f", "gif", "-w", str(tiny_weights), *extra)
    assert code == 0, text
    assert photo.read_bytes() == before
    assert read_video(tmp_path / "sunset_2.gif").shape[0] == 32
    assert "1 renamed" in text
    assert f"sunset.gif: written as {tmp_path / 'sunset_2.gif'} (sunset.gif is an input photo)" in text
    # run again: the renamed output is the one kept, and the hint never names the photo
    code, text = _predict("sunset.gif", "-f", "gif", "-w", str(tiny_weights))
    assert code == 0 and "1 skipped" in text and photo.read_bytes() == before
    kept = next(line for line in text.splitlines() if line.startswith("not replaced"))
    assert "sunset_2.gif" in kept and "sunset.gif;" not in kept and "sunset.gif," not in kept


def test_a_single_file_output_naming_the_photo_gets_another_name(tmp_path, tiny_weights):
    photo = _photo(tmp_path / "sky.gif", 5)
    (tmp_path / "sky_2.gif").write_bytes(b"")  # not an input: the next free number is still _2
    before = photo.read_bytes()
    jobs, _ = plan([photo], photo, overwrite=True)
    assert jobs[0].outputs == {"gif": tmp_path / "sky_2.gif"} and "is an input photo" in jobs[0].renamed
    code, text = _predict(str(photo), "-o", str(photo), "-w", str(tiny_weights), "--overwrite")
    assert code == 0, text
    assert photo.read_bytes() == before and read_video(tmp_path / "sky_2.gif").shape[0] == 32
    assert f"written as {tmp_path / 'sky_2.gif'} ({photo} is an input photo)" in text


def test_a_folder_written_into_itself_keeps_every_photo(tmp_path, tiny_weights):
    photos = tmp_path / "photos"
    png = _photo(photos / "coast.png", 1)
    gif = _photo(photos / "dune.gif", 2)
    saved = {p: p.read_bytes() for p in (png, gif)}
    args = [str(photos), "-o", str(photos), "-f", "gif", "-f", "frames", "-w", str(tiny_weights)]
    code, text = _predict(*args, "--overwrite")
    assert code == 0, text
    assert {p: p.read_bytes() for p in saved} == saved
    assert read_video(photos / "dune_2.gif").shape[0] == 32 and len(_frames(photos / "dune_2_frames")) == 32
    assert read_video(photos / "coast.gif").shape[0] == 32  # no clash: named after the photo


def test_a_frames_folder_holding_input_photos_is_never_replaced(tmp_path, tiny_weights):
    photos = tmp_path / "photos"
    png = _photo(photos / "coast.png", 1)
    args = ["-o", str(photos), "-f", "frames", "--frames", "4", "-w", str(tiny_weights), "--overwrite"]
    assert _predict(str(photos), *args)[0] == 0
    # with -r the frames written the first time are inputs: their folder is never replaced
    frames = _frames(photos / "coast_frames")
    assert len(frames) == 4
    saved = {p: p.read_bytes() for p in (png, *frames)}
    jobs, _ = plan([photos], photos, ["frames"], recursive=True, overwrite=True)
    coast = next(j for j in jobs if j.source == png)
    assert coast.outputs["frames"] == photos / "coast_2_frames"
    assert f"{photos / 'coast_frames'} holds the input photo {frames[0]}" in coast.renamed
    code, text = _predict(str(png), str(frames[0]), *args)  # the photo and one of its frames
    assert code == 0, text
    assert {p: p.read_bytes() for p in saved} == saved
    assert len(_frames(photos / "coast_2_frames")) == 4


def test_a_folder_where_a_video_goes_fails_that_photo_in_the_users_words(tmp_path, tiny_weights, monkeypatch):
    monkeypatch.chdir(tmp_path)
    _photo(tmp_path / "dir.jpg", 1)
    _photo(tmp_path / "sky.jpg", 2)
    (tmp_path / "dir.mp4").mkdir()
    (tmp_path / "dir.mp4" / "mine.txt").write_text("kept")
    (tmp_path / "sky_frames").write_text("a file, not frames")
    code, text = _predict(
        "dir.jpg", "sky.jpg", "-f", "mp4", "-f", "frames", "--overwrite", "-w", str(tiny_weights)
    )
    assert code == 1, text
    assert ".partial" not in text and "Error" not in text
    assert (
        f"error: dir.jpg: cannot write {tmp_path / 'dir.mp4'}: it is a folder; rename it or choose another -o"
        in text
    )
    assert f"error: sky.jpg: cannot write {tmp_path / 'sky_frames'}: it is a file; rename it" in text
    assert "0 done, 0 skipped (outputs exist), 2 failed" in text
    assert (tmp_path / "dir.mp4" / "mine.txt").read_text() == "kept"
    assert (tmp_path / "sky_frames").read_text() == "a file, not frames"
    assert not (tmp_path / "dir_frames").exists()  # the photo failed as a whole, before any work


def test_an_existing_folder_or_a_trailing_slash_named_like_a_video_is_a_folder(tmp_path):
    photo = _photo(tmp_path / "sky.jpg", 1)
    (tmp_path / "old.mp4").mkdir()
    jobs, problems = plan([photo], tmp_path / "old.mp4", overwrite=True)
    assert problems == [] and jobs[0].outputs == {"mp4": tmp_path / "old.mp4" / "sky.mp4"}
    jobs, problems = plan([photo], f"{tmp_path / 'new.gif'}/")
    assert problems == [] and jobs[0].outputs == {"mp4": tmp_path / "new.gif" / "sky.mp4"}
