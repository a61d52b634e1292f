"""The text around a panel's view box: a title that wraps, a legend strip under the x axis.

Both sit in the PlotItem's own layout, not over the data, so the exporters draw them too and
neither can cover a curve. Both shrink with the panel: in a 4-column grid at 1366x768 a
panel is about 230 px wide, and pyqtgraph's title and legend then clipped or hid the curves.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import pyqtgraph as pg
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QFont, QFontMetricsF, QPainter, QPen, QTextOption
from PySide6.QtWidgets import QSizePolicy

from explorer.plots import style

RunColors = Sequence[tuple[str, object, QColor]]  # (label, series, colour), as a panel holds them

TITLE_SIZE = "11pt"
LEGEND_ROW = 4  # PlotItem fills rows 0-3: title, top axis, view box, bottom axis
SAMPLE_W = 18  # the line drawn before each entry's text
SAMPLE_GAP = 4  # between an entry's line and its text
ENTRY_GAP = 12  # between entries on one row
MARGIN = 2


class FitTitle(pg.LabelItem):
    """A title as wide as the panel, wrapping (at a word if it can) instead of clipping.

    pyqtgraph's title sets its minimum width to the text's, so a long title widened the plot
    past its widget and the right end was cut off.
    """

    def __init__(self, parent: pg.PlotItem) -> None:
        self._width = -1.0
        super().__init__("", parent=parent, size=TITLE_SIZE)
        document = self.item.document()
        option = document.defaultTextOption()
        option.setWrapMode(QTextOption.WrapMode.WrapAtWordBoundaryOrAnywhere)
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        document.setDefaultTextOption(option)
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)

    @classmethod
    def install(cls, plot: pg.PlotItem) -> FitTitle:
        """Replace the plot's title label by one spanning every column (axes included)."""
        plot.layout.removeItem(plot.titleLabel)
        plot.titleLabel.setParentItem(None)
        plot.titleLabel = title = cls(plot)
        plot.layout.addItem(title, 0, 0, 1, 3)
        # PlotItem.setTitle pins this row's height (0 px untitled, 30 with a title): too
        # short for a wrapped title.
        plot.layout.setRowMinimumHeight(0, 0)
        plot.layout.setRowMaximumHeight(0, 1e6)
        return title

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        width = self.width()
        if width > 0 and width != self._width:
            self._width = width
            self.item.setTextWidth(width)
        super().resizeEvent(ev)

    def updateMin(self) -> None:  # noqa: N802 (pyqtgraph override)
        # Only the height follows the text: the width is whatever the panel has.
        height = self.itemRect().height()
        self.setMinimumSize(0, height)
        self.setMaximumHeight(height)
        self._sizeHint = {
            Qt.SizeHint.MinimumSize: (0, height),
            Qt.SizeHint.PreferredSize: (0, height),
            Qt.SizeHint.MaximumSize: (-1, height),
            Qt.SizeHint.MinimumDescent: (0, 0),
        }
        self.updateGeometry()



@dataclass(eq=False)
class LegendEntry:
    """One legend entry: its text, the line it is drawn with, the curves a click toggles."""

    text: str
    pen: QPen
    curves: Sequence[pg.PlotDataItem] = field(default_factory=list)

    @property
    def shown(self) -> bool:
        return any(c.isVisible() for c in self.curves) if self.curves else True


