"""The lecture's formulas as plain numpy curves, for the Math panel's interactive pictures.

Each function draws one picture's y values from its x values. Where training code already owns
the formula (rank -> reward, the adaptive-beta constants) it is called or read from there, so a
picture cannot drift from what a run does; the others are re-derived in numpy and the tests check
them against the torch versions in `core.preference`, `core.algorithms.ppo` and `core.kl`.
"""

from __future__ import annotations

import inspect
import itertools

import numpy as np
import torch

from core.kl import AdaptiveKLController
from core.rewards import rank_to_reward

# Read from the controller's signature, not copied: the trainer builds it without `factor` or
# `scale`, so these defaults are the band every run uses.
_KL_PARAMS = inspect.signature(AdaptiveKLController).parameters
KL_FACTOR = float(_KL_PARAMS["factor"].default)
KL_SCALE = float(_KL_PARAMS["scale"].default)

ORDERS_OF_3 = tuple(itertools.permutations(range(3)))


def rank_rewards(k: int, scheme: str, lam: float = 1.0) -> np.ndarray:
    """Reward of ranks a = 1..k (1 = best) under `scheme`, exactly as training assigns it."""
    ranks = torch.arange(1, int(k) + 1)
    return rank_to_reward(ranks, scheme, lam).to(torch.float64).numpy()


def bradley_terry(delta, scale: float = 1.0) -> np.ndarray:
    """P(i beats j) = sigmoid(scale * (r_i - r_j)) for reward differences `delta`."""
    # tanh form: no overflow warning for large |delta|, and sigmoid(0) is exactly 0.5.
    return 0.5 * (1.0 + np.tanh(0.5 * scale * np.asarray(delta, dtype=float)))


def plackett_luce_prob(scores, order=None) -> np.ndarray:
    """P(items come out in `order`) for scores[..., K]; `order` lists item indices best first.

    P = prod_k exp(s_k) / sum_{m >= k} exp(s_m) over the scores taken in `order`: the same
    pick-the-best-of-the-rest product as core.preference.plackett_luce_log_likelihood, with the
    suffix log-sum-exps computed in log space so large scores do not overflow.
    """
    s = np.asarray(scores, dtype=float)
    if order is not None:
        s = s[..., list(order)]
    suffix = np.logaddexp.accumulate(s[..., ::-1], axis=-1)[..., ::-1]
    return np.exp((s - suffix).sum(axis=-1))


def order_probs(scores) -> np.ndarray:
    """P of each of the 3! orders of three items, in the order of ORDERS_OF_3."""
    s = np.asarray(scores, dtype=float)
    return np.array([plackett_luce_prob(s, order) for order in ORDERS_OF_3])


def order_label(order) -> str:
    """(0, 2, 1) -> '1≻3≻2': items are numbered from 1 on screen."""
    return "≻".join(str(i + 1) for i in order)


def ppo_clipped_objective(ratio, advantage: float, eps: float,
                          eps_high: float | None = None) -> np.ndarray:
    """min(ratio A, clip(ratio, 1 - eps, 1 + eps_high) A), eps_high defaulting to eps."""
    high = eps if eps_high is None else eps_high
    r = np.asarray(ratio, dtype=float)
    return np.minimum(r * advantage, np.clip(r, 1.0 - eps, 1.0 + high) * advantage)


def adaptive_beta_multiplier(kl, target: float = 1.0, factor: float = KL_FACTOR,
                             scale: float = KL_SCALE) -> np.ndarray:
    """What AdaptiveKLController.update multiplies beta by after seeing mean KL `kl`.

    The comparisons are the controller's own (kl < target / factor, kl > target * factor), not
    kl / target against 1 / factor, so even a KL exactly on a band edge gets the same answer.
    With target = 1 the argument is the ratio kl / target the panel plots against.
    Bounds (beta_min, beta_max) and beta = 0 are left out: they depend on the run, not on the KL.
    """
    d = np.asarray(kl, dtype=float)
    return np.where(d < target / factor, 1.0 / scale, np.where(d > target * factor, scale, 1.0))
