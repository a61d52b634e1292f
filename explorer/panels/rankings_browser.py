"""Browse, edit and delete stored rankings (of the current task), newest first."""

from __future__ import annotations

from PySide6.QtCore import Qt, Signal
from PySide6.QtGui import QKeySequence, QShortcut
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QMessageBox,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

COLUMNS = ("#", "source", "prompt", "best response", "ranks", "when")


def parse_ranks(text: str, k: int) -> tuple[int, ...] | None:
    """'1,3,2' or '1 3 2' -> ranks; 'none' -> not rankable. ValueError otherwise."""
    text = text.strip().lower()
    if text in ("none", "not rankable", "-"):
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != k or not all(p.isdigit() for p in parts):
        raise ValueError(f"give {k} whole numbers, 1 = best (ties equal), or 'none'")
    return tuple(int(p) for p in parts)


class RankingsBrowser(QWidget):
    changed = Signal()

    def __init__(self, parent=None):
        super().__init__(parent)
        self.store, self.task = None, None
        self.table = QTableWidget(0, len(COLUMNS), objectName="rankingsTable")
        self.table.setHorizontalHeaderLabels(COLUMNS)
        self.table.setSelectionBehavior(QAbstractItemView.SelectRows)
        self.table.setEditTriggers(QAbstractItemView.NoEditTriggers)
        self.table.verticalHeader().setVisible(False)
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(2, QHeaderView.Stretch)
        header.setSectionResizeMode(3, QHeaderView.Stretch)
        self.edit_button = QPushButton("Edit ranks…", objectName="rankingsEdit")
        self.delete_button = QPushButton("Delete", objectName="rankingsDelete")
        self.delete_button.setToolTip("Delete the selected rankings (Del)")
        row = QHBoxLayout()
        row.addWidget(self.edit_button)
        row.addWidget(self.delete_button)
        row.addStretch(1)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.table, 1)
        layout.addLayout(row)
        self.edit_button.clicked.connect(self.edit_selected)
        self.delete_button.clicked.connect(self.delete_selected)
        self.table.doubleClicked.connect(self.edit_selected)
        QShortcut(QKeySequence.Delete, self.table, self.delete_selected,
                  context=Qt.WidgetShortcut)

    def set_store(self, store, task: str | None) -> None:
        self.store, self.task = store, task
        self.refresh()

    def refresh(self) -> None:
        if self.store is None:
            return
        rankings = list(reversed(self.store.list(task=self.task)))
        self.table.setRowCount(len(rankings))
        for row, r in enumerate(rankings):
            best = r.responses[r.ranks.index(min(r.ranks))] if r.ranks else "(not rankable)"
            cells = (str(r.id), r.source, r.prompt, best,
                     " ".join(map(str, r.ranks)) if r.ranks else "none",
                     r.created_at.replace("T", " ").rstrip("Z"))
            for col, text in enumerate(cells):
                item = QTableWidgetItem(text)
                item.setData(Qt.UserRole, r.id)
                item.setToolTip("\n".join(f"{a if r.ranks else '-'}: {t}" for a, t in
                                          zip(r.ranks or [None] * len(r.responses),
                                              r.responses, strict=True)))
                self.table.setItem(row, col, item)

    def selected_ids(self) -> list[int]:
        rows = {i.row() for i in self.table.selectedIndexes()}
        return [self.table.item(r, 0).data(Qt.UserRole) for r in sorted(rows)]

    def edit_selected(self, *_args, text: str | None = None) -> None:
        ids = self.selected_ids()
        if not ids:
            return
        r = self.store.get(ids[0])
        if text is None:
            listing = "\n".join(f"{i + 1}. {t}" for i, t in enumerate(r.responses))
            text, ok = QInputDialog.getText(
                self, "Edit ranks", f"{r.prompt}\n\n{listing}\n\nRanks in this order "
                "(1 = best, ties equal), or 'none':",
                text=" ".join(map(str, r.ranks)) if r.ranks else "none")
            if not ok:
                return
        try:
            self.store.update_ranks(r.id, parse_ranks(text, len(r.responses)))
        except ValueError as exc:
            QMessageBox.warning(self, "Ranks not changed", str(exc))
            return
        self.refresh()
        self.changed.emit()

    def delete_selected(self) -> None:
        for rid in self.selected_ids():
            self.store.delete(rid)
        self.refresh()
        self.changed.emit()
