"""The Experiments tab draws each config's mean and band from stored trials, fills the summary,
follows trials as they land, and exports PNG, SVG and CSV."""

import numpy as np
import pyqtgraph as pg
import pytest

from core.store.runs import RunStore
from core.sweeps.spec import SweepSpec
from explorer.panels.experiments import ExperimentsPanel


def _sweep(store, steps=20):
    spec = SweepSpec("hand", (("low", {"lr": 1e-5}), ("high", {"lr": 1e-4})), seeds=(0, 1),
                     base={"steps": steps})
    sweep = store.create_sweep(spec.name, spec.to_json())
    runs = {}
    for label, seed in spec.trials():
        run = store.create_run(spec.config(label, seed).to_dict(), "sentiment", "grpo", "true")
        store.tag_run(sweep, run, label, seed)
        runs[label, seed] = run
    return sweep, runs


def _log(store, run, values):
    for step, v in enumerate(values):
        store.log_step(run, step, {"reward/true_mean": v, "kl/mean": 0.1})


@pytest.fixture
def panel(qtbot, tmp_path):
    store = RunStore(tmp_path)
    widget = ExperimentsPanel(tmp_path)
    qtbot.addWidget(widget)
    widget.resize(1200, 700)
    widget.show()
    yield widget, store
    widget.timer.stop()
    store.close()


def _curves(widget):
    return {c.name(): c for c in widget.plot.listDataItems() if c.name()}


def test_a_band_of_mean_and_sd_over_seeds_from_stored_runs(panel):
    widget, store = panel
    sweep, runs = _sweep(store)
    _log(store, runs["high", 0], [0.0, 1.0, 2.0])
    _log(store, runs["high", 1], [2.0, 3.0, 4.0])
    _log(store, runs["low", 0], [0.5, 0.5, 0.5])
    widget.set_store(store)
    assert widget.sweep_id == sweep
    assert widget.metric_box.currentText() == "reward/true_mean"
    curves = _curves(widget)
    high = curves["high (n=2)"]
    x, y = high.getData()
    assert x.tolist() == [0, 1, 2] and y.tolist() == [1.0, 2.0, 3.0]
    # a band around the two-seed config only (one seed has no spread to show)
    fills = [i for i in widget.plot.getPlotItem().items if isinstance(i, pg.FillBetweenItem)]
    assert len(fills) == 1
    upper = fills[0].curves[0].getData()[1]
    assert np.allclose(upper, [1 + np.sqrt(2), 2 + np.sqrt(2), 3 + np.sqrt(2)])
    # min-max instead of sd
    widget.band.setCurrentText("min–max")
    fills = [i for i in widget.plot.getPlotItem().items if isinstance(i, pg.FillBetweenItem)]
    assert fills[0].curves[0].getData()[1].tolist() == [2.0, 3.0, 4.0]
    # the summary table: one row per config, final mean ± sd
    cells = {widget.table.item(r, 0).text(): widget.table.item(r, 2).text()
             for r in range(widget.table.rowCount())}
    # final = mean of the last 10 steps: (1 + 3) / 2 over the two seeds
    assert cells["high"] == "+2.00 ± 1.41" and cells["low"].startswith("+0.50")
    assert "Highest final reward/true_mean: high" in widget.findings.text()


def test_it_follows_trials_as_another_process_writes_them(panel, qtbot):
    widget, store = panel
    sweep, runs = _sweep(store)
    widget.set_store(store)
    assert not _curves(widget)
    with RunStore(store.data_dir) as writer:   # another connection, as the sweep's driver
        _log(writer, runs["low", 1], [0.1, 0.2])
    widget.poll()
    assert _curves(widget)["low (n=1)"].getData()[1].tolist() == [0.1, 0.2]
    with RunStore(store.data_dir) as writer:
        writer.log_step(runs["low", 1], 2, {"reward/true_mean": 0.3})
    widget.poll()
    assert _curves(widget)["low (n=1)"].getData()[1].tolist() == [0.1, 0.2, 0.3]
    assert "0/4 trials done, 4 running" in widget.status.text()


def test_exports_png_svg_and_csv(panel, tmp_path):
    widget, store = panel
    sweep, runs = _sweep(store)
    _log(store, runs["high", 0], [0.0, 1.0])
    _log(store, runs["high", 1], [2.0, 3.0])
    widget.set_store(store)
    png = widget.export_png(tmp_path / "f.png")
    svg = widget.export_svg(tmp_path / "f.svg")
    table = widget.export_csv(tmp_path / "f.csv")
    assert png.read_bytes()[:4] == b"\x89PNG"
    assert "<svg" in svg.read_text()[:500]
    text = table.read_text().splitlines()
    assert text[0].startswith("config,seeds,final_mean")
    assert "high,1,2,1.41421,1,3,2" in text   # step 1: mean, sd, min, max, seeds


def test_the_window_has_the_tab_and_lists_runs_another_process_writes(qtbot, tmp_path):
    from PySide6.QtWidgets import QMenu

    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    win.show()
    assert win.tabs.tabText(3) == "Experiments"
    view = win.menuBar().findChild(QMenu, "viewMenu")
    by_key = {a.shortcut().toString(): a.text() for a in view.actions()}
    assert by_key["Ctrl+4"] == "&Experiments"
    assert win.runs_panel.run_ids() == []
    with RunStore(tmp_path) as writer:   # a sweep's driver in another process, say
        sweep, runs = _sweep(writer)
        _log(writer, runs["low", 0], [0.1])
    win._poll_overlays()   # the window's 1 s timer
    assert sorted(win.runs_panel.run_ids()) == sorted(runs.values())
    win.show_tab(win.experiments)   # the tab scrolls: its page holds the panel
    win.experiments.poll()
    assert win.experiments.sweep_id == sweep
    win.close()


def test_run_preset_starts_the_cli_sweep_in_its_own_process_and_stop_sends_sigterm(
        panel, monkeypatch):
    from PySide6.QtCore import QProcess

    widget, store = panel
    widget.set_store(store)
    calls = []
    monkeypatch.setattr(QProcess, "start", lambda self: calls.append(("start", self.program(),
                                                                       self.arguments())))
    monkeypatch.setattr(QProcess, "terminate", lambda self: calls.append(("terminate",)))
    widget.preset.setCurrentText("overoptimisation")
    widget.scale.setCurrentText("full")
    widget.run_button.click()
    (kind, program, args), = calls
    assert args[:5] == ["-m", "explorer.app", "sweep", "overoptimisation", "--scale"]
    assert args[5] == "full" and args[-2:] == ["--data-dir", str(store.data_dir)]
    assert not widget.run_button.isEnabled() and widget.stop_button.isEnabled()
    widget.stop_button.click()
    assert calls[-1] == ("terminate",)
    widget._process_ended(143, None)   # as the process reports when it has stopped
    assert widget.run_button.isEnabled() and not widget.stop_button.isEnabled()
