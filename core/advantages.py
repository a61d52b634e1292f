"""Returns and advantages: how much better an action was than expected.

All functions work along the last dim (time, or the group) and over any leading batch shape.
Masks mark real tokens (1) in right-padded sequences; padded steps get 0 and never leak into the
values of real steps.
"""

from __future__ import annotations

import torch

from core.config import FIELDS
from core.tensor_utils import Tensor, as_tensor, check_mask, check_same_shape

# the choices, with what each means, are written once, in the knob's metadata (core.config)
STD_KINDS = FIELDS["grpo_std"].metadata["choices"]


def _check_discount(name: str, value: float) -> None:
    if not (isinstance(value, (int, float)) and 0.0 <= value <= 1.0):
        raise ValueError(f"{name} must be a number in [0, 1], got {value!r}")


def discounted_returns(rewards, gamma: float, mask=None) -> Tensor:
    """G_t = sum_{l >= 0} gamma^l r_{t+l} along the last dim (rewards at padded steps count 0)."""
    _check_discount("gamma", gamma)
    r = as_tensor(rewards, "rewards")
    if r.dim() == 0:
        raise ValueError("rewards must have a time dimension: shape [..., T]")
    m = check_mask(mask, r)
    if m is not None:
        r = r * m
    out = torch.zeros_like(r)
    running = torch.zeros_like(r[..., 0])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = r[..., t] + gamma * running
        out[..., t] = running
    return out if m is None else out * m


def gae(rewards, values, gamma: float, lam: float, mask=None) -> tuple[Tensor, Tensor]:
    """Generalised advantage estimation (Schulman et al. 2016). Returns (advantages, returns).

    delta_t = r_t + gamma V_{t+1} - V_t, with V = 0 after the last (real) step;
    A_t = sum_l (gamma lam)^l delta_{t+l};  returns = A + V (the value target).
    lam = 1 gives Monte-Carlo returns minus V; lam = 0 gives the one-step TD error.
    """
    _check_discount("gamma", gamma)
    _check_discount("lam", lam)
    r = as_tensor(rewards, "rewards")
    v = as_tensor(values, "values", like=r)
    check_same_shape(rewards=r, values=v)
    if r.dim() == 0:
        raise ValueError("rewards must have a time dimension: shape [..., T]")
    m = check_mask(mask, r)
    if m is None:
        m = torch.ones_like(r)
    v = v * m
    next_v = torch.cat([v[..., 1:], torch.zeros_like(v[..., :1])], dim=-1)
    deltas = (r + gamma * next_v - v) * m
    adv = torch.zeros_like(r)
    running = torch.zeros_like(r[..., 0])
    for t in range(r.shape[-1] - 1, -1, -1):
        running = deltas[..., t] + gamma * lam * running * m[..., t]
        adv[..., t] = running
    adv = adv * m
    return adv, (adv + v) * m


BASELINES = ("mean", "leave_one_out")
SCALES = ("group", "batch", "none")


def constant_groups(rewards, rel_tol: float = 1e-6) -> Tensor:
    """True for each group (last dim) whose rewards are all equal up to float rounding.

    Such a group teaches nothing, so its advantages must be exactly 0. Testing `std > 0` is not
    enough: in float32 the mean of identical values can miss them by an ulp, the "spread" is then
    ~1e-8, and dividing by it (plus a tiny eps) turned rounding into advantages of 0.02-0.1.
    """
    r = as_tensor(rewards, "rewards")
    span = r.amax(dim=-1) - r.amin(dim=-1)
    return span <= rel_tol * r.abs().amax(dim=-1).clamp_min(1.0)


def group_relative_advantages(rewards, eps: float = 1e-6, std: str = "unbiased",
                              baseline: str = "mean", scale: str = "group") -> Tensor:
    """GRPO's advantage: (r - mean) / (std + eps) within each group (last dim = the G samples).

    `std` chooses the spread: "unbiased" (n-1, torch.std's default, as in DeepSeekMath and TRL),
    "population" (n), or "none" to only subtract the mean (Dr. GRPO's remedy for the length and
    difficulty bias of dividing by std). A group of identical rewards gives exactly 0 everywhere,
    never NaN or rounding noise (`constant_groups`): it teaches nothing, and that is what the zero
    says.

    The GRPO family's other choices (TRL's names):
    - `baseline="leave_one_out"` (RLOO, Ahmadian et al. 2024): each sample is compared with the
      mean of the *other* G-1, r_i - (sum_j r_j - r_i)/(G-1) = G/(G-1) (r_i - mean), so its own
      reward never enters its baseline.
    - `scale`: "group" divides by the group's spread (GRPO), "batch" by the spread of every reward
      in the tensor (TRL's scale_rewards="batch", PPO-Lite), "none" not at all (Dr. GRPO).
    """
    if std not in STD_KINDS:
        raise ValueError(f"unknown std {std!r}; expected one of {', '.join(STD_KINDS)}")
    if baseline not in BASELINES:
        raise ValueError(f"unknown baseline {baseline!r}; expected one of {', '.join(BASELINES)}")
    if scale not in SCALES:
        raise ValueError(f"unknown scale {scale!r}; expected one of {', '.join(SCALES)}")
    if not (isinstance(eps, (int, float)) and eps >= 0):
        raise ValueError(f"eps must be a non-negative number, got {eps!r}")
    r = as_tensor(rewards, "rewards")
    if r.dim() == 0 or r.shape[-1] < 1:
        raise ValueError("rewards must have shape [..., G]: one group of G samples per prompt")
    g = r.shape[-1]
    flat = constant_groups(r)[..., None]
    if g < 2:
        return torch.zeros_like(r)
    centred = r - r.mean(dim=-1, keepdim=True)
    if baseline == "leave_one_out":
        centred = centred * (g / (g - 1))
    centred = torch.where(flat, torch.zeros_like(centred), centred)
    if std == "none" or scale == "none":
        return centred
    correction = 1 if std == "unbiased" else 0
    if scale == "batch":
        spread = r.reshape(-1).std(correction=correction).expand_as(r[..., :1])
    else:
        spread = r.std(dim=-1, keepdim=True, correction=correction)
    # A zero spread means every centred value is already exactly 0; guard the 0/0 when eps is 0.
    return torch.where(spread > 0, centred / (spread + eps), torch.zeros_like(centred))
