"""Issue 16 in the window: the hacking banner and its rule, rankings in and out by the File menu,
and the Rank tab's fixes from a new user's run-through (Sample over a shown group, a stopped
round leaves nothing behind, stale previews go when the model changes)."""

import json

import pytest

from core.feedback import Group
from core.hacking import warning
from core.rankings import RankingStore
from explorer.panels.ranking import RankingPanel


def group(i=0, k=2):
    return Group("sentiment", f"prompt {i}", tuple(f"response {i}.{j}" for j in range(k)), "base")


# --- when to warn, by hand


def test_the_hacking_warning_by_hand():
    assert warning([], []) is None
    assert warning([0.9, 1.1, 1.0], [0.7]) is None
    # the mean of the last 5 ratios reaches 1.5
    text = warning([1.0, 1.4, 1.5, 1.6, 1.5, 1.5], [])
    assert text and "1.5× more" in text and "β" in text and "round" in text
    assert warning([1.0, 1.4, 1.5, 1.6, 1.5, 1.4], []) is None       # mean 1.48
    # a fresh accuracy at chance, or falling by 0.1 between rounds
    assert "52%" in warning([], [0.52])
    assert "60%" in warning([], [0.72, 0.60])
    assert warning([], [0.72, 0.65]) is None
    assert warning([float("nan")] * 5, [float("nan")]) is None


def test_the_window_shows_the_banner_while_the_signals_say_so(window):
    from explorer.plots.series import RunSeries

    window.live_series = RunSeries()
    for step, ratio in enumerate([1.0, 1.8, 1.8, 1.8, 1.8, 1.8]):
        window.live_series.append({"step": step, "rm/disagreement_ratio": ratio})
    window._check_hacking()
    banner = window.dashboard.banner
    assert banner.isVisible() and "Rank a round now" in banner.text()
    for step in range(6, 11):
        window.live_series.append({"step": step, "rm/disagreement_ratio": 0.9})
    window._check_hacking()
    assert not banner.isVisible()


# --- File -> Import / Export rankings


def test_import_and_export_rankings_from_the_file_menu(window, tmp_path, qtbot):
    good = tmp_path / "prefs.jsonl"
    good.write_text(json.dumps({"prompt": "the film", "chosen": " was good.",
                                "rejected": " was dull."}) + "\n")
    assert window.import_rankings(str(good)) == 1
    with RankingStore(window.data_dir) as store:
        assert [r.source for r in store.list()] == ["imported"]
    out = tmp_path / "out.jsonl"
    assert window.export_rankings("listwise", str(out)) == 1
    assert json.loads(out.read_text())["ranks"] == [1, 2]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "the film", "chosen": " was good."}\n')
    assert window.import_rankings(str(bad)) is None
    from PySide6.QtWidgets import QMessageBox

    box = window.findChild(QMessageBox, "importFailedBox")
    assert box is not None and "bad.jsonl:1" in box.text() and "\n" not in box.text()
    box.close()
    with RankingStore(window.data_dir) as store:
        assert len(store.list()) == 1          # nothing of the bad file was stored


# --- the Rank tab


@pytest.fixture
def panel(qtbot, tmp_path):
    p = RankingPanel()
    qtbot.addWidget(p)
    p.store = RankingStore(tmp_path)
    p.set_task("sentiment", ["the film", "the plot"])
    p.show()
    yield p
    p.store.close()


def test_sample_while_a_group_shows_brings_the_new_one_forward(panel):
    panel.add_groups([group(0)])
    panel.sample_now(random=True, replace=True)
    panel.add_groups([group(1)])
    assert panel._group.prompt == "prompt 1"
    assert [g.prompt for g in panel._queue] == ["prompt 0"]      # nothing is lost
    # a prefetch (no replace) still waits behind the shown group
    panel.sample_now(random=True, count=2)
    panel.add_groups([group(2)])
    assert panel._group.prompt == "prompt 1"


def test_a_stopped_round_leaves_no_group_of_it_behind(panel):
    panel.add_groups([group(9)])
    panel.start_round([group(0), group(1)], step=25, reason="the reward model is unsure")
    assert panel.banner.text().startswith("The reward model is unsure")
    assert panel._group.prompt == "prompt 0"
    assert "the policy at step 25" in panel.prompt_label.text()
    assert not panel.sample_button.isEnabled() and not panel.policy.isEnabled()  # the round's
    panel.cancel_round()
    assert not panel.banner.isVisible() and panel.sample_button.isEnabled()
    assert panel._group.prompt == "prompt 9" and panel._queue == []


def test_groups_sampled_ahead_go_when_the_reward_model_changes(panel):
    panel.sample_now(random=True)
    panel.add_groups([group(0), group(1), group(2)])
    assert len(panel._queue) == 2
    panel.model_changed()
    assert panel._queue == [] and panel.status.text() == "Sampling…"   # fresh ones asked for
    assert panel._group.prompt == "prompt 0"                          # the shown one stays


def test_the_rank_tab_offers_a_group_when_first_shown(window, qtbot):
    panel = window.rank_tab.panel
    window.show_tab(window.rank_tab)
    qtbot.waitUntil(lambda: panel._group is not None, timeout=60_000)
    assert len(panel._group.responses) == panel.k.value()


def test_after_a_round_the_reward_model_box_says_what_the_ranks_measured(qtbot):
    from explorer.panels.reward_model_box import RewardModelBox

    box = RewardModelBox()
    qtbot.addWidget(box)
    box.show_round({"step": 50, "new_rankings": 8, "rankings": 38, "eval/win_rate": 0.625,
                    "rm/fresh_accuracy": 0.58, "rm/accuracy": float("nan")})
    text = box.result.text()
    assert "step 50" in text and "+8 rankings (38 in all)" in text
    assert "win rate over the base model 62%" in text.lower() and "58%" in text
    assert "held-out" not in text      # NaN says nothing, so it is left out
