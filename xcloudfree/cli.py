"""The ``xcloudfree`` command line: ``demo`` on the embedded sample, ``remove`` on a STAC query."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path

import xarray as xr

from .io.writers import FORMATS as _FORMATS
from .io.writers import write_result

__all__ = ["main", "write_result"]

# Clear sample dates held out of the shipped model's training (scripts/shared_data.py).
_HELDOUT = ["2018-06-10", "2018-07-30", "2018-08-09", "2018-09-03"]


def _save_quicklook(cube: xr.DataArray, result: xr.Dataset, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    from .plotting import plot

    fig = plot(cube, result)
    fig.savefig(path, dpi=80)


def _demo(args: argparse.Namespace) -> int:
    from . import metrics
    from ._progress import dask_progress
    from ._progress import progress_bar as tqdm
    from .io import datasets
    from .removal import remove
    from .simulation import simulate_clouds

    out = Path(args.out)
    steps = tqdm(total=5, desc="xcloudfree demo", disable=args.quiet, unit="step")
    steps.set_postfix_str("loading the embedded sample")
    cube = datasets.sample_timeseries(chunks={"time": -1, "y": 128, "x": 128})
    steps.update()
    steps.set_postfix_str("scoring on simulated clouds")
    # The sample has no truth under its real clouds, so the metrics come from real
    # clouds of its own cloudy dates laid over clear dates (see simulate_clouds).
    # By default the dates the shipped model never saw in training are scored.
    # Scored first, and its arrays dropped before the real run, so the peak memory
    # is that of one removal, not of both side by side.
    sim = simulate_clouds(cube.compute(), targets=_HELDOUT[: args.targets], seed=args.seed)
    sim_out = remove(
        sim.cloudy, method=args.method, mask=args.mask, adapt=args.adapt, progress=not args.quiet
    )
    pick = {"time": sim.targets}
    score = metrics.summary(
        sim_out["reflectance"].sel(pick), sim.truth.sel(pick), mask=sim.mask.sel(pick)
    )
    case = {
        "description": "real clouds of cloudy sample dates pasted over clear dates",
        "targets": [str(t)[:10] for t in sim.targets],
        "donors": [str(t)[:10] for t in sim.donors],
        "seed": args.seed,
    }
    del sim, sim_out
    steps.update()
    steps.set_postfix_str(f"removing clouds ({args.method})")
    with dask_progress(not args.quiet):
        result = remove(
            cube, method=args.method, mask=args.mask, adapt=args.adapt, progress=False
        ).persist()
    steps.update()
    steps.set_postfix_str(f"writing {args.format}")
    written = write_result(result, out, args.format, progress=False)
    steps.update()
    steps.set_postfix_str("quicklook")
    quicklook = out / "quicklook.png"
    _save_quicklook(cube, result, quicklook)
    report = {
        "method": args.method,
        "case": case,
        "metrics": {k: float(v) for k, v in score.data_vars.items()},
        "cloud_fraction": float(result["cloud_mask"].mean()),
    }
    (out / "metrics.json").write_text(json.dumps(report, indent=2) + "\n")
    steps.update()
    steps.close()
    print(f"wrote {', '.join(str(p) for p in [*written, quicklook, out / 'metrics.json'])}")
    return 0


def _remove(args: argparse.Namespace) -> int:
    from .io.stac import load_stac
    from .removal import remove

    cube = load_stac(
        tuple(args.bbox),
        args.time,
        catalog=args.catalog,
        collection=args.collection,
        bands=args.bands,
        resolution=args.resolution,
        crs=args.crs,
        max_cloud_cover=args.max_cloud_cover,
        scl=args.mask == "scl",
    )
    print(f"loaded {dict(cube.sizes)} lazily from {args.catalog}")
    result = remove(cube, method=args.method, mask=args.mask, adapt=args.adapt)
    written = write_result(result, Path(args.out), args.format, progress=not args.quiet)
    print(f"wrote {', '.join(str(p) for p in written)}")
    return 0


class _Defaults(argparse.ArgumentDefaultsHelpFormatter):
    """Show defaults that say something (not those of required options or flags)."""

    def _get_help_string(self, action: argparse.Action) -> str | None:
        if action.required or action.default in (None, False):
            return action.help
        return super()._get_help_string(action)


def _resolution(text: str) -> float | None:
    if text.lower() == "native":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a pixel size: give a number in CRS units or 'native'"
        ) from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"resolution must be positive, not {text}")
    return value


def _parser() -> argparse.ArgumentParser:
    from . import __version__
    from .io.stac import DEFAULT_CATALOG, DEFAULT_COLLECTION
    from .masking import MASK_METHODS
    from .removal import METHODS

    defaults = _Defaults
    parser = argparse.ArgumentParser(
        prog="xcloudfree",
        description="Remove clouds from Sentinel-2 image time series.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--method", default="hybrid", choices=METHODS,
        help="cloud-removal method: hybrid is the shipped STGAN + CycleGAN model",
    )  # fmt: skip
    common.add_argument(
        "--mask", default="fused", choices=MASK_METHODS,
        help="cloud, haze and shadow mask: fused joins ukis-csmask's cloud and shadow with "
        "the haze of the shipped temporal mask network; temporal is that network alone; scl "
        "loads the L2A scene classification with the cube",
    )  # fmt: skip
    common.add_argument(
        "--adapt", action="store_true",
        help="learn a per-scene correction of the regression first (regression, hybrid; "
        "a few seconds per date)",
    )  # fmt: skip
    common.add_argument("--format", default="zarr", choices=_FORMATS, help="output format")
    common.add_argument("--quiet", action="store_true", help="no progress bars")

    demo = sub.add_parser(
        "demo", parents=[common], formatter_class=defaults,
        help="run on the embedded real sample and write results, a quicklook and metrics",
        description="Remove clouds from the embedded 30-date sample near Rome; write the "
        "cloud-free cube, the mask, quicklook.png and metrics.json (scored on real clouds "
        "laid over clear dates).",
    )  # fmt: skip
    demo.add_argument("--out", required=True, help="output directory")
    demo.add_argument(
        "--targets", type=int, default=len(_HELDOUT), choices=range(1, len(_HELDOUT) + 1),
        help="clear dates to cloud over and score (the dates held out of training)",
    )  # fmt: skip
    demo.add_argument("--seed", type=int, default=0, help="seed of the simulated case")
    demo.set_defaults(func=_demo)

    rem = sub.add_parser(
        "remove", parents=[common], formatter_class=defaults,
        help="load a cube from a STAC API and remove its clouds",
        description="Search a STAC API, load the cube lazily with odc-stac, remove clouds "
        "and write the result.",
    )  # fmt: skip
    rem.add_argument(
        "--bbox", nargs=4, type=float, required=True, metavar=("W", "S", "E", "N"),
        help="area in degrees (EPSG:4326): west south east north",
    )  # fmt: skip
    rem.add_argument(
        "--time", required=True, help="a date or START/END, e.g. 2023-05-01/2023-08-31"
    )
    rem.add_argument("--out", required=True, help="output directory")
    rem.add_argument("--catalog", default=DEFAULT_CATALOG, help="STAC API URL")
    rem.add_argument("--collection", default=DEFAULT_COLLECTION, help="STAC collection id")
    rem.add_argument(
        "--bands", nargs="+", default=None,
        help="band IDs or common names (default: B02 B03 B04 B05 B06 B07 B08 B8A B11 B12)",
    )  # fmt: skip
    rem.add_argument(
        "--resolution", type=_resolution, default=10,
        help="pixel size in CRS units, or 'native' for the items' own grid",
    )  # fmt: skip
    rem.add_argument(
        "--crs",
        default=None,
        help='output CRS, e.g. EPSG:32633 or "utm" (default: the items\' own)',
    )
    rem.add_argument(
        "--max-cloud-cover", type=float, default=None,
        help="keep scenes with eo:cloud_cover below this percentage (0-100)",
    )  # fmt: skip
    rem.set_defaults(func=_remove)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status.

    Errors caused by the input (bad cube, empty STAC search...) print one line
    naming the problem and the fix, and exit with status 2.
    """
    from .errors import XCloudFreeError

    args = _parser().parse_args(argv)
    try:
        return int(args.func(args))
    except XCloudFreeError as exc:
        print(f"xcloudfree: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
