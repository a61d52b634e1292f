"""The GRPO family on `arithmetic`: accuracy against step and against wall time, per variant.

    .venv/bin/python benchmarks/bench_grpo_family.py                 # every variant, 3 seeds
    .venv/bin/python benchmarks/bench_grpo_family.py --variants grpo dapo --seeds 0

Each variant is GRPO's defaults plus the knobs below (settable the same way with --set in
`rlhf-explorer train` or in the window). Prints the mean accuracy (exact answers among the step's
completions) over steps 0-9, 40-49, 90-99 and 130-149, and the wall time until the 10-step mean
first reaches 0.8, mean ± sd over seeds. CSVs go to benchmarks/results/.
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_curves import mean_sd, run, time_to  # noqa: E402

from core.sweeps.spec import GRPO_FAMILY  # noqa: E402

# one list of the variants, which the grpo-family preset sweeps too
VARIANTS: dict[str, dict] = GRPO_FAMILY
WINDOWS = ((0, 10), (40, 50), (90, 100), (130, 150))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--variants", nargs="+", default=list(VARIANTS), choices=list(VARIANTS))
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1, 2])
    p.add_argument("--steps", type=int, default=150)
    args = p.parse_args()
    windows = [(a, b) for a, b in WINDOWS if b <= args.steps]
    heads = " | ".join(f"steps {a}–{b - 1}" for a, b in windows)
    print(f"| variant | knobs | {heads} | time to 0.8 (s) | step (s) |")
    print("|---|---|" + "---|" * len(windows) + "---|---|")
    for name in args.variants:
        rs = []
        for seed in args.seeds:
            r = run("arithmetic", "grpo", seed, args.steps, VARIANTS[name], 0.8, tag=f"_{name}")
            rows = _read(f"curves_arithmetic_grpo_{name}_s{seed}.csv")
            r["windows"] = [statistics.mean(x["reward/true_mean"] for x in rows[a:b])
                            for a, b in windows]
            r["to_08"] = time_to(rows, 0.8)
            rs.append(r)
        cells = " | ".join(mean_sd([r["windows"][i] for r in rs], "{:.2f}")
                           for i in range(len(rs[0]["windows"])))
        hits = [r["to_08"] for r in rs if r["to_08"] is not None]
        knobs = ", ".join(f"{k}={v}" for k, v in VARIANTS[name].items()) or "defaults"
        print(f"| {name} | {knobs} | {cells} | {mean_sd(hits, '{:.0f}')} ({len(hits)}/"
              f"{len(rs)}) | {statistics.median(r['step_s'] for r in rs):.2f} |", flush=True)


def _read(name: str) -> list[dict]:
    import csv

    from bench_curves import OUT

    with open(OUT / name) as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


if __name__ == "__main__":
    main()
