"""The objectives' primitives: hand numbers, gradients, masks."""

import math

import pytest
import torch

from core.algorithms.grpo import grpo_loss
from core.algorithms.kl_penalty import kl_penalty_loss
from core.algorithms.ppo import (
    approx_kl,
    clipped_surrogate_loss,
    entropy,
    ratio_outside_frac,
    value_loss,
)
from core.algorithms.reinforce import reinforce_loss
from core.tensor_utils import masked_mean

RATIOS = [0.7, 0.9, 1.0, 1.1, 1.3, 1.5, 0.75]
ADV = [1.0, 1.0, -1.0, -1.0, 1.0, -1.0, -1.0]


def close(a, b, tol=1e-5):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32),
                          torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_ppo_lecture_example():
    logp_new = torch.tensor(RATIOS).log()
    loss, clip_frac = clipped_surrogate_loss(logp_new, torch.zeros(7), torch.tensor(ADV), 0.2)
    assert close(loss, 0.228571)
    assert close(clip_frac, 2 / 7)
    # cleanrl's |ratio - 1| > eps count on the same inputs: 0.7, 1.3, 1.5, 0.75
    assert close(ratio_outside_frac(logp_new, torch.zeros(7), 0.2), 4 / 7)


def test_clipped_gradient_is_zero_where_the_clip_is_taken():
    logp_new = torch.tensor(RATIOS).log().requires_grad_()
    loss, _ = clipped_surrogate_loss(logp_new, torch.zeros(7), torch.tensor(ADV), 0.2)
    loss.backward()
    grad = logp_new.grad
    clipped = [4, 6]
    assert torch.all(grad[clipped] == 0)
    unclipped = [i for i in range(7) if i not in clipped]
    # d/dlogp of -ratio*A/N is -ratio*A/N where the unclipped term is taken
    expected = [-RATIOS[i] * ADV[i] / 7 for i in unclipped]
    assert close(grad[unclipped], expected)


def test_reinforce_gradient_is_minus_advantage_over_n():
    logp = torch.tensor([[-1.0, -2.0, -0.5, -3.0]], requires_grad=True)
    returns = torch.tensor([[2.0, 1.0, 0.5, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0]])
    loss = reinforce_loss(logp, returns, baseline=0.5, mask=mask)
    loss.backward()
    assert close(logp.grad, [[-(2.0 - 0.5) / 3, -(1.0 - 0.5) / 3, 0.0, 0.0]])
    # value: -mean((G-b) logp) over the 3 real tokens
    assert close(loss, -((1.5 * -1.0) + (0.5 * -2.0) + (0.0 * -0.5)) / 3)


def test_reinforce_without_baseline_and_with_tensor_baseline():
    logp, g = torch.tensor([-1.0, -1.0]), torch.tensor([1.0, 3.0])
    assert close(reinforce_loss(logp, g), 2.0)
    assert close(reinforce_loss(logp, g, baseline=torch.tensor([1.0, 1.0])), 1.0)
    with pytest.raises(ValueError, match="baseline"):
        reinforce_loss(logp, g, baseline=torch.zeros(3))


def test_kl_penalty_loss_by_hand():
    logp_old = torch.tensor([-1.0, -2.0])
    logp_new = logp_old + torch.tensor([math.log(1.2), math.log(0.5)])
    adv, kl = torch.tensor([1.0, -2.0]), torch.tensor([0.1, 0.3])
    # -(mean(1.2*1, 0.5*-2) - 0.5 * mean(0.1, 0.3)) = -(0.1 - 0.1) = 0
    assert close(kl_penalty_loss(logp_new, logp_old, adv, kl, beta=0.5), 0.0)
    assert close(kl_penalty_loss(logp_new, logp_old, adv, kl, beta=0.0), -0.1)


def test_value_loss_and_entropy_by_hand():
    assert close(value_loss(torch.tensor([1.0, 2.0]), torch.tensor([0.0, 4.0])), (1 + 4) / 4)
    uniform = torch.zeros(2, 3, 5)
    assert close(entropy(uniform), math.log(5))
    peaked = torch.tensor([[0.0, -1e9], [0.0, 0.0]])
    assert close(entropy(peaked), math.log(2) / 2)
    assert close(entropy(peaked, mask=torch.tensor([1.0, 0.0])), 0.0)


def test_approx_kl_is_zero_without_change_and_positive_after():
    logp = torch.tensor([-1.0, -2.0])
    assert close(approx_kl(logp, logp), 0.0)
    assert float(approx_kl(logp + torch.tensor([0.3, -0.3]), logp)) > 0


def test_grpo_loss_at_ratio_one():
    logp = torch.tensor([[-1.0, -2.0], [-0.5, -0.1]])
    adv = torch.tensor([[1.0, 1.0], [-1.0, -1.0]])
    loss, clip_frac, kl = grpo_loss(logp, logp, logp, adv, 0.2, beta=0.04)
    assert close(loss, 0.0) and close(clip_frac, 0.0) and close(kl, 0.0)
    ref = logp - 0.1
    loss, _, kl = grpo_loss(logp, logp, ref, adv, 0.2, beta=0.5)
    k3 = math.exp(-0.1) - 1 + 0.1
    assert close(kl, k3) and close(loss, 0.5 * k3)


def test_padding_never_changes_a_masked_mean():
    real = {
        "logp_new": torch.tensor([-1.0, -0.7, -2.2]),
        "logp_old": torch.tensor([-1.1, -0.9, -2.0]),
        "adv": torch.tensor([0.5, -1.0, 2.0]),
    }
    pad = torch.tensor([123.0, float("nan")])
    padded = {k: torch.cat([v, pad]) for k, v in real.items()}
    mask = torch.tensor([1.0, 1.0, 1.0, 0.0, 0.0])
    ones = torch.ones(3)
    pairs = [
        (clipped_surrogate_loss(real["logp_new"], real["logp_old"], real["adv"])[0],
         clipped_surrogate_loss(padded["logp_new"], padded["logp_old"], padded["adv"],
                                mask=mask)[0]),
        (reinforce_loss(real["logp_new"], real["adv"]),
         reinforce_loss(padded["logp_new"], padded["adv"], mask=mask)),
        (kl_penalty_loss(real["logp_new"], real["logp_old"], real["adv"], real["adv"], 0.3),
         kl_penalty_loss(padded["logp_new"], padded["logp_old"], padded["adv"],
                         padded["adv"], 0.3, mask=mask)),
        (value_loss(real["adv"], ones), value_loss(padded["adv"], torch.ones(5), mask=mask)),
        (masked_mean(real["adv"]), masked_mean(padded["adv"], mask)),
    ]
    for a, b in pairs:
        assert torch.isfinite(b) and close(a, b)


def test_shape_errors_name_the_arguments():
    with pytest.raises(ValueError, match="advantages"):
        clipped_surrogate_loss(torch.zeros(3), torch.zeros(3), torch.zeros(4))
    with pytest.raises(ValueError, match="mask"):
        clipped_surrogate_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), mask=torch.ones(2))
    with pytest.raises(ValueError, match="clip_eps"):
        clipped_surrogate_loss(torch.zeros(3), torch.zeros(3), torch.zeros(3), clip_eps=0)
    with pytest.raises(ValueError, match="returns"):
        value_loss(torch.zeros(2), torch.zeros(3))
