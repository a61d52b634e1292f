"""Live edits in the hyperparameter panel: a row shows an edit as applied only once a step echoes
it, and an edit the trainer refuses goes back to the trainer's value and says why.

`Relay` plays the window and the trainer without a thread: it answers each request the way
`MainWindow._live_edit` does and applies its mailbox on `step()`. The window with a real run is
tested in test_main_window.py.
"""

import pytest
from PySide6.QtCore import Qt

from core.config import RunConfig
from explorer.panels.hyperparameters import HyperparameterPanel
from explorer.panels.knob_editors import ERROR_COLOUR, format_number
from explorer.panels.live_edits import LIVE_HINT


class Relay:
    def __init__(self, panel, refuse=None, queued=False):
        self.panel, self.refuse, self.queued = panel, refuse, queued
        self.mailbox: dict = {}
        panel.liveEditRequested.connect(self.request)

    def request(self, changes):
        if self.refuse is not None:
            self.panel.edits_refused(changes, self.refuse)
            return
        self.mailbox.update(changes)
        self.panel.edits_pending(changes, queued=self.queued)

    def step(self):
        changes, self.mailbox = self.mailbox, {}
        if changes:
            self.panel.edits_applied(changes)


@pytest.fixture
def panel(qtbot):
    widget = HyperparameterPanel(RunConfig.for_algo("ppo", lr=3e-5))  # the trainer's lr
    qtbot.addWidget(widget)
    widget.set_running(True)
    return widget


def edit(qtbot, panel, name, text, finish=True):
    line = panel.editors[name].editor
    line.selectAll()
    qtbot.keyClicks(line, text)
    if finish:
        qtbot.keyClick(line, Qt.Key.Key_Return)


def test_an_edit_is_pending_until_a_step_echoes_it(panel, qtbot):
    relay = Relay(panel)
    trainers = panel.config().lr
    edit(qtbot, panel, "lr", "1e-4")
    row = panel.editors["lr"]
    assert row.value() == 1e-4
    assert "pending" in row.hint and format_number(trainers) in row.hint  # what the run uses
    assert panel.config().lr == trainers
    assert panel.pending_edits() == {"lr": 1e-4}
    relay.step()
    assert panel.config().lr == 1e-4
    assert row.hint == LIVE_HINT and panel.pending_edits() == {}


def test_a_refused_edit_goes_back_to_the_trainers_value(panel, qtbot):
    relay = Relay(panel, refuse="lr above 1e-3 is refused")
    trainers = panel.config().lr
    edit(qtbot, panel, "lr", "5e-3")
    row = panel.editors["lr"]
    assert row.value() == trainers and panel.config().lr == trainers
    assert row.hint == "✕ 0.005 not applied: lr above 1e-3 is refused"
    assert ERROR_COLOUR in row.message.styleSheet() and row.message.isVisibleTo(panel)
    assert panel.pending_edits() == {} and relay.mailbox == {}


def test_a_refused_edit_keeps_the_one_already_in_flight(panel, qtbot):
    relay = Relay(panel)
    edit(qtbot, panel, "lr", "1e-4")
    relay.refuse = "refused"
    edit(qtbot, panel, "lr", "5e-3")
    assert panel.editors["lr"].value() == 1e-4  # what the trainer will have
    relay.step()
    assert panel.config().lr == 1e-4


def test_an_earlier_echo_leaves_a_later_edit_pending(panel, qtbot):
    relay = Relay(panel)
    edit(qtbot, panel, "lr", "1e-4")
    relay.step()  # the trainer took 1e-4 at a step boundary...
    applied = relay.panel.config().lr
    edit(qtbot, panel, "lr", "2e-4")  # ...and the user edited again before it showed
    assert applied == 1e-4
    assert panel.editors["lr"].value() == 2e-4 and "pending" in panel.editors["lr"].hint
    relay.step()
    assert panel.config().lr == 2e-4 and panel.pending_edits() == {}


def test_an_echo_does_not_overwrite_a_value_being_typed(panel, qtbot):
    relay = Relay(panel)
    edit(qtbot, panel, "lr", "1e-4")
    edit(qtbot, panel, "lr", "2e-", finish=False)
    relay.step()
    assert panel.editors["lr"].editor.text() == "2e-"
    qtbot.keyClicks(panel.editors["lr"].editor, "4")
    qtbot.keyClick(panel.editors["lr"].editor, Qt.Key.Key_Return)
    assert panel.config().lr == 1e-4 and panel.pending_edits() == {"lr": 2e-4}


def test_edits_held_during_setup_show_as_waiting_for_it(panel, qtbot):
    relay = Relay(panel, queued=True)
    trainers = panel.config().lr
    edit(qtbot, panel, "lr", "1e-4")
    row = panel.editors["lr"]
    assert "once set-up ends" in row.hint and panel.config().lr == trainers
    assert relay.mailbox == {"lr": 1e-4} and panel.pending_edits() == {"lr": 1e-4}


def test_the_run_ending_drops_edits_that_never_landed(panel, qtbot):
    relay = Relay(panel)
    trainers = panel.config().lr
    edit(qtbot, panel, "lr", "1e-4")
    assert relay.mailbox == {"lr": 1e-4}  # taken, but the run stops before a step applies it
    panel.set_running(False)
    assert panel.editors["lr"].value() == trainers == panel.config().lr
    assert panel.editors["lr"].hint is None and panel.pending_edits() == {}
