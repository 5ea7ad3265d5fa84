"""Which engine predicts: torch (``pipeline.SkyPipeline``) or numpy alone (``numpy_engine.NumpyPipeline``).

A one-photo ``predict`` spends most of its time importing torch (1.0-1.7 s on a laptop-class CPU) for a
prediction that takes 0.06 s in torch and 0.2 s in numpy. So ``auto`` predicts one photo with the numpy
engine, which imports no torch, and more photos, a GPU asked for by name, or a model that needs batch
statistics with torch. The numpy engine runs on the CPU even where a GPU exists: for one photo starting
torch and the GPU costs more than the whole prediction. Both give the same videos to within a level in
about one value in 100,000 (float rounding).

Nothing here imports torch; ``load_pipeline`` imports it only when torch is the engine.
"""

from __future__ import annotations

import os

from .weights import ModelFiles, locate

ENGINES = ("auto", "torch", "numpy")
# ``auto`` predicts up to this many photos with numpy. One 1080p photo: 1.7-2.1 s against 2.8-2.9 s with
# torch; two: 3.7-4.6 s against 4.0-4.1 s (torch's import hides the first photos' sky masks, which with numpy
# compete with the model; measured with the bundled model on a 2-core CPU).
NUMPY_MOST_PHOTOS = 1

__all__ = ["ENGINES", "NUMPY_MOST_PHOTOS", "load_pipeline", "pick_engine"]


def pick_engine(engine: str, device: str | None, photos: int, files: ModelFiles) -> str:
    """``torch`` or ``numpy`` for ``engine`` (auto, torch or numpy) on ``device`` with ``photos`` to predict.
    A ``ValueError`` when the numpy engine is asked for where it cannot run."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}: choose {', '.join(ENGINES)}")
    on_cpu = device is None or str(device) in ("auto", "cpu")
    if engine == "numpy":
        if not on_cpu:
            raise ValueError(f"the numpy engine runs on the CPU only, not on device {device!r}")
        if files.batch_stats:
            raise ValueError(
                f"{files.label} normalises with batch statistics (batch_stats=True), which only the torch "
                "engine computes"
            )
        return "numpy"
    if engine == "torch" or not on_cpu or files.batch_stats or photos > NUMPY_MOST_PHOTOS:
        return "torch"
    return "numpy"


def load_pipeline(
    weights: str | os.PathLike | None = None,
    device: str | None = "auto",
    *,
    engine: str = "auto",
    photos: int = 1,
):
    """The pipeline that predicts ``photos`` photos soonest (``pick_engine``): a ``NumpyPipeline`` or a
    ``SkyPipeline``. Both have ``predict_squares`` and are called on photos the same way."""
    files = locate(weights)
    if pick_engine(engine, device, photos, files) == "numpy":
        from .numpy_engine import NumpyMDGAN, NumpyPipeline

        return NumpyPipeline(NumpyMDGAN.from_files(files), files)
    from .pipeline import SkyPipeline

    return SkyPipeline.from_pretrained(files, device=device)
