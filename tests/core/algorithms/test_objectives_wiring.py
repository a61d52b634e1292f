"""Each objective's prepare() and loss() on hand-built rollouts, against numbers worked by hand.

These pin the wiring: which tensors reach which loss, with which sign and weight. The primitives
have their own tests (test_algorithms_math.py); here a bug such as "the ratio taken against the
reference", "G + b", "gamma^t dropped" or "a KL computed from detached log-probs" fails a test.
"""

import math

import pytest
import torch

from core.algorithms import PolicyOutput, Rollout, make_objective
from core.config import RunConfig

MASK = torch.tensor([[1.0, 1.0, 1.0], [1.0, 1.0, 0.0]])
LOGP_OLD = torch.tensor([[-1.0, -1.0, -1.0], [-2.0, -2.0, 0.0]])
LOGP_REF = torch.tensor([[-1.5, -1.0, -0.5], [-2.0, -1.0, 0.0]])   # k1 = [[.5, 0, -.5], [0, -1]]
SCORES = torch.tensor([1.0, -1.0])


def close(a, b, tol=1e-5):
    return torch.allclose(torch.as_tensor(a, dtype=torch.float32),
                          torch.as_tensor(b, dtype=torch.float32), atol=tol)


def rollout(scores=SCORES, logp_old=LOGP_OLD, logp_ref=LOGP_REF, mask=MASK, group_size=2,
            values=None, max_new_tokens=0):
    B, T = mask.shape
    ids = torch.zeros(B, 1 + T, dtype=torch.long)
    return Rollout(ids, torch.ones(B, 1 + T), 1, mask, logp_old * mask, logp_ref * mask, values,
                   scores, group_size, max_new_tokens=max_new_tokens)


def policy_output(logp, values=None):
    logp = logp.clone().requires_grad_(True)
    return PolicyOutput(logp, torch.zeros_like(logp), values), logp


# ------------------------------------------------------------------ REINFORCE
def reinforce_cfg(**kw):
    return RunConfig.for_algo("reinforce", **{"gamma": 0.5, "kl_in": "reward", **kw})


def test_reinforce_prepare_by_hand():
    # rewards = -0.1 k1 per token, + score on the last real token:
    #   row 0: [-0.05, 0, 0.05 + 1] ; row 1: [0, 0.1 - 1]
    # G (gamma 0.5): row 0: [0.2125, 0.525, 1.05] ; row 1: [-0.45, -0.9]
    # weight gamma^t (G_t - b), b = 0 on the first step (no history yet)
    obj = make_objective(reinforce_cfg())
    batch, metrics = obj.prepare(rollout(), beta=0.1)
    assert close(batch.returns, [[0.2125, 0.525, 1.05], [-0.45, -0.9, 0.0]])
    assert close(batch.advantages, [[0.2125, 0.2625, 0.2625], [-0.45, -0.45, 0.0]])
    # second batch: b = the (debiased) moving average of the first batch's mean G_0 = -0.11875
    batch2, metrics2 = obj.prepare(rollout(), beta=0.1)
    assert metrics2["reward/baseline"] == pytest.approx(-0.11875)
    assert close(batch2.advantages[0, 0], 0.2125 + 0.11875)
    assert close(batch2.advantages[1, 1], 0.5 * (-0.9 + 0.11875))


def test_reinforce_loss_gradient_is_minus_weight_over_n_and_zero_on_padding():
    obj = make_objective(reinforce_cfg())
    batch, _ = obj.prepare(rollout(), beta=0.1)
    out, logp = policy_output(LOGP_OLD)
    loss, metrics = obj.loss(out, batch, beta=0.1)
    loss.backward()
    assert close(logp.grad, -batch.advantages / 5)        # 5 real tokens
    assert logp.grad[1, 2] == 0
    assert "loss/policy" in metrics


