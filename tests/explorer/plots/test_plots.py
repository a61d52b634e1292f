"""Live plots: the numpy model by hand numbers, the dashboard with two long runs, exports."""

import csv
import math
import xml.etree.ElementTree as ET

import numpy as np
import pyqtgraph as pg
import pytest
from PySide6.QtGui import QImage
from PySide6.QtWidgets import QApplication

from explorer.plots import Dashboard, MetricPlot, RunSeries, ema_debiased
from explorer.plots.dashboard import GRPO_NOTE, MAIN_PANELS, bounds_of
from explorer.plots.metric_plot import EMPTY_TEXT, NOT_REPORTED_TEXT
from explorer.plots.ranges import readable_y_range, view_limits
from explorer.plots.series import GrowingBuffer, ema_extend

STEPS = 3000


# ----- the pure model ---------------------------------------------------------------------
def test_ema_debiased_hand_numbers():
    # A constant stays that constant from the first point: the bias toward 0 is divided out.
    np.testing.assert_allclose(ema_debiased([1, 1, 1], 0.9), [1, 1, 1], rtol=1e-12)
    # s1 = 0.5*0 = 0 -> 0/0.5 = 0; s2 = 0.5*0 + 0.5*10 = 5 -> 5/0.75 = 6.666…
    np.testing.assert_allclose(ema_debiased([0, 10], 0.5), [0, 20 / 3], rtol=1e-12)
    np.testing.assert_array_equal(ema_debiased([3, -1, 7], 0.0), [3, -1, 7])


def test_ema_skips_nans_without_advancing_time():
    # s1 = 1 -> 1/0.5 = 2; NaN skipped; s2 = 0.5*1 + 0.5*4 = 2.5 -> 2.5/0.75
    out = ema_debiased([2, math.nan, 4], 0.5)
    assert math.isnan(out[1])
    np.testing.assert_allclose(out[[0, 2]], [2, 2.5 / 0.75], rtol=1e-12)


def test_ema_matches_the_plain_loop_and_continues_in_pieces():
    rng = np.random.default_rng(1)
    values = rng.standard_normal(5000) * 3 + 1
    values[::13] = math.nan
    for alpha in (0.1, 0.6, 0.99):
        s, t, expected = 0.0, 0, []
        for x in values:
            if math.isnan(x):
                expected.append(math.nan)
                continue
            s = alpha * s + (1 - alpha) * x
            t += 1
            expected.append(s / (1 - alpha**t))
        np.testing.assert_allclose(ema_debiased(values, alpha), expected, rtol=1e-9)
        head, state, count = ema_extend(values[:1234], alpha)
        tail, _, _ = ema_extend(values[1234:], alpha, state, count)
        np.testing.assert_allclose(np.concatenate([head, tail]), expected, rtol=1e-9)


def test_buffers_grow_past_their_capacity_and_keep_every_point():
    buffer = GrowingBuffer(capacity=2)
    buffer.extend(np.arange(5))
    buffer.append(5)
    np.testing.assert_array_equal(buffer.view, np.arange(6))

    run = RunSeries(capacity=4)
    for step in range(1000):
        run.append({"step": step, "time_s": step * 0.5, "reward/mean": step * 2.0})
    series = run.get("reward/mean")
    assert len(series) == 1000 and series.capacity >= 1000
    np.testing.assert_array_equal(series.steps, np.arange(1000))
    np.testing.assert_array_equal(series.times, np.arange(1000) * 0.5)
    np.testing.assert_array_equal(series.values, np.arange(1000) * 2.0)
    assert run.version == 1000


