"""What a reward model from a few rankings reads: agreement with the judge, and its pull to short.

    .venv/bin/python benchmarks/bench_rm_bias.py                       # 3 judges x seeds 0-2
    .venv/bin/python benchmarks/bench_rm_bias.py --judges annotator --seeds 1 --rankings 300

For each judge and seed: the judge ranks `--rankings` (30) groups of 4 base-model samples (as in
bench_few_rankings.py), `rlhf-explorer rm train`'s code trains the default ensemble on them, and
on 200 new groups of base samples (new draws; most of their prompts recur, the task has few) it
reports:
- `agree`: the share of the judge's strictly ordered pairs the reward model orders the same way;
- `agree real`: the same over pairs of two real sentences;
- `r(taste)` and `r(length)`: among real sentences, the correlation of the model's score with
  the judge's taste and with the response's length in characters (the judges' own correlation
  with length is printed first);
- `real > broken`: the share of (real, broken) pairs the model orders real first.
Then the model's scores of a few probe reviews of "the film", beside the task's true reward.

The pull to short: broken base samples are longer than real ones (run-ons and cut-offs), every
judge ranks them last, and so a model from a few rankings learns "long is broken". RL on it then
writes short, mildly positive sentences (benchmarks/README.md, "What bounds the gain").
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import judges  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from bench_few_rankings import store_rankings  # noqa: E402

from core.lm.batching import encode_pairs  # noqa: E402
from core.lm.checkpoints import default_checkpoint, load_checkpoint  # noqa: E402
from core.reward_learning.feedback import sample_groups, train_from_store  # noqa: E402
from core.tasks import get_task  # noqa: E402

PROBES = (" was funny.", " was superb.", " was truly superb.", " was superb and brilliant.",
          " was dull.")


@torch.no_grad()
def scores(model, prompts, texts, max_new):
    return torch.cat([model.score(*encode_pairs(prompts[i:i + 128], texts[i:i + 128],
                                                max_new)[:2], "mean_minus_std", 1.0)
                      for i in range(0, len(prompts), 128)]).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--judges", nargs="+", default=["annotator", "calm", "critic"],
                   choices=sorted(judges.JUDGES))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--rankings", type=int, default=30)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    if args.rankings < 2:
        p.error(f"--rankings needs at least 2 groups, got {args.rankings}")
    torch.set_num_threads(args.threads)
    task = get_task("sentiment")
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    max_new = task.max_new_tokens
    groups = sample_groups(base, task, task.sample_prompts(200, np.random.default_rng(999)), 4,
                           max_new, 1.0, torch.Generator().manual_seed(999), "base")
    prompts = [g.prompt for g in groups for _ in g.responses]
    texts = [t for g in groups for t in g.responses]
    length = np.array([len(t) for t in texts], dtype=float)
    valid = np.array([judges.real(p, t) is not None
                      for p, t in zip(prompts, texts, strict=True)])
    print(f"# {args.rankings} rankings of 4; 200 new groups; real sentences "
          f"{length[valid].mean():.1f} characters long on average, broken ones "
          f"{length[~valid].mean():.1f}")
    for judge in args.judges:
        own = np.array([judges.taste(judge, p, t) for p, t in zip(prompts, texts, strict=True)])
        print(f"# {judge}'s own taste against length, real sentences: "
              f"r = {np.corrcoef(own[valid], length[valid])[0, 1]:+.2f}")
    print("| judge | seed | agree | agree real | r(taste) | r(length) | real > broken | "
          + " | ".join(f"`{x.strip()}` (true {task.true_rewards(['the film'], [x])[0]:+.2f})"
                       for x in PROBES) + " |")
    print("|---" * (7 + len(PROBES)) + "|")
    for judge in args.judges:
        taste = np.array([judges.taste(judge, p, t) for p, t in zip(prompts, texts, strict=True)])
        real = np.isfinite(taste)
        for seed in range(args.seeds):
            with tempfile.TemporaryDirectory() as d:
                store_rankings(d, judge, seed, task, base, n=args.rankings)
                model, _, _ = train_from_store(d, task.name, seed=seed)
            s = scores(model, prompts, texts, max_new)
            hit = total = hit_real = total_real = 0
            for g in range(len(groups)):
                for a in range(4 * g, 4 * g + 4):
                    for b in range(4 * g, 4 * g + 4):
                        if taste[a] > taste[b]:
                            total += 1
                            hit += s[a] > s[b]
                            if real[b]:
                                total_real += 1
                                hit_real += s[a] > s[b]
            over = np.mean(s[real][:, None] > s[~real][None, :])
            probe = scores(model, ["the film"] * len(PROBES), list(PROBES), max_new)
            print(f"| {judge} | {seed} | {hit / total:.2f} | {hit_real / total_real:.2f} | "
                  f"{np.corrcoef(s[real], taste[real])[0, 1]:+.2f} | "
                  f"{np.corrcoef(s[real], length[real])[0, 1]:+.2f} | {over:.2f} | "
                  + " | ".join(f"{x:+.2f}" for x in probe) + " |", flush=True)


if __name__ == "__main__":
    main()