def test_kl_in_the_loss_carries_the_policys_gradient():
    # k2 in the loss: beta * mean((logp - ref)^2 / 2) -> gradient beta (logp - ref) / N
    cfg = reinforce_cfg(kl_in="loss", kl_estimator="k2", gamma=1.0, baseline="none")
    obj = make_objective(cfg)
    batch, _ = obj.prepare(rollout(scores=torch.zeros(2)), beta=0.4)
    assert close(batch.advantages, torch.zeros(2, 3))     # the KL is not in the reward now
    out, logp = policy_output(LOGP_OLD)
    loss, _ = obj.loss(out, batch, beta=0.4)
    loss.backward()
    assert close(logp.grad, 0.4 * (LOGP_OLD - LOGP_REF) * MASK / 5)


# ------------------------------------------------------------------ the trust-region penalty
def kl_penalty_cfg(**kw):
    return RunConfig.for_algo("kl_penalty", **{"gamma": 1.0, "baseline": "none",
                                               "trust_beta": 2.0, "trust_target": 0.01, **kw})


def test_kl_penalty_prepare_is_reinforces():
    a, _ = make_objective(kl_penalty_cfg()).prepare(rollout(), beta=0.1)
    b, _ = make_objective(reinforce_cfg(gamma=1.0, baseline="none")).prepare(rollout(), beta=0.1)
    assert close(a.advantages, b.advantages)


def test_kl_penalty_loss_uses_pi_old_and_the_trust_region_beta():
    obj = make_objective(kl_penalty_cfg())
    batch, _ = obj.prepare(rollout(scores=torch.tensor([1.0, -1.0])), beta=0.0)
    # advantages: row 0 = 1 on 3 tokens, row 1 = -1 on 2 tokens. New policy: +0.1 on every token
    out, logp = policy_output(LOGP_OLD + 0.1)
    loss, _ = obj.loss(out, batch, beta=0.0)
    r = math.exp(0.1)
    k3 = r - 1 - 0.1                                       # KL(pi_old || pi_theta) per token
    surrogate = (3 * r - 2 * r) / 5
    assert loss.item() == pytest.approx(-(surrogate - 2.0 * k3), abs=1e-6)
    loss.backward()
    # d/dlogp of -(r A)/N + beta (r - 1 - log r)/N = (-r A + beta (r - 1)) / N
    expected = (-r * batch.advantages + 2.0 * (r - 1) * MASK) / 5
    assert close(logp.grad, expected)


def test_kl_penalty_adapts_beta_from_kl_old_new_after_the_update():
    obj = make_objective(kl_penalty_cfg())
    batch, _ = obj.prepare(rollout(), beta=0.0)
    d_big = math.exp(0.3) - 1 - 0.3                         # 0.0499 > 1.5 * 0.01
    m = obj.after_update(batch, (LOGP_OLD + 0.3) * MASK)
    assert m["trust/kl"] == pytest.approx(d_big, abs=1e-6)
    assert m["trust/beta"] == 2.0 and obj.trust.beta == 4.0       # doubled
    obj.prepare(rollout(), beta=0.0)
    m = obj.after_update(batch, LOGP_OLD * MASK)                    # d = 0 < 0.01 / 1.5
    assert m["trust/beta"] == 4.0 and obj.trust.beta == 2.0         # halved
    assert m["trust/kl"] == 0.0


def test_kl_penalty_reference_kl_is_a_separate_term():
    # In the reward, the reference KL changes the advantages but not the trust-region term.
    obj = make_objective(kl_penalty_cfg(kl_in="reward"))
    batch, _ = obj.prepare(rollout(scores=torch.zeros(2)), beta=1.0)
    # rewards -k1: row 0 [-0.5, 0, 0.5] -> G [0, 0.5, 0.5]; row 1 [0, 1] -> G [1, 1]
    assert close(batch.advantages, [[0.0, 0.5, 0.5], [1.0, 1.0, 0.0]])
    out, _ = policy_output(LOGP_OLD)
    loss, _ = obj.loss(out, batch, beta=1.0)       # ratio 1, trust KL 0, no reference KL term
    assert loss.item() == pytest.approx(-float(batch.advantages.sum()) / 5, abs=1e-6)


