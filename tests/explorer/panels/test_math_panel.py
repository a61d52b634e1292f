"""The Math panel: its curves by hand numbers and against core, its knobs, the run's marks."""

import math

import numpy as np
import pyqtgraph as pg
import pytest
import torch
from PySide6.QtGui import QColor, QPalette
from PySide6.QtWidgets import QDoubleSpinBox, QScrollArea, QSlider

from core.algorithms.ppo import clipped_surrogate_terms
from core.kl import AdaptiveKLController
from core.preference import bradley_terry_prob, plackett_luce_nll
from explorer.panels import math_curves as mc
from explorer.panels.math_panel import HIGHLIGHT_WIDTH, MathPanel
from explorer.plots import style

PLOTS = ("mathRankPlot", "mathBradleyTerryPlot", "mathPlackettLucePlot", "mathPpoClipPlot",
         "mathBetaBandPlot", "mathPlackettLuceOrdersPlot")
SLIDERS = ("mathRankKSlider", "mathRankLamSlider", "mathBtScaleSlider", "mathBtDeltaSlider",
           "mathPlR1Slider", "mathPlR2Slider", "mathPlR3Slider", "mathPpoEpsSlider")
RUN = {"rank_scheme": "exp", "rank_lam": 0.5, "clip_eps": 0.2, "clip_eps_high": 0.28,
       "kl/mean": 12.0, "kl/target": 4.0, "kl/beta": 0.1}


# ----- the pure curves ------------------------------------------------------------------------
def test_ppo_clipped_objective_hand_numbers():
    # A > 0: the gain stops at 1 + eps; A < 0: the loss stops at 1 - eps, on the other side.
    assert mc.ppo_clipped_objective(1.5, +1, 0.2) == pytest.approx(1.2)
    assert mc.ppo_clipped_objective(0.5, -1, 0.2) == pytest.approx(-0.8)
    # ... and the pessimistic min leaves the harmful side unclipped.
    assert mc.ppo_clipped_objective(0.5, +1, 0.2) == pytest.approx(0.5)
    assert mc.ppo_clipped_objective(1.5, -1, 0.2) == pytest.approx(-1.5)
    # Asymmetric clipping moves only the upper bound.
    assert mc.ppo_clipped_objective(1.5, +1, 0.2, 0.28) == pytest.approx(1.28)
    assert mc.ppo_clipped_objective(0.5, -1, 0.2, 0.28) == pytest.approx(-0.8)


@pytest.mark.parametrize("eps_high", [None, 0.28])
def test_ppo_curve_is_the_training_objective(eps_high):
    rho = np.linspace(0, 2, 41)
    for a in (1.0, -1.0, 0.3):
        adv = torch.full((41,), a, dtype=torch.float64)
        core, _ = clipped_surrogate_terms(torch.tensor(rho), adv, 0.2, eps_high)
        np.testing.assert_allclose(mc.ppo_clipped_objective(rho, a, 0.2, eps_high), core.numpy(),
                                   rtol=1e-12)


def test_bradley_terry_hand_numbers_and_core():
    assert mc.bradley_terry(0.0) == 0.5
    assert mc.bradley_terry(math.log(3)) == pytest.approx(0.75)  # 3 / (3 + 1)
    assert mc.bradley_terry(-math.log(3)) == pytest.approx(0.25)
    assert mc.bradley_terry(math.log(3) / 2, scale=2.0) == pytest.approx(0.75)
    delta = np.linspace(-6, 6, 25)
    core = bradley_terry_prob(torch.tensor(delta), torch.zeros(25)).numpy()
    np.testing.assert_allclose(mc.bradley_terry(delta), core, rtol=1e-12)
    assert np.all(np.isfinite(mc.bradley_terry([-1e4, 1e4])))


