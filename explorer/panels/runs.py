"""The runs panel: stored runs from a `RunStore`, to open, tick for an overlay, or delete.

`refresh()` updates rows in place (matched by run id) rather than rebuilding the model, so ticks,
the selection and the scroll position survive the periodic refresh that follows a live run.
The store belongs to the GUI thread: a `RunStore` is usable only on the thread that opened it.
"""

from __future__ import annotations

import html

from PySide6.QtCore import QModelIndex, QSortFilterProxyModel, Qt, QUrl, Signal
from PySide6.QtGui import (
    QAction,
    QColor,
    QDesktopServices,
    QGuiApplication,
    QKeySequence,
    QStandardItem,
    QStandardItemModel,
)
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHBoxLayout,
    QHeaderView,
    QLineEdit,
    QMenu,
    QMessageBox,
    QPushButton,
    QTableView,
    QVBoxLayout,
    QWidget,
)

from core.store.runs import RunInfo, RunStore
from explorer.panels.common import empty_stack, is_dark, muted_label, setup_table
from explorer.panels.run_menu import add_resume_actions, short_id, short_time

# Status and steps come right after the name: a dock is ~360 px wide and they matter most.
COLUMNS = ("", "Name / id", "Status", "Steps", "Task", "Objective", "Reward source", "Created")
TICK, NAME, STATUS, STEPS, TASK, ALGO, SOURCE, CREATED = range(len(COLUMNS))
STATUS_COLOURS = {"running": "#2f6fd6", "finished": "#2e8b3e", "stopped": "#c98a00",
                  "failed": "#d0453c", "interrupted": "#8a5cc2", "diverged": "#d0453c"}
EMPTY_TEXT = "No runs yet — press Start, or run `rlhf-explorer train` in a terminal"
ID_ROLE = Qt.ItemDataRole.UserRole + 1
SORT_ROLE = Qt.ItemDataRole.UserRole + 2
SEARCH_ROLE = Qt.ItemDataRole.UserRole + 3
class _RunFilter(QSortFilterProxyModel):
    """Matches the filter text, case-insensitively, against a row's id, name, task and algo."""

    def __init__(self, parent=None) -> None:
        super().__init__(parent)
        self.text = ""
        self.setSortRole(SORT_ROLE)

    def set_text(self, text: str) -> None:
        self.beginFilterChange()  # invalidateFilter() is deprecated since Qt 6.10
        self.text = text.strip().lower()
        self.endFilterChange(QSortFilterProxyModel.Direction.Rows)

    def filterAcceptsRow(self, row: int, parent: QModelIndex) -> bool:
        if not self.text:
            return True
        haystack = self.sourceModel().index(row, NAME, parent).data(SEARCH_ROLE) or ""
        return all(word in haystack for word in self.text.split())


