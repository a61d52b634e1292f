"""Soak: a long headless run with the small model; memory must stay flat after warm-up.

    .venv/bin/python benchmarks/bench_soak.py [--steps 1000] [--set key=value ...]

Runs `train_and_record` (the CLI's and the window's path: store, checkpoints, states) and samples
the process's resident memory (RSS, from /proc/self/statm) every 50 steps. Prints RSS after
warm-up (step 100), at the end, the growth per 100 steps in between (a least-squares slope), and
the count of live Python objects, and the mean step time of the first and last 100 steps, so a
leak or a slowdown shows as a number.
Run it alone: the CPU is shared.
"""

from __future__ import annotations

import argparse
import gc
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

from core.config import RunConfig, coerce  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.store.session import train_and_record  # noqa: E402


def rss_mib() -> float:
    """Resident memory after glibc hands back its free pages (malloc_trim), so a reading is
    what the process holds, not what the allocator happens to keep cached."""
    import ctypes

    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except OSError:
        pass
    with open("/proc/self/statm") as f:
        pages = int(f.read().split()[1])
    return pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--steps", type=int, default=1000)
    p.add_argument("--warmup", type=int, default=100)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    # The small model on sentiment, with a batch small enough for 1000 steps in minutes.
    base = dict(task="sentiment", prompts_per_step=4, group_size=4, threads=1,
                checkpoint_every=100, steps=args.steps)
    base.update({k: coerce(k, v) for k, v in (s.split("=", 1) for s in args.set)})
    cfg = RunConfig.for_algo(base.pop("algo", "grpo"), **base)
    samples: list[tuple[int, float]] = []
    times: list[float] = []
    objects: list[int] = []

    def on_step(result) -> None:
        times.append(result.metrics["perf/step_s"])
        if (result.step + 1) % 50 == 0:
            samples.append((result.step + 1, rss_mib()))
            objects.append(len(gc.get_objects()))
            print(f"step {result.step + 1}: RSS {samples[-1][1]:.1f} MiB, {objects[-1]} Python "
                  "objects", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench_soak_") as tmp, RunStore(tmp) as store:
        t0 = time.perf_counter()
        run_id, status = train_and_record(cfg, store, on_step=on_step)
        wall = time.perf_counter() - t0
        disk = sum(p.stat().st_size for p in Path(tmp).rglob("*") if p.is_file()) / 2**20
    after = [(s, m) for s, m in samples if s >= args.warmup]
    steps, mib = np.array(after, dtype=float).T
    slope = float(np.polyfit(steps, mib, 1)[0]) * 100 if len(after) > 1 else float("nan")
    print(f"{cfg.algo} {cfg.task} {cfg.prompts_per_step}x{cfg.group_size}, {args.steps} steps "
          f"({status}) in {wall:.0f} s; data folder {disk:.0f} MiB")
    print(f"RSS after warm-up (step {int(steps[0])}): {mib[0]:.1f} MiB; at the end: {mib[-1]:.1f}"
          f" MiB; growth {mib[-1] - mib[0]:+.1f} MiB, slope {slope:+.2f} MiB per 100 steps")
    print(f"Python objects after warm-up: {objects[len(samples) - len(after)]}, at the end: "
          f"{objects[-1]}")
    print(f"step time: first 100 {np.mean(times[:100]) * 1000:.0f} ms, last 100 "
          f"{np.mean(times[-100:]) * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
