"""The live dashboard: a grid of metric panels, a shared toolbar, one redraw timer, export."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from PySide6.QtCore import QSize, Qt, QTimer
from PySide6.QtGui import QPalette
from PySide6.QtWidgets import (
    QApplication,
    QCheckBox,
    QComboBox,
    QFileDialog,
    QGraphicsView,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QMessageBox,
    QPushButton,
    QScrollArea,
    QSlider,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from explorer.plots import style
from explorer.plots.export import render_png, render_svg, write_long_csv
from explorer.plots.metric_plot import MetricPlot, RunEntry
from explorer.plots.ranges import Bounds
from explorer.plots.series import RunSeries

GRPO_NOTE = "GRPO: ≈ 0 by design"
# With one update per batch (GRPO's and REINFORCE's defaults) the policy that sampled is the one
# updated: these panels then sit at 0, and a newcomer read them as broken (issue 16).
ONE_UPDATE_NOTE = "0 with one update per batch (GRPO's default)"


@dataclass(frozen=True)
class PanelSpec:
    key: str
    title: str
    metrics: tuple[str, ...]
    y_label: str = ""
    units: str = ""
    band: dict[str, str] = field(default_factory=dict)
    subtitle: str = ""
    tooltip: str = ""
    # The values the metrics can take, (lo, hi) with None for unbounded: the y range never
    # leaves them, so a fraction near 0 is not drawn on -0.4..0.4.
    y_bounds: Bounds = (None, None)

    def make(self) -> MetricPlot:
        panel = MetricPlot(self.title, self.metrics, y_label=self.y_label, units=self.units,
                           band=self.band, subtitle=self.subtitle, y_bounds=self.y_bounds)
        panel.setObjectName(f"{self.key}Plot")
        if self.tooltip:
            panel.setToolTip(self.tooltip)
        return panel


MAIN_PANELS = (
    PanelSpec("reward", "Reward", ("reward/mean", "reward/true_mean"), "reward",
              band={"reward/mean": "reward/std"},
              tooltip="Solid: the reward being optimised, shaded ± one standard deviation of the "
                      "batch. Dashed: the hidden true reward — when a learned reward model rises "
                      "and this does not, the policy is hacking the model."),
    # Not bounded below: the k1 estimator's mean can dip under 0.
    PanelSpec("kl", "KL to reference", ("kl/mean",), "KL", "nats",
              tooltip="KL(π_θ ‖ π_ref): how far the policy has drifted from the frozen base "
                      "model, summed over each completion's tokens. Its budget (the adaptive "
                      "target) is what bounds how high the reward can climb."),
    PanelSpec("update", "Policy step", ("policy/approx_kl", "trust/kl"),
              "KL per token", "nats", y_bounds=(0, None),  # both k3 estimates: never negative
              subtitle=ONE_UPDATE_NOTE,
              tooltip="How far one update moved the policy from the one that sampled the batch. "
                      "approx_kl: during the update (k3); trust/kl: measured after it, the d "
                      "that the trust-region objective's adaptive β reads."),
    PanelSpec("clip_frac", "Clip fraction", ("policy/clip_frac",), "share of tokens",
              y_bounds=(0, 1), subtitle=ONE_UPDATE_NOTE,
              tooltip="Share of tokens where PPO's clip decided the objective. It is 0 by "
                      "construction with one update per batch (ratio = 1)."),
    PanelSpec("beta", "KL weights β", ("kl/beta", "trust/beta"), "β", y_bounds=(0, None),
              tooltip="kl/beta weights the KL to the reference; trust/beta weights the "
                      "trust-region penalty KL(π_old ‖ π_θ). The adaptive rule halves or "
                      "doubles each against its own target. Try the log scale."),
    PanelSpec("entropy", "Entropy", ("policy/entropy",), "entropy", "nats", y_bounds=(0, None),
              tooltip="Mean token entropy: a collapse toward 0 means the policy stopped "
                      "exploring."),
    PanelSpec("losses", "Losses", ("loss/policy", "loss/value", "loss/total"), "loss",
              subtitle=GRPO_NOTE,
              tooltip="For GRPO the loss stays near 0 by construction: with one update per "
                      "batch the ratio is 1, so only its gradient matters. Watch the reward."),
    PanelSpec("length", "Length", ("completions/mean_length",), "tokens", y_bounds=(0, None),
              tooltip="Mean tokens per completion. A drift while the reward rises is a "
                      "classic sign of reward hacking."),
)
# The x axis, never a curve of its own.
NOT_PLOTTED = frozenset({"step"})
COLUMNS = 4


def objective_tabs() -> dict[str, tuple[PanelSpec, ...]]:
    """The tabs objectives ask for, by label ("DPO"), from their panels' metadata
    (`core.algorithms.base.Panel`): an objective's own metrics get plots with no GUI code."""
    from core.algorithms import OBJECTIVES

    return {cls.label: tuple(PanelSpec(p.key, p.title, p.metrics, p.y_label, p.units,
                                       tooltip=p.tooltip, y_bounds=p.bounds)
                             for p in cls.panels)
            for cls in OBJECTIVES.values() if cls.panels}


