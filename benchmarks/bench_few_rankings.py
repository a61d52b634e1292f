"""Do a person's few rankings steer the policy? 30 rankings, a reward model, GRPO; judged by
scripted persons whose tastes the project never saw (benchmarks/judges.py), not only by the
task's hidden reward.

    .venv/bin/python benchmarks/bench_few_rankings.py                      # the issue-16 table
    .venv/bin/python benchmarks/bench_few_rankings.py --variants before all --seeds 1
    .venv/bin/python benchmarks/bench_few_rankings.py --rounds 3 --judges calm critic
    .venv/bin/python benchmarks/bench_few_rankings.py --algo ppo --seeds 1

For each judge and seed: 30 groups of 4 base-model samples are ranked by the judge and stored;
`rlhf-explorer rm train`'s code (`core.reward_learning.feedback.train_from_store`, timed) trains a
reward model on
them; a run (GRPO defaults unless --algo, --steps 150) optimises it. With --rounds N, the run asks
the judge for up to N rounds of 8 groups (every 25 steps unless --every, or sooner when the
members disagree), through the `feedback_by=command` hook, exactly as a user's judge program
would be run.

Then, on 200 fresh prompts: one sample of the final policy against one of the base model, judged
blind by the same judge (ties count half: `win`); the share of the policy's samples that are
real sentences (`real`); best-of-8 of the base model by the same reward model, judged the same
way (`bo8 win`), a baseline that stays near the base model (KL <= log 8 - 7/8 = 1.2 nats). The
true reward is the task's (what the simulated annotator ranks by), steps 0-9 and 130-149.

Variants switch the issue-16 pieces on and off (--variants; `all` is today's default):
`before` (one model, no negatives, no shaping, GRPO's fixed β 0.04 with k3 in the loss: the code
before issue 16), `all`, `all` less one piece at a time, and the knobs tried on the way.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import judges  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402

from core.config import RunConfig  # noqa: E402
from core.lm.batching import encode_pairs, encode_prompts  # noqa: E402
from core.lm.checkpoints import default_checkpoint, load_checkpoint  # noqa: E402
from core.lm.sampling import generate  # noqa: E402
from core.lm.tokenizer import TOKENIZER  # noqa: E402
from core.reward_learning.feedback import sample_groups, train_from_store  # noqa: E402
from core.reward_learning.rankings import RankingStore  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.store.session import train_and_record  # noqa: E402
from core.tasks import get_task  # noqa: E402

# The reward model before issue 16: one model, no negatives, no shaping...
BEFORE_RM = dict(rm_members=1, rm_negatives=0.0, rm_shaping="none", rm_aggregate="mean")
# ...and GRPO's own KL to the reference: DeepSeekMath's fixed 0.04, k3 in the loss.
GRPO_KL = dict(kl_controller="fixed", beta=0.04, kl_in="loss", kl_estimator="k3")
BUDGET = dict(kl_controller="adaptive", kl_target=4.0, beta=0.5)   # in the loss, k3
VARIANTS = {
    # the comparison: before, today's defaults, and today's less one piece at a time
    "before": {**BEFORE_RM, **GRPO_KL},
    "all": {},
    "all-no-ensemble": {"rm_members": 1, "rm_aggregate": "mean"},
    "all-no-negatives": {"rm_negatives": 0.0},
    "all-no-par": {"rm_shaping": "none"},
    "all-no-kl-budget": GRPO_KL,
    "all-restart": {"feedback_restart": True},   # with --rounds: restart the policy each round
    # with --rounds: each round widens the KL budget by 1 or 2 nats (kl_target_per_round)
    "all-grow1": {"kl_target_per_round": 1.0},
    "all-grow2": {"kl_target_per_round": 2.0},
    "all-min": {"rm_aggregate": "min"},
    "all-mean": {"rm_aggregate": "mean"},   # no spread penalty: the members' plain mean
    "all-members8": {"rm_members": 8},
    "all-kl6": {"kl_target": 6.0},   # a wider budget from the start (its wall at 9 nats)
    "all-lr2e-4": {"lr": 2e-4},
    "all-noscale": {"scale_rewards": "none"},
    # the search for the KL's place and size (single seeds; benchmarks/README.md)
    "before-beta0.2": {**BEFORE_RM, **GRPO_KL, "beta": 0.2},
    "loss-kl2": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3", "kl_target": 2.0,
                 "beta": 0.1},
    "loss-kl4-beta0.1": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3", "beta": 0.1},
    "loss-kl4": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3"},
    "loss-kl4-batch": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3",
                       "scale_rewards": "batch"},
    "loss-kl4-lr5e-5": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3", "lr": 5e-5},
    "loss-kl4-noscale": {**BUDGET, "kl_in": "loss", "kl_estimator": "k3",
                         "scale_rewards": "none"},
}


def _texts(model, prompts, n, gen, max_new):
    rows = [p for p in prompts for _ in range(n)]
    ids, mask = encode_prompts(rows)
    out = generate(model, ids, mask, max_new, eos_id=TOKENIZER.eos_id, generator=gen)
    return rows, [TOKENIZER.decode(r) for r in out.tokens.tolist()]


@torch.no_grad()
def evaluate(judge, policy, base, rm, cfg, task, seed, n_prompts=200, n_best=8):
    """win rate over the base, share of real sentences, best-of-n's win rate, mean true reward."""
    prompts = task.sample_prompts(n_prompts, np.random.default_rng(10_000 + seed))
    gen = torch.Generator().manual_seed(20_000 + seed)
    max_new = task.max_new_tokens
    rows, pol = _texts(policy, prompts, 1, gen, max_new)
    _, ref = _texts(base, prompts, 1, gen, max_new)
    win = np.mean([judges.prefers(judge, p, a, b) for p, a, b in zip(rows, pol, ref, strict=True)])
    real = np.mean([judges.real(p, a) is not None for p, a in zip(rows, pol, strict=True)])
    brows, cands = _texts(base, prompts, n_best, gen, max_new)
    ids, mask, _ = encode_pairs(brows, cands, max_new)
    scores = rm.score(ids, mask, cfg.rm_aggregate, cfg.rm_lambda).reshape(n_prompts, n_best)
    best = [cands[i * n_best + int(j)] for i, j in enumerate(scores.argmax(1))]
    bo = np.mean([judges.prefers(judge, p, a, b)
                  for p, a, b in zip(prompts, best, ref, strict=True)])
    true = float(task.true_rewards(rows, pol).mean())
    return win, real, bo, true


