"""The KL budget bounds the reward: GRPO on sentiment with the adaptive rule's target swept
(GRPO's default is a fixed beta; here the adaptive rule holds the KL near each target).

    .venv/bin/python benchmarks/bench_kl_budget.py [--targets 1 2 4 8 16] [--seed 0]
    .venv/bin/python benchmarks/plot_curves.py budget          # -> docs/reward_vs_kl.png

One 150-step run per kl_target; prints the true reward and the KL to the reference over the
last 20 steps of each. CSVs go to benchmarks/results/curves_sentiment_grpo_budget<T>_s<seed>.csv.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_curves import OUT, run  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--targets", nargs="+", type=float, default=[1, 2, 4, 8, 16])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--algo", default="grpo")
    args = p.parse_args()
    print("| kl_target (nats) | KL, last 20 steps | true reward, last 20 steps |")
    print("|---|---|---|")
    for target in args.targets:
        tag = f"_budget{target:g}"
        run("sentiment", args.algo, args.seed, 150,
            {"kl_controller": "adaptive", "kl_target": target}, 0.4, tag=tag)
        import csv

        with open(OUT / f"curves_sentiment_{args.algo}{tag}_s{args.seed}.csv") as fh:
            rows = list(csv.DictReader(fh))[-20:]
        kl = statistics.mean(float(r["kl/mean"]) for r in rows)
        reward = statistics.mean(float(r["reward/true_mean"]) for r in rows)
        print(f"| {target:g} | {kl:.2f} | {reward:+.3f} |", flush=True)


if __name__ == "__main__":
    main()
