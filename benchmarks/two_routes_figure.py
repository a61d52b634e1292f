"""Two routes from the same 30 rankings, drawn: the reward model then RL, against DPO, IPO and
listwise Plackett-Luce DPO, with and without rounds (issue 18).

    .venv/bin/python benchmarks/two_routes_figure.py RUNS.jsonl [MORE.jsonl ...] \
        [--rm-from benchmarks/README.md] [--out docs/two_routes.svg]

RUNS.jsonl: the lines `bench_dpo.py --json` and `bench_few_rankings.py --json` append, one run
each. --rm-from reads the reward-model route's per-seed rows instead from the tables
`bench_few_rankings.py` printed into benchmarks/README.md ("Today's defaults, 5 seeds, no
rounds" and "With up to 3 rounds of 8 groups"), so they need not be run again.

Draws three panels, one dot per route, judge and rounds (the mean over seeds, a bar of ± one
standard deviation): each judge's blind win rate over the base model, the share of outputs that
are real sentences, and the gain in the task's true reward. Prints the table beside it.
Written by hand as SVG so that it needs no plotting library.
"""

from __future__ import annotations

import argparse
import json
import re
from collections import defaultdict
from html import escape
from pathlib import Path

import numpy as np

JUDGE_COLOURS = {"annotator": "#0072B2", "calm": "#009E73", "critic": "#D55E00"}
PANELS = (("win", "win rate over the base", (0.0, 1.0), (0.5, 0.75)),
          ("real", "real sentences", (0.0, 1.0), (0.9,)),
          ("gain", "true reward: last 20 steps − first 10", (-1.0, 0.6), (0.0, 0.2)))
W, H, TOP, BOTTOM, LEFT, GAP = 1200, 430, 46, 92, 56, 40


def load(paths) -> dict:
    """{(route, rounds, judge): {metric: [one value a seed]}}."""
    runs: dict = defaultdict(lambda: defaultdict(list))
    for path in paths:
        for line in Path(path).read_text().splitlines():
            if not line.strip():
                continue
            r = json.loads(line)
            cell = runs[(r["route"], int(r["rounds"]), r["judge"])]
            for key in ("win", "real", "kl", "run_s"):
                cell[key].append(float(r[key]))
            cell["gain"].append(float(r["t1"]) - float(r["t0"]))
    return runs


SECTIONS = {"Today's defaults, 5 seeds, no rounds": 0, "With up to 3 rounds of 8 groups": 3}
ROW = re.compile(r"^\| (\w+) \| all \| (\d+) \| ([-+][\d.]+) → ([-+][\d.]+) \([^)]*\) \| "
                 r"([\d.]+) \| (\d+)% \| [\d.]+ \| ([\d.]+) \| .*\| ([\d.]+) \| (\d+) \|$")


def load_readme(path, runs, algo: str = "grpo") -> None:
    """The reward-model route's per-seed rows from bench_few_rankings.py's tables (SECTIONS)."""
    rounds = None
    for line in Path(path).read_text().splitlines():
        if line.startswith("#"):
            title = line.lstrip("#").strip()
            rounds = next((r for name, r in SECTIONS.items() if title.startswith(name)), None)
            continue
        m = ROW.match(line) if rounds is not None else None
        if not m:
            continue
        judge, _, t0, t1, win, real, kl, rm_s, run_s = m.groups()
        cell = runs[(f"reward model + {algo}", rounds, judge)]
        for key, value in (("win", float(win)), ("real", float(real) / 100), ("kl", float(kl)),
                           ("run_s", float(run_s) + float(rm_s)),
                           ("gain", float(t1) - float(t0))):
            cell[key].append(value)


def routes_of(runs) -> list[str]:
    # the reward-model route first, then DPO's losses in the order they were run
    names = list(dict.fromkeys(route for route, _, _ in runs))
    return sorted(names, key=lambda n: (not n.startswith("reward model"), names.index(n)))


def table(runs) -> str:
    lines = ["| route | rounds | judge | seeds | win | real | true gain (worst) | KL | wall s |",
             "|---|---|---|---|---|---|---|---|---|"]
    for route in routes_of(runs):
        for rounds in sorted({k[1] for k in runs}):
            for judge in JUDGE_COLOURS:
                cell = runs.get((route, rounds, judge))
                if not cell:
                    continue
                m = {k: float(np.mean(v)) for k, v in cell.items()}
                lines.append(f"| {route} | {rounds or '–'} | {judge} | {len(cell['win'])} | "
                             f"{m['win']:.2f} | {m['real']:.0%} | {m['gain']:+.2f} "
                             f"({min(cell['gain']):+.2f}) | {m['kl']:.1f} | {m['run_s']:.0f} |")
    return "\n".join(lines)


