"""Where a model comes from. One rule everywhere (predict, evaluate, finetune):

1. ``--weights SPEC``: a local model folder (``config.json`` + ``model.safetensors``), a training run folder
   (its exported ``model/``), or a Hub repo id with an optional ``@revision`` (``user/sky-model@v1``),
   downloaded through huggingface_hub so its cache, ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and tokens apply;
2. else the ``SKYFORECAST_WEIGHTS`` environment variable, same syntax;
3. else the default model bundled with the package.

Only safetensors are ever read: pickled checkpoints can execute code when loaded.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import zipfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

# This module imports neither torch's network code (``models``) nor huggingface_hub at the top: prediction
# from a local folder loads its tensors straight into the fast path without them (about 0.3 s of imports).
# ``models`` never imports this module; the eager model's persistence (load, save, push) is at the end.
WEIGHTS_NAME = "model.safetensors"
CONFIG_NAME = "config.json"
# the two discriminators of the run that made a model (d1.*, d2.*): only `finetune` reads them
DISCRIMINATORS_NAME = "discriminators.safetensors"
ENV_VAR = "SKYFORECAST_WEIGHTS"
TRAIN_CHECKPOINT_FORMAT = "skyforecast-train-checkpoint"  # the "format" entry of `train`'s .pt files
_CONFIG_KEYS = {"ngf": int, "batch_stats": bool, "refine_ngf": int}  # refine_ngf: null = ngf
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

__all__ = [
    "DISCRIMINATORS_NAME",
    "ENV_VAR",
    "ModelFiles",
    "WeightsError",
    "load_discriminators",
    "save_discriminators",
    "WeightsSource",
    "bundled_weights_dir",
    "check_finite",
    "load_folder",
    "load_model",
    "locate",
    "open_tensors",
    "push_model",
    "resolve",
    "run_model_folder",
    "save_model",
]


class WeightsError(RuntimeError):
    """Weights that cannot be used: missing, corrupt, or not matching their config. One clear line."""


@dataclass(frozen=True)
class WeightsSource:
    """A resolved weights location: ``kind`` is ``folder``, ``hub`` or ``bundled``."""

    kind: str
    location: str
    revision: str | None = None
    origin: str = "--weights"

    def describe(self) -> str:
        rev = f"@{self.revision}" if self.revision else ""
        what = {"folder": "model folder", "hub": "Hub repo", "bundled": "bundled default model"}[self.kind]
        return f"{what} {self.location}{rev} (from {self.origin})"


def bundled_weights_dir() -> Path:
    """The folder the default model lives in: inside the installed package for a wheel install
    (``skyforecast/_bundled_weights``), or the repository's top-level ``weights/`` for a source checkout
    or editable install."""
    package = Path(__file__).resolve().parents[1]  # skyforecast/, this module's package's parent
    installed = package / "_bundled_weights"
    if installed.is_dir():
        return installed
    return package.parent / "weights"


def resolve(spec: str | os.PathLike | None = None) -> WeightsSource:
    """Turn a weights spec (or its absence) into a concrete source, without loading anything."""
    origin = "--weights"
    if spec is None or str(spec).strip() == "":
        env = os.environ.get(ENV_VAR, "").strip()
        if env:
            spec, origin = env, f"${ENV_VAR}"
        else:
            folder = bundled_weights_dir()
            if not (folder / WEIGHTS_NAME).is_file():
                raise WeightsError(
                    "no model weights available: no --weights given, $"
                    f"{ENV_VAR} is not set, and no bundled default model was found in {folder} "
                    "(this build does not ship one yet). Pass --weights with a model folder "
                    "(config.json + model.safetensors, e.g. one exported by `skyforecast train`) "
                    "or a Hub repo id like user/sky-model[@revision]."
                )
            return WeightsSource("bundled", str(folder), origin="the package")
    text = os.path.expanduser(str(spec).strip())
    path = Path(text)
    if path.is_dir():
        return WeightsSource("folder", str(run_model_folder(path) or path), origin=origin)
    if path.is_file():
        if path.name == WEIGHTS_NAME or path.suffix == ".safetensors":
            return WeightsSource("folder", str(path.parent), origin=origin)
        if path.suffix in {".pth", ".pt", ".bin", ".ckpt", ".pkl"}:
            if _is_training_checkpoint(path):
                raise WeightsError(
                    f"{path}: a checkpoint of a `skyforecast train` run, not a model folder. Export it "
                    f"first: skyforecast export {path} OUT, then --weights OUT"
                )
            raise WeightsError(
                f"{path}: pickled PyTorch checkpoints are not loaded (they can run code). "
                "Convert the authors' checkpoints with `skyforecast convert-official`, or pass a model "
                "folder with config.json + model.safetensors."
            )
        raise WeightsError(f"{path}: not a model folder or a .safetensors file")
    repo, _, revision = text.partition("@")
    looks_like_path = text.startswith((".", "/", "~")) or os.sep in repo.strip("/").replace("/", "", 1)
    if looks_like_path or not _REPO_ID.match(repo) or (revision == "" and "@" in text):
        raise WeightsError(
            f"{spec}: no such model folder, and not a Hub repo id (expected user/name or user/name@revision)"
        )
    return WeightsSource("hub", repo, revision or None, origin=origin)


def run_model_folder(path: Path) -> Path | None:
    """A training run folder (``skyforecast train --out RUN``) stands for the model it exported,
    ``RUN/model``, for every command that takes ``--weights``. ``None`` when ``path`` is not a run folder
    (a model folder holds its own ``model.safetensors``); a run folder with nothing exported yet is a
    ``WeightsError``."""
    if (path / WEIGHTS_NAME).exists():
        return None
    model = path / "model"
    is_run = (path / "checkpoints").is_dir() or (path / "metrics.jsonl").is_file()
    if (model / WEIGHTS_NAME).is_file() or (is_run and model.is_dir()):
        return model
    if is_run:
        raise WeightsError(
            f"{path}: a training run folder with no exported model/ yet; make one from a checkpoint with "
            f"skyforecast export {path} OUT"
        )
    return None


def _is_training_checkpoint(path: Path) -> bool:
    """Whether ``path`` was written by ``skyforecast train``: it lies in a run's ``checkpoints/`` folder, or
    it is a torch zip file whose pickle names our checkpoint format. The pickle's bytes are searched as bytes,
    never unpickled (a downloaded file stays inert)."""
    run = path.parent.parent
    if path.parent.name == "checkpoints" and ((run / "metrics.jsonl").is_file() or (run / "model").is_dir()):
        return True
    try:
        with zipfile.ZipFile(path) as archive:
            for info in archive.infolist():
                if info.filename.endswith("data.pkl") and info.file_size < 64 << 20:
                    return TRAIN_CHECKPOINT_FORMAT.encode() in archive.read(info)
    except (OSError, zipfile.BadZipFile, RuntimeError):
        return False
    return False


@dataclass(frozen=True)
class ModelFiles:
    """A model folder on disk whose config has been read and checked; the tensors are not read yet."""

    folder: str
    ngf: int
    batch_stats: bool
    label: str
    refine_ngf: int | None = None  # Refine-Net's width when it differs from ``ngf``

    @property
    def weights_file(self) -> Path:
        return Path(self.folder) / WEIGHTS_NAME

    @property
    def kwargs(self) -> dict:
        return {"ngf": self.ngf, "batch_stats": self.batch_stats, "refine_ngf": self.refine_ngf}

    @property
    def width(self) -> str:
        return width_label(self.ngf, self.refine_ngf)


def width_label(ngf: int, refine_ngf: int | None = None) -> str:
    """How error messages name a model's width: ``ngf=8``, or ``ngf=8, refine_ngf=16``."""
    return f"ngf={ngf}" if refine_ngf in (None, ngf) else f"ngf={ngf}, refine_ngf={refine_ngf}"


