"""Widget and colour helpers shared by the table panels (runs, samples).

Colours are derived from the widget's palette rather than fixed, so light and dark schemes both
read well.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import (
    QAbstractItemView,
    QHeaderView,
    QLabel,
    QStackedLayout,
    QTableView,
    QWidget,
)


def muted_label(text: str = "") -> QLabel:
    """A QLabel drawn in the palette's secondary-text colour."""
    label = QLabel(text)
    # PlaceholderText is the palette's own secondary-text colour, so dark schemes keep working.
    palette = label.palette()
    palette.setColor(QPalette.ColorRole.WindowText,
                     palette.color(QPalette.ColorRole.PlaceholderText))
    label.setPalette(palette)
    return label


def empty_stack(text: str, content: QWidget) -> tuple[QWidget, QStackedLayout, QLabel]:
    """(body, stack, label): `body` shows either `content` or a muted, wrapped, centred `text`.

    The empty-state label is the stack's first page, so it is what shows until the caller switches
    with `stack.setCurrentWidget(content)`.
    """
    empty = muted_label(text)
    empty.setWordWrap(True)
    empty.setAlignment(Qt.AlignmentFlag.AlignCenter)
    empty.setContentsMargins(16, 16, 16, 16)
    body = QWidget()
    stack = QStackedLayout(body)
    stack.addWidget(empty)
    stack.addWidget(content)
    return body, stack, empty


def setup_table(table: QTableView, row_lines: int = 1) -> None:
    """A read-only, row-selecting, gridless table whose rows are `row_lines` text lines high.

    Call it after setting the table's font: the row height is measured from it once, here.
    """
    table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
    table.setEditTriggers(QAbstractItemView.EditTrigger.NoEditTriggers)
    table.setShowGrid(False)
    table.setAlternatingRowColors(True)
    table.setWordWrap(False)
    table.verticalHeader().hide()
    rows = table.verticalHeader()
    # Fixed heights: nothing is measured per refresh, however often the model changes.
    rows.setSectionResizeMode(QHeaderView.ResizeMode.Fixed)
    rows.setDefaultSectionSize(table.fontMetrics().lineSpacing() * row_lines + 8)
    table.horizontalHeader().setHighlightSections(False)


def is_dark(palette: QPalette) -> bool:
    return palette.color(QPalette.ColorRole.Base).lightness() < 128


def mix(a: QColor, b: QColor, t: float) -> QColor:
    """The colour a fraction `t` of the way from `a` to `b` (linear in RGB)."""
    return QColor.fromRgbF(a.redF() + (b.redF() - a.redF()) * t,
                           a.greenF() + (b.greenF() - a.greenF()) * t,
                           a.blueF() + (b.blueF() - a.blueF()) * t)


def readable_on(colour: QColor) -> QColor:
    # Pick black or white by luminance, so a cell reads in light and dark palettes alike.
    r, g, b = colour.redF(), colour.greenF(), colour.blueF()
    return QColor("black") if 0.299 * r + 0.587 * g + 0.114 * b > 0.5 else QColor("white")
