"""Between a run and the Rank tab, a part of the main window: a round of feedback the run asks
for goes to the Rank tab and its rankings back to the run; the Rank tab's "Use for next run"
and "DPO on these rankings" set up the next run's knobs."""

from __future__ import annotations

from collections.abc import Callable

from core.config import RunConfig


class FeedbackLink:
    def __init__(self, runner, rank_tab, panel, say: Callable[[str], None],
                 show_tab: Callable[[object], None], dashboard, steps_shown: Callable[[], int]):
        """runner: the training thread's owner (submits a round's rankings, asks for a round);
        rank_tab, panel, dashboard: the widgets; say(text): the status line; show_tab(widget):
        bring a tab forward; steps_shown(): steps the shown run has so far."""
        self.runner, self.rank_tab, self.panel, self.say = runner, rank_tab, panel, say
        self.show_tab, self.dashboard, self.steps_shown = show_tab, dashboard, steps_shown

    # --- rounds
    def round_requested(self, request) -> None:
        self.show_tab(self.rank_tab)
        self.rank_tab.start_round(request.groups, self.steps_shown(), request.reason)
        self.say(f"Feedback round ({request.reason}): rank {len(request.groups)} groups in the "
                 "Rank tab; the run waits for you.")

    def round_ranked(self, rankings) -> None:
        self.runner.submit_round(rankings)
        self.say(f"Round ranked ({len(rankings)} rankings); updating the reward model, then the "
                 "run goes on.")
        self.show_tab(self.dashboard)

    def request_round(self) -> None:
        control = self.runner.control
        if control is None or not control.request_round():
            self.say("A feedback round needs a running run with a learned reward (or DPO).")
            return
        self.say("A feedback round starts after the current step.")

    # --- the next run, from the Rank tab
    def _mine(self, cfg: RunConfig, *leave: str) -> dict:
        """The knobs the person set, but for `leave`: a new objective or reward brings its own
        defaults for the rest (with_changes alone kept GRPO's fixed β 0.04 on a learned reward,
        and the run hacked the model)."""
        return {k: getattr(cfg, k) for k in self.panel.touched() if k not in leave}

    def use_reward_model(self, name: str) -> None:
        cfg = self.panel.config()
        if cfg is None or self.runner.busy:
            self.say("Stop the run (and fix the settings) to change its reward.")
            return
        self.panel.set_config(RunConfig.for_algo(
            cfg.algo, **{**self._mine(cfg, "algo"), "task": cfg.task,
                         "reward_source": "learned", "reward_model": name}))
        self.say(f"The next run's reward is the reward model “{name}”, with the learned reward's "
                 "defaults for what you have not set.")

    def use_dpo(self, sources: tuple) -> None:
        """The other route from the same rankings: the next run is DPO on the stored rankings
        of these sources, with the task's true reward only watched."""
        from core.reward_learning.rankings import SOURCES

        cfg = self.panel.config()
        if cfg is None or self.runner.busy:
            self.say("Stop the run (and fix the settings) to change its objective.")
            return
        chosen = "" if set(sources) >= set(SOURCES) else ",".join(sources)
        # From a few dozen rankings IPO harmed least and won most often of the three losses
        # (benchmarks/README.md, "Two routes, same rankings"); a loss you chose stays.
        mine = {"dpo_loss": "ipo", **self._mine(cfg, "algo", "reward_source", "reward_model")}
        self.panel.set_config(RunConfig.for_algo(
            "dpo", **{**mine, "task": cfg.task, "reward_source": "true", "dpo_data": "stored",
                      "dpo_sources": chosen}))
        loss = self.panel.config().dpo_loss
        self.say(f"The next run is DPO ({loss}) on your {cfg.task} rankings from "
                 f"{', '.join(sources)}, with no reward model; Start runs it.")
