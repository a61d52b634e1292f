"""The learning loop at smoke size: every objective runs, control works, same seed = same run."""

import math
import threading

import pytest

from core.config import RunConfig
from core.rl.trainer import Trainer, default_checkpoint

pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing (run pretrain)")

SMALL = dict(prompts_per_step=2, group_size=4, steps=3, samples_per_step=4)
TIMING = {"time_s", "perf/step_s", "perf/sample_s", "perf/reward_s", "perf/score_s",
          "perf/update_s", "perf/tokens_per_s"}


@pytest.mark.parametrize("algo", ["reinforce", "kl_penalty", "ppo", "grpo"])
def test_each_objective_yields_the_design_metrics(algo):
    cfg = RunConfig.for_algo(algo, **SMALL, minibatches=2)
    results = list(Trainer(cfg).run())
    assert [r.step for r in results] == [0, 1, 2]
    m = results[-1].metrics
    for name in ("reward/mean", "reward/std", "reward/true_mean", "kl/mean", "kl/beta",
                 "policy/entropy", "loss/policy", "loss/total", "perf/step_s",
                 "perf/tokens_per_s"):
        assert name in m and math.isfinite(m[name]), name
    if algo in ("ppo", "grpo"):
        assert 0.0 <= m["policy/clip_frac"] <= 1.0
    if algo == "ppo":
        assert "loss/value" in m and "value/explained_variance" in m
    samples = results[-1].samples
    assert samples and {"prompt", "completion", "reward", "true_reward"} <= set(samples[0])


def test_same_seed_same_metrics():
    def run():
        cfg = RunConfig.for_algo("ppo", **SMALL, seed=7)
        return [{k: v for k, v in r.metrics.items() if k not in TIMING}
                for r in Trainer(cfg).run()]
    assert run() == run()


def test_mid_run_edit_is_applied_at_the_next_step_and_reported():
    trainer = Trainer(RunConfig.for_algo("grpo", **SMALL))
    trainer.step()
    trainer.control.request_changes(lr=2e-4, clip_eps=0.1)
    assert trainer.cfg.lr != 2e-4                     # not before the step boundary
    result = trainer.step()
    assert result.events[0]["changes"] == {"lr": 2e-4, "clip_eps": 0.1}
    assert trainer.optimizer.param_groups[0]["lr"] == 2e-4
    assert trainer.cfg.clip_eps == 0.1
    with pytest.raises(ValueError, match="cannot change during a run"):
        trainer.control.request_changes(group_size=16)
    with pytest.raises(ValueError, match="clip_eps"):
        trainer.control.request_changes(clip_eps=7.0)


def test_pause_resume_stop_from_another_thread():
    trainer = Trainer(RunConfig.for_algo("reinforce", **{**SMALL, "steps": 1000}))
    seen = []
    worker = threading.Thread(target=lambda: seen.extend(trainer.run()))
    trainer.control.pause()
    worker.start()
    worker.join(0.5)
    assert seen == [] and worker.is_alive()           # paused before the first step
    trainer.control.resume()
    while not seen:
        worker.join(0.05)
    trainer.control.request_stop()
    worker.join(10)
    assert not worker.is_alive()
    assert 1 <= len(seen) < 1000


def test_adaptive_beta_follows_the_rule_inside_the_loop():
    cfg = RunConfig.for_algo("kl_penalty", **{**SMALL, "steps": 6}, kl_interval=1,
                             kl_target=1e-4, beta=0.05, beta_min=0.0, beta_max=1.0, lr=1e-4)
    results = list(Trainer(cfg).run())
    for prev, cur in zip(results, results[1:], strict=False):
        kl, beta = prev.metrics["kl/mean"], prev.metrics["kl/beta"]
        if kl > 1.5e-4:
            expected = min(beta * 2, 1.0)
        elif kl < 1e-4 / 1.5:
            expected = beta / 2
        else:
            expected = beta
        assert cur.metrics["kl/beta"] == pytest.approx(expected)


def test_learned_reward_trains_a_model_first_and_reports_it():
    phases = []
    cfg = RunConfig.for_algo("grpo", **{**SMALL, "steps": 1}, reward_source="learned",
                             rm_rankings=24, rm_steps=2)
    trainer = Trainer(cfg, progress=lambda phase, done, total: phases.append(phase))
    m = trainer.step().metrics
    assert {"collecting rankings", "training reward model"} <= set(phases)
    assert 0.0 <= m["rm/accuracy"] <= 1.0 and "reward/true_mean" in m


def test_missing_checkpoint_says_how_to_make_one(tmp_path):
    with pytest.raises(ValueError, match="rlhf-explorer pretrain"):
        Trainer(RunConfig(checkpoint=str(tmp_path / "none.safetensors")))


def test_min_new_tokens_equal_to_max_makes_every_completion_full_length():
    """The knob equal work is asked with (benchmarks/bench_vs_trl.py): no completion ends early,
    and the sampler's log-probs still serve as the old policy's (GRPO's first ratio is 1)."""
    cfg = RunConfig.for_algo("grpo", **SMALL, max_new_tokens=12, min_new_tokens=12)
    rows = [r.metrics for r in Trainer(cfg).run()]
    assert all(r["completions/mean_length"] == 12 for r in rows)
    assert rows[0]["policy/clip_frac"] == 0
    free = [r.metrics for r in Trainer(cfg.with_changes(min_new_tokens=0)).run()]
    assert any(r["completions/mean_length"] < 12 for r in free)
