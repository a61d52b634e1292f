"""The ranking session without a widget: what is shown, what waits, and when a round is done."""

from core.reward_learning.feedback import Group
from core.reward_learning.ranking_session import LOW_WATER, RankingSession
from core.reward_learning.reward_model import Ranking


def group(prompt, task="sentiment", k=3):
    return Group(task, prompt, tuple(f"{prompt} {i}" for i in range(k)), "base")


def test_groups_queue_behind_the_shown_one_and_a_replace_shows_the_new_one_first():
    s = RankingSession()
    s.add_groups([group("a"), group("b"), group("x", task="arithmetic")], "sentiment")
    assert s.group is None and [g.prompt for g in s.queue] == ["a", "b"]   # other task: gone
    s.next()
    assert s.group.prompt == "a" and s.ranks == [None] * 3 and s.order == [0, 1, 2]
    s.replace = True
    s.add_groups([group("c")], "sentiment")
    assert s.group.prompt == "c" and [g.prompt for g in s.queue] == ["a", "b"]


def test_ranks_by_key_and_by_position_and_what_is_missing():
    s = RankingSession()
    s.show(group("a"))
    assert s.set_rank(0, 2) and not s.set_rank(1, 4) and s.missing() == 2
    s.rank_by_position([2, 0, 1])
    assert s.ranks == [2, 3, 1] and s.missing() == 0


def test_a_round_comes_first_and_completes_with_the_rankings_given():
    s = RankingSession()
    s.show(group("mine"))
    r1, r2 = group("r1"), group("r2")
    s.start_round([r1, r2], step=25, reason="unsure")
    assert s.group is None and s.queue[:2] == [r1, r2] and s.queue[2].prompt == "mine"
    s.next()
    assert s.group is r1
    assert s.done(Ranking("r1", r1.responses, (1, 2, 3))) is None     # one left
    s.next()
    finished = s.done(None)                                           # skipped: not counted
    assert [r.prompt for r in finished] == ["r1"] and s.round is None
    s.next()
    assert s.group.prompt == "mine"   # the person's own group comes back after the round


def test_a_cancelled_round_takes_its_groups_away_and_sampling_ahead_waits_for_it():
    s = RankingSession()
    s.random = True
    s.start_round([group("r1")], step=5)
    s.next()
    assert not s.next()                 # no sampling ahead during a round
    assert s.cancel_round() and s.queue == [] and s.group is None and not s.cancel_round()
    s.show(group("a"))
    assert s.next() == (len(s.queue) < LOW_WATER)   # random prompts: keep a few ahead
