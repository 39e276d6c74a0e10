"""Peak memory and wall time of ``xcloudfree demo``, the first thing a new user runs.

Runs the installed ``xcloudfree demo`` (embedded sample, hybrid, Zarr output) in a fresh
process ``--repeat`` times and reports each run's peak resident memory (``ru_maxrss`` of
the child, what ``/usr/bin/time -v`` calls "Maximum resident set size") and wall time.
Target: at most 1.5 GB.

    python benchmarks/demo.py [--repeat 3]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

TARGET_GB = 1.5


def run_once(out: str) -> dict:
    """One demo in a child process: its peak RSS (GB) and wall time (s)."""
    # ru_maxrss of RUSAGE_CHILDREN is the largest over every child waited for, so each
    # demo runs under its own small parent process that reports that one run.
    code = (
        "import resource, subprocess, sys, json, time;"
        "t = time.perf_counter();"
        "subprocess.run([sys.executable, '-m', 'xcloudfree', 'demo', '--out', sys.argv[1],"
        " '--quiet'], check=True);"
        "print(json.dumps({'seconds': time.perf_counter() - t, 'peak_rss_gb':"
        " resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024 / 1e9}))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, out], check=True, capture_output=True, text=True
    )
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/demo.md"))
    args = parser.parse_args()
    runs = []
    for i in range(args.repeat):
        with tempfile.TemporaryDirectory() as tmp:
            run = run_once(os.path.join(tmp, "demo"))
        runs.append({"run": i + 1, **{k: round(v, 2) for k, v in run.items()}})
        print(runs[-1], flush=True)
    worst = max(r["peak_rss_gb"] for r in runs)
    lines = [
        "# `xcloudfree demo`: peak memory and wall time",
        "",
        f"Produced by `python benchmarks/demo.py {' '.join(sys.argv[1:])}` "
        f"({os.cpu_count()} cores; embedded sample, hybrid, Zarr; "
        f"peak RSS as `/usr/bin/time -v` reports it).",
        "",
        "| run | peak RSS (GB) | wall (s) |",
        "|---|---|---|",
        *(f"| {r['run']} | {r['peak_rss_gb']} | {r['seconds']} |" for r in runs),
        "",
        f"- largest peak **{worst:.2f} GB** (target <= {TARGET_GB} GB)",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(lines))
    args.out.with_suffix(".json").write_text(json.dumps({"runs": runs}, indent=2) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
