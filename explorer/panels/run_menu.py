"""The runs panel's row texts (short ids and times) and its Resume and Fork actions, from the
saved states of a run (core/store/train_state.py).

Resume carries a run on under its id (from its last state, or an earlier one, which replaces the
steps after it once the window has asked); Fork starts a new run from any saved state, with the
knobs the hyperparameter panel holds then.
"""

from __future__ import annotations

import re
from datetime import datetime

from PySide6.QtWidgets import QMenu


def saved_steps(store, run_id: str) -> list[int]:
    from core.store.train_state import state_path

    return [s for s, p in store.checkpoints(run_id) if state_path(p).exists()]


def add_resume_actions(menu: QMenu, store, run_id: str, resume, fork) -> None:
    """resume(run_id, step or -1 for the last), fork(run_id, step)."""
    saved = saved_steps(store, run_id)
    running = store.get_run(run_id).status == "running"
    menu.addSeparator()
    action = menu.addAction("Resume", lambda: resume(run_id, -1))
    action.setObjectName("resumeAction")
    action.setEnabled(bool(saved) and not running)
    if not saved:
        action.setText("Resume (no saved state)")
    earlier = menu.addMenu("Resume from step")
    branch = menu.addMenu("Fork from step")
    for step in saved:
        earlier.addAction(f"{step}", lambda s=step: resume(run_id, s))
        branch.addAction(f"{step}", lambda s=step: fork(run_id, s))
    earlier.setEnabled(len(saved) > 1 and not running)
    branch.setEnabled(bool(saved))


_TIME_PREFIX = re.compile(r"^\d{8}-\d{6}-")


def short_id(run_id: str) -> str:
    """A run id without its start-time prefix (shown in the Created column already):
    "20261124-081530-ppo-sentiment-3f2a" -> "ppo-sentiment-3f2a"."""
    return _TIME_PREFIX.sub("", run_id) or run_id


def short_time(iso_utc: str, now: datetime | None = None) -> str:
    """A stored UTC timestamp as short local time: "14:05" today, "24 Nov 14:05" this year."""
    try:
        when = datetime.fromisoformat(iso_utc).astimezone()
    except ValueError:
        return iso_utc
    now = now or datetime.now().astimezone()
    if when.date() == now.date():
        return when.strftime("%H:%M")
    if when.year == now.year:
        return when.strftime("%d %b %H:%M").lstrip("0")
    return when.strftime("%Y-%m-%d")
