"""Preference models: Bradley-Terry for pairs, Plackett-Luce for whole rankings.

Both say how likely a ranking is given a score per item. A reward model is trained by making the
rankings people gave likely (minimising these negative log-likelihoods).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.tensor_utils import Tensor, as_tensor


def _pair(r_i, r_j, names: tuple[str, str]) -> tuple[Tensor, Tensor]:
    r_i = as_tensor(r_i, names[0])
    r_j = as_tensor(r_j, names[1], like=r_i)
    if r_i.shape != r_j.shape:
        raise ValueError(
            f"{names[0]} and {names[1]} must have the same shape (one score per pair); "
            f"got {tuple(r_i.shape)} and {tuple(r_j.shape)}"
        )
    return r_i, r_j


def bradley_terry_prob(r_i, r_j) -> Tensor:
    """P(i beats j) = exp(r_i) / (exp(r_i) + exp(r_j)) = sigmoid(r_i - r_j), elementwise."""
    r_i, r_j = _pair(r_i, r_j, ("r_i", "r_j"))
    return torch.sigmoid(r_i - r_j)


def bradley_terry_loss(r_chosen, r_rejected) -> Tensor:
    """Mean over pairs of -log sigmoid(r_chosen - r_rejected).

    logsigmoid is used rather than log(sigmoid(.)) so a confident wrong pair costs a large finite
    loss instead of inf.
    """
    r_c, r_r = _pair(r_chosen, r_rejected, ("r_chosen", "r_rejected"))
    return -F.logsigmoid(r_c - r_r).mean()


def plackett_luce_log_likelihood(scores) -> Tensor:
    """log P(ranking) for each ranking: scores[..., K] listed best first -> shape [...].

    P = prod_k exp(s_k) / sum_{m >= k} exp(s_m): pick the best among all, then the next among the
    rest, and so on. The suffix log-sum-exps come from one logcumsumexp over the reversed scores.
    """
    s = as_tensor(scores, "scores")
    if s.dim() == 0 or s.shape[-1] < 1:
        raise ValueError("scores must have shape [..., K] with K >= 1 items listed best first")
    suffix_lse = torch.logcumsumexp(s.flip(-1), dim=-1).flip(-1)
    return (s - suffix_lse).sum(dim=-1)


def plackett_luce_nll(scores) -> Tensor:
    """Mean over leading dims of -log P(ranking); scores[..., K] listed best first.

    For K = 2 this is exactly the Bradley-Terry loss of (scores[..., 0], scores[..., 1]).
    """
    return -plackett_luce_log_likelihood(scores).mean()
