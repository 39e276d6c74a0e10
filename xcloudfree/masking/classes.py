"""The classes of the cloud mask and their CF encoding.

Every pixel and date gets one class, stored as ``uint8`` with CF ``flag_values``
and ``flag_meanings``:

==========  =====  ===================================================
class       value  use for filling
==========  =====  ===================================================
clear           0  observed ground, kept
thick           1  thick (opaque) cloud, filled
thin            2  thin cloud or haze (surface partly visible), filled
shadow          3  cloud shadow, filled
snow            4  snow or ice: real ground, kept
nodata        255  no valid observation (NaN input), left as it is
==========  =====  ===================================================

``cloud_mask`` (bool) is "not usable as clear ground": thick, thin or shadow.
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "CLASSES",
    "CLEAR",
    "FILLED",
    "NODATA",
    "SCL_TO_CLASS",
    "SHADOW",
    "SNOW",
    "THICK",
    "THIN",
    "class_attrs",
    "from_scl",
]

CLEAR, THICK, THIN, SHADOW, SNOW = 0, 1, 2, 3, 4
NODATA = 255
#: Names of the classes a network predicts, in the order of its outputs.
CLASSES: tuple[str, ...] = ("clear", "thick_cloud", "thin_cloud_or_haze", "cloud_shadow", "snow")
#: Classes that make a pixel unusable as clear ground (``cloud_mask`` is True).
FILLED: tuple[int, ...] = (THICK, THIN, SHADOW)

#: Sentinel-2 L2A scene classification (SCL) to mask classes. 1 (saturated or
#: defective) is nodata; 2 (dark area), 4-7 (vegetation, bare, water, unclassified)
#: are clear; 8 and 9 (cloud medium / high probability) thick; 10 (thin cirrus) thin.
SCL_TO_CLASS: dict[int, int] = {
    0: NODATA, 1: NODATA, 2: CLEAR, 3: SHADOW, 4: CLEAR, 5: CLEAR, 6: CLEAR, 7: CLEAR,
    8: THICK, 9: THICK, 10: THIN, 11: SNOW,
}  # fmt: skip


def class_attrs(description: str) -> dict[str, object]:
    """CF attributes of a ``mask_class`` variable.

    Examples
    --------
    >>> class_attrs("test")["flag_meanings"]
    'clear thick_cloud thin_cloud_or_haze cloud_shadow snow nodata'
    """
    return {
        "long_name": "cloud mask class",
        "flag_values": np.array([CLEAR, THICK, THIN, SHADOW, SNOW, NODATA], dtype=np.uint8),
        "flag_meanings": " ".join((*CLASSES, "nodata")),
        "description": description,
    }


def from_scl(scl: np.ndarray) -> np.ndarray:
    """Map Sentinel-2 SCL codes to mask classes (unknown codes and NaN become nodata).

    Examples
    --------
    >>> from_scl(np.array([4, 8, 10, 3, 11, 0])).tolist()
    [0, 1, 2, 3, 4, 255]
    """
    lut = np.full(256, NODATA, dtype=np.uint8)
    for code, cls in SCL_TO_CLASS.items():
        lut[code] = cls
    scl = np.asarray(scl)
    valid = np.isfinite(scl) & (scl >= 0) & (scl < 256)
    out = np.full(scl.shape, NODATA, dtype=np.uint8)
    out[valid] = lut[scl[valid].astype(np.int64)]
    return out