class RunsPanel(QWidget):
    openRequested = Signal(str)
    overlayChanged = Signal(list)
    deleteRequested = Signal(str)
    runDeleted = Signal(str)
    resumeRequested = Signal(str, int)    # run id, the saved step to resume from (-1: the last)
    forkRequested = Signal(str, int)      # run id, the saved step a new run starts from

    def __init__(self, store: RunStore | None = None, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.store: RunStore | None = None
        self._live: str | None = None
        self._overlay: list[str] = []
        self._damages: dict[str, tuple] = {}

        self.model = QStandardItemModel(0, len(COLUMNS), self)
        self.model.setHorizontalHeaderLabels(list(COLUMNS))
        self.model.horizontalHeaderItem(TICK).setToolTip("Tick runs to overlay their curves")
        self.model.itemChanged.connect(self._item_changed)
        self.proxy = _RunFilter(self)
        self.proxy.setSourceModel(self.model)

        self.filter_edit = QLineEdit()
        self.filter_edit.setPlaceholderText("Filter by id, task, objective…")
        self.filter_edit.setClearButtonEnabled(True)
        self.filter_edit.textChanged.connect(self._filter_changed)
        self.open_button = QPushButton("Open")
        self.open_button.setToolTip("Redraw the plots from the selected run (or double-click it)")
        self.open_button.clicked.connect(self._open_selected)
        top = QHBoxLayout()
        top.setContentsMargins(0, 0, 0, 0)
        top.addWidget(self.filter_edit, 1)
        top.addWidget(self.open_button)

        self.table = QTableView()
        self.table.setModel(self.proxy)
        setup_table(self.table)
        self.table.setSelectionMode(QAbstractItemView.SelectionMode.SingleSelection)
        self.table.setTextElideMode(Qt.TextElideMode.ElideMiddle)  # keeps an id's random suffix
        header = self.table.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeMode.Interactive)
        header.setSectionResizeMode(TICK, QHeaderView.ResizeMode.Fixed)
        em = self.fontMetrics().horizontalAdvance("m")
        for col, width in ((TICK, 2.2), (NAME, 11), (STATUS, 8.5), (STEPS, 4), (TASK, 7),
                           (ALGO, 6.5), (SOURCE, 8.5), (CREATED, 8)):
            header.resizeSection(col, int(width * em))
        self.table.setSortingEnabled(True)
        self.table.sortByColumn(CREATED, Qt.SortOrder.DescendingOrder)
        self.table.doubleClicked.connect(lambda index: self._open(self._id_at(index)))
        self.table.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.table.customContextMenuRequested.connect(self._context_menu)
        self.table.selectionModel().selectionChanged.connect(self._update_buttons)
        delete = QAction("Delete run…", self.table)
        delete.setShortcut(QKeySequence.StandardKey.Delete)
        delete.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        delete.triggered.connect(lambda: self._delete_selected())
        self.table.addAction(delete)

        body, self._stack, self.empty = empty_stack(EMPTY_TEXT, self.table)

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.setSpacing(4)
        layout.addLayout(top)
        layout.addWidget(body, 1)
        self.footer = muted_label()
        layout.addWidget(self.footer)
        self._update_buttons()
        if store is not None:
            self.set_store(store)

    # --- public API
    def set_store(self, store: RunStore | None) -> None:
        self.store = store
        self.model.removeRows(0, self.model.rowCount())
        self.refresh()

    def refresh(self) -> None:
        """Re-read the store's runs; rows are updated in place so ticks and selection stay."""
        runs = self.store.list_runs() if self.store is not None else []
        rows = {self.model.item(r, NAME).data(ID_ROLE): r for r in range(self.model.rowCount())}
        self.model.blockSignals(True)  # one overlay check at the end, not one per cell
        try:
            for order, info in enumerate(runs):
                row = rows.pop(info.id, None)
                if row is None:
                    row = self.model.rowCount()
                    self.model.appendRow(self._new_row())
                self._fill_row(row, info, sort_key=len(runs) - order)
            for row in sorted(rows.values(), reverse=True):  # runs deleted elsewhere
                self.model.removeRow(row)
        finally:
            self.model.blockSignals(False)
        self.proxy.invalidate()
        self.table.viewport().update()
        self._update_empty()
        self._update_buttons()
        self._emit_overlay()

    def run_ids(self) -> list[str]:
        """Ids of the visible (filter-passing) rows, top to bottom."""
        return [self.proxy.index(r, NAME).data(ID_ROLE) for r in range(self.proxy.rowCount())]

    def ticked_ids(self) -> list[str]:
        """Ticked runs, in the order they are listed."""
        return [i for i in self._all_ids_in_view_order() if self._item(i, TICK).checkState()
                == Qt.CheckState.Checked]

    def set_ticked(self, run_id: str, ticked: bool = True) -> None:
        item = self._item(run_id, TICK)
        if item is not None:
            item.setCheckState(Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)

    def selected_id(self) -> str | None:
        rows = self.table.selectionModel().selectedRows(NAME)
        return rows[0].data(ID_ROLE) if rows else None

    def select(self, run_id: str) -> None:
        for r in range(self.proxy.rowCount()):
            if self.proxy.index(r, NAME).data(ID_ROLE) == run_id:
                self.table.selectRow(r)
                return

    def mark_live(self, run_id: str | None) -> None:
        """Show `run_id` (the run training now) in bold; None clears it."""
        self._live = run_id
        for r in range(self.model.rowCount()):
            live = self.model.item(r, NAME).data(ID_ROLE) == run_id
            for c in range(len(COLUMNS)):
                item = self.model.item(r, c)
                font = item.font()
                if font.bold() != live:
                    font.setBold(live)
                    item.setFont(font)

    def delete_run(self, run_id: str, confirm: bool = True) -> bool:
        """Delete a run from the store (after asking, unless `confirm` is False); True if done."""
        if self.store is None:
            return False
        if run_id == self._live:
            QMessageBox.information(self, "Run in progress",
                                    "This run is training now; stop it before deleting it.")
            return False
        if confirm:
            answer = QMessageBox.question(
                self, "Delete run",
                f"Delete run {run_id}?\n\nIts metrics, samples and checkpoints are removed "
                "from disk; this cannot be undone.",
                QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.Cancel,
                QMessageBox.StandardButton.Cancel)
            if answer != QMessageBox.StandardButton.Yes:
                return False
        self.deleteRequested.emit(run_id)
        self.store.delete_run(run_id)
        self.refresh()
        self.runDeleted.emit(run_id)
        return True

    # --- rows
    def _new_row(self) -> list[QStandardItem]:
        items = [QStandardItem() for _ in COLUMNS]
        for item in items:
            item.setEditable(False)
        items[TICK].setCheckable(True)
        items[TICK].setCheckState(Qt.CheckState.Unchecked)
        items[TICK].setToolTip("Tick to overlay this run's curves")
        items[STEPS].setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        return items

    def _fill_row(self, row: int, info: RunInfo, sort_key: int) -> None:
        def put(col: int, text: str, sort=None, tip: str | None = None) -> None:
            item = self.model.item(row, col)
            if item.text() != text:
                item.setText(text)
            item.setData(text.lower() if sort is None else sort, SORT_ROLE)
            if tip is not None:
                item.setToolTip(tip)

        put(TICK, "", sort=0)
        put(NAME, info.name or short_id(info.id),
            tip=info.id if not info.name else f"{info.name}\n{info.id}")
        name_item = self.model.item(row, NAME)
        name_item.setData(info.id, ID_ROLE)
        name_item.setData(" ".join(filter(None, (info.id, info.name, info.task, info.algo,
                                                  info.reward_source))).lower(), SEARCH_ROLE)
        put(TASK, info.task)
        put(ALGO, info.algo)
        put(SOURCE, info.reward_source)
        put(STEPS, str(info.steps_done), sort=info.steps_done)
        tip = {"running": "Training (here or in another process)", "finished": "Ran to the end",
               "stopped": "Stopped before the end; Resume carries it on",
               "interrupted": "Its process ended without finishing (killed or crashed); the "
                              "finished steps are kept, and Resume carries it on from its last "
                              "checkpoint"}.get(info.status)
        if info.status == "diverged":
            error = self.store.run_error(info.id) if self.store is not None else None
            tip = (f"<qt><b>{html.escape(error or 'diverged')}</b><br>The last good checkpoint "
                   "is kept.</qt>")
        if info.status == "failed":
            error = self.store.run_error(info.id) if self.store is not None else None
            error = html.escape(error or "no error recorded")
            tip = f"<qt><b>Failed</b><br><pre>{error}</pre></qt>"
        damage = self._damage(info)
        if damage:
            tip = f"<qt>{tip or info.status}<br><b>Damaged:</b> {html.escape(damage)}</qt>"
        put(STATUS, f"● {info.status}" + (" ⚠" if damage else ""), sort=info.status, tip=tip)
        self.model.item(row, STATUS).setForeground(self._status_colour(info.status))
        put(CREATED, short_time(info.created_at), sort=sort_key, tip=info.created_at)
        if self._live is not None:
            bold = info.id == self._live
            for c in range(len(COLUMNS)):
                item = self.model.item(row, c)
                if item.font().bold() != bold:
                    font = item.font()
                    font.setBold(bold)
                    item.setFont(font)

    def _damage(self, info: RunInfo) -> str | None:
        """The store's `damage` of a run, looked at again only when the run changed."""
        if self.store is None:
            return None
        key = (info.steps_done, info.status)
        cached = self._damages.get(info.id)
        if cached is None or cached[0] != key:
            cached = self._damages[info.id] = (key, self.store.damage(info.id))
        return cached[1]

    def _status_colour(self, status: str) -> QColor:
        colour = QColor(STATUS_COLOURS.get(status, "#808080"))
        return colour.lighter(140) if is_dark(self.palette()) else colour

    def _item(self, run_id: str, col: int) -> QStandardItem | None:
        for r in range(self.model.rowCount()):
            if self.model.item(r, NAME).data(ID_ROLE) == run_id:
                return self.model.item(r, col)
        return None

    def _all_ids_in_view_order(self) -> list[str]:
        ids = [self.model.item(r, NAME).data(ID_ROLE) for r in range(self.model.rowCount())]
        order = {i: n for n, i in enumerate(self.run_ids())}  # hidden rows go last
        return sorted(ids, key=lambda i: order.get(i, len(order)))

    def _id_at(self, index: QModelIndex) -> str | None:
        return index.siblingAtColumn(NAME).data(ID_ROLE) if index.isValid() else None

    # --- reactions
    def _item_changed(self, item: QStandardItem) -> None:
        if item.column() == TICK:
            self._emit_overlay()

    def _emit_overlay(self) -> None:
        ticked = self.ticked_ids()
        if ticked != self._overlay:
            self._overlay = ticked
            self.overlayChanged.emit(list(ticked))
        self._update_footer()

    def _update_footer(self) -> None:
        n = self.model.rowCount()
        text = f"{n} run{'s' if n != 1 else ''}"
        if self.proxy.rowCount() != n:
            text += f", {self.proxy.rowCount()} shown"
        if self._overlay:
            text += f" · {len(self._overlay)} ticked for overlay"
        self.footer.setText(text + " · double-click opens" if n else "")

    def _filter_changed(self, text: str) -> None:
        self.proxy.set_text(text)
        self._update_empty()
        self._update_footer()

    def _update_empty(self) -> None:
        if self.model.rowCount() == 0:
            self.empty.setText(EMPTY_TEXT)
        elif self.proxy.rowCount() == 0:
            self.empty.setText(f"No runs match “{self.filter_edit.text().strip()}”")
        else:
            self._stack.setCurrentWidget(self.table)
            return
        self._stack.setCurrentWidget(self.empty)

    def _update_buttons(self, *args) -> None:
        self.open_button.setEnabled(self.selected_id() is not None)

    def _open(self, run_id: str | None) -> None:
        if run_id:
            self.openRequested.emit(run_id)

    def _open_selected(self) -> None:
        self._open(self.selected_id())

    def _delete_selected(self) -> None:
        if (run_id := self.selected_id()) is not None:
            self.delete_run(run_id)

    def _context_menu(self, pos) -> None:
        run_id = self._id_at(self.table.indexAt(pos))
        if run_id is None:
            return
        self.select(run_id)
        menu = QMenu(self)
        menu.addAction("Open", lambda: self._open(run_id))
        tick = menu.addAction("Tick for overlay")
        tick.setCheckable(True)
        tick.setChecked(run_id in self.ticked_ids())
        tick.toggled.connect(lambda on: self.set_ticked(run_id, on))
        menu.addAction("Copy run id", lambda: QGuiApplication.clipboard().setText(run_id))
        if self.store is not None:
            folder = self.store.runs_dir / run_id
            menu.addAction("Show folder", lambda: QDesktopServices.openUrl(
                QUrl.fromLocalFile(str(folder))))
        if self.store is not None:
            add_resume_actions(menu, self.store, run_id, self.resumeRequested.emit,
                               self.forkRequested.emit)
        menu.addSeparator()
        menu.addAction("Delete…", lambda: self.delete_run(run_id))
        menu.exec(self.table.viewport().mapToGlobal(pos))