def test_plackett_luce_hand_numbers():
    # exp scores (2, 1, 1): P(1≻2≻3) = 2/4 · 1/2; P(2≻1≻3) = 1/4 · 2/3; P(2≻3≻1) = 1/4 · 1/3.
    s = [math.log(2), 0.0, 0.0]
    assert mc.plackett_luce_prob(s) == pytest.approx(1 / 4)
    assert mc.plackett_luce_prob(s, (1, 0, 2)) == pytest.approx(1 / 6)
    assert mc.plackett_luce_prob(s, (1, 2, 0)) == pytest.approx(1 / 12)
    np.testing.assert_allclose(mc.order_probs(s), [1 / 4, 1 / 4, 1 / 6, 1 / 12, 1 / 6, 1 / 12])
    np.testing.assert_allclose(mc.order_probs([0.0, 0.0, 0.0]), np.full(6, 1 / 6))
    assert [mc.order_label(o) for o in mc.ORDERS_OF_3[:2]] == ["1≻2≻3", "1≻3≻2"]


def test_plackett_luce_matches_core_nll_and_sums_to_one():
    rng = np.random.default_rng(0)
    for scores in rng.normal(0, 2, size=(5, 3)):
        probs = mc.order_probs(scores)
        assert probs.sum() == pytest.approx(1.0)
        for order, p in zip(mc.ORDERS_OF_3, probs, strict=True):
            nll = plackett_luce_nll(torch.tensor(scores[list(order)]))
            assert p == pytest.approx(math.exp(-float(nll)), rel=1e-9)
    # A batch of rankings at once (the swept curve), without overflow at large scores: item 1
    # is surely first, then 2 and 3 tie.
    batch = np.array([[1.0, 0.5, -0.5], [800.0, 0.0, 0.0]])
    np.testing.assert_allclose(mc.plackett_luce_prob(batch),
                               [mc.plackett_luce_prob(batch[0]), 0.5])


def test_rank_rewards_hand_numbers():
    np.testing.assert_allclose(mc.rank_rewards(4, "normalized"), [1, 2 / 3, 1 / 3, 0], rtol=1e-6)
    np.testing.assert_array_equal(mc.rank_rewards(4, "fixed"), [1, 0, 0, -1])
    np.testing.assert_allclose(mc.rank_rewards(3, "log"), [0, -math.log(2), -math.log(3)],
                               rtol=1e-6)
    np.testing.assert_allclose(mc.rank_rewards(2, "exp", 0.5), [math.exp(-0.5), math.exp(-1)],
                               rtol=1e-6)


def test_beta_multiplier_is_what_the_controller_does():
    assert (mc.KL_FACTOR, mc.KL_SCALE) == (1.5, 2.0)  # the lecture's band, as the trainer uses it
    np.testing.assert_array_equal(mc.adaptive_beta_multiplier([0.5, 0.7, 1.0, 1.4, 2.0]),
                                  [0.5, 1, 1, 1, 2])
    for target in (0.3, 2.0, 8.0):
        # Both band edges exactly, where a <= for < slip would show, and points around them.
        for kl in (target / 1.5, target * 1.5, 0.0, target * 0.66, target * 0.67, target,
                   target * 1.49, target * 1.51, target * 5):
            controller = AdaptiveKLController(1.0, target)
            expected = controller.update(kl)
            assert mc.adaptive_beta_multiplier(kl, target) == expected, (kl, target)


# ----- the panel ------------------------------------------------------------------------------
@pytest.fixture
def panel(qtbot):
    widget = MathPanel()
    qtbot.addWidget(widget)
    return widget


def slider(panel, name) -> QSlider:
    found = panel.findChild(QSlider, name)
    assert found is not None, name
    return found


def data(item: pg.PlotDataItem) -> tuple[np.ndarray, np.ndarray]:
    x, y = item.getData()
    return np.asarray(x), np.asarray(y)


def y_at(item: pg.PlotDataItem, x0: float) -> float:
    x, y = data(item)
    return float(y[np.argmin(np.abs(x - x0))])


def test_every_plot_and_knob_is_named(panel):
    for name in PLOTS:
        assert panel.findChild(pg.PlotWidget, name) is not None, name
    for name in SLIDERS:
        slider(panel, name)
    assert panel.findChild(QDoubleSpinBox, "mathBetaTargetSpin") is not None


def test_fits_a_900_by_600_panel_without_scrolling(panel, qtbot):
    panel.resize(900, 600)
    panel.show()
    qtbot.waitExposed(panel)
    assert not panel.findChild(QScrollArea).verticalScrollBar().isVisible()
    assert all(widget.height() >= 150 for widget in panel.plots.values())


