"""Training on a QThread: the same `core.session.train_and_record` the CLI runs.

Only immutable values cross threads: each step becomes a frozen `StepUpdate` of plain floats and
strings. Signals are emitted from the worker thread; connect them to slots of QObjects living in
the GUI thread so Qt queues them there (a plain lambda would run in the worker thread).
Controls (pause, stop, live edits) go straight to the Trainer's lock-protected mailbox, because the
busy training loop runs no Qt events of its own. Live edits made while the run is still setting up
(no Trainer yet, e.g. while a reward model trains) wait here and are forwarded as soon as the
Trainer exists; if it refuses them then, `changesRefused` says so.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import traceback
import weakref
from dataclasses import dataclass

from PySide6.QtCore import QThread, Signal

from core.config import RunConfig, check_live_changes
from core.session import RunCancelled, train_and_record

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class StepUpdate:
    run_id: str
    step: int
    metrics: tuple[tuple[str, float], ...]
    samples: tuple[tuple[tuple[str, object], ...], ...]
    events: tuple[str, ...]          # JSON text: nested dicts stay intact and immutable

    def metrics_dict(self) -> dict[str, float]:
        return dict(self.metrics)

    def samples_list(self) -> list[dict]:
        return [dict(s) for s in self.samples]

    def events_list(self) -> list[dict]:
        return [json.loads(e) for e in self.events]


class TrainingThread(QThread):
    #: every thread ever made, so tests can fail one that is left running
    instances: weakref.WeakSet = weakref.WeakSet()

    runStarted = Signal(str)            # run id, as soon as the run exists in the store
    phase = Signal(str, int, int)       # set-up work: name, done, total
    stepDone = Signal(object)           # StepUpdate
    runFinished = Signal(str, str)      # run id, status (finished / stopped)
    runFailed = Signal(str, str)        # run id, traceback text
    changesRefused = Signal(str, str)   # edits held during set-up (JSON), the trainer's reason
    roundRequested = Signal(object)     # tuple of core.feedback.Group for the person to rank

    def __init__(self, cfg: RunConfig, data_dir, parent=None):
        super().__init__(parent)
        self.cfg = cfg
        self.data_dir = data_dir
        self._lock = threading.Lock()
        self._trainer = None
        self._stop = threading.Event()
        self._paused = False
        self._queued: dict = {}         # live edits waiting for the trainer to exist
        self._ended = False
        self.run_id: str | None = None
        self._answers: queue.Queue = queue.Queue()   # a person's round, from the GUI thread
        TrainingThread.instances.add(self)

    # --- called from the GUI thread
    def request_stop(self) -> None:
        self._stop.set()
        with self._lock:
            if self._trainer is not None:
                self._trainer.request_stop()

    def set_paused(self, paused: bool) -> None:
        with self._lock:
            self._paused = paused
            if self._trainer is not None:
                (self._trainer.pause if paused else self._trainer.resume)()

    def submit_round(self, rankings: tuple) -> None:
        """The person's rankings (core.reward_model.Ranking, already stored) for the round that
        `roundRequested` asked for; an empty tuple skips the round."""
        self._answers.put(tuple(rankings))

    def request_round(self) -> bool:
        """Ask for a round at the next step boundary; False before the trainer exists."""
        with self._lock:
            if self._trainer is None or self.cfg.reward_source != "learned":
                return False
            self._trainer.request_round()
            return True

    def request_snapshot(self):
        """A Future of (frozen CPU copy of the policy, step), or None before the trainer exists."""
        with self._lock:
            return None if self._trainer is None else self._trainer.request_snapshot()

    def request_changes(self, changes: dict) -> bool:
        """Pass live edits to the trainer for its next step; True when they wait for set-up.

        Raises ValueError for edits refused now. During set-up they are checked against the
        run's config, as the trainer checks them, and held until the trainer exists.
        """
        with self._lock:
            if self._ended or self._stop.is_set():
                raise ValueError("the run is ending; no further step will apply it")
            if self._trainer is not None:
                self._trainer.request_changes(**changes)
                return False
            merged = {**self._queued, **changes}
            check_live_changes(self.cfg, merged)   # the trainer's own rule
            self._queued = merged
            return True

    # --- the worker thread
    def _adopt(self, trainer) -> None:
        refused = None
        with self._lock:
            self._trainer = trainer
            # Under the lock, so the held edits reach the mailbox before any newer one.
            queued, self._queued = self._queued, {}
            if queued:
                try:
                    trainer.request_changes(**queued)
                except ValueError as error:
                    refused = (json.dumps(queued), str(error))
            if self._paused:
                trainer.pause()
            if self._stop.is_set():
                trainer.request_stop()
        if refused is not None:
            self.changesRefused.emit(*refused)

    def _progress(self, name: str, done: int, total: int) -> None:
        if self._stop.is_set():
            raise RunCancelled()
        self.phase.emit(name, done, total)

    def _on_step(self, result) -> None:
        self.stepDone.emit(StepUpdate(
            self.run_id, result.step,
            tuple((k, float(v)) for k, v in result.metrics.items()),
            tuple(tuple(s.items()) for s in result.samples),
            tuple(json.dumps(e) for e in result.events)))

    def rank(self, groups) -> list:
        """core.feedback's Feedback for a person: hand the groups to the window and wait (on
        this worker thread) until the person has ranked them, or the run is stopped."""
        while not self._answers.empty():   # a stale answer from an earlier round
            self._answers.get_nowait()
        self.roundRequested.emit(tuple(groups))
        while not self._stop.is_set():
            with self._lock:
                trainer = self._trainer
            if trainer is not None:   # this is the training thread: it may copy the policy
                trainer.serve_snapshots()
            try:
                return list(self._answers.get(timeout=0.1))
            except queue.Empty:
                continue
        return []

    def run(self) -> None:  # noqa: D401 (QThread entry point)
        from core.runs import RunStore

        # SQLite connections belong to the thread that opens them: this one is the worker's own.
        store = RunStore(self.data_dir)
        try:
            self.run_id = store.create_run(self.cfg.to_dict(), self.cfg.task, self.cfg.algo,
                                           self.cfg.reward_source)
            self.runStarted.emit(self.run_id)
            person = self.cfg.feedback_by == "person"  # "Rank now" works without a schedule
            feedback = self if person else None
            _, status = train_and_record(self.cfg, store, progress=self._progress,
                                         on_step=self._on_step, on_trainer=self._adopt,
                                         run_id=self.run_id, feedback=feedback)
            self.runFinished.emit(self.run_id, status)
        except Exception:  # shown to the user in a dialog; the run is already marked failed
            log.exception("training failed")
            self.runFailed.emit(self.run_id or "", traceback.format_exc())
        finally:
            with self._lock:
                self._trainer, self._queued, self._ended = None, {}, True
            store.close()