# ------------------------------------------------------------------ PPO
def test_ppo_prepare_gae_targets_are_raw_and_advantages_whitened():
    from core.advantages import gae
    from core.kl import kl_penalized_rewards
    from core.tensor_utils import whiten

    cfg = RunConfig.for_algo("ppo", gamma=1.0, gae_lambda=0.95, kl_in="reward")
    obj = make_objective(cfg)
    values = torch.tensor([[0.1, 0.2, 0.3], [0.0, -0.5, 0.0]])
    batch, metrics = obj.prepare(rollout(values=values * MASK), beta=0.1)
    rewards = kl_penalized_rewards(SCORES, (LOGP_OLD - LOGP_REF) * MASK, 0.1, MASK)
    adv, ret = gae(rewards, values * MASK, 1.0, 0.95, MASK)
    assert close(batch.returns, ret)                        # the value target: A + V, raw
    assert close(batch.advantages, whiten(adv, MASK))
    # by hand for row 1: rewards [0, -0.9]; deltas [0 - 0.5 - 0, -0.9 + 0.5] = [-0.5, -0.4]
    assert close(adv[1, :2], [-0.5 + 0.95 * -0.4, -0.4])


def test_ppo_loss_is_clipped_surrogate_plus_value_loss():
    cfg = RunConfig.for_algo("ppo", gamma=1.0, kl_in="reward", vf_coef=0.5, clip_eps=0.2)
    obj = make_objective(cfg)
    values = torch.zeros(2, 3)
    batch, _ = obj.prepare(rollout(values=values), beta=0.0)
    adv = batch.advantages
    out, logp = policy_output(LOGP_OLD + 0.5, values=torch.zeros(2, 3, requires_grad=True))
    loss, m = obj.loss(out, batch, beta=0.0)
    r = math.exp(0.5)
    clipped = torch.where(adv > 0, 1.2 * adv, r * adv)      # min(r A, clip(r) A), r = 1.65
    vl = 0.5 * ((batch.returns ** 2) * MASK).sum() / 5
    expected = -(clipped * MASK).sum() / 5 + 0.5 * vl
    assert loss.item() == pytest.approx(float(expected), abs=1e-5)
    assert m["policy/clip_frac"].item() == pytest.approx(float(((adv > 0) & (MASK > 0)).sum()) / 5)


# ------------------------------------------------------------------ GRPO and its family
GROUP_SCORES = torch.tensor([1.0, 0.0, 0.5, 0.5])
GMASK = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 0.0, 0.0],
                      [1.0, 1.0, 1.0, 0.0], [1.0, 0.0, 0.0, 0.0]])


def grpo_rollout(scores=GROUP_SCORES):
    zeros = torch.zeros(4, 4)
    return rollout(scores=scores, logp_old=zeros - 1.0, logp_ref=zeros - 1.0, mask=GMASK,
                   max_new_tokens=6)


def grpo_cfg(**kw):
    return RunConfig.for_algo("grpo", **kw)


def test_grpo_prepare_standardises_within_groups_and_zeroes_constant_ones():
    batch, m = make_objective(grpo_cfg()).prepare(grpo_rollout(), beta=0.0)
    s = 1 / (math.sqrt(0.5) + 1e-6) * 0.5                  # (1 - 0.5) / (std 0.7071 + eps)
    assert close(batch.advantages, torch.tensor([[s] * 4, [-s] * 2 + [0] * 2, [0] * 4,
                                                 [0] * 4]))
    assert m["reward/frac_zero_std"] == 0.5


def _inexact_mean_value(g: int) -> float:
    """A reward whose float32 mean over g identical copies misses it by rounding."""
    for v in torch.linspace(0.01, 0.99, 400).tolist():
        r = torch.full((g,), v)
        if (r - r.mean()).abs().max() > 0:
            return v
    raise AssertionError("no such value")


