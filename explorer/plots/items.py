"""The pyqtgraph items behind one (run, metric) line and one ± band, set up for long curves."""

from __future__ import annotations

from dataclasses import dataclass

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from explorer.plots import style


@dataclass
class Curve:
    main: pg.PlotDataItem  # the line in the legend: smoothed when smoothing is on, else raw
    ghost: pg.PlotDataItem  # the raw series, faint beneath the smoothed line
    drawn: tuple = ()
    wide: bool = True


@dataclass
class Band:
    upper: pg.PlotDataItem
    lower: pg.PlotDataItem
    fill: pg.FillBetweenItem
    drawn: tuple = ()


def decimate(item: pg.PlotDataItem, method: str) -> None:
    item.setClipToView(True)
    item.setDownsampling(auto=True, method=method)
    # pyqtgraph keeps ~5 samples per pixel by default; peak decimation already draws each
    # pixel column's min and max, so 1 is exact and makes the path 5x shorter to stroke.
    item.opts["autoDownsampleFactor"] = 1.0


def make_curve(plot: pg.PlotItem, color: QColor, index: int, name: str) -> Curve:
    """A legend line in the run's colour and the metric's dash, plus its faint raw ghost."""
    ghost = pg.PlotDataItem(pen=style.line_pen(color, 0, width=1, alpha=style.GHOST_ALPHA))
    main = pg.PlotDataItem(pen=style.line_pen(color, index), name=name, antialias=True)
    for z, item in ((-5, ghost), (0, main)):
        item.setZValue(z)
        plot.addItem(item)
        decimate(item, "peak")
    ghost.hide()
    return Curve(main, ghost)


def make_band(plot: pg.PlotItem, color: QColor) -> Band:
    # The edges keep a transparent pen: with pen=None pyqtgraph skips building their path,
    # and the fill between them would stay empty.
    edge = pg.mkPen(QColor(0, 0, 0, 0))
    upper, lower = pg.PlotDataItem(pen=edge), pg.PlotDataItem(pen=edge)
    for item in (upper, lower):
        plot.addItem(item)
        # Peak-decimated edges make the band a self-crossing zig-zag polygon that took
        # 25 ms to fill at 100k points; averaged edges draw in under 1 ms, and the band only
        # shows the spread (the mean line beside it keeps its peaks).
        decimate(item, "mean")
    fill = pg.FillBetweenItem(upper, lower, brush=style.with_alpha(color, style.BAND_ALPHA))
    fill.setZValue(-10)
    plot.addItem(fill)
    return Band(upper, lower, fill)


def make_reference_line(plot: pg.PlotItem, color: QColor,
                        label: str) -> tuple[pg.InfiniteLine, pg.PlotDataItem]:
    """A dashed horizontal line (a target), and an invisible point to set at its value."""
    line = pg.InfiniteLine(
        angle=0,
        pen=pg.mkPen(color, width=1.4, style=Qt.PenStyle.DashLine),
        label=label,
        labelOpts={"position": 0.04, "color": color, "anchors": [(0, 1), (0, 1)]},
    )
    line.setZValue(-20)
    plot.addItem(line, ignoreBounds=True)
    # An InfiniteLine never widens the auto range; the point keeps the target in view even
    # while the curve is far below it.
    anchor = pg.PlotDataItem(pen=pg.mkPen(QColor(0, 0, 0, 0)))
    plot.addItem(anchor)
    return line, anchor