def test_rank_sliders_redraw_the_curves(panel):
    curves = panel.rank_curves
    x, y = data(curves["normalized"])
    np.testing.assert_array_equal(x, [1, 2, 3, 4])
    np.testing.assert_allclose(y, [1, 2 / 3, 1 / 3, 0], rtol=1e-6)
    exp_before = data(curves["exp"])[1]
    panel.rank_lam.set_value(2.0)
    np.testing.assert_allclose(data(curves["exp"])[1], np.exp(-2.0 * np.arange(1, 5)), rtol=1e-6)
    assert not np.allclose(data(curves["exp"])[1], exp_before)
    np.testing.assert_allclose(data(curves["normalized"])[1], y)  # λ is exp's alone
    slider(panel, "mathRankKSlider").setValue(slider(panel, "mathRankKSlider").maximum())
    x, y = data(curves["fixed"])
    np.testing.assert_array_equal(x, np.arange(1, 9))
    np.testing.assert_array_equal(y, [1, 0, 0, 0, 0, 0, 0, -1])


def test_bradley_terry_sliders(panel):
    assert y_at(panel.bt_curve, 0.0) == 0.5
    panel.bt_scale.set_value(2.0)
    assert y_at(panel.bt_curve, 1.0) == pytest.approx(1 / (1 + math.exp(-2)))
    panel.bt_delta.set_value(-1.5)
    x, y = data(panel.bt_dot)
    assert (x[0], y[0]) == pytest.approx((-1.5, 1 / (1 + math.exp(3))))
    assert panel.bt_line.value() == pytest.approx(-1.5)
    assert panel.bt_text.toPlainText() == f"P = {1 / (1 + math.exp(3)):.3f}"


def test_plackett_luce_sliders(panel):
    for s, v in zip(panel.pl_r, (0.0, 0.0, 0.0), strict=True):
        s.set_value(v)
    # r = (0, 0, 0): every order 1/6, so the dot at r1 = 0 sits at 1/6.
    assert data(panel.pl_dot)[1][0] == pytest.approx(1 / 6)
    np.testing.assert_allclose(panel.pl_bars.opts["height"], np.full(6, 1 / 6))
    before = data(panel.pl_curve)[1].copy()
    panel.pl_r[1].set_value(math.log(2))  # slider steps of 0.1: 0.7
    r2 = panel.pl_r[1].value
    x, y = data(panel.pl_curve)
    assert not np.allclose(y, before)
    # r1 = 0 on the swept curve: 1/(1 + e^r2 + 1) · e^r2/(e^r2 + 1)
    expected = 1 / (2 + math.exp(r2)) * math.exp(r2) / (math.exp(r2) + 1)
    assert y_at(panel.pl_curve, 0.0) == pytest.approx(expected)
    heights = panel.pl_bars.opts["height"]
    assert heights.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(heights, mc.order_probs([0.0, r2, 0.0]))
    assert heights[0] == pytest.approx(data(panel.pl_dot)[1][0])


def test_ppo_slider_moves_the_clip(panel):
    assert y_at(panel.ppo_curves[1], 1.5) == pytest.approx(1.2)
    assert y_at(panel.ppo_curves[-1], 0.5) == pytest.approx(-0.8)
    assert y_at(panel.ppo_curves[-1], 1.5) == pytest.approx(-1.5)
    slider(panel, "mathPpoEpsSlider").setValue(slider(panel, "mathPpoEpsSlider").value() + 10)
    assert panel.ppo_eps.value == pytest.approx(0.3)
    assert y_at(panel.ppo_curves[1], 1.5) == pytest.approx(1.3)
    assert y_at(panel.ppo_curves[-1], 0.5) == pytest.approx(-0.7)
    assert panel.ppo_region.getRegion() == pytest.approx((0.7, 1.3))


def test_beta_band_is_the_controller_and_the_target_sets_the_nats_axis(panel):
    x, y = data(panel.beta_curve)
    for xi, yi in zip(x[::37], y[::37], strict=True):
        assert yi == AdaptiveKLController(1.0, 1.0).update(xi)
    top = panel.plots["BetaBand"].getPlotItem().getAxis("top")
    panel.beta_target.setValue(3.0)
    assert top.scale == 3.0
    assert "3" in top.labelText


