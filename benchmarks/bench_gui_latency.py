"""GUI event-loop latency (p50/p99) and redraw rate while the window trains (goal: p99 < 50 ms).

    .venv/bin/python benchmarks/bench_gui_latency.py                    # 30 s of live training
    .venv/bin/python benchmarks/bench_gui_latency.py --preload 100000   # curves of 100k points
    .venv/bin/python benchmarks/bench_gui_latency.py --set threads=1 --seconds 20

The real MainWindow (offscreen unless QT_QPA_PLATFORM is set) starts the default GRPO run
(`RunConfig.for_algo("grpo")`: sentiment, the shipped checkpoint in assets/) through its own
`start_run()`, so training runs in the window's worker thread exactly as for a user. Only
`steps` is raised (default 100000; per-step work does not depend on it) so the run outlasts the
measurement. Measuring starts when the first training step reaches the window and lasts
--seconds; then the run is stopped and the worker joined.

Latency method. A plain Python thread (not Qt) wakes every 10 ms, reads perf_counter() and
emits a signal carrying that time to a QObject living in the GUI thread. The connection is
queued, the same path the worker's `stepDone` takes, so the slot runs only when the GUI event
loop gets to it: after whatever it is busy with (a step's slot, a dashboard refresh, painting)
and after taking the GIL from the training thread. latency = perf_counter() in the slot minus
the stamp; that is how long a click or key press would wait before Python code could react.
The stamp is taken after the probe thread itself woke and held the GIL, so its own scheduling
delay is not charged to the GUI. As a cross-check the table also gives the lag of a 5 ms
Qt.PreciseTimer in the GUI thread (actual gap between its firings minus 5 ms), the usual
"event-loop lag" measure; it sees the same stalls but a 5 ms grid quantises small values.

Redraws. Dashboard.refresh (driven by the window's 20 Hz timer) is wrapped at class level; a
call counts as a redraw when at least one MetricPlot.refresh returned True (new data pushed to
curves). Between training steps nothing changes, so the live rate is at most min(steps/s ×
panels touched, 20/s); the ms per redraw column shows the capacity (benchmarks/bench_redraw.py
measures the >= 30 redraws/s goal in isolation).

--preload N fills the live RunSeries with N synthetic steps of every metric the run reports
(x from -N to -1, so training's own steps continue the curves) as soon as the first step
arrives; every redraw then pushes N-point curves while training goes on: a long run.

The table has two rows: every probe, and the probes after the first 2 s. The first step of a
run makes the dashboard build a panel per extra metric ("More metrics"), a one-off stall of
0.5-1.2 s that dominates p99 of a short window. --spikes MS groups probes slower than MS into
stalls and lists, for each, the steps that arrived and every event the GUI thread took >= 5 ms
to dispatch (QApplication.notify is timed; this adds a little overhead, so use it to explain a
number rather than to take one).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

import numpy as np  # noqa: E402
from PySide6.QtCore import QObject, QSettings, Qt, QTimer, Signal, Slot  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402

from core.config import RunConfig, coerce  # noqa: E402
from explorer.plots.dashboard import Dashboard  # noqa: E402
from explorer.plots.metric_plot import MetricPlot  # noqa: E402
from explorer.plots.series import RunSeries  # noqa: E402

PROBE_PERIOD_S = 0.010
TIMER_PERIOD_MS = 5
STEADY_AFTER_S = 2.0  # the second table row leaves out the run's one-off first redraw


class Probe(QObject):
    """Lives in the GUI thread; `ping` is emitted from a plain Python thread (queued)."""

    ping = Signal(float)

    def __init__(self) -> None:
        super().__init__()
        self.recording = False
        self.latencies: list[float] = []
        self.stamps: list[float] = []
        self.timer_lags: list[float] = []
        self._last_fire = 0.0
        self._stop = threading.Event()
        self.ping.connect(self._pong, Qt.ConnectionType.QueuedConnection)
        self.timer = QTimer(self)
        self.timer.setTimerType(Qt.TimerType.PreciseTimer)
        self.timer.setInterval(TIMER_PERIOD_MS)
        self.timer.timeout.connect(self._tick)
        self._thread = threading.Thread(target=self._post_loop, name="latency-probe",
                                        daemon=True)

    def start(self) -> None:
        self._last_fire = time.perf_counter()
        self.timer.start()
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self.timer.stop()
        self._thread.join(1.0)

    def _post_loop(self) -> None:
        while not self._stop.wait(PROBE_PERIOD_S):
            self.ping.emit(time.perf_counter())

    @Slot(float)
    def _pong(self, posted: float) -> None:
        if self.recording:
            self.latencies.append(time.perf_counter() - posted)
            self.stamps.append(posted)

    def _tick(self) -> None:
        now = time.perf_counter()
        if self.recording:
            self.timer_lags.append(max(0.0, now - self._last_fire - TIMER_PERIOD_MS / 1000))
        self._last_fire = now


class TimingApp(QApplication):
    """With --spikes: times every event the GUI thread dispatches, keeps the slow ones."""

    slow: list[tuple[float, float, str]] = []  # (start, seconds, "EventType -> Receiver")
    limit = 0.005

    def notify(self, receiver, event):  # noqa: N802 (Qt override)
        t0 = time.perf_counter()
        out = super().notify(receiver, event)
        dt = time.perf_counter() - t0
        if dt >= self.limit:
            name = receiver.objectName() or type(receiver).__name__
            self.slow.append((t0, dt, f"{event.type().name} -> {name}"))
        return out


class RedrawCounter:
    """Counts Dashboard.refresh calls that redrew a panel, and their time, while `recording`."""

    def __init__(self) -> None:
        self.recording = False
        self.redraws = 0
        self.calls = 0
        self.seconds: list[float] = []
        self.stamps: list[float] = []
        self._drew = False
        counter = self
        plot_refresh, board_refresh = MetricPlot.refresh, Dashboard.refresh

        def metric_refresh(plot, *args, **kwargs):
            drew = plot_refresh(plot, *args, **kwargs)
            counter._drew |= bool(drew)
            return drew

        def dashboard_refresh(board, *args, **kwargs):
            counter._drew = False
            t0 = time.perf_counter()
            out = board_refresh(board, *args, **kwargs)
            if counter.recording:
                counter.calls += 1
                if counter._drew:
                    counter.redraws += 1
                    counter.seconds.append(time.perf_counter() - t0)
                    counter.stamps.append(t0)
            return out

        # Before the window exists, so the bound method its redraw timer connects is the wrapper.
        MetricPlot.refresh = metric_refresh
        Dashboard.refresh = dashboard_refresh


def synthetic_series(n: int, names: list[str], rng: np.random.Generator) -> RunSeries:
    """N steps of every metric name, at steps -N..-1, so live steps continue the curves."""
    series = RunSeries(capacity=n + 4096)
    values = {name: rng.standard_normal(n).cumsum() / math.sqrt(n) for name in names}
    for i in range(n):
        row = {name: v[i] for name, v in values.items()}
        row.update(step=float(i - n), time_s=float(i - n) * 0.5)
        series.append(row)
    return series


def print_spikes(limit: float, state: dict, probe: Probe, redraws: RedrawCounter) -> None:
    """Stalls (runs of probes slower than limit) and what the GUI thread was doing then."""
    t0 = state["t_first"]
    stalls: list[list[float]] = []  # [first stamp, last stamp + latency, worst latency]
    for posted, latency in zip(probe.stamps, probe.latencies, strict=True):
        if latency < limit:
            continue
        if stalls and posted <= stalls[-1][1]:
            stalls[-1][1] = max(stalls[-1][1], posted + latency)
            stalls[-1][2] = max(stalls[-1][2], latency)
        else:
            stalls.append([posted, posted + latency, latency])
    print(f"stalls: probes slower than {1000 * limit:.0f} ms (t in s since measuring began); "
          "the slowest events dispatched and steps arriving in them:")
    for start, end, worst in stalls:
        what = [f"step {t - t0:.2f}" for t in state["arrivals"] if start - 0.2 <= t <= end]
        what += [f"{label} {1000 * dt:.0f} ms" for t, dt, label in TimingApp.slow
                 if start - 2 <= t <= end and t + dt >= start]
        print(f"  t={start - t0:6.2f}..{end - t0:6.2f}  worst {1000 * worst:6.1f} ms  "
              + "; ".join(what))
    print()


def parse_sets(items: list[str]) -> dict:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants key=value, got {item!r}")
        out[key.strip()] = coerce(key.strip(), value.strip())
    return out


def pct(values: list[float], q: float) -> float:
    return float(np.percentile(values, q)) * 1000 if values else math.nan


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=30.0,
                        help="measure for this long after the first training step")
    parser.add_argument("--preload", type=int, default=0, metavar="N",
                        help="fill the live curves with N synthetic steps first (e.g. 100000)")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="a RunConfig setting, e.g. threads=1 (repeatable)")
    parser.add_argument("--spikes", type=float, default=0.0, metavar="MS",
                        help="also list probes slower than MS, with redraws and steps near them")
    parser.add_argument("--headless", action="store_true",
                        help="then run as many steps of the same config without the window, in "
                             "this process, and print how much slower the window's steps were")
    parser.add_argument("--switch-interval", type=float, default=0.0, metavar="S",
                        help="sys.setswitchinterval(S) first (0 = leave the window's own)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="give up if the first step has not arrived after this long")
    args = parser.parse_args()

    if args.switch_interval:
        sys.setswitchinterval(args.switch_interval)
    changes = {"steps": 100_000, **parse_sets(args.set)}
    cfg = RunConfig.for_algo("grpo", **changes)

    app = QApplication.instance() or (TimingApp if args.spikes else QApplication)([])
    tmp = tempfile.TemporaryDirectory(prefix="bench_gui_latency_")
    # The window saves its layout on close: keep that out of the user's real settings.
    QApplication.setOrganizationName("rlhf-explorer-bench")
    QApplication.setApplicationName("bench_gui_latency")
    QSettings.setDefaultFormat(QSettings.Format.IniFormat)
    QSettings.setPath(QSettings.Format.IniFormat, QSettings.Scope.UserScope, tmp.name)

    redraws = RedrawCounter()
    from explorer.main_window import MainWindow  # after the wrappers, for the same reason

    window = MainWindow(data_dir=Path(tmp.name) / "data", restore=False)
    window.show()
    window.panel.set_config(cfg)
    probe = Probe()
    probe.start()
    state = {"started": False, "t_first": None, "t_end": None, "steps0": 0, "steps1": 0,
             "status": "", "step_s": [], "prefill_s": 0.0, "arrivals": []}
    t_launch = time.perf_counter()
    ender = QTimer()  # a coarse single shot may fire 5% early; this one may not
    ender.setSingleShot(True)
    ender.setTimerType(Qt.TimerType.PreciseTimer)

    def begin_window() -> None:
        state["t_first"] = time.perf_counter()
        state["steps0"] = window.live_series.n_steps
        probe.recording = redraws.recording = True
        ender.start(round(args.seconds * 1000))

    def on_step(update) -> None:
        if state["t_end"] is None and state["t_first"] is not None:
            state["step_s"].append(update.metrics_dict().get("perf/step_s", math.nan))
            state.setdefault("rows", []).append(update.metrics_dict())
            state["arrivals"].append(time.perf_counter())
        if state["started"] or window.live_series is None:
            return
        state["started"] = True
        if args.preload:
            t0 = time.perf_counter()
            live = window.live_series
            names = [n for n in live.names() if n != "time_s"]
            series = synthetic_series(args.preload, names, np.random.default_rng(0))
            series.append(update.metrics_dict())
            window.shown.swap_live_series(series)
            window.shown.redraw()  # hand the dashboard the preloaded series in place of live
            state["prefill_s"] = time.perf_counter() - t0
            # Let the first full pass over the long curves happen before measuring.
            window.dashboard.refresh()
            QTimer.singleShot(200, begin_window)
        else:
            begin_window()

    def end_window() -> None:
        probe.recording = redraws.recording = False
        state["t_end"] = time.perf_counter()
        state["steps1"] = window.live_series.n_steps
        window.runner.stop()

    def on_ended(run_id: str, status: str) -> None:
        state["status"] = status
        QTimer.singleShot(0, app.quit)

    def on_failed(run_id: str, text: str) -> None:
        state["status"] = "failed"
        print(text, file=sys.stderr)
        QTimer.singleShot(0, app.quit)

    def watchdog() -> None:
        if state["t_first"] is None and time.perf_counter() - t_launch > args.timeout:
            state["status"] = "timed out before the first step"
            window.runner.stop()
            app.quit()

    ender.timeout.connect(end_window)
    window.runner.stepArrived.connect(on_step)
    window.runner.runEnded.connect(on_ended)
    window.runner.runFailed.connect(on_failed)
    guard = QTimer()
    guard.timeout.connect(watchdog)
    guard.start(1000)
    window.start_run()
    app.exec()
    probe.stop()
    guard.stop()
    window.close()  # joins the worker if it is still going
    t_end = state["t_end"]
    if t_end is None or state["t_first"] is None:
        print(f"no measurement: {state['status'] or 'run ended early'}", file=sys.stderr)
        return 1

    elapsed = t_end - state["t_first"]
    steps = state["steps1"] - state["steps0"]
    lat, lag = probe.latencies, probe.timer_lags
    points = window.live_series.n_steps if window.live_series else 0
    from core.lm.threads import describe

    threads = describe(cfg.threads, beside_gui=True)
    step_s = [s for s in state["step_s"] if math.isfinite(s)]
    print(f"GRPO sentiment, {os.cpu_count()} CPUs, torch threads {threads}"
          f"{' (auto)' if not cfg.threads else ''}, {elapsed:.1f} s measured, "
          f"{points:,} points per curve at the end"
          + (f" (preload {args.preload:,} took {state['prefill_s']:.1f} s)"
             if args.preload else "") + f", run {state['status'] or '?'}")
    print()
    print("| preload | threads | window | probes | p50 ms | p90 ms | p99 ms | max ms "
          "| timer-lag p99 ms | steps | steps/s | step_s median | redraws/s "
          "| ms/redraw mean (max) |")
    print("|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    mean_redraw = 1000 * float(np.mean(redraws.seconds)) if redraws.seconds else math.nan
    max_redraw = 1000 * max(redraws.seconds, default=math.nan)
    steady_from = state["t_first"] + STEADY_AFTER_S
    steady = [x for x, t in zip(lat, probe.stamps, strict=True) if t >= steady_from]
    for label, values in (("all", lat), (f"after {STEADY_AFTER_S:g} s", steady)):
        print(f"| {args.preload:,} | {threads} | {label} | {len(values)} | {pct(values, 50):.1f} "
              f"| {pct(values, 90):.1f} | {pct(values, 99):.1f} "
              f"| {1000 * max(values, default=math.nan):.1f} | {pct(lag, 99):.1f} | {steps} "
              f"| {steps / elapsed:.2f} | {float(np.median(step_s)) if step_s else math.nan:.2f} s "
              f"| {redraws.redraws / elapsed:.1f} | {mean_redraw:.1f} ({max_redraw:.1f}) |")
    print()
    if args.spikes:
        print_spikes(args.spikes / 1000, state, probe, redraws)
    if args.headless and step_s:
        from core.rl.trainer import Trainer

        trainer = Trainer(cfg.with_changes(steps=len(step_s) + 3))
        rows = [r.metrics for r in trainer.run()][3:]
        alone = [r["perf/step_s"] for r in rows]
        window_s, headless_s = float(np.median(step_s)), float(np.median(alone))
        for phase in ("perf/sample_s", "perf/score_s", "perf/update_s"):
            here = float(np.median([r[phase] for r in state["rows"] if phase in r]))
            there = float(np.median([r[phase] for r in rows]))
            print(f"  {phase}: window {1000 * here:.0f} ms, headless {1000 * there:.0f} ms "
                  f"({100 * (here / there - 1):+.0f}%)")
        print(f"step time, median: window {window_s:.3f} s, headless {headless_s:.3f} s "
              f"({len(alone)} steps, same process, after it): the window costs "
              f"{100 * (window_s / headless_s - 1):+.0f}% (goal within 10%)")
    p99, p99_steady = pct(lat, 99), pct(steady, 99)
    print(f"goal p99 < 50 ms: {'met' if p99 < 50 else 'NOT met'} ({p99:.1f} ms; "
          f"{p99_steady:.1f} ms after the first {STEADY_AFTER_S:g} s)")
    tmp.cleanup()
    return 0


if __name__ == "__main__":
    sys.exit(main())
