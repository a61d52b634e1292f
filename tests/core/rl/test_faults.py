"""Numerical faults: a NaN or inf in a reward, loss, gradient or parameter stops the run with
status `diverged`, says where, and keeps the last good checkpoint (docs/promises.md)."""

import numpy as np
import pytest
import torch

from core.config import RunConfig
from core.rl.faults import Diverged, nonfinite
from core.rl.trainer import Trainer, default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")
FAST = dict(task="arithmetic", prompts_per_step=2, group_size=2, threads=1, checkpoint_every=2)


def test_nonfinite_names_what_and_how_many():
    assert nonfinite(torch.tensor([1.0, 2.0])) == ""
    assert nonfinite(torch.tensor(float("nan"))) == "nan"
    assert nonfinite(np.array([1.0, np.inf, np.nan])) == "nan/inf (2 of 3 values)"


def poison_after(monkeypatch, target, name, calls_before, make_bad):
    real, seen = getattr(target, name), []

    def wrapped(*args, **kwargs):
        seen.append(1)
        out = real(*args, **kwargs)
        return make_bad(out) if len(seen) > calls_before else out

    monkeypatch.setattr(target, name, wrapped)


def test_a_nan_loss_stops_before_backward_and_keeps_the_policy(monkeypatch):
    trainer = Trainer(RunConfig.for_algo("grpo", **FAST, steps=5))
    trainer.step()
    before = [p.detach().clone() for p in trainer.policy.parameters()]
    poison_after(monkeypatch, trainer.objective, "loss", 0,
                 lambda out: (out[0] * float("nan"), out[1]))
    with pytest.raises(Diverged, match="diverged at step 1: the loss is nan") as info:
        trainer.step()
    assert info.value.params_intact
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters(),
                                                  strict=True))


def test_an_inf_gradient_is_caught_before_the_optimiser_step(monkeypatch):
    trainer = Trainer(RunConfig.for_algo("grpo", **FAST, steps=5, max_grad_norm=0.0))
    next(trainer.policy.parameters()).register_hook(lambda g: g * float("inf"))
    with pytest.raises(Diverged, match="the gradient norm is inf"):
        trainer.step()


def test_a_nan_parameter_after_the_update_is_not_kept(monkeypatch):
    trainer = Trainer(RunConfig.for_algo("grpo", **FAST, steps=5))
    step = trainer.optimizer.step

    def bad_step(*a, **k):
        step(*a, **k)
        with torch.no_grad():
            next(trainer.policy.parameters())[0, 0] = float("nan")

    monkeypatch.setattr(trainer.optimizer, "step", bad_step)
    with pytest.raises(Diverged, match="a parameter of shape") as info:
        trainer.step()
    assert not info.value.params_intact


def test_a_diverged_run_is_stored_with_its_step_and_cause(tmp_path, monkeypatch):
    from core.reward_learning import reward_sources

    real, calls = reward_sources.TrueReward.score, []

    def poisoned(self, *args):
        calls.append(1)
        scored = real(self, *args)
        if len(calls) == 4:
            scored.scores[:] = np.inf
        return scored

    monkeypatch.setattr(reward_sources.TrueReward, "score", poisoned)
    with RunStore(tmp_path) as store:
        run_id, status = train_and_record(RunConfig.for_algo("ppo", **FAST, steps=9), store)
        info = store.get_run(run_id)
        assert (status, info.status, info.steps_done) == ("diverged", "diverged", 3)
        assert store.run_error(run_id) == "diverged at step 3: reward is inf (4 of 4 values)"
        assert [s for s, _ in store.checkpoints(run_id)] == [2, 3]   # 3: the last good policy
        event = [e for e in store.events(run_id) if e["kind"] == "diverged"][0]
        assert event["step"] == 3 and event["payload"]["what"].startswith("reward is inf")


def test_checkpoints_are_0644_and_written_whole(tmp_path):
    import os

    with RunStore(tmp_path) as store:
        run_id, _ = train_and_record(RunConfig.for_algo("grpo", **FAST, steps=2), store)
        path = store.checkpoints(run_id)[-1][1]
    umask = os.umask(0)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o644 & ~umask
    assert not list(path.parent.glob(".*.part*"))   # no temp file left beside it


def test_an_atomic_write_that_fails_leaves_the_old_file(tmp_path):
    from core.storage import atomic_write, atomic_write_text

    target = tmp_path / "f.txt"
    atomic_write_text(target, "old")

    def half(tmp):
        tmp.write_text("new, but cut")
        raise OSError("disk full")

    with pytest.raises(OSError):
        atomic_write(target, half)
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.txt"]
