"""
Loading from a STAC catalog (not run: needs the network)
========================================================

This example is shown but not executed when the documentation is built, because it
queries Earth Search over the internet. ``load_stac`` searches with pystac-client,
loads lazily with odc-stac into a ``(time, band, y, x)`` cube of 0-1 reflectance,
chunked as ``remove()`` needs, with the CRS kept.
"""

import xcloudfree

cube = xcloudfree.load_stac(
    bbox=(12.70, 42.04, 12.76, 42.09),
    time="2023-05-01/2023-08-31",
    bands=["blue", "green", "red", "nir"],
    max_cloud_cover=80,
)  # Earth Search by default
# Planetary Computer instead (signs its asset URLs; needs `pip install planetary-computer`):
# cube = xcloudfree.load_stac(..., catalog="https://planetarycomputer.microsoft.com/api/stac/v1")
out = cube.cloudfree.remove()
out.to_zarr("cloudfree.zarr")
