"""Sweeps: one config repeated over seeds and over a grid of knobs, each trial an ordinary run.

A sweep is a `SweepSpec`: a base config, a list of labelled configs (a grid's product, or configs
listed by hand) and seeds. `core.sweeps.runner` runs its trials on Ray Tune and records them in
the run store, tagged with the sweep's id, the config's label and the seed; this module knows no
Ray. It holds:

- the grid files (`parse_spec`) and their checks: each problem is one ValueError line, raised
  before any trial starts;
- the presets that put the lecture to the test (`PRESETS`; docs/experiments.md).

What a report computes from the trials is in core/sweeps/report.py.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from dataclasses import dataclass, field

from core.config import FIELDS, RunConfig, coerce

# The metric a sweep compares when it names none: what the person wants, not what is optimised.
DEFAULT_METRIC = "reward/true_mean"
SCALES = ("laptop", "full")
_SPEC_KEYS = {"name", "base", "grid", "configs", "seeds", "metric", "threshold", "x"}


@dataclass(frozen=True)
class SweepSpec:
    """What a sweep runs: `configs` are (label, knobs) over `base`, each at every seed."""
    name: str
    configs: tuple[tuple[str, dict], ...]
    base: dict = field(default_factory=dict)
    seeds: tuple[int, ...] = (0, 1)
    metric: str = DEFAULT_METRIC
    threshold: float | None = None     # "steps to threshold" in the summary
    preset: str = ""                   # which findings the report writes ("" = generic)
    x: str = "step"                    # the figure's x axis: step, or sqrt_kl (over-optimisation)
    scale: str = "laptop"

    def config(self, label: str, seed: int) -> RunConfig:
        knobs = dict(self.configs)[label]
        return RunConfig.from_dict({**self.base, **knobs, "seed": int(seed)})

    def trials(self) -> list[tuple[str, int]]:
        return [(label, seed) for label, _ in self.configs for seed in self.seeds]

    def with_seeds(self, n: int) -> SweepSpec:
        if n < 1:
            raise ValueError(f"--seeds must be >= 1, got {n}")
        return _replace(self, seeds=tuple(range(n)))

    def with_base(self, **knobs) -> SweepSpec:
        spec = _replace(self, base={**self.base, **knobs})
        spec.check()
        return spec

    def check(self) -> None:
        """Every trial's config is valid: ValueError naming the config and the problem."""
        if not self.configs:
            raise ValueError("the sweep has no configs; give a [grid] of knobs with lists of "
                             "values, or [[configs]]")
        labels = [label for label, _ in self.configs]
        if len(set(labels)) != len(labels):
            dup = next(label for label in labels if labels.count(label) > 1)
            raise ValueError(f"two configs are labelled {dup!r}; give each its own label")
        for label, _ in self.configs:
            try:
                cfg = self.config(label, self.seeds[0])
            except ValueError as exc:
                raise ValueError(f"config {label!r}: {exc}") from None
            # a trial may run on another machine, which cannot reach the data folder
            if cfg.reward_source == "learned" and cfg.reward_model:
                raise ValueError(f"config {label!r}: a sweep trains each trial's reward model "
                                 "from simulated rankings (rm_rankings); a saved reward_model "
                                 "is in this data folder, out of a trial's reach; drop "
                                 "reward_model")
            if cfg.reward_source == "learned" and cfg.feedback_every and \
                    cfg.feedback_by == "person":
                raise ValueError(f"config {label!r}: no person ranks in a sweep; use "
                                 "feedback_by=simulated or feedback_by=command")

    def to_json(self) -> dict:
        return {"name": self.name, "configs": [[label, knobs] for label, knobs in self.configs],
                "base": self.base, "seeds": list(self.seeds), "metric": self.metric,
                "threshold": self.threshold, "preset": self.preset, "x": self.x,
                "scale": self.scale}

    @classmethod
    def from_json(cls, data: dict) -> SweepSpec:
        return cls(name=data["name"], configs=tuple((c[0], dict(c[1])) for c in data["configs"]),
                   base=dict(data.get("base", {})), seeds=tuple(data.get("seeds", (0,))),
                   metric=data.get("metric", DEFAULT_METRIC), threshold=data.get("threshold"),
                   preset=data.get("preset", ""), x=data.get("x", "step"),
                   scale=data.get("scale", "laptop"))


