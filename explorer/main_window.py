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
from explorer.identity import APP_DISPLAY_NAME
from explorer.panels.experiments import ExperimentsPanel
from explorer.panels.hyperparameters import HyperparameterPanel
from explorer.panels.math_panel import MathPanel
from explorer.panels.run_loading import RunFollower, format_changes, load_run_series
from explorer.panels.runs import RunsPanel
from explorer.panels.samples import SamplesPanel
from explorer.plots.dashboard import Dashboard
from explorer.plots.series import RunSeries
from explorer.plots.style import run_color
from explorer.rank_tab import RankTab
from explorer.run_control import IDLE, PAUSED, STARTING, STOPPING, RunController, RunControls
from explorer.window_feedback import WindowFeedback
from explorer.window_menus import WindowMenus
from explorer.window_resume import WindowResume

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


class MainWindow(WindowMenus, WindowFeedback, WindowResume, QMainWindow):
    def __init__(self, data_dir: str | Path | None = None, restore: bool = True, parent=None):
        super().__init__(parent)
        self.setWindowTitle(APP_DISPLAY_NAME)
        self._fit_to_screen(1440, 900)
        self.data_dir = resolve_data_dir(str(data_dir) if data_dir else None)
        self.store = RunStore(self.data_dir)          # the GUI thread's own connection
        self.controller = RunController(self.data_dir, self)
        self.live_id: str | None = None
        self.live_series: RunSeries | None = None
        self.opened: tuple[str, RunSeries] | None = None
        self.overlays: dict[str, RunFollower] = {}
        self.last_error: str | None = None
        self._first_step_at = 0.0

        self.dashboard = Dashboard()
        self.dashboard.setObjectName("dashboard")
        self.dashboard.attach_timer(20)
        self.rank_tab = RankTab(self.data_dir, self.controller.request_snapshot,
                               lambda: self.controller.busy)
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
            # page) and push the window past a 1366 px screen: Rank and Math scroll instead.
            page = widget if widget in (self.dashboard, self.experiments) else \
                _scrolling(widget)
            self.tabs.addTab(page, name)
            self.tabs.setTabToolTip(self.tabs.count() - 1, tip)
        self.setCentralWidget(self.tabs)

        self.controls = RunControls()
        self.controls.set_cuda_available(_cuda_available())
        self.panel = HyperparameterPanel()
        left = QWidget()
        layout = QVBoxLayout(left)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.controls)
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

        self._build_menus()
        self._connect()
        self._store_mark = self.store.change_mark()
        self.experiments.set_store(self.store)
        self._follow_timer = QTimer(self)
        self._follow_timer.timeout.connect(self._poll_overlays)
        self._follow_timer.start(1000)
        self._settings_restored = restore and self._restore_settings()
        self._config_changed(self.panel.config())
        self._list_checkpoints()

    def _dock(self, name: str, title: str, widget: QWidget, area) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        c = self.controller
        self.controls.start_button.clicked.connect(self.start_run)
        self.controls.pause_button.clicked.connect(c.toggle_pause)
        self.controls.stop_button.clicked.connect(c.stop)
        self.controls.device.currentTextChanged.connect(self._device_chosen)
        c.stateChanged.connect(self._state_changed)
        c.runStarted.connect(self._run_started)
        c.phase.connect(self._phase)
        c.stepArrived.connect(self._step)
        c.runEnded.connect(self._run_ended)
        c.runFailed.connect(self._run_failed)
        self.panel.configChanged.connect(self._config_changed)
        self.panel.validityChanged.connect(
            lambda ok: self.controls.start_button.setEnabled(ok and not c.busy))
        self.panel.liveEditRequested.connect(self._live_edit)
        self.runs_panel.openRequested.connect(self.open_run)
        self.runs_panel.overlayChanged.connect(self.set_overlays)
        self.runs_panel.runDeleted.connect(self._run_deleted)
        self.runs_panel.resumeRequested.connect(self.resume_run)
        self.runs_panel.forkRequested.connect(self.fork_run)
        c.roundRequested.connect(self._round_requested)
        self.rank_tab.roundDone.connect(self._round_ranked)
        self.rank_tab.useModelRequested.connect(self._use_reward_model)
        self.rank_tab.useDpoRequested.connect(self._use_dpo)
        self.tabs.currentChanged.connect(self._tab_changed)

    # --- run control
    def toggle_run(self) -> None:
        if self.controller.state == IDLE:
            self.start_run()
        elif self.controller.state != STOPPING:
            self.controller.toggle_pause()

    def start_run(self) -> None:
        cfg = self.panel.config()
        if cfg is None:
            self.status_text.setText("Fix the highlighted settings first.")
            return
        if self.controller.busy:
            return
        try:
            plan = self._fork_plan(cfg)
        except ValueError as error:
            self._refused("Cannot fork", str(error))
            return
        self._fork_done()
        self._begin(cfg, plan, "Loading the base model…")

    def _begin(self, cfg: RunConfig, plan, text: str) -> None:
        """Start `cfg` as a new run, or carry on `plan` (a resume or fork;
        core.store.train_state)."""
        # a resume or fork shows the stored steps it starts from; new ones append
        self.live_series = (load_run_series(self.store, plan.run_id, before=plan.step)
                            if plan is not None else RunSeries())
        self.live_id = None
        self.opened = None
        self.samples.clear()
        self.dashboard.show_warning(None)
        task = get_task(cfg.task)
        self.samples.set_reward_range(*task.reward_range)
        self.samples.set_columns(cfg.reward_source != "true")
        self._show_kl_target(cfg)
        self._redraw_runs()
        self.progress.setRange(0, cfg.steps)
        self.progress.setValue(plan.step if plan else 0)
        self.progress.setVisible(True)
        self._first_step_at = 0.0
        self.status_text.setText(text)
        self.controller.start(cfg, resume=plan)

    @Slot(str)
    def _state_changed(self, state: str) -> None:
        self.controls.show_state(state)
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
        self.live_id = run_id
        self.runs_panel.refresh()
        self.runs_panel.mark_live(run_id)
        self._redraw_runs()

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
        self.math.set_run_values({**metrics, **self._run_knobs(cfg := self.controller.cfg)})
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
        paused = " (paused)" if self.controller.state == PAUSED else ""
        self.status_text.setText(
            f"Step {done}/{cfg.steps}{paused} · {rate:.2f} steps/s · "
            f"reward {metrics.get('reward/mean', float('nan')):+.3f} · "
            f"true {metrics.get('reward/true_mean', float('nan')):+.3f} · "
            f"KL {metrics.get('kl/mean', float('nan')):.3f} · β {metrics.get('kl/beta', 0):.3g}")

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
            queued = self.controller.request_changes(changes)
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
        if "kl_target" in changes and self.controller.cfg is not None:
            self._show_kl_target(self.controller.cfg.with_changes(kl_target=changes["kl_target"]))

    # --- configuration shown, device
    def _config_changed(self, cfg: RunConfig | None) -> None:
        if cfg is None:
            return
        if self.controls.device.currentText() != cfg.device:
            self.controls.device.blockSignals(True)
            self.controls.device.setCurrentText(cfg.device)
            self.controls.device.blockSignals(False)
        if not self.controller.busy:
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

    # --- past runs
    def _redraw_runs(self) -> None:
        entries = []
        if self.live_series is not None:
            label = f"{self.controller.cfg.algo} (live)" if self.controller.cfg else "live"
            entries.append((label, self.live_series))
        elif self.opened is not None:
            entries.append((self._label(self.opened[0]), self.opened[1]))
        shown = {self.live_id, self.opened[0] if self.opened else None}
        for run_id, follower in self.overlays.items():
            if run_id not in shown:
                entries.append((self._label(run_id), follower.series))
        self.dashboard.set_runs([(label, series, run_color(i))
                                 for i, (label, series) in enumerate(entries)])

    def _label(self, run_id: str) -> str:
        try:
            info = self.store.get_run(run_id)
        except KeyError:
            return run_id
        return info.name or f"{info.algo} {run_id[9:15]}"

    def open_run(self, run_id: str) -> None:
        if run_id == self.live_id and self.live_series is not None:
            return
        if not self.controller.busy:
            self.live_series, self.live_id = None, None
        self.opened = (run_id, load_run_series(self.store, run_id))
        cfg = RunConfig.from_dict(self.store.run_config(run_id))
        self._show_kl_target(cfg)
        self.samples.set_reward_range(*get_task(cfg.task).reward_range)
        self.samples.set_columns(cfg.reward_source != "true")
        last = self.store.samples(run_id)
        if last:
            self.samples.show_samples(last[0]["step"], last)
        self._redraw_runs()
        self._say_how_it_ended(run_id)

    def set_overlays(self, run_ids: list) -> None:
        kept = {rid: f for rid, f in self.overlays.items() if rid in run_ids}
        for rid in run_ids:
            if rid not in kept:
                kept[rid] = RunFollower(self.store, rid)
                kept[rid].poll()
        self.overlays = kept
        self._redraw_runs()

    def _poll_overlays(self) -> None:
        # Runs written by another process (the CLI) keep growing on the plots.
        for rid, follower in self.overlays.items():
            if rid != self.live_id and not follower.done:
                follower.poll()
        mark = self.store.change_mark()
        if self.controller.busy or mark != self._store_mark:
            # the live run's step count, or runs another process wrote (a CLI run, a sweep)
            self._store_mark = mark
            self.runs_panel.refresh()

    def _run_deleted(self, run_id: str) -> None:
        self.overlays.pop(run_id, None)
        if self.opened and self.opened[0] == run_id:
            self.opened = None
        self._redraw_runs()

    def _fit_to_screen(self, width: int, height: int) -> None:
        """The preferred size, but never larger than the screen (1366 x 768 laptops cut the
        samples dock and the runs list off)."""
        screen = self.screen() or QApplication.primaryScreen()
        if screen is not None:
            room = screen.availableGeometry()
            width, height = min(width, room.width()), min(height, room.height())
        self.resize(width, height)

    def closeEvent(self, event) -> None:  # noqa: N802 (Qt override)
        if self.controller.busy:
            self.status_text.setText("Stopping the run before closing…")
        self.controller.shutdown()
        # The worker's last signals may still sit in the event queue; the window is done with them.
        self.controller.blockSignals(True)
        self._follow_timer.stop()
        self.dashboard.detach_timer()
        self._save_settings()
        self.rank_tab.shutdown()
        self.experiments.shutdown()
        self.experiments.timer.stop()
        self.store.close()
        super().closeEvent(event)
