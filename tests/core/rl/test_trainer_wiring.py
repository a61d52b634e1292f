"""The trainer's wiring on the real model at smoke size: live edits reach the loss and the
optimiser, gradients flow where they must and nowhere else, and low temperatures stay finite."""

import math

import pytest
import torch

from core.config import RunConfig
from core.rl.trainer import Trainer, default_checkpoint

pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing (run pretrain)")

SMALL = dict(prompts_per_step=2, group_size=4, steps=4, samples_per_step=2, threads=1)


def spy_loss(trainer):
    """Record (beta, clip_eps, lr) every time the objective's loss runs."""
    seen = []
    inner = trainer.objective.loss

    def loss(out, batch, beta):
        seen.append((beta, trainer.objective.cfg.clip_eps,
                     trainer.optimizer.param_groups[0]["lr"]))
        return inner(out, batch, beta)

    trainer.objective.loss = loss
    return seen


def test_live_edits_of_eps_beta_and_lr_reach_the_loss_and_the_optimiser():
    trainer = Trainer(RunConfig.for_algo("grpo", **SMALL))
    seen = spy_loss(trainer)
    first = trainer.step().metrics
    trainer.control.request_changes(lr=2e-4, clip_eps=0.05, beta=0.3)
    result = trainer.step()
    assert seen[-1] == (0.3, 0.05, 2e-4)
    assert seen[0] != seen[-1]
    m = result.metrics
    assert (m["hparams/lr"], m["hparams/clip_eps"], m["kl/beta"]) == (2e-4, 0.05, 0.3)
    assert first["hparams/lr"] != 2e-4


def test_a_live_beta_edit_records_the_controllers_beta_as_old():
    # The first step's KL is ~0, which would halve beta; the floor keeps it, so the second step's
    # KL (far above target) can only double it. k3 is never negative, as k1 can be.
    cfg = RunConfig.for_algo("reinforce", **SMALL, beta=0.05, kl_target=1e-4, kl_interval=1,
                             beta_min=0.05, beta_max=10.0, kl_estimator="k3")
    trainer = Trainer(cfg)
    trainer.step()
    trainer.step()                                  # the KL is far above target: beta doubled
    live = trainer.controller.beta
    assert live != cfg.beta
    trainer.control.request_changes(beta=0.5)
    event = trainer.step().events[0]
    assert event["old"]["beta"] == live and event["changes"]["beta"] == 0.5


def test_beta_zero_turns_the_reference_kl_off_even_with_the_adaptive_rule():
    cfg = RunConfig.for_algo("reinforce", **SMALL, beta=0.0, kl_controller="adaptive",
                             kl_interval=1, beta_min=0.01)
    betas = [r.metrics["kl/beta"] for r in Trainer(cfg).run()]
    assert betas == [0.0] * 4


def test_gradients_flow_into_the_policy_only():
    trainer = Trainer(RunConfig.for_algo("ppo", **SMALL, epochs=1, minibatches=1))
    trainer.step()
    assert all(p.grad is None for p in trainer.reference.parameters())
    assert all(not p.requires_grad for p in trainer.reference.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0
               for p in trainer.policy.parameters())
    assert trainer.value_head.proj.weight.grad is not None
    grpo = Trainer(RunConfig.for_algo("grpo", **SMALL))
    assert grpo.value_head is None


@pytest.mark.parametrize("algo", ["grpo", "reinforce"])
def test_reference_kl_in_the_loss_is_the_only_gradient_when_advantages_are_zero(monkeypatch,
                                                                                 algo):
    """Constant scores give zero advantages, so with the KL in the loss the whole gradient is the
    KL term's: non-zero with beta > 0 (a KL from detached log-probs would give 0), zero without."""
    norms = {}
    for beta in (0.0, 1.0):
        cfg = RunConfig.for_algo(algo, **{**SMALL, "steps": 1}, kl_controller="fixed",
                                 beta=beta, kl_in="loss", kl_estimator="k3", baseline="none")
        trainer = Trainer(cfg)
        with torch.no_grad():                       # move the policy off the reference
            for p in trainer.policy.parameters():
                p.add_(torch.randn_like(p) * 0.003)
        monkeypatch.setattr(trainer.reward_source, "score", _constant_scores)
        norms[beta] = trainer.step().metrics["policy/grad_norm"]
    assert norms[0.0] == 0.0 and norms[1.0] > 1e-3


def _constant_scores(prompts, completions, input_ids, attention_mask, group_size):
    from core.reward_learning.reward_sources import Scored

    n = len(completions)
    return Scored(torch.zeros(n).numpy(), torch.zeros(n).numpy())