class FlowLegend(pg.GraphicsWidget):
    """The legend as a strip under the plot: entries packed left to right, wrapping to rows.

    A click on an entry hides or shows its curves, as in pyqtgraph's legend. `items` keeps
    the shape of pyqtgraph's LegendItem.items, (sample, label) pairs with `label.text`.
    """

    def __init__(self) -> None:
        super().__init__()
        self.entries: list[LegendEntry] = []
        self._font = QFont()
        self._color = QColor(Qt.GlobalColor.black)
        self._wanted = True
        self._placed: list[tuple[QRectF, LegendEntry, str]] = []
        self._fit_width = -1.0
        self.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.setMinimumWidth(0)
        self.hide()

    def install(self, plot: pg.PlotItem) -> FlowLegend:
        plot.layout.addItem(self, LEGEND_ROW, 0, 1, 3)
        plot.layout.setRowStretchFactor(LEGEND_ROW, 0)
        return self

    @property
    def items(self) -> list[tuple[LegendEntry, LegendEntry]]:
        return [(entry, entry) for entry in self.entries]

    def texts(self) -> list[str]:
        return [entry.text for entry in self.entries]

    def set_style(self, font: QFont, color: QColor) -> None:
        self._font, self._color = QFont(font), QColor(color)
        self._relayout()

    def set_entries(self, entries: Sequence[LegendEntry]) -> None:
        self.entries = list(entries)
        self._relayout()

    def set_wanted(self, wanted: bool) -> None:
        """Show the legend (when it has entries) or keep it hidden, e.g. in the empty state."""
        self._wanted = bool(wanted)
        self._update_visibility()

    def _update_visibility(self) -> None:
        shown = self._wanted and bool(self.entries)
        if shown != self.isVisible():
            # A hidden item takes no room in the plot's layout: the view box gets it back.
            self.setVisible(shown)
            self.updateGeometry()

    def _relayout(self) -> None:
        self._fit_width = -1.0
        self._flow(self.width())
        self._update_visibility()

    def resizeEvent(self, ev) -> None:  # noqa: N802 (Qt override)
        super().resizeEvent(ev)
        self._flow(self.width())

    def _flow(self, width: float) -> None:
        if width <= 0 or width == self._fit_width:
            return
        self._fit_width = width
        metrics = QFontMetricsF(self._font)
        line_h = metrics.height()
        room = max(1.0, width - 2 * MARGIN - SAMPLE_W - SAMPLE_GAP)
        rows: list[list[tuple[QRectF, LegendEntry, str]]] = [[]]
        x, y = 0.0, MARGIN
        for entry in self.entries:
            # Only a text wider than the whole strip is shortened; the tooltip has it whole.
            text = metrics.elidedText(entry.text, Qt.TextElideMode.ElideMiddle, room)
            w = SAMPLE_W + SAMPLE_GAP + metrics.horizontalAdvance(text)
            if rows[-1] and x + w > width - 2 * MARGIN:
                rows.append([])
                x, y = 0.0, y + line_h
            rows[-1].append((QRectF(x, y, w, line_h), entry, text))
            x += w + ENTRY_GAP
        # Centred under the centred title, row by row.
        self._placed = []
        for row in rows:
            if row:
                shift = (width - row[-1][0].right()) / 2
                self._placed += [(rect.translated(shift, 0), e, t) for rect, e, t in row]
        height = y + line_h + MARGIN if self.entries else 0
        self.setToolTip("\n".join(self.texts()))
        self.setMinimumHeight(height)
        self.setMaximumHeight(height)
        self.updateGeometry()
        self.update()

    @property
    def n_rows(self) -> int:
        return len({rect.top() for rect, _, _ in self._placed})

    def boundingRect(self) -> QRectF:  # noqa: N802 (Qt override)
        return QRectF(0, 0, self.width(), self.height())

    def paint(self, p: QPainter, *args) -> None:
        p.setRenderHint(QPainter.RenderHint.Antialiasing)
        p.setFont(self._font)
        for rect, entry, text in self._placed:
            faded = 1.0 if entry.shown else 0.35  # a hidden curve's entry stays, greyed out
            p.setOpacity(faded)
            y = rect.center().y()
            p.setPen(entry.pen)
            p.drawLine(QPointF(rect.left(), y), QPointF(rect.left() + SAMPLE_W, y))
            p.setPen(self._color)
            text_rect = rect.adjusted(SAMPLE_W + SAMPLE_GAP, 0, 0, 0)
            p.drawText(text_rect, Qt.AlignmentFlag.AlignLeft | Qt.AlignmentFlag.AlignVCenter,
                       text)
        p.setOpacity(1.0)

    def entry_at(self, pos: QPointF) -> LegendEntry | None:
        return next((entry for rect, entry, _ in self._placed if rect.contains(pos)), None)

    def mouseClickEvent(self, ev) -> None:  # noqa: N802 (pyqtgraph override)
        entry = self.entry_at(ev.pos())
        if entry is None or ev.button() != Qt.MouseButton.LeftButton:
            ev.ignore()
            return
        shown = not entry.shown
        for curve in entry.curves:
            curve.setVisible(shown)
        ev.accept()
        self.update()