@pytest.mark.parametrize("scale", ["group", "none"])
def test_identical_rewards_give_exactly_zero_advantage_despite_rounding(scale):
    # float32 rounding of the mean left +-1e-9 after centring; divided by a std of ~1e-9 plus
    # eps it became advantages of up to ~0.1 on every token of a group that teaches nothing.
    g = 8
    scores = torch.full((2 * g,), _inexact_mean_value(g))
    scores[g:] = 0.7
    mask = torch.ones(2 * g, 2)
    r = Rollout(torch.zeros(2 * g, 3, dtype=torch.long), torch.ones(2 * g, 3), 1, mask, mask * 0,
                mask * 0, None, scores, g)
    batch, m = make_objective(grpo_cfg(scale_rewards=scale)).prepare(r, beta=0.0)
    assert torch.equal(batch.advantages, torch.zeros(2 * g, 2))
    assert m["reward/frac_zero_std"] == 1.0


def test_rloo_and_unscaled_rewards():
    cfg = grpo_cfg(group_baseline="leave_one_out", scale_rewards="none")
    batch, _ = make_objective(cfg).prepare(grpo_rollout(), beta=0.0)
    # r_i - mean of the other one: 1 - 0 = 1 and 0 - 1 = -1
    assert close(batch.advantages[:2, 0], [1.0, -1.0])


def test_kl_in_reward_enters_each_score_before_grouping():
    logp_old = torch.zeros(4, 4) - 1.0
    logp_ref = logp_old.clone()
    logp_ref[0] = -1.5                                       # k1 = 0.5 per token on row 0
    r = rollout(scores=torch.tensor([0.0, 0.0, 0.5, 0.5]), logp_old=logp_old, logp_ref=logp_ref,
                mask=GMASK)
    cfg = grpo_cfg(kl_in="reward", kl_estimator="k1", scale_rewards="none")
    batch, _ = make_objective(cfg).prepare(r, beta=0.5)
    # row 0's score becomes 0 - 0.5 * (4 * 0.5) = -1: centred within its group, -0.5 and +0.5
    assert close(batch.advantages[:2, 0], [-0.5, 0.5])


@pytest.mark.parametrize("loss_type,expected", [
    # per-token objective at ratio 1 is A; rows have A = +1, -1, 0, 0 on 4, 2, 3, 1 tokens
    ("grpo", -(1.0 - 1.0 + 0 + 0) / 4),                    # per-row means 1, -1, 0, 0
    ("bnpo", -(4 * 1.0 - 2 * 1.0) / 10),                   # token mean over 10 real tokens
    ("dr_grpo", -(4 * 1.0 - 2 * 1.0) / (4 * 6)),           # sum / (rows x max_new_tokens)
    ("dapo", -(4 * 1.0 - 2 * 1.0) / 10),                   # one minibatch: the whole batch
])
def test_loss_types_aggregate_as_documented(loss_type, expected):
    cfg = grpo_cfg(loss_type=loss_type, scale_rewards="none", group_baseline="leave_one_out")
    obj = make_objective(cfg)
    batch, _ = obj.prepare(grpo_rollout(), beta=0.0)
    out, _ = policy_output(batch.logp_old.clone())
    loss, _ = obj.loss(out, batch, beta=0.0)
    assert loss.item() == pytest.approx(expected, abs=1e-6)


def test_grpo_gradient_per_sequence_mean_and_kl_to_reference():
    obj = make_objective(grpo_cfg(scale_rewards="none", group_baseline="leave_one_out",
                                  kl_estimator="k3"))
    batch, _ = obj.prepare(grpo_rollout(), beta=0.0)
    out, logp = policy_output(batch.logp_old.clone())
    loss, _ = obj.loss(out, batch, beta=0.3)
    loss.backward()
    # at ratio 1 and logp = logp_ref: d/dlogp_t of -A/len_i, averaged over 4 rows; k3's
    # gradient is 0 where logp = ref
    lens = GMASK.sum(1, keepdim=True)
    assert close(logp.grad, -batch.advantages / lens / 4)


