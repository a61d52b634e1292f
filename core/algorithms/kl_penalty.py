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

from dataclasses import replace

import torch

from core.algorithms.base import MovingAverageBaseline, Objective, broadcast_sequence, stats
from core.algorithms.ppo import approx_kl, value_loss
from core.kl import kl_estimate
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


class KLPenalty(Objective):
    """The KL-penalised surrogate as the trainer runs it, with the KL to the frozen reference.

    Advantage of a completion: its score minus a baseline (none, a moving average of past scores,
    or a learned V(s_t)), the same on every token. The KL term is per-token `kl_estimator` against
    the reference, in the loss, weighted by beta from the adaptive controller. Use k2 or k3 here:
    as a loss, k1's gradient is zero in expectation (E_pi[grad log pi] = 0), so it would not
    regularise at all; k2's gradient equals the KL's own.
    """

    name = "kl_penalty"

    def __init__(self, cfg):
        super().__init__(cfg)
        self.needs_value_head = cfg.baseline == "value"
        self.moving = MovingAverageBaseline(cfg.baseline_momentum)

    def prepare(self, batch, beta):
        mask = batch.mask
        returns = broadcast_sequence(batch.scores, mask)
        b = self.baseline(returns, batch, self.moving, float(batch.scores.mean()))
        advantages = (returns - b) * mask
        return replace(batch, advantages=advantages, returns=returns), stats(
            "advantage", advantages, mask)

    def loss(self, out, batch, beta):
        cfg, mask = self.cfg, batch.mask
        kl_t = kl_estimate(out.logp, batch.logp_ref, cfg.kl_estimator)
        pg = kl_penalty_loss(out.logp, batch.logp_old, batch.advantages, kl_t, beta, mask)
        ent = masked_mean(out.entropy, mask)
        total = pg - cfg.ent_coef * ent
        metrics = {"loss/policy": pg.detach(),
                   "policy/approx_kl": approx_kl(out.logp, batch.logp_old, mask)}
        if out.values is not None:
            vl = value_loss(out.values, batch.returns, mask)
            total = total + cfg.vf_coef * vl
            metrics["loss/value"] = vl.detach()
        return total, metrics