def test_run_series_keeps_nonfinite_counted_and_skips_non_numbers():
    run = RunSeries()
    run.append({"step": 0, "time_s": 0.0, "kl/mean": 0.1, "phase": "rl"})
    run.append({"step": 1, "time_s": 0.3, "kl/mean": math.nan})
    run.append({"step": 2, "time_s": 0.6, "kl/mean": math.inf})
    run.add_event("lr 1e-5→3e-5")
    assert run.names() == ["time_s", "kl/mean"]  # `step` is the x axis; a string is no curve
    assert len(run.get("kl/mean")) == 3 and run.get("kl/mean").n_nonfinite == 2
    assert run.events == [(2.0, 0.6, "lr 1e-5→3e-5")]
    assert run.version == 4


def test_readable_y_range_hand_numbers():
    # A constant is shown ±10%, a constant 0 ±0.5, a real spread untouched.
    np.testing.assert_allclose(readable_y_range(0.04, 0.04), (0.036, 0.044))
    np.testing.assert_allclose(readable_y_range(-2.0, -2.0 + 1e-9), (-2.2, -1.8), rtol=1e-6)
    assert readable_y_range(0.0, 0.0) == (-0.5, 0.5)
    assert readable_y_range(0.5, 0.51) == (0.5, 0.51)
    # Log view coordinates are decades: ±log10(1.1) around log10(0.04).
    lo, hi = readable_y_range(math.log10(0.04), math.log10(0.04), log=True)
    np.testing.assert_allclose((10**lo, 10**hi), (0.04 / 1.1, 0.044), rtol=1e-9)
    # Bounds in log mode: 0 has no logarithm, 1 is 10**0.
    assert view_limits((0, 1), log=True) == (None, 0.0)
    assert view_limits((0, 1)) == (0, 1)
    assert bounds_of("rm/accuracy") == bounds_of("reward/frac_zero_std") == (0, 1)
    assert bounds_of("rm/loss") == (None, None)


# ----- widgets ----------------------------------------------------------------------------
def synthetic_run(seed: int, steps: int = STEPS, extra: dict | None = None) -> RunSeries:
    rng = np.random.default_rng(seed)
    run = RunSeries()
    for s in range(steps):
        p = 1 - math.exp(-s / 300)
        run.append({
            "step": s, "time_s": s * (0.3 + 0.1 * seed),
            "reward/mean": -0.2 + p + 0.05 * rng.standard_normal(),
            "reward/std": 0.2 + 0.01 * rng.random(),
            "reward/true_mean": 0.7 * p + 0.05 * rng.standard_normal(),
            "kl/mean": 5 * p + 0.1 * rng.standard_normal(), "kl/beta": 0.05,
            "policy/clip_frac": 0.1 * rng.random(), "policy/entropy": 2.5 - p,
            "policy/approx_kl": 0.01 * rng.random(),
            "loss/policy": 0.01 * rng.standard_normal(), "loss/value": 1 - p,
            "loss/total": 1 - p, "perf/step_s": 0.3, **(extra or {}),
        })
        if s == steps // 2:
            run.add_event("lr 1e-5→3e-5")
    return run


@pytest.fixture(scope="module")
def two_runs():
    return synthetic_run(0), synthetic_run(1, extra={"custom/thing": 1.0})


@pytest.fixture
def dashboard(qtbot, two_runs):
    board = Dashboard()
    qtbot.addWidget(board)
    board.resize(1200, 800)
    board.set_runs([("run A", two_runs[0], None), ("run B", two_runs[1], None)])
    board.set_kl_target(3.0)
    board.show()
    qtbot.waitExposed(board)
    return board


def test_dashboard_draws_both_runs_with_every_point(dashboard):
    reward = dashboard.panel("reward")
    assert len(reward.data_items()) == 4  # 2 runs x (mean, true mean)
    # Colour names the run, dash the metric: runs + metrics, not every pair.
    assert [label.text for _, label in reward.legend.items] == [
        "run A", "run B", "optimised", "true (hidden)"]
    kl = dashboard.panel("kl/mean")
    assert [label.text for _, label in kl.legend.items] == ["run A", "run B"]
    for item in reward.data_items():
        assert item.getOriginalDataset()[0].size == STEPS  # kept; only drawing decimates
        assert item.opts["autoDownsample"] and item.opts["downsampleMethod"] == "peak"
        assert item.opts["clipToView"]
    assert len(dashboard.panel("losses").data_items()) == 6


