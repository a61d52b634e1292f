"""The runs on the plots, a part of the main window: the live one, one opened from the runs
list, and those overlaid beside them; each with its label and colour. It owns that state; the
window asks it to change and to redraw."""

from __future__ import annotations

from explorer.panels.run_loading import RunFollower, load_run_series
from explorer.plots.series import RunSeries
from explorer.plots.style import run_color


class ShownRuns:
    def __init__(self, store, dashboard, live_label):
        """store: the GUI thread's run store; dashboard: draws them; live_label(): the live
        run's label ("grpo (live)")."""
        self.store, self.dashboard, self.live_label = store, dashboard, live_label
        self.live_id: str | None = None
        self.live_series: RunSeries | None = None
        self.opened: tuple[str, RunSeries] | None = None
        self.overlays: dict[str, RunFollower] = {}

    def start_live(self, series: RunSeries) -> None:
        """A run starts (or carries on, showing its stored steps first): it is what is shown."""
        self.live_series, self.live_id, self.opened = series, None, None

    def swap_live_series(self, series: RunSeries) -> None:
        """The live run's curves replaced by `series` (a benchmark preloads long ones); the run
        stays the live one."""
        self.live_series = series

    def went_live(self, run_id: str) -> None:
        """The live run got its id (its first step is stored)."""
        self.live_id = run_id

    def redraw(self) -> None:
        entries = []
        if self.live_series is not None:
            entries.append((self.live_label(), self.live_series))
        elif self.opened is not None:
            entries.append((self.label(self.opened[0]), self.opened[1]))
        shown = {self.live_id, self.opened[0] if self.opened else None}
        for run_id, follower in self.overlays.items():
            if run_id not in shown:
                entries.append((self.label(run_id), follower.series))
        self.dashboard.set_runs([(label, series, run_color(i))
                                 for i, (label, series) in enumerate(entries)])

    def label(self, run_id: str) -> str:
        try:
            info = self.store.get_run(run_id)
        except KeyError:
            return run_id
        return info.name or f"{info.algo} {run_id[9:15]}"

    def open(self, run_id: str, busy: bool) -> bool:
        """Show a stored run (beside the live one when a run is going); False when it is the
        live one already."""
        if run_id == self.live_id and self.live_series is not None:
            return False
        if not busy:
            self.live_series, self.live_id = None, None
        self.opened = (run_id, load_run_series(self.store, run_id))
        return True

    def set_overlays(self, run_ids: list) -> None:
        kept = {rid: f for rid, f in self.overlays.items() if rid in run_ids}
        for rid in run_ids:
            if rid not in kept:
                kept[rid] = RunFollower(self.store, rid)
                kept[rid].poll()
        self.overlays = kept
        self.redraw()

    def poll(self) -> None:
        """Runs written by another process (the CLI) keep growing on the plots."""
        for rid, follower in self.overlays.items():
            if rid != self.live_id and not follower.done:
                follower.poll()

    def forget(self, run_id: str) -> None:
        """A deleted run leaves the plots."""
        self.overlays.pop(run_id, None)
        if self.opened and self.opened[0] == run_id:
            self.opened = None
        self.redraw()
