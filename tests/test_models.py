"""The networks match MDGAN-SPEC.md: layer shapes, parameter counts, the skip structure, save/load."""

from __future__ import annotations

import json

import pytest
import torch
from conftest import randomise_batchnorm

from skyforecast.model.networks import MDGAN, Discriminator, Generator, state_shapes, widened_state
from skyforecast.model.weights import WeightsError, load_model, save_model

# (layer, channels as a multiple of ngf (or absolute when negative), T, H, W) from the spec's table
GENERATOR_SHAPES = [
    ("conv1", 1, 32, 64, 64),
    ("conv2", 2, 16, 32, 32),
    ("conv3", 4, 8, 16, 16),
    ("conv4", 8, 4, 8, 8),
    ("conv5", 16, 2, 4, 4),
    ("conv6", 16, 1, 1, 1),
    ("deconv1", 16, 2, 4, 4),
    ("deconv2", 8, 4, 8, 8),
    ("deconv3", 4, 8, 16, 16),
    ("deconv4", 2, 16, 32, 32),
    ("deconv5", 1, 32, 64, 64),
    ("deconv6", -3, 32, 128, 128),
]


def _capture(module: torch.nn.Module, names: list[str]) -> tuple[dict, list]:
    shapes, handles = {}, []
    for name in names:
        sub = getattr(module, name)
        handles.append(
            sub.register_forward_hook(lambda m, i, o, n=name: shapes.__setitem__(n, tuple(o.shape)))
        )
    return shapes, handles


def _video(n: int = 1, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, 32, 128, 128, generator=g) * 2 - 1


@pytest.mark.parametrize("ngf", [4, 32])
def test_generator_layer_shapes(ngf):
    gen = Generator(ngf).eval()
    shapes, handles = _capture(gen, [row[0] for row in GENERATOR_SHAPES])
    with torch.inference_mode():
        y = gen(_video(1))
    for h in handles:
        h.remove()
    for name, mult, t, hh, ww in GENERATOR_SHAPES:
        channels = -mult if mult < 0 else mult * ngf
        assert shapes[name] == (1, channels, t, hh, ww), name
    assert y.shape == (1, 3, 32, 128, 128)
    assert y.min() >= -1 and y.max() <= 1  # tanh output


def test_discriminator_shapes_and_exposed_activations():
    ndf = 4
    disc = Discriminator(ndf).eval()
    with torch.inference_mode():
        out = disc(_video(2))
    assert out.logit.shape == (2,)
    assert out.conv1.shape == (2, ndf, 32, 64, 64)
    assert out.conv3.shape == (2, 4 * ndf, 8, 16, 16)
    # conv1 activation is a LeakyReLU output (no BN): negative values are scaled by 0.2, never clipped
    assert out.conv1.min() < 0


def test_about_39_million_parameters_per_generator_at_ngf32():
    model = MDGAN(ngf=32)
    for gen in (model.base, model.refine):
        n = sum(p.numel() for p in gen.parameters())
        assert 38.5e6 < n < 39.5e6, n
    # no convolution has a bias, as the spec says
    assert all(
        m.bias is None for m in model.modules() if isinstance(m, (torch.nn.Conv3d, torch.nn.ConvTranspose3d))
    )


def _output_with_zeroed_skip(gen: Generator, layer: str, x: torch.Tensor) -> torch.Tensor:
    """Run ``gen`` with the activation of ``layer`` zeroed only where it feeds the skip connection:
    the next encoder layer still receives the true activation, so any change in the output can only
    have come through the skip path."""
    following = {"conv1": "conv2", "conv2": "conv3", "conv3": "conv4"}[layer]
    saved = {}

    def zero_out(module, inputs, output):
        saved["true"] = output.clone()
        return torch.zeros_like(output)

    def restore_input(module, inputs):
        return (saved["true"],)

    h1 = getattr(gen, layer).register_forward_hook(zero_out)
    h2 = getattr(gen, following).register_forward_pre_hook(restore_input)
    try:
        with torch.inference_mode():
            return gen(x)
    finally:
        h1.remove()
        h2.remove()


@pytest.mark.parametrize("layer", ["conv1", "conv2"])
def test_refine_net_lacks_the_two_outer_skips(layer):
    torch.manual_seed(0)
    model = MDGAN(ngf=4).eval()
    x = _video(1, seed=1)
    with torch.inference_mode():
        base_ref, refine_ref = model.base(x), model.refine(x)
    base_cut = _output_with_zeroed_skip(model.base, layer, x)
    refine_cut = _output_with_zeroed_skip(model.refine, layer, x)
    assert (base_cut - base_ref).abs().max() > 1e-3  # Base-Net uses this skip
    assert torch.equal(refine_cut, refine_ref)  # Refine-Net has no path from it but through the encoder


