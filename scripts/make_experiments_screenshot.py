"""docs/experiments_tab.png: the Experiments tab following a sweep from a data folder, and each
preset's report figure copied into docs/ (docs/experiments_<preset>.png).

    xvfb-run -a -s "-screen 0 1366x768x24" .venv/bin/python scripts/make_experiments_screenshot.py \
        --data DIR [--sweep ID] [--figures DIR ...]

DIR is a data folder holding a sweep (run one first: `rlhf-explorer sweep kl-vs-clip --data-dir
DIR`); --figures names data folders whose newest sweep's report figure is copied into docs/.
Needs an X server (Xvfb); the window is grabbed at 1366 x 768, as a laptop shows it.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def main() -> int:
    p = argparse.ArgumentParser()
    p.add_argument("--data", required=True)
    p.add_argument("--sweep")
    p.add_argument("--out", default=str(ROOT / "docs"))
    p.add_argument("--figures", nargs="*", default=[])
    args = p.parse_args()

    from PySide6.QtCore import QTimer
    from PySide6.QtWidgets import QApplication

    from core.store.runs import RunStore
    from explorer.main_window import MainWindow

    for folder in args.figures:
        with RunStore(folder, read_only=True) as store:
            sweep = store.list_sweeps()[0]
            figure = store.sweep_dir(sweep.id) / "report" / "figure.png"
        if figure.exists():
            shutil.copy(figure, Path(args.out) / f"experiments_{sweep.name}.png")
    app = QApplication.instance() or QApplication([])
    window = MainWindow(data_dir=args.data, restore=False)
    window.resize(1366, 768)
    window.show()
    window.show_tab(window.experiments)
    if args.sweep:
        window.experiments.show_sweep(args.sweep)

    def shoot():
        window.experiments.poll()
        window.grab().save(str(Path(args.out) / "experiments_tab.png"))
        window.close()
        app.quit()

    QTimer.singleShot(2500, shoot)
    app.exec()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