# Legend names that say what a line is, where the metric's own name would not: in the Reward
# panel, "mean" / "true_mean" left a person guessing which was the learned reward (issue 16).
# "optimised" is the learned reward with a reward model, the ranks' reward with direct ranking.
SPOKEN = {"reward/mean": "optimised", "reward/true_mean": "true (hidden)"}


def short_name(metric: str, metrics: Sequence[str]) -> str:
    """`metric` without the prefix every metric of its panel shares ("reward/" in Reward), or
    its spoken name (`SPOKEN`)."""
    if metric in SPOKEN:
        return SPOKEN[metric]
    # The shared prefix is the panel's subject, and the legend's width is better spent on
    # run labels.
    prefixes = {m.split("/", 1)[0] for m in metrics}
    return metric.split("/", 1)[1] if len(prefixes) == 1 and "/" in metric else metric


def legend_entries(curves: dict[tuple[str, str], pg.PlotDataItem], runs: RunColors,
                   metrics: Sequence[str], text_color: QColor) -> list[LegendEntry]:
    """Entries for `curves` keyed (run label, metric): one per run, then one per metric.

    Colour names the run and dash the metric, so this lists runs + metrics rather than every
    pair, and an overlay of two runs still fits a small panel. A one-run, one-metric panel
    gets none: its title already names the line.
    """
    entries = []
    if len(runs) > 1:
        for label, _, color in runs:
            mine = [c for (run, _), c in curves.items() if run == label]
            if mine:
                entries.append(LegendEntry(label, style.line_pen(color, 0), mine))
    drawn = [m for m in metrics if any(m == metric for _, metric in curves)]
    if len(drawn) > 1:
        # One run: its own colour, so the sample looks exactly like the line.
        color = runs[0][2] if len(runs) == 1 else text_color
        for metric in drawn:
            mine = [c for (_, m), c in curves.items() if m == metric]
            pen = style.line_pen(color, list(metrics).index(metric))
            entries.append(LegendEntry(short_name(metric, metrics), pen, mine))
    return entries


class EmptyNote:
    """A grey note centred in an empty plot ("waiting for the first step…"), axes hidden."""

    def __init__(self, plot: pg.PlotItem, text: str) -> None:
        self._plot = plot
        self._view = view = plot.getViewBox()
        self._shown: bool | None = None
        self.item = pg.TextItem(text, anchor=(0.5, 0.5))
        # Wrapped to the panel and centred line by line: on one of eight panels at 1366 px,
        # "waiting for the first step…" on one line was cut at both edges.
        document = self.item.textItem.document()
        option = document.defaultTextOption()
        option.setAlignment(Qt.AlignmentFlag.AlignHCenter)
        document.setDefaultTextOption(option)
        view.addItem(self.item, ignoreBounds=True)
        view.sigRangeChanged.connect(self._centre)
        view.sigResized.connect(self._centre)

    @property
    def text(self) -> str | None:
        return self.item.toPlainText() if self.item.isVisible() else None

    def show_text(self, text: str | None) -> None:
        """Show `text`, or hide the note for None."""
        if text is not None and self.item.toPlainText() != text:
            self.item.setText(text)
        shown = text is not None
        if shown != self._shown:
            self._shown = shown
            self.item.setVisible(shown)
            # No data, no scale: 0.1-0.9 ticks on an empty grid only look like a broken plot.
            for name in ("left", "bottom"):
                self._plot.showAxis(name, not shown)
        self._centre()

    def _centre(self, *_: object) -> None:
        if self.item.isVisible():
            width = max(40.0, self._view.width() - 8)
            if self.item.textItem.textWidth() != width:
                self.item.setTextWidth(width)
            (x0, x1), (y0, y1) = self._view.viewRange()
            self.item.setPos((x0 + x1) / 2, (y0 + y1) / 2)
