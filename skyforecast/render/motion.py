"""The earlier home of the sky mask, output sizes, flow and the per-frame transfer, kept so that code written
against ``skyforecast.render.motion`` keeps working: each name now lives in the module that owns its concern
(``skymask``: what moves; ``sizing``: output sizes; ``flow``: optical flow; ``transfer``: the per-frame
motion transfer)."""

from .flow import FLOW_METHODS, estimate_flows  # noqa: F401
from .sizing import (  # noqa: F401
    MAX_FRAME_PIXELS,
    _even_size,  # noqa: F401
    frame_size,
    load_photo_at,
    parse_resolution,
    photo_at,
)
from .skymask import (  # noqa: F401
    auto_mask,
    bounding_box,
    flow_travel,
    grabcut_sky,
    load_mask,
    refine_mask,
    resize_mask,
    sky_only,
    sky_prior,
    soft_alpha,
    working_image,
)
from .transfer import MotionTransfer, frame_gain, transfer  # noqa: F401
