"""Iterated rounds, issue 16: any judge can rank (feedback_by=command), a round asks where the
members disagree most, a blind base sample gives the win rate, the fresh accuracy is measured
before the model trains on the new rankings, and rounds come when the model is unsure."""

import sys
import textwrap

import numpy as np
import pytest
import torch

import core.reward_learning.feedback as feedback
from core.config import RunConfig
from core.reward_learning.feedback import (
    CommandFeedback,
    Group,
    JudgeFailed,
    most_unsure,
    train_from_store,
    win_rate,
    with_base_sample,
)
from core.reward_learning.rankings import RankingStore
from core.rl.trainer import Trainer, default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record

needs_base = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing")
TINY = dict(prompts_per_step=2, group_size=2, threads=1, rm_round_steps=2, rm_k=2,
            feedback_groups=2, feedback_pool=2, max_new_tokens=16, checkpoint_every=0,
            samples_per_step=1)


def groups(n=2, k=3):
    return [Group("sentiment", f"the film {i}", tuple(f" was r{i}{j}." for j in range(k)),
                  "base") for i in range(n)]


# --- the win rate and the base sample, by hand


def test_win_rate_by_hand_with_ties():
    # the base sample is at index 1 ranked 2nd: one policy sample above it, one below
    assert win_rate([((1, 2, 3), 1)]) == 0.5
    # base at index 0 tied first: the tie counts half, the other loses
    assert win_rate([((1, 1, 2), 0)]) == 0.25
    assert win_rate([((1, 2, 3), 1), ((1, 1, 2), 0)]) == pytest.approx(0.375)
    assert win_rate([((2, 1), 0)]) == 1.0
    assert np.isnan(win_rate([]))


def test_the_base_sample_goes_in_blind_at_the_given_place():
    g = Group("sentiment", "p", ("a", "b"), "run 1 step 5", (0.1, 0.2), (1.0, 2.0))
    b = Group("sentiment", "p", ("base",), "run 1 step 5", (0.9,), (3.0,))
    mixed = with_base_sample(g, b, 1)
    assert mixed.responses == ("a", "base", "b")
    assert mixed.true == (0.1, 0.9, 0.2) and mixed.rm_scores == (1.0, 3.0, 2.0)
    assert with_base_sample(g, b, 2).responses == ("a", "b", "base")


# --- asking where the members disagree


def test_most_unsure_picks_the_most_disagreed_groups_in_sampled_order():
    assert most_unsure([0.1, 0.9, 0.3, 0.8], 2) == [1, 3]
    assert most_unsure([0.5, 0.5, 0.1], 2) == [0, 1]
    assert most_unsure([0.2], 3) == [0]


class FakeEnsemble:
    """Two members that disagree by how long the response is: longer, more disagreement."""
    center = torch.zeros(2)

    def standardized(self, ids, mask):
        length = mask.sum(1)
        return torch.stack([length, -length])


def test_group_spreads_rank_groups_by_their_members_disagreement():
    short = Group("sentiment", "p", (" a.", " b."), "base")
    long = Group("sentiment", "p", (" a long one.", " another long."), "base")
    spreads = feedback.group_spreads(FakeEnsemble(), [short, long, short], 16)
    assert spreads[1] > spreads[0] == spreads[2]
    assert most_unsure(spreads, 1) == [1]


# --- a judge program


def judge(tmp_path, body: str) -> str:
    path = tmp_path / "judge.py"
    path.write_text(textwrap.dedent(body))
    return f"{sys.executable} {path}"


GOOD = """
    import json, sys
    for line in sys.stdin:
        g = json.loads(line)
        print(json.dumps({"group": g["group"], "ranks": list(range(1, len(g["responses"]) + 1))}))
"""


def test_a_good_judge_ranks_every_group_and_its_rankings_are_stored(tmp_path):
    with RankingStore(tmp_path) as store:
        out = CommandFeedback(judge(tmp_path, GOOD), 30, store).rank(groups())
        stored = store.list()
    assert [r.ranks for r in out] == [(1, 2, 3), (1, 2, 3)]
    assert {r.source for r in stored} == {"judge"} and len(stored) == 2


