"""Resume and fork: a run stopped half-way and resumed takes the steps one done in one go takes."""

import math

import pytest

from core.config import RunConfig
from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record
from core.store.train_state import plan_fork, plan_resume
from explorer.app import main

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")

TINY = dict(task="arithmetic", prompts_per_step=2, group_size=4, threads=1, checkpoint_every=3)
CASES = {
    "grpo": dict(),
    "ppo": dict(),                                            # value head, several epochs
    "reinforce": dict(baseline="moving_average"),            # the objective's own state
    "kl_penalty": dict(trust_controller="adaptive"),         # its own adaptive trust region
    "grpo+learned": dict(reward_source="learned", rm_rankings=10, rm_steps=3, rm_k=3,
                         feedback_every=2, feedback_groups=2, rm_round_steps=2,
                         feedback_by="simulated"),           # the reward model, and rounds
    "dpo": dict(dpo_rankings=8, rm_k=3, dpo_batch=3),         # rankings of its own, at start
    "dpo+rounds": dict(dpo_rankings=8, rm_k=3, dpo_batch=3, feedback_every=2,
                       feedback_groups=2, feedback_by="simulated"),   # and a round's, online
}
UNTIMED = ("time_s", "perf/")


def comparable(store, run_id):
    columns, rows = store.metrics_table(run_id)
    keep = [i for i, c in enumerate(columns) if not c.startswith(UNTIMED)]
    return [[columns[i] for i in keep]] + [[r[i] for i in keep] for r in rows]


def same(a, b) -> bool:
    return all(x == y or (math.isnan(x) and math.isnan(y)) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("case", CASES)
def test_a_resumed_run_matches_one_done_in_one_go(tmp_path, case):
    algo = case.split("+")[0]
    cfg = RunConfig.for_algo(algo, **TINY, **CASES[case], steps=6)
    with RunStore(tmp_path / "whole") as store:
        whole, status = train_and_record(cfg, store)
        assert status == "finished"
        expected = comparable(store, whole)
    with RunStore(tmp_path / "halves") as store:
        first, _ = train_and_record(cfg.with_changes(steps=3), store)
        plan = plan_resume(store, first, steps=6)
        assert (plan.step, plan.dropped) == (3, 0)
        again, status = train_and_record(plan.cfg, store, resume=plan)
        assert (again, status) == (first, "finished")
        got = comparable(store, first)
        assert store.get_run(first).steps_done == 6
    assert got[0] == expected[0]
    for step, (want, have) in enumerate(zip(expected[1:], got[1:], strict=True)):
        assert same(want, have), f"step {step} differs after the resume"


def test_resume_from_an_earlier_checkpoint_replaces_the_later_steps(tmp_path):
    cfg = RunConfig.for_algo("grpo", **TINY, steps=8)
    with RunStore(tmp_path) as store:
        run_id, _ = train_and_record(cfg, store)
        store.log_event(run_id, 7, "note", {})
        plan = plan_resume(store, run_id, steps=9, from_step=3)
        assert (plan.step, plan.dropped) == (3, 5)
        train_and_record(plan.cfg, store, resume=plan)
        assert [int(s) for s in store.metric_series(run_id, "step")[0]] == list(range(9))
        assert [s for s, _ in store.checkpoints(run_id)] == [3, 6, 9]
        assert not (store.runs_dir / run_id / "step-000008.safetensors").exists()
        assert all(e["step"] < 7 for e in store.events(run_id) if e["kind"] == "note")


def test_a_resume_carries_on_from_the_latest_of_several_saved_states(tmp_path):
    cfg = RunConfig.for_algo("grpo", **TINY, steps=7)
    with RunStore(tmp_path) as store:
        run_id, _ = train_and_record(cfg, store)
        saved = [s for s, _ in store.checkpoints(run_id)]
        assert len(saved) >= 3          # 3, 6 and the last step's
        plan = plan_resume(store, run_id, steps=9)
        assert (plan.step, plan.dropped) == (max(saved), 0) == (7, 0)


def test_resume_refusals_say_why(tmp_path):
    cfg = RunConfig.for_algo("grpo", **TINY, steps=3)
    with RunStore(tmp_path) as store:
        run_id, _ = train_and_record(cfg, store)
        with pytest.raises(ValueError, match="more than 3"):
            plan_resume(store, run_id)                 # finished: it needs a new total
        with pytest.raises(ValueError, match="at step 2; it can resume from step 0, 3"):
            plan_resume(store, run_id, 5, from_step=2)
        live = store.create_run(cfg.to_dict(), "arithmetic", "grpo", "true")
        with pytest.raises(ValueError, match="still running"):
            plan_resume(store, live)


def test_cli_resume_asks_before_deleting_steps(tmp_path, capsys, monkeypatch):
    cfg = RunConfig.for_algo("grpo", **TINY, steps=6)
    with RunStore(tmp_path) as store:
        run_id, _ = train_and_record(cfg, store)
    argv = ["train", "--resume", run_id, "--from-step", "3", "--steps", "7", "--quiet",
            "--data-dir", str(tmp_path)]
    monkeypatch.setattr("sys.stdin.isatty", lambda: False)
    assert main(argv) == 2
    assert "pass --yes" in capsys.readouterr().err
    assert main(argv + ["--set", "lr=1e-3"]) == 2
    assert "drop --set" in capsys.readouterr().err
    assert main(argv + ["--yes"]) == 0
    assert f"run {run_id} finished after 7 steps" in capsys.readouterr().out


def test_a_fork_starts_from_the_checkpoint_with_changed_knobs(tmp_path):
    cfg = RunConfig.for_algo("grpo", **TINY, steps=6)
    with RunStore(tmp_path) as store:
        parent, _ = train_and_record(cfg, store)
        plan = plan_fork(store, parent, 3, cfg.with_changes(lr=3e-4, steps=5))
        child, status = train_and_record(plan.cfg, store, resume=plan)
        assert child != parent and status == "finished"
        assert [int(s) for s in store.metric_series(child, "step")[0]] == [0, 1, 2, 3, 4]
        ours, theirs = (store.metric_series(r, "reward/mean")[1][:3] for r in (child, parent))
        assert list(ours) == list(theirs)              # the parent's steps before the fork
        events = store.events(child)
        assert {"fork", "set"} <= {e["kind"] for e in events}
        edit = next(e["payload"] for e in events if e["kind"] == "set")
        assert edit["step"] == 3 and edit["changes"] == {"lr": 3e-4}
        assert store.metric_series(child, "hparams/lr")[1][3] == 3e-4
        with pytest.raises(ValueError, match="a fork keeps algo"):
            plan_fork(store, parent, 3, RunConfig.for_algo("ppo", **TINY, steps=6))


def test_a_run_with_no_state_yet_starts_over_under_its_id(tmp_path):
    """Killed (or stopped in set-up) before its first checkpoint: step 0 is a state too."""
    cfg = RunConfig.for_algo("grpo", **{**TINY, "checkpoint_every": 0}, steps=4)
    with RunStore(tmp_path) as store:
        whole, _ = train_and_record(cfg, store)
        expected = comparable(store, whole)
        run_id = store.create_run(cfg.to_dict(), cfg.task, cfg.algo, cfg.reward_source)
        store.log_step(run_id, 0, {"reward/mean": 9.0})
        store.finish_run(run_id, "interrupted")
        plan = plan_resume(store, run_id)
        assert (plan.step, plan.dropped, plan.state) == (0, 1, None)
        train_and_record(plan.cfg, store, resume=plan)
        got = comparable(store, run_id)
    assert got == expected   # seeded: starting over repeats the same steps
