"""The fast inference path must compute what the plain model computes: BN folding, prepacked oneDNN
convolutions, the static-input temporal shortcut and channels_last are checked against the eager reference
on random weights with non-trivial BatchNorm statistics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from conftest import randomise_batchnorm

from skyforecast.model.fast import (
    FastGenerator,
    FastMDGAN,
    FastPathError,
    _Conv,
    _depth_to_space,
    _fold,
    _subpixel_conv,
    onednn_available,
)
from skyforecast.model.networks import FRAMES, MDGAN
from skyforecast.model.pipeline import SkyPipeline
from skyforecast.model.weights import save_model

TOL = 1e-3


@pytest.fixture(scope="module")
def model() -> MDGAN:
    torch.manual_seed(0)
    return randomise_batchnorm(MDGAN(ngf=4)).eval()


@pytest.fixture(scope="module")
def photos() -> torch.Tensor:
    return torch.rand(2, 3, 128, 128, generator=torch.Generator().manual_seed(2)) * 2 - 1


def _static(img: torch.Tensor) -> torch.Tensor:
    return img.unsqueeze(2).expand(-1, -1, FRAMES, -1, -1)


VARIANTS = [
    {},
    {"onednn": False},
    {"channels_last": False},
    {"temporal_shortcut": False},
    {"subpixel": False},
    {"onednn": False, "channels_last": False, "temporal_shortcut": False},
]


@pytest.mark.parametrize(
    "options", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "all"
)
@pytest.mark.parametrize("stage", [1, 2])
def test_fast_matches_reference(model, photos, options, stage):
    with torch.inference_mode():
        ref = model(_static(photos), stage=stage)
    fast = FastMDGAN(model, "cpu", **options)
    out = fast(photos, stage=stage)
    assert out.shape == ref.shape == (2, 3, FRAMES, 128, 128)
    assert out.dtype == torch.float32
    assert (out - ref).abs().max().item() < TOL
    # the BN statistics matter here: a model with default statistics gives a clearly different output
    plain = MDGAN(ngf=4).eval()
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if "running" not in k}, strict=False)
    with torch.inference_mode():
        assert (plain(_static(photos), stage=stage) - ref).abs().max().item() > 10 * TOL


def test_refine_on_moving_video_matches_reference(model):
    """Refine-Net sees Base-Net's (moving) output, so the full-length path must be exact on any video."""
    video = torch.rand(2, 3, FRAMES, 128, 128, generator=torch.Generator().manual_seed(3)) * 2 - 1
    fast = FastGenerator(model.refine, onednn=onednn_available(), channels_last=True)
    with torch.inference_mode():
        assert (fast.forward(video) - model.refine(video)).abs().max().item() < TOL


def test_static_encoder_is_constant_in_time_except_the_ends(model, photos):
    """The algebra behind the temporal shortcut, checked on the reference network itself: for a photo
    repeated in time, encoder levels 1-4 have identical middle frames."""
    g = model.base
    with torch.inference_mode():
        h = _static(photos)
        for name in ("conv1", "conv2", "conv3", "conv4"):
            h = getattr(g, name)(h)
            middle = h[:, :, 1:-1]
            assert h.shape[2] >= 3
            assert (middle - middle[:, :, :1]).abs().max().item() < 1e-5
            assert (h[:, :, 0] - h[:, :, 1]).abs().max().item() > 1e-3  # the ends really differ


def test_temporal_shortcut_equals_full_computation(model, photos):
    fast = FastGenerator(model.base, onednn=False, channels_last=False)
    with torch.inference_mode():
        full = fast.forward(_static(photos))
        short = fast.forward_static(photos, FRAMES)
    assert (full - short).abs().max().item() < 1e-5


def test_channels_last_equivalent(model, photos):
    with torch.inference_mode():
        a = FastMDGAN(model, "cpu", channels_last=True)(photos)
        b = FastMDGAN(model, "cpu", channels_last=False)(photos)
    assert a.is_contiguous(memory_format=torch.channels_last_3d)
    assert (a - b).abs().max().item() < 1e-5


def test_batch_size_change_after_packing(model, photos):
    """Weights are packed for the first input shape seen; other batch sizes must still be right."""
    fast = FastMDGAN(model, "cpu")
    with torch.inference_mode():
        fast(photos[:1])
        three = torch.cat([photos, photos[:1]])
        out = fast(three)
        ref = model(_static(three))
    assert (out - ref).abs().max().item() < TOL