@pytest.mark.parametrize("algo", ["grpo", "ppo", "kl_penalty"])
def test_low_temperature_stays_finite(algo):
    """At temperature 0.1 padded slots hold log-probs of about -200; k3 on them overflowed to inf
    and 0 * inf made the gradients NaN."""
    cfg = RunConfig.for_algo(algo, **{**SMALL, "steps": 2}, temperature=0.1, kl_estimator="k3",
                             kl_in="loss", epochs=1, minibatches=1)
    trainer = Trainer(cfg)
    for result in trainer.run():
        bad = [k for k, v in result.metrics.items() if not math.isfinite(v)]
        assert not bad, bad
    assert all(torch.isfinite(p).all() for p in trainer.policy.parameters())


def test_kl_penalty_logs_both_kls_and_both_betas():
    m = Trainer(RunConfig.for_algo("kl_penalty", **{**SMALL, "steps": 1})).step().metrics
    for name in ("kl/mean", "kl/beta", "trust/kl", "trust/beta", "trust/target"):
        assert name in m and math.isfinite(m[name]), name
    assert m["trust/kl"] > 0                       # several minibatch updates moved the policy


def test_the_value_loss_trains_the_head_and_never_the_policys_trunk():
    from core.algorithms import Rollout
    from core.algorithms.ppo import value_loss

    trainer = Trainer(RunConfig.for_algo("ppo", **SMALL))
    ids = torch.randint(3, 20, (2, 6))
    mask = torch.ones(2, 4)
    batch = Rollout(ids, torch.ones(2, 6), 2, mask, mask * 0, mask * 0, None, torch.zeros(2), 2)
    out = trainer._forward(trainer.policy, batch, with_value=True)
    value_loss(out.values, torch.ones(2, 4), mask).backward()
    assert trainer.value_head.proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in trainer.policy.parameters())


@pytest.mark.parametrize(("algo", "grouped"), [("grpo", 2), ("ppo", 1), ("kl_penalty", 2)])
def test_whole_batch_passes_run_each_prompt_once(monkeypatch, algo, grouped):
    """The reference pass, the trust region's after-update pass and a one-minibatch update see
    the step's groups in order, so they run each prompt once (core/lm/shared_prompts.py);
    shuffled minibatches do not."""
    import core.lm.model

    calls = []
    real = core.lm.model.completion_states
    monkeypatch.setattr(core.lm.model, "completion_states",
                        lambda *a: calls.append(a[-1]) or real(*a))
    cfg = RunConfig.for_algo(algo, **SMALL)
    Trainer(cfg).step()
    assert calls == [cfg.group_size] * grouped


@pytest.mark.parametrize("algo", ["ppo", "kl_penalty"])
def test_old_log_probs_and_values_come_from_the_rollout(monkeypatch, algo):
    """No pass re-scores the batch before the updates: the sampler's log-probs and hidden states
    are the old policy's, as a forward pass of it would give them."""
    from core.lm.model import sequence_logprobs

    trainer = Trainer(RunConfig.for_algo(algo, **SMALL))
    passes, checked = [], []
    forward, prepare = trainer._forward, trainer.objective.prepare
    monkeypatch.setattr(trainer, "_forward", lambda *a, **k: passes.append(1) or forward(*a, **k))

    def check(batch, beta):
        scores = sequence_logprobs(trainer.policy, batch.input_ids, batch.attention_mask,
                                   batch.prompt_len, return_hidden=True)
        real = batch.mask.bool()
        torch.testing.assert_close(batch.logp_old[real], scores.logprobs[real], atol=1e-5,
                                   rtol=0)
        if trainer.value_head is not None:
            values = trainer.value_head(scores.hidden)
            torch.testing.assert_close(batch.values_old[real], values[real], atol=1e-5, rtol=0)
        checked.append(algo)
        return prepare(batch, beta)

    monkeypatch.setattr(trainer.objective, "prepare", check)
    trainer.step()
    cfg = trainer.cfg
    updates = cfg.epochs * cfg.minibatches
    assert checked == [algo] and len(passes) == updates + trainer.objective.measures_update


def test_top_k_gets_an_old_policy_pass_of_its_own(monkeypatch):
    """Top-k samples from a truncated policy, so its log-probs cannot serve as the old policy's:
    one more pass scores the batch before the updates."""
    from core.lm.model import sequence_logprobs

    trainer = Trainer(RunConfig.for_algo("kl_penalty", **SMALL, top_k=5))
    passes, checked = [], []
    forward, prepare = trainer._forward, trainer.objective.prepare
    monkeypatch.setattr(trainer, "_forward", lambda *a, **k: passes.append(1) or forward(*a, **k))

    def check(batch, beta):
        full = sequence_logprobs(trainer.policy, batch.input_ids, batch.attention_mask,
                                 batch.prompt_len).logprobs
        real = batch.mask.bool()
        torch.testing.assert_close(batch.logp_old[real], full[real], atol=1e-5, rtol=0)
        checked.append(1)
        return prepare(batch, beta)

    monkeypatch.setattr(trainer.objective, "prepare", check)
    trainer.step()
    cfg = trainer.cfg
    assert checked == [1]
    assert len(passes) == 1 + cfg.epochs * cfg.minibatches + trainer.objective.measures_update
