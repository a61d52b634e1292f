"""The other route in the window, at 1366x768 under Xvfb (issue 18):

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_dpo_screenshots.py \
        [--judge calm] [--out docs]

30 rankings by a scripted person (`benchmarks/judges.py`) are stored first, as a person's would
be. In the Rank tab, **DPO on these rankings** sets up the next run; the run is online DPO, with
2 rounds of 8 groups that the same person ranks by keyboard as they come, a base-model sample
shuffled blind into each. Writes dpo_rank.png (the Rank tab with the two routes) and dpo_run.png
(the DPO tab at the end), and prints the run's numbers.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))
sys.path.insert(0, str(ROOT / "scripts"))


def main() -> None:
    import numpy as np
    from bench_few_rankings import store_rankings
    from make_steering_screenshots import rank_shown_group, wait
    from PySide6.QtWidgets import QApplication

    from core.lm.checkpoints import default_checkpoint, load_checkpoint
    from core.tasks import get_task
    from explorer.main_window import MainWindow

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--judge", default="calm")
    p.add_argument("--steps", type=int, default=90)
    p.add_argument("--out", default=os.environ.get("OUT", str(ROOT / "docs")))
    args = p.parse_args()
    data = Path(tempfile.mkdtemp())
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    store_rankings(data, args.judge, 0, get_task("sentiment"), base)
    rng = np.random.default_rng(0)
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    w = MainWindow(data_dir=data, restore=False)
    w.resize(1366, 768)
    w.show()
    wait(app, 1)

    w.show_tab(w.rank_tab)
    wait(app, 3, until=lambda: w.rank_tab.panel.session.group is not None)
    w.rank_tab.rm_box.dpo_button.click()
    wait(app, 0.5)
    w.grab().save(f"{args.out}/dpo_rank.png")
    print(w.status_text.text(), flush=True)

    cfg = w.panel.config().with_changes(steps=args.steps, feedback_every=30, feedback_groups=8,
                                        feedback_max_rounds=2, feedback_by="person")
    w.panel.set_config(cfg)
    w.show_tab(w.dashboard)
    w.start_run()
    panel = w.rank_tab.panel
    while w.runner.busy:
        wait(app, 1, until=lambda: panel.session.round is not None or not w.runner.busy)
        while panel.session.round is not None:
            if not wait(app, 60, until=lambda: panel.session.group is not None):
                break
            rank_shown_group(app, panel, args.judge, rng)
    w.show_tab(w.dashboard)
    dash = w.dashboard
    dash.tabs.setCurrentIndex(dash.tabs.indexOf(dash._objective_tabs["DPO"][0]))
    wait(app, 2)
    w.grab().save(f"{args.out}/dpo_run.png")
    run = w.store.list_runs()[0]
    got = {k: w.store.metric_series(run.id, k)[1] for k in
           ("eval/win_rate", "dpo/fresh_accuracy", "reward/true_mean", "dpo/heldout_accuracy")}
    print(f"run {run.status}: win rate by round {np.round(got['eval/win_rate'], 2).tolist()}, "
          f"fresh accuracy {np.round(got['dpo/fresh_accuracy'], 2).tolist()}, held-out "
          f"{np.round(got['dpo/heldout_accuracy'], 2).tolist()}, true reward "
          f"{got['reward/true_mean'][:10].mean():+.2f} -> "
          f"{got['reward/true_mean'][-20:].mean():+.2f}; banner: "
          f"{dash.banner.text() if dash.banner.isVisible() else '(none)'}")
    w.close()


if __name__ == "__main__":
    main()
