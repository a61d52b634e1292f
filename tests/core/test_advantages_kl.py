"""Returns, GAE, GRPO advantages, KL estimators and controllers: hand numbers and properties."""

import math

import pytest
import torch

from core.advantages import discounted_returns, gae, group_relative_advantages
from core.kl import (
    AdaptiveKLController,
    FixedKLController,
    kl_estimate,
    kl_penalized_rewards,
)


def close(a, b, tol=1e-5):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32),
                          torch.as_tensor(b, dtype=torch.float32), atol=tol)


def test_discounted_returns_by_hand():
    # G = [1 + .9*0 + .81*2, 0 + .9*2, 2]
    assert close(discounted_returns(torch.tensor([1.0, 0.0, 2.0]), 0.9), [2.62, 1.8, 2.0])


def test_discounted_returns_batch_and_mask():
    r = torch.tensor([[1.0, 1.0, 99.0], [1.0, 1.0, 1.0]])
    m = torch.tensor([[1.0, 1.0, 0.0], [1.0, 1.0, 1.0]])
    out = discounted_returns(r, 0.5, mask=m)
    assert close(out, [[1.5, 1.0, 0.0], [1.75, 1.5, 1.0]])


def test_gae_lecture_example():
    adv, ret = gae(torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.6, 0.7]), 1.0, 0.95)
    assert close(adv, [0.46575, 0.385, 0.3])
    assert close(ret, [0.96575, 0.985, 1.0])


def test_gae_lambda_one_is_monte_carlo_minus_value():
    r, v = torch.tensor([0.2, -0.1, 1.0, 0.5]), torch.tensor([0.3, 0.1, 0.4, 0.2])
    adv, _ = gae(r, v, 0.9, 1.0)
    assert close(adv, discounted_returns(r, 0.9) - v)


def test_gae_padding_never_changes_real_steps():
    r, v = torch.tensor([0.0, 0.0, 1.0]), torch.tensor([0.5, 0.6, 0.7])
    padded_r = torch.tensor([[0.0, 0.0, 1.0, 5.0, -3.0]])
    padded_v = torch.tensor([[0.5, 0.6, 0.7, 9.0, 9.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0, 0.0, 0.0]])
    adv_p, ret_p = gae(padded_r, padded_v, 1.0, 0.95, mask=mask)
    adv, ret = gae(r, v, 1.0, 0.95)
    assert close(adv_p[0, :3], adv) and close(ret_p[0, :3], ret)
    assert close(adv_p[0, 3:], [0.0, 0.0])


def test_gae_errors():
    with pytest.raises(ValueError, match="same shape"):
        gae(torch.zeros(3), torch.zeros(4), 1.0, 0.95)
    with pytest.raises(ValueError, match="gamma"):
        gae(torch.zeros(3), torch.zeros(3), 1.5, 0.95)


def test_group_relative_lecture_example():
    out = group_relative_advantages(torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0]), eps=0.0)
    assert close(out, [0.730297, -1.095445, -1.095445, 0.730297, 0.730297])


def test_group_relative_population_and_none():
    r = torch.tensor([1.0, 0.0, 0.0, 1.0, 1.0])
    # population std = sqrt(0.24) = 0.4898979
    assert close(group_relative_advantages(r, 0.0, std="population"),
                 (r - 0.6) / 0.4898979)
    assert close(group_relative_advantages(r, std="none"), r - 0.6)


def test_group_of_identical_rewards_is_zero_not_nan():
    for std in ("unbiased", "population", "none"):
        out = group_relative_advantages(torch.ones(2, 4), eps=0.0, std=std)
        assert torch.equal(out, torch.zeros(2, 4))
    assert torch.equal(group_relative_advantages(torch.ones(3, 1)), torch.zeros(3, 1))


def test_group_relative_groups_are_independent():
    r = torch.tensor([[1.0, 0.0], [10.0, 30.0]])
    out = group_relative_advantages(r, eps=0.0)
    assert close(out, [[0.7071068, -0.7071068], [-0.7071068, 0.7071068]])
    with pytest.raises(ValueError, match="std"):
        group_relative_advantages(r, std="bessel")


def test_kl_estimators_by_hand():
    logp, ref = torch.tensor([-1.0, -2.0]), torch.tensor([-1.5, -1.0])
    assert close(kl_estimate(logp, ref, "k1"), [0.5, -1.0])
    assert close(kl_estimate(logp, ref, "k2"), [0.125, 0.5])
    # k3 = exp(ref - logp) - 1 - (ref - logp)
    assert close(kl_estimate(logp, ref, "k3"),
                 [math.exp(-0.5) - 1 + 0.5, math.exp(1.0) - 1 - 1.0])


def test_kl_estimator_errors():
    with pytest.raises(ValueError, match="k1, k2, k3"):
        kl_estimate(torch.zeros(2), torch.zeros(2), "k4")
    with pytest.raises(ValueError, match="same shape"):
        kl_estimate(torch.zeros(2), torch.zeros(3), "k1")


