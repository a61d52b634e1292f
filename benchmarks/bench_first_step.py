"""Launch to first plotted step: a fresh process, the window, Start, the first point on a plot.

    .venv/bin/python benchmarks/bench_first_step.py [--runs 3]

Each run starts a new Python process (so imports of torch, Qt and pyqtgraph count, as they do
for a person launching the app) that builds the real MainWindow offscreen, presses Start as soon
as it is shown (the default GRPO sentiment run, default threads), and reports when the dashboard
first draws a training step. Times are wall clock from just before the process is spawned. Goal:
under 5 s on the CPU. Run it alone.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def child() -> None:
    """In the new process: the window, Start, and a line per milestone."""
    def say(event: str) -> None:
        print(json.dumps({"event": event, "t": time.time()}), flush=True)

    sys.path.insert(0, str(ROOT))
    import tempfile

    from PySide6.QtCore import QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    from explorer.plots.metric_plot import MetricPlot

    app = QApplication([])
    tmp = tempfile.TemporaryDirectory(prefix="bench_first_step_")
    QApplication.setOrganizationName("rlhf-explorer-bench")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    state = {"stepped": False, "done": False}
    refresh = MetricPlot.refresh

    def watched(plot, *args, **kwargs):
        drew = refresh(plot, *args, **kwargs)
        if drew and state["stepped"] and not state["done"]:
            state["done"] = True
            say("plotted")
            QTimer.singleShot(0, window.runner.stop)
        return drew

    MetricPlot.refresh = watched
    from explorer.main_window import MainWindow

    say("imported")
    window = MainWindow(data_dir=Path(tmp.name) / "data", restore=False)
    window.show()
    app.processEvents()
    say("shown")

    def on_step(_update) -> None:
        if not state["stepped"]:
            state["stepped"] = True
            say("step")

    window.runner.stepArrived.connect(on_step)
    window.runner.runEnded.connect(lambda *_: QTimer.singleShot(0, app.quit))
    window.runner.runFailed.connect(lambda *_: QTimer.singleShot(0, app.quit))
    window.start_run()
    say("start")
    app.exec()
    window.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        child()
        return
    env = {**os.environ, "QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    rows = []
    for _ in range(args.runs):
        t0 = time.time()
        out = subprocess.run([sys.executable, __file__, "--child"], capture_output=True,
                             text=True, env=env, timeout=300)
        events = {e["event"]: e["t"] - t0 for e in map(json.loads, (
            line for line in out.stdout.splitlines() if line.startswith("{")))}
        if "plotted" not in events:
            raise SystemExit(f"no step was plotted:\n{out.stderr[-2000:]}")
        rows.append(events)
    print("| from launch (s) | " + " | ".join(f"run {i + 1}" for i in range(len(rows)))
          + " | median |")
    print("|---|" + "---|" * (len(rows) + 1))
    for event, label in (("imported", "imports done"), ("shown", "window shown"),
                         ("step", "first step reaches the GUI"),
                         ("plotted", "**first step plotted**")):
        values = [r[event] for r in rows]
        print(f"| {label} | " + " | ".join(f"{v:.2f}" for v in values)
              + f" | {statistics.median(values):.2f} |")
    median = statistics.median(r["plotted"] for r in rows)
    print(f"\ngoal < 5 s: {'met' if median < 5 else 'NOT met'} ({median:.2f} s)")


if __name__ == "__main__":
    main()
