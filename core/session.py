"""Drive a Trainer and record everything it yields into the run store.

The CLI and the GUI worker both call `train_and_record`, so a run saved from either looks the same:
config first, then one transaction per step (metrics, samples, the edits applied at that step),
a checkpoint every `checkpoint_every` steps and at the end, and a final status. An exception marks
the run failed with its traceback and is re-raised; whatever steps finished stay saved.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable

from core.config import RunConfig
from core.runs import RunStore
from core.trainer import StepResult, Trainer

log = logging.getLogger(__name__)


class RunCancelled(Exception):
    """Raised from a progress callback to stop a run during set-up (e.g. reward-model training),
    before any step exists; the run is recorded as stopped."""


def train_and_record(cfg: RunConfig, store: RunStore, progress=None,
                     on_step: Callable[[StepResult], None] | None = None,
                     on_trainer: Callable[[Trainer], None] | None = None,
                     run_id: str | None = None, feedback=None) -> tuple[str, str]:
    """Run `cfg` to the end (or a stop) and return (run_id, status). `feedback` ranks iterated
    rounds (the window passes the person); by default the simulated annotator does, and its
    rankings are stored like a person's."""
    if cfg.reward_model:   # a missing or misnamed model is refused before a run exists
        from core.reward_model_store import reward_model_info

        reward_model_info(store.data_dir, cfg.reward_model)
    feedback = feedback or _stored_feedback(cfg, store)  # refused input leaves no run behind
    run_id = run_id or store.create_run(cfg.to_dict(), cfg.task, cfg.algo, cfg.reward_source)
    trainer = None
    try:
        trainer = Trainer(cfg, progress, store.data_dir, feedback,
                          run_label=f"run {run_id}")
        if on_trainer:
            on_trainer(trainer)
        rankings = trainer.reward_source.rankings
        if rankings:
            path = store.checkpoint_path(run_id, 0).parent / "rankings.jsonl"
            path.write_text("".join(json.dumps(r.to_json()) + "\n" for r in rankings))
        for result in trainer.run():
            store.log_step(run_id, result.step, result.metrics, result.samples)
            for event in result.events:
                store.log_event(run_id, result.step, event["kind"], event)
            every = trainer.cfg.checkpoint_every
            if every and (result.step + 1) % every == 0:
                _checkpoint(store, run_id, trainer)
            if on_step:
                on_step(result)
        status = "stopped" if trainer.stop_requested else "finished"
        if trainer.step_index:
            _checkpoint(store, run_id, trainer)
        store.finish_run(run_id, status)
        return run_id, status
    except RunCancelled:
        store.finish_run(run_id, "stopped")
        return run_id, "stopped"
    except KeyboardInterrupt:
        store.finish_run(run_id, "stopped")
        raise
    except BaseException:
        store.finish_run(run_id, "failed", error=traceback.format_exc())
        raise


def _stored_feedback(cfg: RunConfig, store: RunStore):
    if cfg.reward_source != "learned":
        return None
    if cfg.feedback_by == "person":
        if not cfg.feedback_every:
            return None   # no schedule: nothing to rank headless
        raise ValueError("feedback_by=person needs a person: run it in the window, or use "
                         "feedback_by=simulated headless")
    import numpy as np

    from core.feedback import SimulatedFeedback
    from core.rankings import RankingStore

    return SimulatedFeedback(cfg.annotator_temperature, np.random.default_rng(cfg.seed + 7),
                             RankingStore(store.data_dir))


def _checkpoint(store: RunStore, run_id: str, trainer: Trainer) -> None:
    path = store.checkpoint_path(run_id, trainer.step_index)
    if any(step == trainer.step_index for step, _ in store.checkpoints(run_id)):
        return
    trainer.save_policy(path)
    store.record_checkpoint(run_id, trainer.step_index, path)
