"""Reward-model accuracy from simulated rankings: Bradley-Terry vs Plackett-Luce.

    .venv/bin/python benchmarks/bench_reward_model.py --task sentiment --rankings 500

Collects N rankings of K completions sampled from the shipped base model, ranked by the simulated
annotator (Plackett-Luce over true reward / temperature), trains r_theta with each loss on the same
80% and reports held-out pairwise accuracy against the annotator and against the true reward.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.lm.checkpoints import load_checkpoint  # noqa: E402
from core.reward_learning.annotator import SimulatedAnnotator  # noqa: E402
from core.reward_learning.reward_training import collect_rankings, train_reward_model  # noqa: E402
from core.rl.trainer import default_checkpoint  # noqa: E402
from core.tasks import get_task  # noqa: E402


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--task", default="sentiment")
    p.add_argument("--rankings", type=int, default=500)
    p.add_argument("--k", type=int, default=4)
    p.add_argument("--annotator-temperature", type=float, default=0.1)
    p.add_argument("--steps", type=int, default=150, help="updates of 16 rankings")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--lr", type=float, default=3e-4)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    task = get_task(args.task)
    base, _ = load_checkpoint(default_checkpoint(args.task))
    rng = np.random.default_rng(args.seed)
    t0 = time.perf_counter()
    rankings = collect_rankings(base, task, SimulatedAnnotator(args.annotator_temperature, rng),
                                args.rankings, args.k, task.max_new_tokens, rng,
                                torch.Generator().manual_seed(args.seed))
    print(f"collected {len(rankings)} rankings of {args.k} in {time.perf_counter() - t0:.1f} s")
    print("| loss | held-out accuracy vs annotator | vs true reward | held-out loss | train s |")
    print("|---|---|---|---|---|")
    for kind in ("bradley_terry", "plackett_luce"):
        t0 = time.perf_counter()
        _, m = train_reward_model(base, rankings, kind, args.steps, args.lr,
                                  task.max_new_tokens, args.seed)
        print(f"| {kind} | {m['rm/accuracy']:.3f} | {m['rm/true_accuracy']:.3f} | "
              f"{m['rm/loss']:.3f} | {time.perf_counter() - t0:.1f} |", flush=True)


if __name__ == "__main__":
    main()
