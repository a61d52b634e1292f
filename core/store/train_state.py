"""Everything a resume needs, in one safetensors file beside each checkpoint.

`runs/<id>/state-000050.safetensors` holds, after 50 steps: the policy, the value head, Adam's
moments, the learned reward model (when the run has one), the torch generator's and the global
torch RNG state as tensors; its JSON metadata holds the live config, the step, Adam's settings,
the KL controller, the objective's own state (baselines, the trust region's beta), the numpy RNG
and the rankings the reward model was trained on. Only safetensors and JSON are read back:
nothing is unpickled. Restored on CPU, a run stopped half-way and resumed takes the same steps,
to the last bit, as one done in one go (tests/test_resume.py).

`plan_resume` checks a resume before anything changes: the run exists, no process is training it,
a state was saved, and the step count goes forward.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

import torch

from core.config import RunConfig

FORMAT = "rlhf-explorer-state/1"


def state_path(checkpoint: Path) -> Path:
    """The state file that goes with the policy checkpoint `step-000050.safetensors`."""
    return checkpoint.with_name(checkpoint.name.replace("step-", "state-", 1))


def _encode(value):
    """JSON for inf/nan-carrying state (json writes Infinity, which it also reads back)."""
    return json.dumps(value, allow_nan=True)


def save_state(path: Path, trainer) -> None:
    """Write the trainer's full state (`Trainer.state_dict`) after `trainer.step_index` steps,
    atomically: tensors as tensors, the rest as JSON metadata."""
    from safetensors.torch import save_file

    from core.storage import atomic_write

    state = trainer.state_dict()
    tensors: dict[str, torch.Tensor] = {}
    for k, v in state["policy"].items():
        tensors[f"policy.{k}"] = v
    for k, v in (state["value_head"] or {}).items():
        tensors[f"value_head.{k}"] = v
    optim_plain: dict[str, dict] = {}
    for index, slot in state["optimizer"]["state"].items():
        for key, value in slot.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optim.{index}.{key}"] = value
            else:
                optim_plain.setdefault(str(index), {})[key] = value
    tensors["rng.generator"] = state["generator"]
    tensors["rng.torch"] = state["torch_rng"]
    reward = state["reward"]
    for k, v in (reward["model"] or {}).items():
        tensors[f"reward_model.{k}"] = v
    meta = {
        "format": FORMAT,
        "step": state["step"],
        "config": state["config"],
        "time_s": state["time_s"],
        "optimizer": {"param_groups": state["optimizer"]["param_groups"], "plain": optim_plain},
        "controller": state["controller"],
        "objective": state["objective"],
        "numpy_rng": state["numpy_rng"],
        "feedback_rng": state["feedback_rng"],
        "reward": {"metrics": reward["metrics"], "rankings": reward["rankings"],
                   "gpt_config": reward["gpt_config"]},
        "round_out": state["round_out"],
        "rounds": state["rounds"],
    }
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in tensors.items()}
    atomic_write(path, lambda tmp: save_file(tensors, str(tmp), metadata={
        "format": "pt", "state": _encode(meta)}))


@dataclass
class TrainState:
    path: Path
    meta: dict
    tensors: dict[str, torch.Tensor]

    @classmethod
    def load(cls, path: Path) -> TrainState:
        from safetensors import SafetensorError, safe_open
        from safetensors.torch import load_file

        try:
            with safe_open(str(path), framework="pt") as f:
                raw = (f.metadata() or {}).get("state")
            tensors = load_file(str(path), device="cpu")
            meta = json.loads(raw) if raw else None
        except (SafetensorError, OSError, json.JSONDecodeError) as exc:
            raise ValueError(f"{path} is not a readable run state: {exc}") from exc
        if not meta or meta.get("format") != FORMAT:
            raise ValueError(f"{path} is not a run state written by this rlhf-explorer")
        return cls(Path(path), meta, tensors)

    @property
    def step(self) -> int:
        return int(self.meta["step"])

    @property
    def cfg(self) -> RunConfig:
        return RunConfig.from_dict(self.meta["config"], algo_defaults=False)

    def _part(self, prefix: str) -> dict[str, torch.Tensor]:
        return {k[len(prefix):]: v for k, v in self.tensors.items() if k.startswith(prefix)}

    def reward_model(self, trainer):
        """(RewardModel, rankings, metrics) the run's learned reward had, or None."""
        weights = self._part("reward_model.")
        reward = self.meta.get("reward") or {}
        if not weights or not reward.get("gpt_config"):
            return None
        from core.lm.model import GPT, GPTConfig
        from core.reward_learning.reward_model import Ranking, RewardModel

        model = RewardModel.from_state(GPT(GPTConfig.from_dict(reward["gpt_config"])), weights)
        model.to(trainer.device)
        rankings = [Ranking(r["prompt"], tuple(r["responses"]), tuple(r["ranks"]),
                            tuple(r.get("true", ()))) for r in reward.get("rankings", [])]
        metrics = {k: float(v) for k, v in reward.get("metrics", {}).items()}
        return model, rankings, metrics

    def trainer_state(self) -> dict:
        """The saved state in `Trainer.state_dict`'s form (the reward model, read at set-up
        by `reward_model`, is not in it)."""
        meta = self.meta
        slots: dict[int, dict] = {}
        for key, value in self._part("optim.").items():
            index, name = key.split(".", 1)
            slots.setdefault(int(index), {})[name] = value   # load_state_dict places them
        for index, plain in meta["optimizer"]["plain"].items():
            slots.setdefault(int(index), {}).update(plain)
        return {
            "step": self.step, "time_s": float(meta.get("time_s", 0.0)),
            "policy": self._part("policy."), "value_head": self._part("value_head."),
            "optimizer": {"state": slots, "param_groups": meta["optimizer"]["param_groups"]},
            "generator": self.tensors["rng.generator"], "torch_rng": self.tensors["rng.torch"],
            "numpy_rng": meta["numpy_rng"], "feedback_rng": meta.get("feedback_rng"),
            "controller": meta["controller"], "objective": meta["objective"],
            "round_out": meta.get("round_out") or ([], {}), "rounds": meta.get("rounds") or {},
        }

    def apply(self, trainer) -> None:
        """Put the trainer where it was when the state was saved."""
        trainer.load_state_dict(self.trainer_state())
        self._carry_edits(trainer)

    def _carry_edits(self, trainer) -> None:
        """A fork may change knobs: the others take effect as given, and the live ones are
        queued as edits, so the first step applies them in the one place edits are applied
        and its "set" event records the values they replace. A resume changes only `steps`."""
        from core.config import live_fields

        wanted, saved = trainer.cfg, self.cfg
        live = {k: getattr(wanted, k) for k in live_fields()
                if getattr(wanted, k) != getattr(saved, k)}
        trainer.control.commit(wanted.with_changes(**{k: getattr(saved, k) for k in live}))
        for group in trainer.optimizer.param_groups:
            group["lr"] = trainer.cfg.lr
        if live:
            trainer.control.request_changes(**live)


