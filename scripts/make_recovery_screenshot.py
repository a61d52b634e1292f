"""docs/recovery.png: the runs list after a finished, a stopped, a killed and a diverged run, with
the diverged run open (its marker on the plots) and the Resume / Fork menu of the killed one.

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_recovery_screenshot.py

Needs an X server (Xvfb) and ImageMagick's `import`; the screenshot is of the whole screen, as
a person sees it.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from core.config import RunConfig  # noqa: E402
from core.reward_learning import reward_sources  # noqa: E402
from core.rl.run_control import RunControl  # noqa: E402
from core.store.runs import RunStore  # noqa: E402
from core.store.session import train_and_record  # noqa: E402

FAST = dict(task="sentiment", prompts_per_step=4, group_size=4, threads=1, checkpoint_every=10)


def make_runs(data: Path) -> tuple[str, str]:
    with RunStore(data) as store:
        train_and_record(RunConfig.for_algo("ppo", **FAST, steps=30), store)
        control = RunControl(RunConfig.for_algo("reinforce", **FAST, steps=40))
        train_and_record(control.cfg, store, control=control,
                         on_step=lambda r: r.step == 24 and control.request_stop())
        real, calls = reward_sources.TrueReward.score, []

        def poisoned(self, *args):
            calls.append(1)
            scored = real(self, *args)
            if len(calls) == 38:
                scored.scores[3] = np.nan
            return scored

        reward_sources.TrueReward.score = poisoned
        try:
            diverged, _ = train_and_record(
                RunConfig.for_algo("grpo", **FAST, steps=60, lr=3e-4), store)
        finally:
            reward_sources.TrueReward.score = real
    killed = textwrap.dedent("""
        import os, sys
        from core.config import RunConfig
        from core.store.runs import RunStore
        from core.store.session import train_and_record
        cfg = RunConfig.for_algo("grpo", task="sentiment", prompts_per_step=4, group_size=4,
                                 threads=1, checkpoint_every=10, steps=100)
        store = RunStore(sys.argv[1])
        train_and_record(cfg, store, on_step=lambda r: r.step == 22 and os._exit(9))
    """)
    subprocess.run([sys.executable, "-c", killed, str(data)], cwd=ROOT, check=False)
    with RunStore(data) as store:
        interrupted = next(r.id for r in store.list_runs() if r.status == "interrupted")
    return diverged, interrupted


def main() -> int:
    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    tmp = Path(tempfile.mkdtemp(prefix="recovery_shot_"))
    diverged, interrupted = make_runs(tmp / "data")
    app = QApplication.instance() or QApplication([])
    app.setStyle("Fusion")
    from explorer.main_window import MainWindow

    window = MainWindow(data_dir=tmp / "data", restore=False)
    window.resize(1366, 740)
    window.move(0, 0)
    window.show()
    window.open_run(diverged)
    out = ROOT / "docs" / "recovery.png"

    def menu() -> None:
        table = window.runs_panel.table
        window.runs_panel.select(interrupted)
        row = table.selectionModel().selectedRows()[0].row()
        pos = table.visualRect(table.model().index(row, 2)).center()
        QTimer.singleShot(1200, shoot)
        window.runs_panel._context_menu(pos)

    def shoot() -> None:
        subprocess.run(["import", "-window", "root", str(out)], check=True)
        app.quit()

    QTimer.singleShot(2500, menu)
    QTimer.singleShot(20_000, app.quit)
    app.exec()
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
