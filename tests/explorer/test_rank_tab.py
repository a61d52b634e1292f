"""The Rank tab in the window: sample a group from the base model, rank it by keyboard, train a
reward model from the stored rankings on the worker, use it for a run; and an iterated round in
which the person ranks the running policy's samples while the run waits."""

import pytest
from PySide6.QtCore import Qt

from core.config import RunConfig
from core.reward_learning.rankings import RankingStore
from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore

pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing")




def test_sample_rank_train_and_use(window, qtbot, tmp_path):
    tab = window.rank_tab
    panel = tab.panel
    panel.k.setValue(3)
    window.show_tab(tab)
    assert not window.docks["samplesDock"].isVisible()   # ranking gets the width
    qtbot.waitUntil(lambda: panel.session.group is not None, timeout=30_000)   # offered at once
    for i in range(6):
        if i:
            with qtbot.waitSignal(tab.worker.groupsReady, timeout=30_000):
                panel.sample_now(random=True)
        assert panel.session.group is not None and len(panel.session.group.responses) == 3
        for key in (Qt.Key_1, Qt.Key_2, Qt.Key_3, Qt.Key_Return):
            qtbot.keyClick(panel.list, key)
    with RankingStore(tmp_path) as store:
        stored = store.list()
    assert len(stored) >= 6 and {r.policy for r in stored} == {"base"}
    assert tab.browser.table.rowCount() == len(stored)

    box = tab.rm_box
    box.steps.setValue(10)
    box.name.setText("mine")
    with qtbot.waitSignal(tab.worker.trainFinished, timeout=60_000):
        qtbot.mouseClick(box.train_button, Qt.LeftButton)
    assert "Saved as “mine”" in box.result.text()
    assert len(box._loss[1]) == 10                    # the live loss curve, one point per update
    assert box.models.currentData() == "mine"
    qtbot.mouseClick(box.use_button, Qt.LeftButton)
    cfg = window.panel.config()
    assert (cfg.reward_source, cfg.reward_model) == ("learned", "mine")
    # with the learned reward's own defaults (its KL budget), not the true reward's
    learned = RunConfig.for_algo(cfg.algo, reward_source="learned", reward_model="mine")
    assert (cfg.beta, cfg.kl_in, cfg.kl_controller) == (learned.beta, learned.kl_in,
                                                        learned.kl_controller)


def test_a_person_ranks_an_iterated_round(window, qtbot, tmp_path):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", rm_rankings=12, rm_steps=2,
                             rm_round_steps=2, prompts_per_step=2, group_size=4, threads=1,
                             steps=3, feedback_every=2, feedback_by="person", feedback_groups=2,
                             rm_k=2)
    window.panel.set_config(cfg)
    with qtbot.waitSignal(window.runner.roundRequested, timeout=60_000):
        qtbot.mouseClick(window.buttons.start_button, Qt.LeftButton)
    qtbot.waitUntil(lambda: window.rank_tab.panel.session.group is not None)
    assert window.current_tab() is window.rank_tab
    panel = window.rank_tab.panel
    assert "step 2" in panel.banner.text() and "a scheduled round" in panel.banner.text().lower()
    # rm_k = 2 policy samples and, shuffled in blind, one of the base model's
    assert len(panel.session.group.responses) == 3
    for key in (Qt.Key_2, Qt.Key_1, Qt.Key_3, Qt.Key_Return,
                Qt.Key_1, Qt.Key_3, Qt.Key_2, Qt.Key_Return):
        qtbot.keyClick(panel.list, key)
    with qtbot.waitSignal(window.runner.runEnded, timeout=60_000):
        pass
    store = RunStore(tmp_path)
    (run,) = store.list_runs()
    (event,) = [e for e in store.events(run.id) if e["kind"] == "feedback_round"]
    assert event["payload"]["new_rankings"] == 2 and event["payload"]["rankings"] == 14
    with RankingStore(tmp_path) as rankings:
        mine = rankings.list(sources=["person"])
    assert [r.ranks for r in mine] == [(2, 1, 3), (1, 3, 2)]
    assert {r.policy for r in mine} == {f"run {run.id} step 2"}
    # the win rate from where the base sample was: each policy sample ranked above it wins
    wins = []
    for r, at in zip(mine, event["payload"]["base_at"], strict=True):
        wins += [1.0 if r.ranks[j] < r.ranks[at] else 0.0 for j in range(3) if j != at]
    assert event["payload"]["eval/win_rate"] == pytest.approx(sum(wins) / len(wins))
    # the round is a marker on the plots
    assert any(label.startswith("round +2") for _, _, label in window.live_series.events)


