"""When a run asks for a round of feedback, and what its rounds so far were (iterated RLHF,
`core.reward_learning.feedback`). The trainer owns one `Rounds`; a resume saves and restores it
whole."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

# Steps between a round and the next one the members' disagreement asks for: the policy needs a
# few steps on the updated reward model before its disagreement says anything new.
UNSURE_GAP = 10


@dataclass
class Rounds:
    done: int = 0                   # rounds so far
    last_step: int = 0              # the step of the last one
    reason: str = ""                # why the one now running (or last) was asked: asked, every,
                                    # unsure
    disagreement_ratio: float = math.nan   # the last step's rm/disagreement_ratio
    # the rounds' events and metrics not yet sent: they go out with the next step
    pending: tuple[list, dict] = field(default_factory=lambda: ([], {}))

    def due(self, cfg, step: int, asked: bool) -> bool:
        """Whether to ask for a round after `step` steps, setting `reason`: asked for (the
        window's Rank now), the schedule (`feedback_every`), or the members' disagreement past
        `feedback_unsure` (at least UNSURE_GAP steps after the last round, so that the update it
        brought shows first). `feedback_max_rounds` caps the scheduled and unsure ones."""
        if asked:
            self.reason = "asked"
            return True
        if cfg.feedback_max_rounds and self.done >= cfg.feedback_max_rounds:
            return False
        if cfg.feedback_every and step % cfg.feedback_every == 0:
            self.reason = "every"
            return True
        if cfg.feedback_unsure and self.disagreement_ratio >= cfg.feedback_unsure \
                and step - self.last_step >= UNSURE_GAP:
            self.reason = "unsure"
            return True
        return False

    def observe(self, disagreement_ratio: float) -> None:
        """A step's rm/disagreement_ratio (NaN without an ensemble): what `due` reads."""
        self.disagreement_ratio = disagreement_ratio

    def record(self, step: int, event: dict, metrics: dict) -> None:
        """A round ended at `step`: count it, and keep what it says for the next step."""
        self.done += 1
        self.last_step = step
        events, old = self.pending
        self.pending = (events + [event], {**old, **metrics})

    def take_pending(self) -> tuple[list, dict]:
        out, self.pending = self.pending, ([], {})
        return out

    def state_dict(self) -> tuple[tuple[list, dict], dict]:
        """(what a step has yet to send, the counters): the resume file's `round_out` and
        `rounds`."""
        return self.pending, {"done": self.done, "last_step": self.last_step,
                              "ratio": self.disagreement_ratio}

    def load_state_dict(self, pending, counters: dict) -> None:
        events, metrics = pending or ([], {})
        self.pending = (list(events), dict(metrics))
        self.done = int(counters.get("done", 0))
        self.last_step = int(counters.get("last_step", 0))
        ratio = counters.get("ratio")
        self.disagreement_ratio = math.nan if ratio is None else float(ratio)