def test_toggles_change_what_is_drawn(dashboard, two_runs):
    main = dashboard.panel("kl").data_items()[0]
    raw = two_runs[0].get("kl/mean").values
    dashboard.set_smoothing(0.0)
    np.testing.assert_array_equal(main.getOriginalDataset()[1], raw)
    dashboard.set_smoothing(0.9)
    np.testing.assert_allclose(main.getOriginalDataset()[1], ema_debiased(raw, 0.9))
    assert dashboard.smoothing_label.text() == "0.90"

    dashboard.set_x_axis("time")
    np.testing.assert_allclose(main.getOriginalDataset()[0], two_runs[0].get("kl/mean").times)
    assert "time" in dashboard.panel("kl").plot_item.getAxis("bottom").labelText
    dashboard.set_x_axis("step")

    dashboard.set_smoothing(0.0)
    dashboard.set_log_y(True)
    reward_mean = dashboard.panel("reward").data_items()[0].getOriginalDataset()[1]
    assert (reward_mean > 0).all() and reward_mean.size < STEPS  # non-positive left out
    dashboard.set_log_y(False)
    assert dashboard.panel("reward").data_items()[0].getOriginalDataset()[1].size == STEPS


def test_unknown_metrics_get_a_panel_of_their_own(dashboard, two_runs):
    custom = dashboard.panel("custom/thing")
    assert isinstance(custom, MetricPlot)
    assert dashboard.panel("policy/approx_kl") is not None
    assert dashboard.panel("step") is None
    more = dashboard.tabs.indexOf(dashboard._extras_scroll)
    dashboard.tabs.setCurrentIndex(more)
    assert len(custom.data_items()) == 1  # only run B reports it
    assert dashboard.tabs.tabText(more).startswith("More metrics")

    late = RunSeries()
    late.append({"step": 0, "time_s": 0.0, "rm/accuracy": 0.5})
    dashboard.set_runs([("late", late, None)])
    late.append({"step": 1, "time_s": 1.0, "brand/new": 2.0})
    dashboard.refresh()
    assert dashboard.panel("brand/new") is not None


def test_an_objectives_panels_come_from_its_metadata_on_a_tab_of_their_own(dashboard):
    from core.algorithms.dpo import DPO

    assert not dashboard.objective_tab_shown("DPO")   # the GRPO runs have no DPO metric
    run = RunSeries()
    run.append({"step": 0, "time_s": 0.0, "dpo/logp_chosen": -20.0, "dpo/accuracy": 0.5,
                "dpo/brand_new": 1.0})
    dashboard.set_runs([("dpo run", run, None)])
    dashboard.refresh()
    assert dashboard.objective_tab_shown("DPO")
    for spec in DPO.panels:
        panel = dashboard.panel(spec.key)
        assert panel.metrics == spec.metrics and panel.toolTip() == spec.tooltip
    # on DPO's tab, not under More metrics; a DPO metric no panel names still goes there
    assert "dpo/logp_chosen" not in dashboard.extra_specs
    assert "dpo/brand_new" in dashboard.extra_specs
    assert len(dashboard.panel("dpo_logp").data_items()) == 1
    dashboard.set_runs([])
    assert not dashboard.objective_tab_shown("DPO")


def test_events_kl_target_and_grpo_note(dashboard):
    kl = dashboard.panel("kl")
    lines = [i for i in kl.plot_item.items if isinstance(i, pg.InfiniteLine)]
    assert any(line.angle == 0 and line.value() == 3.0 for line in lines)  # the target
    assert sum(line.angle == 90 for line in lines) == 2  # one edit marker per run
    losses = dashboard.panel("losses")
    assert GRPO_NOTE in losses.subtitle and "Watch the reward" in losses.toolTip()
    assert "GRPO" in losses.plot_item.titleLabel.text


