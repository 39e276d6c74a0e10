"""Print ``name==version`` for the lower bounds ``pyproject.toml`` declares for xarray,
dask and distributed, so CI can install exactly the oldest releases it claims.

Usage::

    pip install $(python scripts/oldest_versions.py)
"""

from __future__ import annotations

import pathlib
import re

import tomllib

PACKAGES = ("xarray", "dask", "distributed")


def oldest(pyproject: pathlib.Path) -> list[str]:
    deps = tomllib.loads(pyproject.read_text())["project"]["dependencies"]
    pins = []
    for dep in deps:
        spec = r"([A-Za-z0-9_.-]+)(\[[^]]*\])?>=([0-9][0-9A-Za-z.]*)"
        m = re.fullmatch(spec, dep.replace(" ", ""))
        if m and m.group(1) in PACKAGES:
            pins.append(f"{m.group(1)}{m.group(2) or ''}=={m.group(3)}")
    if len(pins) != len(PACKAGES):
        raise SystemExit(f"expected lower bounds for {PACKAGES} in {pyproject}, found {pins}")
    return pins


if __name__ == "__main__":
    print(" ".join(oldest(pathlib.Path(__file__).resolve().parents[1] / "pyproject.toml")))
