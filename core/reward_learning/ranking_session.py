"""A person's ranking session, without any widget: the group on screen, the ranks typed so far,
the groups waiting, and a feedback round in progress. The window's ranking panel shows it and
turns keys into calls here; a test (or another front end) drives it the same way.

The session never stores anything: the rankings store owns every ranking. It says what to show
next and when a round is complete.
"""

from __future__ import annotations

from dataclasses import dataclass, field

LOW_WATER = 2   # sample more when fewer groups than this wait, so the next one shows at once


@dataclass
class RankingSession:
    group: object = None                 # the Group on screen, or None
    ranks: list = field(default_factory=list)      # typed ranks, per response (None: not yet)
    order: list = field(default_factory=list)      # the response index shown in each row
    queue: list = field(default_factory=list)      # groups waiting to be shown
    round: list | None = None            # a running round's Rankings so far, or None
    round_left: int = 0                  # its groups still to rank
    round_reason: str = ""               # why it asks (the banner says it)
    round_groups: list = field(default_factory=list)
    round_step: int = 0                  # the step of the policy it samples
    replace: bool = False                # show the next sampled group over the shown one
    waiting: bool = False                # groups were asked for and have not come
    random: bool = False                 # random prompts: keep a few groups sampled ahead

    # --- what is shown
    def show(self, group) -> None:
        self.group = group
        k = len(group.responses) if group else 0
        self.ranks, self.order = [None] * k, list(range(k))

    def next(self) -> bool:
        """Show the next waiting group if none is shown; True when more should be sampled
        (random prompts, outside a round, fewer than LOW_WATER waiting)."""
        if self.group is None and self.queue:
            self.show(self.queue.pop(0))
        return (self.round is None and self.random and len(self.queue) < LOW_WATER
                and not self.waiting and self.group is not None)

    def clear_queue(self) -> int:
        had = len(self.queue)
        self.queue.clear()
        return had

    # --- groups coming in
    def add_groups(self, groups, task: str) -> None:
        """Groups sampled for the person: during a round they wait; a `replace` request shows
        the first at once (the shown group waits behind it); others queue. Only the current
        task's are kept outside a round."""
        self.waiting = False
        if self.round is not None:       # a round owns the panel; extra samples wait
            self.queue.extend(groups)
            return
        mine = [g for g in groups if g.task == task]
        if self.replace and mine and self.group is not None:
            self.replace = False
            self.queue[:0] = mine[1:] + [self.group]
            self.show(mine[0])
        else:
            self.queue.extend(mine)

    # --- a round
    def start_round(self, groups, step: int, reason: str = "") -> None:
        self.round, self.round_left = [], len(groups)
        self.round_reason, self.round_groups, self.round_step = reason, list(groups), step
        waiting = ([self.group] if self.group is not None else []) + self.queue
        self.queue = list(groups) + waiting   # the group on screen waits behind the round
        self.show(None)

    def cancel_round(self) -> bool:
        """The run ended mid-round: its groups go. False when no round was running."""
        if self.round is None:
            return False
        groups = self.round_groups
        self.round, self.round_left, self.round_groups = None, 0, []
        self.queue = [g for g in self.queue if not any(g is r for r in groups)]
        self.show(None)
        return True

    # --- the person's answers
    def set_rank(self, row: int, rank: int) -> bool:
        """Rank the response in `row` (1 = best; equal numbers tie); False when out of range."""
        if self.group is None or not 1 <= rank <= len(self.ranks):
            return False
        self.ranks[self.order[row]] = rank
        return True

    def rank_by_position(self, order: list) -> None:
        """A drag reordered the rows: rank by position, 1 at the top."""
        self.order = list(order)
        for position, i in enumerate(self.order, start=1):
            self.ranks[i] = position

    def missing(self) -> int:
        return sum(r is None for r in self.ranks)

    def done(self, ranking) -> tuple | None:
        """The shown group is answered (`ranking`, or None when skipped or not rankable). It
        leaves the screen; returns the round's rankings when that completes the round."""
        finished = None
        if self.round is not None:
            self.round_left -= 1
            if ranking is not None:
                self.round.append(ranking)
            if self.round_left <= 0:
                finished, self.round = tuple(self.round), None
        self.show(None)
        return finished