def test_empty_state_and_nonfinite_points(qtbot):
    plot = MetricPlot("KL", ["kl/mean"], y_label="KL", units="nats")
    qtbot.addWidget(plot)
    plot.set_runs([])
    assert plot.empty_text() == EMPTY_TEXT
    run = RunSeries()
    plot.set_runs([("a", run, None)])
    run.append({"step": 0, "time_s": 0.0, "kl/mean": 0.5})
    run.append({"step": 1, "time_s": 0.1, "kl/mean": math.nan})
    run.append({"step": 2, "time_s": 0.2, "kl/mean": 0.7})
    plot.refresh()
    assert plot.empty_text() is None
    np.testing.assert_array_equal(plot.data_items()[0].getOriginalDataset()[0], [0, 2])
    assert len(run.get("kl/mean")) == 3


def test_refresh_without_new_data_calls_no_set_data(dashboard, two_runs, monkeypatch):
    calls = []
    original = pg.PlotDataItem.setData

    def spy(self, *args, **kwargs):
        calls.append(self)
        return original(self, *args, **kwargs)

    monkeypatch.setattr(pg.PlotDataItem, "setData", spy)
    dashboard.refresh(all_panels=True)
    calls.clear()
    dashboard.refresh(all_panels=True)
    assert calls == []
    two_runs[0].append({"step": STEPS, "time_s": 1e4, "kl/mean": 1.0})
    dashboard.refresh()
    assert calls  # the new point is pushed
    assert dashboard.panel("entropy").refresh() is False  # that step had no entropy change


def test_timer_redraws_new_steps(qtbot, dashboard):
    run = RunSeries()
    dashboard.set_runs([("live", run, None)])
    timer = dashboard.attach_timer(hz=20)
    assert timer.interval() == 50 and timer.isActive()
    for s in range(5):
        run.append({"step": s, "time_s": s * 0.1, "reward/mean": 0.1 * s})
    item = dashboard.panel("reward").data_items
    qtbot.waitUntil(lambda: len(item()) == 1 and item()[0].getOriginalDataset()[0].size == 5)
    dashboard.detach_timer()
    assert not timer.isActive()


def test_context_menu_has_our_export_entries(qtbot):
    plot = MetricPlot("Reward", ["reward/mean"])
    qtbot.addWidget(plot)
    texts = [a.text() for a in plot.plot_item.getViewBox().menu.actions()]
    assert texts[:3] == ["Export PNG…", "Export SVG…", "Export CSV…"]


