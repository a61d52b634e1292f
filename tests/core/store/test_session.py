"""train_and_record: what reaches the store, including when training breaks."""

import pytest

from core.config import RunConfig
from core.rl.trainer import Trainer, default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record

pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing (run pretrain)")
SMALL = dict(prompts_per_step=2, group_size=2, threads=1, checkpoint_every=2)


def test_steps_events_and_checkpoints_are_stored(tmp_path):
    cfg = RunConfig.for_algo("grpo", steps=3, **SMALL)
    store = RunStore(tmp_path)
    seen = []

    def on_step(result):
        seen.append(result.step)
        if result.step == 0:
            holder["t"].control.request_changes(lr=5e-5)

    holder = {}
    run_id, status = train_and_record(cfg, store, on_step=on_step,
                                      on_trainer=lambda t: holder.update(t=t))
    assert status == "finished" and seen == [0, 1, 2]
    assert store.get_run(run_id).steps_done == 3
    events = store.events(run_id)
    assert events[0]["step"] == 1 and events[0]["payload"]["changes"] == {"lr": 5e-5}
    assert [s for s, _ in store.checkpoints(run_id)] == [2, 3]
    assert store.samples(run_id)[0]["completion"] is not None
    assert RunConfig.from_dict(store.run_config(run_id)) == cfg


def test_a_crash_mid_run_keeps_finished_steps_and_the_traceback(tmp_path, monkeypatch):
    real_step = Trainer.step

    def flaky(self):
        if self.step_index == 2:
            raise RuntimeError("boom in step 2")
        return real_step(self)

    monkeypatch.setattr(Trainer, "step", flaky)
    store = RunStore(tmp_path)
    with pytest.raises(RuntimeError, match="boom"):
        train_and_record(RunConfig.for_algo("reinforce", steps=5, **SMALL), store)
    run = store.list_runs()[0]
    assert run.status == "failed" and run.steps_done == 2
    assert "boom in step 2" in store.run_error(run.id)
