"""Numerical faults: a NaN or inf in a reward, a loss, a gradient or a parameter ends the run.

The trainer checks each where it first appears, before it can spread: rewards before
advantages, the loss before backward, the gradient norm before the optimiser step, every
parameter after it. `Diverged` says at which step and what went non-finite; the run is stored with
status `diverged` and that text, and a `diverged` event marks the step on the plots. When no
update of the failing step had happened yet, the policy is still step N-1's and is checkpointed
as the last good one; otherwise the last checkpoint written before stays the last good one.
"""

from __future__ import annotations

import numpy as np
import torch


class Diverged(Exception):
    def __init__(self, step: int, what: str, params_intact: bool):
        self.step, self.what, self.params_intact = step, what, params_intact
        super().__init__(f"diverged at step {step}: {what}")


def nonfinite(values) -> str:
    """'' when every value is finite, else e.g. 'nan (3 of 64 values)'."""
    if isinstance(values, torch.Tensor):
        values = values.detach().float().cpu().numpy()
    arr = np.asarray(values, dtype=np.float64)
    bad = ~np.isfinite(arr)
    if not bad.any():
        return ""
    kinds = "/".join(k for k, hit in (("nan", np.isnan(arr).any()), ("inf", np.isinf(arr).any()))
                     if hit)
    return kinds if arr.size == 1 else f"{kinds} ({int(bad.sum())} of {arr.size} values)"


def check_params(step: int, params) -> None:
    """Diverged (the weights are not intact) if any parameter holds a NaN or inf."""
    for p in params:
        if not torch.isfinite(p).all():
            raise Diverged(step, f"a parameter of shape {tuple(p.shape)} is "
                                 f"{nonfinite(p) or 'non-finite'}", params_intact=False)
