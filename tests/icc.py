"""ICC profiles built from published colour-space definitions, for tests: photos with an embedded profile
(Adobe RGB from cameras, Display P3 from phones) without shipping anyone's profile file."""

from __future__ import annotations

import struct

import numpy as np

D65 = np.array([0.95047, 1.0, 1.08883])
D50 = np.array([0.96422, 1.0, 0.82521])
BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
SRGB_XY = [(0.64, 0.33), (0.30, 0.60), (0.15, 0.06)]
P3_XY = [(0.680, 0.320), (0.265, 0.690), (0.150, 0.060)]  # Display P3: DCI-P3 primaries, D65, sRGB curve
# sRGB's transfer curve as an ICC parametric curve (type 3): Y = (aX + b)^g above d, cX below
SRGB_CURVE = (
    b"para\0\0\0\0"
    + struct.pack(">HH", 3, 0)
    + b"".join(
        struct.pack(">i", round(v * 65536)) for v in (2.4, 1 / 1.055, 0.055 / 1.055, 1 / 12.92, 0.04045)
    )
)


def rgb_to_xyz(primaries) -> np.ndarray:
    """The RGB -> XYZ matrix (D65) of linear RGB with these xy primaries and a D65 white."""
    xyz = np.array([[x / y, 1.0, (1 - x - y) / y] for x, y in primaries]).T
    return xyz * np.linalg.solve(xyz, D65)


def matrix_profile(name: str, primaries, curve: bytes) -> bytes:
    """An ICC v2 display profile (matrix/TRC): these primaries with a D65 white, colorants adapted to D50
    (Bradford), one tone curve (an ICC ``curv`` or ``para`` tag) for all three channels."""
    adapt = np.linalg.inv(BRADFORD) @ np.diag(BRADFORD @ D50 / (BRADFORD @ D65)) @ BRADFORD
    colorants = adapt @ rgb_to_xyz(primaries)

    def xyz(v) -> bytes:
        return b"XYZ \0\0\0\0" + b"".join(struct.pack(">i", round(c * 65536)) for c in v)

    text = name.encode()
    tags = [
        # ASCII description, then empty Unicode and ScriptCode parts
        (b"desc", b"desc\0\0\0\0" + struct.pack(">I", len(text) + 1) + text + b"\0" + bytes(78)),
        (b"cprt", b"text\0\0\0\0no copyright, test data\0"),
        (b"wtpt", xyz(D50)),
        (b"rXYZ", xyz(colorants[:, 0])),
        (b"gXYZ", xyz(colorants[:, 1])),
        (b"bXYZ", xyz(colorants[:, 2])),
        *((tag, curve) for tag in (b"rTRC", b"gTRC", b"bTRC")),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for tag, data in tags:
        data += bytes(-len(data) % 4)
        table += tag + struct.pack(">II", offset + len(body), len(data))
        body += data
    size = offset + len(body)
    header = (
        struct.pack(">I", size) + b"\0\0\0\0" + struct.pack(">I", 0x02100000) + b"mntrRGB XYZ "
        + struct.pack(">6H", 2026, 1, 1, 0, 0, 0) + b"acsp" + bytes(24) + struct.pack(">I", 0)
        + xyz(D50)[8:] + bytes(48)
    )  # fmt: skip
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def srgb_decode(v: np.ndarray) -> np.ndarray:
    v = np.asarray(v, float) / 255.0
    return np.where(v <= 0.04045, v / 12.92, ((v + 0.055) / 1.055) ** 2.4)


def srgb_encode(linear: np.ndarray) -> np.ndarray:
    v = np.clip(linear, 0, 1)
    return np.round(255 * np.where(v <= 0.0031308, 12.92 * v, 1.055 * v ** (1 / 2.4) - 0.055))


def srgb_to_p3(rgb) -> np.ndarray:
    """The Display P3 numbers of sRGB colours (..., 3), from the two spaces' definitions (same curve)."""
    linear = srgb_decode(rgb)
    return srgb_encode(linear @ (np.linalg.solve(rgb_to_xyz(P3_XY), rgb_to_xyz(SRGB_XY))).T)
