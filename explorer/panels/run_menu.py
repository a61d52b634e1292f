"""The runs panel's Resume and Fork actions, from the saved states of a run (core/train_state.py).

Resume carries a run on under its id (from its last state, or an earlier one, which replaces the
steps after it once the window has asked); Fork starts a new run from any saved state, with the
knobs the hyperparameter panel holds then.
"""

from __future__ import annotations

from PySide6.QtWidgets import QMenu


def saved_steps(store, run_id: str) -> list[int]:
    from core.train_state import state_path

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
