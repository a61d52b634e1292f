"""Training on a QThread: the same `core.store.session.train_and_record` the CLI runs.

Only immutable values cross threads: each step becomes a frozen `StepUpdate` of plain floats and
strings. Signals are emitted from the worker thread; connect them to slots of QObjects living in
the GUI thread so Qt queues them there (a plain lambda would run in the worker thread).
Controls (pause, stop, live edits, rounds, policy copies) go to the run's `core.rl.run_control
.RunControl`, made here before set-up starts and shared with the Trainer, so they work the same
while a reward model trains at set-up and while steps run: there is one mailbox, not one here and
one in the trainer.
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

from core.config import RunConfig
from core.rl.run_control import RunControl

log = logging.getLogger(__name__)


# Why a round asks, in the words the Rank tab's banner uses.
ROUND_REASONS = {
    "unsure": "the reward model is unsure about what the policy now writes",
    "every": "a scheduled round",
    "asked": "you asked for a round",
}


@dataclass(frozen=True)
class RoundRequest:
    """The groups a round asks the person to rank, and why it asks (Rounds.reason)."""
    groups: tuple
    why: str = ""

    @property
    def reason(self) -> str:
        return ROUND_REASONS.get(self.why, "a feedback round")


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
    runFinished = Signal(str, str)      # run id, status (finished / stopped / diverged)
    runFailed = Signal(str, str)        # run id, traceback text
    roundRequested = Signal(object)     # a RoundRequest: the groups for the person to rank

    def __init__(self, cfg: RunConfig, data_dir, parent=None, resume=None):
        """resume: a core.store.train_state.ResumePlan (immutable) to carry on instead of a new run;
        `cfg` is then the plan's."""
        super().__init__(parent)
        self.cfg = cfg
        self.data_dir = data_dir
        self.resume = resume
        self.control = RunControl(cfg)
        self._lock = threading.Lock()
        self._trainer = None
        self.run_id: str | None = resume.run_id if resume is not None else None
        self._answers: queue.Queue = queue.Queue()   # a person's round, from the GUI thread
        self._opened = False            # the run exists (created, or reopened by a resume)
        TrainingThread.instances.add(self)

    # --- called from the GUI thread
    def request_stop(self) -> None:
        self.control.request_stop()

    def set_paused(self, paused: bool) -> None:
        (self.control.pause if paused else self.control.resume)()

    def submit_round(self, rankings: tuple) -> None:
        """The person's rankings (core.reward_learning.reward_model.Ranking, already stored) for
        the round that
        `roundRequested` asked for; an empty tuple skips the round."""
        self._answers.put(tuple(rankings))

    # --- the worker thread
    def _adopt(self, trainer) -> None:
        with self._lock:
            self._trainer = trainer

    def _progress(self, name: str, done: int, total: int) -> None:
        self.control.check_cancelled()
        self.phase.emit(name, done, total)

    def _on_step(self, result) -> None:
        self.stepDone.emit(StepUpdate(
            self.run_id, result.step,
            tuple((k, float(v)) for k, v in result.metrics.items()),
            tuple(tuple(s.items()) for s in result.samples),
            tuple(json.dumps(e) for e in result.events)))

    def rank(self, groups) -> list:
        """core.reward_learning.feedback's Feedback for a person: hand the groups to the window and
        wait (on
        this worker thread) until the person has ranked them, or the run is stopped."""
        while not self._answers.empty():   # a stale answer from an earlier round
            self._answers.get_nowait()
        with self._lock:
            why = self._trainer.rounds.reason if self._trainer else ""
        self.roundRequested.emit(RoundRequest(tuple(groups), why))
        while not self.control.stop_requested:
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
        from core.reward_learning.feedback import JudgeFailed
        from core.store.runs import RunStore
        from core.store.session import train_and_record

        store = None
        try:
            # SQLite connections belong to the thread that opens them: this one is the worker's.
            store = RunStore(self.data_dir)
            person = self.cfg.feedback_by == "person"  # "Rank now" works without a schedule
            _, status = train_and_record(
                self.cfg, store, progress=self._progress, on_step=self._on_step,
                on_trainer=self._adopt, feedback=self if person else None,
                control=self.control, on_run=self._on_run, resume=self.resume,
                beside_gui=True)
            self.runFinished.emit(self.run_id or "", status)
        except JudgeFailed:   # the run is stopped and saved; the window reads why from the store
            self.runFinished.emit(self.run_id or "", "stopped")
        except ValueError as error:
            if not self._opened:   # refused before the run existed or reopened: one line
                self.runFailed.emit("", str(error))
            else:
                log.exception("training failed")
                self.runFailed.emit(self.run_id or "", traceback.format_exc())
        except Exception:  # shown to the user in a dialog; the run is already marked failed
            log.exception("training failed")
            self.runFailed.emit(self.run_id or "", traceback.format_exc())
        finally:
            with self._lock:
                self._trainer = None
            self.control.end()
            if store is not None:
                store.close()

    def _on_run(self, run_id: str) -> None:
        self.run_id, self._opened = run_id, True
        self.runStarted.emit(run_id)
