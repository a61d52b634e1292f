"""Colours, line styles and fonts shared by every plot, derived from the widget palette."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QFont, QPalette
from PySide6.QtWidgets import QWidget

# Okabe-Ito: distinguishable with the common colour-vision deficiencies, and in greyscale print.
# Its yellow is left out: it vanishes on a light background.
RUN_PALETTE = ("#0072B2", "#D55E00", "#009E73", "#CC79A7", "#E69F00", "#56B4E9", "#7F7F7F")

# The n-th metric of a panel gets the n-th style, so "mean" and "true" reward, or the three
# losses, stay apart even when one run's colour draws them all.
LINE_STYLES = (
    Qt.PenStyle.SolidLine,
    Qt.PenStyle.DashLine,
    Qt.PenStyle.DotLine,
    Qt.PenStyle.DashDotLine,
)

GHOST_ALPHA = 60  # raw series under a smoothed line: visible, but clearly secondary
BAND_ALPHA = 45
LINE_WIDTH = 1.8


@dataclass(frozen=True)
class Theme:
    base: QColor
    text: QColor
    muted: QColor
    dark: bool


def theme_of(widget: QWidget) -> Theme:
    """Read base/text colours from the palette so plots follow the light or dark scheme."""
    palette = widget.palette()
    base = palette.color(QPalette.ColorRole.Base)
    text = palette.color(QPalette.ColorRole.Text)
    muted = palette.color(QPalette.ColorRole.PlaceholderText)
    return Theme(base=base, text=text, muted=muted, dark=base.lightness() < 128)


def run_color(index: int, dark: bool = False) -> QColor:
    """The fixed colour of the index-th run; lifted on dark backgrounds to keep contrast."""
    color = QColor(RUN_PALETTE[index % len(RUN_PALETTE)])
    return color.lighter(135) if dark else color


def with_alpha(color: QColor, alpha: int) -> QColor:
    out = QColor(color)
    out.setAlpha(alpha)
    return out


def line_pen(color: QColor, index: int, *, width: float = LINE_WIDTH, alpha: int = 255):
    pen = pg.mkPen(with_alpha(color, alpha), width=width)
    pen.setStyle(LINE_STYLES[index % len(LINE_STYLES)])
    # Round caps keep short dashes readable once peak downsampling zig-zags the line.
    pen.setCapStyle(Qt.PenCapStyle.RoundCap)
    return pen


def scaled_font(widget: QWidget, factor: float, *, bold: bool = False) -> QFont:
    font = QFont(widget.font())
    size = font.pointSizeF()
    if size > 0:
        font.setPointSizeF(size * factor)
    if bold:
        font.setWeight(QFont.Weight.DemiBold)
    return font
