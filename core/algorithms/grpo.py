"""GRPO (Shao et al. 2024, "DeepSeekMath") and its family: PPO without a critic.

For each prompt, sample a group of G completions; each completion's advantage is its reward
standardised within the group, (r - mean) / (std + eps)
(`core.advantages.group_relative_advantages`), so the group's own average plays the baseline the
value function played in PPO. The loss is PPO's clipped surrogate plus a KL term to the frozen
reference (k3 by default), per token:
    l_t = -min(ratio_t A, clip(ratio_t, 1 - eps, 1 + eps_high) A) + beta * KL_t
    loss = mean over completions of (mean over each completion's tokens of l_t)      ("grpo")

The family, one knob each (TRL's names, so its users find them):
- `loss_type`, how the l_t are averaged:
  grpo     per-completion mean, then mean over completions (the paper); long completions weigh
           less per token, which biases towards short correct and long wrong answers;
  bnpo     mean over every real token of the minibatch;
  dr_grpo  sum over tokens / (completions x max_new_tokens): a constant, so no length bias
           (Liu et al. 2025, "Understanding R1-Zero-Like Training"; pair it with
           `scale_rewards=none` to also drop the std's difficulty bias);
  dapo     token sum / (tokens of the whole batch / minibatches), with clip-higher: eps_high 0.28
           unless set (Yu et al. 2025, "DAPO"). With one minibatch it equals bnpo in value.
- `scale_rewards`: group (GRPO), batch (PPO-Lite) or none (Dr. GRPO).
- `group_baseline="leave_one_out"`: RLOO's baseline (Ahmadian et al. 2024).
- `importance_sampling="sequence"`: GSPO (Zheng et al. 2025): one ratio per completion,
  exp(mean_t log(pi_theta / pi_old)), clipped with an eps around 3e-4.
- `kl_in="reward"`: the KL goes into each completion's score (score - beta sum_t KL_t) before
  grouping, as TRL's RLOO does, instead of into the loss.

Which KL the controller reads: the trainer's, on the KL to the frozen reference per completion
(`kl/mean`). With a single update per batch ratio = 1, the surrogate's value is 0 and only its
gradient matters, which is why the GRPO loss sits near 0 while the reward rises: watch the reward.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from core.advantages import constant_groups, group_relative_advantages
from core.algorithms.base import Objective, broadcast_sequence, stats
from core.algorithms.ppo import approx_kl, clipped_surrogate_terms
from core.config import FIELDS
from core.kl import kl_estimate
from core.tensor_utils import Tensor, as_tensor, check_mask, masked_mean

# the choices, with what each means, are written once, in the knob's metadata (core.config)
LOSS_TYPES = FIELDS["loss_type"].metadata["choices"]


def aggregate(per_token: Tensor, mask: Tensor, loss_type: str, max_len: int = 0,
              norm_tokens: float = 0.0) -> Tensor:
    """Average per-token losses [B, T] by `loss_type` (see the module docstring).

    max_len: dr_grpo's completion budget (default T); norm_tokens: dapo's token count for one
    minibatch's share of the whole batch (default: this minibatch's own count).
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown loss_type {loss_type!r}; "
                         f"expected one of {', '.join(LOSS_TYPES)}")
    m = check_mask(mask, per_token)
    kept = torch.where(m > 0, per_token, torch.zeros_like(per_token)) * m
    if loss_type == "grpo":
        per_seq = kept.sum(-1) / m.sum(-1).clamp_min(1.0)
        return per_seq.mean()
    if loss_type == "bnpo":
        return kept.sum() / m.sum().clamp_min(1.0)
    if loss_type == "dr_grpo":
        return kept.sum() / (per_token.shape[0] * (max_len or per_token.shape[-1]))
    return kept.sum() / max(float(norm_tokens) or float(m.sum()), 1.0)


def grpo_loss(logp_new, logp_old, logp_ref, advantages, clip_eps: float = 0.2, beta: float = 0.04,
              mask=None, loss_type: str = "bnpo", clip_eps_high: float | None = None,
              sequence_ratio: bool = False, kl_estimator: str = "k3", max_len: int = 0,
              norm_tokens: float = 0.0) -> tuple[Tensor, Tensor, Tensor]:
    """Returns (loss, clip_frac, kl_mean): the clipped surrogate plus beta * KL to pi_ref, per
    token, averaged by `loss_type`. beta = 0 drops the KL term (its value is still reported)."""
    logp_new = as_tensor(logp_new, "logp_new")
    m = check_mask(mask, logp_new)
    if m is None:
        m = torch.ones_like(logp_new)
    log_ratio = logp_new - as_tensor(logp_old, "logp_old", like=logp_new).detach()
    log_ratio = torch.where(m > 0, log_ratio, torch.zeros_like(log_ratio))
    if sequence_ratio:  # GSPO: one length-normalised ratio per completion, gradient kept
        seq = (log_ratio * m).sum(-1) / m.sum(-1).clamp_min(1.0)
        log_ratio = seq[:, None].expand_as(log_ratio)
    high = clip_eps if clip_eps_high is None else clip_eps_high
    objective, clipped = clipped_surrogate_terms(torch.exp(log_ratio), advantages, clip_eps, high)
    kl = kl_estimate(logp_new, as_tensor(logp_ref, "logp_ref", like=logp_new).detach(),
                     kl_estimator, mask=m)
    per_token = -objective + beta * kl if beta else -objective
    loss = aggregate(per_token, m, loss_type, max_len, norm_tokens)
    return loss, masked_mean(clipped, m).detach(), masked_mean(kl, m).detach()


class GRPO(Objective):
    """GRPO as the trainer runs it: consecutive rows of the batch form the groups."""

    name = "grpo"

    def prepare(self, batch, beta):
        cfg, mask = self.cfg, batch.mask
        scores = batch.scores
        kl_beta = self.reward_kl_beta(beta)
        if kl_beta:
            scores = scores - kl_beta * self.token_kl(batch.logp_old, batch).sum(-1)
        groups = scores.view(-1, batch.group_size)
        seq_adv = group_relative_advantages(groups, std=cfg.grpo_std,
                                            baseline=cfg.group_baseline,
                                            scale=cfg.scale_rewards).reshape(-1)
        advantages = broadcast_sequence(seq_adv, mask)
        # groups whose rewards are all equal have zero advantage: they teach nothing
        zero_std = constant_groups(groups).float().mean()
        metrics = {**stats("advantage", advantages, mask), "reward/frac_zero_std": float(zero_std)}
        return replace(batch, advantages=advantages, batch_tokens=float(mask.sum())), metrics

    def loss(self, out, batch, beta):
        cfg, mask = self.cfg, batch.mask
        loss, clip_frac, kl = grpo_loss(
            out.logp, batch.logp_old, batch.logp_ref, batch.advantages, cfg.clip_eps,
            beta if cfg.kl_in == "loss" else 0.0, mask, loss_type=cfg.loss_type,
            clip_eps_high=cfg.clip_high, sequence_ratio=cfg.importance_sampling == "sequence",
            kl_estimator=cfg.kl_estimator, max_len=batch.max_new_tokens,
            norm_tokens=batch.batch_tokens / cfg.minibatches)
        ent = masked_mean(out.entropy, mask)
        total = loss - cfg.ent_coef * ent
        return total, {"loss/policy": loss.detach(), "policy/clip_frac": clip_frac,
                       "policy/approx_kl": approx_kl(out.logp, batch.logp_old, mask),
                       f"kl/loss_{cfg.kl_estimator}": kl}
