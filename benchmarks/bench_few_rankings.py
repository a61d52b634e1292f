"""How few rankings a reward model needs, and what a GRPO run makes of one trained on 30.

    .venv/bin/python benchmarks/bench_few_rankings.py accuracy   # 10/30/100/300, both losses
    .venv/bin/python benchmarks/bench_few_rankings.py run        # 30 rankings -> GRPO

`accuracy`: for each count, N rankings of 4 sampled from the base model and ranked by the simulated
annotator (temperature 0.1) are stored as a person's would be, and `rlhf-explorer rm train`'s code
(`core.feedback.train_from_store`, 150 updates) trains on them. Agreement with the true reward is
measured on 200 fresh groups whose prompts are not among the training rankings' (more pairs than
the 20% held out, which at 10 rankings is 2 groups), with the held-out-by-prompt number beside it.

`run`: 30 such rankings train a named model; GRPO then runs 150 steps with `reward_model=NAME`
(the learned reward): with the default fixed β = 0.04, with β = 0.2, and with β = 0.2 and a
feedback round every 25 steps (8 groups of 4 from the current policy, the simulated annotator
standing in). It reports the true reward at the start, at its best and at the end.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.checkpoints import load_checkpoint  # noqa: E402
from core.config import RunConfig  # noqa: E402
from core.feedback import SimulatedFeedback, sample_groups, train_from_store  # noqa: E402
from core.rankings import RankingStore  # noqa: E402
from core.reward_model import pairwise_accuracy  # noqa: E402
from core.runs import RunStore  # noqa: E402
from core.session import train_and_record  # noqa: E402
from core.tasks import get_task  # noqa: E402
from core.trainer import default_checkpoint  # noqa: E402


def simulated(data_dir, task, base, n, seed, k=4):
    rng = np.random.default_rng(seed)
    groups = sample_groups(base, task, task.sample_prompts(n, rng), k, task.max_new_tokens, 1.0,
                           torch.Generator().manual_seed(seed), "base")
    with RankingStore(data_dir) as store:
        return SimulatedFeedback(0.1, rng, store).rank(groups)


def accuracy(args) -> None:
    task = get_task(args.task)
    base, _ = load_checkpoint(default_checkpoint(args.task))
    print("| rankings of 4 | loss | agreement with true reward, 200 fresh groups | held out by "
          "prompt | train s |")
    print("|---|---|---|---|---|")
    for n in args.counts:
        for loss in ("bradley_terry", "plackett_luce"):
            fresh, held, secs = [], [], []
            for seed in range(args.seeds):
                with tempfile.TemporaryDirectory() as d:
                    train = simulated(d, task, base, n, seed)
                    seen = {r.prompt for r in train}
                    evald = tempfile.mkdtemp()
                    ev = [r for r in simulated(evald, task, base, 260, 1000 + seed)
                          if r.prompt not in seen][:200]
                    t0 = time.perf_counter()
                    model, metrics, _ = train_from_store(d, args.task, loss, seed=seed)
                    secs.append(time.perf_counter() - t0)
                    fresh.append(pairwise_accuracy(model, ev, task.max_new_tokens, "true"))
                    held.append(metrics["rm/true_accuracy"])
            print(f"| {n} | {loss} | {np.mean(fresh):.3f} ± {np.std(fresh):.3f} | "
                  f"{np.nanmean(held):.2f} | {np.mean(secs):.1f} |", flush=True)


VARIANTS = (  # (label, overrides of the GRPO defaults)
    ("β 0.04 (default)", {}),
    ("β 0.2", {"beta": 0.2}),
    ("β 0.2, a round every 25 steps", {"beta": 0.2, "feedback_every": 25}),
)


def run(args) -> None:
    task = get_task(args.task)
    base, _ = load_checkpoint(default_checkpoint(args.task))
    print("| seed | run | RM agreement with true (fresh) | true reward, steps 0–9 | best 10-step "
          "mean (at step) | steps 130–149 | learned reward 0–9 → 130–149 | KL at the end | "
          "rankings at the end |")
    print("|---|---|---|---|---|---|---|---|---|")
    for seed in range(args.first_seed, args.first_seed + args.seeds):
        for label, overrides in VARIANTS:
            with tempfile.TemporaryDirectory() as d:
                train = simulated(d, task, base, 30, seed)
                seen = {r.prompt for r in train}
                ev = [r for r in simulated(tempfile.mkdtemp(), task, base, 260, 1000 + seed)
                      if r.prompt not in seen][:200]
                model, _, _ = train_from_store(d, args.task, name="thirty", seed=seed)
                agree = pairwise_accuracy(model, ev, task.max_new_tokens, "true")
                cfg = RunConfig.for_algo("grpo", task=args.task, reward_source="learned",
                                         reward_model="thirty", steps=args.steps, seed=seed,
                                         **overrides)
                store = RunStore(d)
                run_id, _ = train_and_record(cfg, store)
                _, true = store.metric_series(run_id, "reward/true_mean")
                _, learned = store.metric_series(run_id, "reward/mean")
                _, kl = store.metric_series(run_id, "kl/mean")
                _, count = store.metric_series(run_id, "rm/rankings")
                smooth = np.convolve(true, np.ones(10) / 10, mode="valid")
                print(f"| {seed} | {label} | {agree:.3f} | {true[:10].mean():+.3f} | "
                      f"{smooth.max():+.3f} ({int(smooth.argmax()) + 9}) | "
                      f"{true[-20:].mean():+.3f} | "
                      f"{learned[:10].mean():+.2f} → {learned[-20:].mean():+.2f} | "
                      f"{kl[-20:].mean():.1f} | {int(count[-1])} |", flush=True)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("mode", choices=("accuracy", "run"))
    p.add_argument("--task", default="sentiment")
    p.add_argument("--counts", type=int, nargs="+", default=[10, 30, 100, 300])
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--threads", type=int, default=1, help="torch threads (the app's default: 1)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    accuracy(args) if args.mode == "accuracy" else run(args)


if __name__ == "__main__":
    main()
