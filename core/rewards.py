"""Rankings -> rewards by direct assignment (the lecture's first way to get a reward from people).

An annotator ranks K samples of one prompt; `rank_to_reward` turns each rank into a number the
policy can maximise. Ranks are 1-based and 1 is best. Ties are allowed and get equal reward,
because the reward is a function of the rank value alone.
"""

from __future__ import annotations

import torch

from core.config import FIELDS
from core.tensor_utils import Tensor

# the choices, with what each means, are written once, in the knob's metadata (core.config)
SCHEMES = FIELDS["rank_scheme"].metadata["choices"]


def _check_ranks(ranks) -> Tensor:
    ranks = torch.as_tensor(ranks)
    if ranks.dim() == 0:
        raise ValueError("ranks must have at least one dimension: [..., K] ranks of K items")
    ranks = ranks.to(torch.float32)
    k = ranks.shape[-1]
    if not torch.all(ranks == torch.round(ranks)):
        raise ValueError("ranks must be whole numbers (1 = best)")
    if ranks.numel() and (ranks.min() < 1 or ranks.max() > k):
        raise ValueError(
            f"ranks must lie in 1..K where K={k} is the number of ranked items (last dim); "
            f"got values from {int(ranks.min())} to {int(ranks.max())}"
        )
    return ranks


def rank_to_reward(ranks, scheme: str, lam: float = 1.0) -> Tensor:
    """Reward of each ranked item, same shape as `ranks` ([..., K], 1 = best).

    - "fixed":      best +1, worst -1, others 0. "Worst" is the largest rank present in the row, so
                    competition ties ([1, 2, 2] or [1, 3, 3]) still mark the tied last items -1.
                    A row where everything ties for first says nothing: all 0.
    - "normalized": (K - a) / (K - 1), in [0, 1]; best 1, rank K gives 0.
    - "log":        -ln(a); best 0, each worse place loses less than the one before.
    - "exp":        exp(-lam * a); lam > 0 sets how sharply reward falls with rank.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")
    a = _check_ranks(ranks)
    k = a.shape[-1]
    if scheme in ("fixed", "normalized") and k < 2:
        raise ValueError(f"scheme {scheme!r} needs at least K=2 ranked items, got K={k}")
    if scheme == "fixed":
        worst = a.amax(dim=-1, keepdim=True)
        reward = torch.zeros_like(a)
        spread = worst > 1
        reward = torch.where((a == 1) & spread, torch.ones_like(a), reward)
        reward = torch.where((a == worst) & spread, -torch.ones_like(a), reward)
        return reward
    if scheme == "normalized":
        return (k - a) / (k - 1)
    if scheme == "log":
        return -torch.log(a)
    if not (isinstance(lam, (int, float)) and lam > 0):
        raise ValueError(f"lam must be a positive number for scheme 'exp', got {lam!r}")
    return torch.exp(-lam * a)