@dataclass(frozen=True)
class ResumePlan:
    run_id: str             # the run to carry on; for a fork, the run it branches from
    cfg: RunConfig          # the live config when the state was saved, with the new step count
    state: Path | None      # None: from the start (step 0), which needs no state
    step: int               # steps the state has done; the run carries on from here
    dropped: int            # stored steps after it, which the resume deletes and redoes
    fork: bool = False      # a new run that starts from this state (and copies the steps before)

# What a fork cannot change: the state would not fit (another objective, model or reward).
FORK_FIXED = ("task", "algo", "reward_source", "checkpoint", "reward_model", "baseline")


def plan_fork(store, run_id: str, step: int, cfg: RunConfig) -> ResumePlan:
    """A new run from `run_id`'s checkpoint at `step`, with the knobs of `cfg`."""
    saved = {s: state_path(p) for s, p in store.checkpoints(run_id) if state_path(p).exists()}
    if step not in saved:
        raise ValueError(f"run {run_id} has no saved state at step {step}"
                         + (f"; it has {', '.join(map(str, sorted(saved)))}" if saved else ""))
    base = TrainState.load(saved[step]).cfg
    for name in FORK_FIXED:
        if getattr(cfg, name) != getattr(base, name):
            raise ValueError(f"a fork keeps {name} = {getattr(base, name)!r} (the saved state "
                             f"needs it); start a new run to change it")
    if cfg.steps <= step:
        raise ValueError(f"the fork starts at step {step}; give it more than {step} steps")
    return ResumePlan(run_id, cfg, saved[step], step, 0, fork=True)


def plan_resume(store, run_id: str, steps: int | None = None,
                from_step: int | None = None) -> ResumePlan:
    """Check a resume of `run_id` (from its last state, or the checkpoint at `from_step`; step 0
    is its start, so a run with no state yet starts over under its id) to `steps` total steps
    (default: the run's own count). ValueError says what stops it."""
    info = store.get_run(run_id)
    if info.status == "running":
        raise ValueError(f"run {run_id} is still running; stop it before resuming it")
    saved = {s: state_path(p) for s, p in store.checkpoints(run_id) if state_path(p).exists()}
    if from_step is None:
        step = max(saved, default=0)
    elif from_step == 0 or from_step in saved:
        step = from_step
    else:
        raise ValueError(f"run {run_id} has no saved state at step {from_step}; it can resume "
                         f"from step {', '.join(map(str, [0, *sorted(saved)]))}")
    if step:
        state: Path | None = saved[step]
        cfg = TrainState.load(state).cfg
    else:   # from the start: the run's first config and no state (seeded: the same steps again)
        state, cfg = None, RunConfig.from_dict(store.run_config(run_id), algo_defaults=False)
    total = steps if steps is not None else max(cfg.steps, info.steps_done)
    if not math.isfinite(total) or total <= step:
        hint = ", or --from-step an earlier one" if step else ""
        raise ValueError(f"run {run_id} has {info.steps_done} steps and resumes at step {step}; "
                         f"give --steps more than {step} (the total to reach){hint}")
    return ResumePlan(run_id, cfg.with_changes(steps=int(total)), state, step,
                      max(0, info.steps_done - step))
