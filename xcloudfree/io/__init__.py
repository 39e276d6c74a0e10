"""Reading and writing: STAC search and load, the sample data and files, COG and Zarr.

:mod:`.stac`
    :func:`~xcloudfree.load_stac` (pystac-client + odc-stac) and its helpers;
:mod:`.datasets`
    the sample series shipped in the package and readers of the shared test data;
:mod:`.writers`
    results of :func:`xcloudfree.remove` to Cloud-Optimized GeoTIFFs and Zarr.
"""

from . import datasets, stac, writers

__all__ = ["datasets", "stac", "writers"]