def test_sample_from_the_running_policy(window, qtbot):
    from explorer.feedback_worker import RUNNING

    cfg = RunConfig.for_algo("grpo", prompts_per_step=2, group_size=2, threads=1, steps=500)
    window.panel.set_config(cfg)
    with qtbot.waitSignal(window.runner.stepArrived, timeout=60_000):
        qtbot.mouseClick(window.buttons.start_button, Qt.LeftButton)
    panel = window.rank_tab.panel
    panel.policy.setCurrentIndex(panel.policy.findData(RUNNING))
    with qtbot.waitSignal(window.rank_tab.worker.groupsReady, timeout=60_000) as got:
        panel.sample_now(random=True)
    (group,) = got.args[0]
    assert group.policy.startswith("running policy at step ")
    window.runner.stop()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)


def test_browse_edit_and_delete_stored_rankings(qtbot, tmp_path):
    from explorer.panels.rankings_browser import RankingsBrowser, parse_ranks

    with RankingStore(tmp_path) as store:
        store.add("sentiment", "p", ["a", "b", "c"], [1, 2, 3])
        store.add("sentiment", "q", ["x", "y"], [2, 1])
        browser = RankingsBrowser()
        qtbot.addWidget(browser)
        browser.set_store(store, "sentiment")
        assert browser.table.rowCount() == 2 and browser.table.item(0, 2).text() == "q"
        browser.table.selectRow(1)                 # newest first: row 1 is "p"
        browser.edit_selected(text="3 1 1")
        assert store.list()[0].ranks == (3, 1, 1)
        browser.table.selectRow(0)
        browser.delete_selected()
        assert [r.prompt for r in store.list()] == ["p"]
    assert parse_ranks("none", 2) is None
    with pytest.raises(ValueError, match="give 3 whole numbers"):
        parse_ranks("1 2", 3)


@pytest.mark.parametrize(("run_going", "expected"), [(False, 2), (True, 1)])
def test_reward_model_training_takes_every_core_only_with_no_run(qtbot, tmp_path, monkeypatch,
                                                                 run_going, expected):
    """Beside a run, whose passes take every core, a second team of busy-waiting OpenMP threads
    would stall both; alone, the person waiting gets every core."""
    import torch

    from explorer.feedback_worker import FeedbackWorker

    monkeypatch.setattr("core.lm.threads.cpu_cores", lambda: 2)
    worker = FeedbackWorker(tmp_path, busy=lambda: run_going)
    seen = []
    monkeypatch.setattr(worker, "_train_now", lambda job: seen.append(torch.get_num_threads()))
    before = torch.get_num_threads()
    worker._train(None)
    assert seen == [expected] and torch.get_num_threads() == before


def test_the_reward_model_box_takes_its_choices_and_bounds_from_the_knobs(qtbot):
    from core.config import FIELDS
    from explorer.panels.reward_model_box import RewardModelBox

    box = RewardModelBox()
    qtbot.addWidget(box)
    assert [box.loss.itemData(i) for i in range(box.loss.count())] == \
        list(FIELDS["rm_loss"].metadata["choices"])
    steps = FIELDS["rm_steps"]
    assert (box.steps.minimum(), box.steps.maximum(), box.steps.value()) == \
        (steps.metadata["min"], steps.metadata["max"], steps.default)
