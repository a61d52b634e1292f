"""Start / Pause / Stop, and the device: the run's buttons (they show the runner's state)."""

from __future__ import annotations

from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QStyle, QWidget

from explorer.training_runner import IDLE, PAUSED, RUNNING, STARTING


class RunButtons(QWidget):
    """The button row above the hyperparameters: Start, Pause (Space), Stop, and the device."""

    def __init__(self, parent=None):
        super().__init__(parent)
        style = self.style()
        self.start_button = QPushButton(style.standardIcon(QStyle.SP_MediaPlay), "Start")
        self.pause_button = QPushButton(style.standardIcon(QStyle.SP_MediaPause), "Pause")
        self.stop_button = QPushButton(style.standardIcon(QStyle.SP_MediaStop), "Stop")
        self.start_button.setObjectName("startButton")
        self.pause_button.setObjectName("pauseButton")
        self.stop_button.setObjectName("stopButton")
        self.start_button.setToolTip("Start a run with these settings (Space)")
        self.pause_button.setToolTip("Pause or resume at the next step boundary (Space)")
        self.stop_button.setToolTip("Stop after the current step; everything is saved (Esc)")
        self.stop_button.setShortcut(QKeySequence("Esc"))
        self.device = QComboBox()
        self.device.setObjectName("deviceCombo")
        self.device.addItems(["auto", "cpu", "cuda"])
        self.device.setToolTip("Where torch runs; auto picks CUDA when available")
        row = QHBoxLayout(self)
        row.setContentsMargins(6, 6, 6, 2)
        for w in (self.start_button, self.pause_button, self.stop_button):
            row.addWidget(w)
        row.addStretch(1)
        row.addWidget(QLabel("Device"))
        row.addWidget(self.device)
        self.show_state(IDLE)

    def set_cuda_available(self, available: bool) -> None:
        item = self.device.model().item(2)
        item.setEnabled(available)
        item.setToolTip("" if available else "No CUDA device found by torch")

    def show_state(self, state: str) -> None:
        idle = state == IDLE
        self.start_button.setEnabled(idle)
        self.pause_button.setEnabled(state in (RUNNING, PAUSED))
        self.pause_button.setText("Resume" if state == PAUSED else "Pause")
        self.stop_button.setEnabled(state in (STARTING, RUNNING, PAUSED))
        self.device.setEnabled(idle)
