"""The Math panel: the lecture's pictures, interactive, with the current run marked on them.

Five small plots, each with its formula and its own knobs: rank -> reward, Bradley-Terry,
Plackett-Luce (plus the probabilities of all six orders), PPO's clipped objective and the
adaptive-beta band. The curves come from explorer/panels/math_curves.py, which evaluates core's
own formulas.
`set_run_values` only moves marks on existing items: it is called on every training step.
"""

from __future__ import annotations

import math
from collections.abc import Mapping

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import QEvent
from PySide6.QtWidgets import (
    QDoubleSpinBox,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QScrollArea,
    QVBoxLayout,
    QWidget,
)

from core.rewards import SCHEMES
from explorer.panels import math_curves as mc
from explorer.panels.math_items import FloatSlider, PictureKit
from explorer.plots import style
from explorer.plots.style import Theme

RANK_NAMES = {"fixed": "fixed ±1", "normalized": "(K−a)/(K−1)", "log": "−ln a", "exp": "e^(−λa)"}
HIGHLIGHT_WIDTH = 3.6
BETA_X_MAX = 3.0
DEFAULT_KL_TARGET = 8.0  # RunConfig's default, so the nats axis starts where a run does


def _number(values: Mapping, key: str) -> float | None:
    value = values.get(key)
    try:
        value = float(value)
    except (TypeError, ValueError):
        return None
    return value if math.isfinite(value) else None


