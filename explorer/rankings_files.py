"""Rankings in and out of the window (File → Import rankings…, Export rankings…): the CLI's code
and its one-line errors, shown in dialogs. A part of the main window, given what it uses."""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget


class RankingsFiles:
    def __init__(self, parent: QWidget, rank_tab, task: Callable[[], str],
                 say: Callable[[str], None]):
        """parent: the window the dialogs belong to; rank_tab: holds the rankings store, and
        shows what came in; task(): the task whose rankings move; say(text): the status line."""
        self.parent, self.rank_tab, self.task, self.say = parent, rank_tab, task, say

    def import_rankings(self, path: str | None = None) -> int | None:
        """Import a JSONL file into the current task's rankings; the number stored, or None."""
        from core.reward_learning.rankings_io import import_rankings

        task = self.task()
        if path is None:
            path, _ = QFileDialog.getOpenFileName(self.parent, f"Import rankings for {task}", "",
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
                              QMessageBox.Ok, self.parent)
            box.setObjectName("importFailedBox")
            box.open()
            return None
        self.rank_tab.rankings_changed()
        self.say(f"Imported {len(ids)} rankings of {task} from {path}.")
        return len(ids)

    def export_rankings(self, fmt: str, path: str | None = None) -> int | None:
        from core.reward_learning.rankings_io import export_rankings

        task = self.task()
        if path is None:
            path, _ = QFileDialog.getSaveFileName(self.parent, f"Export {task} rankings ({fmt})",
                                                  f"{task}-{fmt}.jsonl", "JSON lines (*.jsonl)")
            if not path:
                return None
        try:
            if self.rank_tab.store is None:
                raise ValueError("the rankings store cannot be opened")
            n = export_rankings(self.rank_tab.store, path, fmt, task)
        except (ValueError, OSError) as error:
            QMessageBox.warning(self.parent, "Rankings not exported", str(error))
            return None
        self.say(f"Wrote {n} {fmt} lines to {path}.")
        return n
