"""GRPO (Shao et al. 2024, "DeepSeekMath"): PPO without a critic.

For each prompt, sample a group of G completions; each completion's advantage is its reward
standardised within the group, (r - mean) / (std + eps)
(`core.advantages.group_relative_advantages`), so the group's own average plays the baseline the
value function played in PPO. The loss is PPO's
clipped surrogate plus a KL term to the frozen reference, estimated per token with k3:
    J = E[ min(ratio A, clip(ratio, 1-eps, 1+eps) A) ] - beta * E[ k3(pi_theta, pi_ref) ]

Departures from the paper, stated: means run over all real tokens of the batch (token-level, as in
DAPO and TRL's default) instead of per-sequence means then a mean over the group, so long
completions are not down-weighted; `std` can be turned off (Dr. GRPO). With a single update
per batch ratio = 1, the surrogate's value is 0 and only its gradient matters, which is why the
GRPO loss sits near 0 while the reward rises: watch the reward, not the loss.
"""

from __future__ import annotations

from core.algorithms.ppo import clipped_surrogate_loss
from core.kl import kl_estimate
from core.tensor_utils import Tensor, check_mask, masked_mean


def grpo_loss(logp_new, logp_old, logp_ref, advantages, clip_eps: float = 0.2, beta: float = 0.04,
              mask=None) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (loss, clip_frac, kl_mean): clipped surrogate + beta * mean k3 KL to pi_ref."""
    surrogate, clip_frac = clipped_surrogate_loss(logp_new, logp_old, advantages, clip_eps, mask)
    kl = kl_estimate(logp_new, logp_ref.detach(), "k3")
    kl_mean = masked_mean(kl, check_mask(mask, kl))
    return surrogate + beta * kl_mean, clip_frac, kl_mean.detach()
