"""Make the README screenshots: the window after a default run, and an overlay of two runs.
Run it under a real X server (Xvfb) so it shows what a person sees:

    xvfb-run -s "-screen 0 1600x1000x24" .venv/bin/python scripts/make_screenshots.py

(or `scripts/screenshot.sh` for a plain shot of the window). Writes docs/*.png.
"""

from __future__ import annotations

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


def main() -> None:
    from PySide6.QtWidgets import QApplication

    from core.config import RunConfig
    from explorer.app import APP_NAME
    from explorer.main_window import MainWindow

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 45.0
    QApplication.setApplicationName(APP_NAME + "-screenshots")
    app = QApplication(sys.argv[:1])
    app.setStyle("Fusion")
    out = ROOT / "docs"
    out.mkdir(exist_ok=True)
    window = MainWindow(data_dir=tempfile.mkdtemp(), restore=False)
    window.resize(1600, 1000)
    window.show()
    # The default sentiment run, to the end (150 steps, about a minute on 2 cores).
    window.panel.set_config(RunConfig.for_algo("grpo"))
    window.start_run()
    wait(app, 600, until=lambda: not window.runner.busy)
    wait(app, 1)
    window.grab().save(str(out / "main_window.png"))
    # A second objective on the same seed, then both overlaid.
    window.panel.set_config(RunConfig.for_algo("reinforce"))
    window.start_run()
    wait(app, seconds)
    window.runner.stop()
    wait(app, 60, until=lambda: not window.runner.busy)
    ids = [r.id for r in window.store.list_runs()]
    window.runs_panel.set_ticked(ids)
    window.set_overlays(ids)
    wait(app, 2)
    window.grab().save(str(out / "overlay.png"))
    window.dashboard.export_png(out / "dashboard_export.png", width=1800)
    window.close()
    print(f"wrote {out}/main_window.png, overlay.png, dashboard_export.png")


if __name__ == "__main__":
    main()
