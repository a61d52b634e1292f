"""The simulated annotator and the reward sources built on it."""

import itertools

import numpy as np
import torch

from core.preference import plackett_luce_log_likelihood
from core.reward_learning.annotator import SimulatedAnnotator
from core.reward_learning.reward_sources import RankedReward, TrueReward
from core.tasks import get_task


def test_noiseless_annotator_sorts_with_competition_ties():
    ann = SimulatedAnnotator(0.0, np.random.default_rng(0))
    ranks = ann.rank([[0.1, 0.9, 0.5, 0.9]])
    assert ranks.tolist() == [[4, 1, 3, 1]]


def test_noisy_annotator_matches_plackett_luce_frequencies():
    rewards = np.array([1.0, 0.0, -0.5])
    temp = 0.7
    ann = SimulatedAnnotator(temp, np.random.default_rng(1))
    n = 60_000
    ranks = ann.rank(np.tile(rewards, (n, 1)))
    scores = torch.tensor(rewards / temp, dtype=torch.float32)
    for order in itertools.permutations(range(3)):
        expected = float(plackett_luce_log_likelihood(scores[list(order)]).exp())
        # the items of `order` hold ranks 1, 2, 3
        observed = np.mean(np.all(ranks[:, list(order)] == [1, 2, 3], axis=1))
        assert abs(observed - expected) < 0.01, (order, observed, expected)


def test_ranked_reward_uses_rank_to_reward_within_groups():
    task = get_task("arithmetic")
    src = RankedReward(task, SimulatedAnnotator(0.0, np.random.default_rng(0)), "normalized", 1.0)
    prompts = ["2+2=", "2+2=", "1+1=", "1+1="]
    out = src.score(prompts, ["4", "5", "3", "2"], None, None, group_size=2)
    assert out.true.tolist() == [1.0, 0.0, 0.0, 1.0]
    assert out.scores.tolist() == [1.0, 0.0, 0.0, 1.0]
    true = TrueReward(task).score(prompts, ["4", "5", "3", "2"], None, None, 2)
    assert true.scores.tolist() == true.true.tolist()
