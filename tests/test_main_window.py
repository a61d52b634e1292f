"""The explorer window driven as a person would, offscreen: start, watch, edit, stop, export,
compare, close. Every test must leave no training thread running."""

import xml.etree.ElementTree as ET

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QImage

from core.config import RunConfig
from core.runs import RunStore
from core.trainer import Trainer, default_checkpoint

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")

FAST = dict(task="arithmetic", prompts_per_step=2, group_size=2, threads=1)


@pytest.fixture
def window(qtbot, tmp_path):
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    win.show()
    yield win
    win.close()
    assert not win.controller.busy, "the training thread outlived the window"


def start(window, qtbot, **changes):
    cfg = RunConfig.for_algo(changes.pop("algo", "grpo"), **{**FAST, **changes})
    window.panel.set_config(cfg)
    assert window.panel.config() == cfg
    qtbot.mouseClick(window.controls.start_button, Qt.LeftButton)


def plotted_points(window) -> int:
    panel = window.dashboard.panel("reward")
    return max((len(item.xData) for item in panel.data_items() if item.xData is not None),
               default=0)


def test_start_from_the_gui_plots_points_and_finishes(window, qtbot):
    start(window, qtbot, steps=4)
    qtbot.waitUntil(lambda: window.controller.busy, timeout=5000)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60_000)
    qtbot.waitUntil(lambda: plotted_points(window) >= 4, timeout=5000)
    runs = RunStore(window.data_dir).list_runs()
    assert runs[0].status == "finished" and runs[0].steps_done == 4
    assert window.samples.current_step() == 3 and window.samples.model.rowCount() > 0
    assert "finished after 4 steps" in window.status_text.text()


def test_stop_takes_effect_within_a_step_and_saves(window, qtbot):
    start(window, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: window.live_series is not None
                    and window.live_series.n_steps >= 2, timeout=60_000)
    qtbot.mouseClick(window.controls.stop_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=30_000)
    run = RunStore(window.data_dir).list_runs()[0]
    assert run.status == "stopped" and run.steps_done >= 2


def test_pause_with_space_and_live_edit_is_recorded(window, qtbot):
    start(window, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: window.live_series is not None
                    and window.live_series.n_steps >= 1, timeout=60_000)
    window.panel.liveEditRequested.emit({"lr": 7e-5})
    qtbot.waitUntil(lambda: len(window.live_series.events) >= 1, timeout=30_000)
    qtbot.keyClick(window, Qt.Key_Space)
    qtbot.waitUntil(lambda: window.controller.state == "paused", timeout=5000)
    window.controller.stop()
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=30_000)
    store = RunStore(window.data_dir)
    run_id = store.list_runs()[0].id
    events = store.events(run_id)
    assert events and events[0]["payload"]["changes"] == {"lr": 7e-5}
    assert "lr" in window.live_series.events[0][2]


def test_closing_the_window_mid_run_stops_and_joins(qtbot, tmp_path):
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    win.show()
    start(win, qtbot, steps=100_000)
    qtbot.waitUntil(lambda: win.live_series is not None and win.live_series.n_steps >= 1,
                    timeout=60_000)
    thread = win.controller.thread
    win.close()
    assert not win.controller.busy and (thread is None or not thread.isRunning())
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
    qtbot.waitUntil(lambda: not window.controller.busy and plotted_points(window) >= 3,
                    timeout=60_000)
    start(window, qtbot, steps=3, algo="reinforce")
    qtbot.waitUntil(lambda: window.live_id is not None, timeout=10_000)
    qtbot.waitUntil(lambda: not window.controller.busy, timeout=60_000)
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
