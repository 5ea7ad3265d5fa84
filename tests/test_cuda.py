"""The CUDA path, on a real GPU: the fast path's autocast and cuDNN settings (skyforecast/model/fast.py), the
pipeline's pinned uint8 transfers and its batch halving on out-of-memory (skyforecast/model/pipeline.py), and
a few training steps in bf16 (skyforecast/training/trainer.py). Every test here is marked ``cuda`` and skipped
without a CUDA device, as on CI; ``bench/gpu_run.sh`` runs them (``pytest -m cuda``) on a CUDA machine."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
from conftest import randomise_batchnorm

from skyforecast.model.fast import FastMDGAN
from skyforecast.model.networks import FRAMES, MDGAN
from skyforecast.model.pipeline import SkyPipeline

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device"),
]


@pytest.fixture(scope="module")
def model() -> MDGAN:
    """ngf=8 on the CPU, random weights and BatchNorm statistics; tests copy it before moving it."""
    torch.manual_seed(0)
    return randomise_batchnorm(MDGAN(ngf=8)).eval()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1


def _reference(model: MDGAN, photos: torch.Tensor, stage: int) -> torch.Tensor:
    """The plain eager network in fp32 on the CPU."""
    with torch.inference_mode():
        return model(photos.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1), stage=stage)


def test_auto_precision_is_half_with_cudnn_autotuning(model):
    torch.backends.cudnn.benchmark = False
    fast = FastMDGAN(copy.deepcopy(model), "cuda")
    assert fast.precision == ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    assert torch.backends.cudnn.benchmark is True
    assert fast.onednn is False  # oneDNN prepacking is a CPU path
    assert fast.base.enc[0].weight.device.type == "cuda"


@pytest.mark.parametrize("stage", [1, 2])
def test_fp32_on_cuda_matches_the_cpu_reference(model, photos, stage):
    ref = _reference(model, photos, stage)
    saved = torch.backends.cudnn.allow_tf32
    torch.backends.cudnn.allow_tf32 = False  # TF32 convolutions keep 10 mantissa bits; fp32 must be exact
    try:
        out = FastMDGAN(copy.deepcopy(model), "cuda", precision="fp32")(photos.cuda(), stage=stage)
    finally:
        torch.backends.cudnn.allow_tf32 = saved
    assert out.device.type == "cuda" and out.dtype == torch.float32
    assert out.shape == (2, 3, FRAMES, 128, 128)
    assert (out.cpu() - ref).abs().max().item() < 1e-3


@pytest.mark.parametrize("stage", [1, 2])
def test_autocast_on_cuda_stays_close_to_the_reference(model, photos, stage):
    ref = _reference(model, photos, stage)
    out = FastMDGAN(copy.deepcopy(model), "cuda")(photos.cuda(), stage=stage).float().cpu()
    diff = (out - ref).abs()
    # bf16 keeps 8 mantissa bits: the tolerance is loose, but far below what tells the stages apart
    other = _reference(model, photos, 3 - stage)
    assert diff.mean().item() < 0.01 and diff.max().item() < 0.1
    assert (other - ref).abs().mean().item() > 10 * diff.mean().item()


def test_pipeline_on_cuda_gives_the_cpu_videos(model):
    squares = np.random.default_rng(0).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    pipe = SkyPipeline(copy.deepcopy(model), device="cuda")
    gpu = pipe.predict_squares(squares, batch_size=2)  # batches of 2 + 1
    cpu = SkyPipeline(copy.deepcopy(model), device="cpu").predict_squares(squares)
    assert gpu.shape == (3, FRAMES, 128, 128, 3) and gpu.dtype == np.uint8
    diff = np.abs(gpu.astype(np.int16) - cpu.astype(np.int16))
    assert diff.mean() < 1.0 and diff.max() <= 16
    # far below what tells Stage I from Stage II apart
    stage1 = pipe.predict_squares(squares, stage=1)
    assert np.abs(stage1.astype(np.int16) - gpu.astype(np.int16)).mean() > 10 * max(diff.mean(), 0.1)


def test_pipeline_halves_the_batch_on_out_of_memory():
    """A real out-of-memory: the process may use only 1 GiB more than it holds, and 128 clips at ngf=32
    need several; the pipeline halves the batch until it fits and returns every video."""
    torch.manual_seed(0)
    pipe = SkyPipeline(randomise_batchnorm(MDGAN(ngf=32)).eval(), device="cuda")
    squares = np.random.default_rng(1).integers(0, 256, (128, 128, 128, 3), dtype=np.uint8)
    first = pipe.predict_squares(squares[:2], batch_size=2)
    sizes: list[int] = []
    real_chunk = pipe._predict_chunk

    def spy(chunk, stage):  # calls through: only records the batch sizes tried
        sizes.append(len(chunk))
        return real_chunk(chunk, stage)

    pipe._predict_chunk = spy
    torch.cuda.synchronize()
    torch.cuda.empty_cache()
    total = torch.cuda.get_device_properties(0).total_memory
    torch.cuda.set_per_process_memory_fraction(min(1.0, (torch.cuda.memory_reserved() + 2**30) / total))
    try:
        out = pipe.predict_squares(squares, batch_size=128)
    finally:
        torch.cuda.set_per_process_memory_fraction(1.0)
        torch.cuda.empty_cache()
    assert sizes[0] == 128 and min(sizes) < 128
    assert out.shape == (128, FRAMES, 128, 128, 3)
    assert np.abs(out[:2].astype(np.int16) - first.astype(np.int16)).mean() < 1.0


def test_training_steps_on_cuda_in_bf16(tmp_path):
    from skyforecast.model.weights import load_model
    from skyforecast.synth import write_dataset
    from skyforecast.training.trainer import TrainConfig, train

    write_dataset(tmp_path / "clips", 4, 0, size=(128, 128))
    model_dir = train(
        TrainConfig(
            data=str(tmp_path / "clips"), out=str(tmp_path / "run"), steps=2, batch_size=2, ngf=4, ndf=4,
            device="cuda", precision="bf16", num_workers=0, progress=False, log_every=1,
        )
    )  # fmt: skip
    records = [json.loads(x) for x in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [(r["stage"], r["step"]) for r in records] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    assert all(math.isfinite(r["loss_g"]) and math.isfinite(r["loss_d"]) for r in records)
    run_config = json.loads((tmp_path / "run" / "config.json").read_text())
    assert run_config["sessions"][-1]["device"].startswith("cuda")
    assert load_model(str(model_dir)).ngf == 4
