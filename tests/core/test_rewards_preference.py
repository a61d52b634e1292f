"""rank_to_reward, Bradley-Terry and Plackett-Luce against hand-computed numbers and properties."""

import itertools
import math

import pytest
import torch

from core.preference import (
    bradley_terry_loss,
    bradley_terry_prob,
    plackett_luce_log_likelihood,
    plackett_luce_nll,
)
from core.rewards import rank_to_reward


def close(a, b, tol=1e-5):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32),
                          torch.as_tensor(b, dtype=torch.float32), atol=tol)


@pytest.mark.parametrize(
    "scheme,expected",
    [
        ("fixed", [1.0, 0.0, 0.0, -1.0]),
        ("normalized", [1.0, 2 / 3, 1 / 3, 0.0]),
        ("log", [0.0, -math.log(2), -math.log(3), -math.log(4)]),
        ("exp", [math.exp(-1), math.exp(-2), math.exp(-3), math.exp(-4)]),
    ],
)
def test_rank_to_reward_schemes(scheme, expected):
    assert close(rank_to_reward(torch.tensor([1, 2, 3, 4]), scheme), expected)


def test_rank_to_reward_exp_lambda_and_batch_shape():
    ranks = torch.tensor([[[2, 1, 3]], [[3, 2, 1]]])
    out = rank_to_reward(ranks, "exp", lam=0.5)
    assert out.shape == ranks.shape
    assert close(out[0, 0], [math.exp(-1.0), math.exp(-0.5), math.exp(-1.5)])


def test_ties_get_equal_reward():
    for scheme in ("fixed", "normalized", "log", "exp"):
        r = rank_to_reward([1, 2, 2, 4], scheme)
        assert r[1] == r[2]
    # competition ties at the bottom are still "worst"
    assert close(rank_to_reward([1, 2, 3, 3], "fixed"), [1, 0, -1, -1])
    # everyone tied for first: no preference expressed, no reward either way
    assert close(rank_to_reward([1, 1, 1], "fixed"), [0, 0, 0])


@pytest.mark.parametrize("ranks", [[0, 1, 2], [1, 2, 4], [1.5, 2, 3]])
def test_rank_out_of_range_is_a_clear_error(ranks):
    with pytest.raises(ValueError, match="ranks"):
        rank_to_reward(ranks, "normalized")


def test_unknown_scheme_and_bad_lambda():
    with pytest.raises(ValueError, match="expected one of"):
        rank_to_reward([1, 2], "linear")
    with pytest.raises(ValueError, match="lam"):
        rank_to_reward([1, 2], "exp", lam=-1.0)
    with pytest.raises(ValueError, match="K=2"):
        rank_to_reward([1], "normalized")


def test_bradley_terry_prob_by_hand():
    # exp(2) / (exp(2) + exp(0.5)) = 1 / (1 + exp(-1.5)) = 0.8175745
    assert close(bradley_terry_prob(torch.tensor(2.0), torch.tensor(0.5)), 0.8175745)
    assert close(bradley_terry_prob([0.0], [0.0]), [0.5])


def test_bradley_terry_loss_by_hand():
    # pairs with margins 1 and -1: (ln(1+e^-1) + ln(1+e^1)) / 2 = (0.3132617 + 1.3132617) / 2
    loss = bradley_terry_loss(torch.tensor([1.0, 0.0]), torch.tensor([0.0, 1.0]))
    assert close(loss, 0.8132617)


def test_bradley_terry_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        bradley_terry_loss(torch.zeros(3), torch.zeros(4))


def test_plackett_luce_hand_numbers():
    assert close(plackett_luce_log_likelihood(torch.tensor([2.0, 1.0, 0.5, -1.0])), -1.251552)
    assert close(plackett_luce_nll(torch.zeros(4)), math.log(24))


def test_plackett_luce_probabilities_sum_to_one():
    scores = torch.tensor([0.3, -1.2, 2.0, 0.7, 0.0])
    total = sum(
        plackett_luce_log_likelihood(scores[list(order)]).exp()
        for order in itertools.permutations(range(5))
    )
    assert close(total, 1.0, tol=1e-5)


def test_plackett_luce_k2_equals_bradley_terry():
    s = torch.randn(10, 2, generator=torch.Generator().manual_seed(0))
    assert close(plackett_luce_nll(s), bradley_terry_loss(s[:, 0], s[:, 1]))


def test_plackett_luce_mean_over_leading_dims():
    s = torch.randn(3, 4, 5, generator=torch.Generator().manual_seed(1))
    assert plackett_luce_nll(s).shape == ()
    assert close(plackett_luce_nll(s), -plackett_luce_log_likelihood(s).mean())


def test_plackett_luce_needs_an_item_axis():
    with pytest.raises(ValueError, match="K"):
        plackett_luce_nll(torch.tensor(1.0))
