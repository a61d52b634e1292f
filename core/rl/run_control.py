"""RunControl: the one owner of a run's control state, shared by whoever drives the run.

Stop, pause, the live config and its mailbox of edits, requests for a feedback round and for a
copy of the policy: the CLI's signal handler, the GUI's worker and tests all act on one
`RunControl`, from any thread, and the `Trainer` reads it at step boundaries (a busy training loop
runs no Qt events, so nothing else could reach it). It exists before the trainer does, so a stop
or an edit made while a reward model trains at set-up is not lost: the stop cancels set-up, the
edit waits in the mailbox and is checked now, by the same rule the trainer applies.

The live config (`cfg`) is owned here: the trainer replaces it when it applies edits, and the
objective reads it through the trainer, so there is one copy.
"""

from __future__ import annotations

import threading
from concurrent.futures import Future

from core.config import RunConfig, check_live_changes


class RunCancelled(Exception):
    """Raised from set-up work (reward-model training) when the run is stopped before its first
    step; the run is recorded as stopped."""


class RunControl:
    def __init__(self, cfg: RunConfig):
        self._lock = threading.Lock()
        self._cfg = cfg
        self._pending: dict = {}
        self._stop = threading.Event()
        self._running = threading.Event()
        self._running.set()
        self._round = threading.Event()
        self._snapshots: list[Future] = []
        self._ended = False
        self.started = False           # the first step has begun: set-up is over
        self._ready = False            # the trainer exists: copies of its policy can be made
        self._takes_rounds = False     # and it has something a round would train
        self.stop_reason: str | None = None

    # --- the live config
    @property
    def cfg(self) -> RunConfig:
        return self._cfg

    def trainer_ready(self, takes_rounds: bool) -> None:
        """The trainer: it exists (a policy to copy), and whether rounds can teach it."""
        with self._lock:
            self._ready, self._takes_rounds = True, bool(takes_rounds)

    def set_up_done(self) -> None:
        """The trainer: set-up is over, steps begin (edits from now on apply at the next step)."""
        self.started = True

    def request_changes(self, **changes) -> bool:
        """Queue live edits for the next step boundary; True while set-up still runs (they apply
        at the first step). ValueError now when they are refused, or when the run is ending."""
        with self._lock:
            if self._ended or self._stop.is_set():
                raise ValueError("the run is ending; no further step will apply it")
            check_live_changes(self._cfg, {**self._pending, **changes})
            self._pending.update(changes)
            return not self.started

    def take_changes(self) -> dict:
        """The trainer: every edit queued since the last step boundary."""
        with self._lock:
            pending, self._pending = self._pending, {}
            return pending

    def commit(self, cfg: RunConfig) -> None:
        """The trainer: the config with the edits it just applied."""
        with self._lock:
            self._cfg = cfg

    # --- stop and pause
    def request_stop(self, reason: str = "user") -> None:
        with self._lock:
            if self.stop_reason is None:
                self.stop_reason = reason
        self._stop.set()
        self._running.set()

    @property
    def stop_requested(self) -> bool:
        return self._stop.is_set()

    def check_cancelled(self) -> None:
        """Set-up work calls this between pieces: a stop before the first step cancels it."""
        if self._stop.is_set():
            raise RunCancelled()

    def pause(self) -> None:
        self._running.clear()

    def resume(self) -> None:
        self._running.set()

    @property
    def paused(self) -> bool:
        return not self._running.is_set()

    def wait_if_paused(self, timeout: float = 0.1) -> bool:
        """True when the run may go on now; else waits up to `timeout` s and returns False."""
        return self._running.wait(timeout)

    # --- feedback rounds
    def request_round(self) -> bool:
        """Ask for a round at the next step boundary; False (nothing asked) before the trainer
        exists or when the run has nothing a round would train."""
        with self._lock:
            if not self._takes_rounds:
                return False
        self._round.set()
        return True

    def take_round(self) -> bool:
        asked = self._round.is_set()
        self._round.clear()
        return asked

    # --- copies of the policy for other threads
    def request_snapshot(self) -> Future | None:
        """A Future for (frozen CPU copy of the policy, step), served at the next step boundary
        (or at once while paused); cancelled if the run ends first. None before the trainer
        exists."""
        future: Future = Future()
        with self._lock:
            if not self._ready:
                return None
            if self._ended:
                future.cancel()
            else:
                self._snapshots.append(future)
        return future

    def take_snapshots(self) -> list[Future]:
        with self._lock:
            waiting, self._snapshots = self._snapshots, []
            return waiting

    def end(self) -> None:
        """The run is over: nobody waits forever for a copy, and edits are refused."""
        with self._lock:
            waiting, self._snapshots, self._ended = self._snapshots, [], True
        for future in waiting:
            future.cancel()

    @property
    def ended(self) -> bool:
        return self._ended
