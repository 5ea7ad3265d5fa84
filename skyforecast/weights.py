"""Where a model comes from. One rule everywhere (predict, evaluate, finetune):

1. ``--weights SPEC``: a local model folder (``config.json`` + ``model.safetensors``), or a Hub repo id with
   an optional ``@revision`` (``user/sky-model@v1``), downloaded through huggingface_hub so its cache,
   ``HF_HUB_OFFLINE``, ``HF_ENDPOINT`` and tokens all apply;
2. else the ``SKYFORECAST_WEIGHTS`` environment variable, same syntax;
3. else the default model bundled with the package.

Only safetensors are ever read: pickled checkpoints can execute code when loaded.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from .models import CONFIG_NAME, WEIGHTS_NAME, WeightsError

ENV_VAR = "SKYFORECAST_WEIGHTS"
_CONFIG_KEYS = {"ngf": int, "batch_stats": bool}
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")

__all__ = ["ENV_VAR", "WeightsError", "WeightsSource", "bundled_weights_dir", "load_model", "resolve"]


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
    here = Path(__file__).resolve().parent
    installed = here / "_bundled_weights"
    if installed.is_dir():
        return installed
    return here.parent / "weights"


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
        return WeightsSource("folder", str(path), origin=origin)
    if path.is_file():
        if path.name == WEIGHTS_NAME or path.suffix == ".safetensors":
            return WeightsSource("folder", str(path.parent), origin=origin)
        if path.suffix in {".pth", ".pt", ".bin", ".ckpt", ".pkl"}:
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


def load_model(spec: str | os.PathLike | None = None, *, device: str = "cpu"):
    """Resolve ``spec`` and load the model in eval mode on ``device``. Any failure is a ``WeightsError``
    whose message says what was tried and what went wrong."""
    source = resolve(spec)
    folder = source.location if source.kind != "hub" else _download(source)
    model = load_folder(folder, describe=source.describe())
    return model.to(device)


def load_folder(folder: str | os.PathLike, describe: str | None = None):
    """Load a local model folder strictly through the Hub mixin's ``from_pretrained``."""
    from .models import MDGAN, read_config

    label = describe or str(folder)
    try:
        config = read_config(folder)
        kwargs = _check_config(config, Path(folder) / CONFIG_NAME)
        if not (Path(folder) / WEIGHTS_NAME).is_file():
            raise WeightsError(f"{folder}: no {WEIGHTS_NAME} in this folder")
        return MDGAN.from_pretrained(str(folder), **kwargs)
    except WeightsError as e:
        raise WeightsError(f"cannot load {label}: {e}") from None


def _check_config(config: dict, path: Path) -> dict:
    kwargs = {}
    for key, kind in _CONFIG_KEYS.items():
        if key in config:
            value = config[key]
            if kind is int and (isinstance(value, bool) or not isinstance(value, int) or value < 1):
                raise WeightsError(f"{path}: {key} must be a positive integer, got {value!r}")
            if kind is bool and not isinstance(value, bool):
                raise WeightsError(f"{path}: {key} must be true or false, got {value!r}")
            kwargs[key] = value
    if "ngf" not in kwargs:
        raise WeightsError(f"{path}: missing 'ngf' (the generator width)")
    return kwargs


def _download(source: WeightsSource) -> str:
    """Fetch config.json and model.safetensors into huggingface_hub's cache; return the snapshot folder."""
    from huggingface_hub import constants, hf_hub_download
    from huggingface_hub import errors as hf_errors

    target = source.describe()
    try:
        config_path = hf_hub_download(source.location, CONFIG_NAME, revision=source.revision)
        hf_hub_download(source.location, WEIGHTS_NAME, revision=source.revision)
    except hf_errors.RevisionNotFoundError:
        raise WeightsError(f"{target}: revision {source.revision!r} does not exist") from None
    except hf_errors.GatedRepoError:
        raise WeightsError(
            f"{target}: the repo is gated; accept its terms and log in (`hf auth login`)"
        ) from None
    except hf_errors.RepositoryNotFoundError:
        raise WeightsError(
            f"{target}: repo not found, or private and no valid token (`hf auth login` or $HF_TOKEN)"
        ) from None
    except hf_errors.EntryNotFoundError:
        raise WeightsError(
            f"{target}: the repo has no {CONFIG_NAME} + {WEIGHTS_NAME} (only safetensors models are loaded)"
        ) from None
    except hf_errors.LocalEntryNotFoundError:
        if constants.HF_HUB_OFFLINE:
            raise WeightsError(
                f"{target}: offline mode (HF_HUB_OFFLINE=1) and the model is not in the local cache; "
                "download it once while online, or pass a local model folder"
            ) from None
        raise WeightsError(
            f"{target}: the Hub could not be reached and the model is not cached "
            f"(endpoint {constants.ENDPOINT}); check the network, or pass a local model folder"
        ) from None
    except hf_errors.HfHubHTTPError as e:
        status = getattr(getattr(e, "response", None), "status_code", None)
        if status in (401, 403):
            raise WeightsError(f"{target}: access denied (HTTP {status}); check your token") from None
        raise WeightsError(f"{target}: the Hub answered with an error ({_one_line(e)})") from None
    except (OSError, ValueError) as e:
        raise WeightsError(f"{target}: download failed ({_one_line(e)})") from None
    return str(Path(config_path).parent)


def _one_line(e: BaseException) -> str:
    lines = [line for line in str(e).splitlines() if line.strip()]
    return lines[0][:200] if lines else type(e).__name__
