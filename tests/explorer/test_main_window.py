"""The explorer window driven as a person would, offscreen: start, watch, edit, stop, export,
compare, close. Every test must leave no training thread running."""

import threading
import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from core.config import RunConfig
from core.rl.trainer import Trainer, default_checkpoint
from core.store.runs import RunStore

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")

FAST = dict(task="arithmetic", prompts_per_step=2, group_size=2, threads=1)
# A learned reward: the run sets up (trains its reward model) before the trainer exists.
LEARNED = dict(reward_source="learned", rm_rankings=24, rm_steps=2, prompts_per_step=2,
               group_size=4)




def start(window, qtbot, **changes):
    cfg = RunConfig.for_algo(changes.pop("algo", "grpo"), **{**FAST, **changes})
    window.panel.set_config(cfg)
    assert window.panel.config() == cfg
    qtbot.mouseClick(window.buttons.start_button, Qt.LeftButton)


def edit_row(window, qtbot, name, text):
    line = window.panel.editors[name].editor
    line.selectAll()
    qtbot.keyClicks(line, text)
    qtbot.keyClick(line, Qt.Key.Key_Return)


@pytest.fixture
def setup_gate(monkeypatch):
    """Holds a run in set-up (at its first progress report) until the test sets the gate or
    the run is stopped (pytest-qt closes the window before fixtures are torn down)."""
    from explorer.worker import TrainingThread

    gate, entered = threading.Event(), threading.Event()
    real = TrainingThread._progress

    def held(self, name, done, total):
        entered.set()
        while not gate.wait(0.05) and not self.control.stop_requested:
            pass
        real(self, name, done, total)

    monkeypatch.setattr(TrainingThread, "_progress", held)
    yield gate, entered
    gate.set()


def refuse_large_lr(monkeypatch):
    """A run control whose check is stricter than the panel's range for lr."""
    from core.rl.run_control import RunControl

    real = RunControl.request_changes

    def strict(self, **changes):
        if changes.get("lr", 0.0) > 1e-3:
            raise ValueError("lr above 1e-3 is refused by this trainer")
        return real(self, **changes)

    monkeypatch.setattr(RunControl, "request_changes", strict)


def plotted_points(window) -> int:
    panel = window.dashboard.panel("reward")
    return max((len(item.xData) for item in panel.data_items() if item.xData is not None),
               default=0)


