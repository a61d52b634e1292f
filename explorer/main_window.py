"""The main window: hyperparameters and run controls on the left, past runs below them, and in
the centre three tabs for the three jobs: Watch (live plots, with the samples on the right), Rank
(rank samples, train a reward model) and Math (the lecture's pictures, marking the run).

State lives in core values (RunConfig, the run store, RunSeries buffers); widgets only show it.
Everything here runs in the GUI thread; training runs in `explorer.worker.TrainingThread`.
"""

from __future__ import annotations

import time
from pathlib import Path

from PySide6.QtCore import Qt, QTimer, Slot
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QLabel,
    QMainWindow,
    QProgressBar,
    QScrollArea,
    QTabWidget,
    QVBoxLayout,
    QWidget,
)

from core.config import RunConfig
from core.store.runs import RunStore, resolve_data_dir
from core.tasks import get_task
from explorer.about import make_about_box
from explorer.feedback_link import FeedbackLink
from explorer.identity import APP_DISPLAY_NAME
from explorer.menus import build_menus, export_dashboard
from explorer.panels.experiments import ExperimentsPanel
from explorer.panels.hyperparameters import HyperparameterPanel
from explorer.panels.math_panel import MathPanel
from explorer.panels.run_buttons import RunButtons
from explorer.panels.run_loading import format_changes, load_run_series
from explorer.panels.runs import RunsPanel
from explorer.panels.samples import SamplesPanel
from explorer.plots.dashboard import Dashboard
from explorer.plots.series import RunSeries
from explorer.rank_tab import RankTab
from explorer.rankings_files import RankingsFiles
from explorer.run_recovery import RunRecovery
from explorer.shown_runs import ShownRuns
from explorer.training_runner import IDLE, PAUSED, STARTING, STOPPING, TrainingRunner
from explorer.window_layout import restore_layout, save_layout

TABS = ("Watch", "Rank", "Math", "Experiments")


def _cuda_available() -> bool:
    try:
        import torch

        return bool(torch.cuda.is_available())
    except Exception:  # a broken CUDA install must not keep the window from opening
        return False


def _scrolling(widget: QWidget) -> QScrollArea:
    area = QScrollArea()
    area.setWidgetResizable(True)
    area.setFrameShape(QScrollArea.NoFrame)
    area.setWidget(widget)
    return area


