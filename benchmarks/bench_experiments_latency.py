"""The window's event-loop latency while the Experiments tab follows a 20-trial sweep (goal: p99
< 50 ms).

    .venv/bin/python benchmarks/bench_experiments_latency.py [--trials 20] [--seconds 30]

Another process plays the sweep's driver: it creates a sweep of --trials trials (5 configs x
seeds) and writes every trial's steps into the store as a driver would, one transaction per
step with 30 metrics and 2 samples. All trials report at once, each a step every --period
seconds (0.5: 40 steps a second into the store, more than a 2-core laptop's 2 trials write, as
a cluster would). The real MainWindow shows the Experiments tab, which polls the store every
second and redraws each config's band; the latency probe of bench_gui_latency.py (a plain
thread posting a queued signal every 10 ms) measures how long the GUI thread takes to react.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

WRITER = r"""
import sys, time, math, random
from core.store.runs import RunStore
from core.sweeps.spec import SweepSpec
data, trials, period, steps = sys.argv[1], int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
seeds = max(1, trials // 5)
spec = SweepSpec("latency", tuple((f"config {i}", {"lr": 1e-4 * (i + 1)}) for i in range(5)),
                 seeds=tuple(range(seeds)), base={"steps": steps})
names = [f"group{g}/metric{m}" for g in range(6) for m in range(4)] + [
    "reward/true_mean", "reward/mean", "kl/mean", "kl/beta", "loss/total", "policy/entropy"]
with RunStore(data) as store:
    sweep = store.create_sweep(spec.name, spec.to_json())
    runs = []
    for label, seed in spec.trials():
        run = store.create_run(spec.config(label, seed).to_dict(), "sentiment", "grpo", "true")
        store.tag_run(sweep, run, label, seed)
        runs.append(run)
    print("ready", flush=True)
    t0 = time.perf_counter()
    for step in range(steps):
        for i, run in enumerate(runs):
            m = {n: math.sin(step / 10 + i) + random.random() * 0.1 for n in names}
            store.log_step(run, step, m, [{"prompt": "p", "completion": "c" * 40}] * 2)
        wait = t0 + (step + 1) * period - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    for run in runs:
        store.finish_run(run, "finished")
    store.finish_sweep(sweep, "finished")
"""


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--trials", type=int, default=20)
    p.add_argument("--seconds", type=float, default=30.0)
    p.add_argument("--period", type=float, default=0.5, help="seconds between a trial's steps")
    args = p.parse_args()

    from bench_gui_latency import Probe, pct
    from PySide6.QtWidgets import QApplication

    from explorer.main_window import MainWindow

    data = tempfile.mkdtemp(prefix="rlhfx-explat-")
    app = QApplication.instance() or QApplication([])
    window = MainWindow(data_dir=data, restore=False)
    window.resize(1366, 768)
    window.show()
    window.show_tab(window.experiments)
    steps = int(args.seconds / args.period) + 20
    writer = subprocess.Popen([sys.executable, "-c", WRITER, data, str(args.trials),
                               str(args.period), str(steps)], stdout=subprocess.PIPE, text=True,
                              cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    assert writer.stdout.readline().strip() == "ready"
    probe = Probe()
    probe.start()
    polls = []
    real_poll = window.experiments.poll

    def timed_poll():
        t = time.perf_counter()
        real_poll()
        polls.append(time.perf_counter() - t)

    window.experiments.timer.timeout.disconnect()
    window.experiments.timer.timeout.connect(timed_poll)
    t0 = time.perf_counter()
    probe.recording = True
    while time.perf_counter() - t0 < args.seconds:
        app.processEvents()
        time.sleep(0.001)
    probe.recording = False
    probe.stop()
    shown = window.experiments.table.rowCount()
    trials = len(window.store.trials(window.experiments.sweep_id))
    writer.kill()
    writer.wait()
    window.close()
    lat = probe.latencies   # seconds; pct() gives ms
    print(f"{trials} trials followed for {args.seconds:.0f} s ({shown} configs in the table); "
          f"{len(polls)} polls, mean {1000 * sum(polls) / max(1, len(polls)):.1f} ms, "
          f"max {1000 * max(polls, default=0):.1f} ms")
    print(f"event-loop latency: p50 {pct(lat, 50):.1f} ms, p99 {pct(lat, 99):.1f} ms, "
          f"max {1000 * max(lat):.1f} ms ({len(lat)} probes); goal p99 < 50 ms")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