def _csv_rows(path):
    with open(path, newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    assert rows[0] == ["run", "metric", "step", "time_s", "value"]
    return rows[1:]


def test_single_plot_exports(dashboard, tmp_path):
    reward = dashboard.panel("reward")
    png = reward.export_png(tmp_path / "reward.png", width=900)
    image = QImage(str(png))
    assert not image.isNull() and image.width() == 900

    svg_text = reward.export_svg(tmp_path / "reward.svg").read_text()
    ET.fromstring(svg_text)
    assert "run A" in svg_text and "true (hidden)" in svg_text and "reward" in svg_text

    rows = _csv_rows(reward.export_csv(tmp_path / "reward.csv"))
    # 2 runs x (mean, true mean, std of the band), every point
    assert len(rows) == 2 * 3 * STEPS
    assert {(r[0], r[1]) for r in rows} >= {("run A", "reward/std"), ("run B", "reward/mean")}


def test_dashboard_exports(dashboard, two_runs, tmp_path):
    png = dashboard.export_png(tmp_path / "dash.png", width=1200, height=900)
    image = QImage(str(png))
    assert (image.width(), image.height()) == (1200, 900)
    # Not a blank canvas: plenty of distinct colours were painted.
    sample = {image.pixel(x, y) for x in range(0, 1200, 7) for y in range(0, 900, 7)}
    assert len(sample) > 50

    svg_text = dashboard.export_svg(tmp_path / "dash.svg").read_text()
    ET.fromstring(svg_text)
    for text in ("Reward", "Clip fraction", "run B", "true (hidden)", "custom/thing"):
        assert text in svg_text

    rows = _csv_rows(dashboard.export_csv(tmp_path / "dash.csv"))
    expected = sum(len(run.get(n)) for run in two_runs for n in run.names())
    assert len(rows) == expected


# ----- readability at the dashboard's size on a 1366x768 screen ---------------------------
PANEL_W, PANEL_H = 230, 220  # one of the 4x2 panels at 1366x768 with the side docks open


def shown_panel(qtbot, plot: MetricPlot) -> MetricPlot:
    qtbot.addWidget(plot)
    plot.resize(PANEL_W, PANEL_H)
    plot.show()
    qtbot.waitExposed(plot)
    return plot


def settle() -> None:
    # pyqtgraph lays out on posted events: an axis shown again takes its room only then.
    for _ in range(3):
        QApplication.processEvents()


def y_range(plot: MetricPlot) -> tuple[float, float]:
    view = plot.plot_item.getViewBox()
    view.updateAutoRange()  # pyqtgraph would do it lazily, at the next paint
    lo, hi = view.viewRange()[1]
    return lo, hi


def steps(run: RunSeries, n: int, **metrics) -> None:
    """Append n steps; each metric is a constant or a function of the step."""
    start = run.n_steps
    for s in range(start, start + n):
        run.append({"step": s, "time_s": s * 0.1,
                    **{k: v(s) if callable(v) else v for k, v in metrics.items()}})


def test_a_constant_gets_a_readable_y_range(qtbot):
    beta = shown_panel(qtbot, MetricPlot("β", ["kl/beta"]))
    run = RunSeries()
    steps(run, 20, **{"kl/beta": 0.04})
    beta.set_runs([("a", run, None)])
    lo, hi = y_range(beta)
    # Around the value, at least ±5% of it and not the previous view's unit span.
    assert lo < 0.04 < hi and 0.004 <= hi - lo <= 0.02
    # Float noise of 1e-13 is still a constant: no ticks like 0.040015.
    noisy = shown_panel(qtbot, MetricPlot("β", ["kl/beta"]))
    run = RunSeries()
    steps(run, 20, **{"kl/beta": lambda s: 0.04 + 1e-13 * (s % 3)})
    noisy.set_runs([("a", run, None)])
    lo, hi = y_range(noisy)
    assert lo < 0.04 < hi and 0.004 <= hi - lo <= 0.02
    # A real spread keeps pyqtgraph's range: data plus a little padding.
    steps(run, 20, **{"kl/beta": lambda s: 0.02 + 0.001 * s})
    noisy.refresh()
    lo, hi = y_range(noisy)
    assert 0.035 < lo < 0.04 and 0.059 < hi < 0.062


def test_bounded_panels_stay_inside_their_bounds(qtbot):
    board = Dashboard()
    qtbot.addWidget(board)
    board.resize(4 * PANEL_W, 2 * PANEL_H + 60)
    run = RunSeries()
    steps(run, 50, **{"policy/clip_frac": lambda s: 0.3 * (s % 7) / 6, "policy/entropy": 0.0})
    board.set_runs([("a", run, None)])
    board.show()
    qtbot.waitExposed(board)
    clip = board.panel("clip_frac")
    lo, hi = y_range(clip)
    assert lo >= 0 and 0.3 < hi <= 1  # the data [0, 0.3] fills the view; no -0.4 for a share
    # A share that is constantly 0 (one update per batch) is padded upward only.
    assert y_range(board.panel("entropy"))[0] >= 0
    zero = RunSeries()
    steps(zero, 10, **{"policy/clip_frac": 0.0})
    board.set_runs([("a", zero, None)])
    lo, hi = y_range(clip)
    assert lo >= 0 and hi <= 1 and hi - lo > 0.1
    # In log mode the same bounds are decades: nothing above a share of 1.
    board.set_runs([("a", run, None)])
    board.set_log_y(True)
    assert y_range(clip)[1] <= 0
    assert [s.y_bounds for s in MAIN_PANELS if s.key == "clip_frac"] == [(0, 1)]


def test_empty_state_until_the_first_step_and_after_a_clear(qtbot):
    board = Dashboard()
    qtbot.addWidget(board)
    board.resize(4 * PANEL_W, 2 * PANEL_H + 60)
    board.show()
    qtbot.waitExposed(board)
    run = RunSeries()
    board.set_runs([("live", run, None)])
    board.set_kl_target(3.0)

    def assert_empty(panel: MetricPlot, text: str = EMPTY_TEXT) -> None:
        assert panel.empty_text() == text
        assert not panel.legend.isVisible() and panel.legend.items == []
        # No 0.1-0.9 scale on an empty grid, and no stray target line either.
        for axis in ("left", "bottom"):
            assert not panel.plot_item.getAxis(axis).isVisible()
        assert all(not i.isVisible() for i in panel.plot_item.items
                   if isinstance(i, pg.InfiniteLine))

    for key in board.panels:
        assert_empty(board.panels[key])
    steps(run, 3, **{"reward/mean": lambda s: 0.1 * s, "reward/true_mean": 0.2, "kl/mean": 1.0})
    board.refresh()
    reward = board.panel("reward")
    assert reward.empty_text() is None and reward.legend.isVisible()
    assert reward.legend.texts() == ["optimised", "true (hidden)"]
    assert reward.plot_item.getAxis("left").isVisible()
    assert board.panel("kl").empty_text() is None
    assert_empty(board.panel("length"), NOT_REPORTED_TEXT)  # this run has steps, not lengths
    # A new run clears every panel back to the empty state.
    board.set_runs([("next", RunSeries(), None)])
    for key in board.panels:
        assert_empty(board.panels[key])


def test_titles_fit_a_small_panel(qtbot):
    long = "KL to the reference policy, summed over tokens"
    plot = shown_panel(qtbot, MetricPlot(long, ["kl/mean"], y_label="KL", units="nats",
                                         subtitle="a note under it"))
    title = plot.plot_item.titleLabel
    settle()
    viewport = plot.plot_widget.viewport().width()
    # The whole text, wrapped within the panel rather than cut off at its right edge.
    assert long in title.item.toPlainText() and "…" not in title.item.toPlainText()
    rect = title.item.mapRectToScene(title.item.boundingRect())
    assert rect.left() >= 0 and rect.right() <= viewport
    assert plot.plot_item.geometry().width() <= viewport
    short = shown_panel(qtbot, MetricPlot("KL", ["kl/mean"]))
    settle()
    assert title.height() > 1.5 * short.plot_item.titleLabel.height()  # wrapped onto lines

    # The dashboard's own titles, at the size of a 1366x768 screen's panels.
    board = Dashboard()
    qtbot.addWidget(board)
    board.resize(4 * PANEL_W + 30, 2 * PANEL_H + 60)
    board.show()
    qtbot.waitExposed(board)
    settle()
    for spec in MAIN_PANELS:
        panel = board.panel(spec.key)
        assert panel.width() <= PANEL_W + 10
        label = panel.plot_item.titleLabel.item
        rect = label.mapRectToScene(label.boundingRect())
        assert rect.left() >= 0 and rect.right() <= panel.plot_widget.viewport().width()


def test_legend_sits_outside_the_data_and_fits_the_width(qtbot):
    plot = shown_panel(qtbot, MetricPlot("Reward", ["reward/mean", "reward/true_mean"]))
    runs = []
    for label in ("grpo (live)", "reinforce 3f2a1c"):
        run = RunSeries()
        steps(run, 30, **{"reward/mean": lambda s: 0.02 * s, "reward/true_mean": 0.3})
        runs.append((label, run, None))
    plot.set_runs(runs)
    legend = plot.legend
    settle()
    assert legend.isVisible()
    assert legend.texts() == ["grpo (live)", "reinforce 3f2a1c", "optimised",
                              "true (hidden)"]
    view = plot.plot_item.getViewBox()
    legend_rect = legend.mapRectToScene(legend.boundingRect())
    assert not legend_rect.intersects(view.mapRectToScene(view.boundingRect()))
    assert legend_rect.left() >= 0 and legend_rect.right() <= plot.plot_widget.viewport().width()
    assert legend.n_rows <= 2  # runs and metrics, not a row per pair
    # A click on a run's entry hides that run's lines, as pyqtgraph's legend did.
    entry = legend.entries[0]
    assert all(c.isVisible() for c in entry.curves)
    for curve in entry.curves:
        curve.setVisible(False)
    assert not entry.shown


def test_round_markers_labels_stay_inside_a_narrow_panel(qtbot):
    # The DPO tab's panels are ~150 px wide at 1366 px: "round +8 · win 56%" at step 30 of 90
    # was cut at the panel's left edge. A label that does not fit says less, never past the edge.
    plot = shown_panel(qtbot, MetricPlot("Accuracy", ["dpo/accuracy"]))
    plot.resize(150, PANEL_H)
    run = RunSeries()
    for stop in (30, 60, 90):
        steps(run, stop - run.n_steps, **{"dpo/accuracy": lambda s: 0.5 + s / 200})
        if stop < 90:
            run.add_event(f"round +8 · win {stop + 26}%")
    plot.set_runs([("live", run, None)])
    plot.refresh()
    settle()   # the auto-range lands after the refresh: the labels are placed again then
    view = plot.plot_item.getViewBox()
    box = view.mapRectToScene(view.boundingRect())
    markers = [i for i in plot.plot_item.items if isinstance(i, pg.InfiniteLine) and i.label]
    assert len(markers) == 2
    for line in markers:
        label = line.label
        assert line.toolTip().startswith("round +8 · win")   # the whole text, on hover
        if label.isVisible():   # a label with no room is hidden, not an empty box
            assert label.toPlainText()
            rect = label.mapRectToScene(label.boundingRect())
            assert box.left() - 1 <= rect.left() and rect.right() <= box.right() + 1, \
                (label.toPlainText(), rect, box)
    # at 150 px a round still says its win rate
    assert {line.label.toPlainText() for line in markers if line.label.isVisible()} \
        & {"win 56%", "win 86%"}
    # on a wide panel the whole label fits
    plot.resize(600, PANEL_H)
    settle()
    assert all(line.label.isVisible() for line in markers)
    assert {line.label.toPlainText() for line in markers} == {"round +8 · win 56%",
                                                              "round +8 · win 86%"}
    # and in a panel too small for even "win 56%", the markers stand alone
    plot.resize(90, PANEL_H)
    settle()
    assert not any(line.label.isVisible() for line in markers)


def test_the_empty_note_wraps_inside_a_narrow_panel(qtbot):
    # "waiting for the first step…" on one line was cut at both edges of a 150-px panel
    plot = shown_panel(qtbot, MetricPlot("Reward", ["reward/mean"]))
    plot.resize(150, PANEL_H)
    settle()
    note = plot._empty.item
    assert plot.empty_text() == EMPTY_TEXT
    view = plot.plot_item.getViewBox()
    box = view.mapRectToScene(view.boundingRect())
    rect = note.mapRectToScene(note.boundingRect())
    assert box.left() - 1 <= rect.left() and rect.right() <= box.right() + 1, (rect, box)
