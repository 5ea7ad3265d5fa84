"""Weights from the Hub, through huggingface_hub's real client against a real HTTP server on 127.0.0.1
(``hub_server.py``), and clear one-line failures for every way weights can be wrong.

The CLI is run in subprocesses where the environment matters (offline mode, timeouts): that is the path a
user takes, and it reads HF_* variables fresh. Other failures go through typer's runner in-process.
"""

from __future__ import annotations

import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from conftest import visible_tiny_model
from hub_server import HubEnv, hub  # noqa: F401 - the fixture is used by name
from huggingface_hub import constants
from PIL import Image
from typer.testing import CliRunner

from skyforecast.cli import app
from skyforecast.io.media import resize_frames
from skyforecast.model.engines import load_pipeline
from skyforecast.model.networks import MDGAN
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.model.weights import ENV_VAR, WeightsError, load_model, save_model

REPO = "user/sky-model"


def _model(seed: int) -> MDGAN:
    """A tiny model whose output depends visibly on ``seed`` (random BatchNorm statistics)."""
    return visible_tiny_model(seed, mean_spread=0.3)


@pytest.fixture(scope="module")
def two_models(tmp_path_factory) -> dict[str, Path]:
    """Two model folders with different weights: published as ``main`` and as tag ``v1``."""
    root = tmp_path_factory.mktemp("models")
    folders = {}
    for name, seed in (("main", 1), ("v1", 2)):
        folders[name] = root / name
        save_model(_model(seed), folders[name])
    return folders


@pytest.fixture(scope="module")
def square() -> np.ndarray:
    """One 128x128 photo: a bright sky over dark ground."""
    rng = np.random.default_rng(0)
    img = np.zeros((1, 128, 128, 3), np.uint8)
    img[:, :64] = (140, 180, 235)
    img[:, 64:] = (40, 60, 30)
    return np.clip(img + rng.integers(0, 20, img.shape), 0, 255).astype(np.uint8)


def _output(model: MDGAN, square: np.ndarray) -> np.ndarray:
    return SkyPipeline(model, device="cpu").predict_squares(square)


@pytest.fixture
def published(hub: HubEnv, two_models) -> HubEnv:  # noqa: F811 - pytest fixture by name
    hub.server.add_revision(REPO, "main", two_models["main"])
    hub.server.add_revision(REPO, "v1", two_models["v1"])
    return hub


