"""`train`/`finetune --out` never writes over what is not a run of ours: a model folder (the one finetune
starts from included), a model's config or card, or any other file is refused with one line before any
work, and nothing in the folder changes. A new or empty folder trains; a run folder resumes."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from runs import make_clips
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.training.runfolder import check_out_folder

FAST = ["--ndf", "4", "--num-workers", "0", "--log-every", "1", "-q", "--steps", "1"]
TINY = ["--ngf", "4", *FAST]


def _invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args), env={"COLUMNS": "200"})
    return result.exit_code, result.output


def _snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every path below ``folder`` with its bytes (None for folders), and the folder's own mtime."""
    paths = sorted(folder.rglob("*"))
    return {str(p.relative_to(folder)): (None if p.is_dir() else p.read_bytes()) for p in paths} | {
        ".": folder.stat().st_mtime_ns
    }


@pytest.fixture(scope="module")
def clips(tmp_path_factory) -> Path:
    return make_clips(tmp_path_factory.mktemp("clips"), 2)


def _refused(code: int, text: str, *words: str) -> None:
    assert code == 1, text
    lines = [line for line in text.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: --out "), text
    assert all(w in lines[0] for w in words), text


def test_finetune_into_its_own_model_folder_is_refused_and_the_model_kept(tmp_path, tiny_weights, clips):
    model = tmp_path / "my-model"
    shutil.copytree(tiny_weights, model)
    before = _snapshot(model)
    code, text = _invoke("finetune", str(clips), "-w", str(model), "--out", str(model), *FAST)
    _refused(code, text, "holds a model")
    assert _snapshot(model) == before


@pytest.mark.parametrize(
    "contents, words",
    [
        ({"config.json": json.dumps({"ngf": 4})}, ["not a skyforecast training run", "config.json"]),
        ({"model/README.md": "# my model card"}, ["not a skyforecast training run"]),
        ({"notes.txt": "mine", "a.jpg": "x", "b.jpg": "x", "c.jpg": "x"}, ["a.jpg, b.jpg, c.jpg ..."]),
        ({"metrics.jsonl": "", "holiday.mp4": "x"}, ["holiday.mp4"]),
    ],
)
def test_train_into_a_folder_that_is_not_a_run_touches_nothing(tmp_path, clips, contents, words):
    out = tmp_path / "out"
    for name, text in contents.items():
        (out / name).parent.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(text)
    before = _snapshot(out)
    for extra in ([], ["--resume"]):
        # the data is never read: a missing data folder is not what the error is about
        code, text = _invoke("train", str(tmp_path / "no-data"), "--out", str(out), *TINY, *extra)
        _refused(code, text, *words)
        assert _snapshot(out) == before


def test_a_file_as_out_is_refused(tmp_path, clips):
    out = tmp_path / "out"
    out.write_text("mine")
    code, text = _invoke("train", str(clips), "--out", str(out), *TINY)
    _refused(code, text, "is a file")
    assert out.read_text() == "mine"


def test_an_empty_folder_trains_and_the_run_folder_is_ours(tmp_path, clips):
    out = tmp_path / "out"
    out.mkdir()
    code, text = _invoke("train", str(clips), "--out", str(out), "--stage", "1", *TINY)
    assert code == 0, text
    assert (out / "model" / "model.safetensors").is_file()
    code, text = _invoke("train", str(clips), "--out", str(out), "--stage", "1", *TINY)
    assert code == 1 and "already holds a run: pass --resume" in text
    check_out_folder(out, resume=True)  # a run folder of ours: resuming it is allowed
