"""Run loading (no Qt) and the runs panel, on a real RunStore in a temporary folder."""

import math

import pytest
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest

from core.store.runs import RunStore
from explorer.panels.run_loading import RunFollower, format_changes, load_run_series
from explorer.panels.runs import NAME, STATUS, TICK, RunsPanel


def _log(store, run_id, steps):
    for s in steps:
        store.log_step(run_id, s, {"time_s": 0.5 * s, "reward/mean": s / 10, "kl/mean": 0.01},
                       [{"prompt": "the movie was ", "completion": f"good {s}", "reward": 0.1}])


@pytest.fixture
def store(tmp_path):
    with RunStore(tmp_path) as store:
        ppo = store.create_run({"lr": 2e-5}, "sentiment", "ppo", "true")
        _log(store, ppo, range(6))
        store.log_event(ppo, 3, "set", {"kind": "set", "step": 3, "changes": {"lr": 5e-5,
                        "clip_eps": 0.1}, "old": {"lr": 2e-5, "clip_eps": 0.2}})
        store.finish_run(ppo, "finished")
        grpo = store.create_run({}, "sentiment", "grpo", "true", name="grpo seed 1")
        _log(store, grpo, range(4))
        store.finish_run(grpo, "finished")
        bad = store.create_run({}, "arithmetic", "reinforce", "reward_model")
        _log(store, bad, range(2))
        store.finish_run(bad, "failed", "RuntimeError: loss is NaN")
        store.ids = [ppo, grpo, bad]
        yield store


def test_format_changes():
    payload = {"changes": {"lr": 5e-5, "clip_eps": 0.1}, "old": {"lr": 2e-5, "clip_eps": 0.2}}
    assert format_changes(payload) == "lr 2e-05→5e-05, clip_eps 0.2→0.1"
    assert format_changes({"changes": {"epochs": 4}}) == "epochs = 4"
    # a round: short, so markers 25 steps apart fit a small panel, and its blind win rate
    round_ = {"kind": "feedback_round", "new_rankings": 8, "rankings": 38}
    assert format_changes(round_) == "round +8"
    assert format_changes({**round_, "eval/win_rate": 0.625}) == "round +8 · win 62%"


def test_load_run_series_has_every_step_and_the_edit_marker(store):
    series = load_run_series(store, store.ids[0])
    assert series.n_steps == 6
    assert list(series.get("reward/mean").steps) == [0, 1, 2, 3, 4, 5]
    assert series.get("reward/mean").values[-1] == pytest.approx(0.5)
    assert series.events == [(3.0, 1.5, "lr 2e-05→5e-05, clip_eps 0.2→0.1")]


def test_follower_picks_up_steps_and_events_written_later(tmp_path):
    with RunStore(tmp_path) as writer, RunStore(tmp_path) as reader:
        run = writer.create_run({}, "sentiment", "grpo", "true")
        _log(writer, run, range(3))
        follower = RunFollower(reader, run)
        assert follower.poll() == 3 and not follower.done
        assert follower.poll() == 0
        # An event of a step not logged yet waits for that step, so it gets the step's time.
        writer.log_event(run, 4, "set", {"changes": {"beta": 0.1}, "old": {"beta": 0.04}})
        _log(writer, run, [3])
        assert follower.poll() == 1 and follower.series.events == []
        _log(writer, run, [4])
        writer.finish_run(run, "finished")
        assert follower.poll() == 1 and follower.done
        assert follower.series.n_steps == 5
        assert follower.series.events == [(4.0, 2.0, "beta 0.04→0.1")]
        assert not math.isnan(follower.series.last_time_s)


def test_panel_lists_runs_newest_first_with_status_tooltips(qtbot, store):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    assert panel.run_ids() == store.ids[::-1]
    assert panel.proxy.index(1, NAME).data() == "grpo seed 1"
    failed = panel.proxy.index(0, STATUS)
    assert "failed" in failed.data()
    assert "loss is NaN" in failed.data(Qt.ItemDataRole.ToolTipRole)
    assert panel.empty.isHidden() or not panel.empty.isVisible()


def test_ticks_emit_overlay_and_survive_refresh(qtbot, store):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    seen = []
    panel.overlayChanged.connect(seen.append)
    for row in (1, 2):
        item = panel.model.itemFromIndex(panel.proxy.mapToSource(panel.proxy.index(row, TICK)))
        item.setCheckState(Qt.CheckState.Checked)
    assert seen[-1] == [store.ids[1], store.ids[0]]
    panel.select(store.ids[0])
    _log(store, store.ids[0], [6])
    panel.refresh()
    assert panel.ticked_ids() == [store.ids[1], store.ids[0]]
    assert panel.selected_id() == store.ids[0]
    assert len(seen) == 2  # a refresh that changes no tick emits nothing


def test_double_click_and_open_button_request_open(qtbot, store):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    panel.resize(360, 500)
    panel.show()
    qtbot.waitExposed(panel)
    rect = panel.table.visualRect(panel.proxy.index(2, NAME))
    with qtbot.waitSignal(panel.openRequested) as blocker:
        # A view only opens an index it saw pressed first, as a real double-click does.
        QTest.mouseClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                         Qt.KeyboardModifier.NoModifier, rect.center())
        QTest.mouseDClick(panel.table.viewport(), Qt.MouseButton.LeftButton,
                          Qt.KeyboardModifier.NoModifier, rect.center())
    assert blocker.args == [store.ids[0]]
    panel.select(store.ids[1])
    with qtbot.waitSignal(panel.openRequested) as blocker:
        panel.open_button.click()
    assert blocker.args == [store.ids[1]]


def test_delete_without_confirmation(qtbot, store):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    panel.set_ticked(store.ids[2])
    overlays, deleted = [], []
    panel.overlayChanged.connect(overlays.append)
    panel.runDeleted.connect(deleted.append)
    assert panel.delete_run(store.ids[2], confirm=False)
    assert deleted == [store.ids[2]] and overlays == [[]]
    assert store.ids[2] not in [r.id for r in store.list_runs()]
    assert store.ids[2] not in panel.run_ids() and len(panel.run_ids()) == 2


def test_live_run_is_bold_and_cannot_be_deleted(qtbot, store, monkeypatch):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    panel.mark_live(store.ids[0])
    assert panel.proxy.index(2, NAME).data(Qt.ItemDataRole.FontRole).bold()
    monkeypatch.setattr("explorer.panels.runs.QMessageBox.information", lambda *a: None)
    assert not panel.delete_run(store.ids[0], confirm=False)
    assert len(store.list_runs()) == 3


def test_filter_and_empty_state(qtbot, store, tmp_path):
    panel = RunsPanel(store)
    qtbot.addWidget(panel)
    panel.filter_edit.setText("arith")
    assert panel.run_ids() == [store.ids[2]]
    panel.filter_edit.setText("GRPO")
    assert panel.run_ids() == [store.ids[1]]
    panel.filter_edit.setText("nothing-like-this")
    assert panel.run_ids() == [] and "No runs match" in panel.empty.text()
    with RunStore(tmp_path / "other") as empty:
        panel.set_store(empty)
        assert panel.run_ids() == [] and panel.empty.text().startswith("No runs yet")
