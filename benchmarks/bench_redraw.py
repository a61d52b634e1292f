"""Redraws per second of the live dashboard with long curves (goal: at least 30/s).

    QT_QPA_PLATFORM=offscreen .venv/bin/python benchmarks/bench_redraw.py
    .venv/bin/python benchmarks/bench_redraw.py --points 100000 --runs 2 --seconds 5

Every curve of every run is prefilled with --points steps; then each cycle appends one new
step to every run (as the worker would), calls Dashboard.refresh() and paints the window
(processEvents + repaint), so a cycle is the whole "new data -> pixels" path the timer drives.
Also times a cycle with nothing new, which the timer hits between training steps.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QEvent, QObject  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from explorer.plots import Dashboard, RunSeries  # noqa: E402

METRICS = ("reward/mean", "reward/std", "reward/true_mean", "kl/mean", "kl/beta",
           "policy/clip_frac", "policy/entropy", "policy/approx_kl", "loss/policy",
           "loss/value", "loss/total", "value/explained_variance", "perf/tokens_per_s",
           "perf/step_s")


def step_metrics(rng: np.random.Generator, step: int) -> dict[str, float]:
    p = 1 - math.exp(-step / 20000)
    noise = rng.standard_normal(len(METRICS))
    out = {name: p + 0.1 * n for name, n in zip(METRICS, noise, strict=True)}
    out["reward/std"] = 0.2 + 0.01 * abs(noise[1])
    out.update(step=step, time_s=step * 0.3)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--smoothing", type=float, default=0.6)
    args = parser.parse_args()

    app = QApplication.instance() or QApplication([])
    rng = np.random.default_rng(0)
    runs = [RunSeries() for _ in range(args.runs)]
    t0 = time.perf_counter()
    for run in runs:
        for step in range(args.points):
            run.append(step_metrics(rng, step))
    prefill_s = time.perf_counter() - t0

    board = Dashboard()
    board.resize(1500, 850)
    board.set_smoothing(args.smoothing)
    board.set_runs([(f"run {i}", run, None) for i, run in enumerate(runs)])
    board.set_kl_target(0.5)
    board.show()
    app.processEvents()

    # Count the plot views' paint events, to show that a cycle really reaches the pixels.
    paints = 0

    class PaintCounter(QObject):
        def eventFilter(self, obj, event):  # noqa: N802 (Qt override)
            nonlocal paints
            if event.type() == QEvent.Type.Paint:
                paints += 1
            return False

    counter = PaintCounter()
    for panel in board.panels.values():
        panel.plot_widget.viewport().installEventFilter(counter)
    refresh_s = {}

    def cycle(new_data: bool) -> None:
        if new_data:
            for run in runs:
                run.append(step_metrics(rng, run.n_steps))
        t0 = time.perf_counter()
        board.refresh()
        refresh_s[new_data] = refresh_s.get(new_data, 0.0) + time.perf_counter() - t0
        # The scene hands dirty items to its views on a posted event; process it, then paint.
        app.processEvents()
        board.repaint()

    cycle(True)  # the first full smoothing pass is a one-off, not a redraw
    results = {}
    for label, new_data in (("with a new step", True), ("nothing new", False)):
        paints, n = 0, 0
        refresh_s.clear()
        start = time.perf_counter()
        while time.perf_counter() - start < args.seconds:
            cycle(new_data)
            n += 1
        elapsed = time.perf_counter() - start
        results[label] = (n / elapsed, paints / n, refresh_s.get(new_data, 0.0) / n)

    curves = sum(len(p.data_items()) for p in board.panels.values() if p.isVisible())
    print(f"{args.runs} run(s) x {args.points:,} points per curve, {curves} visible curves, "
          f"smoothing {args.smoothing} (prefill {prefill_s:.1f} s)")
    for label, (rate, per, refresh) in results.items():
        print(f"  {label:>16}: {rate:7.1f} redraws/s ({1000 / rate:6.2f} ms each, of which "
              f"refresh() {1000 * refresh:5.2f} ms; {per:.0f} plot views painted)")
    goal = results["with a new step"][0]
    print(f"goal >= 30 redraws/s: {'met' if goal >= 30 else 'NOT met'}")
    board.close()


if __name__ == "__main__":
    main()