@pytest.mark.skipif(not onednn_available(), reason="oneDNN prepacked ops not available in this torch build")
def test_onednn_path_is_used_on_cpu(model):
    assert FastMDGAN(model, "cpu").onednn


def test_fold_transposed_scales_output_channels():
    conv = torch.nn.ConvTranspose3d(3, 5, 4, 2, 1, bias=False)
    bn = randomise_batchnorm(torch.nn.Sequential(torch.nn.BatchNorm3d(5)))[0].eval()
    w, b = _fold(conv, bn)
    x = torch.randn(1, 3, 2, 4, 4)
    with torch.no_grad():
        ref = bn(conv(x))
    assert torch.allclose(torch.nn.functional.conv_transpose3d(x, w, b, 2, 1), ref, atol=1e-5)


def test_last_layer_as_subpixel_convolution():
    """deconv6 (transposed, kernel (3,4,4), stride (1,2,2)) rewritten as a plain conv + depth-to-space."""
    g = torch.Generator().manual_seed(4)
    w, b = torch.randn(5, 3, 3, 4, 4, generator=g), torch.randn(3, generator=g)
    x = torch.randn(2, 5, 4, 6, 7, generator=g)
    layer = _Conv(True, w, b, [1, 2, 2], [1, 1, 1], "none")
    sub = _subpixel_conv(layer)
    assert sub.weight.shape == (12, 5, 3, 3, 3) and not sub.transposed
    out = _depth_to_space(sub.plain_call(x))
    ref = torch.nn.functional.conv_transpose3d(x, w, b, [1, 2, 2], [1, 1, 1])
    assert out.shape == ref.shape == (2, 3, 4, 12, 14)
    assert torch.allclose(out, ref, atol=1e-4)


def test_autocast_path_runs_and_stays_close(model, photos):
    """The lower-precision path (autocast, plain convolutions) is what CUDA runs by default; on the CPU it
    is opt-in. It must give the same video up to bf16 rounding."""
    fast = FastMDGAN(model, "cpu", precision="bf16")
    assert not fast.onednn and fast.precision == "bf16"
    with torch.inference_mode():
        out = fast(photos).float()
        ref = model(_static(photos))
    assert out.shape == ref.shape
    assert (out - ref).abs().mean().item() < 0.02
    with pytest.raises(ValueError):
        FastMDGAN(model, "cpu", precision="fp8")


def test_batch_stats_model_is_not_folded(photos):
    model = randomise_batchnorm(MDGAN(ngf=4, batch_stats=True)).eval()
    with pytest.raises(FastPathError):
        FastMDGAN(model, "cpu")
    pipe = SkyPipeline(model, device="cpu")
    assert pipe.fast is None  # falls back to the reference, which uses batch statistics
    squares = np.random.default_rng(0).integers(0, 256, (2, 128, 128, 3), dtype=np.uint8)
    ref = SkyPipeline(model, device="cpu", fast=False).predict_squares(squares)
    assert np.array_equal(pipe.predict_squares(squares), ref)


def test_pipeline_fast_and_reference_videos_agree(model):
    squares = np.random.default_rng(1).integers(0, 256, (3, 128, 128, 3), dtype=np.uint8)
    fast = SkyPipeline(model, device="cpu")
    ref = SkyPipeline(model, device="cpu", fast=False)
    assert fast.fast is not None and ref.fast is None
    for stage in (1, 2):
        a = fast.predict_squares(squares, stage=stage, batch_size=2)
        b = ref.predict_squares(squares, stage=stage, batch_size=2)
        assert a.shape == b.shape == (3, FRAMES, 128, 128, 3) and a.dtype == np.uint8
        # fp32 differences below 1e-3 can only flip a rounding at a .5 boundary: at most 1 level
        assert np.abs(a.astype(int) - b.astype(int)).max() <= 1
        assert (a != b).mean() < 1e-3


