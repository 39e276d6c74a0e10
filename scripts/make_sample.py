"""Build the real sample embedded in the package from ``../shared/data``.

Writes ``xcloudfree/data/roi146_timeseries.u16.xz`` (LZMA-compressed uint16
reflectance x 10000, lossless) and ``roi146_timeseries.json`` (dates, bands,
grid and CRS). Run from the repository root::

    python scripts/make_sample.py
"""

from __future__ import annotations

import json
import lzma
import sys
from pathlib import Path

import numpy as np
import rioxarray

ROOT = Path(__file__).resolve().parents[1]
SOURCE = ROOT.parent / "shared" / "data" / "sen12mscrts_roi146" / "timeseries"
TARGET = ROOT / "xcloudfree" / "data"
FILE_BANDS = (
    "B01",
    "B02",
    "B03",
    "B04",
    "B05",
    "B06",
    "B07",
    "B08",
    "B8A",
    "B09",
    "B10",
    "B11",
    "B12",
)
SAMPLE_BANDS = ("B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B11", "B12")


def main() -> int:
    files = sorted(SOURCE.glob("*.tif"))
    if not files:
        print(
            f"no GeoTIFFs under {SOURCE}: the shared data must lie beside the clone",
            file=sys.stderr,
        )
        return 1
    index = [FILE_BANDS.index(b) for b in SAMPLE_BANDS]
    first = rioxarray.open_rasterio(files[0])
    stack = np.stack([rioxarray.open_rasterio(f).values[index] for f in files])
    transform = first.rio.transform()
    meta = {
        "source": "SEN12MS-CR-TS ROI 146 (north-east of Rome), Sentinel-2 L1C TOA",
        "attribution": (
            "Contains modified Copernicus Sentinel data 2018. From SEN12MS-CR-TS, Ebel et al., "
            "IEEE TGRS 2022 (Technical University of Munich)."
        ),
        "dates": [f.stem for f in files],
        "bands": list(SAMPLE_BANDS),
        "shape": list(stack.shape),
        "dtype": "uint16",
        "scale": 1e-4,
        "crs": first.rio.crs.to_wkt(),
        "transform": list(transform)[:6],
    }
    TARGET.mkdir(parents=True, exist_ok=True)
    raw = np.ascontiguousarray(stack, dtype="<u2").tobytes()
    (TARGET / "roi146_timeseries.u16.xz").write_bytes(
        lzma.compress(raw, preset=9 | lzma.PRESET_EXTREME)
    )
    (TARGET / "roi146_timeseries.json").write_text(json.dumps(meta, indent=1) + "\n")
    size = (TARGET / "roi146_timeseries.u16.xz").stat().st_size
    print(f"wrote {stack.shape} uint16 sample, {size / 1e6:.2f} MB compressed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