def _shown_by_main() -> frozenset[str]:
    names = set()
    for spec in MAIN_PANELS + tuple(s for specs in objective_tabs().values() for s in specs):
        names.update(spec.metrics)
        names.update(spec.band.values())
    return frozenset(names)


def bounds_of(metric: str) -> Bounds:
    """(0, 1) for a share or an accuracy (rm/accuracy, reward/frac_zero_std), judged by name."""
    leaf = metric.rsplit("/", 1)[-1]
    fraction = "accuracy" in leaf or leaf.startswith("frac") or leaf.endswith(("_frac", "fraction"))
    return (0, 1) if fraction else (None, None)


def extra_spec(metric: str) -> PanelSpec:
    """A plain panel for a metric no built-in panel shows, so new diagnostics need no GUI code."""
    return PanelSpec(metric, metric, (metric,), metric.rsplit("/", 1)[-1],
                     units="s" if metric in ("time_s", "perf/step_s") else "",
                     y_bounds=bounds_of(metric))


class Dashboard(QWidget):
    """Reward, KL, clip fraction, β, entropy and losses, plus a tab of any other metric."""

    def show_warning(self, text: str | None) -> None:
        """The hacking banner: shown with `text`, hidden with None."""
        if text:
            self.banner.setText("⚠ " + text)
        self.banner.setVisible(bool(text))

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("dashboard")
        self._runs: list[tuple[str, RunSeries, object]] = []
        self._seen: dict[int, int] = {}  # id(RunSeries) -> how many names were checked
        self._timer: QTimer | None = None
        self._kl_target: float | None = None
        self.panels: dict[str, MetricPlot] = {}
        self.extra_specs: dict[str, PanelSpec] = {}

        layout = QVBoxLayout(self)
        layout.setContentsMargins(6, 6, 6, 6)
        layout.addLayout(self._build_toolbar())
        # Over the plots: a warning that the policy is hacking its learned reward, with the fix
        # (core.reward_learning.hacking). Hidden until a run's own signals say so.
        self.banner = QLabel(objectName="hackingBanner", wordWrap=True, visible=False)
        self.banner.setStyleSheet("QLabel { background: #ffe3d6; color: #6b1d00; "
                                  "border: 1px solid #e0a080; border-radius: 4px; "
                                  "padding: 6px 10px; font-weight: 600; }")
        layout.addWidget(self.banner)
        self.tabs = QTabWidget()
        self.tabs.setDocumentMode(True)
        layout.addWidget(self.tabs, 1)

        self.tabs.addTab(self._panel_page(MAIN_PANELS), "Training")
        # An objective's own panels, on a tab of its own that shows once a run has its metrics.
        self._objective_tabs: dict[str, tuple[QWidget, tuple[PanelSpec, ...]]] = {}
        for label, specs in objective_tabs().items():
            page = self._panel_page(specs, stretch=True)
            self.tabs.setTabVisible(self.tabs.addTab(page, label), False)
            self._objective_tabs[label] = (page, specs)

        self._extras_page = QWidget()
        self._extras_layout = QVBoxLayout(self._extras_page)
        self._extras_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setWidget(self._extras_page)
        self._extras_scroll = scroll
        self.tabs.addTab(scroll, "More metrics")
        self.tabs.currentChanged.connect(lambda _: self.refresh())
        self._apply_options()

    def _panel_page(self, specs, stretch: bool = False) -> QWidget:
        """A page of panels, COLUMNS to a row (stretch: they keep their height when the page
        has fewer rows than the Training tab)."""
        page = QWidget()
        grid = QGridLayout(page)
        grid.setContentsMargins(0, 0, 0, 0)
        grid.setSpacing(6)
        for i, spec in enumerate(specs):
            self.panels[spec.key] = panel = spec.make()
            grid.addWidget(panel, i // COLUMNS, i % COLUMNS)
        if stretch:
            grid.setRowStretch(grid.rowCount(), 1)
        return page

    # ----- toolbar -------------------------------------------------------------------------
    def _build_toolbar(self) -> QHBoxLayout:
        bar = QHBoxLayout()
        bar.setSpacing(10)
        bar.addWidget(QLabel("Smoothing"))
        self.smoothing_slider = QSlider(Qt.Orientation.Horizontal)
        self.smoothing_slider.setObjectName("smoothingSlider")
        self.smoothing_slider.setRange(0, 99)
        self.smoothing_slider.setValue(60)
        self.smoothing_slider.setFixedWidth(160)
        self.smoothing_slider.setToolTip(
            "Debiased exponential moving average; the raw points stay drawn faintly beneath.")
        self.smoothing_label = QLabel()
        self.smoothing_label.setMinimumWidth(32)
        bar.addWidget(self.smoothing_slider)
        bar.addWidget(self.smoothing_label)
        bar.addSpacing(12)
        bar.addWidget(QLabel("x axis"))
        self.x_axis_combo = QComboBox()
        self.x_axis_combo.setObjectName("xAxisCombo")
        self.x_axis_combo.addItem("Step", "step")
        self.x_axis_combo.addItem("Time", "time")
        bar.addWidget(self.x_axis_combo)
        self.log_y_check = QCheckBox("Log y")
        self.log_y_check.setObjectName("logYCheck")
        bar.addWidget(self.log_y_check)
        bar.addStretch(1)
        self.export_button = QPushButton("Export dashboard…")
        self.export_button.setObjectName("exportDashboardButton")
        self.export_button.clicked.connect(self._ask_export)
        bar.addWidget(self.export_button)
        self.smoothing_slider.valueChanged.connect(self._apply_options)
        self.x_axis_combo.currentIndexChanged.connect(self._apply_options)
        self.log_y_check.toggled.connect(self._apply_options)
        return bar

    @property
    def smoothing(self) -> float:
        return self.smoothing_slider.value() / 100

    def set_smoothing(self, alpha: float) -> None:
        self.smoothing_slider.setValue(round(min(max(alpha, 0.0), 0.99) * 100))

    def set_x_axis(self, axis: str) -> None:
        self.x_axis_combo.setCurrentIndex(self.x_axis_combo.findData(axis))

    def set_log_y(self, log: bool) -> None:
        self.log_y_check.setChecked(log)

    def _apply_options(self, *_: object) -> None:
        self.smoothing_label.setText(f"{self.smoothing:.2f}")
        for panel in self.panels.values():
            self._configure(panel)
        self.refresh()

    def _configure(self, panel: MetricPlot) -> None:
        panel.set_smoothing(self.smoothing)
        panel.set_x_axis(self.x_axis_combo.currentData() or "step")
        panel.set_log_y(self.log_y_check.isChecked())

    # ----- data ----------------------------------------------------------------------------
    def set_runs(self, runs: Sequence[RunEntry]) -> None:
        """Show these (label, RunSeries, colour or None) runs in every panel."""
        dark = style.theme_of(self).dark
        self._runs = [(label, series, style.run_color(i, dark) if color is None else color)
                      for i, (label, series, color) in enumerate(runs)]
        self._seen.clear()
        self._show_objective_tabs()
        self._discover_extras()
        for panel in self.panels.values():
            panel.set_runs(self._runs)

    def set_kl_target(self, value: float | None) -> None:
        self._kl_target = value
        self.panels["kl"].set_reference_line(value, "target")
        self.refresh()

    def attach_timer(self, hz: float = 20) -> QTimer:
        """One GUI-thread timer redraws every panel; training never waits on drawing."""
        if self._timer is None:
            self._timer = QTimer(self)
            self._timer.timeout.connect(self.refresh)
        self._timer.setInterval(max(1, round(1000 / hz)))
        self._timer.start()
        return self._timer

    def detach_timer(self) -> None:
        if self._timer is not None:
            self._timer.stop()

    def refresh(self, *, all_panels: bool = False) -> None:
        """Redraw what changed; panels on a hidden tab wait until it is shown."""
        self._discover_extras()
        extras_shown = all_panels or self.tabs.currentWidget() is self._extras_scroll
        if extras_shown:
            self._build_extras()
        for key, panel in self.panels.items():
            if extras_shown or key not in self.extra_specs:
                panel.refresh()

    def panel(self, key_or_metric: str) -> MetricPlot | None:
        """A panel by key ("reward", "kl", …) or by a metric it draws."""
        if key_or_metric in self.extra_specs:
            self._build_extras()
        if key_or_metric in self.panels:
            return self.panels[key_or_metric]
        return next((p for p in self.panels.values() if key_or_metric in p.metrics), None)

    def _name_extras_tab(self) -> None:
        self.tabs.setTabText(self.tabs.indexOf(self._extras_scroll),
                             f"More metrics ({len(self.extra_specs)})")

    def objective_tab_shown(self, label: str) -> bool:
        """Whether the tab of an objective's panels ("DPO") is offered: a shown run has one of
        its metrics."""
        page, _ = self._objective_tabs[label]
        return self.tabs.isTabVisible(self.tabs.indexOf(page))

    def _show_objective_tabs(self) -> None:
        names = {n for _, runs, _ in self._runs for n in runs.names()}
        for page, specs in self._objective_tabs.values():
            wanted = any(m in names for spec in specs for m in spec.metrics)
            index = self.tabs.indexOf(page)
            if self.tabs.isTabVisible(index) != wanted:
                self.tabs.setTabVisible(index, wanted)

    def _discover_extras(self) -> None:
        shown = _shown_by_main()
        new = []
        for _, runs, _ in self._runs:
            names = runs.names()
            if self._seen.get(id(runs)) == len(names):
                continue
            self._seen[id(runs)] = len(names)
            self._show_objective_tabs()
            new += [n for n in names
                    if n not in shown and n not in NOT_PLOTTED and n not in self.extra_specs]
        for name in dict.fromkeys(new):
            self.extra_specs[name] = extra_spec(name)
        if new:
            self._name_extras_tab()

    def _build_extras(self) -> None:
        # Built only when their tab is shown (or a panel is asked for): building a dozen plots
        # at the first step stalled the GUI thread for up to a second while training started.
        missing = [name for name in self.extra_specs if name not in self.panels]
        for name in missing:
            self.panels[name] = panel = self.extra_specs[name].make()
            panel.setMinimumHeight(240)
            self._configure(panel)
            panel.set_runs(self._runs)
        if missing:
            self._layout_extras()

    def _layout_extras(self) -> None:
        # Grouped by the name's prefix ("perf", "rm", …) under a small heading, sorted, so
        # the tab stays tidy however many diagnostics a run reports.
        while self._extras_layout.count() > 1:
            item = self._extras_layout.takeAt(0)
            if item.widget() is not None and not isinstance(item.widget(), MetricPlot):
                item.widget().deleteLater()
        groups: dict[str, list[str]] = {}
        for name in sorted(self.extra_specs):
            groups.setdefault(name.split("/", 1)[0] if "/" in name else "other", []).append(name)
        for group, names in groups.items():
            heading = QLabel(group)
            heading.setFont(style.scaled_font(self, 1.1, bold=True))
            self._extras_layout.insertWidget(self._extras_layout.count() - 1, heading)
            box = QWidget()
            grid = QGridLayout(box)
            grid.setContentsMargins(0, 0, 0, 0)
            for i, name in enumerate(names):
                grid.addWidget(self.panels[name], i // COLUMNS, i % COLUMNS)
            for col in range(COLUMNS):
                grid.setColumnStretch(col, 1)
            self._extras_layout.insertWidget(self._extras_layout.count() - 1, box)
        self._name_extras_tab()

    # ----- export --------------------------------------------------------------------------
    def _export_page(self, width: int, height: int | None) -> tuple[QWidget, QSize]:
        """A hidden copy of every panel laid out for the requested size; returns it and size.

        Built fresh rather than grabbed so the file does not depend on the window's size or
        the tab being shown; the panels share the RunSeries, so this copies no data.
        """
        self._discover_extras()
        specs = list(MAIN_PANELS) + [spec for label, (_, own) in self._objective_tabs.items()
                                     if self.objective_tab_shown(label) for spec in own] + \
            [self.extra_specs[n] for n in sorted(self.extra_specs)]
        rows = math.ceil(len(specs) / COLUMNS)
        logical_w = 1500  # at this size the fonts read well once scaled to a 1600-px image
        scale = width / logical_w
        height = height or round(rows * 330 * scale)
        page = QWidget()
        page.setAttribute(Qt.WidgetAttribute.WA_DontShowOnScreen)
        page.setPalette(self.palette())
        page.setBackgroundRole(QPalette.ColorRole.Base)
        page.setAutoFillBackground(True)
        grid = QGridLayout(page)
        grid.setContentsMargins(8, 8, 8, 8)
        for i, spec in enumerate(specs):
            panel = spec.make()
            self._configure(panel)
            panel.set_runs(self._runs)
            if spec.key == "kl":
                panel.set_reference_line(self._kl_target, "target")
            grid.addWidget(panel, i // COLUMNS, i % COLUMNS)
        page.resize(logical_w, round(height / scale))
        page.show()
        # Let the pyqtgraph layouts settle (they lay out on posted events) before painting.
        QApplication.processEvents()
        for panel in page.findChildren(MetricPlot):
            # A cached background would land in the SVG as one bitmap per panel.
            panel.plot_widget.setCacheMode(QGraphicsView.CacheModeFlag.CacheNone)
            panel.refresh()
            panel.plot_item.getViewBox().autoRange(padding=0.05)
        QApplication.processEvents()
        return page, QSize(width, height)

    def export_png(self, path: str | Path, width: int = 1800, height: int | None = None) -> Path:
        """Every panel in one PNG of `width` x `height` pixels (height from the layout if None)."""
        page, size = self._export_page(width, height)
        try:
            return render_png(page, path, size, style.theme_of(self).base)
        finally:
            page.close()
            page.deleteLater()

    def export_svg(self, path: str | Path) -> Path:
        """Every panel in one SVG, painted by Qt's QSvgGenerator (vector lines, real text)."""
        page, _ = self._export_page(1500, None)
        try:
            return render_svg(page, path, "rlhf-explorer dashboard")
        finally:
            page.close()
            page.deleteLater()

    def export_csv(self, path: str | Path) -> Path:
        """Every metric of every shown run, long format: run,metric,step,time_s,value."""
        rows = [(label, name, runs.get(name)) for label, runs, _ in self._runs
                for name in runs.names()]
        return write_long_csv(path, rows)

    def _ask_export(self) -> None:
        filters = "PNG image (*.png);;SVG drawing (*.svg);;CSV table (*.csv)"
        path, chosen = QFileDialog.getSaveFileName(self, "Export dashboard", "dashboard.png",
                                                   filters)
        if not path:
            return
        kind = Path(path).suffix.lower().lstrip(".")
        if kind not in ("png", "svg", "csv"):
            kind = chosen.split("*.")[-1].rstrip(")")
            path += f".{kind}"
        try:
            getattr(self, f"export_{kind}")(path)
        except OSError as error:
            QMessageBox.warning(self, "Export failed", f"Could not write {path}:\n{error}")
