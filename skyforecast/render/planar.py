"""A steady renderer's frames made straight in BT.709 yuv420p, the planes an MP4 is encoded from.

An MP4 keeps colour at half the resolution in each direction: rendering RGB and converting it afterwards
warps three full-size channels to keep a quarter of two of them. Here the sky source is converted once
(luma at full size, chroma averaged over 2x2 blocks, as ``io.yuv.I420`` does) and each frame warps the luma
at full size and the chroma at half size, with the same displacement, phase blend and sky mask as
``SteadyRenderer.__getitem__``. 1920x1080, 32 frames: the renderer's work falls by about half and the
conversion of its output goes away; the decoded MP4 stays within a level of one rendered through RGB
(``tests/test_planar.py``). The photo's still pixels are bit for bit the planes ``I420`` makes of the
photo. Renderers with a light trend or a night glow (not linear in these planes) convert their RGB
frames instead."""

from __future__ import annotations

import cv2
import numpy as np

from ..io.yuv import BAND, I420, MATRIX
from .light import apply, yuv_offset
from .sampling import SampleMap
from .steady import SteadyRenderer, composite, edge_parts


def planes_of(rgb: np.ndarray, odd: tuple[int, int] = (0, 0)) -> tuple[np.ndarray, np.ndarray]:
    """(luma (H, W), chroma (H/2, W/2, 2) rounded up) uint8 of an RGB image of any size, as ``I420`` makes
    them; the chroma's 2x2 blocks start ``odd`` (rows, columns) in, and a last row or column left alone is
    repeated to make its block. Converted in bands of ``BAND`` rows, as ``I420`` does: a wrapped sky source
    can be several times the frame, and its whole YCbCr copy would be the largest buffer of a render."""
    h, w = rgb.shape[:2]
    oy, ox = odd
    luma = np.empty((h, w), np.uint8)
    chroma = np.empty(((h - oy + 1) // 2, (w - ox + 1) // 2, 2), np.uint8)
    if oy:
        luma[:oy] = cv2.transform(rgb[:oy], MATRIX)[..., 0]
    for top in range(oy, h, BAND):  # BAND is even: every band starts a row of chroma blocks
        bottom = min(top + BAND, h)
        full = cv2.transform(rgb[top:bottom], MATRIX)
        luma[top:bottom] = full[..., 0]
        part = full[:, ox:]
        if part.shape[0] % 2 or part.shape[1] % 2:
            part = cv2.copyMakeBorder(part, 0, part.shape[0] % 2, 0, part.shape[1] % 2, cv2.BORDER_REPLICATE)
        half = cv2.resize(part, (part.shape[1] // 2, part.shape[0] // 2), interpolation=cv2.INTER_AREA)
        row = (top - oy) // 2
        chroma[row : row + len(half)] = half[..., 1:]
    return luma, chroma


class PlanarFrames:
    """``frames[t]``: frame t of ``renderer`` as one planar yuv420p buffer (Y, then Cb, then Cr; what
    ``I420`` returns), reused by the next call. The renderer's frames must have even sides. The planes are
    set up at the first frame asked for, so a renderer written only as RGB (GIF, PNG) pays nothing."""

    def __init__(self, renderer: SteadyRenderer):
        self.renderer = renderer
        self._ready = False

    def _set_up(self) -> None:
        self._ready = True
        r = self.renderer
        ph, pw = r.photo.shape[:2]
        self.rgb = r.gain is not None or r.glow is not None  # not linear here: convert the RGB frames
        if self.rgb:
            self._convert = I420(pw, ph)
            return
        self.photo = I420(pw, ph)(r.photo).copy()
        self.out = np.empty_like(self.photo)
        if r.box[1] <= r.box[0]:  # no sky: every frame is the photo
            return
        y, cb, cr = self._views(self.photo)
        self._still_uv = np.ascontiguousarray(np.dstack([cb, cr]))
        y0, y1, x0, x1 = r.box
        self.cbox = (y0 // 2, (y1 + 1) // 2, x0 // 2, (x1 + 1) // 2)
        cy0, cy1, cx0, cx1 = self.cbox
        # chroma pixel (i, j) sits at full-size (2i + 0.5, 2j + 0.5); the source's chroma pixel k covers its
        # full pixels 2k + odd and 2k + odd + 1, where odd = pad % 2 lines its 2x2 blocks up with the photo's
        # (an odd pad would pair the photo's first row with one of the pad's): the full-size map
        # x + pad + D is j + pad // 2 + D / 2 in chroma pixels
        self._odd = (r._vpad % 2, r._pad % 2)
        # the chroma's map at half size reuses the renderer's full-size buffer, free once the luma has been
        # warped (``_warp``: the luma first)
        cbig = r._big.reshape(-1)[: (ph // 2) * (pw // 2) * 2].reshape(ph // 2, pw // 2, 2)
        self._csampler = SampleMap(r._gsize, (pw // 2, ph // 2), self.cbox, (r._pad // 2, r._vpad // 2), cbig)
        self._moved_shapes = ((y1 - y0, x1 - x0), (cy1 - cy0, cx1 - cx0, 2))
        self._ymoved: list[np.ndarray] = []  # per phase, made when a frame first needs it
        self._cmoved: list[np.ndarray] = []
        self._sources: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}
        if r.alpha is not None:
            half = cv2.resize(r.alpha.astype(np.float32), (pw // 2, ph // 2), interpolation=cv2.INTER_AREA)
            self._yedge = (r._inside, r._band)
            self._cedge = edge_parts(half[cy0:cy1, cx0:cx1], r.STRIP)

    def __len__(self) -> int:
        return len(self.renderer)

    def _views(self, buf: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        ph, pw = self.renderer.photo.shape[:2]
        flat, q = buf.reshape(-1), ph * pw // 4
        return (
            buf[:ph],
            flat[ph * pw : ph * pw + q].reshape(ph // 2, pw // 2),
            flat[ph * pw + q :].reshape(ph // 2, pw // 2),
        )

    def _planes(self, source: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The planes of a wrapped sky source, made once per source (a long video has one per cycle)."""
        key = id(source)
        if key not in self._sources:
            self._sources = {k: v for k, v in self._sources.items() if any(v[0] is s for s in self._live())}
            self._sources[key] = (source, *planes_of(source, self._odd))
        return self._sources[key][1:]

    def _live(self) -> list[np.ndarray]:
        return list(self.renderer._wrapped.values())

    def __getitem__(self, t: int) -> np.ndarray:
        r = self.renderer
        if not -len(r) <= t < len(r):
            raise IndexError(f"frame {t} of {len(r)}")
        if not self._ready:
            self._set_up()
        if self.rgb:
            return self._convert(r[t])
        t %= len(r)
        plan = r.plan(t)
        out = self.out
        out[...] = self.photo
        if plan is None:
            return out
        warps, first = plan
        y0, y1, x0, x1 = r.box
        cy0, cy1, cx0, cx1 = self.cbox
        moved = [self._warp(disp, *self._planes(source), k) for k, (disp, source) in enumerate(warps)]
        ym, cm = moved[0]
        if first is not None:
            ph, pw = r.photo.shape[:2]
            wy = cv2.resize(first, (pw, ph), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
            wc = cv2.resize(first, (pw // 2, ph // 2), interpolation=cv2.INTER_LINEAR)[cy0:cy1, cx0:cx1]
            ym = cv2.blendLinear(ym, moved[1][0], wy, 1.0 - wy)
            cm = cv2.blendLinear(cm, moved[1][1], wc, 1.0 - wc)
        offset = r.light_offset(warps, first)
        if offset is not None:  # the sky's light kept in place, as in RGB (an offset is linear here too)
            offset = yuv_offset(offset)
            ph, pw = r.photo.shape[:2]
            apply(ym, offset[..., 0], (pw, ph), r.box)
            apply(cm, offset[..., 1:], (pw // 2, ph // 2), self.cbox)
        y, cb, cr = self._views(out)
        if r.alpha is None:
            y[y0:y1, x0:x1] = ym
            uv = cm
        else:  # the photo's planes outside the sky, bit for bit; the feathered edge blended
            uv = np.dstack([cb[cy0:cy1, cx0:cx1], cr[cy0:cy1, cx0:cx1]])
            composite(y[y0:y1, x0:x1], ym, self.photo[y0:y1, x0:x1], *self._yedge)
            composite(uv, cm, self._still_uv[cy0:cy1, cx0:cx1], *self._cedge)
        cv2.extractChannel(uv, 0, dst=cb[cy0:cy1, cx0:cx1])
        cv2.extractChannel(uv, 1, dst=cr[cy0:cy1, cx0:cx1])
        return out

    def _warp(self, disp: np.ndarray, luma: np.ndarray, chroma: np.ndarray, k: int):
        """The box's luma and chroma of a source's planes sampled at x + D (``SteadyRenderer._warp``)."""
        r = self.renderer
        if len(self._ymoved) <= k:
            self._ymoved.append(np.empty(self._moved_shapes[0], np.uint8))
            self._cmoved.append(np.empty(self._moved_shapes[1], np.uint8))
        ym = cv2.remap(
            luma, r.sample_map(disp), None, r._interp, dst=self._ymoved[k], borderMode=cv2.BORDER_REFLECT
        )
        # the chroma's map: the same displacement at half size, in half-size pixels
        cmap = self._csampler.sample(disp, r._gscale * 0.5)
        cm = cv2.remap(chroma, cmap, None, r._interp, dst=self._cmoved[k], borderMode=cv2.BORDER_REFLECT)
        return ym, cm


__all__ = ["PlanarFrames", "planes_of"]
