"""The main window's menus, and the dashboard's export dialog. `build_menus` is given every
action it wires, so the menus hold no state and reach into nothing."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import Qt, QUrl
from PySide6.QtGui import QAction, QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMainWindow, QMessageBox, QWidget


def build_menus(window: QMainWindow, *, tabs, docks: dict, data_dir: Path,
                start: Callable, stop: Callable, request_round: Callable,
                export_dashboard: Callable[[str], None], import_rankings: Callable,
                export_rankings: Callable[[str], None], show_about: Callable,
                toggle_run: Callable) -> dict[str, QAction]:
    """File, View and Help on `window`'s menu bar, and Space for start / pause. Returns the
    actions whose state follows the run's: start and stop."""
    bar = window.menuBar()
    file_menu = bar.addMenu("&File")
    file_menu.setObjectName("fileMenu")
    start_action = file_menu.addAction("&Start run", start)
    stop_action = file_menu.addAction("S&top run", stop)
    round_action = file_menu.addAction("Feedback &round now", request_round)
    round_action.setObjectName("feedbackRoundAction")
    round_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
    round_action.setToolTip("Pause after this step and rank the current policy's samples")
    file_menu.addSeparator()
    for kind, label in (("png", "PNG image…"), ("svg", "SVG drawing…"), ("csv", "CSV…")):
        action = file_menu.addAction(f"Export dashboard as {label}",
                                     lambda k=kind: export_dashboard(k))
        action.setObjectName(f"exportDashboard{kind.upper()}Action")
    file_menu.addSeparator()
    action = file_menu.addAction("&Import rankings…", import_rankings)
    action.setObjectName("importRankingsAction")
    action.setToolTip("Add a JSONL file of rankings (TRL's pairwise or listwise) to the "
                      "current task's; all of the file or none of it")
    for fmt in ("listwise", "pairwise"):
        action = file_menu.addAction(f"Export rankings ({fmt})…",
                                     lambda f=fmt: export_rankings(f))
        action.setObjectName(f"exportRankings{fmt.capitalize()}Action")
    file_menu.addAction("Open data folder",
                        lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(str(data_dir))))
    file_menu.addSeparator()
    quit_action = file_menu.addAction("&Quit", window.close)
    quit_action.setObjectName("quitAction")
    quit_action.setShortcut(QKeySequence("Ctrl+Q"))
    view_menu = bar.addMenu("&View")
    view_menu.setObjectName("viewMenu")
    for i, name in enumerate(tabs.tabText(i) for i in range(tabs.count())):
        action = view_menu.addAction(f"&{name}", lambda i=i: tabs.setCurrentIndex(i))
        action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
    view_menu.addSeparator()
    for dock in docks.values():
        view_menu.addAction(dock.toggleViewAction())
    help_menu = bar.addMenu("&Help")
    help_menu.setObjectName("helpMenu")
    about = help_menu.addAction("&About RLHF Explorer", show_about)
    about.setObjectName("aboutAction")
    help_menu.addAction("About &Qt", lambda: QMessageBox.aboutQt(window))
    # Space toggles start/pause; line edits keep their spaces (they claim the key first).
    QShortcut(QKeySequence(Qt.Key_Space), window, toggle_run)
    return {"start": start_action, "stop": stop_action}


def export_dashboard(parent: QWidget, dashboard, kind: str,
                     say: Callable[[str], None]) -> None:
    """Ask where (and, for a PNG, how wide), then write every panel as PNG, SVG or CSV."""
    width = 1800
    if kind == "png":
        width, ok = QInputDialog.getInt(parent, "Export dashboard", "Width in pixels:", 1800,
                                        400, 8000, 100)
        if not ok:
            return
    filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)",
               "csv": "CSV table (*.csv)"}
    path, _ = QFileDialog.getSaveFileName(parent, "Export dashboard", f"dashboard.{kind}",
                                          filters[kind])
    if not path:
        return
    if not path.lower().endswith(f".{kind}"):
        path += f".{kind}"
    try:
        if kind == "png":
            dashboard.export_png(path, width=width)
        else:
            getattr(dashboard, f"export_{kind}")(path)
    except OSError as error:
        QMessageBox.warning(parent, "Export failed", f"Could not write {path}:\n{error}")
        return
    say(f"Exported {path}")