@pytest.mark.parametrize("half", [False, True], ids=["fp32", "fp16"])
def test_loading_files_straight_into_the_fast_path_matches_the_reference(model, photos, tmp_path, half):
    """``SkyPipeline.from_pretrained`` folds the stored tensors without building the eager network; the
    result must be the reference's (stored fp16 weights are the same fp16 values widened)."""
    from skyforecast.model.weights import locate

    folder = tmp_path / "m"
    save_model(model, folder, half=half)
    pipe = SkyPipeline.from_pretrained(folder, device="cpu")
    assert pipe.fast is not None and pipe._model is None  # nothing eager built yet
    assert pipe.config == {"ngf": 4, "batch_stats": False}
    with torch.inference_mode():
        out = pipe.fast(photos)
        ref = pipe.model(_static(photos))  # built on first use, from the same files
    assert (out - ref).abs().max().item() < TOL
    loaded = FastMDGAN.from_files(locate(folder), "cpu")
    eager = FastMDGAN(pipe.model, "cpu")
    for x, y in ((loaded.base, eager.base), (loaded.refine, eager.refine)):
        for a, b in zip(x.enc + x.dec, y.enc + y.dec, strict=True):
            assert torch.equal(a.weight, b.weight) and torch.equal(a.bias, b.bias)  # bit-identical fold


def test_refine_net_of_its_own_width_takes_the_fast_path(photos, tmp_path):
    """A wider Refine-Net than Base-Net (``refine_ngf``) loads from its files into the fast path and
    predicts what the eager network predicts."""
    torch.manual_seed(3)
    model = randomise_batchnorm(MDGAN(ngf=2, refine_ngf=4), seed=4).eval()
    save_model(model, tmp_path / "m", half=True)
    pipe = SkyPipeline.from_pretrained(tmp_path / "m", device="cpu")
    assert pipe.config == {"ngf": 2, "batch_stats": False, "refine_ngf": 4}
    with torch.inference_mode():
        out = pipe.fast(photos)
        ref = pipe.model(_static(photos))
    assert pipe.model.refine_ngf == 4 and out.std().item() > 0.01
    assert (out - ref).abs().max().item() < TOL


@pytest.mark.skipif(not onednn_available(), reason="oneDNN prepacked ops not available in this torch build")
def test_weight_bound_layers_pack_only_on_their_second_call(model, photos):
    """The four deep layers run unpacked (one matrix product) on their first call and are packed on the
    second; both must give the reference's output."""
    fast = FastMDGAN(model, "cpu")
    deep = [fast.refine.enc[4], fast.refine.enc[5], fast.refine.dec[0], fast.refine.dec[1]]
    shallow = fast.refine.enc[:4] + fast.refine.dec[2:5]
    with torch.inference_mode():
        ref = model(_static(photos))
        first = fast(photos)
        assert all(not layer.packed and layer.unpacked_calls for layer in deep)
        assert all(layer.packed for layer in shallow)
        second = fast(photos)
        assert all(layer.packed for layer in deep)
    assert (first - ref).abs().max().item() < TOL
    assert (second - ref).abs().max().item() < TOL


@pytest.mark.parametrize(
    "transposed,kernel,stride,padding,size",
    [
        (False, (4, 4, 4), (2, 2, 2), (1, 1, 1), (4, 8, 8)),  # conv5
        (False, (2, 4, 4), (1, 1, 1), (0, 0, 0), (2, 4, 4)),  # conv6
        (True, (2, 4, 4), (1, 1, 1), (0, 0, 0), (1, 1, 1)),  # deconv1
        (True, (4, 4, 4), (2, 2, 2), (1, 1, 1), (2, 4, 4)),  # deconv2
        (True, (3, 4, 4), (1, 2, 2), (1, 1, 1), (3, 2, 5)),  # a kernel that is not a multiple in time
    ],
)
def test_gemm_call_equals_the_convolution(transposed, kernel, stride, padding, size):
    g = torch.Generator().manual_seed(5)
    cin, cout = 6, 5
    shape = (cin, cout, *kernel) if transposed else (cout, cin, *kernel)
    w, b = torch.randn(shape, generator=g), torch.randn(cout, generator=g)
    x = torch.randn(2, cin, *size, generator=g).contiguous(memory_format=torch.channels_last_3d)
    layer = _Conv(transposed, w, b, list(stride), list(padding), "leaky_relu")
    conv = torch.nn.functional.conv_transpose3d if transposed else torch.nn.functional.conv3d
    ref = torch.nn.functional.leaky_relu(conv(x, w, b, stride, padding), 0.2)
    with torch.inference_mode():
        out = layer.gemm_call(x)
    assert out.shape == ref.shape
    assert torch.allclose(out, ref, atol=1e-5)
