"""The one interface every objective implements, and the rollout values it works on.

The trainer does: rollout -> rewards -> `objective.prepare` (advantages, returns) -> for each
epoch and minibatch, `objective.loss` -> backward -> step. It never asks which objective it runs;
an objective that needs something (a value head, a fresh pass for old log-probs) says so here.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import torch

from core.config import RunConfig
from core.kl import kl_estimate
from core.tensor_utils import Tensor, masked_mean


@dataclass(frozen=True)
class Rollout:
    """One step's samples. Completion-aligned tensors are [B, T]; `mask` marks real tokens."""

    input_ids: Tensor            # [B, P+T] prompt (left-padded) then completion
    attention_mask: Tensor       # [B, P+T]
    prompt_len: int              # P: completions start here
    mask: Tensor                 # [B, T] float, 1 up to and including EOS (T: the longest
                                 # completion's length, at most max_new_tokens)
    logp_old: Tensor             # [B, T] log-probs of the policy that sampled (no grad)
    logp_ref: Tensor             # [B, T] frozen reference log-probs
    values_old: Tensor | None    # [B, T] value estimates at rollout time (when a head exists)
    scores: Tensor               # [B] the reward being optimised (task, ranks or a model)
    group_size: int              # completions per prompt, consecutive rows
    advantages: Tensor | None = None   # [B, T], filled by prepare()
    returns: Tensor | None = None      # [B, T]
    max_new_tokens: int = 0      # the configured completion budget (Dr. GRPO's normaliser)
    batch_tokens: float = 0.0    # real tokens in the whole batch, kept by select() (DAPO)

    def select(self, idx: Tensor) -> Rollout:
        """Rows `idx` of every batch tensor (minibatches)."""
        def pick(t):
            return None if t is None else t[idx]
        return replace(self, input_ids=self.input_ids[idx],
                       attention_mask=self.attention_mask[idx], mask=self.mask[idx],
                       logp_old=self.logp_old[idx], logp_ref=self.logp_ref[idx],
                       values_old=pick(self.values_old), scores=self.scores[idx],
                       advantages=pick(self.advantages), returns=pick(self.returns))


@dataclass(frozen=True)
class Panel:
    """A dashboard panel an objective asks for, as data: the window draws it (core knows no Qt),
    so an objective's own metrics get their plots with no GUI code."""

    key: str
    title: str
    metrics: tuple[str, ...]
    y_label: str = ""
    units: str = ""
    bounds: tuple[float | None, float | None] = (None, None)   # the values they can take
    tooltip: str = ""


@dataclass(frozen=True)
class PolicyOutput:
    """What a forward pass with gradients gives the loss, aligned with Rollout.mask."""

    logp: Tensor                 # [b, T]
    entropy: Tensor              # [b, T] per-token entropy of the sampling distribution
    values: Tensor | None        # [b, T] when the objective uses a value head