def locate(spec: str | os.PathLike | ModelFiles | None = None) -> ModelFiles:
    """Everything before the tensors: resolve ``spec``, fetch a Hub model into the cache, read and check
    ``config.json``, make sure ``model.safetensors`` is there. Raises ``WeightsError``. A ``ModelFiles``
    (already located) is returned as it is, so a caller that looked first does not fetch twice."""
    if isinstance(spec, ModelFiles):
        return spec
    source = resolve(spec)
    folder = source.location if source.kind != "hub" else _download(source)
    return _check_folder(folder, source.describe())


def _check_folder(folder: str | os.PathLike, label: str) -> ModelFiles:
    try:
        kwargs = _check_config(read_config(folder), Path(folder) / CONFIG_NAME)
        if not (Path(folder) / WEIGHTS_NAME).is_file():
            raise WeightsError(f"{folder}: no {WEIGHTS_NAME} in this folder")
    except WeightsError as e:
        raise WeightsError(f"cannot load {label}: {e}") from None
    ngf, refine = kwargs["ngf"], kwargs.get("refine_ngf")
    refine = None if refine == ngf else refine
    return ModelFiles(str(folder), ngf, kwargs.get("batch_stats", False), label, refine)


def load_model(spec: str | os.PathLike | None = None, *, device: str = "cpu"):
    """Resolve ``spec`` and load the model in eval mode on ``device``. Any failure is a ``WeightsError``
    whose message says what was tried and what went wrong."""
    files = locate(spec)
    return load_folder(files.folder, describe=files.label).to(device)