def test_refine_net_keeps_the_inner_skips():
    torch.manual_seed(0)
    model = MDGAN(ngf=4).eval()
    x = _video(1, seed=2)
    with torch.inference_mode():
        ref = model.refine(x)
    cut = _output_with_zeroed_skip(model.refine, "conv3", x)
    assert (cut - ref).abs().max() > 1e-3


def test_two_stage_forward_is_refine_of_base():
    torch.manual_seed(0)
    model = MDGAN(ngf=4).eval()
    x = _video(2, seed=3)
    with torch.inference_mode():
        y1 = model(x, stage=1)
        y2 = model(x, stage=2)
        assert torch.equal(y1, model.base(x))
        assert torch.equal(y2, model.refine(y1))
    with pytest.raises(ValueError):
        model(x, stage=3)


def test_save_load_round_trip_is_bit_identical(tmp_path):
    torch.manual_seed(0)
    model = MDGAN(ngf=4).eval()
    for m in model.modules():  # non-trivial BN statistics so that they must round-trip too
        if isinstance(m, torch.nn.BatchNorm3d):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 2.0)
    save_model(model, tmp_path / "m")
    assert json.loads((tmp_path / "m" / "config.json").read_text()) == {"ngf": 4, "batch_stats": False}
    assert (tmp_path / "m" / "model.safetensors").stat().st_size > 0
    loaded = load_model(tmp_path / "m")
    assert not loaded.training
    x = _video(2, seed=4)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
        assert torch.equal(model(x, stage=1), loaded(x, stage=1))


def test_half_precision_storage_loads_as_fp32(tmp_path):
    torch.manual_seed(0)
    model = MDGAN(ngf=4).eval()
    save_model(model, tmp_path / "h", half=True)
    loaded = load_model(tmp_path / "h")
    assert all(p.dtype == torch.float32 for p in loaded.parameters())
    x = _video(1, seed=5)
    with torch.inference_mode():
        assert (model(x) - loaded(x)).abs().max() < 2e-2


def test_config_mismatch_is_a_clear_error(tmp_path):
    save_model(MDGAN(ngf=4), tmp_path / "m")
    (tmp_path / "m" / "config.json").write_text(json.dumps({"ngf": 8, "batch_stats": False}))
    with pytest.raises(WeightsError, match="ngf=8"):
        load_model(tmp_path / "m")


def test_refine_net_of_its_own_width_round_trips_and_mismatches_name_both_widths(tmp_path):
    torch.manual_seed(0)
    model = MDGAN(ngf=2, refine_ngf=4).eval()
    assert model.base.conv1.weight.shape[0] == 2 and model.refine.conv1.weight.shape[0] == 4
    assert model.refine.deconv5[0].weight.shape[:2] == (8, 4)
    save_model(model, tmp_path / "m")
    config = json.loads((tmp_path / "m" / "config.json").read_text())
    assert config == {"ngf": 2, "batch_stats": False, "refine_ngf": 4}
    loaded = load_model(tmp_path / "m")
    assert loaded.refine_ngf == 4
    x = _video(1, seed=6)
    with torch.inference_mode():
        assert torch.equal(model(x), loaded(x))
    (tmp_path / "m" / "config.json").write_text(json.dumps({**config, "refine_ngf": 2}))
    with pytest.raises(WeightsError, match="config ngf=2: refine"):
        load_model(tmp_path / "m")


def test_state_shapes_are_those_of_the_built_model():
    """The fast path checks stored tensors against ``state_shapes`` (read off the block table) before it
    reads any: it must name exactly the built network's tensors, for both widths."""
    for ngf, refine_ngf in ((4, None), (2, 4)):
        model = MDGAN(ngf=ngf, refine_ngf=refine_ngf)
        assert state_shapes(ngf, refine_ngf) == {k: tuple(v.shape) for k, v in model.state_dict().items()}


def test_hub_style_spellings_save_and_load_the_same_folder(tmp_path):
    """``save_pretrained``/``save_half``/``from_pretrained`` on ``MDGAN`` go through ``weights``: same files
    (config, tensors, model card) and the same strict loading."""
    torch.manual_seed(0)
    model = randomise_batchnorm(MDGAN(ngf=2, refine_ngf=4)).eval()
    model.save_pretrained(tmp_path / "a")
    model.save_half(tmp_path / "b")
    save_model(model, tmp_path / "c")
    for name in ("config.json", "README.md"):
        assert (tmp_path / "a" / name).read_text() == (tmp_path / "c" / name).read_text()
    card = (tmp_path / "a" / "README.md").read_text()
    assert "library_name: skyforecast" in card and "pipeline_tag: image-to-video" in card
    x = _video(1, seed=8)
    with torch.inference_mode():
        assert torch.equal(MDGAN.from_pretrained(tmp_path / "a")(x), model(x))
        half = MDGAN.from_pretrained(tmp_path / "b")
        assert all(p.dtype == torch.float32 for p in half.parameters())
        assert 0 < (half(x) - model(x)).abs().max() < 2e-2
    (tmp_path / "a" / "model.safetensors").write_bytes(b"\0" * 10)
    with pytest.raises(WeightsError, match="not a readable safetensors file"):
        MDGAN.from_pretrained(tmp_path / "a")