class MainWindow(QMainWindow):
    """The window: it makes the widgets and the parts (run recovery, rankings files, the link
    between a run and the Rank tab, the menus), gives each what it uses, and wires the run's
    signals to them."""

    def __init__(self, data_dir: str | Path | None = None, restore: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self._fit_to_screen(1440, 900)
        self.data_dir = resolve_data_dir(str(data_dir) if data_dir else None)
        self.store = RunStore(self.data_dir)          # the GUI thread's own connection
        self.runner = TrainingRunner(self.data_dir, self)   # the training thread, start to end
        self.last_error: str | None = None
        self._first_step_at = 0.0

        self.dashboard = Dashboard()
        self.dashboard.setObjectName("dashboard")
        self.dashboard.attach_timer(20)
        self.shown = ShownRuns(self.store, self.dashboard, lambda: (
            f"{self.runner.cfg.algo} (live)" if self.runner.cfg else "live"))
        self.rank_tab = RankTab(self.data_dir, self._policy_copy,
                               lambda: self.runner.busy)
        self.math = MathPanel()
        self.math.setObjectName("mathPanel")
        self.experiments = ExperimentsPanel(self.data_dir)
        self.experiments.setObjectName("experimentsPanel")
        self.tabs = QTabWidget(objectName="mainTabs", documentMode=True)
        for widget, name, tip in (
                (self.dashboard, TABS[0], "Watch a run: reward, KL, β, clip fraction (Ctrl+1)"),
                (self.rank_tab, TABS[1], "Rank samples and train a reward model (Ctrl+2)"),
                (self.math, TABS[2], "The lecture's pictures, marking the run (Ctrl+3)"),
                (self.experiments, TABS[3], "Sweeps over seeds and configs: mean ± spread, "
                                            "and what they show (Ctrl+4)")):
            # A tab's minimum width would be every tab's (a stack is as wide as its widest
            # page) and push the window past a 1366 px screen: Rank, Math and Experiments
            # scroll instead (Experiments alone asked for 781 px: 12 px too many beside the
            # docks once the samples showed).
            page = widget if widget is self.dashboard else _scrolling(widget)
            self.tabs.addTab(page, name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, tip)
        self.setCentralWidget(self.tabs)

        self.buttons = RunButtons()
        self.buttons.set_cuda_available(_cuda_available())
        self.panel = HyperparameterPanel()
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.buttons)
        layout.addWidget(self.panel, 1)
        self.runs_panel = RunsPanel()
        self.runs_panel.set_store(self.store)
        self.samples = SamplesPanel()
        self.docks = {
            "hyperparametersDock": self._dock("hyperparametersDock", "Hyperparameters", left,
                                              Qt.LeftDockWidgetArea),
            "samplesDock": self._dock("samplesDock", "Samples", self.samples,
                                      Qt.RightDockWidgetArea),
            "runsDock": self._dock("runsDock", "Runs", self.runs_panel, Qt.LeftDockWidgetArea),
        }
        self.splitDockWidget(self.docks["hyperparametersDock"], self.docks["runsDock"],
                             Qt.Vertical)
        self.resizeDocks([self.docks["hyperparametersDock"], self.docks["samplesDock"]],
                         [360, 400], Qt.Horizontal)

        self.progress = QProgressBar()
        self.progress.setObjectName("runProgress")
        self.progress.setMinimumWidth(220)
        self.progress.setMaximumWidth(300)
        self.progress.setVisible(False)
        self.status_text = QLabel("Ready")
        self.status_text.setObjectName("runStatus")
        self.statusBar().addPermanentWidget(self.status_text, 1)
        self.statusBar().addPermanentWidget(self.progress)

        say = self.status_text.setText
        self.recovery = RunRecovery(self, self.store, self.panel, lambda: self.runner.busy,
                                    self.buttons.start_button, say, self._begin,
                                    lambda: self.live_series, self.shown.redraw)
        self.rankings_files = RankingsFiles(self, self.rank_tab, self._ranking_task, say)
        self.feedback = FeedbackLink(self.runner, self.rank_tab, self.panel, say,
                                     self.show_tab, self.dashboard, self._steps_shown)
        actions = build_menus(
            self, tabs=self.tabs, docks=self.docks, data_dir=self.data_dir,
            start=self.start_run, stop=self.runner.stop,
            request_round=self.feedback.request_round,
            export_dashboard=lambda kind: export_dashboard(self, self.dashboard, kind, say),
            import_rankings=self.rankings_files.import_rankings,
            export_rankings=self.rankings_files.export_rankings,
            show_about=lambda: make_about_box(self).open(),
            toggle_run=self.toggle_run)
        self.start_action, self.stop_action = actions["start"], actions["stop"]
        self._connect()
        self._store_mark = self.store.change_mark()
        self.experiments.set_store(self.store)
        self._follow_timer = QTimer(self)
        self._follow_timer.timeout.connect(self._poll_overlays)
        self._follow_timer.start(1000)
        self._settings_restored = restore and restore_layout(self, self.panel)
        self._config_changed(self.panel.config())
        self._list_checkpoints()

    def _dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        c = self.runner
        self.buttons.start_button.clicked.connect(self.start_run)
        self.buttons.pause_button.clicked.connect(c.toggle_pause)
        self.buttons.stop_button.clicked.connect(c.stop)
        self.buttons.device.currentTextChanged.connect(self._device_chosen)
        c.stateChanged.connect(self._state_changed)
        c.runStarted.connect(self._run_started)
        c.phase.connect(self._phase)
        c.stepArrived.connect(self._step)
        c.runEnded.connect(self._run_ended)
        c.runFailed.connect(self._run_failed)
        self.panel.configChanged.connect(self._config_changed)
        self.panel.validityChanged.connect(
            lambda ok: self.buttons.start_button.setEnabled(ok and not c.busy))
        self.panel.liveEditRequested.connect(self._live_edit)
        self.runs_panel.openRequested.connect(self.open_run)
        self.runs_panel.overlayChanged.connect(self.set_overlays)
        self.runs_panel.runDeleted.connect(self._run_deleted)
        self.runs_panel.resumeRequested.connect(self.recovery.resume_run)
        self.runs_panel.forkRequested.connect(self.recovery.fork_run)
        c.roundRequested.connect(self.feedback.round_requested)
        self.rank_tab.roundDone.connect(self.feedback.round_ranked)
        self.rank_tab.useModelRequested.connect(self.feedback.use_reward_model)
        self.rank_tab.useDpoRequested.connect(self.feedback.use_dpo)
        self.tabs.currentChanged.connect(self._tab_changed)

    # --- run control
    def toggle_run(self) -> None:
        if self.runner.state == IDLE:
            self.start_run()
        elif self.runner.state != STOPPING:
            self.runner.toggle_pause()

    def start_run(self) -> None:
        cfg = self.panel.config()
        if cfg is None:
            self.status_text.setText("Fix the highlighted settings first.")
            return
        if self.runner.busy:
            return
        try:
            plan = self.recovery.fork_plan(cfg)
        except ValueError as error:
            self.recovery.refused("Cannot fork", str(error))
            return
        self.recovery.fork_done()
        self._begin(cfg, plan, "Loading the base model…")

    def _begin(self, cfg: RunConfig, plan, text: str) -> None:
        """Start `cfg` as a new run, or carry on `plan` (a resume or fork;
        core.store.train_state)."""
        # a resume or fork shows the stored steps it starts from; new ones append
        self.shown.start_live(load_run_series(self.store, plan.run_id, before=plan.step)
                              if plan is not None else RunSeries())
        self.samples.clear()
        self.dashboard.show_warning(None)
        task = get_task(cfg.task)
        self.samples.set_reward_range(*task.reward_range)
        self.samples.set_columns(cfg.reward_source != "true")
        self._show_kl_target(cfg)
        self.shown.redraw()
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(plan.step if plan else 0)
        self.progress.setVisible(True)
        self._first_step_at = 0.0
        self.status_text.setText(text)
        self.runner.start(cfg, resume=plan)

    @Slot(str)
    def _state_changed(self, state: str) -> None:
        self.buttons.show_state(state)
        self.panel.set_running(state != IDLE)
        self.start_action.setEnabled(state == IDLE)
        self.stop_action.setEnabled(state not in (IDLE, STOPPING))
        if state == PAUSED:
            self.status_text.setText("Paused — press Space or Resume to go on.")
        elif state == STOPPING:
            self.status_text.setText("Stopping after the current step…")
        elif state == STARTING:
            self.progress.setVisible(True)

    @Slot(str)
    def _run_started(self, run_id: str) -> None:
        self.shown.went_live(run_id)
        self.runs_panel.refresh()
        self.runs_panel.mark_live(run_id)
        self.shown.redraw()

    @Slot(str, int, int)
    def _phase(self, name: str, done: int, total: int) -> None:
        self.progress.setRange(0, total)
        self.progress.setValue(done)
        # set-up or a round's model update: its own count, not the steps' ETA from before it
        self.progress.setFormat(f"{name}: %v/%m")
        self.status_text.setText(f"{name[:1].upper()}{name[1:]}: {done}/{total}")

    @Slot(object)
    def _step(self, update) -> None:
        if self.live_series is None:
            return
        metrics = update.metrics_dict()
        self.live_series.append(metrics)
        for event in update.events_list():
            self.live_series.add_event(format_changes(event), update.step,
                                       metrics.get("time_s"))
            if event.get("kind") == "set":
                self._edits_applied(event.get("changes") or {})
            if event.get("kind") == "feedback_round":
                self.rank_tab.round_result(event)
        self.math.set_run_values({**metrics, **self._run_knobs(cfg := self.runner.cfg)})
        self._check_hacking()
        samples = update.samples_list()
        if samples:
            self.samples.show_samples(update.step, samples)
        done = update.step + 1
        now = time.monotonic()
        if not self._first_step_at:
            self._first_step_at = now - metrics.get("perf/step_s", 0.0)
        rate = done / max(now - self._first_step_at, 1e-6)
        eta = (cfg.steps - done) / rate if rate > 0 else 0
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(done)
        self.progress.setFormat(f"%v/%m · ETA {int(eta // 60)}:{int(eta % 60):02d}")
        paused = " (paused)" if self.runner.state == PAUSED else ""
        self.status_text.setText(
            f"Step {done}/{cfg.steps}{paused} · {rate:.2f} steps/s · "
            f"reward {metrics.get('reward/mean', float('nan')):+.3f} · "
            f"true {metrics.get('reward/true_mean', float('nan')):+.3f} · "
            f"KL {metrics.get('kl/mean', float('nan')):.3f} · β {metrics.get('kl/beta', 0):.3g}")

    @Slot(str, str)
    def _run_ended(self, run_id: str, status: str) -> None:
        self.progress.setVisible(False)
        steps = self._steps_shown()
        self.status_text.setText(f"Run {run_id} {status} after {steps} steps — saved.")
        self.runs_panel.refresh()
        self.runs_panel.mark_live(None)
        self.rank_tab.panel.cancel_round()
        self._list_checkpoints()
        self.recovery.explain_end(run_id, status, steps)

    @Slot(str, str)
    def _run_failed(self, run_id: str, text: str) -> None:
        self.progress.setVisible(False)
        self.runs_panel.refresh()
        self.runs_panel.mark_live(None)
        if run_id:
            self.last_error = text
        self.recovery.explain_failure(run_id, text)

    def _steps_shown(self) -> int:
        reward = self.live_series.get("reward/mean") if self.live_series else None
        return len(reward) if reward is not None else 0

    def _policy_copy(self):
        """A Future of the running policy's copy for the Rank tab, or None with no run."""
        control = self.runner.control
        return None if control is None else control.request_snapshot()

    def _check_hacking(self) -> None:
        """The banner over the plots when the run's own signals say its learned reward is being
        hacked (core.reward_learning.hacking), hidden when they no longer do."""
        from core.reward_learning.hacking import displacement, warning

        def values(name):
            series = self.live_series.get(name)
            return [] if series is None else list(series.values)

        self.dashboard.show_warning(warning(values("rm/disagreement_ratio"),
                                            values("rm/fresh_accuracy"))
                                    or displacement(values("dpo/logp_chosen")))

    # --- live edits: the panel shows a value as applied only once a step echoes it
    def _live_edit(self, changes: dict) -> None:
        try:
            control = self.runner.control
            if control is None:
                raise ValueError("no run is going")
            queued = control.request_changes(**changes)
        except ValueError as error:
            self.panel.edits_refused(changes, str(error))
            self.status_text.setText(f"Not applied: {error}")
            return
        self.panel.edits_pending(changes, queued=queued)
        text = ", ".join(f"{k} = {v:g}" if isinstance(v, float) else f"{k} = {v}"
                         for k, v in changes.items())
        when = "once set-up ends" if queued else "at the next step"
        self.status_text.setText(f"{text} applies {when}.")

    @Slot(dict, str)
    def _edits_applied(self, changes: dict) -> None:
        self.panel.edits_applied(changes)
        if "kl_target" in changes and self.runner.cfg is not None:
            self._show_kl_target(self.runner.cfg.with_changes(kl_target=changes["kl_target"]))

    # --- configuration shown, device
    def _config_changed(self, cfg: RunConfig | None) -> None:
        if cfg is None:
            return
        if self.buttons.device.currentText() != cfg.device:
            self.buttons.device.blockSignals(True)
            self.buttons.device.setCurrentText(cfg.device)
            self.buttons.device.blockSignals(False)
        if not self.runner.busy:
            self._show_kl_target(cfg)
            self.math.set_run_values(self._run_knobs(cfg))
        self.rank_tab.set_task(cfg.task)

    def _device_chosen(self, device: str) -> None:
        cfg = self.panel.config()
        if cfg is not None and cfg.device != device:
            self.panel.set_config(cfg.with_changes(device=device))

    def _show_kl_target(self, cfg: RunConfig) -> None:
        adaptive = cfg.kl_controller == "adaptive" and cfg.algo != "grpo"
        self.dashboard.set_kl_target(cfg.kl_target if adaptive else None)

    # --- past runs (ShownRuns holds them)
    @property
    def live_series(self) -> RunSeries | None:
        return self.shown.live_series

    @live_series.setter
    def live_series(self, series: RunSeries) -> None:
        self.shown.start_live(series)

    @property
    def live_id(self) -> str | None:
        return self.shown.live_id

    def open_run(self, run_id: str) -> None:
        if not self.shown.open(run_id, self.runner.busy):
            return
        cfg = RunConfig.from_dict(self.store.run_config(run_id))
        self._show_kl_target(cfg)
        self.samples.set_reward_range(*get_task(cfg.task).reward_range)
        self.samples.set_columns(cfg.reward_source != "true")
        last = self.store.samples(run_id)
        if last:
            self.samples.show_samples(last[0]["step"], last)
        self.shown.redraw()
        self.recovery.say_how_it_ended(run_id)

    def set_overlays(self, run_ids: list) -> None:
        self.shown.set_overlays(run_ids)

    def _poll_overlays(self) -> None:
        self.shown.poll()
        mark = self.store.change_mark()
        if self.runner.busy or mark != self._store_mark:
            # the live run's step count, or runs another process wrote (a CLI run, a sweep)
            self._store_mark = mark
            self.runs_panel.refresh()

    def _run_deleted(self, run_id: str) -> None:
        self.shown.forget(run_id)

    # --- tabs, checkpoints offered for sampling, the run's knobs on the Math tab
    def show_tab(self, widget) -> None:
        """Bring the tab holding `widget` (the dashboard, the Rank tab, the Math panel) forward."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or getattr(page, "widget", lambda: None)() is widget:
                self.tabs.setCurrentIndex(i)

    def current_tab(self):
        page = self.tabs.currentWidget()
        return page if page is self.dashboard else page.widget()

    def _tab_changed(self, index: int) -> None:
        # The samples belong to watching; ranking and the math need the width.
        self.docks["samplesDock"].setVisible(index == 0)

    def _list_checkpoints(self) -> None:
        items = []
        for info in self.store.list_runs()[:12]:
            for step, path in self.store.checkpoints(info.id)[-1:]:
                items.append((f"{info.algo} {info.task} {info.id[9:15]} step {step}", str(path)))
        self.rank_tab.set_checkpoints(items)

    @staticmethod
    def _run_knobs(cfg: RunConfig) -> dict:
        return {k: getattr(cfg, k) for k in ("rank_scheme", "rank_lam", "clip_eps", "kl_target")} \
            | {"clip_eps_high": cfg.clip_high}

    def _ranking_task(self) -> str:
        cfg = self.panel.config()
        return cfg.task if cfg is not None else self.rank_tab.task

    def _fit_to_screen(self, width: int, height: int) -> None:
        """The preferred size, but never larger than the screen (1366 x 768 laptops cut the
        samples dock and the runs list off)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            width, height = min(width, room.width()), min(height, room.height())
        self.resize(width, height)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.runner.busy:
            self.status_text.setText("Stopping the run before closing…")
        self.runner.shutdown()
        # The worker's last signals may still sit in the event queue; the window is done with them.
        self.runner.blockSignals(True)
        self._follow_timer.stop()
        self.dashboard.detach_timer()
        save_layout(self, self.panel)
        self.rank_tab.shutdown()
        self.experiments.shutdown()
        self.experiments.timer.stop()
        self.store.close()
        super().closeEvent(event)