def load_folder(folder: str | os.PathLike, describe: str | None = None):
    """Load a local model folder into the eager network (``models.MDGAN``), strictly, in eval mode on the
    CPU. Every command that needs the eager network comes here (``load_model``, ``MDGAN.from_pretrained``);
    the network is built on the meta device, so nothing is initialised only to be replaced."""
    import torch

    from .networks import MDGAN

    files = _check_folder(folder, describe or str(folder))
    try:
        with torch.device("meta"):
            model = MDGAN(**files.kwargs)
        load_state(model, read_state_dict(files.weights_file), assign=True)
    except WeightsError as e:
        raise WeightsError(f"cannot load {files.label}: {e}") from None
    return model.eval()


@contextlib.contextmanager
def open_tensors(
    files: ModelFiles, expected: dict[str, tuple[int, ...]], framework: str = "pt"
) -> Iterator[Callable[[str], torch.Tensor]]:
    """Open ``model.safetensors`` without reading it, check its names and shapes against ``expected``
    (the model's state-dict shapes), and yield ``get(name)``, which reads one tensor in its stored dtype:
    a torch tensor, or a numpy array with ``framework="numpy"`` (which imports no torch).

    Reading tensor by tensor lets the caller convert each one and drop it before reading the next, so a
    model stored in fp16 never exists in memory twice. Errors are ``WeightsError``s naming the model."""
    from safetensors import safe_open

    path = files.weights_file
    try:
        try:
            handle = safe_open(str(path), framework=framework, device="cpu")
        except Exception as e:  # SafetensorError / OSError with terse texts
            raise _unreadable(path, e) from None
        with handle as f:
            shapes = {k: tuple(f.get_slice(k).get_shape()) for k in f.keys()}
            check_state_shapes(shapes, expected, files.width)

            def get(name: str) -> torch.Tensor:
                try:
                    tensor = f.get_tensor(name)
                except Exception as e:  # a file cut short after its header
                    raise _unreadable(path, e) from None
                return check_finite(path, name, tensor)

            yield get
    except WeightsError as e:
        raise WeightsError(f"cannot load {files.label}: {e}") from None


