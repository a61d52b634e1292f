"""Issue 16 in the window: the hacking banner and its rule, rankings in and out by the File menu,
and the Rank tab's fixes from a new user's run-through (Sample over a shown group, a stopped
round leaves nothing behind, stale previews go when the model changes)."""

import json

from core.reward_learning.hacking import displacement, warning
from core.reward_learning.rankings import RankingStore

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


def test_the_likelihood_displacement_warning_by_hand():
    start = [-20.0, -21.0, -19.0, -20.0, -20.0]
    assert displacement([]) is None and displacement(start) is None   # too few steps yet
    # the means of the first and last 5 steps: -20 -> -24.8, a fall of 4.8 nats
    assert displacement(start + [-24.0, -25.0, -25.0, -25.0, -25.0]) is None
    text = displacement(start + [-25.0] * 5)
    assert text and "5 nats less likely" in text and "dpo_sft" in text
    assert displacement(start + [float("nan")] * 5) is None
    assert displacement(start + [-15.0] * 5) is None   # rising is what DPO should do


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
    # a DPO run's own failure shows on the same banner
    for step in range(11, 21):
        window.live_series.append({"step": step, "dpo/logp_chosen": -20.0 if step < 16 else -30.0})
    window._check_hacking()
    assert banner.isVisible() and "likelihood displacement" in banner.text()


# --- File -> Import / Export rankings


def test_import_and_export_rankings_from_the_file_menu(window, tmp_path, qtbot):
    good = tmp_path / "prefs.jsonl"
    good.write_text(json.dumps({"prompt": "the film", "chosen": " was good.",
                                "rejected": " was dull."}) + "\n")
    assert window.rankings_files.import_rankings(str(good)) == 1
    with RankingStore(window.data_dir) as store:
        assert [r.source for r in store.list()] == ["imported"]
    out = tmp_path / "out.jsonl"
    assert window.rankings_files.export_rankings("listwise", str(out)) == 1
    assert json.loads(out.read_text())["ranks"] == [1, 2]

    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt": "the film", "chosen": " was good."}\n')
    assert window.rankings_files.import_rankings(str(bad)) is None
    from PySide6.QtWidgets import QMessageBox

    box = window.findChild(QMessageBox, "importFailedBox")
    assert box is not None and "bad.jsonl:1" in box.text() and "\n" not in box.text()
    box.close()
    with RankingStore(window.data_dir) as store:
        assert len(store.list()) == 1          # nothing of the bad file was stored


# --- the Rank tab (the panel's own fixes are in test_ranking_panel.py)


def test_the_rank_tab_offers_a_group_when_first_shown(window, qtbot):
    panel = window.rank_tab.panel
    window.show_tab(window.rank_tab)
    qtbot.waitUntil(lambda: panel.session.group is not None, timeout=60_000)
    assert len(panel.session.group.responses) == panel.k.value()


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


def test_the_rank_tab_offers_dpo_on_the_same_rankings_for_the_next_run(window, qtbot):
    from PySide6.QtCore import Qt

    box = window.rank_tab.rm_box
    box.sources["simulated"].setChecked(False)
    qtbot.mouseClick(box.dpo_button, Qt.MouseButton.LeftButton)
    cfg = window.panel.config()
    assert (cfg.algo, cfg.dpo_data, cfg.reward_source) == ("dpo", "stored", "true")
    assert set(cfg.dpo_sources.split(",")) == set(box.sources) - {"simulated"}
    assert cfg.lr == 5e-5 and cfg.beta == 0.1          # DPO's own defaults, not GRPO's
    assert cfg.dpo_loss == "ipo"                        # the loss that does best from few
    assert "DPO" in window.status_text.text()
    for source in box.sources.values():
        source.setChecked(True)
    qtbot.mouseClick(box.dpo_button, Qt.MouseButton.LeftButton)
    assert window.panel.config().dpo_sources == ""      # every source: the knob's "all"
    for source in box.sources.values():
        source.setChecked(False)
    qtbot.mouseClick(box.dpo_button, Qt.MouseButton.LeftButton)
    assert "Tick at least one" in box.result.text()
