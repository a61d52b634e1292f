"""KL to the reference policy: per-token estimators and the controllers that set its weight beta.

The estimators follow Schulman's note "Approximating KL divergence" (2020): from tokens sampled from
pi, with log-ratio d = logp - logp_ref,
  k1 = d                      unbiased, high variance, can be negative per token;
  k2 = d^2 / 2                biased, low variance, always >= 0;
  k3 = exp(-d) - 1 + d        unbiased, always >= 0 (GRPO's choice), but spikes when pi << pi_ref.
"""

from __future__ import annotations

import math

import torch

from core.config import FIELDS, KL_CONTROLLERS
from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape

# the choices, with what each means, are written once, in the knob's metadata (core.config)
ESTIMATORS = FIELDS["kl_estimator"].metadata["choices"]


def kl_estimate(logp, logp_ref, kind: str = "k1", mask=None) -> Tensor:
    """Per-token estimate of KL(pi || pi_ref) from log-probs of tokens sampled from pi.

    With a `mask`, padded slots (mask 0) give exactly 0 and no gradient. The log-ratio is masked
    *before* the estimator: a padded slot can hold any log-prob (at temperature 0.1 one of -200),
    and k3's exp(-d) then overflows to inf, which a mask applied afterwards turns into 0 * inf =
    NaN in the backward pass.
    """
    if kind not in ESTIMATORS:
        raise ValueError(f"unknown KL estimator {kind!r}; expected one of {', '.join(ESTIMATORS)}")
    logp = as_tensor(logp, "logp")
    logp_ref = as_tensor(logp_ref, "logp_ref", like=logp)
    check_same_shape(logp=logp, logp_ref=logp_ref)
    d = logp - logp_ref
    m = check_mask(mask, logp)
    if m is not None:
        d = torch.where(m > 0, d, torch.zeros_like(d))
    if kind == "k1":
        return d
    if kind == "k2":
        return 0.5 * d**2
    return torch.exp(-d) - 1.0 + d


def kl_penalized_rewards(scores, kl, beta: float, mask=None) -> Tensor:
    """Put the KL into the reward, as lm-human-preferences and TRL's PPO do.

    Each token gets -beta * kl_t; the sequence score (from the task or a reward model) is added on
    the last real token. scores: [B]; kl and mask: [B, T] (mask 1 = real token, right-padded).
    The alternative, a KL term in the loss (GRPO), lives in the objectives.
    """
    kl = as_tensor(kl, "kl")
    scores = as_tensor(scores, "scores", like=kl)
    if kl.dim() != 2 or scores.shape != kl.shape[:1]:
        raise ValueError(
            f"expected scores [B] and kl [B, T]; got {tuple(scores.shape)} and {tuple(kl.shape)}"
        )
    m = check_mask(mask, kl)
    if m is None:
        m = torch.ones_like(kl)
    rewards = -beta * kl * m
    lengths = m.sum(dim=-1).long()
    last = (lengths - 1).clamp_min(0)
    has_tokens = (lengths > 0).to(kl.dtype)
    rewards[torch.arange(kl.shape[0]), last] += scores * has_tokens
    return rewards


def _positive(name: str, value: float) -> float:
    if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a positive number, got {value!r}")
    return float(value)


class AdaptiveKLController:
    """The lecture's (and the PPO paper's) adaptive beta.

    After each update, with d = the measured KL and d_targ = `target`:
      d < d_targ / factor  -> beta /= scale   (policy too timid: loosen the leash)
      d > d_targ * factor  -> beta *= scale   (policy ran off: tighten it)
      otherwise            -> beta unchanged.
    beta = 0 turns the penalty off and keeps it off (halving or doubling 0 gives 0; the floor
    does not apply to it). Departures, both off by default so the rule is exactly the lecture's:
    `beta_min`/`beta_max` bound beta, and `interval` applies the rule once every `interval`
    calls, to the mean KL of those calls. A prototype here showed why they matter: applied every
    step from beta 0.05, the halving rule drove beta to 1e-4 in a dozen steps while the KL was
    still small, and the KL then overshot to ~11 nats before beta recovered.
    """

    def __init__(self, beta: float, target: float, factor: float = 1.5, scale: float = 2.0,
                 beta_min: float = 0.0, beta_max: float = math.inf, interval: int = 1):
        if not (isinstance(beta, (int, float)) and math.isfinite(beta) and beta >= 0):
            raise ValueError(f"beta must be a non-negative number, got {beta!r}")
        self.beta = float(beta)
        self.target = _positive("target", target)
        self.factor = _positive("factor", factor)
        self.scale = _positive("scale", scale)
        if self.factor < 1 or self.scale < 1:
            raise ValueError("factor and scale must be >= 1 (they widen a band and grow a step)")
        if not (0.0 <= beta_min <= beta_max):
            raise ValueError(f"need 0 <= beta_min <= beta_max, got {beta_min} and {beta_max}")
        if not (isinstance(interval, int) and interval >= 1):
            raise ValueError(f"interval must be a whole number >= 1, got {interval!r}")
        self.beta_min, self.beta_max, self.interval = float(beta_min), float(beta_max), interval
        self.beta = self._bounded(self.beta)
        self._pending: list[float] = []

    def _bounded(self, beta: float) -> float:
        # beta = 0 means "KL off": the floor must not quietly turn it back on.
        return 0.0 if beta == 0 else min(max(beta, self.beta_min), self.beta_max)

    def set_beta(self, beta: float) -> None:
        """A live edit of beta, taken as given (the next update bounds it)."""
        self.beta = float(beta)

    def set_target(self, target: float) -> None:
        """A live edit of the target (or a budget widened by a round)."""
        self.target = _positive("target", target)

    def update(self, kl) -> float:
        self._pending.append(float(kl))
        if len(self._pending) < self.interval:
            return self.beta
        d = sum(self._pending) / len(self._pending)
        self._pending.clear()
        if d < self.target / self.factor:
            self.beta /= self.scale
        elif d > self.target * self.factor:
            self.beta *= self.scale
        self.beta = self._bounded(self.beta)
        return self.beta


class FixedKLController:
    """A constant beta, for comparing against the adaptive rules (PPO paper, Table 1). It has no
    target (`target` is None), which is how a caller tells the two apart."""

    target: float | None = None   # a class attribute: a resume's saved state stays as it was

    def __init__(self, beta: float):
        if not (isinstance(beta, (int, float)) and beta >= 0):
            raise ValueError(f"beta must be a non-negative number, got {beta!r}")
        self.beta = float(beta)

    def set_beta(self, beta: float) -> None:
        self.beta = float(beta)

    def set_target(self, target: float) -> None:
        """No target to move: beta is fixed."""

    def update(self, kl) -> float:
        return self.beta



# The one list of controllers, and the one place that builds one: the regulariser's (the run's
# kl_controller) and the trust region's (kl_penalty's trust_controller) alike.
CONTROLLERS = KL_CONTROLLERS


def make_controller(kind: str, beta: float, target: float, *, beta_min: float = 0.0,
                    beta_max: float = math.inf, interval: int = 1):
    """An `AdaptiveKLController` toward `target`, or a `FixedKLController` at `beta`. Both have
    `beta`, `target` (None for the fixed one) and `update(kl) -> beta`."""
    if kind == "fixed":
        return FixedKLController(beta)
    if kind != "adaptive":
        raise ValueError(f"unknown KL controller {kind!r}; expected one of "
                         f"{', '.join(CONTROLLERS)}")
    return AdaptiveKLController(beta, target, beta_min=beta_min, beta_max=beta_max,
                                interval=interval)
