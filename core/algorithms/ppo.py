"""PPO with the clipped surrogate (Schulman et al. 2017, "Proximal Policy Optimization Algorithms").

    L_clip = E[ min(ratio_t A_t, clip(ratio_t, 1 - eps, 1 + eps) A_t) ]
    J = L_clip - c1 * L_VF + c2 * S[pi]          (the loss minimised is -J)

The min makes the objective a pessimistic bound: once the ratio has moved past 1 +/- eps in the
direction the advantage favours, the clipped (constant) term is taken and that token's gradient is
zero, so one batch cannot push the policy far.

Choices where libraries disagree, stated:
- clip fraction = share of real tokens where the clipped term is strictly smaller than the unclipped
  one, i.e. where the clip is what the objective took (TRL, verl). cleanrl instead counts
  |ratio - 1| > eps, which also counts tokens on the harmless side; `ratio_outside_frac` computes
  that one for comparison (0.571 vs 0.286 on the same inputs in the tests).
- value loss = mean (V - V_target)^2 / 2, with V_target the GAE returns (A + V_old).
- means run over real tokens (mask) rather than per-sequence sums.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from core.advantages import gae
from core.algorithms.base import Objective, explained_variance, stats
from core.kl import kl_penalized_rewards
from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape, masked_mean, whiten


def _ratio_inputs(logp_new, logp_old, advantages, mask):
    logp_new = as_tensor(logp_new, "logp_new")
    logp_old = as_tensor(logp_old, "logp_old", like=logp_new)
    adv = as_tensor(advantages, "advantages", like=logp_new)
    check_same_shape(logp_new=logp_new, logp_old=logp_old, advantages=adv)
    m = check_mask(mask, logp_new)
    log_ratio = logp_new - logp_old.detach()
    if m is not None:  # masked before exp: a padded slot must not overflow (0 * inf = NaN)
        log_ratio = torch.where(m > 0, log_ratio, torch.zeros_like(log_ratio))
    return torch.exp(log_ratio), adv.detach(), m


def clipped_surrogate_terms(ratio: Tensor, advantages: Tensor, clip_eps: float,
                            clip_eps_high: float | None = None) -> tuple[Tensor, Tensor]:
    """Per token: (min(ratio A, clip(ratio, 1 - eps, 1 + eps_high) A), 1.0 where the clipped term
    is strictly smaller, i.e. where the clip is what the objective took)."""
    high = clip_eps if clip_eps_high is None else clip_eps_high
    for name, eps in (("clip_eps", clip_eps), ("clip_eps_high", high)):
        if not (isinstance(eps, (int, float)) and eps > 0):
            raise ValueError(f"{name} must be a positive number, got {eps!r}")
    adv = advantages.detach()
    unclipped = ratio * adv
    clipped = torch.clamp(ratio, 1.0 - clip_eps, 1.0 + high) * adv
    return torch.minimum(unclipped, clipped), (clipped < unclipped).to(ratio.dtype)


def clipped_surrogate_loss(logp_new, logp_old, advantages, clip_eps: float = 0.2,
                           mask=None, clip_eps_high: float | None = None) -> tuple[Tensor, Tensor]:
    """Returns (loss, clip_frac): loss = -mean(min(ratio A, clip(ratio, 1-eps, 1+eps) A)).
    `clip_eps_high` makes the range asymmetric, [1 - eps, 1 + eps_high] (DAPO's clip-higher)."""
    ratio, adv, m = _ratio_inputs(logp_new, logp_old, advantages, mask)
    objective, clipped = clipped_surrogate_terms(ratio, adv, clip_eps, clip_eps_high)
    return -masked_mean(objective, m), masked_mean(clipped, m).detach()


def ratio_outside_frac(logp_new, logp_old, clip_eps: float = 0.2, mask=None) -> Tensor:
    """cleanrl's clip fraction, |ratio - 1| > eps, for comparison with the one above."""
    logp_new = as_tensor(logp_new, "logp_new")
    logp_old = as_tensor(logp_old, "logp_old", like=logp_new)
    check_same_shape(logp_new=logp_new, logp_old=logp_old)
    ratio = torch.exp(logp_new - logp_old).detach()
    return masked_mean(((ratio - 1.0).abs() > clip_eps).to(ratio.dtype), check_mask(mask, ratio))


def value_loss(values, returns, mask=None) -> Tensor:
    """mean of (V - V_target)^2 / 2 over real tokens; the target is a constant."""
    v = as_tensor(values, "values")
    target = as_tensor(returns, "returns", like=v)
    check_same_shape(values=v, returns=target)
    return 0.5 * masked_mean((v - target.detach()) ** 2, check_mask(mask, v))


def entropy(logits, mask=None) -> Tensor:
    """Mean token entropy of softmax(logits); logits [..., V], mask [...] over the tokens."""
    logits = as_tensor(logits, "logits")
    if logits.dim() == 0:
        raise ValueError("logits must have a vocabulary dimension: shape [..., V]")
    logp = torch.log_softmax(logits, dim=-1)
    per_token = -(logp.exp() * logp).sum(dim=-1)
    return masked_mean(per_token, check_mask(mask, per_token))


def approx_kl(logp_new, logp_old, mask=None) -> Tensor:
    """KL(pi_old || pi_new) from tokens sampled from pi_old, the k3 estimator (cleanrl's
    `approx_kl`, TRL's `policy/approxkl`): how far one update moved the policy."""
    d = as_tensor(logp_new, "logp_new") - as_tensor(logp_old, "logp_old")
    est = (torch.exp(d) - 1.0 - d).detach()
    return masked_mean(est, check_mask(mask, est))


class PPO(Objective):
    """PPO for RLHF as the trainer runs it (lm-human-preferences / TRL's PPO shape).

    Per-token reward: the sequence score on the last token, -beta * KL_t to the reference on every
    token (`kl_in == "reward"`). A value head on the policy's trunk gives V(s_t); GAE(gamma, lambda)
    gives advantages and the value targets (returns = A + V_old); advantages are whitened over the
    batch. Then `epochs` passes of `minibatches` minibatches of
        loss = -L_clip + c1 * L_VF - c2 * S.
    Departure: the value head is a linear head on the policy's hidden states (one model on a
    laptop) instead of a separate critic, and its gradient stops at those states: when the value
    loss also trained the shared trunk, it overwrote the policy (PPO collapsed into noise within
    100 steps at lr 4e-5). No value clipping.

    Which KL the controller reads: the trainer's, on the KL to the frozen reference per completion
    (`kl/mean`). The clip, not a penalty, is PPO's trust region; `policy/approx_kl` reports
    KL(pi_old || pi_theta) for comparison with the KL-penalised objective's `trust/kl`.
    """

    name = "ppo"
    needs_value_head = True

    def prepare(self, batch, beta):
        cfg, mask = self.cfg, batch.mask
        kl_t = self.token_kl(batch.logp_old, batch)
        rewards = kl_penalized_rewards(batch.scores, kl_t, self.reward_kl_beta(beta), mask)
        advantages, returns = gae(rewards, batch.values_old, cfg.gamma, cfg.gae_lambda, mask)
        raw = stats("advantage", advantages, mask)
        if cfg.whiten_advantages:
            advantages = whiten(advantages, mask)
        metrics = {**raw, "value/explained_variance":
                   explained_variance(batch.values_old, returns, mask)}
        return replace(batch, advantages=advantages, returns=returns), metrics

    def loss(self, out, batch, beta):
        cfg, mask = self.cfg, batch.mask
        pg, clip_frac = clipped_surrogate_loss(out.logp, batch.logp_old, batch.advantages,
                                               cfg.clip_eps, mask)
        vl = value_loss(out.values, batch.returns, mask)
        ent = masked_mean(out.entropy, mask)
        total = pg + cfg.vf_coef * vl - cfg.ent_coef * ent + self.kl_loss_term(out, batch, beta)
        return total, {"loss/policy": pg.detach(), "loss/value": vl.detach(),
                       "policy/clip_frac": clip_frac,
                       "policy/approx_kl": approx_kl(out.logp, batch.logp_old, mask)}