def test_k1_and_k3_are_unbiased_on_a_sampled_categorical():
    p = torch.tensor([0.5, 0.3, 0.15, 0.05])
    q = torch.tensor([0.25, 0.25, 0.25, 0.25])
    exact = float((p * (p / q).log()).sum())
    gen = torch.Generator().manual_seed(0)
    idx = torch.multinomial(p, 400_000, replacement=True, generator=gen)
    logp, logq = p.log()[idx], q.log()[idx]
    for kind in ("k1", "k3"):
        assert abs(float(kl_estimate(logp, logq, kind).mean()) - exact) < 0.005, kind
    # k2 is biased: its mean differs measurably here
    assert abs(float(kl_estimate(logp, logq, "k2").mean()) - exact) > 0.01


def test_adaptive_kl_lecture_sequence():
    ctl = AdaptiveKLController(beta=1.0, target=0.01)
    betas = [ctl.update(kl) for kl in [0.02, 0.016, 0.012, 0.005, 0.004, 0.009, 0.03]]
    assert betas == [2, 4, 4, 2, 1, 1, 2]
    assert ctl.beta == 2


def test_adaptive_kl_bounds_and_interval():
    ctl = AdaptiveKLController(beta=0.05, target=1.0, beta_min=0.01)
    for _ in range(20):
        ctl.update(0.0)
    assert ctl.beta == 0.01
    ctl = AdaptiveKLController(beta=1.0, target=0.01, interval=2)
    assert ctl.update(0.05) == 1.0            # waiting for the second KL
    assert ctl.update(0.001) == 2.0           # mean 0.0255 > 0.015 -> doubled


def test_other_controllers():
    assert FixedKLController(0.1).update(50.0) == 0.1
    with pytest.raises(ValueError, match="target"):
        AdaptiveKLController(beta=1.0, target=0.0)


def test_kl_penalized_rewards_puts_score_on_last_real_token():
    kl = torch.tensor([[0.1, 0.2, 0.3], [0.5, 0.5, 7.0]])
    mask = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
    out = kl_penalized_rewards(torch.tensor([1.0, 2.0]), kl, beta=0.5, mask=mask)
    assert close(out, [[-0.05, -0.1, 1.0 - 0.15], [-0.25, 2.0 - 0.25, 0.0]])


def test_kl_estimate_masks_before_the_estimator():
    """A padded slot with a log-prob of -200 (temperature 0.1) must give 0 and a finite, zero
    gradient: k3's exp(-d) would overflow there and 0 * inf is NaN in backward."""
    logp = torch.tensor([[-1.0, -200.0]], requires_grad=True)
    ref = torch.tensor([[-1.2, -0.5]])
    mask = torch.tensor([[1.0, 0.0]])
    kl = kl_estimate(logp, ref, "k3", mask=mask)
    assert close(kl, [[math.exp(-0.2) - 1 + 0.2, 0.0]])
    kl.sum().backward()
    assert torch.isfinite(logp.grad).all() and logp.grad[0, 1] == 0


def test_whiten_of_a_constant_is_zero():
    from core.tensor_utils import whiten

    for value in (0.1, -0.37, 5.0):
        assert torch.equal(whiten(torch.full((64, 48), value)), torch.zeros(64, 48))
    x = torch.tensor([[0.3, 0.3, 9.0]])
    assert torch.equal(whiten(x, torch.tensor([[1.0, 1.0, 0.0]])), torch.zeros(1, 3))
    out = whiten(torch.tensor([1.0, 3.0]))
    assert close(out, [-1.0, 1.0])


def test_group_variants_by_hand():
    r = torch.tensor([[1.0, 0.0, 0.0, 1.0], [3.0, 1.0, 1.0, 1.0]])
    # leave-one-out: r_i - mean of the other three = 4/3 (r_i - mean)
    assert close(group_relative_advantages(r, std="none", baseline="leave_one_out"),
                 [[2 / 3, -2 / 3, -2 / 3, 2 / 3], [2.0, -2 / 3, -2 / 3, -2 / 3]])
    # batch scaling: centred by the group mean, divided by the std of all eight rewards
    batch_std = float(r.reshape(-1).std())
    assert close(group_relative_advantages(r, eps=0.0, scale="batch"),
                 (r - r.mean(-1, keepdim=True)) / batch_std)
    assert close(group_relative_advantages(r, scale="none"), r - r.mean(-1, keepdim=True))
    with pytest.raises(ValueError, match="leave_one_out"):
        group_relative_advantages(r, baseline="loo")


def test_adaptive_beta_zero_stays_off():
    ctl = AdaptiveKLController(beta=0.0, target=1.0, beta_min=0.01)
    assert [ctl.update(kl) for kl in (0.0, 50.0, 0.1)] == [0.0, 0.0, 0.0]
    with pytest.raises(ValueError, match="beta"):
        AdaptiveKLController(beta=-1.0, target=1.0)


def test_one_builder_and_one_interface_for_both_controllers():
    from core.kl import AdaptiveKLController, FixedKLController, make_controller

    fixed = make_controller("fixed", 0.3, 6.0)
    assert isinstance(fixed, FixedKLController) and fixed.target is None
    assert fixed.update(100.0) == 0.3
    adaptive = make_controller("adaptive", 0.3, 6.0, beta_min=0.1, interval=2)
    assert isinstance(adaptive, AdaptiveKLController) and adaptive.target == 6.0
    assert (adaptive.beta_min, adaptive.interval) == (0.1, 2)
    assert "target" not in vars(fixed)   # a saved state of a fixed controller holds only beta
    with pytest.raises(ValueError, match="unknown KL controller 'clever'"):
        make_controller("clever", 0.3, 6.0)
