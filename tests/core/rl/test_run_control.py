"""RunControl: one owner of stop, pause, edits, rounds and policy copies (docs/design.md)."""

import pytest

from core.config import RunConfig
from core.rl.run_control import RunCancelled, RunControl
from core.rl.trainer import Trainer, default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")
FAST = dict(task="arithmetic", prompts_per_step=2, group_size=2, threads=1)


def test_edits_are_checked_when_asked_and_wait_for_set_up():
    control = RunControl(RunConfig.for_algo("grpo", **FAST))
    assert control.request_changes(lr=2e-4) is True          # set-up: applies at step 0
    with pytest.raises(ValueError, match="cannot change during a run"):
        control.request_changes(group_size=4)
    with pytest.raises(ValueError, match="clip_eps"):
        control.request_changes(clip_eps=9.0)
    control.set_up_done()
    assert control.request_changes(clip_eps=0.1) is False
    assert control.take_changes() == {"lr": 2e-4, "clip_eps": 0.1}
    assert control.take_changes() == {}


def test_a_stop_during_set_up_cancels_it_and_the_run_is_stopped(tmp_path):
    cfg = RunConfig.for_algo("grpo", **FAST, steps=5, reward_source="learned", rm_rankings=10,
                             rm_steps=2)
    control = RunControl(cfg)
    control.request_stop()
    with pytest.raises(RunCancelled):
        Trainer(cfg, control=control)
    with RunStore(tmp_path) as store:
        run_id, status = train_and_record(cfg, store, control=RunControl(cfg), progress=lambda *a:
                                          (_ for _ in ()).throw(RunCancelled()))
        assert status == "stopped" and store.get_run(run_id).steps_done == 0


def test_the_trainer_and_its_objective_share_the_one_live_config():
    trainer = Trainer(RunConfig.for_algo("ppo", **FAST, steps=3))
    trainer.control.request_changes(clip_eps=0.05)
    result = trainer.step()
    assert result.events[0]["old"] == {"clip_eps": 0.2}   # the true old value, recorded once
    assert trainer.cfg is trainer.control.cfg is trainer.objective.cfg
    assert trainer.objective.cfg.clip_eps == 0.05


def test_when_the_run_ends_copies_are_cancelled_and_edits_refused():
    trainer = Trainer(RunConfig.for_algo("grpo", **FAST, steps=1))
    waiting = trainer.control.request_snapshot()
    list(trainer.run())
    assert waiting.done()   # served at the step boundary
    late = trainer.control.request_snapshot()
    assert late.cancelled()
    with pytest.raises(ValueError, match="ending"):
        trainer.control.request_changes(lr=1e-4)


def test_a_live_kl_target_edit_records_the_true_old_value_with_a_fixed_beta_too():
    trainer = Trainer(RunConfig.for_algo("grpo", **FAST, steps=3, kl_controller="fixed",
                                         kl_target=4.0))
    trainer.control.request_changes(kl_target=9.0)
    (event,) = [e for e in trainer.step().events if e["kind"] == "set"]
    assert event["old"] == {"kl_target": 4.0} and trainer.cfg.kl_target == 9.0
