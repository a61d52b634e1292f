"""Time to a target reward in the window: Start pressed -> 10-step mean true reward >= 0.4.

    .venv/bin/python benchmarks/bench_window_target.py [--seed 0] [--target 0.4] [--set k=v]

The real MainWindow (offscreen unless QT_QPA_PLATFORM is set) runs the default GRPO sentiment
run through its own `start_run()`, as a user's click does, with the default thread count; the
dashboard redraws as usual. Prints the seconds from Start to the first plotted step and to the
target, measured on the steps as they reach the GUI thread. Run it alone on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QSettings, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.config import RunConfig, coerce  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--target", type=float, default=0.4)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE")
    args = p.parse_args()
    sets = {k: coerce(k, v) for k, v in (item.split("=", 1) for item in args.set)}
    cfg = RunConfig.for_algo("grpo", seed=args.seed, **sets)

    t_launch = time.perf_counter()
    app = QApplication.instance() or QApplication([])
    tmp = tempfile.TemporaryDirectory(prefix="bench_window_target_")
    QApplication.setOrganizationName("rlhf-explorer-bench")
    QApplication.setApplicationName("bench_window_target")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)
    from explorer.main_window import MainWindow

    window = MainWindow(data_dir=Path(tmp.name) / "data", restore=False)
    window.show()
    window.panel.set_config(cfg)
    state = {"rewards": [], "first": None, "hit": None, "hit_step": None, "start": None}

    def on_step(update) -> None:
        now = time.perf_counter()
        if state["first"] is None:
            state["first"] = now
        state["rewards"].append(update.metrics_dict()["reward/true_mean"])
        last = state["rewards"][-10:]
        if state["hit"] is None and len(last) == 10 and statistics.mean(last) >= args.target:
            state["hit"], state["hit_step"] = now, update.step
            window.runner.stop()

    window.runner.stepArrived.connect(on_step)
    window.runner.runEnded.connect(lambda *_: QTimer.singleShot(0, app.quit))
    window.runner.runFailed.connect(lambda *_: QTimer.singleShot(0, app.quit))
    app.processEvents()
    state["start"] = time.perf_counter()
    window.start_run()
    app.exec()
    window.close()
    from core.lm.threads import describe

    threads = describe(cfg.threads, beside_gui=True)
    print(f"GRPO sentiment in the window, seed {args.seed}, {os.cpu_count()} CPUs, "
          f"torch threads {threads}")
    print(f"launch -> window shown: {state['start'] - t_launch:.1f} s")
    if state["first"] is not None:
        print(f"Start -> first plotted step: {state['first'] - state['start']:.1f} s")
    if state["hit"] is None:
        print(f"target {args.target} not reached in {len(state['rewards'])} steps")
        return 1
    print(f"Start -> 10-step mean true reward >= {args.target}: "
          f"{state['hit'] - state['start']:.1f} s (step {state['hit_step']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
