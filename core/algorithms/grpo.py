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

from dataclasses import replace

from core.advantages import group_relative_advantages
from core.algorithms.base import Objective, broadcast_sequence, stats
from core.algorithms.ppo import approx_kl, clipped_surrogate_loss
from core.kl import kl_estimate
from core.tensor_utils import Tensor, check_mask, masked_mean


def grpo_loss(logp_new, logp_old, logp_ref, advantages, clip_eps: float = 0.2, beta: float = 0.04,
              mask=None) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (loss, clip_frac, kl_mean): clipped surrogate + beta * mean k3 KL to pi_ref."""
    surrogate, clip_frac = clipped_surrogate_loss(logp_new, logp_old, advantages, clip_eps, mask)
    kl = kl_estimate(logp_new, logp_ref.detach(), "k3")
    kl_mean = masked_mean(kl, check_mask(mask, kl))
    return surrogate + beta * kl_mean, clip_frac, kl_mean.detach()


class GRPO(Objective):
    """GRPO as the trainer runs it: consecutive rows of the batch form the groups."""

    name = "grpo"

    def prepare(self, batch, beta):
        cfg, mask = self.cfg, batch.mask
        groups = batch.scores.view(-1, batch.group_size)
        seq_adv = group_relative_advantages(groups, std=cfg.grpo_std).reshape(-1)
        advantages = broadcast_sequence(seq_adv, mask)
        # groups whose rewards are all equal have zero advantage: they teach nothing
        zero_std = (groups.max(dim=-1).values == groups.min(dim=-1).values).float().mean()
        metrics = {**stats("advantage", advantages, mask), "reward/frac_zero_std": float(zero_std)}
        return replace(batch, advantages=advantages), metrics

    def loss(self, out, batch, beta):
        mask = batch.mask
        loss, clip_frac, kl = grpo_loss(out.logp, batch.logp_old, batch.logp_ref,
                                        batch.advantages, self.cfg.clip_eps, beta, mask)
        ent = masked_mean(out.entropy, mask)
        total = loss - self.cfg.ent_coef * ent
        return total, {"loss/policy": loss.detach(), "policy/clip_frac": clip_frac,
                       "policy/approx_kl": approx_kl(out.logp, batch.logp_old, mask),
                       "kl/loss_k3": kl}
