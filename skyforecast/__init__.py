"""skyforecast: one outdoor photo in, a predicted sky time-lapse out (MD-GAN, Xiong et al., CVPR 2018).

    >>> import skyforecast
    >>> pipe = skyforecast.SkyPipeline.from_pretrained()   # bundled default, or a folder / Hub repo id

Importing the package is cheap (no torch): the names below are looked up in their modules on first use
(a module ``__getattr__``, PEP 562), and torch is loaded by the submodules that need it.
"""

__version__ = "0.1.0"

# The library's face: public name -> the module that defines it, imported when the name is first used.
_LAZY = {
    "SkyPipeline": "skyforecast.pipeline",
    # "animate": "skyforecast.<module>",  # the one-call API (issue 14, item 4) is added here
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str):
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(__import__(module, fromlist=[name]), name)  # (``importlib`` would cost 0.5 ms more)
    globals()[name] = value  # later lookups find it directly, without this function
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
