"""The main window's human-feedback wiring (a mixin of `MainWindow`): iterated-RLHF rounds
between the run and the Rank tab, a saved reward model chosen for the next run, the checkpoints
offered for sampling, and the run's knobs shown on the Math tab."""

from __future__ import annotations

from core.config import RunConfig


class WindowFeedback:
    @staticmethod
    def _run_knobs(cfg: RunConfig) -> dict:
        return {k: getattr(cfg, k) for k in ("rank_scheme", "rank_lam", "clip_eps", "kl_target")} \
            | {"clip_eps_high": cfg.clip_high}

    # --- human feedback
    def _round_requested(self, request) -> None:
        reward = self.live_series.get("reward/mean") if self.live_series else None
        step = len(reward) if reward is not None else 0
        self.show_tab(self.rank_tab)
        self.rank_tab.start_round(request.groups, step, request.reason)
        self.status_text.setText(f"Feedback round ({request.reason}): rank "
                                 f"{len(request.groups)} groups in the Rank tab; the run waits "
                                 "for you.")

    def _round_ranked(self, rankings) -> None:
        self.controller.submit_round(rankings)
        self.status_text.setText(f"Round ranked ({len(rankings)} rankings); updating the reward "
                                 "model, then the run goes on.")
        self.show_tab(self.dashboard)

    def request_round(self) -> None:
        if not self.controller.request_round():
            self.status_text.setText("A feedback round needs a running run with a learned reward.")
            return
        self.status_text.setText("A feedback round starts after the current step.")

    def _use_reward_model(self, name: str) -> None:
        cfg = self.panel.config()
        if cfg is None or self.controller.busy:
            self.status_text.setText("Stop the run (and fix the settings) to change its reward.")
            return
        # The learned reward's own defaults (its KL budget) for every knob the person has not
        # set: with_changes alone kept GRPO's fixed β 0.04, and the run hacked the model.
        mine = {k: getattr(cfg, k) for k in self.panel.touched() if k != "algo"}
        self.panel.set_config(RunConfig.for_algo(
            cfg.algo, **{**mine, "task": cfg.task, "reward_source": "learned",
                         "reward_model": name}))
        self.status_text.setText(f"The next run's reward is the reward model “{name}”, with "
                                 "the learned reward's defaults for what you have not set.")

    def _use_dpo(self, sources: tuple) -> None:
        """The other route from the same rankings: the next run is DPO on the stored rankings
        of these sources, with the task's true reward only watched."""
        from core.reward_learning.rankings import SOURCES

        cfg = self.panel.config()
        if cfg is None or self.controller.busy:
            self.status_text.setText("Stop the run (and fix the settings) to change its "
                                     "objective.")
            return
        mine = {k: getattr(cfg, k) for k in self.panel.touched()
                if k not in ("algo", "reward_source", "reward_model")}
        chosen = "" if set(sources) >= set(SOURCES) else ",".join(sources)
        self.panel.set_config(RunConfig.for_algo(
            "dpo", **{**mine, "task": cfg.task, "reward_source": "true", "dpo_data": "stored",
                      "dpo_sources": chosen}))
        self.status_text.setText(f"The next run is DPO on your {cfg.task} rankings from "
                                 f"{', '.join(sources)}, with no reward model; Run starts it.")

    def show_tab(self, widget) -> None:
        """Bring the tab holding `widget` (the dashboard, the Rank tab, the Math panel) forward."""
        for i in range(self.tabs.count()):
            page = self.tabs.widget(i)
            if page is widget or getattr(page, "widget", lambda: None)() is widget:
                self.tabs.setCurrentIndex(i)

    def current_tab(self):
        page = self.tabs.currentWidget()
        return page if page is self.dashboard else page.widget()

    def _tab_changed(self, index: int) -> None:
        # The samples belong to watching; ranking and the math need the width.
        self.docks["samplesDock"].setVisible(index == 0)

    def _list_checkpoints(self) -> None:
        items = []
        for info in self.store.list_runs()[:12]:
            for step, path in self.store.checkpoints(info.id)[-1:]:
                items.append((f"{info.algo} {info.task} {info.id[9:15]} step {step}", str(path)))
        self.rank_tab.set_checkpoints(items)

