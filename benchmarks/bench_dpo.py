"""DPO, IPO and listwise Plackett-Luce DPO on the same 30 rankings the reward-model route gets.

    .venv/bin/python benchmarks/bench_dpo.py [--losses sigmoid ipo plackett_luce]
        [--judges annotator calm critic] [--seeds 5] [--steps 150] [--rounds 3]
        [--set KEY=VALUE ...]

As `bench_few_rankings.py`: 30 groups of 4 base-model samples ranked by a judge and stored
(source "imported"); then `--algo dpo` with `dpo_data=stored` on those rankings, 150 steps.
Measured on 200 fresh prompts, as there: the judge's blind win rate of one policy sample
against one base sample (ties half), the share of real sentences, and the true reward over the
run (steps 0-9 -> the last 20). Also the implicit reward's accuracy on held-out prompts, the KL
to the base model, the mean step time and the run's wall time. The reward-model route's rows on
the same rankings are in benchmarks/README.md ("Rankings that steer the policy").
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
sys.path.insert(0, str(HERE.parent))

import judges  # noqa: E402
from bench_few_rankings import _texts, store_rankings  # noqa: E402

from core.config import RunConfig, coerce  # noqa: E402
from core.lm.checkpoints import load_checkpoint  # noqa: E402
from core.rl.trainer import default_checkpoint  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.store.session import train_and_record  # noqa: E402
from core.tasks import get_task  # noqa: E402


@torch.no_grad()
def evaluate(judge, policy, base, task, seed, n_prompts=200):
    prompts = task.sample_prompts(n_prompts, np.random.default_rng(10_000 + seed))
    gen = torch.Generator().manual_seed(20_000 + seed)
    rows, pol = _texts(policy, prompts, 1, gen, task.max_new_tokens)
    _, ref = _texts(base, prompts, 1, gen, task.max_new_tokens)
    win = np.mean([judges.prefers(judge, p, a, b) for p, a, b in zip(rows, pol, ref, strict=True)])
    real = np.mean([judges.real(p, a) is not None for p, a in zip(rows, pol, strict=True)])
    return win, real


def one(args, judge, seed, loss, task, base, extra):
    with tempfile.TemporaryDirectory() as d:
        store_rankings(d, judge, seed, task, base)   # the reward-model route's very rankings
        cfg = RunConfig.for_algo("dpo", task=task.name, dpo_data="stored", dpo_loss=loss,
                                 steps=args.steps, seed=seed, threads=args.threads,
                                 checkpoint_every=0, **extra)
        if args.rounds:   # online DPO, the judge asked as bench_few_rankings.py asks it
            command = judges.command(judge, seed)
            cfg = cfg.with_changes(feedback_every=25, feedback_groups=8, feedback_by="command",
                                   feedback_command=command, feedback_max_rounds=args.rounds)
        held = {}
        t0 = time.perf_counter()
        with RunStore(d) as store:
            run_id, _ = train_and_record(cfg, store, on_trainer=lambda t: held.update(t=t))
            run_s = time.perf_counter() - t0
            series = {k: store.metric_series(run_id, k)[1]
                      for k in ("reward/true_mean", "kl/mean", "dpo/heldout_accuracy",
                                "perf/step_s", "eval/win_rate", "dpo/fresh_accuracy")}
        trainer = held["t"]
        win, real = evaluate(judge, trainer.policy, trainer.reference, task, seed)
        t = series["reward/true_mean"]
        return dict(t0=t[:10].mean(), t1=t[-20:].mean(), win=win, real=real,
                    kl=series["kl/mean"][-20:].mean(), held=series["dpo/heldout_accuracy"][-1],
                    step_s=series["perf/step_s"][5:].mean(), run_s=run_s,
                    round_log=" ".join(f"{f:.2f}/{w:.2f}" for f, w in
                                    zip(series["dpo/fresh_accuracy"], series["eval/win_rate"],
                                        strict=False)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--losses", nargs="+", default=["sigmoid", "ipo", "plackett_luce"])
    p.add_argument("--judges", nargs="+", default=["annotator", "calm", "critic"],
                   choices=sorted(judges.JUDGES))
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--rounds", type=int, default=0,
                   help="online DPO: at most this many rounds of 8 groups, every 25 steps")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    p.add_argument("--json", metavar="FILE", help="append each run's numbers, one JSON a line "
                   "(benchmarks/two_routes_figure.py draws them)")
    args = p.parse_args()
    extra = {}
    for item in args.set:
        key, _, value = item.partition("=")
        extra[key] = coerce(key, value)
    torch.set_num_threads(args.threads)
    task = get_task("sentiment")
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    print(f"# dpo_data=stored on 30 rankings of 4, {args.steps} steps, {extra or 'defaults'}"
          f"{f', up to {args.rounds} rounds of 8' if args.rounds else ''}")
    print("| judge | loss | seed | true 0–9 → last 20 | win | real | KL | held-out acc | "
          "step s | run s | rounds: fresh acc / win |")
    print("|---|---|---|---|---|---|---|---|---|---|---|")
    for judge in args.judges:
        for loss in args.losses:
            rows = []
            for seed in range(args.seeds):
                r = one(args, judge, seed, loss, task, base, extra)
                rows.append(r)
                if args.json:
                    with open(args.json, "a") as out:
                        out.write(json.dumps({**r, "route": f"dpo {loss}", "judge": judge,
                                              "seed": seed, "rounds": args.rounds,
                                              "set": extra}) + "\n")
                print(f"| {judge} | {loss} | {seed} | {r['t0']:+.2f} → {r['t1']:+.2f} | "
                      f"{r['win']:.2f} | {r['real']:.0%} | {r['kl']:.1f} | {r['held']:.2f} | "
                      f"{r['step_s']:.2f} | {r['run_s']:.0f} | {r['round_log']} |", flush=True)
            m = {k: np.mean([r[k] for r in rows]) for k in rows[0] if k != "round_log"}
            worst = min(r["t1"] - r["t0"] for r in rows)
            print(f"| **{judge}** | **{loss}** | mean | {m['t0']:+.2f} → {m['t1']:+.2f} "
                  f"(worst gain {worst:+.2f}) | {m['win']:.2f} | {m['real']:.0%} | "
                  f"{m['kl']:.1f} | {m['held']:.2f} | {m['step_s']:.2f} | "
                  f"{m['run_s']:.0f} | |", flush=True)


if __name__ == "__main__":
    main()
