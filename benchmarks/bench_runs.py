"""Run-store write latency: one step (30 metrics, 8 samples) per transaction.

    .venv/bin/python benchmarks/bench_runs.py

Compares SQLite's synchronous modes. The store uses FULL: in WAL mode NORMAL already survives an
application crash, FULL also survives an OS crash or power loss, at ~4 ms per step here.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.store.runs import RunStore  # noqa: E402


def main() -> None:
    names = [f"group{i % 5}/metric{i}" for i in range(30)]
    samples = [{"prompt": "the film was", "completion": " good " * 8, "reward": 0.5,
                "true_reward": 0.2}] * 8
    print("| synchronous | mean ms | median ms | p95 ms |")
    print("|---|---|---|---|")
    for sync in ("FULL", "NORMAL", "OFF"):
        with tempfile.TemporaryDirectory() as folder:
            store = RunStore(folder)
            store._conn.execute(f"PRAGMA synchronous={sync}")
            run = store.create_run({}, "sentiment", "ppo", "true")
            times = []
            for step in range(300):
                t0 = time.perf_counter()
                store.log_step(run, step, {k: step * 0.1 for k in names}, samples)
                times.append((time.perf_counter() - t0) * 1e3)
            store.close()
        times.sort()
        print(f"| {sync} | {statistics.mean(times):.2f} | {statistics.median(times):.2f} | "
              f"{times[int(0.95 * len(times))]:.2f} |")


if __name__ == "__main__":
    main()
