"""Where the time and the memory of ``remove()`` go, stage by stage (issue 15's first step).

The shipped mask and hybrid on the embedded sample (30 dates x 10 bands x 256 x 256),
eager (numpy) and on dask (128 px chunks, the threaded scheduler with this machine's
cores). Every stage function is wrapped with a timer (time summed over threads, so on
dask the stages add up to more than the wall time when they overlap), and a sampler
thread records the process's peak resident memory while each stage runs:

* temporal mask network (three passes per date) and turning its output into classes;
* regression statistics (pairs of dates, whole region) and the regression base fill;
* STGAN and CycleGAN refiner forward passes;
* the rest: gathering windows, the halo graph, dask scheduling, copies.

    python benchmarks/profile_stages.py [--out benchmarks/results/profile.md]
"""

from __future__ import annotations

import argparse
import functools
import json
import threading
import time
from collections import defaultdict
from pathlib import Path

import dask
import psutil

import xcloudfree
import xcloudfree.fills.baselines
import xcloudfree.inference.engine
import xcloudfree.masking
from xcloudfree.models import pretrained

STAGES = {
    "mask network": (xcloudfree.masking, "_temporal_block"),
    "mask classes": (xcloudfree.masking, "_from_classes"),
    "regression statistics": (xcloudfree.fills.baselines, "_pair_stats"),
    "regression base": (xcloudfree.inference.engine, "_apply_regression"),
}


class Profile:
    """Seconds and peak RSS per stage; the current stage is per thread."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = defaultdict(float)
        self.peak: dict[str, int] = defaultdict(int)
        self.local = threading.local()
        self.running = True
        self.active: dict[int, str] = {}
        threading.Thread(target=self._sample, daemon=True).start()

    def _sample(self) -> None:
        proc = psutil.Process()
        while self.running:
            rss = proc.memory_info().rss
            for stage in set(self.active.values()) or {"other"}:
                self.peak[stage] = max(self.peak[stage], rss)
            self.peak["whole run"] = max(self.peak["whole run"], rss)
            time.sleep(0.01)

    def wrap(self, func, stage: str):
        @functools.wraps(func)
        def timed(*args, **kwargs):
            me = threading.get_ident()
            outer = self.active.get(me)
            self.active[me] = stage
            start = time.perf_counter()
            try:
                return func(*args, **kwargs)
            finally:
                self.seconds[stage] += time.perf_counter() - start
                if outer is None:
                    self.active.pop(me, None)
                else:
                    self.active[me] = outer
                    # the outer stage's time excludes this inner one
                    self.seconds[outer] -= time.perf_counter() - start

        return timed


def run(case: str, profile: Profile) -> float:
    cube = xcloudfree.datasets.sample_timeseries()
    start = time.perf_counter()
    if case == "eager":
        xcloudfree.remove(cube, progress=False)
    else:
        xcloudfree.remove(cube.chunk({"time": -1, "y": 128, "x": 128})).compute()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "profile.md"
    )
    args = parser.parse_args()
    net = pretrained("cpu")  # the object remove() uses (cached per device)
    xcloudfree.masking.pretrained_mask()
    report = {}
    lines = []
    for case in ("eager", "dask"):
        profile = Profile()
        originals = {}
        for stage, (module, name) in STAGES.items():
            originals[(module, name)] = getattr(module, name)
            setattr(module, name, profile.wrap(getattr(module, name), stage))
        net.stgan.forward = profile.wrap(net.stgan.forward, "STGAN forward")
        net.refiner.forward = profile.wrap(net.refiner.forward, "refiner forward")
        try:
            with dask.config.set(scheduler="threads"):
                wall = run(case, profile)
        finally:
            profile.running = False
            for (module, name), func in originals.items():
                setattr(module, name, func)
            del net.stgan.forward, net.refiner.forward  # the class's forward again
        staged = sum(profile.seconds.values())
        rows = {**profile.seconds}
        rows["other (windows, halo graph, scheduling, copies)"] = max(wall - staged, 0.0)
        report[case] = {"wall_s": wall, "seconds": rows, "peak_rss_gb": {
            k: v / 1e9 for k, v in profile.peak.items()}}  # fmt: skip
        lines += [
            f"## {case}: `remove()` (hybrid, temporal mask) on the sample, {wall:.1f} s wall",
            "",
            "| stage | seconds | share | peak RSS while it ran (GB) |",
            "|---|---|---|---|",
        ]
        for stage, sec in sorted(rows.items(), key=lambda kv: -kv[1]):
            peak = profile.peak.get(stage)
            shown = f"{peak / 1e9:.2f}" if peak else "-"
            lines.append(f"| {stage} | {sec:.1f} | {sec / max(wall, staged):.0%} | {shown} |")
        lines += ["", f"Peak RSS of the whole run: {profile.peak['whole run'] / 1e9:.2f} GB.", ""]
    lines += [
        "Seconds are summed over threads; on dask, stages that overlap add up to more than",
        "the wall time, and the shares are of that sum.",
    ]
    text = "\n".join(lines)
    print(text)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
