"""Train a reward model from the stored rankings, watch it learn, save it by name, use it.

The training runs on the feedback worker; this box shows its live training loss and held-out
accuracies (against the rankings, and against the task's hidden true reward) and lists the saved
models of the task.
"""

from __future__ import annotations

import math
import time

import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QLabel,
    QLineEdit,
    QProgressBar,
    QPushButton,
    QSpinBox,
    QVBoxLayout,
)

from core.config import FIELDS
from core.reward_learning.rankings import SOURCES
from explorer.feedback_worker import TrainRequest
from explorer.plots import style

# how the knob's choices read in the box
LOSS_LABELS = {"bradley_terry": "Bradley-Terry (all pairs)",
               "plackett_luce": "Plackett-Luce (whole rankings)"}

class RewardModelBox(QGroupBox):
    trainRequested = Signal(object)     # TrainRequest
    cancelRequested = Signal()
    useRequested = Signal(str)          # a saved model's name: use it for the next run
    dpoRequested = Signal(tuple)        # the ticked sources: DPO on their rankings next run

    def __init__(self, parent=None):
        super().__init__("Reward model from your rankings", parent)
        self.task = "sentiment"
        self.sources = {s: QCheckBox(s, objectName=f"rmSource_{s}", checked=True)
                        for s in SOURCES}
        self.loss = QComboBox(objectName="rmLoss")
        for loss in FIELDS["rm_loss"].metadata["choices"]:   # the knob's, as `rm train`'s
            self.loss.addItem(LOSS_LABELS.get(loss, loss), loss)
        self.loss.setToolTip(FIELDS["rm_loss"].metadata["help"])
        self.name = QLineEdit(objectName="rmName", placeholderText="name to save it under")
        steps = FIELDS["rm_steps"]
        self.steps = QSpinBox(objectName="rmSteps", minimum=steps.metadata["min"],
                              maximum=steps.metadata["max"], value=steps.default,
                              singleStep=10, suffix=" updates")
        self.steps.setToolTip(steps.metadata["help"])
        self.train_button = QPushButton("Train", objectName="rmTrain")
        self.cancel_button = QPushButton("Stop", objectName="rmCancel", enabled=False)
        self.progress = QProgressBar(objectName="rmProgress", textVisible=True)
        self.result = QLabel(objectName="rmResult", wordWrap=True)
        self.models = QComboBox(objectName="rmModels")
        self.models.setSizeAdjustPolicy(QComboBox.AdjustToMinimumContentsLengthWithIcon)
        self.models.setMinimumContentsLength(16)
        self.use_button = QPushButton("Use for next run", objectName="rmUse")
        self.use_button.setToolTip("Train a reward model, then RL: the next run's reward "
                                   "source becomes this learned model")
        self.dpo_button = QPushButton("DPO on these rankings", objectName="rmUseDpo")
        self.dpo_button.setToolTip("The other route: the next run optimises the policy on the "
                                   "ticked sources' rankings of this task directly (--algo "
                                   "dpo), with no reward model")

        self.plot = pg.PlotWidget(objectName="rmPlot")
        self.plot.setMinimumHeight(120)
        self.plot.setLabel("bottom", "update")
        self.plot.setYRange(0, 1)
        self.plot.showGrid(x=True, y=True, alpha=0.2)
        self.plot.setMouseEnabled(x=False, y=False)
        colors = style.RUN_PALETTE
        # The key is a line of text under the plot: inside it, some curve is always under it.
        self.key = QLabel(objectName="rmPlotKey", wordWrap=True)
        self.key.setText("  ".join(
            f"<span style='color:{c}'>{mark}</span> {label}" for c, mark, label in (
                (colors[0], "━━", "training loss"), (colors[1], "━●━", "held-out accuracy"),
                (colors[2], "╍╍", "agreement with the true reward"))))
        self.loss_curve = self.plot.plot([], [], pen=pg.mkPen(colors[0], width=1.5),
                                         name="train loss")
        self.acc_curve = self.plot.plot([], [], pen=pg.mkPen(colors[1], width=2), symbol="o",
                                        symbolSize=5, name="held-out accuracy")
        self.true_curve = self.plot.plot([], [], pen=pg.mkPen(colors[2], width=2,
                                                               style=pg.QtCore.Qt.DashLine),
                                         name="agreement with true reward")

        # two to a row: four in one row pushed the box past a 1366-px window
        sources = QGridLayout()
        sources.setContentsMargins(0, 0, 0, 0)
        for i, box in enumerate(self.sources.values()):
            sources.addWidget(box, i // 2, i % 2)
        form = QFormLayout()
        form.addRow("Rankings from", sources)
        form.addRow("Loss", self.loss)
        form.addRow("Length", self.steps)
        form.addRow("Save as", self.name)
        buttons = QHBoxLayout()
        buttons.addWidget(self.train_button)
        buttons.addWidget(self.cancel_button)
        buttons.addWidget(self.progress, 1)
        use = QHBoxLayout()
        use.addWidget(self.models, 1)
        use.addWidget(self.use_button)
        direct = QHBoxLayout()
        direct.addWidget(QLabel("Or, with no reward model:"))
        direct.addStretch(1)
        direct.addWidget(self.dpo_button)
        layout = QVBoxLayout(self)
        layout.addLayout(form)
        layout.addLayout(buttons)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.key)
        layout.addWidget(self.result)
        layout.addLayout(use)
        layout.addLayout(direct)
        self.train_button.clicked.connect(self.request_training)
        self.dpo_button.clicked.connect(self.request_dpo)
        self.cancel_button.clicked.connect(self.cancelRequested)
        self.use_button.clicked.connect(
            lambda: self.models.currentData() and self.useRequested.emit(self.models.currentData()))
        self._reset_curves()
        self._apply_theme()

    def _apply_theme(self) -> None:
        theme = style.theme_of(self)   # the dashboard's look, light or dark
        self.plot.setBackground(theme.base)
        for name in ("left", "bottom"):
            axis = self.plot.getAxis(name)
            axis.setPen(pg.mkPen(theme.muted))
            axis.setTextPen(pg.mkPen(theme.text))

    def changeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        from PySide6.QtCore import QEvent

        if event.type() == QEvent.Type.PaletteChange:
            self._apply_theme()
        super().changeEvent(event)

    def _reset_curves(self) -> None:
        self._loss, self._acc, self._true = ([], []), ([], []), ([], [])
        for curve in (self.loss_curve, self.acc_curve, self.true_curve):
            curve.setData([], [])

    def set_task(self, task: str) -> None:
        self.task = task
        if not self.name.text() or self.name.text().startswith("rm-"):
            self.name.setText(f"rm-{task}-{time.strftime('%m%d-%H%M')}")

    def set_models(self, models: list[dict]) -> None:
        current = self.models.currentData()
        self.models.clear()
        for m in models:
            acc = m.get("metrics", {}).get("rm/true_accuracy", math.nan)
            label = f"{m['name']}  ({m.get('rankings', '?')} rankings, true {acc:.2f})"
            self.models.addItem(label, m["name"])
        self.models.setCurrentIndex(max(0, self.models.findData(current)))
        self.use_button.setEnabled(bool(models))

    def ticked_sources(self) -> tuple[str, ...]:
        return tuple(s for s, box in self.sources.items() if box.isChecked())

    def request_dpo(self) -> None:
        sources = self.ticked_sources()
        if not sources:
            self.result.setText("Tick at least one source of rankings.")
            return
        self.dpoRequested.emit(sources)

    def request_training(self) -> None:
        sources = self.ticked_sources()
        if not sources:
            self.result.setText("Tick at least one source of rankings.")
            return
        self._reset_curves()
        self.train_button.setEnabled(False)
        self.cancel_button.setEnabled(True)
        self.result.setText("Training…")
        self.trainRequested.emit(TrainRequest(self.task, self.loss.currentData(), sources,
                                              self.name.text().strip() or None,
                                              self.steps.value()))

    # --- from the worker
    def show_progress(self, done: int, total: int, metrics: dict) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        loss = metrics.get("rm/train_loss")
        if loss is not None and math.isfinite(loss):
            self._loss[0].append(done)
            self._loss[1].append(loss)
            self.loss_curve.setData(*self._loss)
        for key, series, curve in (("rm/accuracy", self._acc, self.acc_curve),
                                   ("rm/true_accuracy", self._true, self.true_curve)):
            value = metrics.get(key)
            if value is not None and math.isfinite(value):
                series[0].append(done)
                series[1].append(value)
                curve.setData(*series)
        top = max([1.0] + self._loss[1][-50:])
        self.plot.setYRange(0, min(top, 3.0))

    def finished(self, meta: dict) -> None:
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        m = meta.get("metrics", {})
        acc, true = m.get("rm/accuracy", math.nan), m.get("rm/true_accuracy", math.nan)
        saved = f"Saved as “{meta['name']}”. " if meta.get("name") else ""
        stopped = "Stopped early. " if meta.get("cancelled") else ""
        members = meta.get("members", 1)
        ensemble = f"An ensemble of {members} · " if members > 1 else ""
        self.result.setText(
            f"{stopped}{saved}{ensemble}{meta.get('rankings', 0)} rankings · held-out accuracy "
            f"{acc:.2f} against the rankings · {true:.2f} agreement with the true reward "
            "(0.5 = chance; held out by prompt).")

    def show_round(self, event: dict) -> None:
        """A run's feedback round retrained its reward model: say so, with what the person's
        ranks measured (the run's model is its own; the saved one above is unchanged)."""
        def part(key, text):
            value = event.get(key)
            return [text.format(value)] if isinstance(value, int | float) \
                and math.isfinite(value) else []

        bits = (part("eval/win_rate", "win rate over the base model {:.0%}")
                + part("rm/fresh_accuracy", "the model had predicted {:.0%} of your "
                       "preferences before training on them")
                + part("rm/accuracy", "held-out accuracy now {:.2f}"))
        self.result.setText(
            f"Round at step {event.get('step', '?')}: +{event.get('new_rankings', 0)} rankings "
            f"({event.get('rankings', 0)} in all); the run's reward model was retrained."
            + (" " + "; ".join(bits).capitalize() + "." if bits else ""))

    def failed(self, text: str) -> None:
        self.train_button.setEnabled(True)
        self.cancel_button.setEnabled(False)
        self.result.setText(f"Not trained: {text}")
