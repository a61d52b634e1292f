"""Learning curves with the shipped defaults, over several seeds: the table in benchmarks/README.md.

    .venv/bin/python benchmarks/bench_curves.py                    # 4 objectives on sentiment,
                                                                   # GRPO on arithmetic, length
    .venv/bin/python benchmarks/bench_curves.py --algos grpo --tasks sentiment --seeds 0 1
    .venv/bin/python benchmarks/bench_curves.py --set lr=2e-4      # try a knob on every run

For every run: the mean true reward over steps 0-9 and 130-149 (scaled to --steps), the largest
and final KL to the reference, and the wall time until the 10-step mean of the true reward first
reaches --target (sentiment only; with the default thread count, headless). Then one summary row
per task and objective, mean ± sd over the seeds. Every step's metrics go to
benchmarks/results/curves_<task>_<algo>_s<seed>.csv (plot them with plot_curves.py).
Run it alone: timings on a shared 2-core machine are only comparable in one quiet sitting.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import RunConfig, coerce  # noqa: E402
from core.rl.trainer import Trainer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"
DEFAULT_JOBS = [("sentiment", a) for a in ("reinforce", "kl_penalty", "ppo", "grpo")] + [
    ("arithmetic", "grpo"), ("length", "grpo")]


def time_to(rows: list[dict], target: float, window: int = 10) -> float | None:
    """Seconds (from the trainer's start) until the `window`-step mean true reward >= target."""
    for i in range(window - 1, len(rows)):
        if statistics.mean(r["reward/true_mean"] for r in rows[i - window + 1:i + 1]) >= target:
            return rows[i]["time_s"]
    return None


def run(task: str, algo: str, seed: int, steps: int, sets: dict, target: float,
        tag: str = "") -> dict:
    cfg = RunConfig.for_algo(algo, task=task, seed=seed, steps=steps, **sets)
    t0 = time.perf_counter()
    trainer = Trainer(cfg)
    rows = [r.metrics for r in trainer.run()]
    OUT.mkdir(exist_ok=True)
    names = sorted({k for row in rows for k in row})
    with open(OUT / f"curves_{task}_{algo}{tag}_s{seed}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, names)
        w.writeheader()
        w.writerows(rows)
    true = [row["reward/true_mean"] for row in rows]
    early = statistics.mean(true[: max(1, steps * 10 // 150)])
    late = statistics.mean(true[-max(1, steps * 20 // 150):])
    return {"task": task, "algo": algo, "seed": seed, "early": early, "late": late,
            "margin": late - early, "max_kl": max(row["kl/mean"] for row in rows),
            "final_kl": rows[-1]["kl/mean"], "final_beta": rows[-1]["kl/beta"],
            "to_target": time_to(rows, target) if task == "sentiment" else None,
            "step_s": statistics.median(row["perf/step_s"] for row in rows),
            "total_s": time.perf_counter() - t0}


def mean_sd(values: list[float], fmt: str = "{:+.2f}") -> str:
    if not values:
        return "–"
    if len(values) == 1:
        return fmt.format(values[0])
    return f"{fmt.format(statistics.mean(values))} ± {statistics.stdev(values):.2f}"


def summary(results: list[dict], target: float) -> None:
    print(f"\n| task | objective | true reward 0–9 | 130–149 | max KL (nats) | "
          f"time to {target} (s) | step (s) | seeds |")
    print("|---|---|---|---|---|---|---|---|")
    keys = dict.fromkeys((r["task"], r["algo"]) for r in results)
    for task, algo in keys:
        rs = [r for r in results if (r["task"], r["algo"]) == (task, algo)]
        hits = [r["to_target"] for r in rs if r["to_target"] is not None]
        reach = "–" if task != "sentiment" else (
            f"{mean_sd(hits, '{:.0f}')} ({len(hits)}/{len(rs)} reached)")
        max_kl = mean_sd([r["max_kl"] for r in rs], "{:.1f}")
        print(f"| {task} | {algo} | {mean_sd([r['early'] for r in rs])} | "
              f"**{mean_sd([r['late'] for r in rs])}** | {max_kl} | "
              f"{reach} | {statistics.median(r['step_s'] for r in rs):.2f} | {len(rs)} |")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", help="objectives (default: the table's jobs)")
    p.add_argument("--tasks", nargs="+", help="tasks (default: the table's jobs)")
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2, 3, 4])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--target", type=float, default=0.4, help="sentiment reward to time")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    sets = {k: coerce(k, v) for k, v in (item.split("=", 1) for item in args.set)}
    jobs = DEFAULT_JOBS
    if args.algos or args.tasks:
        jobs = [(t, a) for t in (args.tasks or ["sentiment"])
                for a in (args.algos or ["reinforce", "kl_penalty", "ppo", "grpo"])]
    print("| task | algo | seed | true 0–9 | 130–149 | margin | max KL | final KL | final β "
          "| to target (s) | step s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    results = []
    for task, algo in jobs:
        for seed in args.seeds:
            r = run(task, algo, seed, args.steps, sets, args.target)
            results.append(r)
            hit = "–" if r["to_target"] is None else f"{r['to_target']:.0f}"
            print(f"| {task} | {algo} | {seed} | {r['early']:+.3f} | {r['late']:+.3f} | "
                  f"{r['margin']:+.3f} | {r['max_kl']:.2f} | {r['final_kl']:.2f} | "
                  f"{r['final_beta']:.3g} | {hit} | {r['step_s']:.3f} |", flush=True)
    summary(results, args.target)


if __name__ == "__main__":
    main()
