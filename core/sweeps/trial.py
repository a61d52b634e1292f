"""What runs in a Ray worker, here or on another machine, for each trial of a sweep: an ordinary
`Trainer`, whose steps, samples, events and checkpoints go back to the driver through
`tune.report` (the trial never opens the store: `core.sweeps.runner` writes it). And the stop
flag every trial polls, a named actor.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from core.config import RunConfig


class StopFlag:
    """The stop flag, served to every trial (a named actor: trials on any node can ask)."""

    def __init__(self):
        self._stop = False

    def stop(self) -> None:
        self._stop = True

    def stopped(self) -> bool:
        return self._stop


class _LazyActor:
    """`ray.remote(StopFlag)`, made on first use so that importing this module needs no
    Ray (the window lists sweeps without it)."""

    def options(self, **kw):
        import ray

        return ray.remote(num_cpus=0)(StopFlag).options(**kw)


STOP_FLAG = _LazyActor()


def run_trial(config: dict, blobs: dict | None = None) -> None:
    import ray
    from ray import tune

    from core.reward_learning.feedback import SimulatedFeedback
    from core.rl.faults import Diverged
    from core.rl.run_control import RunControl
    from core.rl.trainer import Trainer
    from core.store.train_state import TrainState

    spec = config["trial"]
    key = spec["key"]
    control_actor = ray.get_actor(spec["control"])
    if ray.get(control_actor.stopped.remote()):
        return   # stopped before it began: no run is made for it
    tune.report({"rlhfx": {"kind": "start"}})
    cfg = RunConfig.from_dict(spec["cfg"], algo_defaults=False)
    blob = (blobs or {}).get(key) or {}
    last_phase = [0.0]

    def phase(name: str, done: int, total: int) -> None:
        now = time.perf_counter()
        if done == total or now - last_phase[0] > 1.0:
            last_phase[0] = now
            tune.report({"rlhfx": {"kind": "phase", "name": name, "done": done,
                                   "total": total}})

    with tempfile.TemporaryDirectory(prefix="rlhfx-trial-") as tmp:
        restore = None
        if blob.get("state"):
            path = Path(tmp) / "resume.state.safetensors"
            path.write_bytes(blob["state"])
            restore = TrainState.load(path)
        control = RunControl(cfg)
        feedback = SimulatedFeedback(cfg.annotator_temperature,
                                     np.random.default_rng(cfg.seed + 7))
        trainer = Trainer(cfg, phase, None, feedback, run_label=f"trial {key}",
                          control=control, restore=restore)
        every = cfg.checkpoint_every
        try:
            for result in trainer.run():
                stop = ray.get(control_actor.stopped.remote())
                if stop:
                    control.request_stop("the sweep was stopped")
                ckpt = (_pack(trainer, tmp) if every and (result.step + 1) % every == 0
                        else None)
                tune.report({"rlhfx": {
                    "kind": "step", "step": result.step, "metrics": dict(result.metrics),
                    "samples": list(result.samples), "events": list(result.events),
                    "checkpoint": ckpt}})
            status = "stopped" if control.stop_requested else "finished"
            tune.report({"rlhfx": {"kind": "end", "status": status, "step": trainer.step_index,
                                   "checkpoint": _pack(trainer, tmp) if trainer.step_index
                                   else None}})
        except Diverged as exc:
            ckpt = _pack(trainer, tmp) if exc.params_intact and trainer.step_index else None
            tune.report({"rlhfx": {"kind": "end", "status": "diverged", "step": exc.step,
                                   "what": exc.what, "error": str(exc), "checkpoint": ckpt}})


def _pack(trainer, tmp: str) -> dict:
    """The policy and the resume state of `trainer`, as bytes for the driver to store."""
    from core.store.train_state import save_state, state_path

    path = Path(tmp) / f"step-{trainer.step_index:06d}.safetensors"
    trainer.save_policy(path)
    save_state(state_path(path), trainer)
    out = {"step": trainer.step_index, "policy": path.read_bytes(),
           "state": state_path(path).read_bytes()}
    path.unlink()
    state_path(path).unlink()
    return out


