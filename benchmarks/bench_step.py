"""RL step time of the default configuration (64 completions x 48 tokens, 4x128 GPT) on CPU.

    .venv/bin/python benchmarks/bench_step.py [--threads 1 2] [--steps 20]
        [--algos grpo dpo] [--set dpo:dpo_batch=16]

Runs each objective from the shipped sentiment checkpoint and reports the median step time
split into sampling and the rest (reference pass, reward, update). Run it on an idle machine:
two torch threads slow several-fold when anything else competes for the cores.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from core.config import RunConfig  # noqa: E402
from core.rl.trainer import Trainer  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--algos", nargs="+", default=["grpo", "reinforce", "kl_penalty", "ppo"])
    p.add_argument("--threads", nargs="+", type=int, default=[1, 2])
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--set", action="append", default=[], metavar="ALGO:KEY=VALUE",
                   help="a setting for one objective, e.g. dpo:dpo_batch=16 (16 rankings of 4 "
                        "update 64 sequences, as GRPO's default batch does)")
    args = p.parse_args()
    changes: dict[str, dict[str, str]] = {}
    for item in args.set:
        algo, _, pair = item.partition(":")
        key, eq, value = pair.partition("=")
        if not eq or algo not in args.algos:
            p.error(f"--set {item!r}: expected ALGO:KEY=VALUE with ALGO one of --algos "
                    f"({' '.join(args.algos)})")
        changes.setdefault(algo, {})[key] = value
    print("| objective | threads | step s (median) | sampling s | tokens/s | completions |")
    print("|---|---|---|---|---|---|")
    for threads in args.threads:
        for algo in args.algos:
            cfg = RunConfig.for_algo(algo, threads=threads, steps=args.steps + args.warmup)
            if algo in changes:
                cfg = cfg.with_changes(**changes[algo])
            rows = [r.metrics for r in Trainer(cfg).run()][args.warmup:]
            step = statistics.median(r["perf/step_s"] for r in rows)
            sample = statistics.median(r["perf/sample_s"] for r in rows)
            tps = statistics.median(r["perf/tokens_per_s"] for r in rows)
            print(f"| {algo} | {threads} | {step:.3f} | {sample:.3f} | {tps:,.0f} | "
                  f"{cfg.batch_size} |", flush=True)


if __name__ == "__main__":
    main()