@pytest.mark.parametrize("outer_skips", [True, False], ids=["base", "refine"])
def test_widened_generator_computes_the_same_video(outer_skips):
    """Net2WiderNet: each channel repeated k times, readers of repeated channels divided by k. Exact in
    eval mode (running statistics) and in train mode (a repeated channel has the same batch statistics)."""
    torch.manual_seed(0)
    narrow = randomise_batchnorm(Generator(2, outer_skips=outer_skips))
    wide = Generator(6, outer_skips=outer_skips)
    wide.load_state_dict(widened_state(narrow, 6))
    x = _video(2, seed=7)
    for mode in ("eval", "train"):
        narrow.train(mode == "train")
        wide.train(mode == "train")
        with torch.no_grad():
            a, b = narrow(x), wide(x)
        assert (a - b).abs().max().item() < 1e-5, mode
        assert a.std().item() > 0.05  # a video that is not flat, so the comparison means something
    noisy = Generator(6, outer_skips=outer_skips).eval()
    noisy.load_state_dict(widened_state(narrow, 6, noise=0.01))
    narrow.eval()
    with torch.no_grad():
        gap = (noisy(x) - narrow(x)).abs()
    assert 0 < gap.mean().item() < 0.02  # the copies differ (they can drift apart) and stay close
    with pytest.raises(ValueError, match="not a multiple"):
        widened_state(narrow, 5)


def test_batch_statistics_mode_uses_the_batch_and_leaves_running_stats_alone():
    torch.manual_seed(0)
    model = MDGAN(ngf=4, batch_stats=True).eval()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = _video(2, seed=6)
    with torch.inference_mode():
        y_batch = model(x)
        model.batch_stats = False
        y_running = model(x)
    assert not torch.equal(y_batch, y_running)
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert not model.base.conv2[1].training  # modes restored


@pytest.mark.parametrize(
    "transposed, cin, cout, kernel, stride, padding, shape",
    [
        (False, 3, 8, (3, 4, 4), (1, 2, 2), 1, (2, 3, 32, 64, 64)),  # conv1
        (False, 8, 16, 4, 2, 1, (2, 8, 16, 32, 32)),  # conv2..conv5
        (False, 16, 16, (2, 4, 4), 1, 0, (2, 16, 2, 4, 4)),  # conv6
        (True, 16, 16, (2, 4, 4), 1, 0, (2, 16, 1, 1, 1)),  # deconv1
        (True, 16, 8, 4, 2, 1, (2, 16, 8, 16, 16)),  # deconv2..deconv5
        (True, 8, 3, (3, 4, 4), (1, 2, 2), 1, (2, 8, 16, 32, 32)),  # deconv6
    ],
)
def test_framewise_training_convolutions_match_native_3d_kernels(
    transposed, cin, cout, kernel, stride, padding, shape
):
    """On CPU with gradients on, the networks compute 3D convolutions as sums of 2D ones (a much faster
    backward); outputs and gradients must match the native 3D kernels."""
    from skyforecast.model.networks import Conv3d, ConvTranspose3d

    torch.manual_seed(0)
    layer = (ConvTranspose3d if transposed else Conv3d)(cin, cout, kernel, stride, padding, bias=False)
    x = torch.randn(shape, requires_grad=True)
    y = layer(x)  # framewise
    native = super(type(layer), layer).forward(x)
    assert y.shape == native.shape
    assert (y - native).abs().max() < 1e-5
    g = torch.randn_like(y)
    ours = torch.autograd.grad(y, (x, layer.weight), g)
    ref = torch.autograd.grad(native, (x, layer.weight), g)
    for a, b in zip(ours, ref, strict=True):
        assert (a - b).abs().max() <= 1e-5 * b.abs().max() + 1e-6


def test_to_uint8_video_leaves_its_input_alone():
    # training's previews pass tensors still in use, some of them expanded views of one frame
    import torch

    from skyforecast.model.pipeline import to_uint8_video

    frame = torch.linspace(-1.5, 1.5, 3 * 4 * 4).reshape(1, 3, 1, 4, 4)
    video = frame.expand(1, 3, 5, 4, 4)
    before = video.clone()
    out = to_uint8_video(video)
    assert torch.equal(video, before)
    assert out.shape == (1, 5, 4, 4, 3) and out.dtype.name == "uint8"
    assert out.min() == 0 and out.max() == 255
