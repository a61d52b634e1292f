"""Ranking by keyboard alone and by drag, ties, skip, not rankable; what is acknowledged is
stored, and survives a restart."""

import pytest
from PySide6.QtCore import Qt

from core.reward_learning.feedback import Group
from core.reward_learning.rankings import RankingStore
from explorer.panels.ranking import RankingPanel, preview_rewards


def group(i=0, k=4):
    return Group("sentiment", f"prompt {i}", tuple(f"response {i}.{j}" for j in range(k)),
                 "base", true=tuple(float(j) for j in range(k)))


@pytest.fixture
def panel(qtbot, tmp_path):
    p = RankingPanel()
    qtbot.addWidget(p)
    p.store = RankingStore(tmp_path)
    p.set_task("sentiment", ["the film", "the plot"])
    p.show()
    yield p
    p.store.close()


def keys(qtbot, panel, *names):
    for name in names:
        qtbot.keyClick(panel.list, name)


def test_twenty_groups_by_keyboard_alone(qtbot, panel, tmp_path):
    panel.add_groups([group(i) for i in range(20)])
    for _ in range(20):
        keys(qtbot, panel, Qt.Key_2, Qt.Key_1, Qt.Key_4, Qt.Key_3, Qt.Key_Return)
    stored = panel.store.list()
    assert len(stored) == 20 and {r.source for r in stored} == {"person"}
    assert all(r.ranks == (2, 1, 4, 3) for r in stored)
    assert [r.prompt for r in stored] == [f"prompt {i}" for i in range(20)]
    assert "20 rankings" in panel.count.text()
    # a restart: a new connection (a new app) reads them all back
    with RankingStore(tmp_path) as again:
        assert len(again.list()) == 20


def test_ties_skip_and_not_rankable(qtbot, panel):
    panel.add_groups([group(0), group(1), group(2)])
    keys(qtbot, panel, Qt.Key_1, Qt.Key_1, Qt.Key_2, Qt.Key_2, Qt.Key_Return)
    keys(qtbot, panel, Qt.Key_Backspace)        # group 1 skipped: nothing stored
    keys(qtbot, panel, Qt.Key_N)                # group 2 cannot be ranked
    stored = panel.store.list()
    assert [(r.prompt, r.ranks) for r in stored] == [("prompt 0", (1, 1, 2, 2)),
                                                     ("prompt 2", None)]


def test_focus_moves_with_arrows_and_tab(qtbot, panel):
    panel.add_groups([group(0)])
    keys(qtbot, panel, Qt.Key_Down, Qt.Key_Down, Qt.Key_3)   # third row gets rank 3
    assert panel.session.ranks == [None, None, 3, None]
    keys(qtbot, panel, Qt.Key_Up, Qt.Key_Tab, Qt.Key_Tab, Qt.Key_1)  # wraps past the end: row 0
    assert panel.session.ranks == [1, None, 3, None]


def test_submit_needs_every_rank(qtbot, panel):
    panel.add_groups([group(0)])
    keys(qtbot, panel, Qt.Key_1, Qt.Key_Return)
    assert panel.store.list() == [] and "3 left" in panel.status.text()


def test_drag_ranks_by_position(qtbot, panel):
    panel.add_groups([group(0, k=3)])
    # what an InternalMove drop does to the list: move the last row to the top
    panel.list.model().moveRow(panel.list.rootIndex(), 2, panel.list.rootIndex(), 0)
    assert panel.session.ranks == [2, 3, 1]
    keys(qtbot, panel, Qt.Key_Return)
    assert panel.store.list()[0].ranks == (2, 3, 1)


def test_reward_preview_follows_the_scheme(qtbot, panel):
    assert preview_rewards([1, 2, 3, 4], "normalized", 1.0) == pytest.approx([1, 2 / 3, 1 / 3, 0])
    assert preview_rewards([1, None, None], "fixed", 1.0) == [1.0, None, None]
    panel.add_groups([group(0)])
    keys(qtbot, panel, Qt.Key_1)
    assert "reward +1.00" in panel.list.item(0).text()
    panel.scheme.setCurrentIndex(panel.scheme.findData("log"))
    assert "reward +0.00" in panel.list.item(0).text()


def test_true_reward_is_hidden_until_asked(qtbot, panel):
    panel.add_groups([group(0)])
    assert "true" not in panel.list.item(3).text()
    panel.show_true.setChecked(True)
    assert "true +3.00" in panel.list.item(3).text()


def test_a_round_reports_its_rankings(qtbot, panel):
    panel.add_groups([group(9)])                 # a free group waits behind the round
    with qtbot.waitSignal(panel.roundFinished) as blocker:
        panel.start_round([group(0, 2), group(1, 2)], step=50)
        assert "step 50" in panel.banner.text() and panel.banner.isVisible()
        keys(qtbot, panel, Qt.Key_2, Qt.Key_1, Qt.Key_Return, Qt.Key_N)
    (ranking,) = blocker.args[0]
    assert ranking.prompt == "prompt 0" and ranking.ranks == (2, 1)
    assert not panel.banner.isVisible() and panel.session.group.prompt == "prompt 9"


def test_sampling_status_clears_when_groups_arrive(qtbot, panel):
    panel.sample_now(random=True)
    assert panel.status.text() == "Sampling…"
    panel.add_groups([group(0)])
    panel.add_groups([group(1)])   # a prefetch arriving while a group is on screen
    assert panel.status.text() == ""


# --- a new user's run-through (issue 16)


def test_sample_while_a_group_shows_brings_the_new_one_forward(panel):
    panel.add_groups([group(0, 2)])
    panel.sample_now(random=True, replace=True)
    panel.add_groups([group(1, 2)])
    assert panel.session.group.prompt == "prompt 1"
    assert [g.prompt for g in panel.session.queue] == ["prompt 0"]      # nothing is lost
    # a prefetch (no replace) still waits behind the shown group
    panel.sample_now(random=True, count=2)
    panel.add_groups([group(2, 2)])
    assert panel.session.group.prompt == "prompt 1"


def test_a_stopped_round_leaves_no_group_of_it_behind(panel):
    panel.add_groups([group(9, 2)])
    panel.start_round([group(0, 2), group(1, 2)], step=25, reason="the reward model is unsure")
    assert panel.banner.text().startswith("The reward model is unsure")
    assert panel.session.group.prompt == "prompt 0"
    assert "the policy at step 25" in panel.prompt_label.text()
    assert not panel.sample_button.isEnabled() and not panel.policy.isEnabled()  # the round's
    panel.cancel_round()
    assert not panel.banner.isVisible() and panel.sample_button.isEnabled()
    assert panel.session.group.prompt == "prompt 9" and panel.session.queue == []


def test_groups_sampled_ahead_go_when_the_reward_model_changes(panel):
    panel.sample_now(random=True)
    panel.add_groups([group(0, 2), group(1, 2), group(2, 2)])
    assert len(panel.session.queue) == 2
    panel.model_changed()
    assert panel.session.queue == [] and panel.status.text() == "Sampling…"   # fresh ones asked for
    assert panel.session.group.prompt == "prompt 0"                          # the shown one stays