def _replace(spec: SweepSpec, **changes) -> SweepSpec:
    from dataclasses import replace

    return replace(spec, **changes)


def _knob_value(name: str, value, where: str):
    if name not in FIELDS:
        from core.config import unknown_message

        raise ValueError(f"{where}: {unknown_message(name)}")
    if name == "seed":
        raise ValueError(f"{where}: seeds are the sweep's own (seeds = N, or --seeds N), not a "
                         "knob")
    try:
        return coerce(name, value)
    except ValueError as exc:
        raise ValueError(f"{where}: {exc}") from None


def _label(knobs: dict) -> str:
    return " ".join(f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}"
                    for k, v in knobs.items()) or "base"


def spec_from_dict(data: dict, name: str = "sweep") -> SweepSpec:
    """A sweep from a grid file's contents:

        name = "lr-vs-clip"          # optional
        seeds = 3                    # or a list of seeds
        metric = "reward/true_mean"  # optional: what the report compares
        [base]                       # knobs every trial shares
        algo = "ppo"
        steps = 60
        [grid]                       # every combination of these lists
        lr = [5e-5, 1e-4]
        clip_eps = [0.1, 0.2]
        [[configs]]                  # and/or configs listed by hand
        label = "no clip"
        set = { algo = "kl_penalty", trust_controller = "fixed", trust_beta = 0.0 }
    """
    unknown = sorted(set(data) - _SPEC_KEYS)
    if unknown:
        raise ValueError(f"unknown key {unknown[0]!r} in the sweep file; it takes "
                         f"{', '.join(sorted(_SPEC_KEYS))}")
    base = data.get("base", {})
    if not isinstance(base, dict):
        raise ValueError("[base] must be a table of knobs, e.g. [base] algo = \"ppo\"")
    base = {k: _knob_value(k, v, "[base]") for k, v in base.items()}
    configs: list[tuple[str, dict]] = []
    grid = data.get("grid", {})
    if not isinstance(grid, dict):
        raise ValueError("[grid] must be a table of knobs with lists of values, e.g. "
                         "lr = [1e-4, 3e-5]")
    for knob, values in grid.items():
        if not isinstance(values, list):
            raise ValueError(f"[grid] {knob}: give a list of values, e.g. {knob} = "
                             f"[{values!r}]")
        if not values:
            raise ValueError(f"[grid] {knob}: the list of values is empty; give at least one")
    if grid:
        names = list(grid)
        lists = [[_knob_value(k, v, f"[grid] {k}") for v in grid[k]] for k in names]
        for combo in itertools.product(*lists):
            knobs = dict(zip(names, combo, strict=True))
            configs.append((_label(knobs), knobs))
    listed = data.get("configs", [])
    if not isinstance(listed, list):
        raise ValueError("configs must be a list of tables: [[configs]] label = ... set = {...}")
    for i, item in enumerate(listed):
        if not isinstance(item, dict) or not isinstance(item.get("set", {}), dict):
            raise ValueError(f"configs[{i}] must be a table with a label and set = {{knob = "
                             "value}}")
        extra = sorted(set(item) - {"label", "set"})
        if extra:
            raise ValueError(f"configs[{i}]: unknown key {extra[0]!r}; a config takes label "
                             "and set")
        knobs = {k: _knob_value(k, v, f"configs[{i}]") for k, v in item.get("set", {}).items()}
        configs.append((str(item.get("label") or _label(knobs)), knobs))
    seeds = data.get("seeds", 2)
    if isinstance(seeds, bool) or not isinstance(seeds, int | list):
        raise ValueError(f"seeds must be a count or a list of seeds, got {seeds!r}")
    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1, got {seeds}")
        seeds = list(range(seeds))
    if not seeds or not all(isinstance(s, int) and not isinstance(s, bool) and s >= 0
                            for s in seeds):
        raise ValueError(f"seeds must be non-negative whole numbers, got {seeds!r}")
    threshold = data.get("threshold")
    if threshold is not None and (isinstance(threshold, bool) or
                                  not isinstance(threshold, int | float)):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    x = data.get("x", "step")
    if x not in ("step", "sqrt_kl"):
        raise ValueError(f"x must be step or sqrt_kl, got {x!r}")
    spec = SweepSpec(name=str(data.get("name") or name), configs=tuple(configs), base=base,
                     seeds=tuple(seeds), metric=str(data.get("metric", DEFAULT_METRIC)),
                     threshold=threshold, x=x)
    spec.check()
    return spec


