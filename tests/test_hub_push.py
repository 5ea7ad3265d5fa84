"""``train --push-to-hub``: a real training run uploads its exported model folder to the test Hub (real HTTP
on 127.0.0.1, the upload endpoints huggingface_hub calls), and the pushed model downloads and predicts
exactly like the local folder, with its model card."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
from conftest import REPO
from hub_server import hub  # noqa: F401 - the fixture
from PIL import Image
from runs import make_clips

REPO_ID = "someone/sky-tiny"


def _skyforecast(*args: str, env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "skyforecast", *args],
        env={**os.environ, **env},
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
    )


def _frames(folder: Path) -> np.ndarray:
    return np.stack([np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))])


def test_a_pushed_model_downloads_and_predicts_like_the_local_folder(hub, tmp_path):  # noqa: F811
    clips = make_clips(tmp_path, 2)
    run = tmp_path / "run"
    tiny = ["--ngf", "4", "--ndf", "4", "--num-workers", "0", "--batch-size", "1", "--steps", "1", "-q"]
    env = {**hub.env, "HF_TOKEN": "hf_test_token"}
    train = ["train", str(clips), "--out", str(run), "--stage", "1", *tiny, "--push-to-hub", REPO_ID]
    trained = _skyforecast(*train, env=env, cwd=tmp_path)
    assert trained.returncode == 0, trained.stderr
    assert "pushed to" in trained.stdout + trained.stderr

    # the Hub holds the exported folder, byte for byte, as one commit on main
    posts = hub.server.paths_requested("POST")
    assert "/api/repos/create" in posts and any(p.endswith("/commit/main") for p in posts)
    stored = hub.server.repos[REPO_ID]
    pushed = stored.commits[stored.refs["main"]]
    local = {p.name: p.read_bytes() for p in (run / "model").iterdir() if p.is_file()}
    assert {"config.json", "model.safetensors", "README.md"} <= set(pushed)
    assert pushed == local

    # and predicts exactly like the local folder, downloading it (card included) into the cache
    photo = REPO / "tests" / "data" / "photos" / "hills.jpg"
    outs = {}
    for name, weights in (("hub", REPO_ID), ("local", str(run / "model"))):
        out = tmp_path / name
        predict = ["predict", str(photo), "-w", weights, "--resolution", "model", "-f", "frames"]
        done = _skyforecast(*predict, "-o", str(out), "-q", env=env, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        outs[name] = _frames(out / "hills_frames")
    assert outs["hub"].shape[0] == 32
    np.testing.assert_array_equal(outs["hub"], outs["local"])
    cached = list(hub.cache.glob("models--someone--sky-tiny/snapshots/*/config.json"))
    assert cached and cached[0].read_bytes() == local["config.json"]
    from huggingface_hub import hf_hub_download  # the card, as a user of the Hub fetches it

    readme = hf_hub_download(REPO_ID, "README.md")
    assert Path(readme).read_bytes() == local["README.md"]
