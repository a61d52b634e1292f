"""Full learning curves: each objective from the shipped checkpoint with default settings.

    .venv/bin/python benchmarks/bench_curves.py     # all objectives on sentiment, GRPO arithmetic
    .venv/bin/python benchmarks/bench_curves.py --algos grpo --tasks arithmetic --seeds 0 1

Prints one row per run: mean true reward over steps 0-9 and 130-149 (the issue's windows, scaled
to --steps), the margin, the largest KL, the final beta and the median step time; writes every
step's metrics to benchmarks/results/curves_<task>_<algo>_s<seed>.csv.
"""

from __future__ import annotations

import argparse
import csv
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import RunConfig  # noqa: E402
from core.trainer import Trainer  # noqa: E402

OUT = Path(__file__).resolve().parent / "results"


def run(task: str, algo: str, seed: int, steps: int, sets: dict) -> dict:
    cfg = RunConfig.for_algo(algo, task=task, seed=seed, steps=steps, **sets)
    trainer = Trainer(cfg)
    rows = []
    t0 = time.perf_counter()
    for r in trainer.run():
        rows.append(r.metrics)
    OUT.mkdir(exist_ok=True)
    names = sorted({k for row in rows for k in row})
    with open(OUT / f"curves_{task}_{algo}_s{seed}.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, names)
        w.writeheader()
        w.writerows(rows)
    true = [row["reward/true_mean"] for row in rows]
    early = statistics.mean(true[: max(1, steps * 10 // 150)])
    late = statistics.mean(true[-max(1, steps * 20 // 150):])
    return {"task": task, "algo": algo, "seed": seed, "early": early, "late": late,
            "margin": late - early, "max_kl": max(row["kl/mean"] for row in rows),
            "final_kl": rows[-1]["kl/mean"], "final_beta": rows[-1]["kl/beta"],
            "step_s": statistics.median(row["perf/step_s"] for row in rows),
            "total_s": time.perf_counter() - t0}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=["reinforce", "kl_penalty", "ppo", "grpo"])
    p.add_argument("--tasks", nargs="+", default=["sentiment"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0])
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--arithmetic-grpo", action=argparse.BooleanOptionalAction, default=True,
                   help="also run GRPO on arithmetic (the verifiable-reward demo)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    sets = dict(item.split("=", 1) for item in args.set)
    jobs = [(t, a, s) for t in args.tasks for a in args.algos for s in args.seeds]
    if args.arithmetic_grpo and "arithmetic" not in args.tasks:
        jobs += [("arithmetic", "grpo", s) for s in args.seeds]
    print("| task | algo | seed | true reward 0-9 | 130-149 | margin | max KL | final KL "
          "| final β | step s |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, algo, seed in jobs:
        r = run(task, algo, seed, args.steps, {k: _num(v) for k, v in sets.items()})
        print(f"| {task} | {algo} | {seed} | {r['early']:+.3f} | {r['late']:+.3f} | "
              f"{r['margin']:+.3f} | {r['max_kl']:.2f} | {r['final_kl']:.2f} | "
              f"{r['final_beta']:.3g} | {r['step_s']:.3f} |", flush=True)


def _num(text: str):
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


if __name__ == "__main__":
    main()