def store_rankings(folder, judge, seed, task, base, n=30, k=4) -> None:
    """n groups of k base-model samples, ranked by `judge` and stored in `folder` as imported
    rankings: the person's 30 rankings of the goals (bench_dpo.py trains on the same ones)."""
    rng = np.random.default_rng(seed)
    groups = sample_groups(base, task, task.sample_prompts(n, rng), k, task.max_new_tokens,
                           1.0, torch.Generator().manual_seed(seed), "base")
    with RankingStore(folder) as store:
        for g in groups:
            store.add(task.name, g.prompt, g.responses,
                      judges.rank(judge, g.prompt, g.responses, rng), "imported", "base",
                      true=g.true)


def one(args, judge, seed, variant, overrides, task, base):
    with tempfile.TemporaryDirectory() as d:
        store_rankings(d, judge, seed, task, base, n=args.rankings)
        cfg = RunConfig.for_algo(args.algo, task=task.name, reward_source="learned",
                                 reward_model="mine", steps=args.steps, seed=seed, **overrides)
        t0 = time.perf_counter()
        train_from_store(d, task.name, name="mine", seed=seed, members=cfg.rm_members,
                         negatives=cfg.rm_negatives)
        rm_s = time.perf_counter() - t0
        if args.rounds:
            command = judges.command(judge, seed)
            cfg = cfg.with_changes(feedback_every=args.every, feedback_groups=8,
                                   feedback_by="command", feedback_command=command,
                                   feedback_max_rounds=args.rounds, feedback_unsure=args.unsure)
        held = {}
        store = RunStore(d)
        t0 = time.perf_counter()
        run_id, status = train_and_record(cfg, store, on_trainer=lambda t: held.update(t=t))
        run_s = time.perf_counter() - t0
        trainer = held["t"]
        series = {k: store.metric_series(run_id, k)[1]
                  for k in ("reward/true_mean", "kl/mean", "rm/disagreement_ratio",
                            "eval/win_rate", "rm/fresh_accuracy")}
        rounds = sum(1 for e in store.events(run_id) if e.get("kind") == "feedback_round") \
            if hasattr(store, "events") else len(series["eval/win_rate"])
        win, real, bo, true = evaluate(judge, trainer.policy, trainer.reference,
                                       trainer.reward_source.model, cfg, task, seed)
        true_series = series["reward/true_mean"]
        ratio = series["rm/disagreement_ratio"]
        store.close()
        return dict(judge=judge, seed=seed, variant=variant, status=status,
                    t0=true_series[:10].mean(), t1=true_series[-20:].mean(),
                    tmin=np.convolve(true_series, np.ones(10) / 10, "valid").min(),
                    win=win, real=real, bo=bo, true_eval=true, kl=series["kl/mean"][-20:].mean(),
                    ratio=ratio[-20:].mean() if len(ratio) else float("nan"), rm_s=rm_s,
                    run_s=run_s, rounds=rounds,
                    fresh=",".join(f"{x:.2f}" for x in series["rm/fresh_accuracy"]),
                    round_wins=",".join(f"{x:.2f}" for x in series["eval/win_rate"]))


KL_OF_LEARNED = ("kl_in", "kl_estimator", "kl_controller", "beta", "kl_target", "beta_min")


