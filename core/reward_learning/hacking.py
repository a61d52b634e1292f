"""Is the policy hacking its learned reward? Signals a person can see without any hidden reward.

Two signals, both from the reward model itself (issue 16):
- `rm/disagreement_ratio`: the ensemble's members disagree more on what the policy now writes than
  on the base model's samples, so the policy writes what the rankings never covered. With the
  conservative aggregate (mean - lambda x spread) the policy is pushed to where the members agree,
  so a ratio that still climbs past `RATIO` is a strong sign.
- `rm/fresh_accuracy`: each round, how many of the person's new preferences the model predicted
  before it trained on them. Low, or falling from round to round, the proxy no longer means what
  the person means (Gao et al. 2022's over-optimisation, seen from the person's side).

`warning` turns them into one sentence that names the fix, or None; the window shows it as a
banner over the plots, and the CLI's progress line could too.

DPO has no reward model to hack, but a failure of its own with a signal of its own (issue 18):
`dpo/logp_chosen`, the log-probability of the responses a person preferred. DPO only widens the
margin between preferred and rejected, and often does it by lowering both; the probability then
goes to text nobody ranked ("likelihood displacement", Razin et al. 2024). `displacement`
says so once the preferred responses have lost `DISPLACED` nats.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

RATIO = 1.5          # members' spread on the policy's samples / on the base model's
LOW_FRESH = 0.55     # fresh accuracy at or below it: near chance (0.5) on the person's new pairs
FRESH_DROP = 0.1     # or a fall of this much from the round before
RECENT = 5           # steps whose mean ratio counts (one step is noisy)
# nats the preferred responses' log pi may fall below their start (a response of ~12 tokens at
# about -2 nats a token: 5 nats is each token about 1.5 times less likely)
DISPLACED = 5.0


def warning(ratio: Sequence[float], fresh: Sequence[float]) -> str | None:
    """A one-sentence warning with its fix, or None. ratio: the run's `rm/disagreement_ratio`
    by step; fresh: its `rm/fresh_accuracy` by round."""
    recent = [r for r in list(ratio)[-RECENT:] if not math.isnan(r)]
    fresh = [f for f in fresh if not math.isnan(f)]
    if fresh and (fresh[-1] <= LOW_FRESH or (len(fresh) > 1 and
                                              fresh[-1] <= fresh[-2] - FRESH_DROP)):
        return (f"The reward model predicted only {fresh[-1]:.0%} of your latest preferences "
                "before training on them: the policy is exploiting it. Rank another round "
                "(Ctrl+Shift+R), or raise β.")
    if len(recent) == min(RECENT, len(list(ratio))) and recent and \
            sum(recent) / len(recent) >= RATIO:
        mean = sum(recent) / len(recent)
        return (f"The reward model's members disagree {mean:.1f}× more on the policy's samples "
                "than on the base model's: the policy is leaving what your rankings cover. Rank a "
                "round now (Ctrl+Shift+R), or raise β.")
    return None


def displacement(logp_chosen: Sequence[float]) -> str | None:
    """A one-sentence warning with its fix when DPO lowers the responses a person preferred, or
    None. logp_chosen: the run's `dpo/logp_chosen` by step (batches differ, so means of
    `RECENT` steps are compared)."""
    values = [v for v in logp_chosen if not math.isnan(v)]
    if len(values) < 2 * RECENT:
        return None
    start = sum(values[:RECENT]) / RECENT
    now = sum(values[-RECENT:]) / RECENT
    if start - now < DISPLACED:
        return None
    return (f"The responses you preferred have become {start - now:.0f} nats less likely since "
            "the start: DPO is widening the margin by lowering both sides, and the probability "
            "goes to text nobody ranked (likelihood displacement). Raise dpo_sft (try 1), or "
            "β, or use dpo_loss=ipo.")
