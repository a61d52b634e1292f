"""Run recovery, a part of the main window: Resume and Fork from the runs list, input refused
before a run existed, and what a run's end means (diverged, stopped by a judge, failed).

Resume and fork plans come from `core.store.train_state` (the same checks as `train --resume`);
this part only asks the questions a person must answer: how many steps in all, and whether the
steps after an earlier checkpoint may go. It gets what it uses when it is made, and owns one
piece of state: the fork the next Start makes.
"""

from __future__ import annotations

from collections.abc import Callable

from PySide6.QtWidgets import QInputDialog, QMessageBox, QPushButton, QWidget

from core.config import RunConfig
from explorer.panels.run_loading import format_changes


class RunRecovery:
    def __init__(self, parent: QWidget, store, panel, busy: Callable[[], bool],
                 start_button: QPushButton, say: Callable[[str], None],
                 begin: Callable[[RunConfig, object, str], None],
                 live_series: Callable[[], object], redraw: Callable[[], None]):
        """parent: the window the dialogs belong to; store: the GUI thread's run store; panel:
        the knobs; busy(): a run is going; start_button: says "Start fork" while one is set up;
        say(text): the status line; begin(cfg, plan, text): start a run; live_series(): the
        shown run's series (or None); redraw(): redraw the plots."""
        self.parent, self.store, self.panel, self.busy = parent, store, panel, busy
        self.start_button, self.say, self.begin = start_button, say, begin
        self.live_series, self.redraw = live_series, redraw
        self.fork: tuple[str, int] | None = None     # the next Start forks this run here

    # --- resume
    def resume_run(self, run_id: str, step: int = -1, steps: int | None = None) -> bool:
        """Carry `run_id` on under its id from its last saved state (step -1) or `step`, to
        `steps` in all (asked for when the run had already reached its own count)."""
        from core.store.train_state import plan_resume

        if self.busy():
            self.say("Stop the current run before resuming another.")
            return False
        from_step = None if step < 0 else step
        try:
            if steps is None:
                steps = self._resume_total(run_id, from_step)
                if steps is None:
                    return False
            plan = plan_resume(self.store, run_id, steps, from_step)
        except ValueError as error:
            self.refused("Cannot resume", str(error))
            return False
        if plan.dropped and not self.confirm(
                "Replace later steps?",
                f"Resuming run {run_id} from step {plan.step} deletes the {plan.dropped} "
                f"steps stored after it, and trains them again."):
            return False
        self.fork_done()
        self.panel.set_config(plan.cfg)
        self.begin(plan.cfg, plan, f"Resuming {run_id} from step {plan.step}…")
        return True

    def _resume_total(self, run_id: str, from_step: int | None) -> int | None:
        """The run's own step count, or (it has done them all) the total the person asks for."""
        info = self.store.get_run(run_id)
        planned = RunConfig.from_dict(self.store.run_config(run_id)).steps
        done = from_step if from_step is not None else info.steps_done
        if done < planned:
            return planned
        total, ok = QInputDialog.getInt(
            self.parent, "Resume", f"Run {run_id} has done its {info.steps_done} steps. Carry "
            "it on to how many steps in all?", 2 * max(planned, done), done + 1, 100_000)
        return total if ok else None

    # --- fork
    def fork_run(self, run_id: str, step: int) -> None:
        """Put the saved state's knobs in the panel; the next Start runs them as a new run that
        starts from that state (and shows the parent's steps before it)."""
        from core.store.runs_read import UnknownRun
        from core.store.train_state import TrainState, state_path

        if self.busy():
            self.say("Stop the current run before forking one.")
            return
        try:
            path = dict(self.store.checkpoints(run_id)).get(step)
            if path is None:
                raise ValueError(f"run {run_id} has no checkpoint at step {step}")
            cfg = TrainState.load(state_path(path)).cfg
        except (ValueError, UnknownRun) as error:
            self.refused("Cannot fork", str(error))
            return
        self.fork = (run_id, step)
        self.panel.set_config(cfg)
        self.start_button.setText("Start fork")
        self.say(f"Fork of {run_id} at step {step}: change the knobs, then Start (task, "
                 "objective and reward source stay).")

    def fork_plan(self, cfg: RunConfig):
        """The plan for Start when a fork is set up, else None; ValueError when refused."""
        from core.store.train_state import plan_fork

        if self.fork is None:
            return None
        run_id, step = self.fork
        return plan_fork(self.store, run_id, step, cfg)

    def fork_done(self) -> None:
        self.fork = None
        self.start_button.setText("Start")

    # --- what an end means
    def explain_end(self, run_id: str, status: str, steps: int) -> None:
        """A diverged run marked on the plots; a run stopped from outside (a judge program)
        says why, once."""
        if status == "diverged":
            self.show_divergence(run_id)
        error = self.store.run_error(run_id) if status == "stopped" else None
        if error:
            self.say(f"Run {run_id} stopped after {steps} steps, saved: {error}")
            box = QMessageBox(QMessageBox.Warning, "Run stopped",
                              f"{error}.\n\nThe run is saved: fix the judge, then Resume it "
                              "from the runs list.", QMessageBox.Ok, self.parent)
            box.setObjectName("stoppedBox")
            box.open()

    def explain_failure(self, run_id: str, text: str) -> None:
        if not run_id:   # refused before a run existed (a bad device, a missing model)
            self.refused("Run not started", text)
            return
        self.say(f"Run {run_id} failed; finished steps are saved.")
        box = QMessageBox(QMessageBox.Critical, "Training failed",
                          "Training stopped with an error. The steps it finished are saved "
                          f"in run {run_id}.", QMessageBox.Ok, self.parent)
        box.setObjectName("errorBox")
        box.setDetailedText(text)
        box.open()

    def refused(self, title: str, message: str) -> None:
        """Input refused before any run existed: one line, no traceback."""
        self.say(f"{title}: {message}")
        box = QMessageBox(QMessageBox.Warning, title, message, QMessageBox.Ok, self.parent)
        box.setObjectName("refusedBox")
        box.open()

    def confirm(self, title: str, text: str) -> bool:
        return QMessageBox.question(self.parent, title, text) == QMessageBox.StandardButton.Yes

    def say_how_it_ended(self, run_id: str) -> None:
        """An opened run that did not finish says why, and what can be done about it."""
        info = self.store.get_run(run_id)
        if info.status == "diverged":
            self.say(f"Run {run_id} {self.store.run_error(run_id)}; the last good checkpoint is "
                     "kept (right-click: Resume or Fork).")
        elif info.status == "interrupted":
            self.say(f"Run {run_id} was interrupted after {info.steps_done} steps (its process "
                     "ended); right-click it to Resume.")
        elif info.status == "stopped":
            self.say(f"Run {run_id} was stopped after {info.steps_done} steps; right-click it "
                     "to Resume.")

    def show_divergence(self, run_id: str) -> None:
        """Mark the step on the plots and say what went non-finite."""
        error = self.store.run_error(run_id) or "diverged"
        events = [e for e in self.store.events(run_id) if e["kind"] == "diverged"]
        series = self.live_series()
        if events and series is not None:
            series.add_event(format_changes(events[-1]["payload"]), events[-1]["step"])
            self.redraw()
        self.say(f"Run {run_id} {error}. The last good checkpoint is kept; Resume or Fork it "
                 "from the runs list.")