@pytest.mark.parametrize("body, says", [
    ("import sys; sys.exit('the model file is missing')",
     "exited with status 1: the model file is missing"),
    ("""
     import json, sys, time
     sys.stdin.read()
     print(json.dumps({"group": 1, "ranks": [2, 1, 3]}), flush=True)
     time.sleep(30)
     """, "gave no answer within 1 s"),
    ("""
     import json, sys
     sys.stdin.read()
     print(json.dumps({"group": 0, "ranks": [3, 1, 2]}), flush=True)
     sys.exit('out of memory')
     """, "exited with status 1: out of memory"),
    ("""
     import json, sys
     lines = sys.stdin.read().splitlines()
     print(json.dumps({"group": 0, "ranks": [1, 2, 3]}))
     print("rank 1 is best")
     """, "wrote a bad line 2 (not JSON)"),
    ("""
     import json, sys
     sys.stdin.read()
     print(json.dumps({"group": 0, "ranks": [1, 2, 9]}))
     """, "rank 9 is not a whole number in 1..3"),
    ("""
     import json, sys
     sys.stdin.read()
     print(json.dumps({"group": 1, "ranks": [3, 2, 1]}))
     """, "ranked 1 of 2 groups (no line for group 0)"),
])
def test_a_failing_judge_is_one_line_that_names_it_and_keeps_what_it_gave(tmp_path, body, says):
    command = judge(tmp_path, body)
    with RankingStore(tmp_path) as store:
        with pytest.raises(JudgeFailed) as caught:
            CommandFeedback(command, 1, store).rank(groups())
        kept = store.list()
    message = str(caught.value)
    assert "\n" not in message and says in message and "judge.py" in message
    if "bad line 2" in says:   # the good line before the bad one is stored
        assert [r.ranks for r in kept] == [(1, 2, 3)]
    if "1 of 2" in says:
        assert [r.ranks for r in kept] == [(3, 2, 1)]
    if "no answer" in says:   # what a judge wrote before it hung is kept
        assert [r.ranks for r in kept] == [(2, 1, 3)]
    if "out of memory" in says:   # and before it crashed
        assert [r.ranks for r in kept] == [(3, 1, 2)]


def test_feedback_by_command_without_a_command_is_refused_with_the_fix():
    with pytest.raises(ValueError, match="feedback_command"):
        RunConfig.for_algo("grpo", reward_source="learned", feedback_by="command")


# --- rounds in a run


@pytest.fixture(scope="module")
def saved_model(tmp_path_factory):
    """A data folder with 12 stored rankings and a 2-member model trained on them."""
    from core.lm.checkpoints import load_checkpoint
    from core.reward_learning.feedback import SimulatedFeedback, sample_groups
    from core.tasks import get_task

    torch.set_num_threads(1)
    folder = tmp_path_factory.mktemp("judged")
    base, _ = load_checkpoint(default_checkpoint("sentiment"))
    task = get_task("sentiment")
    rng = np.random.default_rng(0)
    made = sample_groups(base, task, task.sample_prompts(12, rng), 3, 16, 1.0,
                         torch.Generator().manual_seed(0), "base")
    with RankingStore(folder) as store:
        SimulatedFeedback(0.1, rng, store).rank(made)
    train_from_store(folder, "sentiment", name="mine", steps=3, members=2)
    return folder


@needs_base
@pytest.mark.parametrize("bad", [False, True])
def test_a_run_with_a_judge_records_rounds_or_stops_saved_on_a_bad_one(saved_model, tmp_path,
                                                                        bad):
    import shutil

    data = tmp_path / "data"
    shutil.copytree(saved_model, data)
    body = GOOD if not bad else """
        import json, sys
        for line in sys.stdin:
            g = json.loads(line)
            if g["group"] == 1:
                print("oops")
                break
            print(json.dumps({"group": g["group"], "ranks": [1] * len(g["responses"])}))
    """
    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=3,
                             feedback_every=2, feedback_by="command",
                             feedback_command=judge(tmp_path, body), **TINY)
    store = RunStore(data)
    if bad:
        with pytest.raises(JudgeFailed, match="bad line 2"):
            train_and_record(cfg, store)
        (run,) = store.list_runs()
        assert run.status == "stopped" and "judge" in (store.run_error(run.id) or "")
        assert [s for s, _ in store.checkpoints(run.id)] == [2]   # saved where it stopped
        with RankingStore(data) as rankings:
            assert len(rankings.list(sources=("judge",))) == 1     # the good line is kept
        return
    run_id, status = train_and_record(cfg, store)
    assert status == "finished"
    _, win = store.metric_series(run_id, "eval/win_rate")
    _, fresh = store.metric_series(run_id, "rm/fresh_accuracy")
    assert len(win) == 1 and len(fresh) == 1
    # GOOD ranks in the order shown: the base sample's place decides the win rate
    assert 0.0 <= win[0] <= 1.0
    with RankingStore(data) as rankings:
        judged = rankings.list(sources=("judge",))
    assert len(judged) == 2 and all(len(r.responses) == 3 for r in judged)  # rm_k + the base


