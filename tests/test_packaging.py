"""The package as an index would get it: the sdist and the wheel built from it pass `twine check` and carry
the metadata a package page shows, and the bundled default model is found after a non-editable install, not
only in a source checkout, and predicts from there with no network and no --weights."""

from __future__ import annotations

import email
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import imageio.v3 as iio
import numpy as np
import pytest
from conftest import REPO


def _metadata(wheel: Path) -> email.message.Message:
    with zipfile.ZipFile(wheel) as z:
        name = next(n for n in z.namelist() if n.endswith(".dist-info/METADATA"))
        return email.message_from_bytes(z.read(name))


def test_sdist_and_wheel_pass_twine_check_with_the_package_page_metadata(tmp_path):
    pytest.importorskip("build", reason="needs the build package (pip install -e '.[dev]')")
    pytest.importorskip("twine", reason="needs twine (pip install -e '.[dev]')")
    dist = tmp_path / "dist"
    # the wheel is built from the sdist, so a file the sdist forgets breaks the wheel too
    subprocess.run(
        [sys.executable, "-m", "build", "-q", "-o", str(dist), str(REPO)], check=True, cwd=tmp_path
    )
    files = sorted(dist.iterdir(), key=lambda p: p.suffix)  # .gz, .whl
    assert [p.suffix for p in files] == [".gz", ".whl"], files
    check = subprocess.run(
        [sys.executable, "-m", "twine", "check", "--strict", *map(str, files)], capture_output=True, text=True
    )
    assert check.returncode == 0, check.stdout + check.stderr

    import skyforecast

    meta = _metadata(files[1])
    assert meta["Version"] == skyforecast.__version__  # the version lives in one place
    assert meta["License-Expression"] == "MIT" and meta["License-File"] == "LICENSE"
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert {"Homepage", "Documentation", "Source", "Changelog"} <= set(urls)
    assert meta["Author"] and meta["Keywords"] and len(meta.get_all("Classifier")) >= 5
    assert meta["Description-Content-Type"] == "text/markdown" and "skyforecast predict" in meta.get_payload()
    with zipfile.ZipFile(files[1]) as z:
        assert any(n.endswith("licenses/LICENSE") for n in z.namelist())


def test_wheel_ships_the_weights_folder_as_package_data(tmp_path):
    wheel_dir, site = tmp_path / "wheel", tmp_path / "site"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "-q"]
    subprocess.run([*pip, "wheel", "--no-deps", "-w", str(wheel_dir), str(REPO)], check=True, cwd=tmp_path)
    wheel = next(wheel_dir.glob("skyforecast-*.whl"))
    subprocess.run([*pip, "install", "--no-deps", "--target", str(site), str(wheel)], check=True)

    code = "import skyforecast.model.weights as w; print(w.bundled_weights_dir())"
    env = dict(os.environ, PYTHONPATH=str(site))
    found = subprocess.run(
        [sys.executable, "-c", code], env=env, cwd=tmp_path, capture_output=True, text=True, check=True
    ).stdout.strip()
    bundled = Path(found)
    assert bundled.is_relative_to(site), found
    shipped = sorted(p.name for p in (REPO / "weights").iterdir() if p.is_file())
    assert shipped and sorted(p.name for p in bundled.iterdir() if p.is_file()) == shipped

    if not (REPO / "weights" / "model.safetensors").is_file():
        pytest.skip("no default model in weights/ yet")
    # the acceptance run: installed copy, bundled model, offline, no --weights
    env = {k: v for k, v in env.items() if k != "SKYFORECAST_WEIGHTS"}
    env.update(HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path / "hf"))
    out = tmp_path / "sky.mp4"
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "skyforecast",
            "predict",
            str(REPO / "examples" / "sky.jpg"),
            "-o",
            str(out),
            "-q",
        ],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
    )
    assert run.returncode == 0, run.stderr
    frames = iio.imread(out)
    assert frames.shape[0] == 32
    motion = np.abs(np.diff(frames.astype(np.float32), axis=0)).mean()
    assert motion > 0.5, motion  # the sky moves (in 0..255 levels per frame step)


def test_the_dev_extra_leaves_gradio_out_and_the_license_is_shipped():
    """The tests run with the current Pillow (Gradio pins an older one), and pyproject's MIT has its text."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+

    project = tomllib.loads((REPO / "pyproject.toml").read_text())
    dev = " ".join(project["project"]["optional-dependencies"]["dev"])
    assert "gradio" not in dev and "app" not in dev
    license_text = (REPO / "LICENSE").read_text()
    assert license_text.startswith("MIT License") and "the skyforecast authors" in license_text
    assert "LICENSE" in project["tool"]["hatch"]["build"]["targets"]["sdist"]["include"]
    tracked = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True).stdout.split()
    assert ".coverage" not in tracked or not (REPO / ".git").exists()
