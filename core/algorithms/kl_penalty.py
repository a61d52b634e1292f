"""The KL-penalised surrogate: TRPO's Lagrangian form, as in the lecture and the PPO paper (§4).

TRPO maximises E[ratio * A] subject to KL(pi_old || pi_theta) <= delta. Moving the constraint into
the objective with a weight beta gives an unconstrained problem that a few epochs of minibatch SGD
can optimise:
    J(theta) = E_t[ ratio_t * A_t ] - beta * E_t[ KL(pi_old || pi_theta)_t ],
    ratio_t = pi_theta(a_t|s_t) / pi_old(a_t|s_t).
After each update, d = KL(pi_old || pi_new) is measured on the batch and beta follows the
lecture's rule: halved when d < d_target / 1.5, doubled when d > 1.5 * d_target
(`core.kl.AdaptiveKLController`). Because the batch is reused for several epochs, ratio moves away
from 1 and the penalty is what keeps each update inside a trust region.

Which KL the controllers read (the two are never conflated):
- this objective's trust-region controller reads d = KL(pi_old || pi_new) per token, after the
  update (metrics `trust/kl`, `trust/beta`);
- the trainer's controller reads the KL to the frozen reference per completion (`kl/mean`,
  `kl/beta`), the RLHF regulariser, which enters the reward or the loss by `kl_in`.

Advantages are REINFORCE's (`Reinforce.prepare`): gamma^t (G_t - b). Departures, stated: the KL
in the penalty is estimated from the sampled tokens with k3, (r - 1) - log r with
r = pi_theta / pi_old, which is unbiased under pi_old and >= 0 (the paper uses the exact KL over
the action distribution); means run over real tokens (mask) instead of per-episode sums.
"""

from __future__ import annotations

import math

import torch

from core.algorithms.ppo import approx_kl, value_loss
from core.algorithms.reinforce import Reinforce
from core.kl import kl_estimate, make_controller
from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape, masked_mean


def kl_penalty_loss(logp_new, logp_old, advantages, kl, beta, mask=None) -> Tensor:
    """-(mean(ratio * A) - beta * mean(kl)), ratio = exp(logp_new - logp_old)."""
    logp_new = as_tensor(logp_new, "logp_new")
    logp_old = as_tensor(logp_old, "logp_old", like=logp_new)
    adv = as_tensor(advantages, "advantages", like=logp_new)
    kl = as_tensor(kl, "kl", like=logp_new)
    check_same_shape(logp_new=logp_new, logp_old=logp_old, advantages=adv, kl=kl)
    m = check_mask(mask, logp_new)
    log_ratio = logp_new - logp_old.detach()
    if m is not None:  # masked before exp: a padded slot must not overflow (0 * inf = NaN)
        log_ratio = torch.where(m > 0, log_ratio, torch.zeros_like(log_ratio))
    surrogate = masked_mean(torch.exp(log_ratio) * adv.detach(), m)
    return -(surrogate - beta * masked_mean(kl, m))


def trust_region_kl(logp_new, logp_old, mask=None) -> Tensor:
    """Per-token KL(pi_old || pi_theta) from tokens sampled from pi_old: k3 with the roles of the
    two policies swapped, r - 1 - log r, r = pi_theta / pi_old. Carries pi_theta's gradient."""
    return kl_estimate(as_tensor(logp_old, "logp_old").detach(), logp_new, "k3", mask=mask)


class KLPenalty(Reinforce):
    """The lecture's trust-region objective as the trainer runs it.

    prepare(): REINFORCE's advantages (per-token rewards with the reference KL when
    `kl_in == "reward"`, returns, baseline, gamma^t). loss(): the KL-penalised surrogate above with
    the trust-region beta, plus the reference KL when `kl_in == "loss"` and the value loss of a
    learned baseline. after_update(): d = KL(pi_old || pi_new), then the rule moves beta.
    """

    name = "kl_penalty"
    measures_update = True

    def __init__(self, cfg, live=None):
        super().__init__(cfg, live)
        # Inside [trust_beta_min, 1e6] the adaptive rule is exactly the lecture's.
        self.trust = make_controller(cfg.trust_controller, cfg.trust_beta, cfg.trust_target,
                                     beta_min=cfg.trust_beta_min, beta_max=1e6)
        self._beta_in_use = self.trust.beta

    def state(self):
        from core.algorithms.base import plain_state

        return {**super().state(), "trust": plain_state(self.trust),
                "beta_in_use": self._beta_in_use}

    def load_state(self, state):
        from core.algorithms.base import load_plain

        super().load_state(state)   # REINFORCE's moving baseline
        load_plain(self.trust, state.get("trust", {}))
        self._beta_in_use = state.get("beta_in_use", self.trust.beta)

    def prepare(self, batch, beta):
        batch, metrics = super().prepare(batch, beta)
        self._beta_in_use = self.trust.beta   # one beta for every epoch of this batch
        return batch, metrics

    def loss(self, out, batch, beta):
        cfg, mask = self.cfg, batch.mask
        tr_kl = trust_region_kl(out.logp, batch.logp_old, mask)
        pg = kl_penalty_loss(out.logp, batch.logp_old, batch.advantages, tr_kl,
                             self._beta_in_use, mask)
        ent = masked_mean(out.entropy, mask)
        total = pg - cfg.ent_coef * ent + self.kl_loss_term(out, batch, beta)
        metrics = {"loss/policy": pg.detach(),
                   "policy/approx_kl": approx_kl(out.logp, batch.logp_old, mask)}
        if out.values is not None:
            vl = value_loss(out.values, batch.returns, mask)
            total = total + cfg.vf_coef * vl
            metrics["loss/value"] = vl.detach()
        return total, metrics

    def after_update(self, batch, logp_new):
        d = float(masked_mean(trust_region_kl(logp_new, batch.logp_old, batch.mask),
                              batch.mask))
        used = self._beta_in_use
        if math.isfinite(d):
            self.trust.update(d)
        return {"trust/kl": d, "trust/beta": used,
                "trust/target": self._trust_target()}

    def _trust_target(self) -> float:
        """The adaptive rule's target; the configured one when β is fixed (no rule)."""
        return self.cfg.trust_target if self.trust.target is None else self.trust.target

    def live_values(self):
        return {"trust_beta": self.trust.beta,
                "trust_target": self._trust_target()}

    def apply_live(self, changes):
        if "trust_beta" in changes:
            self.trust.set_beta(changes["trust_beta"])
        if "trust_target" in changes:
            self.trust.set_target(changes["trust_target"])