@needs_base
def test_fresh_accuracy_is_measured_before_the_model_trains_on_the_rankings(saved_model,
                                                                             monkeypatch):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=2,
                             **TINY)
    trainer = Trainer(cfg, data_dir=saved_model)
    source = trainer.reward_source
    first = source.model
    seen = []
    import core.reward_learning.reward_training as rm

    real_accuracy = rm.pairwise_accuracy

    def spy_accuracy(model, rankings, *args):
        seen.append(("accuracy", model))
        return real_accuracy(model, rankings, *args)

    real_update = source.update

    def spy_update(*args, **kwargs):
        seen.append(("update", source.model))
        return real_update(*args, **kwargs)

    monkeypatch.setattr(rm, "pairwise_accuracy", spy_accuracy)
    monkeypatch.setattr(source, "update", spy_update)
    trainer.step_index = 1
    trainer.rounds.reason = "every"
    trainer.feedback = feedback.SimulatedFeedback(0.1, np.random.default_rng(0))
    trainer._feedback_round()
    _, metrics = trainer.rounds.pending
    # (the update's own held-out evaluation measures accuracy again, after it)
    assert [what for what, _ in seen][:2] == ["accuracy", "update"]
    assert seen[0][1] is first          # the model as it was before this round's rankings
    assert "rm/fresh_accuracy" in metrics and "eval/win_rate" in metrics


@needs_base
def test_a_round_comes_when_the_members_disagree_and_stops_at_the_cap(saved_model):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=40,
                             feedback_unsure=1.5, feedback_max_rounds=1, **TINY)
    trainer = Trainer(cfg, data_dir=saved_model)
    trainer.step_index = 12
    rounds = trainer.rounds
    rounds.disagreement_ratio = 1.4
    assert not trainer.round_due()          # below the threshold
    rounds.disagreement_ratio = 1.6
    assert trainer.round_due() and rounds.reason == "unsure"
    rounds.last_step = 5
    assert not trainer.round_due()          # too soon after the last round
    rounds.last_step, rounds.done = 0, 1
    assert not trainer.round_due()          # the cap
    trainer.control.request_round()
    assert trainer.round_due() and rounds.reason == "asked"   # asked for: past the cap too


def test_the_example_judge_in_the_docs_works_and_is_about_twenty_lines(tmp_path):
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[3] / "docs" / "human_feedback.md").read_text()
    (code,) = [b for b in re.findall(r"```python\n(.*?)```", text, re.S) if "judge.py" in b]
    assert len(code.strip().splitlines()) <= 22
    path = tmp_path / "judge.py"
    path.write_text(code)
    calm = Group("sentiment", "the film", (" was truly superb.", " was fine.", " was fine."),
                 "base")
    (ranking,) = CommandFeedback(f"{sys.executable} {path}", 30).rank([calm])
    assert ranking.ranks == (3, 1, 1)


@needs_base
@pytest.mark.parametrize("restart", [False, True])
def test_feedback_restart_starts_the_policy_again_from_the_base_model(saved_model, restart):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=5,
                             feedback_restart=restart, **TINY)
    trainer = Trainer(cfg, data_dir=saved_model)
    trainer.step()
    trainer.step()
    moved = any(not torch.equal(p, r) for p, r in
                zip(trainer.policy.parameters(), trainer.reference.parameters(), strict=True))
    assert moved
    trainer.rounds.reason = "every"
    trainer._feedback_round()
    same = all(torch.equal(p, r) for p, r in
               zip(trainer.policy.parameters(), trainer.reference.parameters(), strict=True))
    assert same == restart and trainer.rounds.done == 1
    trainer.step()   # and it trains on from there


@needs_base
def test_each_round_widens_the_kl_budget_by_kl_target_per_round(saved_model):
    cfg = RunConfig.for_algo("grpo", reward_source="learned", reward_model="mine", steps=5,
                             kl_controller="adaptive", kl_target=4.0, kl_target_per_round=1.5,
                             **TINY)
    trainer = Trainer(cfg, data_dir=saved_model)
    assert trainer.controller.target == 4.0
    trainer.step()
    trainer.rounds.reason = "every"
    trainer._feedback_round()
    trainer._feedback_round()
    assert trainer.rounds.done == 2 and trainer.controller.target == pytest.approx(7.0)
    # a live edit of kl_target keeps the widening earned so far
    trainer.control.request_changes(kl_target=5.0)
    trainer._apply_pending()
    assert trainer.controller.target == pytest.approx(8.0)
    assert trainer.live_values()["kl_target"] == pytest.approx(8.0)
