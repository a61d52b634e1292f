"""One objective per file; `make_objective` is the only place that maps a name to a class."""

from core.algorithms.base import Objective, PolicyOutput, Rollout
from core.algorithms.dpo import DPO
from core.algorithms.grpo import GRPO
from core.algorithms.kl_penalty import KLPenalty
from core.algorithms.ppo import PPO
from core.algorithms.reinforce import Reinforce
from core.config import ALGOS

OBJECTIVES: dict[str, type[Objective]] = {
    cls.name: cls for cls in (Reinforce, KLPenalty, PPO, GRPO, DPO)
}
# The names are written once, in core.config.ALGOS (the `algo` knob's choices, which the config
# needs before any objective is imported); each class names itself, and they must agree.
if tuple(OBJECTIVES) != ALGOS:
    raise ImportError(f"core.config.ALGOS {ALGOS} and the objectives {tuple(OBJECTIVES)} differ")


def make_objective(cfg, live=None) -> Objective:
    """The objective `cfg.algo` names; `live` (the run's RunControl) gives it the live config."""
    if cfg.algo not in OBJECTIVES:
        raise ValueError(f"unknown objective {cfg.algo!r}; expected one of {', '.join(OBJECTIVES)}")
    return OBJECTIVES[cfg.algo](cfg, live)


__all__ = ["OBJECTIVES", "Objective", "PolicyOutput", "Rollout", "make_objective"]
