"""Scaling of ``remove()`` from 1 to 2 dask workers, and why it falls short of 2x.

Three measurements, one run:

* **the machine's ceiling** -- a torch convolution, a pure-Python loop and a streaming
  NumPy pass, each in 1 and in 2 processes of one thread at once: how much two
  processes get out of this machine's cores when nothing else is shared;
* **the cluster** -- the sample tiled to ``--size`` px (8 dates, 10 bands, read from a
  Zarr store as a cluster reads real data) under :class:`distributed.LocalCluster`
  with 1 and 2 worker processes of one thread each, for each ``--chunks`` size, with
  dask's task stream: wall time, task-seconds (time inside tasks, summed over
  workers), utilisation (task-seconds / (workers x wall)), the inflation of
  task-seconds from 1 to 2 workers (two processes sharing caches and memory
  bandwidth), and the seconds a worker sat idle while the other computed;
* **a projection** to a 16-core machine and a whole Sentinel-2 tile from the measured
  task-seconds per megapixel-date, inflation and utilisation (stated assumptions, not
  a measurement).

    python benchmarks/scaling.py [--size 1024] [--chunks 512 256] [--workers 1 2] [--repeats 2]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import sys
import tempfile
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import numpy as np
from _cubes import tiled_sample

import xcloudfree
from xcloudfree.inference.modelcache import get_model

TILE_PIXEL_DATES = 10980 * 10980 * 6
#: Seconds each ceiling workload runs in each process.
CEILING_SECONDS = 6.0


def _workload(kind: str, queue) -> None:
    import torch

    torch.set_num_threads(1)
    if kind == "torch conv":
        x, conv = torch.randn(4, 32, 256, 256), torch.nn.Conv2d(32, 32, 3, padding=1)
        step = lambda: conv(x)  # noqa: E731
    elif kind == "python loop":
        step = lambda: sum(range(3_000_000))  # noqa: E731
    else:
        a = np.random.default_rng(0).random(8_000_000, dtype=np.float32)
        step = lambda: float((a * 1.0001 + 0.5).sum())  # noqa: E731
    with torch.inference_mode():
        step()
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < CEILING_SECONDS:
            step()
            n += 1
    queue.put(n / (time.perf_counter() - start))


def ceiling() -> list[dict]:
    """Work done per second by 1 and by 2 single-thread processes running at once."""
    ctx = multiprocessing.get_context("spawn")
    rows = []
    for kind in ("torch conv", "python loop", "numpy stream"):
        rate = {}
        for procs in (1, 2):
            queue = ctx.Queue()
            started = [ctx.Process(target=_workload, args=(kind, queue)) for _ in range(procs)]
            for p in started:
                p.start()
            for p in started:
                p.join()
            rate[procs] = sum(queue.get() for _ in started)
        rows.append({"workload": kind, "speedup": round(rate[2] / rate[1], 2)})
        print(rows[-1], flush=True)
    return rows


def _stage(key) -> str:
    name = str(key[0] if isinstance(key, tuple) else key)
    if name.startswith("_trim"):
        return "mask"
    if "unpack_then_fill" in name and not name.endswith("-strip"):
        return "fill"
    return "other"


def cluster_run(store: Path, workers: int, chunk: int, pixel_dates: float) -> dict:
    import distributed
    import xarray as xr

    with (
        distributed.LocalCluster(
            n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None
        ) as cluster,
        distributed.Client(cluster) as client,
    ):
        client.run(get_model, None, "cpu")  # each worker loads the model first
        lazy = xcloudfree.remove(xr.open_zarr(store)["reflectance"], device="cpu")
        with distributed.get_task_stream(client) as stream:
            start = time.perf_counter()
            lazy.compute()
            wall = time.perf_counter() - start
    stage: dict[str, float] = defaultdict(float)
    names = sorted({record["worker"] for record in stream.data})
    first = min(part["start"] for record in stream.data for part in record["startstops"])
    timeline = []  # where the idle time is: tasks over half a second, by worker
    for record in stream.data:
        for part in record["startstops"]:
            if part["action"] == "compute":
                seconds = part["stop"] - part["start"]
                stage[_stage(record["key"])] += seconds
                if seconds > 0.5:
                    timeline.append((
                        _stage(record["key"]), names.index(record["worker"]),
                        round(part["start"] - first, 1), round(part["stop"] - first, 1),
                    ))  # fmt: skip
    task_seconds = sum(stage.values())
    row = {
        "chunk": chunk,
        "workers": workers,
        "wall s": round(wall, 1),
        "task-s": round(task_seconds, 1),
        "mask task-s": round(stage["mask"], 1),
        "fill task-s": round(stage["fill"], 1),
        "utilisation": round(task_seconds / (workers * wall), 2),
        "idle worker-s": round(workers * wall - task_seconds, 1),
        "task-s per MPix-date": round(task_seconds / pixel_dates, 2),
    }
    print(row, flush=True)
    return {**row, "timeline": sorted(timeline, key=lambda t: t[2])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=1024)
    parser.add_argument("--chunks", type=int, nargs="+", default=[512, 256])
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2, help="runs with several workers")
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/scaling.md"))
    args = parser.parse_args()

    ceilings = ceiling()
    cube = tiled_sample(args.size)
    pixel_dates = cube.sizes["time"] * args.size**2 / 1e6
    rows = []
    for chunk in args.chunks:
        store = Path(tempfile.mkdtemp()) / "cube.zarr"
        cube.chunk({"y": chunk, "x": chunk}).to_dataset(name="reflectance").to_zarr(store)
        # Runs with several workers are repeated: where dask places tasks varies.
        runs = [
            cluster_run(store, n, chunk, pixel_dates)
            for n in sorted(args.workers)
            for _ in range(1 if n == 1 else args.repeats)
        ]
        one = runs[0]
        for row in runs:
            row["speedup"] = round(one["wall s"] / row["wall s"], 2)
            row["inflation"] = round(row["task-s"] / one["task-s"], 2)
            row["tasks per stage"] = (args.size // chunk) ** 2
        rows += runs

    # Projection: a tile has hundreds of chunks, so the tail where workers idle at the
    # last round of tasks is short; inflation and utilisation are assumed to stay at the
    # 2-worker figures (means of the repeats at the chunk size of the fastest run).
    many = [r for r in rows if r["workers"] == max(args.workers)]
    best = min(many, key=lambda r: r["wall s"])
    alike = [r for r in many if r["chunk"] == best["chunk"]]
    inflation = round(float(np.mean([r["inflation"] for r in alike])), 2)
    utilisation = round(float(np.mean([r["utilisation"] for r in alike])), 2)
    per = next(
        r["task-s per MPix-date"] for r in rows
        if r["chunk"] == best["chunk"] and r["workers"] == min(args.workers)
    )  # fmt: skip
    tile_tasks = (-(-10980 // best["chunk"])) ** 2
    tail = tile_tasks / (16 * -(-tile_tasks // 16))
    speedup16 = round(16 * tail * utilisation / inflation, 1)
    projection = {
        "chunk": best["chunk"],
        "tasks per stage on a tile": tile_tasks,
        "share of 16 workers busy over a tile's rounds of tasks": round(tail, 3),
        "assumed inflation (2-worker figure)": inflation,
        "assumed utilisation (2-worker figure)": utilisation,
        "projected 1 -> 16 worker speedup": speedup16,
        "projected hours for a 10980^2 x 6-date tile on 16 cores": round(
            TILE_PIXEL_DATES / 1e6 * per / speedup16 / 3600, 2
        ),
    }
    result = {"ceiling": ceilings, "runs": rows, "projection": projection}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(result, indent=2))
    keys = [
        "chunk", "tasks per stage", "workers", "wall s", "speedup", "task-s", "inflation",
        "utilisation", "idle worker-s", "mask task-s", "fill task-s", "task-s per MPix-date",
    ]  # fmt: skip
    lines = [
        "# Scaling of remove() from 1 to 2 dask workers",
        "",
        f"Produced by `python benchmarks/scaling.py {' '.join(sys.argv[1:])}` on "
        f"{multiprocessing.cpu_count()} cores: the sample tiled to {args.size}^2 px, 8 dates, "
        "10 bands, read from Zarr; LocalCluster workers of one thread each.",
        "",
        "Machine ceiling (work per second of 2 single-thread processes at once / 1 alone):",
        "",
        "| workload | speedup |",
        "|---|---|",
        *(f"| {c['workload']} | {c['speedup']} |" for c in ceilings),
        "",
        "| " + " | ".join(keys) + " |",
        "|" + "---|" * len(keys),
        *("| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows),
        "",
        "Projection (assumptions, not a measurement):",
        "",
        *(f"- {k}: **{v}**" for k, v in projection.items()),
        "",
    ]
    args.out.write_text("\n".join(lines))
    print("\n".join(lines))


if __name__ == "__main__":
    main()
