"""The hyperparameter panel: rows generated from RunConfig metadata, validation, run mode, I/O."""

import html

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import QCheckBox, QComboBox, QLineEdit, QMessageBox, QSpinBox

from core.config import FIELDS, RunConfig, applies, field_info
from explorer.panels.hyperparameters import HyperparameterPanel
from explorer.panels.knob_editors import humanise


@pytest.fixture
def panel(qtbot):
    widget = HyperparameterPanel()
    qtbot.addWidget(widget)
    return widget


def pick(panel, name, value):
    """Choose `value` in a combo row the way a user does (emits the widget's own signals)."""
    combo = panel.editors[name].editor
    combo.setCurrentIndex(combo.findData(value))


def plain(text):
    # Ranges use a no-break space so they never wrap mid-range in the narrow dock; tooltips are
    # rich text, so help text arrives HTML-escaped.
    return html.unescape(text).replace("\u00a0", " ")


def type_into(qtbot, panel, name, text, finish=False):
    edit = panel.editors[name].editor
    edit.selectAll()
    qtbot.keyClicks(edit, text)
    if finish:
        qtbot.keyClick(edit, Qt.Key.Key_Return)


def test_default_panel_gives_the_default_objectives_config(panel):
    assert panel.config() == RunConfig.for_algo(RunConfig.algo)


def test_editor_kind_follows_the_field_type():
    widget = HyperparameterPanel()
    expected = {"whiten_advantages": QCheckBox, "kl_estimator": QComboBox, "group_size": QSpinBox,
                "lr": QLineEdit, "checkpoint": QLineEdit}
    for name, kind in expected.items():
        assert isinstance(widget.editors[name].editor, kind), name
    spin = widget.editors["group_size"].editor
    assert (spin.minimum(), spin.maximum()) == (2, 256)
    assert widget.editors["checkpoint"].browse is not None
    assert set(widget.editors) == set(FIELDS)
    widget.deleteLater()


def test_labels_are_humanised():
    assert humanise("clip_eps") == "Clip ε"
    assert humanise("lr") == "Learning rate"
    assert humanise("beta") == "β"
    assert humanise("gamma") == "γ"
    assert humanise("gae_lambda") == "GAE λ"
    assert humanise("kl_target") == "KL target (nats)"
    assert humanise("prompts_per_step") == "Prompts per step"


def test_switching_to_ppo_shows_its_knobs_and_applies_its_defaults(panel, qtbot):
    with qtbot.waitSignal(panel.configChanged) as blocker:
        pick(panel, "algo", "ppo")
    for name in ("clip_eps", "vf_coef", "gae_lambda"):
        assert panel.is_shown(name), name
    assert not panel.is_shown("grpo_std")
    config = panel.config()
    assert blocker.args[0] == config
    ppo = RunConfig.for_algo("ppo")
    assert (config.epochs, config.minibatches, config.lr) == (ppo.epochs, ppo.minibatches, ppo.lr)
    assert config.epochs > 1 and panel.editors["epochs"].editor.value() == ppo.epochs
    # Every row follows `applies`, not a list kept in the GUI.
    for name in FIELDS:
        if name not in ("task", "algo", "reward_source"):
            assert panel.is_shown(name) == applies(name, "ppo", "true"), name


def test_user_edited_value_survives_switching_objective(panel, qtbot):
    type_into(qtbot, panel, "lr", "3e-4", finish=True)
    panel.editors["epochs"].editor.setValue(3)
    pick(panel, "algo", "ppo")
    config = panel.config()
    assert config.lr == 3e-4
    assert config.epochs == 3  # touched: PPO's 2 does not override it
    assert config.minibatches == RunConfig.for_algo("ppo").minibatches  # untouched: PPO's
    pick(panel, "algo", "grpo")
    assert panel.config().kl_estimator == "k3"
    assert panel.config().lr == 3e-4


def test_reward_source_decides_the_ranking_knobs(panel):
    pick(panel, "reward_source", "ranked")
    assert panel.is_shown("rank_scheme")
    assert not panel.is_shown("rm_rankings")
    pick(panel, "reward_source", "true")
    assert not panel.is_shown("rank_scheme")
    assert not panel.is_shown("annotator_temperature")
    assert panel.findChild(object, "group_rewards").isHidden()


def test_out_of_range_input_is_shown_inline_and_invalidates(panel, qtbot):
    pick(panel, "algo", "ppo")
    with qtbot.waitSignal(panel.validityChanged) as blocker:
        type_into(qtbot, panel, "clip_eps", "5")
    assert blocker.args == [False]
    assert panel.config() is None
    editor = panel.editors["clip_eps"]
    assert not editor.message.isHidden()
    assert "[1e-4, 1]" in plain(editor.message.text())
    assert "border" in editor.editor.styleSheet()
    type_into(qtbot, panel, "clip_eps", "abc", finish=True)  # not a number: still no crash
    assert panel.config() is None
    with qtbot.waitSignal(panel.validityChanged) as blocker:
        type_into(qtbot, panel, "clip_eps", "0.3")
    assert blocker.args == [True]
    assert panel.config().clip_eps == 0.3
    assert editor.message.isHidden()