def check_state_shapes(shapes: dict[str, tuple], expected: dict[str, tuple], width: str) -> None:
    """Raise a ``WeightsError`` unless the stored tensors are exactly the ones the config's model has."""
    missing = sorted(set(expected) - set(shapes))
    unexpected = sorted(set(shapes) - set(expected))
    if missing or unexpected:
        raise WeightsError(
            f"weights do not match config {width}: "
            f"{len(missing)} missing tensors (e.g. {missing[:2]}), "
            f"{len(unexpected)} unexpected (e.g. {unexpected[:2]})"
        )
    for k, shape in shapes.items():
        if tuple(shape) != tuple(expected[k]):
            raise WeightsError(
                f"weights do not match config {width}: {k} has shape {tuple(shape)}, "
                f"config needs {tuple(expected[k])}"
            )


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Read a safetensors file; a truncated or corrupt file is a ``WeightsError`` naming it."""
    from safetensors.torch import load_file

    try:
        state = load_file(str(path), device="cpu")
    except Exception as e:  # safetensors raises SafetensorError / OSError with terse texts
        raise _unreadable(path, e) from None
    return {name: check_finite(path, name, tensor) for name, tensor in state.items()}


def check_finite(path: str | os.PathLike, name: str, tensor: torch.Tensor) -> torch.Tensor:
    """Return ``tensor`` if every value is finite, else raise a ``WeightsError`` naming the file and the
    tensor. Every route that reads stored weights calls this: a NaN or Inf (a diverged run, a bad
    conversion, a flipped bit) would otherwise predict a video of garbage without a word.

    The test is the largest magnitude, which is NaN or Inf if any value is (``max`` propagates NaN): 1.4 ms
    for the bundled 10 MB fp16 model, where ``isfinite(tensor).all()`` took 300 ms on this CPU. Numpy arrays
    (the numpy engine's reads) are checked the same way, without importing torch."""
    import numpy as np

    if isinstance(tensor, np.ndarray):
        if tensor.dtype.kind != "f" or tensor.size == 0 or np.isfinite(np.abs(tensor).max()):
            return tensor
        nan, inf, count = int(np.isnan(tensor).sum()), int(np.isinf(tensor).sum()), tensor.size
    else:
        import torch

        if not tensor.is_floating_point() or tensor.numel() == 0 or bool(torch.isfinite(tensor.abs().max())):
            return tensor
        nan, inf = int(torch.isnan(tensor).sum()), int(torch.isinf(tensor).sum())
        count = tensor.numel()
    what = " and ".join(f"{n} {kind}" for n, kind in ((nan, "NaN"), (inf, "Inf")) if n)
    raise WeightsError(
        f"{path}: tensor {name} holds {what} of its {count} values; these weights are broken "
        "(a diverged training run?) and are not used"
    )


def read_config(folder: str | os.PathLike) -> dict:
    """Read a model folder's config.json with a clear error for missing or malformed files."""
    path = Path(folder) / CONFIG_NAME
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"{folder}: no {CONFIG_NAME} in this folder") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise WeightsError(f"{path}: not valid JSON ({_first_line(e)})") from None
    if not isinstance(config, dict):
        raise WeightsError(f"{path}: expected a JSON object")
    return config


def _unreadable(path: str | os.PathLike, e: BaseException) -> WeightsError:
    return WeightsError(f"{path}: not a readable safetensors file ({_first_line(e)})")


