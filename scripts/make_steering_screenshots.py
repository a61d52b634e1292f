"""A person's whole journey in the window, at 1366x768 under Xvfb, timed (issue 16):

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_steering_screenshots.py \
        [--judge calm] [--out docs]

rank 30 groups by keyboard in the Rank tab, train a reward model (the ensemble, with its progress
bar and held-out accuracy), **Use for next run**, then a GRPO run with up to 3 rounds of 8 groups
(every 40 steps, or sooner when the members disagree) ranked by keyboard as they come. A scripted
person (`benchmarks/judges.py`, `calm` by default: a taste the task's reward ignores) chooses the
keys, so the journey is the same every time; the keys go through the same widgets a person's do.

Writes steer_trained.png (the Rank tab after training), steer_round.png (a round, half ranked:
the banner says why it asks) and steer_run.png (the Watch tab at the end: the rounds marked with
the person's win rate over the base model), and prints the time each part took: the journey apart
from a person's reading and thinking.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))


def wait(app, seconds: float, until=None) -> bool:
    """make_feedback_screenshots.wait, saying whether `until` came true."""
    from make_feedback_screenshots import wait as wait_for

    wait_for(app, seconds, until)
    return bool(until and until())


def rank_shown_group(app, panel, judge: str, rng) -> None:
    """Type the judge's ranks of the group on screen, row by row, then Enter."""
    import judges
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    group = panel.session.group
    ranks = judges.rank(judge, group.prompt, group.responses, rng)
    panel.list.setCurrentRow(0)
    for row in range(len(ranks)):
        QTest.keyClick(panel.list, getattr(Qt, f"Key_{ranks[panel.session.order[row]]}"))
        app.processEvents()
    QTest.keyClick(panel.list, Qt.Key_Return)
    app.processEvents()


def main() -> None:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--judge", default="calm")
    p.add_argument("--rankings", type=int, default=30)
    p.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "docs")))
    args = p.parse_args()
    rng = np.random.default_rng(0)
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    w = MainWindow(data_dir=Path(tempfile.mkdtemp()), restore=False)
    w.resize(1366, 768)
    w.show()
    wait(app, 1)
    times = {}

    # 1. rank 30 groups; the tab offers the first at once
    t0 = time.monotonic()
    w.show_tab(w.rank_tab)
    panel = w.rank_tab.panel
    ranked = 0
    while ranked < args.rankings:
        if not wait(app, 120, until=lambda: panel.session.group is not None):
            raise SystemExit("no group to rank came within 120 s")
        rank_shown_group(app, panel, args.judge, rng)
        ranked += 1
    times["rank 30 groups (key presses and waits for samples)"] = time.monotonic() - t0

    # 2. train the reward model
    box = w.rank_tab.rm_box
    box.name.setText("mine")
    t0 = time.monotonic()
    box.train_button.click()
    wait(app, 600, until=lambda: box.train_button.isEnabled())
    times["train the reward model"] = time.monotonic() - t0
    print(box.result.text(), flush=True)
    wait(app, 0.5)
    w.grab().save(f"{args.out}/steer_trained.png")

    # 3. use it, with rounds
    box.use_button.click()
    cfg = w.panel.config().with_changes(steps=150, feedback_every=40, feedback_groups=8,
                                        feedback_max_rounds=3, feedback_unsure=1.5,
                                        feedback_by="person")
    w.panel.set_config(cfg)
    w.show_tab(w.dashboard)
    t0 = time.monotonic()
    w.start_run()
    shot, in_rounds = False, 0.0
    while w.runner.busy:
        wait(app, 1, until=lambda: panel.session.round is not None or not w.runner.busy)
        if panel.session.round is None:
            continue
        r0 = time.monotonic()
        while panel.session.round is not None:
            if not wait(app, 60, until=lambda: panel.session.group is not None):
                break
            if not shot and len(panel.session.round) == 1:
                from PySide6.QtCore import Qt
                from PySide6.QtTest import QTest

                group = panel.session.group
                import judges
                ranks = judges.rank(args.judge, group.prompt, group.responses,
                                    np.random.default_rng(1))
                panel.list.setCurrentRow(0)
                for row in range(2):
                    key = ranks[panel.session.order[row]]
                    QTest.keyClick(panel.list, getattr(Qt, f"Key_{key}"))
                wait(app, 0.5)
                w.grab().save(f"{args.out}/steer_round.png")
                shot = True
                panel.session.ranks = [None] * len(panel.session.ranks)
                panel._render()
            rank_shown_group(app, panel, args.judge, rng)
        in_rounds += time.monotonic() - r0
    times["the run, rounds included"] = time.monotonic() - t0
    times["of which ranking the rounds"] = in_rounds
    w.show_tab(w.dashboard)
    wait(app, 2)
    w.grab().save(f"{args.out}/steer_run.png")
    run = w.store.list_runs()[0]
    _, win = w.store.metric_series(run.id, "eval/win_rate")
    _, fresh = w.store.metric_series(run.id, "rm/fresh_accuracy")
    _, true = w.store.metric_series(run.id, "reward/true_mean")
    print(f"win rate by round {np.round(win, 2).tolist()}, fresh accuracy "
          f"{np.round(fresh, 2).tolist()}, true reward {true[:10].mean():+.2f} -> "
          f"{true[-20:].mean():+.2f}")
    for what, seconds in times.items():
        print(f"{what}: {seconds:.0f} s")
    print(f"the journey: {sum(v for k, v in times.items() if not k.startswith('of')):.0f} s")
    w.close()


if __name__ == "__main__":
    main()