def test_hiding_an_invalid_row_restores_its_last_valid_value(panel, qtbot):
    pick(panel, "algo", "ppo")
    type_into(qtbot, panel, "gae_lambda", "7")
    assert panel.config() is None
    pick(panel, "algo", "grpo")  # gae_lambda no longer applies
    assert panel.config() is not None
    assert panel.config().gae_lambda == FIELDS["gae_lambda"].default


def test_cross_field_error_shows_a_panel_message(panel, qtbot):
    type_into(qtbot, panel, "beta_min", "20")
    assert panel.config() is None
    assert not panel.message.isHidden()
    assert "beta_max" in panel.message.text()
    type_into(qtbot, panel, "beta_min", "0.01")
    assert panel.config().beta_min == 0.01
    assert panel.message.isHidden()


def test_tooltips_carry_help_range_and_liveness(panel):
    tip = plain(panel.editors["clip_eps"].editor.toolTip())
    assert field_info("clip_eps")["help"] in tip
    assert "Range: [1e-4, 1]" in tip
    assert "Can change during a run" in tip
    assert "Can change during a run" not in panel.editors["group_size"].editor.toolTip()
    assert "Range: [2, 256]" in plain(panel.editors["group_size"].editor.toolTip())


def test_running_fixes_non_live_knobs_and_routes_live_edits(panel, qtbot):
    panel.set_running(True)
    assert not panel.editors["group_size"].editor.isEnabled()
    assert "Fixed for this run" in panel.editors["group_size"].editor.toolTip()
    assert not panel.editors["algo"].editor.isEnabled()
    lr = panel.editors["lr"]
    assert lr.editor.isEnabled()
    assert "next step" in lr.message.text()
    changed, live = [], []
    panel.configChanged.connect(changed.append)
    panel.liveEditRequested.connect(live.append)
    trainers_lr = panel.config().lr
    assert trainers_lr != 2e-4
    type_into(qtbot, panel, "lr", "2e-4")
    assert live == []  # keystrokes alone are not sent to the trainer
    qtbot.keyClick(lr.editor, Qt.Key.Key_Return)
    assert live == [{"lr": 2e-4}]
    assert changed == []
    assert panel.config().lr == trainers_lr  # the trainer's value until a step echoes the edit
    type_into(qtbot, panel, "lr", "9", finish=True)  # out of range: shown, not sent
    assert live == [{"lr": 2e-4}]
    assert panel.config() is None
    panel.set_running(False)
    assert panel.editors["group_size"].editor.isEnabled()


def test_save_load_round_trip(panel, qtbot, tmp_path):
    pick(panel, "algo", "ppo")
    type_into(qtbot, panel, "clip_eps", "0.15", finish=True)
    saved = panel.config()
    for suffix in (".toml", ".json"):
        path = tmp_path / f"run{suffix}"
        assert panel.save_config(path)
        other = HyperparameterPanel()
        qtbot.addWidget(other)
        with qtbot.waitSignal(other.configChanged):
            assert other.load_config(path)
        assert other.config() == saved
        assert other.editors["clip_eps"].editor.text() == "0.15"


def test_load_errors_go_to_a_message_box(panel, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"clip_eps": 7}')
    before = panel.config()
    assert not panel.load_config(bad)
    box = panel.findChild(QMessageBox)
    assert box is not None and "clip_eps" in box.text()
    assert panel.config() == before


def test_reset_restores_the_objectives_defaults(panel, qtbot):
    pick(panel, "algo", "ppo")
    pick(panel, "reward_source", "ranked")
    type_into(qtbot, panel, "lr", "5e-4", finish=True)
    panel.reset_to_defaults()
    assert panel.config() == RunConfig.for_algo("ppo", reward_source="ranked")
    assert panel.touched() == frozenset()


def test_focus_passing_through_a_row_does_not_count_as_an_edit(panel):
    panel.editors["lr"].editor.editingFinished.emit()
    assert "lr" not in panel.touched()
    pick(panel, "algo", "reinforce")
    assert panel.config().lr == RunConfig.for_algo("reinforce").lr != RunConfig().lr


def test_switching_task_applies_its_defaults_unless_touched(panel, qtbot):
    pick(panel, "task", "arithmetic")
    arithmetic = RunConfig.for_algo("grpo", task="arithmetic")
    assert panel.config().prompts_per_step == arithmetic.prompts_per_step == 64
    assert panel.config().lr == arithmetic.lr
    pick(panel, "task", "sentiment")
    assert panel.config().prompts_per_step == 8
    type_into(qtbot, panel, "lr", "3e-4", finish=True)
    pick(panel, "task", "arithmetic")
    assert panel.config().lr == 3e-4 and panel.config().prompts_per_step == 64


def test_choosing_the_learned_reward_applies_its_defaults_unless_touched(panel, qtbot):
    pick(panel, "reward_source", "learned")
    learned = RunConfig.for_algo("grpo", reward_source="learned")
    assert panel.config() == learned and learned.beta != RunConfig.for_algo("grpo").beta
    pick(panel, "reward_source", "true")
    assert panel.config() == RunConfig.for_algo("grpo")
    type_into(qtbot, panel, "beta", "0.2", finish=True)
    pick(panel, "reward_source", "learned")
    assert panel.config().beta == 0.2 and panel.config().kl_in == learned.kl_in