def parse_spec(source: str, scale: str = "laptop") -> SweepSpec:
    """A preset by name, or a TOML / JSON grid file. ValueError (one line) on any problem."""
    if scale not in SCALES:
        raise ValueError(f"--scale must be one of {', '.join(SCALES)}, got {scale!r}")
    if source in PRESETS:
        return PRESETS[source](scale)
    from pathlib import Path

    from core.storage import read_config_file

    if not Path(source).suffix or not Path(source).exists():
        raise ValueError(f"no preset and no grid file {source!r}; presets: "
                         f"{', '.join(PRESETS)}, or give a .toml or .json grid")
    data = read_config_file(source)
    try:
        return spec_from_dict(data, name=Path(source).stem)
    except ValueError as exc:
        raise ValueError(f"{source}: {exc}") from None


# --- presets: the lecture's claims, each at a laptop size (<= 10 min on 2 cores) and at full
# size for a cluster. Their docs are in docs/experiments.md.

def kl_vs_clip(scale: str) -> SweepSpec:
    """PPO's Table 1 on the tiny GPT: no clip and no penalty; clip eps; the adaptive KL penalty
    with d_targ; a fixed beta. The KL to the reference is off in every config, as in the
    paper, so that only the surrogate differs."""
    full = scale == "full"
    configs = [("no clip, no penalty", {"algo": "kl_penalty", "trust_controller": "fixed",
                                        "trust_beta": 0.0})]
    configs += [(f"clip eps={e:g}", {"algo": "ppo", "clip_eps": e}) for e in (0.1, 0.2, 0.3)]
    configs += [(f"adaptive KL d_targ={d:g}", {"algo": "kl_penalty", "trust_target": d})
                for d in (0.003, 0.01, 0.03)]
    configs += [(f"fixed KL beta={b:g}", {"algo": "kl_penalty", "trust_controller": "fixed",
                                          "trust_beta": b}) for b in ((0.3, 1.0, 3.0) if full
                                                                      else (1.0,))]
    return SweepSpec("kl-vs-clip", tuple(configs), preset="kl-vs-clip", scale=scale,
                     base={"task": "sentiment", "reward_source": "true", "beta": 0.0,
                           "kl_controller": "fixed", "steps": 150 if full else 40,
                           "checkpoint_every": 0, "samples_per_step": 2},
                     seeds=tuple(range(5 if full else 3)))


