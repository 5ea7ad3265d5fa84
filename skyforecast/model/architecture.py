"""The generator's layer table and the stored weights' names and shapes, without torch.

``GENERATOR_BLOCKS`` is the one description of the 3D U-Net (``MDGAN-SPEC.md``): ``networks.Generator``
is built from it, and both inference engines (``fast`` on torch, ``numpy_engine`` on numpy alone) read stored
weights with it without building a network. Nothing here imports torch, so the numpy engine can predict
without paying torch's import.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

__all__ = [
    "BN_EPS",
    "BN_KEYS",
    "GENERATOR_BLOCKS",
    "OUTER_SKIPS",
    "Block",
    "decode",
    "model_config",
    "state_shapes",
]


@dataclass(frozen=True)
class Block:
    """One generator block: a (transposed) 3D convolution without bias, then BatchNorm and an activation
    where the spec has them. ``GENERATOR_BLOCKS`` is the one description of the generator: ``Generator``
    is built from it, and the inference engines read stored weights with it without building a network."""

    name: str
    transposed: bool
    cin: int  # in multiples of ngf; 0 means the 3 colour channels
    cout: int
    kernel: tuple[int, int, int]
    stride: tuple[int, int, int]
    padding: tuple[int, int, int]
    batchnorm: bool
    act: str  # none | relu | leaky_relu | tanh

    def channels(self, ngf: int) -> tuple[int, int]:
        return (self.cin * ngf or 3), (self.cout * ngf or 3)

    @property
    def sequential(self) -> bool:
        """A bare convolution is its own module; with BatchNorm or an activation the block is an
        ``nn.Sequential`` (which puts ``.0.`` into the state-dict names)."""
        return self.batchnorm or self.act != "none"

    @property
    def prefix(self) -> str:
        """State-dict prefix of the convolution within its generator."""
        return f"{self.name}.0." if self.sequential else f"{self.name}."


BN_EPS = 1e-5  # nn.BatchNorm3d's default
BN_KEYS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")  # a BatchNorm's state
_K4, _S2, _P1 = (4, 4, 4), (2, 2, 2), (1, 1, 1)
GENERATOR_BLOCKS = (
    Block("conv1", False, 0, 1, (3, 4, 4), (1, 2, 2), _P1, False, "none"),
    Block("conv2", False, 1, 2, _K4, _S2, _P1, True, "leaky_relu"),
    Block("conv3", False, 2, 4, _K4, _S2, _P1, True, "leaky_relu"),
    Block("conv4", False, 4, 8, _K4, _S2, _P1, True, "leaky_relu"),
    Block("conv5", False, 8, 16, _K4, _S2, _P1, True, "leaky_relu"),
    Block("conv6", False, 16, 16, (2, 4, 4), (1, 1, 1), (0, 0, 0), False, "none"),
    Block("deconv1", True, 16, 16, (2, 4, 4), (1, 1, 1), (0, 0, 0), True, "relu"),
    Block("deconv2", True, 16, 8, _K4, _S2, _P1, True, "relu"),
    Block("deconv3", True, 8, 4, _K4, _S2, _P1, True, "relu"),
    Block("deconv4", True, 4, 2, _K4, _S2, _P1, True, "relu"),
    Block("deconv5", True, 2, 1, _K4, _S2, _P1, True, "relu"),
    Block("deconv6", True, 1, 0, (3, 4, 4), (1, 2, 2), _P1, False, "tanh"),
)
OUTER_SKIPS = {"base": True, "refine": False}  # MDGAN's two generators and their outer skip connections


def decode(
    layers: Sequence[Callable[[Any], Any]],
    encoded: Sequence[Any],
    outer_skips: bool,
    add: Callable[[Any, Any], Any],
    add_encoded: Callable[[Any, Any], Any] | None = None,
) -> Any:
    """The generator from its fourth encoder level on: conv5, conv6 and the decoder with its skips, for any
    array type. ``layers``: the 12 blocks in ``GENERATOR_BLOCKS`` order as callables; ``encoded``: the
    outputs of conv1..conv4; ``add(d, e)`` adds a skip; ``add_encoded`` adds levels 1-3 where an engine
    keeps them compact (Base-Net's 3-frame shortcut). The inference engines share this wiring;
    ``networks.Generator`` spells it out as the reference."""
    e1, e2, e3, e4 = encoded
    add3 = add_encoded or add
    e5 = layers[4](e4)
    d = layers[5](e5)
    d = add(layers[6](d), e5)
    d = add(layers[7](d), e4)
    d = add3(layers[8](d), e3)
    d = layers[9](d)
    if outer_skips:
        d = add3(d, e2)
    d = layers[10](d)
    if outer_skips:
        d = add3(d, e1)
    return layers[11](d)


def model_config(ngf: int, batch_stats: bool, refine_ngf: int | None = None) -> dict:
    """What a model folder's ``config.json`` holds: ``refine_ngf`` only when Refine-Net has a width of its
    own (older folders have none)."""
    config: dict = {"ngf": ngf, "batch_stats": batch_stats}
    if refine_ngf is not None and refine_ngf != ngf:
        config["refine_ngf"] = refine_ngf
    return config


def state_shapes(ngf: int, refine_ngf: int | None = None) -> dict[str, tuple[int, ...]]:
    """Names and shapes of an ``MDGAN`` state dict (``base.*``, ``refine.*``), read off
    ``GENERATOR_BLOCKS`` without building a network (building one even on the meta device takes 20 ms,
    which prediction's start-up would pay)."""
    shapes = {}
    for name, width in (("base", ngf), ("refine", refine_ngf or ngf)):
        shapes.update({f"{name}.{k}": v for k, v in _generator_shapes(width).items()})
    return shapes


def _generator_shapes(ngf: int) -> dict[str, tuple[int, ...]]:
    shapes: dict[str, tuple[int, ...]] = {}
    for blk in GENERATOR_BLOCKS:
        cin, cout = blk.channels(ngf)
        shapes[f"{blk.prefix}weight"] = (*((cin, cout) if blk.transposed else (cout, cin)), *blk.kernel)
        if blk.batchnorm:
            for key in BN_KEYS:
                shapes[f"{blk.name}.1.{key}"] = () if key == "num_batches_tracked" else (cout,)
    return shapes
