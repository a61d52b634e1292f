"""REINFORCE (Williams 1992), the lecture's first policy gradient.

grad J = E[ sum_t (G_t - b) grad log pi(a_t | s_t) ]: push up the log-probability of each sampled
token in proportion to how much better than the baseline b its return G_t was. The baseline does not
change the expected gradient, only its variance.

Departures: the loss is averaged over real tokens (mask) rather than summed per episode, so the
learning rate does not depend on the completion length; (G - b) is treated as a constant
(detached), as the derivation requires.
"""

from __future__ import annotations

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
