"""Convert the authors' released MD-GAN generator checkpoints (PyTorch 0.3 ``.pth`` state dicts, one per
stage) into a skyforecast model folder (``config.json`` + ``model.safetensors``).

Their layer names map onto ours (``models.Generator``)::

    downConv1 -> conv1        downConv2..5 -> convN.0     downBN2..5 -> convN.1     downConv6 -> conv6
    upConv1..5 -> deconvN.0   upBN1..5 -> deconvN.1      upConv6 -> deconv6.0

Files are read with ``torch.load(weights_only=True)`` only: a checkpoint is data, and a file that needs full
unpickling (it could run code) is refused. Their test script ran BatchNorm on the statistics of the batch
being predicted, so the converted config sets ``batch_stats=True``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import torch

from ..io.media import atomic_path
from .networks import MDGAN
from .weights import WeightsError, load_state, save_model


def their_to_ours(key: str) -> str | None:
    """Map one of their state-dict keys to ours (``None`` if it is not a generator tensor)."""
    m = re.fullmatch(r"(downConv|downBN|upConv|upBN)(\d)\.(\w+)", key)
    if not m:
        return None
    kind, n, leaf = m.group(1), int(m.group(2)), m.group(3)
    if kind == "downConv":
        if n in (1, 6):
            return f"conv{n}.{leaf}"
        return f"conv{n}.0.{leaf}" if 2 <= n <= 5 else None
    if kind == "downBN":
        return f"conv{n}.1.{leaf}" if 2 <= n <= 5 else None
    if kind == "upConv":
        return f"deconv{n}.0.{leaf}" if 1 <= n <= 6 else None
    return f"deconv{n}.1.{leaf}" if 1 <= n <= 5 else None  # upBN


def read_checkpoint(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a ``.pth`` state dict as data only, with a one-line ``WeightsError`` for anything else."""
    path = str(path)
    if not os.path.isfile(path):
        raise WeightsError(f"{path}: no such file")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # UnpicklingError for code-carrying pickles; RuntimeError/EOFError for damage
        raise WeightsError(f"{path}: cannot be read as a checkpoint ({_load_failure(path, e)})") from None
    if isinstance(obj, dict) and "state_dict" in obj and isinstance(obj["state_dict"], dict):
        obj = obj["state_dict"]
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise WeightsError(f"{path}: expected a state dict of tensors, got {type(obj).__name__}")
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items()}  # DataParallel prefix


def _load_failure(path: str, e: BaseException) -> str:
    """Why ``torch.load`` failed, in words: its own messages can be a bare number (a text file gives
    ``101``, the byte it tripped on) or an internal assertion."""
    with open(path, "rb") as f:
        head = f.read(2)
    if not head:
        return "the file is empty"
    if head != b"PK" and head[:1] != b"\x80":
        return "not a PyTorch checkpoint: it is neither a zip archive nor a pickle"
    if "weights_only" in str(e) or "Unsupported global" in str(e):
        return "it is not a plain state dict of tensors (refusing to unpickle arbitrary objects)"
    if head == b"PK":
        return "a zip archive PyTorch cannot read: damaged, cut short, or not a checkpoint"
    if isinstance(e, EOFError):
        return "the file ends early (truncated?)"
    text = str(e).strip().splitlines()
    first = text[0][:160] if text else ""
    return first if any(c.isalpha() for c in first) else f"damaged ({type(e).__name__} {first})".strip()


def generator_state(theirs: dict[str, torch.Tensor], label: str) -> dict[str, torch.Tensor]:
    """Rename one generator's tensors to ours; BatchNorm's ``num_batches_tracked`` (absent before PyTorch 0.4)
    is filled in. Unknown keys are an error, not silently dropped."""
    ours: dict[str, torch.Tensor] = {}
    unknown = []
    for key, value in theirs.items():
        name = their_to_ours(key)
        if name is None:
            unknown.append(key)
        else:
            ours[name] = value.detach().float() if value.is_floating_point() else value
    if unknown:
        raise WeightsError(f"{label}: unexpected keys for an MD-GAN generator, e.g. {sorted(unknown)[:3]}")
    for key in list(ours):
        if key.endswith(".running_mean"):
            tracked = key[: -len("running_mean")] + "num_batches_tracked"
            ours.setdefault(tracked, torch.tensor(0, dtype=torch.long))
    return ours


def convert_official(
    stage1: str | os.PathLike, stage2: str | os.PathLike, out: str | os.PathLike, overwrite: bool = False
) -> Path:
    """Write a model folder from the two generator checkpoints; returns its path. The width ``ngf`` is read
    off ``downConv1``; every tensor's shape is checked against our model, and the folder appears only when
    complete."""
    out = Path(out)
    if out.exists() and (not out.is_dir() or any(out.iterdir())) and not overwrite:
        raise WeightsError(f"{out}: already exists and is not empty (use --overwrite to replace it)")
    g1 = generator_state(read_checkpoint(stage1), str(stage1))
    g2 = generator_state(read_checkpoint(stage2), str(stage2))
    if "conv1.weight" not in g1:
        raise WeightsError(f"{stage1}: no downConv1.weight, so this is not an MD-GAN generator")
    ngf = int(g1["conv1.weight"].shape[0])
    model = MDGAN(ngf=ngf, batch_stats=True)
    state = {f"base.{k}": v for k, v in g1.items()}
    state.update({f"refine.{k}": v for k, v in g2.items()})
    load_state(model, state)  # WeightsError naming any missing key or wrong shape
    model.eval()
    with atomic_path(out, is_dir=True) as tmp:
        save_model(model, tmp)
    return out