def svg(runs) -> str:
    routes = routes_of(runs)
    rounds_seen = sorted({k[1] for k in runs})
    pw = (W - LEFT - GAP * (len(PANELS) - 1) - 20) / len(PANELS)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" '
           f'viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">',
           f'<rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{W / 2}" y="20" text-anchor="middle" font-size="15" font-weight="bold">'
           'Two routes from the same 30 rankings: a reward model then RL, or DPO directly'
           '</text>']
    for p, (key, title, (lo, hi), lines) in enumerate(PANELS):
        x0 = LEFT + p * (pw + GAP)
        y0, y1 = TOP, H - BOTTOM

        def y(v, lo=lo, hi=hi, y0=y0, y1=y1):
            return y1 - (min(max(v, lo), hi) - lo) / (hi - lo) * (y1 - y0)

        out.append(f'<text x="{x0 + pw / 2}" y="{TOP - 8}" text-anchor="middle" '
                   f'font-weight="bold">{escape(title)}</text>')
        out.append(f'<rect x="{x0}" y="{y0}" width="{pw}" height="{y1 - y0}" fill="none" '
                   'stroke="#999"/>')
        for t in np.linspace(lo, hi, 5):
            out.append(f'<text x="{x0 - 4}" y="{y(t) + 4}" text-anchor="end" fill="#444">'
                       f'{round(float(t), 2):g}</text>')
        for v in lines:
            out.append(f'<line x1="{x0}" x2="{x0 + pw}" y1="{y(v)}" y2="{y(v)}" stroke="#bbb" '
                       'stroke-dasharray="4 3"/>')
        slot = pw / len(routes)
        for i, route in enumerate(routes):
            cx = x0 + slot * (i + 0.5)
            label = route.replace("reward model + ", "RM + ").replace("dpo ", "DPO ")
            out.append(f'<text x="{cx}" y="{y1 + 16}" text-anchor="middle">{escape(label)}'
                       '</text>')
            n = len(JUDGE_COLOURS) * len(rounds_seen)
            for j, (judge, colour) in enumerate(JUDGE_COLOURS.items()):
                for q, rounds in enumerate(rounds_seen):
                    cell = runs.get((route, rounds, judge))
                    if not cell:
                        continue
                    k = j * len(rounds_seen) + q
                    px = cx + (k - (n - 1) / 2) * min(9.0, slot / (n + 1))
                    mean, sd = float(np.mean(cell[key])), float(np.std(cell[key]))
                    out.append(f'<line x1="{px}" x2="{px}" y1="{y(mean - sd)}" '
                               f'y2="{y(mean + sd)}" stroke="{colour}" stroke-width="1.5"/>')
                    fill = colour if rounds else "white"
                    out.append(f'<circle cx="{px}" cy="{y(mean)}" r="4" fill="{fill}" '
                               f'stroke="{colour}" stroke-width="1.5"/>')
    # the key
    kx, ky = LEFT, H - 40
    for judge, colour in JUDGE_COLOURS.items():
        out.append(f'<circle cx="{kx}" cy="{ky}" r="4" fill="{colour}"/>'
                   f'<text x="{kx + 8}" y="{ky + 4}">{judge}</text>')
        kx += 110
    out.append(f'<circle cx="{kx}" cy="{ky}" r="4" fill="white" stroke="#333"/>'
               f'<text x="{kx + 8}" y="{ky + 4}">no rounds</text>'
               f'<circle cx="{kx + 110}" cy="{ky}" r="4" fill="#333"/>'
               f'<text x="{kx + 118}" y="{ky + 4}">with up to 3 rounds of 8</text>'
               f'<text x="{kx + 330}" y="{ky + 4}" fill="#444">dot: mean over seeds; bar: ± '
               'one sd; dashed: 0.5 and the goals</text>')
    out.append("</svg>")
    return "\n".join(out)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("runs", nargs="+")
    p.add_argument("--rm-from", metavar="README", help="the reward-model route's rows from "
                   "bench_few_rankings.py's tables in this file")
    p.add_argument("--out", default="docs/two_routes.svg")
    args = p.parse_args()
    runs = load(args.runs)
    if args.rm_from:
        load_readme(args.rm_from, runs)
    Path(args.out).write_text(svg(runs))
    print(table(runs))
    print(f"\nwrote {args.out}")


if __name__ == "__main__":
    main()
