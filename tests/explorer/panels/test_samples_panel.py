"""The samples panel: rows, reward colours, the true-reward column, history and speed."""

import time

from PySide6.QtCore import Qt

from explorer.panels.samples import HISTORY_STEPS, SamplesPanel


def _samples(step, n=8, true_offset=0.0):
    return [{"prompt": f"p{i} ", "completion": f"step {step} text {i}", "reward": i / (n - 1),
             "true_reward": i / (n - 1) - true_offset} for i in range(n)]


def _panel(qtbot):
    panel = SamplesPanel()
    qtbot.addWidget(panel)
    panel.resize(360, 500)
    panel.set_reward_range(0.0, 1.0)
    return panel


def _cell(panel, row, column, role=Qt.ItemDataRole.DisplayRole):
    return panel.model.index(row, panel.model.columns().index(column)).data(role)


def test_empty_state_then_rows_with_texts(qtbot):
    panel = _panel(qtbot)
    assert "reward hacking" in panel.empty.text()
    assert panel._stack.currentWidget() is panel.empty
    panel.show_samples(7, _samples(7))
    assert panel._stack.currentWidget() is panel.table
    assert panel.model.rowCount() == 8
    assert _cell(panel, 3, "Text") == "p3 step 7 text 3"
    assert _cell(panel, 3, "Reward") == f"{3 / 7:.2f}"
    assert "step 7 text 3" in _cell(panel, 3, "Text", Qt.ItemDataRole.ToolTipRole)
    assert panel.header.text() == "Step 7 · mean reward 0.50"
    panel.clear()
    assert panel.model.rowCount() == 0 and panel._stack.currentWidget() is panel.empty


def test_best_reward_is_greener_than_worst(qtbot):
    panel = _panel(qtbot)
    panel.show_samples(0, _samples(0))
    worst = _cell(panel, 0, "Reward", Qt.ItemDataRole.BackgroundRole)
    best = _cell(panel, 7, "Reward", Qt.ItemDataRole.BackgroundRole)
    assert best.green() - best.red() > 40 and worst.red() - worst.green() > 40
    for colour in (worst, best):  # the text colour is chosen to contrast with the cell
        text = _cell(panel, 0 if colour is worst else 7, "Reward", Qt.ItemDataRole.ForegroundRole)
        assert abs(text.lightness() - colour.lightness()) > 90


def test_true_column_is_automatic_and_can_be_forced(qtbot):
    panel = _panel(qtbot)
    panel.show_samples(0, _samples(0))  # true == reward: one column is enough
    assert panel.model.columns() == ["Reward", "Text"]
    panel.show_samples(1, _samples(1, true_offset=0.5))
    assert panel.model.columns() == ["Reward", "True", "Text"]
    assert _cell(panel, 7, "True") == "0.50"
    assert "true 0.00" in panel.header.text()
    panel.set_columns(False)
    assert panel.model.columns() == ["Reward", "Text"]
    panel.set_columns(True)
    panel.show_samples(2, _samples(2))
    assert panel.model.columns() == ["Reward", "True", "Text"]


def test_history_look_back_and_follow(qtbot):
    panel = _panel(qtbot)
    for step in range(HISTORY_STEPS + 20):
        panel.show_samples(step, _samples(step))
    steps = panel.history_steps()
    assert len(steps) == HISTORY_STEPS and steps[0] == 20
    panel.slider.setValue(5)  # the user drags back
    assert panel.current_step() == 25 and "step 25 " in _cell(panel, 0, "Text")
    panel.show_samples(999, _samples(999))  # a new step does not yank the view away
    assert panel.current_step() == 25 and panel.latest_button.isEnabled()
    assert "latest: 999" in panel.header.text()
    panel.latest_button.click()
    assert panel.current_step() == 999 and not panel.latest_button.isEnabled()


def test_two_hundred_updates_are_fast(qtbot):
    panel = _panel(qtbot)
    panel.show()
    qtbot.waitExposed(panel)
    batches = [_samples(step, n=64, true_offset=0.2) for step in range(200)]
    start = time.perf_counter()
    for step, batch in enumerate(batches):
        panel.show_samples(step, batch)
        panel.table.viewport().repaint()  # paint now, as the 10 Hz refresh would
    assert time.perf_counter() - start < 1.0
