"""Figures for the README from benchmarks/results/*.csv (pyqtgraph, offscreen; no extra packages).

    .venv/bin/python benchmarks/plot_curves.py trust      # docs/trust_region.png
    .venv/bin/python benchmarks/plot_curves.py budget     # docs/reward_vs_kl.png

`trust` reads curves_sentiment_kl_penalty_s0.csv (bench_curves.py) and draws the trust-region
beta following d = KL(pi_old || pi_new) around its target band, with the KL to the reference
beside it. `budget` reads the kl_target sweep (bench_kl_budget.py) and draws the true reward over
the last 20 steps against the KL to the reference there: the KL budget bounds the reward.
"""

from __future__ import annotations

import csv
import math
import os
import statistics
import sys
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import pyqtgraph as pg  # noqa: E402
from pyqtgraph.exporters import ImageExporter  # noqa: E402
from PySide6.QtCore import Qt  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
DOCS = ROOT / "docs"
DASH = Qt.PenStyle.DashLine
COLOURS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b"]


def read(name: str) -> list[dict[str, float]]:
    with open(RESULTS / name) as fh:
        return [{k: float(v) for k, v in row.items() if v != ""} for row in csv.DictReader(fh)]


def layout(title: str) -> pg.GraphicsLayoutWidget:
    pg.setConfigOptions(antialias=True, background="w", foreground="k")
    win = pg.GraphicsLayoutWidget()
    win.resize(1400, 520)
    win.addLabel(title, row=0, col=0, colspan=2, size="13pt")
    return win


def save(win: pg.GraphicsLayoutWidget, name: str) -> None:
    win.show()                       # offscreen: lays the plots out over the whole width
    for _ in range(5):
        QApplication.processEvents()
    exporter = ImageExporter(win.scene())
    exporter.parameters()["width"] = 1400
    exporter.export(str(DOCS / name))
    print(f"wrote docs/{name}")


def trust(csv_name: str = "curves_sentiment_kl_penalty_s0.csv") -> None:
    rows = read(csv_name)
    steps = [r["step"] for r in rows]
    win = layout("Trust-region objective (kl_penalty, seed 0): β follows d = KL(π_old ‖ π_new)")
    left = win.addPlot(row=1, col=0, title="trust region: d after each update, and β")
    left.setLogMode(y=True)
    left.addLegend(offset=(10, 10))
    target = rows[0]["trust/target"]
    for y, name in ((target * 1.5, "1.5 · d_target"), (target / 1.5, "d_target / 1.5")):
        left.addLine(y=math.log10(y), pen=pg.mkPen("#888", style=DASH), label=name,
                     labelOpts={"position": 0.92, "color": "#555"})
    left.plot(steps, [max(r["trust/kl"], 1e-6) for r in rows], pen=pg.mkPen(COLOURS[0], width=2),
              name="d = trust/kl (nats/token)")
    left.plot(steps, [r["trust/beta"] for r in rows], pen=pg.mkPen(COLOURS[1], width=2),
              name="β = trust/beta")
    left.setLabel("bottom", "step")
    right = win.addPlot(row=1, col=1, title="RLHF regulariser: KL to the reference, and its β")
    right.addLegend(offset=(10, 10))
    right.plot(steps, [r["kl/mean"] for r in rows], pen=pg.mkPen(COLOURS[2], width=2),
               name="kl/mean (nats/completion)")
    if "kl/target" in rows[0]:
        right.addLine(y=rows[0]["kl/target"], pen=pg.mkPen("#888", style=DASH), label="kl_target",
                      labelOpts={"position": 0.92, "color": "#555"})
    right.plot(steps, [10 * r["kl/beta"] for r in rows], pen=pg.mkPen(COLOURS[3], width=2),
               name="10 × kl/beta")
    right.setLabel("bottom", "step")
    save(win, "trust_region.png")


def budget() -> None:
    win = layout("The KL budget bounds the reward (GRPO on sentiment, kl_target swept)")
    plot = win.addPlot(row=1, col=0, colspan=2)
    plot.setLabel("bottom", "KL to the reference over the last 20 steps (nats per completion)")
    plot.setLabel("left", "true reward over the last 20 steps")
    plot.addLegend(offset=(10, 10))
    files = sorted(RESULTS.glob("curves_sentiment_grpo_budget*_s*.csv"))
    if not files:
        sys.exit("no curves_sentiment_grpo_budget*.csv: run benchmarks/bench_kl_budget.py first")
    points = []
    for path in files:
        rows = read(path.name)[-20:]
        points.append((statistics.mean(r["kl/mean"] for r in rows),
                       statistics.mean(r["reward/true_mean"] for r in rows),
                       rows[0].get("kl/target", float("nan"))))
    points.sort()
    plot.getAxis("left").enableAutoSIPrefix(False)
    plot.plot([p[0] for p in points], [p[1] for p in points], pen=pg.mkPen(COLOURS[0], width=2),
              symbol="o", symbolBrush=COLOURS[0], name="adaptive β, one run per kl_target")
    for kl, reward, target in points:
        text = pg.TextItem(f"kl_target {target:g}", color="#333", anchor=(1.1, 0.5))
        text.setPos(kl, reward)
        plot.addItem(text)
    defaults = []
    for path in sorted(RESULTS.glob("curves_sentiment_grpo_s*.csv")):
        rows = read(path.name)[-20:]
        defaults.append((statistics.mean(r["kl/mean"] for r in rows),
                         statistics.mean(r["reward/true_mean"] for r in rows)))
    if defaults:
        plot.plot([p[0] for p in defaults], [p[1] for p in defaults], pen=None, symbol="s",
                  symbolBrush=COLOURS[1], name="the default fixed β = 0.04, seeds 0-4")
    plot.setXRange(0, max(p[0] for p in points + defaults) * 1.05)
    save(win, "reward_vs_kl.png")


if __name__ == "__main__":
    app = QApplication.instance() or QApplication(sys.argv)
    what = sys.argv[1] if len(sys.argv) > 1 else "trust"
    {"trust": trust, "budget": budget}[what]()