def _first_line(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return text[0] if text else type(e).__name__


def _check_config(config: dict, path: Path) -> dict:
    kwargs = {}
    for key, kind in _CONFIG_KEYS.items():
        if key in config:
            value = config[key]
            if value is None and key == "refine_ngf":  # saved by a model whose two widths are equal
                continue
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise WeightsError(f"{path}: {key} must be a positive integer, got {value!r}")
            if kind is bool and not isinstance(value, bool):
                raise WeightsError(f"{path}: {key} must be true or false, got {value!r}")
            kwargs[key] = value
    if "ngf" not in kwargs:
        raise WeightsError(f"{path}: missing 'ngf' (the generator width)")
    return kwargs


def _download(source: WeightsSource) -> str:
    """Fetch config.json and model.safetensors into huggingface_hub's cache; return the snapshot folder.

    One quick metadata request comes first, without retries. huggingface_hub on its own retries a Hub
    that times out or answers 5xx for minutes (five tries, 60 s each); here a Hub that does not answer
    within ``HF_HUB_ETAG_TIMEOUT`` seconds (default 10) sends us straight to the local cache, and if the
    model is not cached the user gets one clear line at once instead of a long silent wait.
    """
    from huggingface_hub import constants, hf_hub_download

    offline = _offline(constants)
    problem = None if offline else _probe(source, constants)
    filename = CONFIG_NAME
    try:
        paths = []
        for filename in (CONFIG_NAME, WEIGHTS_NAME):
            paths.append(
                hf_hub_download(
                    source.location,
                    filename,
                    revision=source.revision,
                    local_files_only=offline or problem is not None,
                )
            )
    except Exception as e:  # every failure becomes one line naming the repo and the reason
        reason = _explain(problem or e, filename, offline, constants)
        raise WeightsError(f"{source.describe()}: {reason}") from None
    return str(Path(paths[0]).parent)


def _offline(constants) -> bool:
    is_offline = getattr(constants, "is_offline_mode", None)
    return bool(is_offline() if callable(is_offline) else constants.HF_HUB_OFFLINE)


def _probe(source: WeightsSource, constants) -> Exception | None:
    """One HEAD request for config.json, no retries. ``None`` when the Hub answered with the file."""
    from huggingface_hub import get_hf_file_metadata, hf_hub_url

    url = hf_hub_url(source.location, CONFIG_NAME, revision=source.revision)
    try:
        get_hf_file_metadata(url, timeout=constants.HF_HUB_ETAG_TIMEOUT)
    except Exception as e:  # network errors come from the HTTP library, whose classes vary by version
        return e
    return None


def _explain(e: BaseException, filename: str, offline: bool, constants) -> str:
    """The reason part of a Hub failure, in the user's terms. Order matters: huggingface_hub's
    LocalEntryNotFoundError is a subclass of EntryNotFoundError."""
    from huggingface_hub import errors as hf

    cache = constants.HF_HUB_CACHE
    not_cached = f"and the model is not in the local cache ({cache})"
    if offline:
        return (
            f"offline mode (HF_HUB_OFFLINE=1) {not_cached}; download it once while online, "
            "or pass a local model folder"
        )
    endpoint = constants.ENDPOINT
    if isinstance(e, hf.RevisionNotFoundError):
        return "this revision (branch, tag or commit) does not exist in the repo"
    if isinstance(e, hf.GatedRepoError):
        return "the repo is gated: accept its terms on the Hub and log in (`hf auth login`)"
    if isinstance(e, hf.RepositoryNotFoundError):
        return (
            f"no such repo on {endpoint} (and no local folder of that name), or it is private and "
            "no valid token was sent (`hf auth login` or $HF_TOKEN)"
        )
    if isinstance(e, hf.LocalEntryNotFoundError):
        return f"the Hub at {endpoint} could not be reached {not_cached}"
    if isinstance(e, hf.EntryNotFoundError):
        return (
            f"the repo has no {filename} (a model repo needs {CONFIG_NAME} + {WEIGHTS_NAME}; "
            "pickled .bin/.pth checkpoints are never loaded)"
        )
    if isinstance(e, hf.HfHubHTTPError):
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            return f"access denied (HTTP {status}): check your token (`hf auth login` or $HF_TOKEN)"
        if status is not None and status >= 500:
            return f"the Hub at {endpoint} answered HTTP {status} (a server error) {not_cached}; try later"
        return f"the Hub at {endpoint} answered HTTP {status} ({_one_line(e)}) {not_cached}"
    names = " ".join(c.__name__ for c in type(e).__mro__).lower()
    if "timeout" in names:
        return (
            f"the Hub at {endpoint} did not answer within {constants.HF_HUB_ETAG_TIMEOUT} s {not_cached} "
            "(on a slow link raise $HF_HUB_ETAG_TIMEOUT)"
        )
    if "connect" in names or isinstance(e, ConnectionError):
        return f"cannot connect to the Hub at {endpoint} {not_cached}; check the network"
    return f"download failed ({_one_line(e)})"


def _one_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__


# ---- the eager network's persistence: load a state strictly, save a folder, push to the Hub ----------
# A model folder is config.json (sorted keys) + model.safetensors + a README.md model card, the layout of
# huggingface_hub's PyTorchModelHubMixin, which wrote these folders before this code did; kept identical.

_CARD = {
    "library_name": "skyforecast",
    "license": "mit",
    "pipeline_tag": "image-to-video",
    "tags": ["md-gan", "model_hub_mixin", "pytorch_model_hub_mixin", "time-lapse", "video-prediction"],
}
_PAPER_URL = "https://arxiv.org/abs/1709.07592"


def load_state(model, state: dict[str, torch.Tensor], *, assign: bool = False) -> None:
    """``model.load_state_dict(state)`` for an ``MDGAN``, strict: a missing, unexpected or misshapen
    tensor is a ``WeightsError`` naming it and the model's width, and fp16/bf16 tensors (how the bundled
    model is stored) are widened to the model's fp32."""
    own = model.state_dict()
    check_state_shapes(
        {k: tuple(v.shape) for k, v in state.items()},
        {k: tuple(v.shape) for k, v in own.items()},
        width_label(model.ngf, model.refine_ngf),
    )
    # copies, not views into the file's memory map: aligned as a freshly built network's, file released
    copies = {k: v.to(own[k].dtype, copy=True) for k, v in state.items()}
    model.load_state_dict(copies, strict=True, assign=assign)


def save_model(model, folder: str | os.PathLike, *, half: bool = False) -> Path:
    """Write ``model`` as a model folder (created if needed; a README.md already there is kept).

    ``half=True`` stores floating tensors as fp16 (half the bytes); loading widens them back to fp32."""
    from safetensors.torch import save_file

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    state = {
        k: (v.detach().half() if half and v.is_floating_point() else v.detach()).contiguous().cpu()
        for k, v in model.state_dict().items()
    }
    metadata = {"format": "pt", "dtype": "float16"} if half else None  # as the Hub mixin wrote them
    save_file(state, str(folder / WEIGHTS_NAME), metadata=metadata)
    (folder / CONFIG_NAME).write_text(json.dumps(model.config, sort_keys=True, indent=2))
    card = folder / "README.md"
    if not card.exists():
        _model_card().save(card)
    return folder


def save_discriminators(states: dict[str, dict[str, torch.Tensor]], folder: str | os.PathLike) -> Path:
    """Write a run's discriminators (name -> state dict) beside its model, as fp16: a fine-tune from this
    model then resumes the adversarial game where it was instead of against untrained discriminators."""
    from safetensors.torch import save_file

    path = Path(folder) / DISCRIMINATORS_NAME
    flat = {
        f"{name}.{k}": (v.detach().half() if v.is_floating_point() else v.detach()).contiguous().cpu()
        for name, state in states.items()
        for k, v in state.items()
    }
    save_file(flat, str(path), metadata={"format": "pt", "dtype": "float16"})
    return path


def load_discriminators(spec: str | os.PathLike | None) -> dict[str, dict[str, torch.Tensor]]:
    """The discriminators stored with the model ``spec`` names ({"d1": state, "d2": state}, fp32), or {}
    when it has none (older folders, the authors' weights). A Hub model's file is fetched if it has one."""
    source = resolve(spec)
    path = Path(locate(spec).folder) / DISCRIMINATORS_NAME
    if source.kind == "hub" and not path.is_file():
        try:
            from huggingface_hub import hf_hub_download

            path = Path(hf_hub_download(source.location, DISCRIMINATORS_NAME, revision=source.revision))
        except Exception:  # the repo has none (or the Hub is away): start fresh discriminators
            return {}
    if not path.is_file():
        return {}
    out: dict[str, dict[str, torch.Tensor]] = {}
    for key, tensor in read_state_dict(path).items():
        name, _, rest = key.partition(".")
        out.setdefault(name, {})[rest] = tensor.float() if tensor.is_floating_point() else tensor
    if set(out) != {"d1", "d2"}:
        raise WeightsError(f"{path}: expected the tensors of d1 and d2, found {sorted(out)}")
    return out


def push_model(
    model,
    repo_id: str,
    *,
    private: bool | None = None,
    token: str | None = None,
    branch: str | None = None,
    commit_message: str = "Push model using huggingface_hub.",
) -> str:
    """Create ``repo_id`` on the Hub if needed and upload ``model`` as one commit; returns its URL."""
    import tempfile

    from huggingface_hub import HfApi

    api = HfApi(token=token)
    repo_id = api.create_repo(repo_id=repo_id, private=private, exist_ok=True).repo_id
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_model(model, Path(tmp) / repo_id)
        url = api.upload_folder(
            repo_id=repo_id, folder_path=folder, commit_message=commit_message, revision=branch
        )
    return str(url)


def _model_card():
    from huggingface_hub import ModelCard, ModelCardData
    from huggingface_hub.hub_mixin import DEFAULT_MODEL_CARD

    return ModelCard.from_template(
        card_data=ModelCardData(**_CARD),
        template_str=DEFAULT_MODEL_CARD,
        repo_url=None,
        paper_url=_PAPER_URL,
        docs_url=None,
    )