class Objective:
    """Base class: subclasses set `name`, and implement prepare() and loss().

    The KL to the frozen reference (the RLHF regulariser) is shared by every objective: its beta
    comes from the trainer's controller and is passed in; `cfg.kl_in` puts it in the reward
    (`reward_kl_beta`) or in the loss (`kl_loss_term`). An objective with state of its own that
    live edits change (the trust region's beta) exposes it through `live_values`/`apply_live`,
    so the trainer records true old values and applies every edit in one place.
    """

    name = "objective"
    #: the trainer gives the policy a value head and fills Rollout.values_old
    needs_value_head = False
    #: the trainer scores the batch again after the update and calls after_update()
    measures_update = False
    #: False: the objective trains on data of its own (`data_loss`: DPO's rankings), and the
    #: step's rollout is only watched (rewards, KL, samples)
    trains_on_rollout = True
    #: the dashboard's tab of this objective's own panels (none: its metrics go under More)
    label = ""
    panels: tuple[Panel, ...] = ()

    def __init__(self, cfg: RunConfig, live=None):
        """live: the run's RunControl (or anything with a `cfg`); the objective then reads the
        live config through it, so a mid-run edit reaches the loss with no copy to update."""
        self._cfg, self._live = cfg, live

    @property
    def cfg(self) -> RunConfig:
        return self._live.cfg if self._live is not None else self._cfg

    def needs_old_logp_pass(self) -> bool:
        """Whether the old policy's log-probs need a forward pass of their own. The sampler's are
        the policy's (softmax(logits / temperature)), equal to the training pass's to float
        rounding (max 2.5e-6 on the shipped model, `benchmarks/bench_gpu.py --device cpu`),
        so even several updates per batch can take them, but not under top-k, which samples
        from a truncated distribution."""
        return self.cfg.top_k > 0

    def prepare(self, batch: Rollout, beta: float) -> tuple[Rollout, dict[str, float]]:
        """Advantages and returns for the batch (no gradients), plus metrics about them."""
        raise NotImplementedError

    def loss(self, out: PolicyOutput, batch: Rollout,
             beta: float) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss to minimise, metrics) on a minibatch. Metric names are slash-grouped."""
        raise NotImplementedError

    def setup(self, trainer) -> None:
        """Called once the trainer has its models, task and data folder (and before a resume
        applies its state): an objective that trains on data of its own gathers it here."""

    def data_loss(self, trainer, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
        """(loss, metrics) of one update on the objective's own data, when not
        `trains_on_rollout`; the policy is `trainer.policy`, in train mode."""
        raise NotImplementedError

    def round_learner(self, trainer):
        """What learns from a round's new rankings
        (`core.reward_learning.feedback.feedback_round`), or None when
        nothing does and the run takes no rounds. By default the learned reward source: its
        `model` picks the groups to ask about, `fresh_accuracy` scores the new rankings before
        `update` trains on them. DPO learns from them itself (online DPO)."""
        source = trainer.reward_source
        return source if source.name == "learned" else None

    def after_update(self, batch: Rollout, logp_new: Tensor) -> dict[str, float]:
        """Called with the updated policy's log-probs of the batch (no grad) when
        `measures_update`; returns metrics."""
        return {}

    def live_values(self) -> dict[str, float]:
        """Current values of live knobs this objective owns (e.g. a controller's beta)."""
        return {}

    def apply_live(self, changes: dict) -> None:
        """Adopt live edits of knobs this objective owns; `self.cfg` is already updated."""

    def state(self) -> dict:
        """State of its own that later steps depend on (a baseline's average), as JSON-able
        values, for a resume (core/store/train_state.py)."""
        return {}

    def load_state(self, state: dict) -> None:
        """Adopt what `state()` returned."""

    # --- pieces several objectives share
    def token_kl(self, logp: Tensor, batch: Rollout) -> Tensor:
        """Per-token KL(pi || pi_ref) estimate, 0 (and no gradient) on padding."""
        return kl_estimate(logp, batch.logp_ref, self.cfg.kl_estimator, mask=batch.mask)

    def kl_loss_term(self, out: PolicyOutput, batch: Rollout, beta: float) -> Tensor:
        """beta * mean KL to the reference, when the config puts the KL in the loss."""
        if self.cfg.kl_in != "loss" or beta == 0:
            return out.logp.new_zeros(())
        return beta * masked_mean(self.token_kl(out.logp, batch), batch.mask)

    def baseline(self, returns: Tensor, batch: Rollout, moving: MovingAverageBaseline,
                 observed: float) -> Tensor:
        """b_t for (G_t - b_t) by `cfg.baseline`: a learned V(s_t), the moving average of past
        batches (then fed `observed`, so b never depends on this batch), or 0."""
        if self.cfg.baseline == "value":
            return batch.values_old * batch.mask
        if self.cfg.baseline == "moving_average":
            b = torch.full_like(returns, moving.value) * batch.mask
            moving.update(observed)
            return b
        return torch.zeros_like(returns)

    def reward_kl_beta(self, beta: float) -> float:
        """beta applied inside the per-token reward (0 when the KL goes in the loss)."""
        return beta if self.cfg.kl_in == "reward" else 0.0


class MovingAverageBaseline:
    """b <- m b + (1 - m) mean(G), debiased like Adam so the first steps are not pulled to 0."""

    def __init__(self, momentum: float):
        self.momentum = momentum
        self._avg = 0.0
        self._weight = 0.0

    @property
    def value(self) -> float:
        return self._avg / self._weight if self._weight else 0.0

    def update(self, mean_return: float) -> None:
        self._avg = self.momentum * self._avg + (1 - self.momentum) * mean_return
        self._weight = self.momentum * self._weight + (1 - self.momentum)


def explained_variance(values: Tensor, returns: Tensor, mask: Tensor) -> float:
    """1 - Var(returns - V) / Var(returns): 1 = the critic predicts perfectly, <= 0 = no better
    than a constant."""
    var_ret = masked_mean((returns - masked_mean(returns, mask)) ** 2, mask)
    resid = returns - values
    var_res = masked_mean((resid - masked_mean(resid, mask)) ** 2, mask)
    return float(1 - var_res / var_ret) if var_ret > 0 else float("nan")


def broadcast_sequence(values: Tensor, mask: Tensor) -> Tensor:
    """A per-sequence value [B] placed on every real token [B, T]."""
    return values[:, None].to(mask.dtype) * mask


def stats(name: str, x: Tensor, mask: Tensor) -> dict[str, float]:
    mean = masked_mean(x, mask)
    std = masked_mean((x - mean) ** 2, mask).sqrt()
    return {f"{name}/mean": float(mean), f"{name}/std": float(std)}


# --- small stateful pieces (a KL controller, a moving-average baseline) in a resume: their plain
# attributes as JSON-able values, and back, with no pickling
_PLAIN = (int, float, str, bool, type(None))


def plain_state(obj) -> dict:
    """The plain attributes (numbers, strings, lists of numbers) of `obj`."""
    out = {}
    for key, value in vars(obj).items():
        if isinstance(value, _PLAIN) or (isinstance(value, list)
                                         and all(isinstance(v, _PLAIN) for v in value)):
            out[key] = value
    return out


def load_plain(obj, state: dict) -> None:
    """Set back what `plain_state` gave, for the attributes `obj` has."""
    for key, value in state.items():
        if key in vars(obj):
            setattr(obj, key, list(value) if isinstance(value, list) else value)
