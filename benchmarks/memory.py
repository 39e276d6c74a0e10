"""Peak memory of a lazy ``remove()`` over 1x, 4x and 16x the area: bounded by the chunk size.

The embedded real sample (8 dates with real clouds, 10 bands) is mirror-tiled to
256, 512 and 1024 px squares (1x, 4x, 16x the area) and written to Zarr in
128 px chunks. For each, a fresh Python process opens the store lazily, runs
``xcloudfree.remove()`` (hybrid, model mask) and writes the whole result Dataset
to Zarr with the threaded scheduler (1 and 2 threads); its peak resident memory
(``VmHWM`` of the child's own address space) is reported. Target: the 16x run within
1.5x of the 1x run.

    python benchmarks/memory.py [--factors 1 4 16] [--chunk 128] [--threads 1 2]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))


def child(store: str, out: str, threads: str) -> None:
    import dask
    import xarray as xr

    import xcloudfree

    cube = xr.open_zarr(store)["reflectance"]
    start = time.perf_counter()
    ds = xcloudfree.remove(cube, progress=False)
    with dask.config.set(scheduler="threads", num_workers=int(threads)):
        ds.to_zarr(out, mode="w")
    seconds = time.perf_counter() - start
    print(json.dumps({"peak_rss_bytes": _peak_rss(), "seconds": seconds}))


def _peak_rss() -> int:
    """This process's peak resident memory, in bytes.

    ``ru_maxrss`` survives ``execve``: a child started by a parent that holds the 16x
    cube reports the parent's memory at the fork (1619 MB for 1 and 2 threads alike,
    where the run itself peaks at 770 MB). ``VmHWM`` belongs to the address space
    that ``execve`` makes new, so it is the child's own.
    """
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # kB on Linux


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--factors", type=int, nargs="+", default=[1, 4, 16])
    parser.add_argument("--chunk", type=int, default=128)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/memory.md"))
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--child", nargs=3, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return

    from _cubes import tiled_sample

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for factor in args.factors:
            size = int(256 * factor**0.5)
            cube = tiled_sample(size)
            store = os.path.join(tmp, f"in{factor}.zarr")
            chunks = {"time": -1, "band": -1, "y": args.chunk, "x": args.chunk}
            cube.to_dataset(name="reflectance").chunk(chunks).to_zarr(store, mode="w")
            for threads in args.threads:
                result = subprocess.run(
                    [sys.executable, __file__, "--child", store, os.path.join(tmp, "o.zarr"),
                     str(threads)],
                    check=True, capture_output=True, text=True,
                )  # fmt: skip
                measured = json.loads(result.stdout.strip().splitlines()[-1])
                row = {
                    "area": f"{factor}x",
                    "size": f"{cube.sizes['time']} dates x {size}^2 px",
                    "input MB": round(cube.nbytes / 1e6, 1),
                    "chunks": (size // args.chunk) ** 2,
                    "threads": threads,
                    "peak RSS MB": round(measured["peak_rss_bytes"] / 1e6, 1),
                    "s": round(measured["seconds"], 1),
                }
                rows.append(row)
                print(row, flush=True)
    ratios = {}
    for threads in args.threads:
        runs = [r for r in rows if r["threads"] == threads]
        ratios[threads] = runs[-1]["peak RSS MB"] / runs[0]["peak RSS MB"]
    keys = list(rows[0])
    lines = [
        "# Peak memory of remove() vs area",
        "",
        f"Produced by `python benchmarks/memory.py {' '.join(sys.argv[1:])}` "
        f"({os.cpu_count()} cores, threaded scheduler, Zarr in and out).",
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *("| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows),
        "",
        *(
            f"- {t} thread(s): peak RSS of the {args.factors[-1]}x run / the "
            f"{args.factors[0]}x run = **{r:.2f}** (target <= 1.5)"
            for t, r in ratios.items()
        ),
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(json.dumps({"rows": rows, "ratios": ratios}, indent=2))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
