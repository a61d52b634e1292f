"""REINFORCE (Williams 1992), the lecture's first policy gradient.

grad J = E[ sum_t (G_t - b) grad log pi(a_t | s_t) ]: push up the log-probability of each sampled
token in proportion to how much better than the baseline b its return G_t was. The baseline does not
change the expected gradient, only its variance.

Departures: the loss is averaged over real tokens (mask) rather than summed per episode, so the
learning rate does not depend on the completion length; (G - b) is treated as a constant
(detached), as the derivation requires.
"""

from __future__ import annotations

from dataclasses import replace

import torch

from core.advantages import discounted_returns
from core.algorithms.base import MovingAverageBaseline, Objective, stats
from core.algorithms.ppo import value_loss
from core.kl import kl_penalized_rewards
from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape, masked_mean


def reinforce_loss(logp, returns, baseline=None, mask=None) -> Tensor:
    """-mean((G - b) * logp) over real tokens.

    logp: log pi(a_t|s_t) of the sampled tokens [..., T] (with grad); returns: G_t, same shape;
    baseline: None, a number, or a tensor broadcastable to returns (e.g. a learned V(s_t)).
    The gradient with respect to each logp_t is -(G_t - b) / N, N = number of real tokens.
    """
    logp = as_tensor(logp, "logp")
    g = as_tensor(returns, "returns", like=logp)
    check_same_shape(logp=logp, returns=g)
    if baseline is not None:
        b = as_tensor(baseline, "baseline", like=g)
        try:
            g = g - b
        except RuntimeError as exc:
            raise ValueError(
                f"baseline {tuple(b.shape)} must broadcast to returns {tuple(g.shape)}"
            ) from exc
        if g.shape != logp.shape:
            raise ValueError(f"baseline {tuple(b.shape)} changed the shape of returns")
    weight = g.detach()
    return -masked_mean(weight * logp, check_mask(mask, logp))


class Reinforce(Objective):
    """REINFORCE as the trainer runs it.

    Per-token reward: the sequence score on the last token, minus beta * KL_t to the reference on
    every token when `kl_in == "reward"`. G_t = discounted return; the gradient weight of token t is
    gamma^t (G_t - b_t) (the lecture's gamma^t factor; with gamma = 1 it is 1). Baseline: none, a
    moving average of G_0 over past steps (never this batch, so it stays unbiased), or a learned
    V(s_t) from a value head trained with c1 * (V - G)^2 / 2.

    Which KL the controller reads: the trainer's, on the KL to the frozen reference per completion
    (`kl/mean`); with `kl_in == "loss"` that KL is a loss term instead (k2 or k3: k1's gradient
    is zero in expectation). REINFORCE has no trust region: one update per batch.
    """

    name = "reinforce"

    def __init__(self, cfg, live=None):
        super().__init__(cfg, live)
        self.needs_value_head = cfg.baseline == "value"
        self.moving = MovingAverageBaseline(cfg.baseline_momentum)

    def state(self):
        from core.algorithms.base import plain_state

        return {"moving": plain_state(self.moving)}

    def load_state(self, state):
        from core.algorithms.base import load_plain

        load_plain(self.moving, state.get("moving", {}))

    def prepare(self, batch, beta):
        cfg, mask = self.cfg, batch.mask
        kl_t = self.token_kl(batch.logp_old, batch)
        rewards = kl_penalized_rewards(batch.scores, kl_t, self.reward_kl_beta(beta), mask)
        returns = discounted_returns(rewards, cfg.gamma, mask)
        b = self.baseline(returns, batch, self.moving, float(returns[:, 0].mean()))
        discount = cfg.gamma ** torch.arange(mask.shape[1], device=mask.device, dtype=mask.dtype)
        advantages = discount * (returns - b) * mask
        metrics = stats("advantage", advantages, mask)
        metrics["reward/baseline"] = float(masked_mean(b[:, 0], None))
        return replace(batch, advantages=advantages, returns=returns), metrics

    def loss(self, out, batch, beta):
        cfg, mask = self.cfg, batch.mask
        # (G - b) and gamma^t were folded into `advantages` by prepare().
        pg = reinforce_loss(out.logp, batch.advantages, mask=mask)
        ent = masked_mean(out.entropy, mask)
        total = pg - cfg.ent_coef * ent + self.kl_loss_term(out, batch, beta)
        metrics = {"loss/policy": pg.detach()}
        if out.values is not None:
            vl = value_loss(out.values, batch.returns, mask)
            total = total + cfg.vf_coef * vl
            metrics["loss/value"] = vl.detach()
        return total, metrics