def perfect_reward(args, seed, task):
    """The same run on the task's own reward (a perfect reward model of the annotator's taste),
    with the learned source's KL to the reference: a reference for how far the true reward
    climbs in args.steps steps under those settings. (true 0-9, true 130-149, KL of the last 20)"""
    learned = RunConfig.for_algo(args.algo, task=task.name, reward_source="learned")
    cfg = RunConfig.for_algo(args.algo, task=task.name, reward_source="true", steps=args.steps,
                             seed=seed, **{k: getattr(learned, k) for k in KL_OF_LEARNED})
    with tempfile.TemporaryDirectory() as d:
        store = RunStore(d)
        run_id, status = train_and_record(cfg, store)
        if status != "finished":
            raise SystemExit(f"seed {seed}: the run ended {status!r}, not finished")
        true = store.metric_series(run_id, "reward/true_mean")[1]
        kl = store.metric_series(run_id, "kl/mean")[1]
        store.close()
    return true[:10].mean(), true[-20:].mean(), kl[-20:].mean()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--judges", nargs="+", default=["annotator", "calm", "critic"],
                   choices=sorted(judges.JUDGES))
    p.add_argument("--variants", nargs="+", default=["all"], choices=sorted(VARIANTS))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=0, help="at most this many rounds of 8 groups")
    p.add_argument("--every", type=int, default=25, help="with --rounds: a round every N steps")
    p.add_argument("--unsure", type=float, default=0.0,
                   help="feedback_unsure: also ask when the disagreement ratio passes this")
    p.add_argument("--algo", default="grpo")
    p.add_argument("--rankings", type=int, default=30,
                   help="groups of 4 base samples the judge ranks first (the goals' 30; more "
                        "shows what a better reward model would buy)")
    p.add_argument("--perfect-reward", action="store_true",
                   help="instead: the task's own reward (a perfect reward model) under the "
                        "learned source's KL settings, true reward per seed; reads --seeds, "
                        "--first-seed, --steps, --algo and --threads only")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--json", metavar="FILE", help="append each run's numbers, one JSON a line "
                   "(benchmarks/two_routes_figure.py draws them beside DPO's)")
    args = p.parse_args()
    if args.rankings < 2:
        p.error(f"--rankings needs at least 2 groups, got {args.rankings}")
    torch.set_num_threads(args.threads)
    task = get_task("sentiment")
    if args.perfect_reward:
        print(f"# {args.algo}, {args.steps} steps, the task's own reward, the learned source's KL")
        print("| seed | true 0–9 → 130–149 | gain | KL, last 20 steps |\n|---|---|---|---|")
        gains = []
        for seed in range(args.first_seed, args.first_seed + args.seeds):
            t0, t1, kl = perfect_reward(args, seed, task)
            gains.append(t1 - t0)
            print(f"| {seed} | {t0:+.2f} → {t1:+.2f} | {t1 - t0:+.2f} | {kl:.1f} |", flush=True)
        print(f"| mean | | {np.mean(gains):+.2f} (worst {min(gains):+.2f}) | |")
        return
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    print(f"# {args.algo}, {args.steps} steps, {args.rankings} rankings of 4"
          f"{f', up to {args.rounds} rounds of 8' if args.rounds else ''}, "
          f"{torch.get_num_threads()} threads")
    print("| judge | variant | seed | true 0–9 → 130–149 (min 10-step) | win | real | bo8 win "
          "| KL | disagree ratio | rounds: fresh acc / win | rm s | run s |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    for variant in args.variants:
        for judge in args.judges:
            rows = []
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = one(args, judge, seed, variant, VARIANTS[variant], task, base)
                rows.append(r)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps({**r, "route": f"reward model + {args.algo}",
                                              "rounds": args.rounds,
                                              "run_s": r["run_s"] + r["rm_s"]}) + "\n")
                print(f"| {judge} | {variant} | {seed} | {r['t0']:+.2f} → {r['t1']:+.2f} "
                      f"({r['tmin']:+.2f}) | {r['win']:.2f} | {r['real']:.0%} | {r['bo']:.2f} | "
                      f"{r['kl']:.1f} | {r['ratio']:.2f} | {r['fresh'] or '–'} / "
                      f"{r['round_wins'] or '–'} | {r['rm_s']:.1f} | {r['run_s']:.0f} |",
                      flush=True)
            if len(rows) > 1:
                m = {k: np.mean([r[k] for r in rows]) for k in ("t0", "t1", "win", "real", "bo",
                                                                  "kl", "rm_s")}
                lo = min(r["t1"] - r["t0"] for r in rows)
                print(f"| **{judge}** | **{variant}** | mean | {m['t0']:+.2f} → {m['t1']:+.2f} "
                      f"(worst gain {lo:+.2f}) | {m['win']:.2f} | {m['real']:.0%} | "
                      f"{m['bo']:.2f} | {m['kl']:.1f} | | | {m['rm_s']:.1f} | |", flush=True)


if __name__ == "__main__":
    main()