def test_run_values_place_the_marks(panel):
    assert not panel.ppo_run_low.isVisible() and not panel.beta_dot.isVisible()
    panel.set_run_values(RUN)
    assert panel.ppo_run_low.isVisible() and panel.ppo_run_high.isVisible()
    assert panel.ppo_run_low.value() == pytest.approx(0.8)
    assert panel.ppo_run_high.value() == pytest.approx(1.28)  # 1 + eps_high, not 1 + eps
    # KL 12 against target 4: x = 3, above the band, so beta doubles.
    assert panel.beta_line.value() == pytest.approx(3.0)
    x, y = data(panel.beta_dot)
    assert (x[0], y[0]) == pytest.approx((3.0, 2.0))
    assert "0.1 → 0.2" in panel.beta_run_label.text()
    widths = {s: c.opts["pen"].widthF() for s, c in panel.rank_curves.items()}
    assert widths["exp"] == HIGHLIGHT_WIDTH
    assert all(w == style.LINE_WIDTH for s, w in widths.items() if s != "exp")
    assert panel.rank_run_exp.isVisible()
    np.testing.assert_allclose(data(panel.rank_run_exp)[1], np.exp(-0.5 * np.arange(1, 5)),
                               rtol=1e-6)
    # The run's lambda follows K, the slider's K.
    panel.rank_k.set_value(6)
    assert len(data(panel.rank_run_exp)[1]) == 6


def test_run_values_fallbacks_and_missing_keys(panel):
    # kl_target stands in for kl/target; clip_eps_high 0 means "the same as clip_eps".
    panel.set_run_values({"kl/mean": 1.0, "kl_target": 2.0, "clip_eps": 0.1,
                          "clip_eps_high": 0.0, "rank_scheme": "log", "rank_lam": 2.0})
    assert panel.beta_line.value() == pytest.approx(0.5)
    assert data(panel.beta_dot)[1][0] == pytest.approx(0.5)  # 1 < 2 / 1.5: beta halves
    assert panel.ppo_run_high.value() == pytest.approx(1.1)
    assert panel.rank_curves["log"].opts["pen"].widthF() == HIGHLIGHT_WIDTH
    assert not panel.rank_run_exp.isVisible()  # lambda does nothing to a log-scheme run
    panel.set_run_values({})
    assert not panel.ppo_run_low.isVisible() and not panel.ppo_run_high.isVisible()
    assert not panel.beta_line.isVisible() and not panel.beta_dot.isVisible()
    assert not panel.beta_run_label.isVisible()
    assert all(c.opts["pen"].widthF() == style.LINE_WIDTH for c in panel.rank_curves.values())
    panel.set_run_values({"kl/mean": float("nan"), "kl/target": 4.0, "clip_eps": None})
    assert not panel.beta_dot.isVisible() and not panel.ppo_run_low.isVisible()


def test_run_values_every_step_reuse_the_items(panel):
    counts = {k: len(w.getPlotItem().items) for k, w in panel.plots.items()}
    for step in range(50):
        panel.set_run_values({**RUN, "kl/mean": 4.0 + step * 0.1, "kl/beta": 0.1 + step})
    assert {k: len(w.getPlotItem().items) for k, w in panel.plots.items()} == counts
    assert panel.beta_line.value() == pytest.approx((4.0 + 4.9) / 4.0)


def test_a_dark_palette_restyles_without_losing_the_marks(panel):
    panel.set_run_values({"rank_scheme": "fixed"})
    palette = panel.palette()
    palette.setColor(QPalette.ColorRole.Base, QColor("#202020"))
    palette.setColor(QPalette.ColorRole.Text, QColor("#eeeeee"))
    panel.setPalette(palette)
    widget = panel.plots["Rank"]
    assert widget.backgroundBrush().color().name() == "#202020"
    # Curves take the palette's colours lifted for a dark background.
    assert panel.rank_curves["fixed"].opts["pen"].color().name() == style.run_color(0, True).name()
    assert panel.rank_curves["fixed"].opts["pen"].widthF() == HIGHLIGHT_WIDTH