class MathPanel(QWidget):
    """The lecture's formulas as live pictures; `set_run_values` marks where a run sits."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setObjectName("mathPanel")
        self._kit = PictureKit(self)
        self._run_rank: tuple[str | None, float | None] = (None, None)
        self._marks: dict[str, tuple] = {}
        self.plots: dict[str, pg.PlotWidget] = {}
        grid_page = QWidget()
        grid = QGridLayout(grid_page)
        grid.setContentsMargins(6, 6, 6, 6)
        grid.setSpacing(8)
        # PL's order chart sits under PL itself, so the two read as one picture.
        cells = (self._build_rank(), self._build_bradley_terry(), self._build_plackett_luce(),
                 self._build_ppo(), self._build_beta(), self._build_orders())
        for i, cell in enumerate(cells):
            grid.addWidget(cell, i // 3, i % 3)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QScrollArea.Shape.NoFrame)
        scroll.setWidget(grid_page)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(scroll)
        self._apply_theme()
        for redraw in (self._draw_rank, self._draw_bradley_terry, self._draw_plackett_luce,
                       self._draw_ppo, self._draw_beta):
            redraw()

    # ----- cells ---------------------------------------------------------------------------
    def _cell(self, key: str, title: str, caption: str, x_label: str, y_label: str,
              knobs: tuple[QWidget, ...] = (), tooltip: str = "",
              ) -> tuple[QWidget, pg.PlotItem, QLabel]:
        cell, widget, run_label = self._kit.cell(key, title, caption, x_label, y_label, knobs,
                                                 tooltip)
        self.plots[key] = widget
        return cell, widget.getPlotItem(), run_label

    def _build_rank(self) -> QWidget:
        self.rank_k = FloatSlider("K", "mathRankKSlider", 2, 8, 1, 4, "{:.0f}")
        self.rank_lam = FloatSlider("λ", "mathRankLamSlider", 0.1, 5.0, 0.1, 1.0, "{:.1f}")
        cell, plot, self.rank_run_label = self._cell(
            "Rank", "Rank → reward", "", "rank a (1 = best)", "reward",
            (self.rank_k, self.rank_lam),
            "Reward of rank a among K ranked samples (1 = best), as core.rewards assigns it: "
            "fixed gives the best +1, the worst −1 and the rest 0. The run's scheme is thick.")
        # The caption doubles as the legend: inside the plot, any K has a curve under it.
        caption = cell.findChild(QLabel, "mathRankCaption")
        self._kit.stylers.append(lambda theme: caption.setText("&nbsp;&nbsp;".join(
            f"<span style='color:{style.run_color(i, theme.dark).name()}'>●</span> "
            f"{RANK_NAMES[s]}" for i, s in enumerate(SCHEMES))))
        self.rank_curves = {s: self._kit.curve(plot, i, RANK_NAMES[s], symbol="o")
                            for i, s in enumerate(SCHEMES)}
        # After the curves' own stylers, so a palette change keeps the run's curve thick.
        self._kit.stylers.append(lambda _theme: self._apply_rank_widths())
        # The run's own λ, dotted in exp's colour: the slider's λ is only the lecture's.
        self.rank_run_exp = self._kit.curve(plot, SCHEMES.index("exp"), dash=2, symbol="t")
        self.rank_run_exp.hide()
        self.rank_k.valueChanged.connect(self._draw_rank)
        self.rank_lam.valueChanged.connect(self._draw_rank)
        return cell

    def _build_bradley_terry(self) -> QWidget:
        self.bt_scale = FloatSlider("s", "mathBtScaleSlider", 0.1, 3.0, 0.1, 1.0, "{:.1f}")
        self.bt_delta = FloatSlider("Δ", "mathBtDeltaSlider", -6.0, 6.0, 0.1, 1.0, "{:.1f}")
        cell, plot, _ = self._cell(
            "BradleyTerry", "Bradley-Terry", "P(i ≻ j) = σ(s·Δ) = 1 / (1 + e^(−s·Δ))",
            "Δ = r_i − r_j", "P(i ≻ j)", (self.bt_scale, self.bt_delta),
            "Probability that i is preferred to j given their rewards; s scales the rewards "
            "(a larger s = a more decided annotator).")
        plot.setRange(xRange=(-6, 6), yRange=(-0.02, 1.02), padding=0)
        self.bt_curve = self._kit.curve(plot, 0)
        self.bt_line = self._kit.vline(plot, dash=False)
        self.bt_dot = self._kit.dot(plot)
        self.bt_text = pg.TextItem(anchor=(1.05, -0.1))
        plot.addItem(self.bt_text, ignoreBounds=True)
        self._kit.stylers.append(lambda theme: self.bt_text.setColor(theme.text))
        self.bt_scale.valueChanged.connect(self._draw_bradley_terry)
        self.bt_delta.valueChanged.connect(self._draw_bradley_terry)
        return cell

    def _build_plackett_luce(self) -> QWidget:
        self.pl_r = [FloatSlider(f"r{i + 1}", f"mathPlR{i + 1}Slider", -4.0, 4.0, 0.1, v, "{:.1f}")
                     for i, v in enumerate((0.5, 0.0, -0.5))]
        cell, plot, _ = self._cell(
            "PlackettLuce", "Plackett-Luce: P(1≻2≻3)",
            "P = e^r1/(e^r1+e^r2+e^r3) · e^r2/(e^r2+e^r3)", "r1 (swept)",
            "P(1≻2≻3)", tuple(self.pl_r),
            "Plackett-Luce: pick the best of all, then the best of the rest. The curve sweeps "
            "r1 at the r2, r3 set below; the dot sits at the r1 slider.")
        plot.setRange(xRange=(-4, 4), yRange=(-0.02, 1.02), padding=0)
        self.pl_curve = self._kit.curve(plot, 0)
        self.pl_line = self._kit.vline(plot, dash=False)
        self.pl_dot = self._kit.dot(plot)
        for slider in self.pl_r:
            slider.valueChanged.connect(self._draw_plackett_luce)
        return cell

    def _build_orders(self) -> QWidget:
        cell, plot, _ = self._cell("PlackettLuceOrders", "Plackett-Luce: every order",
                                   "P of each order at r1, r2, r3 above; sums to 1",
                                   "order", "P")
        plot.setRange(xRange=(-0.6, 5.6), yRange=(0, 1.08), padding=0)
        plot.showGrid(x=False, y=True, alpha=0.15)
        plot.getAxis("bottom").setTicks(
            [[(i, mc.order_label(o)) for i, o in enumerate(mc.ORDERS_OF_3)]])
        self.pl_bars = pg.BarGraphItem(x=np.arange(6), height=np.zeros(6), width=0.7)
        plot.addItem(self.pl_bars)
        self.pl_bar_texts = [pg.TextItem(anchor=(0.5, 1.0)) for _ in mc.ORDERS_OF_3]
        for text in self.pl_bar_texts:
            plot.addItem(text, ignoreBounds=True)

        def restyle(theme: Theme) -> None:
            # 1≻2≻3, the order the left plot follows, in the curve's colour; the rest muted.
            first = style.run_color(0, theme.dark)
            self.pl_bars.setOpts(brushes=[first] + [style.with_alpha(theme.muted, 150)] * 5,
                                 pens=[pg.mkPen(None)] * 6)
            for text in self.pl_bar_texts:
                text.setColor(theme.text)
                text.setFont(style.scaled_font(self, 0.75))

        self._kit.stylers.append(restyle)
        return cell

    def _build_ppo(self) -> QWidget:
        self.ppo_eps = FloatSlider("ε", "mathPpoEpsSlider", 0.05, 0.5, 0.01, 0.2)
        cell, plot, self.ppo_run_label = self._cell(
            "PpoClip", "PPO clipped objective",
            "L = min(ρA, clip(ρ, 1−ε, 1+ε)A);  shaded 1 ± ε", "ratio ρ = π/π_old",
            "L(ρ)", (self.ppo_eps,),
            "PPO's clipped surrogate per token. Where L is flat the gradient is zero: the ratio "
            "moved past 1 ± ε the way the advantage wanted. Faint: the unclipped ρ·A. Dashed "
            "lines: the run's clip range (1 + ε_high when clipping is asymmetric).")
        plot.setRange(xRange=(0, 2), yRange=(-2.05, 1.6), padding=0)
        self._kit.legend(plot, (6, -6))  # under A = −1's flat part
        self.ppo_region = self._kit.region(plot, (0.8, 1.2))
        faint = {"width": 1, "alpha": style.GHOST_ALPHA * 2, "dash": 1}
        self.ppo_unclipped = {a: self._kit.curve(plot, i, **faint) for i, a in enumerate((1, -1))}
        self.ppo_curves = {a: self._kit.curve(plot, i, f"A = {a:+d}", dash=0)
                           for i, a in enumerate((1, -1))}
        self.ppo_run_low = self._kit.vline(plot, "run 1−ε", 0.95)
        self.ppo_run_high = self._kit.vline(plot, "run 1+ε", 0.95)
        for line in (self.ppo_run_low, self.ppo_run_high):
            line.hide()
        self.ppo_eps.valueChanged.connect(self._draw_ppo)
        return cell

    def _build_beta(self) -> QWidget:
        self.beta_target = QDoubleSpinBox()
        self.beta_target.setObjectName("mathBetaTargetSpin")
        self.beta_target.setRange(0.01, 100.0)
        self.beta_target.setDecimals(2)
        self.beta_target.setSingleStep(0.5)
        self.beta_target.setValue(DEFAULT_KL_TARGET)
        self.beta_target.setSuffix(" nats")
        target_row = QWidget()
        row = QHBoxLayout(target_row)
        row.setContentsMargins(0, 0, 0, 0)
        row.addWidget(QLabel("KL target"))
        row.addWidget(self.beta_target, 1)
        f, s = mc.KL_FACTOR, mc.KL_SCALE
        cell, plot, self.beta_run_label = self._cell(
            "BetaBand", "Adaptive β: the band",
            f"x < 1/{f:g}: β/{s:g},  x > {f:g}: β·{s:g},  else kept", "x = observed KL / target",
            "β multiplier", (target_row,),
            "core.kl.AdaptiveKLController after each update (every kl_interval steps, on their "
            "mean KL); the run's β is then kept within [β_min, β_max]. The top axis reads x in "
            "nats at the chosen target.")
        plot.setRange(xRange=(0, BETA_X_MAX), yRange=(0, s * 1.15), padding=0)
        plot.getAxis("left").setTicks([[(1 / s, f"×{1 / s:g}"), (1.0, "×1"), (s, f"×{s:g}")]])
        # The top axis reads the same x in nats at the chosen target: the rule itself is
        # scale-free, the target only says where in nats the band falls.
        plot.showAxis("top")
        plot.getAxis("top").enableAutoSIPrefix(False)
        plot.getAxis("top").setStyle(maxTickLevel=1)
        self._kit.region(plot, (1 / f, f))
        x = np.linspace(0.0, BETA_X_MAX, 1201)
        self.beta_curve = self._kit.curve(plot, 0)
        self.beta_curve.setData(x, mc.adaptive_beta_multiplier(x))
        self.beta_line = self._kit.vline(plot, "run", 0.95)
        self.beta_dot = self._kit.dot(plot)
        for item in (self.beta_line, self.beta_dot):
            item.hide()
        self.beta_target.valueChanged.connect(self._draw_beta)
        return cell

    # ----- drawing from the knobs ----------------------------------------------------------
    def _draw_rank(self, *_: object) -> None:
        k, lam = int(self.rank_k.value), self.rank_lam.value
        a = np.arange(1, k + 1)
        for scheme, curve in self.rank_curves.items():
            curve.setData(a, mc.rank_rewards(k, scheme, lam))
        run_scheme, run_lam = self._run_rank
        # The run's λ only shapes its rewards under the exp scheme (or when no scheme was said).
        show_lam = run_lam is not None and run_lam > 0 and run_scheme in (None, "exp")
        if show_lam:
            self.rank_run_exp.setData(a, mc.rank_rewards(k, "exp", run_lam))
        self.rank_run_exp.setVisible(show_lam)
        plot = self.plots["Rank"].getPlotItem()
        plot.getAxis("bottom").setTicks([[(i, str(i)) for i in a]])
        # y fixed to fit −ln 8, so changing K moves the points, not the axes under them.
        plot.setRange(xRange=(0.7, k + 0.3), yRange=(-2.25, 1.15), padding=0)

    def _draw_bradley_terry(self, *_: object) -> None:
        x = np.linspace(-6.0, 6.0, 481)
        s, delta = self.bt_scale.value, self.bt_delta.value
        self.bt_curve.setData(x, mc.bradley_terry(x, s))
        p = float(mc.bradley_terry(delta, s))
        self.bt_dot.setData([delta], [p])
        self.bt_line.setPos(delta)
        self.bt_text.setText(f"P = {p:.3f}")
        # Print on the side of the dot that has room: left of it on the right half, and back.
        self.bt_text.setAnchor((1.05, -0.1) if delta >= 0 else (-0.05, 1.1))
        self.bt_text.setPos(delta, p)

    def _draw_plackett_luce(self, *_: object) -> None:
        r1, r2, r3 = (slider.value for slider in self.pl_r)
        sweep = np.linspace(-4.0, 4.0, 321)
        scores = np.stack([sweep, np.full_like(sweep, r2), np.full_like(sweep, r3)], axis=-1)
        self.pl_curve.setData(sweep, mc.plackett_luce_prob(scores))
        probs = mc.order_probs([r1, r2, r3])
        self.pl_dot.setData([r1], [probs[0]])
        self.pl_line.setPos(r1)
        self.pl_bars.setOpts(height=probs)
        for i, (text, p) in enumerate(zip(self.pl_bar_texts, probs, strict=True)):
            text.setText(f"{p:.2f}")
            text.setPos(i, p)

    def _draw_ppo(self, *_: object) -> None:
        eps = self.ppo_eps.value
        rho = np.linspace(0.0, 2.0, 401)
        for a in (1, -1):
            self.ppo_curves[a].setData(rho, mc.ppo_clipped_objective(rho, a, eps))
            self.ppo_unclipped[a].setData(rho, rho * a)
        self.ppo_region.setRegion((1.0 - eps, 1.0 + eps))

    def _draw_beta(self, *_: object) -> None:
        target = self.beta_target.value()
        top = self.plots["BetaBand"].getPlotItem().getAxis("top")
        top.setScale(target)
        top.setLabel(f"KL (nats) at target {target:g}", color=style.theme_of(self).text.name(),
                     **{"font-size": "8pt"})

    # ----- the run's marks -----------------------------------------------------------------
    def set_run_values(self, values: Mapping) -> None:
        """Mark the run on the pictures; a key that is missing (or not a number) hides its mark.

        Keys: rank_scheme, rank_lam, clip_eps, clip_eps_high (<= 0 means "same as clip_eps",
        as in RunConfig), kl/mean, kl/target (or kl_target), kl/beta.
        """
        scheme = values.get("rank_scheme")
        rank = (scheme if scheme in SCHEMES else None, _number(values, "rank_lam"))
        high = _number(values, "clip_eps_high")
        ppo = (_number(values, "clip_eps"), high if high is not None and high > 0 else None)
        target = _number(values, "kl/target")
        target = _number(values, "kl_target") if target is None else target
        beta = (_number(values, "kl/mean"), target, _number(values, "kl/beta"))
        # Every training step calls this: redraw only the pictures whose marks moved.
        for key, marks, draw in (("rank", rank, self._mark_rank), ("ppo", ppo, self._mark_ppo),
                                 ("beta", beta, self._mark_beta)):
            if self._marks.get(key) != marks:
                self._marks[key] = marks
                draw(*marks)

    def _mark_rank(self, scheme: str | None, lam: float | None) -> None:
        self._run_rank = (scheme, lam)
        self._apply_rank_widths()
        self._draw_rank()
        parts = ([f"run: {RANK_NAMES[scheme]}"] if scheme else []) + (
            [f"run λ = {lam:g} (dotted)"] if self.rank_run_exp.isVisible() else [])
        self._set_run_label(self.rank_run_label, " · ".join(parts))

    def _mark_ppo(self, eps: float | None, eps_high: float | None) -> None:
        shown = eps is not None and eps > 0
        high = eps_high if eps_high is not None else eps
        for line in (self.ppo_run_low, self.ppo_run_high):
            line.setVisible(shown)
        text = ""
        if shown:
            self.ppo_run_low.setPos(1.0 - eps)
            self.ppo_run_high.setPos(1.0 + high)
            text = f"run: clip to [{1 - eps:.3g}, {1 + high:.3g}]"
            asymmetric = eps_high is not None and eps_high != eps
            self.ppo_run_high.label.setFormat("run 1+ε_high" if asymmetric else "run 1+ε")
            if asymmetric:
                text += f" (ε = {eps:g}, ε_high = {eps_high:g})"
        self._set_run_label(self.ppo_run_label, text)

    def _mark_beta(self, kl: float | None, target: float | None, beta: float | None) -> None:
        shown = kl is not None and target is not None and target > 0
        for item in (self.beta_line, self.beta_dot):
            item.setVisible(shown)
        parts = []
        if shown:
            x = kl / target
            multiplier = float(mc.adaptive_beta_multiplier(kl, target))
            # Off the right edge the mark waits at the edge; the label gives the true value.
            drawn = min(x, BETA_X_MAX)
            self.beta_line.setPos(drawn)
            self.beta_dot.setData([drawn], [multiplier])
            parts.append(f"run: KL {kl:.3g} / {target:g} = {x:.2f}")
            if beta is not None:
                parts.append(f"β {beta:.3g} → {beta * multiplier:.3g}")
        elif beta is not None:
            parts.append(f"run: β {beta:.3g}")
        self._set_run_label(self.beta_run_label, " · ".join(parts))

    def _apply_rank_widths(self) -> None:
        for name, curve in self.rank_curves.items():
            pen = pg.mkPen(curve.opts["pen"])
            pen.setWidthF(HIGHLIGHT_WIDTH if name == self._run_rank[0] else style.LINE_WIDTH)
            curve.setPen(pen)

    @staticmethod
    def _set_run_label(label: QLabel, text: str) -> None:
        if label.text() != text:
            label.setText(text)
        label.setVisible(bool(text))

    # ----- look ----------------------------------------------------------------------------
    def _apply_theme(self) -> None:
        self._kit.apply_theme()
        if hasattr(self, "beta_target"):
            self._draw_beta()

    def changeEvent(self, event: QEvent) -> None:  # noqa: N802 (Qt override)
        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)