def test_start_from_the_gui_plots_points_and_finishes(window, qtbot):
    start(window, qtbot, steps=4)
    qtbot.waitUntil(lambda: window.runner.busy, timeout=5000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    qtbot.waitUntil(lambda: plotted_points(window) >= 4, timeout=5000)
    runs = RunStore(window.data_dir).list_runs()
    assert runs[0].status == "finished" and runs[0].steps_done == 4
    assert window.samples.current_step() == 3 and window.samples.model.rowCount() > 0
    assert "finished after 4 steps" in window.status_text.text()


def test_stop_takes_effect_within_a_step_and_saves(window, qtbot):
    start(window, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: window.live_series is not None
                    and window.live_series.n_steps >= 2, timeout=60_000)
    qtbot.mouseClick(window.buttons.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    run = RunStore(window.data_dir).list_runs()[0]
    assert run.status == "stopped" and run.steps_done >= 2


def test_pause_with_space_and_live_edit_is_recorded(window, qtbot):
    start(window, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: window.live_series is not None
                    and window.live_series.n_steps >= 1, timeout=60_000)
    window.panel.liveEditRequested.emit({"lr": 7e-5})
    qtbot.waitUntil(lambda: len(window.live_series.events) >= 1, timeout=30_000)
    qtbot.keyClick(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.runner.state == "paused", timeout=5000)
    window.runner.stop()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    store = RunStore(window.data_dir)
    run_id = store.list_runs()[0].id
    events = store.events(run_id)
    assert events and events[0]["payload"]["changes"] == {"lr": 7e-5}
    assert "lr" in window.live_series.events[0][2]


def test_a_row_edit_is_pending_until_the_trainer_echoes_it(window, qtbot):
    start(window, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: window.live_series is not None
                    and window.live_series.n_steps >= 1, timeout=60_000)
    window.runner.toggle_pause()  # no step boundary passes until the test resumes
    qtbot.waitUntil(lambda: window.runner.state == "paused", timeout=5000)
    trainers = window.panel.config().lr
    edit_row(window, qtbot, "lr", "7e-5")
    row = window.panel.editors["lr"]
    assert row.value() == 7e-5 and "pending" in row.hint
    assert window.panel.config().lr == trainers
    assert "applies at the next step" in window.status_text.text()
    window.runner.toggle_pause()
    qtbot.waitUntil(lambda: window.panel.config().lr == 7e-5, timeout=30_000)
    assert "pending" not in row.hint and window.panel.pending_edits() == {}
    window.runner.stop()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    assert window.panel.config().lr == 7e-5  # the run's last value stays for the next run


def test_an_edit_made_during_setup_applies_once_setup_ends(window, qtbot, setup_gate):
    gate, entered = setup_gate
    start(window, qtbot, steps=100_000, **LEARNED)
    qtbot.waitUntil(entered.is_set, timeout=60_000)
    trainers = window.panel.config().lr
    edit_row(window, qtbot, "lr", "7e-5")
    row = window.panel.editors["lr"]
    assert "once set-up ends" in row.hint and "once set-up ends" in window.status_text.text()
    assert row.value() == 7e-5 and window.panel.config().lr == trainers
    gate.set()
    qtbot.waitUntil(lambda: window.panel.config().lr == 7e-5, timeout=30_000)
    assert "pending" not in row.hint
    window.runner.stop()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    store = RunStore(window.data_dir)
    events = store.events(store.list_runs()[0].id)
    assert events[0]["step"] == 0 and events[0]["payload"]["changes"] == {"lr": 7e-5}


def test_refused_edits_go_back_to_the_trainers_value(window, qtbot, setup_gate, monkeypatch):
    refuse_large_lr(monkeypatch)
    gate, entered = setup_gate
    start(window, qtbot, steps=100_000, **LEARNED)
    qtbot.waitUntil(entered.is_set, timeout=60_000)
    trainers = window.panel.config().lr
    row = window.panel.editors["lr"]
    edit_row(window, qtbot, "lr", "5e-3")  # during set-up: the one run control refuses it now
    assert row.hint == "✕ 0.005 not applied: lr above 1e-3 is refused by this trainer"
    assert row.value() == trainers and window.panel.config().lr == trainers
    assert window.status_text.text().startswith("Not applied")
    gate.set()
    qtbot.waitUntil(lambda: window.live_series.n_steps >= 1, timeout=30_000)
    window.runner.toggle_pause()
    qtbot.waitUntil(lambda: window.runner.state == "paused", timeout=5000)
    edit_row(window, qtbot, "lr", "6e-3")  # mid-run: refused at once, the same way
    assert row.hint == "✕ 0.006 not applied: lr above 1e-3 is refused by this trainer"
    assert row.value() == trainers and window.panel.config().lr == trainers
    assert window.status_text.text().startswith("Not applied")
    window.runner.stop()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=30_000)
    assert window.panel.config().lr == trainers
    store = RunStore(window.data_dir)
    assert store.events(store.list_runs()[0].id) == []


def test_closing_the_window_mid_run_stops_and_joins(qtbot, tmp_path):
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    win.show()
    start(win, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: win.live_series is not None and win.live_series.n_steps >= 1,
                    timeout=60_000)
    thread = win.runner.thread
    win.close()
    assert not win.runner.busy and (thread is None or not thread.isRunning())
    assert RunStore(tmp_path).list_runs()[0].status == "stopped"


def test_a_failing_run_shows_the_traceback_and_keeps_steps(window, qtbot, monkeypatch):
    real = Trainer.step

    def flaky(self):
        if self.step_index == 1:
            raise RuntimeError("injected failure")
        return real(self)

    monkeypatch.setattr(Trainer, "step", flaky)
    start(window, qtbot, steps=5)
    qtbot.waitUntil(lambda: window.last_error is not None, timeout=60_000)
    assert "injected failure" in window.last_error
    from PySide6.QtWidgets import QMessageBox

    box = window.findChild(QMessageBox, "errorBox")
    assert box is not None and "injected failure" in box.detailedText()
    run = RunStore(window.data_dir).list_runs()[0]
    assert run.status == "failed" and run.steps_done == 1


def test_exports_overlay_and_reopen(window, qtbot, tmp_path):
    start(window, qtbot, steps=3, algo="grpo")
    qtbot.waitUntil(lambda: not window.runner.busy and plotted_points(window) >= 3,
                    timeout=60_000)
    start(window, qtbot, steps=3, algo="reinforce")
    qtbot.waitUntil(lambda: window.live_id is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    ids = [r.id for r in RunStore(window.data_dir).list_runs()]
    window.set_overlays(ids)
    legend = window.dashboard.panel("reward").legend
    qtbot.waitUntil(lambda: len(legend.items) >= 2, timeout=5000)
    window.open_run(ids[1])
    qtbot.wait(100)

    out = tmp_path / "out"
    out.mkdir()
    window.dashboard.export_png(out / "d.png", width=1200)
    window.dashboard.export_svg(out / "d.svg")
    window.dashboard.export_csv(out / "d.csv")
    assert QImage(str(out / "d.png")).width() == 1200
    svg = (out / "d.svg").read_text()
    ET.fromstring(svg)
    assert "reward" in svg.lower()
    lines = (out / "d.csv").read_text().splitlines()
    assert lines[0].startswith("run,metric,step")
    runs_in_csv = {line.split(",")[0] for line in lines[1:]}
    assert len(runs_in_csv) == 2


def test_settings_remember_the_last_config(qtbot, tmp_path):
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=True)
    qtbot.addWidget(win)
    cfg = RunConfig.for_algo("ppo", **FAST, steps=12)
    win.panel.set_config(cfg)
    win.close()
    again = MainWindow(data_dir=tmp_path, restore=True)
    qtbot.addWidget(again)
    assert again.panel.config() == cfg
    again.close()


def test_the_window_fits_a_1366_screen_whatever_the_tabs_hold(window):
    """Every tab but Watch scrolls: a stack is as wide as its widest page, and the Experiments
    tab alone once pushed the window 12 px past a 1366-px laptop screen."""
    for i in range(window.tabs.count()):
        page = window.tabs.widget(i)
        assert page is window.dashboard or page.minimumSizeHint().width() < 200, \
            window.tabs.tabText(i)
    docks = sum(d.minimumSizeHint().width() for name, d in window.docks.items()
                if name != "runsDock")   # the runs list shares the left column
    assert window.centralWidget().minimumSizeHint().width() + docks + 250 < 1366
