"""skyforecast: one outdoor photo in, a predicted sky time-lapse out (MD-GAN, Xiong et al., CVPR 2018).

    >>> import skyforecast
    >>> frames = skyforecast.animate("photo.jpg", loop=True)  # (32, H, W, 3) uint8, as ``predict`` renders
    >>> pipe = skyforecast.SkyPipeline.from_pretrained()   # bundled default, or a folder / Hub repo id

Importing the package is cheap (no torch): the names below are looked up in their modules on first use
(a module ``__getattr__``, PEP 562), and torch is loaded by the submodules that need it.

The sub-packages show the architecture, from the photo's side to the file's: ``model`` (the networks, weights,
``SkyPipeline``), ``render`` (sky mask, steady field, renderer), ``evaluation``, ``training``, ``synth``, and
``io`` (photos, clips, videos, atomic files); ``api`` (``animate``), ``batch`` and the command line on top.
"""

__version__ = "0.1.0"

# The library's face: public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "SkyPipeline": "skyforecast.model.pipeline",
    "animate": "skyforecast.api",
}

__all__ = ["__version__", *_LAZY]

# Where each module lived before the package had sub-packages: the old dotted names (``skyforecast.media``,
# ``skyforecast.train``, ...) are in user code and documentation, so they import the very same module objects.
_MOVED = {
    "constants": "io.constants",
    "files": "io.files",
    "media": "io.media",
    "data": "io.clips",
    "gif": "io.gif",
    "yuv": "io.yuv",
    "validation": "training.validation",
    "models": "model.networks",
    "weights": "model.weights",
    "fast": "model.fast",
    "pipeline": "model.pipeline",
    "convert": "model.convert",
    "motion": "render.motion",
    "skymask": "render.skymask",
    "steady": "render.steady",
    "postprocess": "render.postprocess",
    "evaluate": "evaluation.scoring",
    "motion_metrics": "evaluation.motion_metrics",
    "train": "training.trainer",
    "trainconfig": "training.config",
    "runfolder": "training.runfolder",
    "losses": "training.losses",
    "tblog": "training.tblog",
    "distributed": "training.distributed",
    "card": "training.card",
    "cli_style": "cli.style",
    "interrupt": "cli.interrupt",
}


class _MovedModule:
    """Import hook for the ``_MOVED`` names: ``import skyforecast.media`` returns ``skyforecast.io.media``
    itself (not a copy, so patching one patches both), imported only when asked for."""

    def find_spec(self, fullname: str, path=None, target=None):
        package, _, name = fullname.rpartition(".")
        if package != __name__ or name not in _MOVED:
            return None
        from importlib.machinery import ModuleSpec

        return ModuleSpec(fullname, self)

    def create_module(self, spec):
        module = __import__(f"{__name__}.{_MOVED[spec.name.rpartition('.')[2]]}", fromlist=["_"])
        spec.loader_state = module.__spec__  # the import system sets the alias's spec on it; put it back
        return module

    def exec_module(self, module) -> None:
        module.__spec__ = module.__spec__.loader_state


__import__("sys").meta_path.append(_MovedModule())


def __getattr__(name: str):
    if name in _MOVED:  # ``skyforecast.media`` as an attribute, as before
        return __import__(f"{__name__}.{name}", fromlist=["_"])
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)  # (``importlib`` would cost 0.5 ms more)
    globals()[name] = value  # later lookups find it directly, without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
