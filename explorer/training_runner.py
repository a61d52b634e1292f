"""The training thread's owner: it starts the thread, follows its state (idle, starting,
running, paused, stopping) and re-emits its signals in the GUI thread, and joins it at the end.

`TrainingRunner` lives in the GUI thread. The worker's signals connect to its slots, so Qt
queues them into the GUI thread. It never touches torch, and it forwards nothing: the window
asks the run's thread-safe `core.rl.run_control.RunControl` (`runner.control`) for live edits,
rounds and copies of the policy directly.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import QObject, Signal, Slot

from core.config import RunConfig
from explorer.worker import StepUpdate, TrainingThread

IDLE, STARTING, RUNNING, PAUSED, STOPPING = "idle", "starting", "running", "paused", "stopping"


class TrainingRunner(QObject):
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

    @property
    def control(self):
        """The running run's RunControl (stop, pause, edits, rounds, policy copies; any thread
        may use it), or None when no run is going."""
        return None if self.thread is None else self.thread.control

    # --- iterated RLHF: a person's rankings for the round the run asked for
    def submit_round(self, rankings: tuple) -> None:
        if self.thread is not None:
            self.thread.submit_round(rankings)

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
