"""The human-feedback screenshots, from a person's own rankings, at 1366x768 under Xvfb:

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_feedback_screenshots.py \
        dump                                   # print the 20 groups (fixed seed) to rank
    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_feedback_screenshots.py \
        play scripts/person_rankings.txt       # rank them by keyboard, train, run; writes docs/

`play` types the keys of RANKS_FILE into the Rank tab (one line per group: the ranks of its
responses in order, `s` to skip, `n` for not rankable), trains a reward model "mine" on the
stored rankings, runs GRPO on it for 150 steps and saves the Rank, Watch and Math tabs.
scripts/person_rankings.txt holds the rankings a person (the developer) gave the 20 groups `dump`
prints, judging them as reviews: positive and well-formed first.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def wait(app, seconds: float, until=None) -> None:
    end = time.monotonic() + seconds
    while time.monotonic() < end and not (until and until()):
        app.processEvents()
        time.sleep(0.01)


def rank_by_keyboard(app, panel, lines: list[str]) -> None:
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    keys = {"n": Qt.Key_N, "s": Qt.Key_Backspace,
            **{str(d): getattr(Qt, f"Key_{d}") for d in range(1, 10)}}
    t0 = time.monotonic()
    for line in lines:
        for ch in line:
            QTest.keyClick(panel.list, keys[ch])
            app.processEvents()
        if line not in ("n", "s"):
            QTest.keyClick(panel.list, Qt.Key_Return)
        app.processEvents()
    print(f"{len(lines)} groups ranked in {time.monotonic() - t0:.1f} s of key presses; "
          f"{panel.status.text()} {panel.count.text()}", flush=True)


def main() -> None:
    import numpy as np
    from PySide6.QtWidgets import QApplication

    from explorer.feedback_worker import SampleRequest
    from explorer.main_window import MainWindow
    from explorer.rank_tab import task_prompts

    phase, out = sys.argv[1], os.environ.get("OUT", str(ROOT / "docs"))
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    w = MainWindow(data_dir=Path(tempfile.mkdtemp()), restore=False)
    w.resize(1366, 768)
    w.show()
    wait(app, 1)
    panel = w.rank_tab.panel
    prompts = tuple(str(p) for p in
                    np.random.default_rng(5).choice(task_prompts("sentiment"), 20))
    t0 = time.monotonic()
    w.rank_tab.worker.submit(SampleRequest("sentiment", prompts, 4, "base", seed=5))
    wait(app, 60, until=lambda: panel.session.group is not None)
    # shown only now: the tab offers a random group of its own when it opens empty
    w.show_tab(w.rank_tab)
    print(f"first group after {time.monotonic() - t0:.1f} s", flush=True)
    if phase == "dump":
        groups = [panel.session.group, *panel.session.queue]
        for i, g in enumerate(groups):
            print(f"## {i} prompt: {g.prompt}")
            for j, r in enumerate(g.responses):
                print(f"  {j + 1}. {r}")
        with open("/tmp/feedback_groups.json", "w") as f:
            json.dump([[g.prompt, g.responses, g.true] for g in groups], f)
        w.close()
        return
    rank_by_keyboard(app, panel, Path(sys.argv[2]).read_text().split())
    box = w.rank_tab.rm_box
    box.name.setText("mine")
    t0 = time.monotonic()
    box.train_button.click()
    wait(app, 300, until=lambda: box.train_button.isEnabled())
    print(f"reward model trained in {time.monotonic() - t0:.1f} s: {box.result.text()}",
          flush=True)
    wait(app, 0.5)
    w.grab().save(f"{out}/rank_trained.png")
    # A fresh group, scored by the new model, half ranked: the panel as a person sees it.
    panel.sample_now(random=True)
    wait(app, 60, until=lambda: panel.session.group is not None)
    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    QTest.keyClick(panel.list, Qt.Key_2)
    QTest.keyClick(panel.list, Qt.Key_1)
    wait(app, 0.5)
    w.grab().save(f"{out}/rank_panel.png")
    box.use_button.click()
    w.panel.set_config(w.panel.config().with_changes(steps=150))
    w.show_tab(w.dashboard)
    t0 = time.monotonic()
    w.start_run()
    wait(app, 900, until=lambda: not w.runner.busy)
    print(f"run took {time.monotonic() - t0:.1f} s", flush=True)
    wait(app, 1)
    w.grab().save(f"{out}/run_on_mine.png")
    w.show_tab(w.math)
    wait(app, 1)
    w.grab().save(f"{out}/math_tab.png")
    run = w.store.list_runs()[0]
    _, true = w.store.metric_series(run.id, "reward/true_mean")
    _, learned = w.store.metric_series(run.id, "reward/mean")
    print(f"true reward {true[:10].mean():+.3f} -> {true[-20:].mean():+.3f}; learned "
          f"{learned[:10].mean():+.3f} -> {learned[-20:].mean():+.3f}")
    w.close()


if __name__ == "__main__":
    main()