def test_grpo_kl_term_pulls_towards_the_reference():
    obj = make_objective(grpo_cfg(kl_estimator="k3"))
    batch, _ = obj.prepare(grpo_rollout(torch.zeros(4)), beta=0.0)  # no advantage at all
    out, logp = policy_output(batch.logp_old + 0.2)
    loss, m = obj.loss(out, batch, beta=0.5)
    loss.backward()
    # k3 = exp(-d) - 1 + d with d = 0.2; gradient 1 - exp(-d) > 0 on every real token
    assert m["kl/loss_k3"].item() == pytest.approx(math.exp(-0.2) - 1 + 0.2, abs=1e-6)
    assert (logp.grad[GMASK > 0] > 0).all() and (logp.grad[GMASK == 0] == 0).all()


def test_gspo_uses_one_ratio_per_sequence():
    cfg = grpo_cfg(importance_sampling="sequence", clip_eps=0.05, scale_rewards="none",
                   group_baseline="leave_one_out", loss_type="grpo")
    obj = make_objective(cfg)
    batch, _ = obj.prepare(grpo_rollout(), beta=0.0)
    # row 0: token log-ratios 0.3, -0.3, 0, 0 -> sequence ratio exp(0) = 1: nothing clipped
    new = batch.logp_old.clone()
    new[0, :2] += torch.tensor([0.3, -0.3])
    out, _ = policy_output(new)
    _, m = obj.loss(out, batch, beta=0.0)
    assert m["policy/clip_frac"].item() == 0.0
    tok = make_objective(grpo_cfg(clip_eps=0.05, scale_rewards="none",
                                  group_baseline="leave_one_out"))
    _, m_tok = tok.loss(out, batch, beta=0.0)
    assert m_tok["policy/clip_frac"].item() == pytest.approx(1 / 10)  # the +0.3 token, A = +1


def test_dapo_clips_higher_by_default():
    assert grpo_cfg(loss_type="dapo").clip_high == 0.28
    assert grpo_cfg(loss_type="dapo", clip_eps_high=0.4).clip_high == 0.4
    assert grpo_cfg().clip_high == grpo_cfg().clip_eps
    # a token with A > 0 and ratio 1.25: clipped at 1 + 0.2, not at 1 + 0.28
    batch, _ = make_objective(grpo_cfg()).prepare(grpo_rollout(), beta=0.0)
    new = batch.logp_old.clone()
    new[0, 0] += math.log(1.25)
    out, _ = policy_output(new)
    for cfg, clipped in ((grpo_cfg(), 1 / 10), (grpo_cfg(loss_type="dapo"), 0.0)):
        _, m = make_objective(cfg).loss(out, batch, beta=0.0)
        assert m["policy/clip_frac"].item() == pytest.approx(clipped), cfg.loss_type


def test_grpo_ratio_is_against_pi_old_not_the_reference():
    logp_old = torch.zeros(4, 4) - 1.0
    r = rollout(scores=GROUP_SCORES, logp_old=logp_old, logp_ref=logp_old - 0.5, mask=GMASK)
    obj = make_objective(grpo_cfg(scale_rewards="none", group_baseline="leave_one_out"))
    batch, _ = obj.prepare(r, beta=0.0)
    out, _ = policy_output(batch.logp_old.clone())        # the policy has not moved: ratio 1
    loss, m = obj.loss(out, batch, beta=0.0)
    assert m["policy/clip_frac"].item() == 0.0
    assert loss.item() == pytest.approx(-(1.0 - 1.0) / 4, abs=1e-6)
    assert m["policy/approx_kl"].item() == 0.0


def test_trust_region_beta_floor_reaches_the_rule():
    obj = make_objective(kl_penalty_cfg(trust_beta=1.0, trust_beta_min=0.5))
    batch, _ = obj.prepare(rollout(), beta=0.0)
    for _ in range(3):                                   # calm updates: d = 0 < target / 1.5
        obj.after_update(batch, LOGP_OLD * MASK)
    assert obj.trust.beta == 0.5
