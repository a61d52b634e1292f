"""Stored runs into plot series: a whole run at once, or a run followed as another process writes.

No Qt here: the GUI calls `RunFollower.poll` from a timer on the thread that owns the `RunStore`
(a store's SQLite connection belongs to the thread that opened it).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Mapping
from typing import Any

import numpy as np

from core.store.runs import RunStore
from explorer.plots.series import RunSeries

ARROW = "→"
DIVERGED_MARK = "✕"   # explorer.plots.metric_plot keeps such a marker in view


def _fmt(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        return str(value)
    if isinstance(value, numbers.Integral):
        return str(int(value))
    return f"{float(value):g}"


MARKED = ("set", "feedback_round", "diverged", "fork")   # events drawn as markers on the plots


def format_changes(payload: Mapping[str, Any]) -> str:
    """`{"changes": {"lr": 5e-5}, "old": {"lr": 2e-5}}` -> "lr 2e-05→5e-05" (comma-separated);
    an iterated-RLHF round -> "round +8 · win 62%" (new rankings, the blind win rate)."""
    if payload.get("kind") == "diverged":
        # short on a narrow plot ("✕ reward is nan"); the status line says the rest
        return f"{DIVERGED_MARK} {str(payload.get('what', 'non-finite')).split(' (')[0]}"
    if payload.get("kind") == "fork":
        return f"fork of {payload.get('from', '?')} at step {payload.get('step', '?')}"
    if payload.get("kind") == "feedback_round":
        win = payload.get("eval/win_rate")
        won = f" · win {win:.0%}" if isinstance(win, int | float) and win == win else ""
        # short: a marker's label has a quarter of a 1366-px window at most
        return f"round +{payload.get('new_rankings', 0)}{won}"
    changes = payload.get("changes") or {}
    old = payload.get("old") or {}
    parts = []
    for name, new in changes.items():
        if name in old:
            parts.append(f"{name} {_fmt(old[name])}{ARROW}{_fmt(new)}")
        else:
            parts.append(f"{name} = {_fmt(new)}")
    return ", ".join(parts)


def _time_at(series: RunSeries, step: float) -> float:
    """time_s of `step`, or of the nearest loaded step before it (an event may fall between
    logged steps); NaN when no time is known."""
    times = series.get("time_s")
    if times is None or not len(times):
        return math.nan
    i = int(np.searchsorted(times.steps, step, side="right")) - 1
    return float(times.times[i]) if i >= 0 else math.nan


class RunFollower:
    """Loads a stored run into a `RunSeries` and keeps it up to date on each `poll()`.

    Steps and events are logged in separate transactions, and an event may be committed a moment
    after its step: an event whose step is not loaded yet waits for a later poll, so its marker
    always gets that step's time.
    """

    def __init__(self, store: RunStore, run_id: str, series: RunSeries | None = None) -> None:
        self.store = store
        self.run_id = run_id
        self.series = series if series is not None else RunSeries()
        self.last_step = -1
        self.until: int | None = None   # load only the steps (and events) before this one
        self.status: str | None = None
        self._events_seen = 0

    @property
    def done(self) -> bool:
        """True once the run has ended and everything it wrote has been loaded."""
        return self.status is not None and self.status != "running"

    def poll(self) -> int:
        """Append the steps logged since the last poll and any new events; return the number of
        steps added. Raises `core.store.runs.UnknownRun` if the run was deleted."""
        # Status first: a run writes its last step before it is marked ended, so an ended status
        # read here guarantees the step query below sees every step it will ever have.
        self.status = self.store.get_run(self.run_id).status
        added = 0
        for step, metrics in self.store.steps_after(self.run_id, self.last_step):
            if self.until is not None and step >= self.until:
                break
            self.series.append({"step": step, **metrics})
            self.last_step = step
            added += 1
        self._load_events()
        return added

    def _load_events(self, *, wait_for_steps: bool = True) -> None:
        events = self.store.events(self.run_id)
        for event in events[self._events_seen :]:
            if wait_for_steps and event["step"] > self.last_step and not self.done:
                break  # its step is still in flight; keep the order, retry next poll
            self._events_seen += 1
            if event["kind"] not in MARKED or (self.until is not None
                                               and event["step"] >= self.until):
                continue
            label = format_changes(event["payload"])
            if label:
                step = float(event["step"])
                self.series.add_event(label, step, _time_at(self.series, step))


def load_run_series(store: RunStore, run_id: str, before: int | None = None) -> RunSeries:
    """Every stored step of a run (or those before step `before`), plus a marker for each
    mid-run edit, feedback round, fork and divergence."""
    follower = RunFollower(store, run_id)
    follower.until = before
    follower.poll()
    if not follower.done:
        # A live run's trailing event may wait for its step; a one-shot load shows it anyway.
        follower._load_events(wait_for_steps=False)
    return follower.series
