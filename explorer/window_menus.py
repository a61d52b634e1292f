"""The main window's menus, dashboard export, About box and saved window state (a mixin of
`MainWindow`, kept apart so the window's layout and run wiring stay readable)."""

from __future__ import annotations

import json

from PySide6.QtCore import QByteArray, QSettings, Qt, QUrl
from PySide6.QtGui import QDesktopServices, QKeySequence, QShortcut
from PySide6.QtWidgets import QFileDialog, QInputDialog, QMessageBox

from core.config import RunConfig
from explorer.about import make_about_box

SETTINGS_LAYOUT_VERSION = 2   # 2: the Watch / Rank / Math tabs


class WindowMenus:
    def _build_menus(self) -> None:
        file_menu = self.menuBar().addMenu("&File")
        file_menu.setObjectName("fileMenu")
        self.start_action = file_menu.addAction("&Start run", self.start_run)
        self.stop_action = file_menu.addAction("S&top run", self.controller.stop)
        round_action = file_menu.addAction("Feedback &round now", self.request_round)
        round_action.setObjectName("feedbackRoundAction")
        round_action.setShortcut(QKeySequence("Ctrl+Shift+R"))
        round_action.setToolTip("Pause after this step and rank the current policy's samples")
        file_menu.addSeparator()
        for kind, label in (("png", "PNG image…"), ("svg", "SVG drawing…"), ("csv", "CSV…")):
            action = file_menu.addAction(f"Export dashboard as {label}",
                                         lambda k=kind: self.export_dashboard(k))
            action.setObjectName(f"exportDashboard{kind.upper()}Action")
        file_menu.addSeparator()
        action = file_menu.addAction("&Import rankings…", self.import_rankings)
        action.setObjectName("importRankingsAction")
        action.setToolTip("Add a JSONL file of rankings (TRL's pairwise or listwise) to the "
                          "current task's; all of the file or none of it")
        for fmt in ("listwise", "pairwise"):
            action = file_menu.addAction(f"Export rankings ({fmt})…",
                                         lambda f=fmt: self.export_rankings(f))
            action.setObjectName(f"exportRankings{fmt.capitalize()}Action")
        file_menu.addAction("Open data folder",
                            lambda: QDesktopServices.openUrl(QUrl.fromLocalFile(
                                str(self.data_dir))))
        file_menu.addSeparator()
        quit_action = file_menu.addAction("&Quit", self.close)
        quit_action.setObjectName("quitAction")
        quit_action.setShortcut(QKeySequence("Ctrl+Q"))
        view_menu = self.menuBar().addMenu("&View")
        view_menu.setObjectName("viewMenu")
        for i, name in enumerate(self.tabs.tabText(i) for i in range(self.tabs.count())):
            action = view_menu.addAction(f"&{name}", lambda i=i: self.tabs.setCurrentIndex(i))
            action.setShortcut(QKeySequence(f"Ctrl+{i + 1}"))
        view_menu.addSeparator()
        for dock in self.docks.values():
            view_menu.addAction(dock.toggleViewAction())
        help_menu = self.menuBar().addMenu("&Help")
        help_menu.setObjectName("helpMenu")
        about = help_menu.addAction("&About RLHF Explorer", self.show_about)
        about.setObjectName("aboutAction")
        help_menu.addAction("About &Qt", lambda: QMessageBox.aboutQt(self))
        # Space toggles start/pause; line edits keep their spaces (they claim the key first).
        QShortcut(QKeySequence(Qt.Key_Space), self, self.toggle_run)

    # --- export, about
    def export_dashboard(self, kind: str) -> None:
        width = 1800
        if kind == "png":
            width, ok = QInputDialog.getInt(self, "Export dashboard", "Width in pixels:", 1800,
                                            400, 8000, 100)
            if not ok:
                return
        filters = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)",
                   "csv": "CSV table (*.csv)"}
        path, _ = QFileDialog.getSaveFileName(self, "Export dashboard", f"dashboard.{kind}",
                                              filters[kind])
        if not path:
            return
        if not path.lower().endswith(f".{kind}"):
            path += f".{kind}"
        try:
            if kind == "png":
                self.dashboard.export_png(path, width=width)
            else:
                getattr(self.dashboard, f"export_{kind}")(path)
        except OSError as error:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{error}")
            return
        self.status_text.setText(f"Exported {path}")

    # --- rankings in and out: the CLI's code and its one-line errors, in dialogs
    def _ranking_task(self) -> str:
        cfg = self.panel.config()
        return cfg.task if cfg is not None else self.rank_tab.task

    def import_rankings(self, path: str | None = None) -> int | None:
        """Import a JSONL file into the current task's rankings; the number stored, or None."""
        from core.reward_learning.rankings_io import import_rankings

        task = self._ranking_task()
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self, f"Import rankings for {task}", "",
                                                  "JSON lines (*.jsonl *.json);;All files (*)")
            if not path:
                return None
        store = self.rank_tab.store
        try:
            if store is None:
                raise ValueError("the rankings store cannot be opened")
            ids = import_rankings(store, path, task)
        except (ValueError, OSError) as error:
            box = QMessageBox(QMessageBox.Warning, "Rankings not imported", str(error),
                              QMessageBox.Ok, self)
            box.setObjectName("importFailedBox")
            box.open()
            return None
        self.rank_tab.browser.refresh()
        self.rank_tab.panel._show_count()
        self.status_text.setText(f"Imported {len(ids)} rankings of {task} from {path}.")
        return len(ids)

    def export_rankings(self, fmt: str, path: str | None = None) -> int | None:
        from core.reward_learning.rankings_io import export_rankings

        task = self._ranking_task()
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self, f"Export {task} rankings ({fmt})",
                                                  f"{task}-{fmt}.jsonl",
                                                  "JSON lines (*.jsonl)")
            if not path:
                return None
        try:
            if self.rank_tab.store is None:
                raise ValueError("the rankings store cannot be opened")
            n = export_rankings(self.rank_tab.store, path, fmt, task)
        except (ValueError, OSError) as error:
            QMessageBox.warning(self, "Rankings not exported", str(error))
            return None
        self.status_text.setText(f"Wrote {n} {fmt} lines to {path}.")
        return n

    def show_about(self) -> QMessageBox:
        box = make_about_box(self)
        box.open()
        return box

    # --- settings and closing
    def _restore_settings(self) -> bool:
        s = QSettings()
        if s.value("layoutVersion", 0, int) != SETTINGS_LAYOUT_VERSION:
            return False
        geometry, state = s.value("geometry"), s.value("windowState")
        if isinstance(geometry, QByteArray):
            self.restoreGeometry(geometry)
        if isinstance(state, QByteArray):
            self.restoreState(state)
        text = s.value("lastConfig", "", str)
        if text:
            try:
                self.panel.set_config(RunConfig.from_dict(json.loads(text), algo_defaults=False))
            except (ValueError, TypeError):
                pass  # settings from an older version: start from defaults
        return True

    def _save_settings(self) -> None:
        s = QSettings()
        s.setValue("layoutVersion", SETTINGS_LAYOUT_VERSION)
        s.setValue("geometry", self.saveGeometry())
        s.setValue("windowState", self.saveState())
        cfg = self.panel.config()
        if cfg is not None:
            s.setValue("lastConfig", json.dumps(cfg.to_dict()))

