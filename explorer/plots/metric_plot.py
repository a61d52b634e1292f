"""One live plot panel: a few metrics of one or more runs, with smoothing, log y and export."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as exporters
from PySide6.QtCore import QEvent, Qt
from PySide6.QtGui import QColor, QFontMetricsF
from PySide6.QtWidgets import QVBoxLayout, QWidget

from core.storage import atomic_write
from explorer.plots import style
from explorer.plots.export import add_export_actions, write_long_csv
from explorer.plots.items import Band, Curve, make_band, make_curve, make_reference_line
from explorer.plots.labels import EmptyNote, FitTitle, FlowLegend, legend_entries
from explorer.plots.ranges import Bounds, ReadableViewBox
from explorer.plots.series import IncrementalEma, MetricSeries, RunSeries

EMPTY_TEXT = "waiting for the first step…"
# The run has steps, but none with this panel's metrics (another objective's, or not yet).
NOT_REPORTED_TEXT = "not reported yet"
X_LABELS = {"step": ("step", ""), "time": ("time", "s")}

# (run label, its series, its colour: anything pg.mkColor takes, or None for the palette's)
RunEntry = tuple[str, RunSeries, Any]


class MetricPlot(QWidget):
    """A titled pyqtgraph panel drawing `metrics` of every run given to `set_runs`.

    `band` maps a mean metric to its spread (e.g. reward/mean -> reward/std), drawn as a
    shaded ±1 band. `y_bounds` (lo, hi), either None for unbounded, keeps the y range within
    the values the metric can take, e.g. (0, 1) for a fraction. The widget keeps only display
    caches; the data lives in RunSeries.
    """

    def __init__(
        self,
        title: str,
        metrics: Sequence[str],
        *,
        y_label: str = "",
        units: str = "",
        band: Mapping[str, str] | None = None,
        subtitle: str = "",
        y_bounds: Bounds = (None, None),
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.title = title
        self.metrics = tuple(metrics)
        self.band = dict(band or {})
        self.subtitle = subtitle
        self._runs: list[tuple[str, RunSeries, QColor]] = []
        self._curves: dict[tuple[str, str], Curve] = {}
        self._bands: dict[tuple[str, str], Band] = {}
        self._smooth: dict[tuple[str, str], IncrementalEma] = {}
        # per run: (marker, step, time_s, its full label)
        self._events: dict[str, list[tuple[pg.InfiniteLine, float, float, str]]] = {}
        self._alpha = 0.0
        self._x_axis = "step"
        self._log_y = False
        self._ref: tuple[float, str] | None = None
        self._ref_line: pg.InfiniteLine | None = None
        self._ref_anchor: pg.PlotDataItem | None = None
        self._last_key: tuple | None = None
        self._legend_stale = False

        self._view = ReadableViewBox()
        self.plot_widget = pg.PlotWidget(viewBox=self._view)
        self.plot_item: pg.PlotItem = self.plot_widget.getPlotItem()
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.plot_widget)

        plot = self.plot_item
        plot.showGrid(x=True, y=True, alpha=0.15)
        plot.setMenuEnabled(True)
        # Set on the PlotItem, not only per curve: PlotItem.addItem copies its own menu settings
        # onto every curve it adds, which would silently undo a per-curve setting.
        plot.setClipToView(True)
        plot.setDownsampling(auto=True, mode="peak")
        plot.hideButtons()  # the "A" auto-range button overlaps the tick labels on small panels
        # Title and legend outside the view box: over it they hid curves in small panels.
        self._title = FitTitle.install(plot)
        self.legend = FlowLegend().install(plot)
        self._view.set_y_bounds(*y_bounds)
        for name in ("left", "bottom"):
            plot.getAxis(name).enableAutoSIPrefix(False)
            # Major and minor grid lines only: the third level was clutter, and a third of
            # each panel's paint time.
            plot.getAxis(name).setStyle(maxTickLevel=1)
        self._y_label, self._units = y_label, units
        self._empty = EmptyNote(plot, EMPTY_TEXT)
        # Marker labels read toward the room they have, which the range and the size decide.
        self._view.sigRangeChanged.connect(self._place_events)
        self._view.sigResized.connect(self._place_events)
        add_export_actions(self)
        self._apply_theme()
        self._update_empty_state()
        if subtitle:
            self.setToolTip(subtitle)

    # ----- configuration -------------------------------------------------------------------
    def set_runs(self, runs: Sequence[RunEntry]) -> None:
        """Show these runs (replacing any shown before); colours default to the run palette."""
        self._clear_items()
        dark = style.theme_of(self).dark
        self._runs = [
            (label, series, style.run_color(i, dark) if color is None else pg.mkColor(color))
            for i, (label, series, color) in enumerate(runs)
        ]
        self._last_key = None
        self.refresh()

    def set_smoothing(self, alpha: float) -> None:
        """EMA factor in [0, 0.99]; 0 draws the raw series only."""
        self._alpha = float(min(max(alpha, 0.0), 0.99))

    def set_x_axis(self, axis: str) -> None:
        if axis not in X_LABELS:
            raise ValueError(f"x axis must be 'step' or 'time', got {axis!r}")
        self._x_axis = axis
        # On the axis itself: PlotItem.setLabel would show it again in the empty state.
        self.plot_item.getAxis("bottom").setLabel(*X_LABELS[axis], **self._label_style())

    def set_log_y(self, log: bool) -> None:
        self._log_y = bool(log)
        self.plot_item.setLogMode(x=False, y=self._log_y)

    def set_reference_line(self, value: float | None, label: str = "target") -> None:
        """A dashed horizontal line (e.g. the KL target); None removes it."""
        self._ref = None if value is None else (float(value), label)
        self._last_key = None

    @property
    def options(self) -> tuple[float, str, bool]:
        return self._alpha, self._x_axis, self._log_y

    # ----- drawing -------------------------------------------------------------------------
    def refresh(self) -> bool:
        """Push new data to the curves; returns False (and touches nothing) if none changed."""
        key = (tuple(s.version for _, s, _ in self._runs), self.options, self._ref)
        if key == self._last_key:
            return False
        self._last_key = key
        for label, runs, color in self._runs:
            for index, metric in enumerate(self.metrics):
                series = runs.get(metric)
                if series is not None:
                    self._draw_curve(label, metric, index, series, color)
                if metric in self.band:
                    self._draw_band(label, runs, metric, color)
            self._draw_events(label, runs, color)
        self._place_events()
        self._draw_reference()
        if self._legend_stale:
            self._legend_stale = False
            mains = {key: curve.main for key, curve in self._curves.items()}
            self.legend.set_entries(legend_entries(mains, self._runs, self.metrics,
                                                   style.theme_of(self).text))
        self._view.limit_zoom()
        self._update_empty_state()
        return True

    def empty_text(self) -> str | None:
        """The note shown in place of the plot while it has no data; None once it has."""
        return self._empty.text

    def has_data(self) -> bool:
        return any(c.main.xData is not None and len(c.main.xData) for c in self._curves.values())

    def data_items(self) -> list[pg.PlotDataItem]:
        """The legend's lines, one per (run, metric) present, in drawing order."""
        return [c.main for c in self._curves.values()]

    def _x_of(self, series: MetricSeries) -> np.ndarray:
        return series.steps if self._x_axis == "step" else series.times

    def _draw_curve(self, label, metric, index, series: MetricSeries, color) -> None:
        key = (label, metric)
        curve = self._curves.get(key) or self._make_curve(key, index, color)
        stamp = (series.version, self.options)
        if curve.drawn == stamp:
            return
        curve.drawn = stamp
        x, y = self._x_of(series), series.values
        x_finite = self._x_axis == "step" or series.n_nonfinite_times == 0
        if x_finite and series.n_nonfinite == 0 and not self._log_y:
            # The common case: hand over views of the buffers, no 100k-element masks to build.
            ok = keep = slice(None)
        else:
            ok = np.isfinite(x) & np.isfinite(y)
            if self._log_y:
                ok &= y > 0  # log10 of these is undefined; leave them out rather than warn
            keep = ok
        if self._alpha > 0:
            smooth = self._smooth.setdefault(key, IncrementalEma()).of(series, self._alpha)
            if self._log_y:
                keep = ok & (smooth > 0)  # NaN exactly where y is not finite, so `ok` covers it
            curve.main.setData(x[keep], smooth[keep])
            curve.ghost.setData(x[ok], y[ok])
            curve.ghost.show()
        else:
            curve.main.setData(x[ok], y[ok])
            if curve.ghost.isVisible():
                curve.ghost.setData([], [])
                curve.ghost.hide()
        self._fit_pen(curve)

    def _fit_pen(self, curve: Curve) -> None:
        # Qt strokes a pen wider than 1 px slowly, and a peak-decimated line is a zig-zag of
        # ~2 points per pixel: 1.8 px lines took 1.5 s per dashboard redraw at 100k points.
        # Draw wide while a curve has few points (the usual 150-step run), thin once decimated.
        n = 0 if curve.main.xData is None else len(curve.main.xData)
        wide = n <= max(200.0, self.plot_item.getViewBox().width())
        if wide != curve.wide:
            curve.wide = wide
            pen = pg.mkPen(curve.main.opts["pen"])
            pen.setWidthF(style.LINE_WIDTH if wide else 1.0)
            curve.main.setPen(pen)

    def _draw_band(self, label, runs: RunSeries, metric, color) -> None:
        mean, spread = runs.get(metric), runs.get(self.band[metric])
        if mean is None or spread is None:
            return
        key = (label, metric)
        band = self._bands.get(key) or self._make_band(key, color)
        stamp = (mean.version, spread.version, self.options)
        if band.drawn == stamp:
            return
        band.drawn = stamp
        if self._log_y:
            # mean - std is often <= 0 for rewards in [0, 1]; a half band would mislead.
            for item in (band.upper, band.lower, band.fill):
                item.hide()
            band.upper.setData([], [])
            band.lower.setData([], [])
            return
        n = min(len(mean), len(spread))
        x = self._x_of(mean)[:n]
        if self._alpha > 0:
            m = self._smooth.setdefault(key, IncrementalEma()).of(mean, self._alpha)[:n]
            s = self._smooth.setdefault((label, self.band[metric]), IncrementalEma())
            s = s.of(spread, self._alpha)[:n]
        else:
            m, s = mean.values[:n], spread.values[:n]
        ok = np.isfinite(x) & np.isfinite(m) & np.isfinite(s)
        if not np.array_equal(mean.steps[:n], spread.steps[:n]):
            ok &= False  # the two were not reported together: no honest band to draw
        # The fill rebuilds its path on each edge's change signal; once, after both, is enough.
        band.upper.blockSignals(True)
        band.upper.setData(x[ok], (m + np.abs(s))[ok])
        band.upper.blockSignals(False)
        band.lower.setData(x[ok], (m - np.abs(s))[ok])
        for item in (band.upper, band.lower, band.fill):
            item.show()

    def _draw_events(self, label, runs: RunSeries, color) -> None:
        lines = self._events.setdefault(label, [])
        theme = style.theme_of(self)
        for i, (step, time_s, text) in enumerate(runs.events[len(lines):], start=len(lines)):
            # A divergence marks the step that never finished, one past the data: it stays in
            # view, and its label reads leftwards from it.
            last = text.startswith("✕")   # run_loading.DIVERGED_MARK (plots import no panels)
            line = pg.InfiniteLine(
                angle=90,
                pen=pg.mkPen(style.with_alpha(color, 150), width=1, style=Qt.PenStyle.DashLine),
                label=text,
                labelOpts={
                    # markers close together (rounds every 25 steps on a narrow panel) take
                    # turns at three heights, so their labels do not print over each other
                    "position": 0.96 - 0.14 * (i % 3),
                    "color": theme.text,
                    "fill": style.with_alpha(theme.base, 200),
                    "anchors": [(1, 0), (1, 0)] if last else [(0, 0), (0, 0)],
                },
            )
            line.label.setFont(style.scaled_font(self, 0.8))
            line.setToolTip(text)
            line.label.setToolTip(text)
            self.plot_item.addItem(line, ignoreBounds=not last)
            lines.append((line, step, time_s, text))

    def _place_events(self, *_) -> None:
        """Each marker at its step (or time), its label reading away from the nearer edge and
        as long as the room on that side allows."""
        view = self.plot_item.getViewBox()
        lo, hi = view.viewRange()[0]
        width = view.width()
        for line, step, time_s, text in (m for lines in self._events.values() for m in lines):
            pos = step if self._x_axis == "step" else time_s
            line.setVisible(bool(np.isfinite(pos)))
            if np.isfinite(pos):
                line.setPos(pos)
                # a marker in the right half reads leftwards, so its label stays in the panel
                leftwards = pos > (lo + hi) / 2
                anchors = [(1, 0), (1, 0)] if leftwards else [(0, 0), (0, 0)]
                if line.label.anchors != anchors:
                    line.label.anchors = anchors
                    line.label.updatePosition()
                if hi > lo and width > 0:
                    share = (pos - lo) / (hi - lo) if leftwards else (hi - pos) / (hi - lo)
                    self._fit_label(line.label, text, share * width)

    @staticmethod
    def _fit_label(label, text: str, room: float) -> None:
        """The longest form of a round's label that fits `room` pixels beside it: the whole
        ("round +8 · win 62%"), then its last part ("win 62%"), then none, the marker alone; the
        whole text stays in the tooltip. On a narrow panel (eight of them at 1366 px) the whole
        one was cut at the panel's edge. Other labels (an edit, a divergence) keep their words:
        cut short, they still say more than a bare line. Measured by font metrics, so a label
        is laid out again only when its form changes (this runs at every change of range)."""
        if " · " not in text:
            return
        metrics = QFontMetricsF(label.textItem.font())
        pad = label.boundingRect().width() - metrics.horizontalAdvance(label.format) \
            if label.isVisible() else 8.0   # the box's margins around the text
        form = next((f for f in (text, text.rsplit(" · ", 1)[-1])
                     if metrics.horizontalAdvance(f) + pad <= room), "")
        if not form:
            if label.isVisible():
                label.setVisible(False)
        elif form != label.format or not label.isVisible():
            label.format = form   # set before it shows: a hidden label ignores setFormat
            label.setVisible(True)
            label.valueChanged()

    def _draw_reference(self) -> None:
        if self._ref is None:
            for item in (self._ref_line, self._ref_anchor):
                if item is not None:
                    self.plot_item.removeItem(item)
            self._ref_line = self._ref_anchor = None
            return
        value, label = self._ref
        if self._ref_line is None:
            self._ref_line, self._ref_anchor = make_reference_line(
                self.plot_item, style.theme_of(self).muted, label)
        self._ref_line.label.setFormat(f"{label} {value:g}")
        shown = not self._log_y or value > 0
        self._ref_line.setVisible(shown)
        if shown:
            self._ref_line.setPos(np.log10(value) if self._log_y else value)
            self._ref_anchor.setData([self._first_x()], [value])

    def _first_x(self) -> float:
        starts = [c.main.xData[0] for c in self._curves.values() if c.main.xData is not None
                  and len(c.main.xData)]
        return float(min(starts)) if starts else 0.0

    # ----- items ---------------------------------------------------------------------------
    def _make_curve(self, key: tuple[str, str], index: int, color: QColor) -> Curve:
        self._curves[key] = curve = make_curve(self.plot_item, color, index, " · ".join(key))
        self._legend_stale = True
        return curve

    def _make_band(self, key: tuple[str, str], color: QColor) -> Band:
        self._bands[key] = band = make_band(self.plot_item, color)
        return band

    def _clear_items(self) -> None:
        for curve in self._curves.values():
            self.plot_item.removeItem(curve.main)
            self.plot_item.removeItem(curve.ghost)
        for band in self._bands.values():
            for item in (band.fill, band.upper, band.lower):
                self.plot_item.removeItem(item)
        for lines in self._events.values():
            for line, *_ in lines:
                self.plot_item.removeItem(line)
        self._curves.clear()
        self.legend.set_entries([])
        self._bands.clear()
        self._smooth.clear()
        self._events.clear()

    # ----- look ----------------------------------------------------------------------------
    def _label_style(self) -> dict[str, str]:
        return {"color": style.theme_of(self).text.name(), "font-size": "9pt"}

    def _apply_theme(self) -> None:
        theme = style.theme_of(self)
        self.plot_widget.setBackground(theme.base)
        title = f"<b>{self.title}</b>"
        if self.subtitle:
            # A centred paragraph: a bare <br> leaves the short title flush left of the note.
            title = (f"<p align='center' style='margin:0'>{title}<br><span style='font-size:8pt;"
                     f" font-weight:normal; color:{theme.muted.name()}'>{self.subtitle}</span></p>")
        self._title.setText(title, color=theme.text.name())
        tick_font = style.scaled_font(self, 0.85)
        for name in ("left", "bottom"):
            axis = self.plot_item.getAxis(name)
            axis.setPen(pg.mkPen(theme.muted))
            axis.setTextPen(pg.mkPen(theme.text))
            axis.setTickFont(tick_font)
        self.plot_item.getAxis("left").setLabel(self._y_label, units=self._units or None,
                                                **self._label_style())
        self.plot_item.getAxis("bottom").setLabel(*X_LABELS[self._x_axis], **self._label_style())
        self.legend.set_style(style.scaled_font(self, 0.8), theme.text)
        # The entries' pens come from the theme too: rebuild them at the next refresh.
        self._legend_stale, self._last_key = True, None
        self._empty.item.setColor(theme.muted)

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)

    def _update_empty_state(self) -> None:
        empty = not self.has_data()
        self.legend.set_wanted(not empty)
        if self._ref_line is not None and empty:
            self._ref_line.hide()
        text = None
        if empty:
            stepped = any(runs.n_steps for _, runs, _ in self._runs)
            text = NOT_REPORTED_TEXT if stepped else EMPTY_TEXT
        self._empty.show_text(text)

    # ----- export --------------------------------------------------------------------------
    def export_png(self, path: str | Path, width: int = 1600) -> Path:
        """The panel as a PNG `width` pixels wide, with title, axis labels and legend."""
        self.refresh()
        exporter = exporters.ImageExporter(self.plot_item)
        exporter.parameters()["width"] = int(width)
        exporter.parameters()["background"] = style.theme_of(self).base
        atomic_write(path, lambda tmp: exporter.export(str(tmp)))
        return Path(path)

    def export_svg(self, path: str | Path) -> Path:
        self.refresh()
        exporter = exporters.SVGExporter(self.plot_item)
        exporter.parameters()["background"] = style.theme_of(self).base
        atomic_write(path, lambda tmp: exporter.export(str(tmp)))
        return Path(path)

    def csv_series(self) -> list[tuple[str, str, MetricSeries]]:
        """Every series this panel draws (lines and band spreads), for the CSV export."""
        names = list(self.metrics) + [s for s in self.band.values() if s not in self.metrics]
        return [(label, name, runs.get(name)) for label, runs, _ in self._runs
                for name in names if runs.get(name) is not None]

    def export_csv(self, path: str | Path) -> Path:
        """All points (none decimated, NaN included) as run,metric,step,time_s,value rows."""
        return write_long_csv(path, self.csv_series())
