"""Start / Pause / Stop: the buttons, and the controller that owns the training thread.

`RunController` lives in the GUI thread. The worker's signals connect to its slots, so Qt queues
them into the GUI thread; it re-emits them for the window. It never touches torch.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot
from PySide6.QtGui import QKeySequence
from PySide6.QtWidgets import QComboBox, QHBoxLayout, QLabel, QPushButton, QStyle, QWidget

from core.config import RunConfig
from explorer.worker import StepUpdate, TrainingThread

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


class RunController(QObject):
    stateChanged = Signal(str)
    runStarted = Signal(str)
    phase = Signal(str, int, int)
    stepArrived = Signal(object)          # StepUpdate
    runEnded = Signal(str, str)           # run id, status
    runFailed = Signal(str, str)          # run id, traceback
    roundRequested = Signal(object)       # a worker.RoundRequest for the person to rank

    def __init__(self, data_dir: Path, parent=None):
        super().__init__(parent)
        self.data_dir = data_dir
        self.thread: TrainingThread | None = None
        self.state = IDLE
        self.cfg: RunConfig | None = None
        self.started_at = 0.0

    def _set_state(self, state: str) -> None:
        self.state = state
        self.stateChanged.emit(state)

    @property
    def busy(self) -> bool:
        return self.thread is not None

    def start(self, cfg: RunConfig, resume=None) -> None:
        """Start a run of `cfg`, or carry on a stored run under its own id (resume: a
        core.store.train_state.ResumePlan; cfg is then the plan's)."""
        if self.busy:
            return
        self.cfg = cfg
        self.thread = TrainingThread(cfg, self.data_dir, self, resume=resume)
        self.thread.runStarted.connect(self._on_started)
        self.thread.phase.connect(self.phase)
        self.thread.stepDone.connect(self._on_step)
        self.thread.runFinished.connect(self._on_finished)
        self.thread.runFailed.connect(self._on_failed)
        self.thread.roundRequested.connect(self.roundRequested)
        self.started_at = time.monotonic()
        self._set_state(STARTING)
        self.thread.start()

    def toggle_pause(self) -> None:
        if self.state == RUNNING:
            self.thread.set_paused(True)
            self._set_state(PAUSED)
        elif self.state == PAUSED:
            self.thread.set_paused(False)
            self._set_state(RUNNING)

    def stop(self) -> None:
        if self.busy and self.state != STOPPING:
            self.thread.set_paused(False)
            self.thread.request_stop()
            self._set_state(STOPPING)

    def request_changes(self, changes: dict) -> bool:
        """True when the edits wait for set-up to end. Raises ValueError when they are refused
        (the run's RunControl checks them at once, in set-up too). Applied ones come back in a
        step's "set" event."""
        if not self.busy:
            raise ValueError("no run is going")
        return self.thread.request_changes(changes)

    # --- iterated RLHF; any thread may call request_snapshot (the RunControl's lock guards it)
    def submit_round(self, rankings: tuple) -> None:
        if self.thread is not None:
            self.thread.submit_round(rankings)

    def request_round(self) -> bool:
        return self.thread is not None and self.thread.request_round()

    def request_snapshot(self):
        thread = self.thread
        return None if thread is None else thread.request_snapshot()

    def shutdown(self, timeout_ms: int = 60_000) -> bool:
        """Stop and join the worker (window closing). True when it ended in time."""
        if not self.busy:
            return True
        self.stop()
        ended = self.thread.wait(timeout_ms)
        self._cleanup()
        return ended

    # --- slots: queued from the worker thread into this (GUI) thread
    @Slot(str)
    def _on_started(self, run_id: str) -> None:
        self.runStarted.emit(run_id)

    @Slot(object)
    def _on_step(self, update: StepUpdate) -> None:
        if self.state == STARTING:
            self._set_state(RUNNING)
        self.stepArrived.emit(update)

    @Slot(str, str)
    def _on_finished(self, run_id: str, status: str) -> None:
        self._cleanup()
        self.runEnded.emit(run_id, status)

    @Slot(str, str)
    def _on_failed(self, run_id: str, text: str) -> None:
        self._cleanup()
        self.runFailed.emit(run_id, text)

    def _cleanup(self) -> None:
        if self.thread is not None:
            self.thread.wait()
            self.thread.deleteLater()
            self.thread = None
        self._set_state(IDLE)


class RunControls(QWidget):
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
