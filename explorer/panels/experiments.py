"""The Experiments tab: sweeps from the CLI or started here, each config's mean over seeds with a
band, live while trials run, the summary table, what it shows, and exports.

The panel reads the run store on the GUI thread's own connection (every second while shown);
sweeps write it from their driver process, which the window starts as `rlhf-explorer sweep ...`
(a QProcess), so the window never runs Ray or torch for a sweep. A run's metric is re-read only
when its step count moved, which keeps a poll of a 20-trial sweep to a few milliseconds.
"""

from __future__ import annotations

import csv
import math
import sys
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from pyqtgraph import exporters
from PySide6.QtCore import QProcess, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QMessageBox,
    QPushButton,
    QSplitter,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from core.storage import atomic_write
from core.sweeps.report import Series, curves, findings, summarise, table_rows
from core.sweeps.spec import DEFAULT_METRIC, PRESETS, SCALES, SweepSpec
from explorer.plots import style

BANDS = {"± 1 sd": "sd", "min–max": "minmax"}
SWEEP_COLUMNS = ("Sweep", "Status", "Trials", "Started")


class ExperimentsPanel(QWidget):
    sweepStarted = Signal(str)    # the preset started from here

    def __init__(self, data_dir: Path | None = None, parent=None):
        super().__init__(parent)
        self.data_dir = data_dir
        self.store = None
        self.sweep_id: str | None = None
        self._cache: dict[tuple[str, str], tuple[int, Series]] = {}
        self._shown: tuple[str, ...] = ()
        self._bands, self._summary = [], []
        self._process: QProcess | None = None
        self._process_err = ""

        self.sweeps = QTableWidget(0, len(SWEEP_COLUMNS), objectName="sweepsTable")
        self.sweeps.setHorizontalHeaderLabels(SWEEP_COLUMNS)
        self.sweeps.verticalHeader().hide()
        self.sweeps.setSelectionBehavior(QTableWidget.SelectRows)
        self.sweeps.setSelectionMode(QTableWidget.SingleSelection)
        self.sweeps.setEditTriggers(QTableWidget.NoEditTriggers)
        header = self.sweeps.horizontalHeader()
        header.setSectionResizeMode(QHeaderView.ResizeToContents)
        header.setSectionResizeMode(0, QHeaderView.Stretch)
        self.sweeps.setColumnHidden(3, True)   # the start time is in the status line and tooltip
        self.sweeps.itemSelectionChanged.connect(self._picked)

        self.preset = QComboBox(objectName="presetBox")
        self.preset.addItems(list(PRESETS))
        self.preset.setToolTip("A preset that puts one of the lecture's claims to the test "
                               "(docs/experiments.md)")
        self.scale = QComboBox(objectName="scaleBox")
        self.scale.addItems(list(SCALES))
        self.scale.setToolTip("laptop: within 10 minutes on 2 cores; full: more seeds, steps "
                              "and values, for a cluster")
        self.run_button = QPushButton("Run preset", objectName="runPresetButton")
        self.run_button.clicked.connect(self.start_preset)
        self.stop_button = QPushButton("Stop", objectName="stopSweepButton", enabled=False)
        self.stop_button.setToolTip("Every trial stops after its step, saved; `rlhf-explorer "
                                    "sweep --resume ID` finishes it")
        self.stop_button.clicked.connect(self.stop_sweep)

        # not `self.metric`: PySide would take it for an override of QWidget.metric() and call
        # it while painting
        self.metric_box = QComboBox(objectName="sweepMetricBox")
        self.metric_box.setMinimumContentsLength(12)
        self.metric_box.currentTextChanged.connect(lambda _: self.redraw())
        self.band = QComboBox(objectName="sweepBandBox")
        self.band.addItems(list(BANDS))
        self.band.currentTextChanged.connect(lambda _: self.redraw())
        exports = []
        for kind in ("png", "svg", "csv"):
            button = QPushButton(f"{kind.upper()}…", objectName=f"sweepExport{kind.upper()}")
            button.setToolTip(f"Export the {'table' if kind == 'csv' else 'figure'} as "
                              f"{kind.upper()}")
            button.clicked.connect(lambda _=False, k=kind: self._ask_export(k))
            exports.append(button)

        self.plot = pg.PlotWidget(objectName="sweepPlot")
        self.plot.showGrid(x=True, y=True, alpha=0.15)
        theme = style.theme_of(self)   # as the Watch tab's plots: the palette's colours
        self.plot.setBackground(theme.base)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.muted))
            axis.setTextPen(pg.mkPen(theme.text))
            axis.enableAutoSIPrefix(False)   # "reward (x0.001)" reads worse than 0.4
        self.plot.addLegend(offset=(8, 8), labelTextColor=theme.text)
        self.plot.setLabel("bottom", "step")
        self.table = QTableWidget(0, 0, objectName="sweepSummary")
        self.table.verticalHeader().hide()
        self.table.setEditTriggers(QTableWidget.NoEditTriggers)
        self.findings = QLabel(objectName="sweepFindings", wordWrap=True)
        self.findings.setTextInteractionFlags(Qt.TextSelectableByMouse)
        self.status = QLabel("No sweep yet: run a preset here, or `rlhf-explorer sweep "
                             "kl-vs-clip` in a terminal; it appears as it lands.",
                             objectName="sweepStatus", wordWrap=True)

        layout = QVBoxLayout(self)
        # Two columns, each with its own controls, so that the tab fits a 1366 px screen: the
        # sweeps and starting one on the left, the figure and its options on the right.
        left = QWidget()
        lv = QVBoxLayout(left)
        lv.setContentsMargins(0, 0, 0, 0)
        pick = QHBoxLayout()
        lv.addLayout(pick)
        pick.addWidget(self.preset, 1)
        pick.addWidget(self.scale)
        buttons = QHBoxLayout()
        lv.addLayout(buttons)
        buttons.addWidget(self.run_button)
        buttons.addWidget(self.stop_button)
        lv.addWidget(self.sweeps, 1)
        figure = QWidget()
        fv = QVBoxLayout(figure)
        fv.setContentsMargins(0, 0, 0, 0)
        options = QHBoxLayout()
        fv.addLayout(options)
        options.addWidget(QLabel("Metric"))
        options.addWidget(self.metric_box, 1)
        options.addWidget(QLabel("Band"))
        options.addWidget(self.band)
        for b in exports:
            options.addWidget(b)
        fv.addWidget(self.plot, 1)
        right = QSplitter(Qt.Vertical)
        right.addWidget(figure)
        bottom = QWidget()
        bv = QVBoxLayout(bottom)
        bv.setContentsMargins(0, 0, 0, 0)
        bv.addWidget(self.table, 1)
        bv.addWidget(self.findings)
        right.addWidget(bottom)
        right.setSizes([440, 220])
        split = QSplitter(Qt.Horizontal)
        split.addWidget(left)
        split.addWidget(right)
        split.setStretchFactor(1, 1)
        split.setSizes([280, 800])
        layout.addWidget(split, 1)
        layout.addWidget(self.status)

        self.timer = QTimer(self)
        self.timer.timeout.connect(self.poll)

    # --- the store
    def set_store(self, store) -> None:
        self.store = store
        self._cache.clear()
        self.poll()
        self.timer.start(1000)

    def poll(self) -> None:
        """Re-read the sweeps list, and the shown sweep's trials that moved. Cheap when idle."""
        if self.store is None or (not self.isVisible() and self._process is None):
            return
        sweeps = self.store.list_sweeps()
        self._fill_sweeps(sweeps)
        if self.sweep_id is None and sweeps:
            self.show_sweep(sweeps[0].id)
        elif self.sweep_id is not None:
            self.redraw(only_if_changed=True)

    def _fill_sweeps(self, sweeps) -> None:
        if self.sweeps.rowCount() != len(sweeps):
            self.sweeps.setRowCount(len(sweeps))
        self.sweeps.blockSignals(True)
        try:
            for row, s in enumerate(sweeps):
                trials = self.store.trials(s.id)
                total = len(s.spec.get("configs", [])) * len(s.spec.get("seeds", []))
                done = sum(t.run.status == "finished" for t in trials)
                cells = (s.name, s.status, f"{done}/{total}", s.created_at[5:16].replace("T", " "))
                for col, text in enumerate(cells):
                    item = self.sweeps.item(row, col)
                    if item is None:
                        item = QTableWidgetItem()
                        self.sweeps.setItem(row, col, item)
                    if item.text() != text:
                        item.setText(text)
                    item.setData(Qt.UserRole, s.id)
                    item.setToolTip(f"{s.id}\nstarted {s.created_at.replace('T', ' ')} UTC")
                if s.id == self.sweep_id and not self.sweeps.selectedItems():
                    self.sweeps.selectRow(row)
        finally:
            self.sweeps.blockSignals(False)

    def _picked(self) -> None:
        items = self.sweeps.selectedItems()
        if items:
            self.show_sweep(items[0].data(Qt.UserRole))

    def show_sweep(self, sweep_id: str) -> None:
        self.sweep_id = sweep_id
        spec = self._spec()
        names = self._metric_names()
        self.metric_box.blockSignals(True)
        self.metric_box.clear()
        self.metric_box.addItems(names or [spec.metric])
        self.metric_box.setCurrentText(spec.metric if spec.metric in names or not names else
                                   names[0])
        self.metric_box.blockSignals(False)
        for row in range(self.sweeps.rowCount()):
            if self.sweeps.item(row, 0).data(Qt.UserRole) == sweep_id:
                self.sweeps.blockSignals(True)
                self.sweeps.selectRow(row)
                self.sweeps.blockSignals(False)
        self.redraw()

    def _spec(self) -> SweepSpec:
        return SweepSpec.from_json(self.store.get_sweep(self.sweep_id).spec)

    def _metric_names(self) -> list[str]:
        for t in self.store.trials(self.sweep_id):
            if t.run.steps_done:
                return self.store.metric_names(t.run.id)
        return []

    def series(self) -> tuple[list[Series], bool]:
        """Each trial's metric, and whether any changed; a run is re-read only when its step
        count moved."""
        metric = self.metric_box.currentText() or DEFAULT_METRIC
        out, changed = [], False
        order = {label: i for i, (label, _) in enumerate(self._spec().configs)}
        trials = sorted(self.store.trials(self.sweep_id),   # the spec's order, as the report's
                        key=lambda t: (order.get(t.label, len(order)), t.seed))
        for t in trials:
            key = (t.run.id, metric)
            cached = self._cache.get(key)
            if cached is None or cached[0] != t.run.steps_done:
                steps, values = self.store.metric_series(t.run.id, metric)
                cached = (t.run.steps_done, Series(t.label, t.seed, steps, values))
                self._cache[key] = cached
                changed = True
            out.append(cached[1])
        shown = tuple(t.run.id for t in trials)
        if shown != self._shown:   # a trial started, or one was deleted
            self._shown, changed = shown, True
        return out, changed

    # --- drawing
    def redraw(self, only_if_changed: bool = False) -> None:
        if self.store is None or self.sweep_id is None:
            return
        series, changed = self.series()
        if only_if_changed and not changed:
            self._status_line()
            return
        spec = self._spec()
        self._bands = curves(series)
        self._summary = summarise(series, spec.threshold)
        self._draw(self._bands)
        self._fill_table(table_rows(self._summary, spec.threshold))
        self.findings.setText("\n".join(findings(spec, self._summary)))
        self._status_line()

    def _draw(self, bands) -> None:
        self.plot.clear()
        legend = self.plot.plotItem.legend
        if legend is not None:
            legend.clear()
        minmax = BANDS[self.band.currentText()] == "minmax"
        dark = style.theme_of(self).dark
        for i, b in enumerate(bands):
            color = style.run_color(i, dark)
            lo, hi = (b.lo, b.hi) if minmax else (b.mean - b.sd, b.mean + b.sd)
            if np.any(b.n > 1):
                upper = pg.PlotCurveItem(b.x, hi, pen=pg.mkPen(None))
                lower = pg.PlotCurveItem(b.x, lo, pen=pg.mkPen(None))
                self.plot.addItem(pg.FillBetweenItem(upper, lower,
                                                     brush=style.with_alpha(color,
                                                                            style.BAND_ALPHA)))
            # past the palette's colours, a dashed line tells a config from its colour twin
            self.plot.plot(b.x, b.mean, pen=style.line_pen(color, i // len(style.RUN_PALETTE)),
                           name=f"{b.label} (n={int(b.n.max())})")
        self.plot.setLabel("left", self.metric_box.currentText())

    def _fill_table(self, rows: list[dict]) -> None:
        cols = list(rows[0]) if rows else []
        self.table.setColumnCount(len(cols))
        self.table.setHorizontalHeaderLabels(cols)
        self.table.setRowCount(len(rows))
        for r, row in enumerate(rows):
            for c, col in enumerate(cols):
                self.table.setItem(r, c, QTableWidgetItem(str(row[col])))
        self.table.resizeColumnsToContents()

    def _status_line(self) -> None:
        trials = self.store.trials(self.sweep_id)
        info = self.store.get_sweep(self.sweep_id)
        total = len(info.spec.get("configs", [])) * len(info.spec.get("seeds", []))
        count = {s: sum(t.run.status == s for t in trials) for s in
                 ("finished", "running", "failed", "stopped", "interrupted")}
        running = [t for t in trials if t.run.status == "running"]
        steps = ", ".join(f"{t.label} s{t.seed}: {t.run.steps_done}" for t in running[:4])
        self.status.setText(
            f"{info.name} ({info.id}), {info.status}: {count['finished']}/{total} trials done, "
            f"{count['running']} running, {count['failed']} failed"
            + (f", {count['stopped'] + count['interrupted']} stopped" if
               count["stopped"] + count["interrupted"] else "")
            + (f" · {steps}" if steps else "") + self._process_note())

    def _process_note(self) -> str:
        return "" if self._process is None else " · started here"

    # --- starting and stopping a preset (a `rlhf-explorer sweep` process)
    def start_preset(self) -> None:
        if self._process is not None:
            return
        process = QProcess(self)
        process.setProgram(sys.executable)
        args = ["-m", "explorer.app", "sweep", self.preset.currentText(), "--scale",
                self.scale.currentText(), "--quiet"]
        if self.data_dir is not None:
            args += ["--data-dir", str(self.data_dir)]
        process.setArguments(args)
        process.readyReadStandardError.connect(
            lambda: setattr(self, "_process_err", self._process_err + bytes(
                process.readAllStandardError()).decode(errors="replace")))
        process.finished.connect(self._process_ended)
        self._process, self._process_err = process, ""
        self.sweep_id = None   # show the new one as soon as it lands
        process.start()
        self.run_button.setEnabled(False)
        self.stop_button.setEnabled(True)
        self.status.setText(f"Starting {self.preset.currentText()} ({self.scale.currentText()})"
                            " on a local Ray…")
        self.sweepStarted.emit(self.preset.currentText())

    def stop_sweep(self) -> None:
        if self._process is not None:
            self.status.setText("Stopping: every trial finishes its step and is saved…")
            self._process.terminate()   # SIGTERM: the sweep stops its trials, saved

    def _process_ended(self, code: int, _status) -> None:
        err = self._process_err.strip().splitlines()
        self._process = None
        self.run_button.setEnabled(True)
        self.stop_button.setEnabled(False)
        self.poll()
        if code not in (0, 3, 130, 143) and err:
            self.status.setText(f"The sweep ended with an error: {err[-1]}")

    def shutdown(self) -> None:
        """The window closes: stop a sweep started here (saved; `sweep --resume` finishes it)."""
        if self._process is not None:
            self._process.terminate()
            self._process.waitForFinished(60_000)

    # --- export
    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        exporter = exporters.ImageExporter(self.plot.plotItem)
        exporter.parameters()["width"] = int(width)
        exporter.parameters()["background"] = style.theme_of(self).base
        atomic_write(path, lambda tmp: exporter.export(str(tmp)))
        return Path(path)

    def export_svg(self, path: str | Path) -> Path:
        exporter = exporters.SVGExporter(self.plot.plotItem)
        exporter.parameters()["background"] = style.theme_of(self).base
        atomic_write(path, lambda tmp: exporter.export(str(tmp)))
        return Path(path)

    def export_csv(self, path: str | Path) -> Path:
        """The summary table, then each config's band point by point."""
        def write(tmp: Path) -> None:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                w = csv.writer(f)
                w.writerow(["config", "seeds", "final_mean", "final_sd", "start_mean",
                            "steps_to_threshold"])
                for s in self._summary:
                    w.writerow([s.label, s.n, _num(s.final_mean), _num(s.final_sd),
                                _num(s.start_mean), _num(s.steps_to_threshold)])
                w.writerow([])
                w.writerow(["config", "step", "mean", "sd", "min", "max", "seeds"])
                for b in self._bands:
                    for row in zip(b.x, b.mean, b.sd, b.lo, b.hi, b.n, strict=True):
                        w.writerow([b.label, *(_num(v) for v in row[:-1]), int(row[-1])])

        atomic_write(path, write)
        return Path(path)

    def _ask_export(self, kind: str) -> None:
        if self.sweep_id is None:
            return
        name = f"{self.sweep_id}.{kind}"
        path, _ = QFileDialog.getSaveFileName(self, f"Export as {kind.upper()}", name)
        if not path:
            return
        try:
            getattr(self, f"export_{kind}")(path)
        except OSError as error:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{error}")


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"
