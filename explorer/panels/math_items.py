"""Building blocks of the Math panel: a float slider, and plot items that follow the palette.

Every item a `PictureKit` makes registers how to restyle itself, so one palette change (light to
dark) recolours every picture without rebuilding it.
"""

from __future__ import annotations

from collections.abc import Callable

import pyqtgraph as pg
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QSizePolicy,
    QSlider,
    QVBoxLayout,
    QWidget,
)

from explorer.panels.common import muted_label
from explorer.plots import style
from explorer.plots.style import Theme


class FloatSlider(QWidget):
    """A named horizontal QSlider over [lo, hi] in steps of `step`, its value printed beside it."""

    def __init__(self, name: str, object_name: str, lo: float, hi: float, step: float,
                 value: float, fmt: str = "{:.2f}") -> None:
        super().__init__()
        self._lo, self._step, self._fmt = lo, step, fmt
        self.slider = QSlider(Qt.Orientation.Horizontal)
        self.slider.setObjectName(object_name)
        self.slider.setRange(0, round((hi - lo) / step))
        self.value_label = QLabel()
        self.value_label.setObjectName(f"{object_name}Value")
        # Fixed width: a label that grows with its text would make the slider jump while dragged.
        self.value_label.setFixedWidth(self.fontMetrics().horizontalAdvance("−0.000") + 4)
        row = QHBoxLayout(self)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel(name))
        row.addWidget(self.slider, 1)
        row.addWidget(self.value_label)
        self.valueChanged = self.slider.valueChanged
        self.slider.valueChanged.connect(self._show)
        self.set_value(value)
        self._show()

    @property
    def value(self) -> float:
        # Rounded so 0.1 + 9 * 0.1 reads 1.0, not 1.0000000000000002, in labels and formulas.
        return round(self._lo + self.slider.value() * self._step, 10)

    def set_value(self, value: float) -> None:
        self.slider.setValue(round((value - self._lo) / self._step))

    def _show(self, *_: object) -> None:
        self.value_label.setText(self._fmt.format(self.value).replace("-", "−"))


