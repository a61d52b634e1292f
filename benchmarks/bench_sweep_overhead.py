"""The same N runs as a sweep, or one after another: the sweep's overhead and its throughput.

    .venv/bin/python benchmarks/bench_sweep_overhead.py sequential   # N `train` processes in turn
    .venv/bin/python benchmarks/bench_sweep_overhead.py sweep 1      # one sweep, 1 trial at once
    .venv/bin/python benchmarks/bench_sweep_overhead.py sweep 2      # one sweep, 2 trials at once

Each of the N runs (--runs, default 4) is GRPO on sentiment for --steps steps (default 30) with
seeds 0..N-1, in a fresh data folder. The total thread count is the same in every mode: the
sequential runs and a sweep with 1 trial at once use --cpus threads per run (default 2); with
2 at once each trial gets half. Time each mode as a whole process with /usr/bin/time, or pair
two modes in turn with a benchmark harness: the goals are overhead (sweep 1 / sequential) <=
1.1, and a throughput ratio (sweep 2 / sweep 1 runs per hour) stated.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("sequential", "sweep"))
    p.add_argument("concurrent", nargs="?", type=int, default=1)
    p.add_argument("--runs", type=int, default=4)
    p.add_argument("--steps", type=int, default=30)
    p.add_argument("--cpus", type=int, default=2)
    args = p.parse_args()
    exe = [sys.executable, "-m", "explorer.app"]
    with tempfile.TemporaryDirectory(prefix="rlhfx-overhead-") as tmp:
        data = Path(tmp) / "data"
        if args.mode == "sequential":
            for seed in range(args.runs):
                subprocess.run([*exe, "train", "--task", "sentiment", "--algo", "grpo",
                                "--steps", str(args.steps), "--seed", str(seed), "--quiet",
                                "--set", f"threads={args.cpus}", "--set", "checkpoint_every=0",
                                "--data-dir", str(data)], check=True, stdout=subprocess.DEVNULL)
        else:
            grid = Path(tmp) / "grid.toml"
            grid.write_text(f"name = \"overhead\"\nseeds = {args.runs}\n[base]\n"
                            f"task = \"sentiment\"\nalgo = \"grpo\"\nsteps = {args.steps}\n"
                            "checkpoint_every = 0\n[grid]\nlr = [1e-4]\n")
            subprocess.run([*exe, "sweep", str(grid), "--quiet", "--cpus", str(args.cpus),
                            "--max-concurrent", str(args.concurrent), "--data-dir", str(data)],
                           check=True, stdout=subprocess.DEVNULL)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
