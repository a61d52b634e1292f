"""File writers shared by a single panel and the whole dashboard."""

from __future__ import annotations

import csv
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol

from PySide6.QtCore import QPoint, QRectF, QSize
from PySide6.QtGui import QAction, QColor, QImage, QPainter
from PySide6.QtSvg import QSvgGenerator
from PySide6.QtWidgets import QFileDialog, QMessageBox, QWidget

from core.storage import atomic_write
from explorer.plots.series import MetricSeries


class Exportable(Protocol):
    """What the export actions need of a panel (a MetricPlot): no import of it, so no cycle."""

    title: str
    plot_item: object
    plot_widget: object

    def export_png(self, path: str | Path) -> Path: ...
    def export_svg(self, path: str | Path) -> Path: ...
    def export_csv(self, path: str | Path) -> Path: ...

CSV_HEADER = ("run", "metric", "step", "time_s", "value")


def write_long_csv(path: str | Path, series: Iterable[tuple[str, str, MetricSeries]]) -> Path:
    """One row per stored point, long format, so any tool can pivot it by run and metric."""
    path = Path(path)

    def write(tmp: Path) -> None:
        with tmp.open("w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_HEADER)
            for run, metric, s in series:
                # repr keeps full float precision; NaN is written as "nan", which pandas reads.
                for step, time_s, value in zip(s.steps, s.times, s.values, strict=True):
                    writer.writerow((run, metric, _num(step), _num(time_s), repr(float(value))))

    atomic_write(path, write)
    return path


def _num(value: float) -> str:
    value = float(value)
    return str(int(value)) if value.is_integer() else repr(value)


def render_png(widget: QWidget, path: str | Path, size: QSize, background: QColor) -> Path:
    """Paint `widget` (laid out at its own size) scaled to fill `size` pixels."""
    image = QImage(size, QImage.Format.Format_ARGB32)
    image.fill(background)
    painter = QPainter(image)
    try:
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setRenderHint(QPainter.RenderHint.TextAntialiasing)
        painter.scale(size.width() / widget.width(), size.height() / widget.height())
        widget.render(painter, QPoint(0, 0))
    finally:
        painter.end()
    def write(tmp: Path) -> None:
        if not image.save(str(tmp)):
            raise OSError(f"could not write {path}")

    atomic_write(path, write)
    return Path(path)


def render_svg(widget: QWidget, path: str | Path, title: str) -> Path:
    """Paint `widget` into an SVG: Qt's painter emits vector paths and real text elements."""
    def write(tmp: Path) -> None:
        generator = QSvgGenerator()
        generator.setFileName(str(tmp))
        generator.setSize(widget.size())
        generator.setViewBox(QRectF(0, 0, widget.width(), widget.height()))
        generator.setTitle(title)
        painter = QPainter(generator)
        try:
            widget.render(painter, QPoint(0, 0))
        finally:
            painter.end()
        if not tmp.stat().st_size:
            raise OSError(f"could not write {path}")

    atomic_write(path, write)
    return Path(path)


FILTERS = {"png": "PNG image (*.png)", "svg": "SVG drawing (*.svg)", "csv": "CSV table (*.csv)"}


def add_export_actions(panel: Exportable) -> None:
    """Put "Export PNG/SVG/CSV…" at the top of the panel's right-click menu."""
    menu = panel.plot_item.getViewBox().menu
    first = menu.actions()[0] if menu.actions() else None
    for kind in FILTERS:
        action = QAction(f"Export {kind.upper()}…", menu)
        action.setObjectName(f"export{kind.upper()}Action")
        action.triggered.connect(lambda _=False, k=kind: ask_export(panel, k))
        menu.insertAction(first, action)
    menu.insertSeparator(first)
    # pyqtgraph's own "Export..." dialog sits in the same menu with other defaults (no
    # background, its own CSV layout); one clear set of entries is less confusing.
    panel.plot_widget.scene().contextMenu = []


def ask_export(panel: Exportable, kind: str) -> None:
    slug = re.sub(r"[^A-Za-z0-9]+", "_", panel.title).strip("_").lower() or "plot"
    path, _ = QFileDialog.getSaveFileName(
        panel, f"Export {panel.title} as {kind.upper()}", f"{slug}.{kind}", FILTERS[kind])
    if not path:
        return
    if not path.lower().endswith(f".{kind}"):
        path += f".{kind}"
    try:
        getattr(panel, f"export_{kind}")(path)
    except OSError as error:
        QMessageBox.warning(panel, "Export failed", f"Could not write {path}:\n{error}")
