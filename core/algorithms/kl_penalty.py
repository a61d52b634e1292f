"""The KL-penalised surrogate (TRPO's Lagrangian form; PPO paper section 4, "adaptive KL penalty").

TRPO maximises E[ratio * A] subject to KL(pi_old || pi) <= delta. Moving the constraint into the
objective with a weight beta gives an unconstrained problem:
    J(theta) = E[ ratio_t * A_t ] - beta * E[ KL_t ],  ratio_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t)
beta is then tuned by `core.kl.AdaptiveKLController` (halve below target/1.5, double above
target*1.5). The KL here is whatever per-token estimate the caller passes (to pi_old as in the PPO
paper, or to the frozen reference as in RLHF); the trainer's config says which.

Departure: means run over real tokens (mask) instead of per-episode sums.
"""

from __future__ import annotations

import torch

from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape, masked_mean


def kl_penalty_loss(logp_new, logp_old, advantages, kl, beta, mask=None) -> Tensor:
    """-(mean(ratio * A) - beta * mean(kl)), ratio = exp(logp_new - logp_old)."""
    logp_new = as_tensor(logp_new, "logp_new")
    logp_old = as_tensor(logp_old, "logp_old", like=logp_new)
    adv = as_tensor(advantages, "advantages", like=logp_new)
    kl = as_tensor(kl, "kl", like=logp_new)
    check_same_shape(logp_new=logp_new, logp_old=logp_old, advantages=adv, kl=kl)
    m = check_mask(mask, logp_new)
    ratio = torch.exp(logp_new - logp_old.detach())
    surrogate = masked_mean(ratio * adv.detach(), m)
    return -(surrogate - beta * masked_mean(kl, m))
