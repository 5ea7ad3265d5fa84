"""``skyforecast convert-official``: checkpoints in the authors' layout (legacy, non-zip ``torch.save`` as
PyTorch 0.3 wrote them, no ``num_batches_tracked``) written by the test, converted, loaded, and run."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.model.networks import MDGAN, Generator
from skyforecast.model.weights import load_model

runner = CliRunner()


def theirs(key: str) -> str:
    """Our generator key -> the authors' name (the inverse of the converter's mapping)."""
    for pattern, repl in [
        (r"^conv([16])\.", r"downConv\1."),
        (r"^conv(\d)\.0\.", r"downConv\1."),
        (r"^conv(\d)\.1\.", r"downBN\1."),
        (r"^deconv(\d)\.0\.", r"upConv\1."),
        (r"^deconv(\d)\.1\.", r"upBN\1."),
    ]:
        if re.match(pattern, key):
            return re.sub(pattern, repl, key)
    raise AssertionError(key)


def save_official(generator: Generator, path: Path, prefix: str = "") -> None:
    sd = {prefix + theirs(k): v.clone() for k, v in generator.state_dict().items() if "num_batches" not in k}
    torch.save(sd, path, _use_new_zipfile_serialization=False)


@pytest.fixture
def official(tmp_path) -> tuple[MDGAN, Path, Path]:
    torch.manual_seed(3)
    reference = MDGAN(ngf=4, batch_stats=True)
    for m in reference.modules():
        if isinstance(m, torch.nn.BatchNorm3d):
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.2, 0.2)
            m.running_mean.uniform_(-0.2, 0.2)
    s1, s2 = tmp_path / "NETG_S1.pth", tmp_path / "NETG_S2.pth"
    save_official(reference.base, s1)
    save_official(reference.refine, s2, prefix="module.")  # saved from DataParallel
    return reference.eval(), s1, s2


def test_converted_model_predicts_like_the_original(tmp_path, official):
    reference, s1, s2 = official
    assert not s1.read_bytes().startswith(b"PK")  # really the legacy (non-zip) format
    out = tmp_path / "converted"
    result = runner.invoke(app, ["convert-official", str(s1), str(s2), "--out", str(out)])
    assert result.exit_code == 0, result.output
    assert {"config.json", "model.safetensors"} <= {p.name for p in out.iterdir()}
    assert not list(out.glob("*.pth")) and not list(out.glob("*.bin"))
    config = json.loads((out / "config.json").read_text())
    assert config["ngf"] == 4 and config["batch_stats"] is True
    model = load_model(str(out))
    assert model.batch_stats is True
    ours, theirs = model.state_dict(), reference.state_dict()
    assert ours.keys() == theirs.keys()
    assert all(torch.equal(ours[k], theirs[k]) for k in theirs)  # the very same numbers
    x = torch.rand(2, 3, 32, 128, 128) * 2 - 1
    with torch.no_grad():
        for stage in (1, 2):
            # float32 convolutions may sum in another order on another CPU: ~1e-6 of outputs ~0.1
            assert torch.allclose(model(x, stage=stage), reference(x, stage=stage), atol=1e-5)
    bn = dict(model.named_buffers())["base.conv2.1.num_batches_tracked"]
    assert bn.dtype == torch.long  # filled in: PyTorch 0.3 had no such buffer


def test_existing_folder_needs_overwrite(tmp_path, official):
    _, s1, s2 = official
    out = tmp_path / "converted"
    out.mkdir()
    (out / "keep.txt").write_text("x")
    result = runner.invoke(app, ["convert-official", str(s1), str(s2), "--out", str(out)])
    assert result.exit_code == 1 and "--overwrite" in result.output
    assert (out / "keep.txt").exists()
    result = runner.invoke(app, ["convert-official", str(s1), str(s2), "--out", str(out), "--overwrite"])
    assert result.exit_code == 0, result.output
    assert not (out / "keep.txt").exists() and (out / "model.safetensors").exists()


class _Payload:
    """A pickle that would create a file when fully unpickled."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_code_in_a_checkpoint_is_never_run(tmp_path, official):
    _, s1, _ = official
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pth"
    torch.save(
        {"downConv1.weight": torch.zeros(1), "x": _Payload(marker)},
        evil,
        _use_new_zipfile_serialization=False,
    )
    result = runner.invoke(app, ["convert-official", str(s1), str(evil), "--out", str(tmp_path / "out")])
    assert result.exit_code == 1
    assert "refusing to unpickle" in result.output and "Traceback" not in result.output
    assert not marker.exists()
    assert not (tmp_path / "out").exists()


def test_mismatched_or_foreign_checkpoints_are_one_clear_error(tmp_path, official):
    _, s1, _ = official
    wider = tmp_path / "wider.pth"
    save_official(Generator(ngf=8, outer_skips=False), wider)
    result = runner.invoke(app, ["convert-official", str(s1), str(wider), "--out", str(tmp_path / "a")])
    assert result.exit_code == 1 and "shape" in result.output
    other = tmp_path / "other.pth"
    torch.save({"fc.weight": torch.zeros(2, 2)}, other, _use_new_zipfile_serialization=False)
    result = runner.invoke(app, ["convert-official", str(s1), str(other), "--out", str(tmp_path / "b")])
    assert result.exit_code == 1 and "unexpected keys" in result.output
    result = runner.invoke(
        app, ["convert-official", str(s1), str(tmp_path / "nope.pth"), "--out", str(tmp_path / "c")]
    )
    assert result.exit_code == 1 and "no such file" in result.output
    assert not any((tmp_path / n).exists() for n in "abc")
