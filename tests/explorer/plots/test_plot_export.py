"""Regression guard for the PySide6 pin (see pyproject.toml).

A live-updating pyqtgraph plot followed by PNG, SVG and CSV export is exactly what broke:
PySide6 6.12.0 aborts the process within seconds of such updates ("deallocating None"), and
6.11.x makes SVGExporter fail (pyqtgraph #3485). If a dependency bump brings either back, this
test fails instead of a user's run.

The 6.12 abort comes from a reference-count bug: every axis repaint takes one reference to
None too many away, and the interpreter dies when None's count reaches zero. How long that
takes depends on how many references the process holds (seconds in the app, longer under
pytest), so the test checks the count directly instead of hoping to crash in time.
"""

import sys
import xml.etree.ElementTree as ET

import numpy as np
import pyqtgraph as pg
import pyqtgraph.exporters as exporters
from PySide6.QtCore import QTimer
from PySide6.QtGui import QImage

UPDATE_HZ = 20
DURATION_S = 3.0
PNG_WIDTH = 640
LEGEND = "reward/mean"


def test_live_plot_then_export(qtbot, tmp_path):
    widget = pg.PlotWidget()
    qtbot.addWidget(widget)
    plot = widget.getPlotItem()
    plot.addLegend()
    plot.setLabel("bottom", "step")
    plot.setLabel("left", "reward")
    curve = plot.plot(name=LEGEND, pen=pg.mkPen(width=2))
    curve.setClipToView(True)
    curve.setDownsampling(auto=True, method="peak")
    widget.resize(800, 500)
    widget.show()
    qtbot.waitExposed(widget)
    qtbot.wait(100)
    none_refs_before = sys.getrefcount(None)

    # The app's streaming pattern: a growing buffer, redrawn from a GUI-thread timer.
    buffer = np.empty((0, 2))
    rng = np.random.default_rng(0)
    # Enough points that auto peak downsampling really kicks in (pyqtgraph's default needs more
    # than 5 points per pixel), so the drawing path the app relies on is the one exercised.
    points_per_tick = 200

    def tick():
        nonlocal buffer
        start = len(buffer)
        steps = np.arange(start, start + points_per_tick, dtype=float)
        values = np.tanh(steps / 200) + 0.05 * rng.standard_normal(points_per_tick)
        buffer = np.vstack([buffer, np.column_stack([steps, values])])
        curve.setData(buffer[:, 0], buffer[:, 1])

    timer = QTimer()
    timer.setInterval(1000 // UPDATE_HZ)
    timer.timeout.connect(tick)
    timer.start()
    expected_ticks = int(DURATION_S * UPDATE_HZ)
    qtbot.waitUntil(lambda: len(buffer) >= expected_ticks * points_per_tick, timeout=15_000)
    timer.stop()
    n_points = len(buffer)
    # Under 6.12.0 about 15,000 references vanish here; a healthy binding stays within noise.
    # (On Python 3.12+ None is immortal, its count never moves and this check is moot.)
    lost = none_refs_before - sys.getrefcount(None)
    assert lost < 1_000, f"PySide6 dropped {lost} references to None: it will abort soon"
    # Every point is kept; only what is drawn is decimated.
    assert curve.getOriginalDataset()[0].size == n_points
    assert len(curve.getData()[0]) < n_points

    png = tmp_path / "plot.png"
    image_exporter = exporters.ImageExporter(plot)
    image_exporter.parameters()["width"] = PNG_WIDTH
    image_exporter.export(str(png))

    svg = tmp_path / "plot.svg"
    exporters.SVGExporter(plot).export(str(svg))

    csv = tmp_path / "plot.csv"
    exporters.CSVExporter(plot).export(str(csv))

    for path in (png, svg, csv):
        assert path.exists() and path.stat().st_size > 0, path

    image = QImage(str(png))
    assert not image.isNull()
    assert image.width() == PNG_WIDTH

    svg_text = svg.read_text()
    root = ET.fromstring(svg_text)
    assert any(el.tag.split("}")[-1] in ("path", "polyline") for el in root.iter())
    assert LEGEND in svg_text

    # CSVExporter writes a header row, then one row per point, every point (no decimation).
    rows = [line for line in csv.read_text().splitlines() if line.strip()]
    assert len(rows) - 1 == n_points