def rank_to_reward(scale: str) -> SweepSpec:
    """The four ways to turn ranks into rewards (the `ranked` source: the annotator ranks every
    group as it is sampled), against Bradley-Terry and Plackett-Luce reward models trained on as
    many rankings as the ranked runs get in all (steps x prompts_per_step)."""
    full = scale == "full"
    steps = 150 if full else 40
    base = {"task": "sentiment", "algo": "grpo", "steps": steps, "checkpoint_every": 0,
            "samples_per_step": 2}
    configs = [(f"ranks: {s}", {"reward_source": "ranked", "rank_scheme": s})
               for s in _schemes()]
    configs += [(f"ranks: exp lam={lam:g}", {"reward_source": "ranked", "rank_scheme": "exp",
                                              "rank_lam": lam})
                for lam in ((0.3, 1.0, 3.0) if full else (0.5, 2.0))]
    rankings = steps * 8   # prompts_per_step's default: the ranked runs' annotation count
    configs += [(f"reward model: {loss}", {"reward_source": "learned", "rm_loss": loss,
                                           "rm_rankings": rankings, "rm_k": 8})
                for loss in ("bradley_terry", "plackett_luce")]
    return SweepSpec("rank-to-reward", tuple(configs), base=base, preset="rank-to-reward",
                     scale=scale, seeds=tuple(range(5 if full else 2)))


def _schemes() -> tuple[str, ...]:
    from core.rewards import SCHEMES

    return tuple(s for s in SCHEMES if s != "exp")


def overoptimisation(scale: str) -> SweepSpec:
    """Gao, Schulman, Hilton 2022 on the tiny GPT: reward models from more and more simulated
    rankings, then GRPO on each with a weak, fixed KL so the policy can drift; gold (true) and
    proxy (learned) reward against d = sqrt(KL). With and without the robust reward (an
    ensemble's mean - std, negatives, PaR) of the reward-model issue."""
    full = scale == "full"
    counts = (30, 100, 300, 1000) if full else (30, 100, 300)
    plain = {"rm_members": 1, "rm_negatives": 0.0, "rm_shaping": "none", "rm_aggregate": "mean"}
    configs = []
    for n in counts:
        configs.append((f"{n} rankings, plain", {"rm_rankings": n, **plain}))
        configs.append((f"{n} rankings, robust", {"rm_rankings": n}))
    return SweepSpec("overoptimisation", tuple(configs), preset="overoptimisation",
                     scale=scale, x="sqrt_kl", metric=DEFAULT_METRIC,
                     base={"task": "sentiment", "algo": "grpo", "reward_source": "learned",
                           "kl_controller": "fixed", "beta": 0.01, "kl_in": "loss",
                           "kl_estimator": "k3", "steps": 200 if full else 60,
                           "rm_steps": 150 if full else 100, "checkpoint_every": 0,
                           "samples_per_step": 2},
                     seeds=tuple(range(3 if full else 2)))


GRPO_FAMILY = {
    "grpo": {},                                                      # DeepSeekMath
    "bnpo": {"loss_type": "bnpo"},
    "dr_grpo": {"loss_type": "dr_grpo", "scale_rewards": "none"},   # Dr. GRPO
    "dapo": {"loss_type": "dapo"},                                   # token-level, clip-higher
    "batch_scale": {"scale_rewards": "batch"},                       # PPO-Lite's scaling
    "rloo": {"group_baseline": "leave_one_out", "scale_rewards": "none"},
    "gspo": {"importance_sampling": "sequence", "clip_eps": 3e-4, "clip_eps_high": 4e-4},
}


def grpo_family(scale: str) -> SweepSpec:
    """GRPO's variants on `arithmetic` (benchmarks/bench_grpo_family.py, as a preset)."""
    full = scale == "full"
    # accuracy starts near 0.54 and the variants part around 0.7 (benchmarks/README.md)
    return SweepSpec("grpo-family", tuple(GRPO_FAMILY.items()),
                     base={"task": "arithmetic", "algo": "grpo", "reward_source": "true",
                           "steps": 150 if full else 80, "checkpoint_every": 0,
                           "samples_per_step": 2},
                     preset="grpo-family", scale=scale, threshold=0.7,
                     seeds=tuple(range(5 if full else 2)))


PRESETS: dict[str, Callable[[str], SweepSpec]] = {
    "kl-vs-clip": kl_vs_clip, "rank-to-reward": rank_to_reward,
    "overoptimisation": overoptimisation, "grpo-family": grpo_family}
