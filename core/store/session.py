"""Drive a Trainer and record everything it yields into the run store.

The CLI and the GUI worker both call `train_and_record`, so a run saved from either looks the same:
config first, then one transaction per step (metrics, samples, the edits applied at that step),
a checkpoint (the policy, plus the full state a resume needs) every `checkpoint_every` steps and
at the end, and a final status:

- `finished` (all steps), `stopped` (a stop was asked for, by Ctrl-C, SIGTERM or the window),
- `diverged` (a NaN or inf; core/rl/faults.py), `failed` (an exception; its traceback is kept and
  it is re-raised). Whatever steps finished stay saved.

Input that is refused (a bad device, a missing base or reward model) is refused by `preflight`
before a run exists, so it leaves no failed run behind.
"""

from __future__ import annotations

import json
import logging
import traceback
from collections.abc import Callable

from core.config import RunConfig
from core.reward_learning.feedback import JudgeFailed
from core.rl.faults import Diverged
from core.rl.run_control import RunCancelled, RunControl
from core.rl.trainer import StepResult, Trainer, default_checkpoint
from core.store.runs import RunStore
from core.store.train_state import ResumePlan, TrainState, save_state, state_path

log = logging.getLogger(__name__)

__all__ = ["RunCancelled", "preflight", "train_and_record"]


def preflight(cfg: RunConfig, store: RunStore) -> None:
    """Refuse, with the fix, what would only fail after a run was created."""
    from pathlib import Path

    from core.lm.checkpoints import load_checkpoint, resolve_device

    resolve_device(cfg.device)
    base = Path(cfg.checkpoint) if cfg.checkpoint else default_checkpoint(cfg.task)
    if not base.is_file():
        raise ValueError(f"no base model at {base}; create it with "
                         f"`rlhf-explorer pretrain --task {cfg.task}`" if not base.exists() else
                         f"the base model {base} is not a file; give a .safetensors checkpoint")
    load_checkpoint(base)   # 50 ms: a file that is not our model is refused now, with no run
    from core.algorithms.dpo import check_stored

    check_stored(cfg, store.data_dir)   # DPO on stored rankings, with none stored
    if cfg.reward_model:   # missing, damaged, or trained for another task
        from core.reward_learning.reward_model_store import load_reward_model

        _, meta = load_reward_model(store.data_dir, cfg.reward_model)
        if meta.get("task") != cfg.task:
            raise ValueError(f"reward model {cfg.reward_model!r} was trained for task "
                             f"{meta.get('task')!r}, not {cfg.task!r}")


def train_and_record(cfg: RunConfig, store: RunStore, progress=None,
                     on_step: Callable[[StepResult], None] | None = None,
                     on_trainer: Callable[[Trainer], None] | None = None,
                     run_id: str | None = None, feedback=None,
                     control: RunControl | None = None,
                     on_run: Callable[[str], None] | None = None,
                     resume: ResumePlan | None = None,
                     beside_gui: bool = False) -> tuple[str, str]:
    """Run `cfg` to the end (or a stop) and return (run_id, status). `feedback` ranks iterated
    rounds (the window passes the person); by default the simulated annotator does, and its
    rankings are stored like a person's. `control` is the run's RunControl (stop, pause, edits);
    `on_run(run_id)` is called once the run exists. `resume` (core.store.train_state.plan_resume)
    carries on a stored run under its own id instead of starting one: `cfg` is then its plan's.
    beside_gui: the window shares the machine (automatic thread counts, core/lm/threads.py)."""
    if resume is not None:
        cfg = resume.cfg
    preflight(cfg, store)
    feedback = feedback or _stored_feedback(cfg, store)  # refused input leaves no run behind
    restore = TrainState.load(resume.state) if resume is not None and resume.state else None
    if resume is not None and resume.fork:
        run_id = store.create_run(cfg.to_dict(), cfg.task, cfg.algo, cfg.reward_source)
        store.copy_history(resume.run_id, run_id, resume.step)
        store.log_event(run_id, resume.step, "fork", {"kind": "fork", "from": resume.run_id,
                                                      "step": resume.step})
    elif resume is not None:
        run_id = resume.run_id
        store.reopen_run(run_id, resume.step, cfg.to_dict())
    else:
        run_id = run_id or store.create_run(cfg.to_dict(), cfg.task, cfg.algo,
                                            cfg.reward_source)
    if on_run:
        on_run(run_id)
    control = control or RunControl(cfg)
    trainer = None
    try:
        trainer = Trainer(cfg, progress, store.data_dir, feedback, run_label=f"run {run_id}",
                          control=control, restore=restore, beside_gui=beside_gui)
        if on_trainer:
            on_trainer(trainer)
        rankings = trainer.reward_source.rankings
        if rankings and (resume is None or resume.fork):
            from core.storage import atomic_write_text

            path = store.checkpoint_path(run_id, 0).parent / "rankings.jsonl"
            atomic_write_text(path, "".join(json.dumps(r.to_json()) + "\n" for r in rankings))
        for result in trainer.run():
            store.log_step(run_id, result.step, result.metrics, result.samples)
            for event in result.events:
                store.log_event(run_id, result.step, event["kind"], event)
            every = trainer.cfg.checkpoint_every
            if every and (result.step + 1) % every == 0:
                _checkpoint(store, run_id, trainer)
            if on_step:
                on_step(result)
        status = "stopped" if control.stop_requested else "finished"
        if trainer.step_index:
            _checkpoint(store, run_id, trainer)
        store.finish_run(run_id, status)
        return run_id, status
    except Diverged as exc:
        log.info("run %s %s", run_id, exc)   # the caller says it to the person
        store.log_event(run_id, exc.step, "diverged", {"kind": "diverged", "step": exc.step,
                                                       "what": exc.what})
        if exc.params_intact and trainer.step_index:
            _checkpoint(store, run_id, trainer)   # the policy after the last good step
        store.finish_run(run_id, "diverged", error=str(exc))
        return run_id, "diverged"
    except RunCancelled:
        store.finish_run(run_id, "stopped")
        return run_id, "stopped"
    except JudgeFailed as exc:
        # the judge, not the run, failed: stop it saved, as a stop would, and say why in a line
        log.info("run %s: %s", run_id, exc)
        store.log_event(run_id, trainer.step_index, "judge_failed",
                        {"kind": "judge_failed", "step": trainer.step_index, "what": str(exc)})
        if trainer.step_index:
            _checkpoint(store, run_id, trainer)
        store.finish_run(run_id, "stopped", error=str(exc))
        raise JudgeFailed(f"{exc}; run {run_id} is stopped and saved: fix the judge, then "
                          f"`rlhf-explorer train --resume {run_id}`") from None
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

    from core.reward_learning.feedback import CommandFeedback, SimulatedFeedback
    from core.reward_learning.rankings import RankingStore

    if cfg.feedback_by == "command":
        return CommandFeedback(cfg.feedback_command, cfg.feedback_timeout,
                               RankingStore(store.data_dir))

    return SimulatedFeedback(cfg.annotator_temperature, np.random.default_rng(cfg.seed + 7),
                             RankingStore(store.data_dir))


def _checkpoint(store: RunStore, run_id: str, trainer: Trainer) -> None:
    """The policy (loadable as a base model) and, beside it, the state a resume needs."""
    path = store.checkpoint_path(run_id, trainer.step_index)
    if any(step == trainer.step_index for step, _ in store.checkpoints(run_id)):
        return
    trainer.save_policy(path)
    save_state(state_path(path), trainer)
    store.record_checkpoint(run_id, trainer.step_index, path)