class PictureKit:
    """Makes the pictures' plots and items in the app's plot style, and restyles them all."""

    def __init__(self, owner: QWidget) -> None:
        self.owner = owner  # whose palette and font the pictures follow
        self.stylers: list[Callable[[Theme], None]] = []

    def apply_theme(self) -> None:
        theme = style.theme_of(self.owner)
        for restyle in self.stylers:
            restyle(theme)

    def cell(self, key: str, title: str, caption: str, x_label: str, y_label: str,
             knobs: tuple[QWidget, ...] = (), tooltip: str = "",
             ) -> tuple[QWidget, pg.PlotWidget, QLabel]:
        """A titled plot, its one-line formula, its knobs and a run line hidden until needed."""
        widget = pg.PlotWidget()
        widget.setObjectName(f"math{key}Plot")
        widget.setToolTip(tooltip)
        widget.setMinimumSize(240, 150)
        plot = widget.getPlotItem()
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.hideButtons()
        # Pictures with fixed axes: a stray drag would pan the formula out of view.
        plot.setMouseEnabled(x=False, y=False)
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)
            plot.getAxis(name).setStyle(maxTickLevel=1)

        def restyle(theme: Theme) -> None:
            widget.setBackground(theme.base)
            plot.setTitle(f"<b>{title}</b>", color=theme.text.name(), size="10pt")
            label_style = {"color": theme.text.name(), "font-size": "8pt"}
            plot.setLabel("bottom", x_label, **label_style)
            plot.setLabel("left", y_label, **label_style)
            for axis in (plot.getAxis(n) for n in ("left", "bottom", "top")):
                axis.setPen(pg.mkPen(theme.muted))
                axis.setTextPen(pg.mkPen(theme.text))
                axis.setTickFont(style.scaled_font(self.owner, 0.8))

        self.stylers.append(restyle)
        text = muted_label(caption)
        text.setObjectName(f"math{key}Caption")
        text.setToolTip(tooltip or caption)
        run = QLabel()
        run.setObjectName(f"math{key}RunLabel")
        run.hide()
        for label in (text, run):
            label.setFont(style.scaled_font(self.owner, 0.85))
            # One line, cut at the cell's edge rather than widening it: word wrap would make the
            # grid ask the scroll area for its preferred height, and scroll at 900 x 600.
            label.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        cell = QWidget()
        box = QVBoxLayout(cell)
        box.setContentsMargins(0, 0, 0, 0)
        box.setSpacing(2)
        box.addWidget(widget, 1)
        box.addWidget(text)
        for knob in knobs:
            box.addWidget(knob)
        box.addWidget(run)
        return cell, widget, run

    def legend(self, plot: pg.PlotItem, offset: tuple[int, int]) -> pg.LegendItem:
        legend = plot.addLegend(offset=offset, labelTextSize="7pt", verSpacing=-6)

        def restyle(theme: Theme) -> None:
            legend.setBrush(style.with_alpha(theme.base, 210))
            legend.setPen(pg.mkPen(style.with_alpha(theme.muted, 120)))
            legend.setLabelTextColor(theme.text)
            # setLabelTextColor only reaches labels added later; re-set the ones already there.
            for _, label in legend.items:
                label.setText(label.text, color=theme.text)

        self.stylers.append(restyle)
        restyle(style.theme_of(self.owner))
        return legend

    def curve(self, plot: pg.PlotItem, index: int, name: str | None = None, *,
              width: float = style.LINE_WIDTH, alpha: int = 255, dash: int | None = None,
              symbol: str | None = None) -> pg.PlotDataItem:
        item = pg.PlotDataItem(name=name, antialias=True)
        plot.addItem(item)

        def restyle(theme: Theme) -> None:
            color = style.run_color(index, theme.dark)
            item.setPen(style.line_pen(color, index if dash is None else dash,
                                       width=width, alpha=alpha))
            if symbol:
                item.setSymbol(symbol)
                item.setSymbolSize(6)
                item.setSymbolPen(None)
                item.setSymbolBrush(color)

        self.stylers.append(restyle)
        restyle(style.theme_of(self.owner))
        return item

    def vline(self, plot: pg.PlotItem, label: str = "", position: float = 0.9,
              dash: bool = True) -> pg.InfiniteLine:
        line = pg.InfiniteLine(angle=90, movable=False, label=label or None,
                               labelOpts={"position": position, "anchors": [(0, 0), (0, 0)]})
        line.setZValue(5)
        plot.addItem(line, ignoreBounds=True)

        def restyle(theme: Theme) -> None:
            pen_style = Qt.PenStyle.DashLine if dash else Qt.PenStyle.DotLine
            line.setPen(pg.mkPen(theme.text, width=1.2, style=pen_style))
            label = getattr(line, "label", None)  # pyqtgraph sets it only for labelled lines
            if label is not None:
                label.setColor(theme.text)
                label.setFont(style.scaled_font(self.owner, 0.75))

        self.stylers.append(restyle)
        return line

    def dot(self, plot: pg.PlotItem) -> pg.PlotDataItem:
        dot = pg.PlotDataItem(pen=None, symbol="o", symbolSize=9)
        dot.setZValue(10)
        plot.addItem(dot)
        self.stylers.append(lambda theme: (dot.setSymbolBrush(theme.text),
                                           dot.setSymbolPen(pg.mkPen(theme.base, width=1.5))))
        return dot

    def region(self, plot: pg.PlotItem, values: tuple[float, float]) -> pg.LinearRegionItem:
        region = pg.LinearRegionItem(values=values, movable=False)
        region.setZValue(-10)
        plot.addItem(region, ignoreBounds=True)

        def restyle(theme: Theme) -> None:
            region.setBrush(style.with_alpha(theme.muted, style.BAND_ALPHA))
            for line in region.lines:
                line.setPen(pg.mkPen(style.with_alpha(theme.muted, 120), width=1))

        self.stylers.append(restyle)
        return region