def _cli(env: HubEnv, *args: str, extra_env: dict[str, str] | None = None, timeout: float = 120):
    """Run the real `skyforecast` CLI in a fresh interpreter with the Hub environment."""
    full_env = {**os.environ, **env.env, **(extra_env or {})}
    full_env.pop(ENV_VAR, None)
    return subprocess.run(
        [sys.executable, "-m", "skyforecast", *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.strip()]


# ---- loading by repo id and revision --------------------------------------------------------------


def test_repo_id_loads_main_and_revision_loads_the_tag(published, two_models, square):
    expected_main = _output(load_model(two_models["main"]), square)
    expected_v1 = _output(load_model(two_models["v1"]), square)
    assert np.abs(expected_main.astype(int) - expected_v1.astype(int)).mean() > 2  # the test can tell

    assert np.array_equal(_output(load_model(REPO), square), expected_main)
    assert np.array_equal(_output(load_model(f"{REPO}@v1"), square), expected_v1)

    heads = published.server.paths_requested("HEAD")
    assert f"/{REPO}/resolve/main/config.json" in heads
    assert f"/{REPO}/resolve/v1/model.safetensors" in heads
    cdn_gets = [p for p in published.server.paths_requested("GET") if p.startswith("/cdn/")]
    assert len(cdn_gets) == 2  # each revision's safetensors fetched once, from the "CDN"
    snapshots = list((published.cache / "models--user--sky-model" / "snapshots").iterdir())
    assert len(snapshots) == 2


def test_commit_sha_revision_is_accepted(published, two_models, square):
    commit = published.server.repos[REPO].refs["v1"]
    expected = _output(load_model(two_models["v1"]), square)
    assert np.array_equal(_output(load_model(f"{REPO}@{commit}"), square), expected)


def test_second_load_uses_the_cache_without_downloading_again(published):
    load_model(REPO)
    gets = len(published.server.paths_requested("GET"))
    load_model(REPO)
    assert len(published.server.paths_requested("GET")) == gets  # only metadata HEADs the second time


# ---- offline and unreachable ----------------------------------------------------------------------


def test_warm_cache_works_offline_and_with_the_hub_down(published, two_models, square, monkeypatch):
    load_model(REPO)
    load_model(f"{REPO}@v1")
    published.server.stop()  # from now on connections to the endpoint are refused

    # Hub down, not offline: the metadata request fails fast and the cached snapshot is used
    expected = _output(load_model(two_models["main"]), square)
    assert np.array_equal(_output(load_model(REPO), square), expected)

    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    expected_v1 = _output(load_model(two_models["v1"]), square)
    assert np.array_equal(_output(load_model(f"{REPO}@v1"), square), expected_v1)


def test_offline_cli_with_warm_cache_predicts(published, tmp_path):
    load_model(f"{REPO}@v1")  # warms the cache in HF_HOME, shared with the subprocess
    published.server.stop()
    photo = tmp_path / "photo.png"
    Image.new("RGB", (64, 48), (120, 160, 220)).save(photo)
    out = tmp_path / "out.gif"
    offline = {"HF_HUB_OFFLINE": "1"}
    model = ("--resolution", "model")  # the model's frames: a flat photo's default video stands still
    proc = _cli(
        published, "predict", str(photo), "-w", f"{REPO}@v1", "-o", str(out), *model, extra_env=offline
    )
    assert proc.returncode == 0, proc.stderr
    with Image.open(out) as gif:
        assert gif.n_frames == 32


def test_offline_cold_cache_fails_with_one_clear_line(hub, tmp_path):  # noqa: F811
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(photo)
    offline = {"HF_HUB_OFFLINE": "1"}
    proc = _cli(hub, "predict", str(photo), "-w", REPO, "-o", str(tmp_path), extra_env=offline)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1, proc.stderr
    assert "offline" in lines[0] and "cache" in lines[0] and REPO in lines[0]
    assert hub.server.requests == []  # offline means no request at all
    assert not list(tmp_path.glob("*.mp4"))


# ---- which weights win ------------------------------------------------------------------------------


def test_env_var_names_a_hub_repo(published, two_models, square, monkeypatch):
    monkeypatch.setenv(ENV_VAR, f"{REPO}@v1")
    expected = _output(load_model(two_models["v1"]), square)
    assert np.array_equal(_output(load_model(None), square), expected)


def test_local_folder_wins_over_env_and_over_a_hub_repo_of_the_same_name(
    published, two_models, square, tmp_path, monkeypatch
):
    # a folder literally named like the repo id, in the current directory, holding the v1 weights
    monkeypatch.chdir(tmp_path)
    local = tmp_path / "user" / "sky-model"
    save_model(_model(2), local)
    monkeypatch.setenv(ENV_VAR, REPO)
    expected_v1 = _output(load_model(two_models["v1"]), square)

    assert np.array_equal(_output(load_model(REPO), square), expected_v1)  # the folder, not main
    assert np.array_equal(_output(load_model(str(two_models["v1"])), square), expected_v1)
    assert published.server.requests == []  # the Hub was never asked


def test_predict_with_hub_weights_end_to_end(published, two_models, tmp_path):
    photo = tmp_path / "my photo.png"
    rng = np.random.default_rng(3)
    Image.fromarray(rng.integers(0, 255, (90, 160, 3), dtype=np.uint8)).save(photo)
    out = tmp_path / "out"
    proc = _cli(
        published, "predict", str(photo), "--weights", f"{REPO}@v1", "-o", str(out), "-f", "frames",
        "--resolution", "model",
    )  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    frames = np.stack([np.asarray(Image.open(p)) for p in sorted((out / "my photo_frames").glob("*.png"))])
    expected = load_pipeline(two_models["v1"], device="cpu", photos=1)([photo])[0]  # predict's engine
    # the v1 model's output: the CLI's process may sum in another order (its BLAS threads), which moved a
    # dozen of the 2.8 million values one level on a 2-core CPU; the main revision's model's output is more
    # than a level away in 99.5 % of them
    apart = np.abs(frames.astype(int) - resize_frames(expected, (228, 128)))
    assert apart.max() <= 1 and (apart > 0).mean() < 1e-4


# ---- the Hub misbehaving: one line, exit 1, no traceback ---------------------------------------------

HUB_FAILURES = {
    "404": "no such repo",
    "private": "no such repo",
    "401": "access denied (HTTP 401)",
    "500": "HTTP 500",
    "hang": "did not answer within 1 s",
}


@pytest.mark.parametrize("mode", sorted(HUB_FAILURES))
def test_hub_failures_are_one_clear_line(hub, mode):  # noqa: F811
    hub.server.set_mode(REPO, mode)
    with pytest.raises(WeightsError) as info:
        load_model(REPO)
    message = str(info.value)
    assert "\n" not in message
    assert REPO in message and HUB_FAILURES[mode] in message, message
    if mode not in ("404", "private", "401"):
        assert "not in the local cache" in message


def test_missing_revision_and_missing_weights_file(published, tmp_path):
    with pytest.raises(WeightsError, match="revision .* does not exist"):
        load_model(f"{REPO}@v9")
    config_only = tmp_path / "config-only"
    config_only.mkdir()
    (config_only / "config.json").write_text('{"ngf": 4}')
    (config_only / "pytorch_model.bin").write_bytes(b"not loaded")
    published.server.add_revision("user/bin-only", "main", config_only)
    with pytest.raises(WeightsError, match="the repo has no model.safetensors"):
        load_model("user/bin-only")


def test_a_hub_that_never_answers_fails_fast_in_the_cli(hub, tmp_path):  # noqa: F811
    hub.server.set_mode(REPO, "hang")
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(photo)
    proc = _cli(hub, "predict", str(photo), "-w", REPO, "-o", str(tmp_path), timeout=60)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and "did not answer within 1 s" in lines[0], proc.stderr


def test_a_hub_that_answers_404_fails_in_the_cli(hub, tmp_path):  # noqa: F811
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(photo)
    proc = _cli(hub, "predict", str(photo), "-w", "nobody/nothing@v1", "-o", str(tmp_path))
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    lines = _error_lines(proc.stderr)
    assert len(lines) == 1 and "nobody/nothing@v1" in lines[0] and "no such repo" in lines[0], proc.stderr


# ---- broken local weights ------------------------------------------------------------------------------


class _Boom:
    """A pickle that, if ever unpickled, leaves a marker file: proof that loading never unpickles."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture
def broken(tmp_path, two_models) -> dict[str, Path]:
    """Model folders broken in one way each, plus pickles that would leave a marker if unpickled."""
    good = two_models["main"]
    data = (good / "model.safetensors").read_bytes()
    config = (good / "config.json").read_text()
    marker = tmp_path / "UNPICKLED"
    evil = pickle.dumps({"state_dict": _Boom(marker)})
    cases = {
        "truncated": (data[: len(data) // 2], config),
        "corrupt": (bytes(len(data)), config),  # right size, all zero bytes
        "wrong-ngf": (data, config.replace('"ngf": 4', '"ngf": 8')),
        "bad-json": (data, config[:-3]),
        "bad-ngf-type": (data, '{"ngf": "four"}'),
        "no-safetensors": (None, config),
        "no-config": (data, None),
        "pickle-as-safetensors": (evil, config),
    }
    folders = {"marker": marker}
    for name, (weights, cfg) in cases.items():
        folder = tmp_path / name
        folder.mkdir()
        if weights is not None:
            (folder / "model.safetensors").write_bytes(weights)
        if cfg is not None:
            (folder / "config.json").write_text(cfg)
        folders[name] = folder
    (tmp_path / "no-safetensors" / "pytorch_model.bin").write_bytes(evil)
    (tmp_path / "model.pth").write_bytes(evil)
    folders["pth"] = tmp_path / "model.pth"
    return folders


BROKEN_REASONS = {
    "truncated": "not a readable safetensors file",
    "corrupt": "not a readable safetensors file",
    "wrong-ngf": "do not match config ngf=8",
    "bad-json": "config.json: not valid JSON",
    "bad-ngf-type": "ngf must be a positive integer",
    "no-safetensors": "no model.safetensors in this folder",
    "no-config": "no config.json in this folder",
    "pickle-as-safetensors": "not a readable safetensors file",
    "pth": "pickled PyTorch checkpoints are not loaded",
}


@pytest.mark.parametrize("case", sorted(BROKEN_REASONS))
def test_broken_weights_are_one_line_exit_1(broken, case, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(photo)
    result = CliRunner().invoke(app, ["predict", str(photo), "-w", str(broken[case]), "-o", str(tmp_path)])
    assert result.exit_code == 1
    assert isinstance(result.exception, SystemExit)  # not an unhandled exception
    lines = _error_lines(result.stderr)
    assert len(lines) == 1, result.output
    assert lines[0].startswith("error:") and BROKEN_REASONS[case] in lines[0], lines[0]
    assert str(broken[case]) in lines[0].replace("\n", "")
    assert not broken["marker"].exists()  # nothing was unpickled
    assert not list(tmp_path.glob("*.mp4"))


def test_pickled_checkpoint_in_a_subprocess_is_refused_and_never_unpickled(broken, tmp_path):
    photo = tmp_path / "photo.png"
    Image.new("RGB", (32, 32)).save(photo)
    env = {k: v for k, v in os.environ.items() if k != ENV_VAR}
    proc = subprocess.run(
        [sys.executable, "-m", "skyforecast", "predict", str(photo), "-w", str(broken["pth"])],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
        timeout=120,
    )
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "pickled PyTorch checkpoints are not loaded" in proc.stderr
    assert not broken["marker"].exists()
