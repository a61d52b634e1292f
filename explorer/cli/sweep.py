"""Headless experiments: `sweep`, `sweeps` and `sweep-report` (core/sweeps/).

No Qt is imported here, except to render the report's PNG from its SVG when asked to. Like the
rest of the CLI, bad input is one line and exit 2, before any trial starts.
"""

from __future__ import annotations

import csv
import json
import math
import signal
import sys
import time
from pathlib import Path

from explorer.cli.errors import UsageError
from explorer.cli.output import data_dir_flag, open_store, print_table

EPILOG = ("exit status: 0 every trial finished; 130 / 143 stopped by Ctrl-C / SIGTERM (each "
          "trial after its step, saved; finish with --resume); 3 some trial failed or diverged "
          "(the others ran on); 2 bad input; 1 a bug")


def register(subparsers, data_dir: dict) -> None:
    from core.sweeps.spec import PRESETS, SCALES

    p = subparsers.add_parser(
        "sweep", help="run a preset or a grid of configs over seeds, on Ray",
        description="Each trial is an ordinary run, tagged with the sweep. Presets: "
        f"{', '.join(PRESETS)} (docs/experiments.md). A grid file (TOML or JSON) has [base] "
        "knobs, a [grid] of knobs with lists of values and/or [[configs]] with a label and "
        "set = {...}, and seeds = N.", epilog=EPILOG)
    p.add_argument("spec", nargs="?", metavar="PRESET_OR_FILE",
                   help="a preset name or a .toml / .json grid")
    p.add_argument("--resume", metavar="SWEEP_ID",
                   help="finish a stopped or interrupted sweep: its trials carry on from their "
                   "last checkpoints, the missing ones start")
    p.add_argument("--seeds", type=int, metavar="N", help="seeds 0..N-1 (default: the spec's)")
    p.add_argument("--scale", choices=SCALES, default="laptop",
                   help="presets: laptop (<= 10 min on 2 cores) or full (more seeds, steps and "
                   "values, for a cluster)")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="a knob for every trial, e.g. --set steps=20")
    p.add_argument("--max-concurrent", type=int, default=0, metavar="N",
                   help="trials at once (default: one per CPU); each gets its share of cores")
    p.add_argument("--cpus", type=int, metavar="N",
                   help="CPUs the local Ray may use (default: all of this machine's)")
    p.add_argument("--address", metavar="ADDR",
                   help="run on a Ray cluster (`ray start --head` there; e.g. 10.0.0.5:6379)")
    p.add_argument("--data-dir", **data_dir)
    p.add_argument("--quiet", action="store_true", help="no progress display")
    p.set_defaults(func=cmd_sweep)

    p = subparsers.add_parser("sweeps", help="list stored sweeps")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_sweeps)

    p = subparsers.add_parser(
        "sweep-report", help="print a sweep's table and write its figure",
        description="Final value (mean of the last steps) mean ± sd over seeds per config, "
        "steps to the threshold, what it shows, and the figure (SVG, PNG) and table (CSV).")
    p.add_argument("sweep_id", metavar="SWEEP_ID")
    p.add_argument("--metric", help="the metric to compare (default: the sweep's own)")
    p.add_argument("--band", choices=("sd", "minmax"), default="sd",
                   help="the band around each mean: ± 1 sd or min–max over seeds")
    p.add_argument("--out", metavar="DIR",
                   help="where the figure and table go (default: sweeps/<id>/report in the "
                   "data folder)")
    p.add_argument("--no-png", action="store_true", help="SVG and CSV only (no Qt)")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_sweep_report)


STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}




def _spec(args):
    from core.config import coerce
    from core.sweeps.spec import parse_spec

    if args.resume is not None:
        given = [f for f, v in (("PRESET_OR_FILE", args.spec), ("--seeds", args.seeds),
                                ("--set", args.set)) if v]
        if given:
            raise UsageError(f"--resume carries on the sweep as it was; drop {', '.join(given)}")
        return None
    if not args.spec:
        raise UsageError("give a preset (kl-vs-clip, rank-to-reward, overoptimisation, "
                         "grpo-family) or a grid file, or --resume SWEEP_ID")
    spec = parse_spec(args.spec, args.scale)
    if args.seeds is not None:
        spec = spec.with_seeds(args.seeds)
    knobs = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        knobs[key.strip()] = coerce(key.strip(), value)
    return spec.with_base(**knobs) if knobs else spec


def cmd_sweep(args) -> int:
    from core.sweeps.runner import SweepRunner

    spec = _spec(args)   # every config checked before anything is made
    if args.cpus is not None and args.cpus < 1:
        raise UsageError(f"--cpus must be >= 1, got {args.cpus}")
    if args.address and args.cpus:
        raise UsageError("--cpus is for the local Ray; a cluster has its own")
    store = open_store(args)
    display = None if args.quiet else SweepDisplay()
    runner = SweepRunner(store, spec, resume=args.resume, max_concurrent=args.max_concurrent,
                         address=args.address, cpus=args.cpus,
                         on_progress=display.update if display else None)
    caught: list[int] = []

    def on_signal(signum, frame):
        if runner.stop_requested:
            raise KeyboardInterrupt   # a second one: abort now
        caught.append(signum)
        runner.request_stop(STOP_SIGNALS.get(signum, str(signum)))
        print(f"\nstopping every trial after its current step ({STOP_SIGNALS.get(signum)} "
              "again to abort)", file=sys.stderr)

    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        status = runner.run()
    except KeyboardInterrupt:
        print(f"\naborted; finished steps are saved (finish with `rlhf-explorer sweep --resume "
              f"{runner.sweep_id}`)", file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        if display:
            display.close()
    progress = runner.progress()
    print(progress.line().replace("  ETA --:--", "").replace("  ETA 00:00", ""))
    where = data_dir_flag(args)
    print(f"see `rlhf-explorer sweep-report {runner.sweep_id}{where}`")
    if status == "stopped":
        print(f"finish it with `rlhf-explorer sweep --resume {runner.sweep_id}{where}`")
        return 128 + int(caught[0] if caught else signal.SIGINT)
    return 3 if status == "failed" else 0


class SweepDisplay:
    """On a terminal: the sweep's line and a bar per running trial, redrawn in place. Else the
    sweep's line every 10 s and when a trial ends."""

    def __init__(self, stream=None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty()
        self._drawn = 0
        self._last = 0.0
        self._ended = 0

    def update(self, progress) -> None:
        now = time.perf_counter()
        ended = progress.count("finished", "failed", "diverged", "stopped")
        if self.tty:
            if now - self._last < 0.2 and ended == self._ended:
                return
            lines = [progress.line()]
            for t in progress.trials:
                if t.state == "running":
                    lines.append("  " + _bar(t))
            out = ("\033[F\033[K" * self._drawn) + "\n".join(lines) + "\n"
            self.stream.write(out)
            self._drawn = len(lines)
        elif now - self._last >= 10.0 or ended != self._ended:
            self.stream.write(progress.line() + "\n")
        else:
            return
        self._last, self._ended = now, ended
        self.stream.flush()

    def close(self) -> None:
        self.stream.flush()


def _bar(t, width: int = 20) -> str:
    fill = int(width * t.step / t.steps) if t.steps else 0
    value = f"  {t.value:+.3f}" if math.isfinite(t.value) else ""
    what = t.phase or f"{t.step}/{t.steps} {'█' * fill}{'·' * (width - fill)}{value}"
    return f"{t.label[:34]:34} seed {t.seed}  {what}"


def cmd_sweeps(args) -> int:
    with open_store(args, read_only=True) as store:
        rows = []
        for s in store.list_sweeps():
            trials = store.trials(s.id)
            total = len(s.spec.get("configs", [])) * len(s.spec.get("seeds", []))
            rows.append({"id": s.id, "name": s.name, "status": s.status,
                         "trials": f"{sum(t.run.status == 'finished' for t in trials)}/{total}",
                         "failed": sum(t.run.status in ("failed", "diverged") for t in trials),
                         "created": s.created_at})
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no sweeps yet; start one with `rlhf-explorer sweep kl-vs-clip`")
        return 0
    print_table(rows, ["id", "name", "status", "trials", "failed", "created"])
    return 0


def report(store, sweep_id: str, metric: str | None = None):
    """(spec, summary, findings, bands) of a sweep, from what the store holds now."""
    from core.sweeps.report import curves, findings, summarise
    from core.sweeps.runner import trial_series
    from core.sweeps.spec import SweepSpec

    spec = SweepSpec.from_json(store.get_sweep(sweep_id).spec)
    metric = metric or spec.metric
    series = trial_series(store, sweep_id, metric)
    summary = summarise(series, spec.threshold)
    extra = _overoptimisation(store, sweep_id, spec) if spec.preset == "overoptimisation" else None
    return spec, metric, summary, findings(spec, summary, extra), curves(series), extra


def _overoptimisation(store, sweep_id: str, spec) -> dict:
    """Gold (true) and proxy (learned) reward against d = sqrt(KL); R(d) = d (alpha - beta log d)
    fitted to each run's gold reward gained since its start, and each config's peak: the median
    of its runs' fitted peaks, beside the d at which its binned gold reward was highest."""
    import numpy as np

    from core.sweeps.report import binned, fit_gao, gao_peak
    from core.sweeps.runner import trial_series

    gold = trial_series(store, sweep_id, "reward/true_mean", x="sqrt_kl")
    # the proxy is the reward model's score: before PaR's shaping where a run shapes it
    shaped = trial_series(store, sweep_id, "reward/rm_mean", x="sqrt_kl")
    raw = trial_series(store, sweep_id, "reward/mean", x="sqrt_kl")
    proxy = [a if a.y.size else b for a, b in zip(shaped, raw, strict=True)]
    peaks, fits, seen = {}, {}, {}
    for label, _ in spec.configs:
        runs = [s for s in gold if s.label == label and s.y.size >= 5]
        run_fits = [fit_gao(s.x, s.y - s.y[:5].mean()) for s in runs]
        run_peaks = [gao_peak(a, b) for a, b in run_fits if math.isfinite(a)]
        if not run_peaks:
            continue
        peaks[label] = float(np.median(run_peaks))
        fits[label] = tuple(float(np.median(v)) for v in zip(*run_fits, strict=True))
        x, y = binned(np.concatenate([s.x for s in runs]), np.concatenate([s.y for s in runs]))
        seen[label] = float(x[np.argmax(y)]) if y.size else math.nan
    return {"peaks": peaks, "fits": fits, "seen": seen, "gold": gold, "proxy": proxy}


def cmd_sweep_report(args) -> int:
    from core.storage import atomic_write_text
    from core.sweeps.figure import svg
    from core.sweeps.report import table_rows

    with open_store(args, read_only=True) as store:
        spec, metric, summary, lines, bands, extra = report(store, args.sweep_id, args.metric)
        info = store.get_sweep(args.sweep_id)
        out = Path(args.out).expanduser() if args.out else store.sweep_dir(args.sweep_id) / \
            "report"
    if not any(s.n for s in summary):
        raise UsageError(f"sweep {args.sweep_id} has no recorded step of {metric!r} yet; "
                         "metric names: `rlhf-explorer metrics RUN_ID --all`")
    rows = table_rows(summary, spec.threshold)
    print(f"sweep {info.id} ({info.name}, {info.status}): {metric}, final = mean of the last "
          "10 steps")
    print_table(rows, list(rows[0]))
    if extra is not None:
        fits = [{"config": label, "alpha": f"{a:+.3f}", "beta": f"{b:+.3f}",
                 "fitted peak d*": ("∞ (still rising)" if math.isinf(extra["peaks"][label])
                                    else f"{extra['peaks'][label]:.2f}"),
                 "highest gold at d": f"{extra['seen'][label]:.2f}"}
                for label, (a, b) in extra["fits"].items()]
        if fits:
            print("\ngold (true) reward gained against d = √KL, R(d) = d (alpha - beta log d) "
                  "fitted per run (medians over seeds):")
            print_table(fits, list(fits[0]))
    print()
    for line in lines:
        print(line)
    from core.storage import check_folder

    try:
        check_folder(out, what="report folder")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    written = [out / "figure.svg", out / "summary.csv"]
    if extra is not None:   # over-optimisation: gold and proxy against sqrt(KL), binned
        from core.sweeps.report import Series, binned, common_edges, curves

        xlabel = "d = √KL to the base model (nats^½)"
        edges = common_edges(extra["gold"])   # each config's seeds on the same bins
        gold, proxy = ([Series(s.label, s.seed, *binned(s.x, s.y, edges=edges[s.label]))
                        for s in extra[k] if s.label in edges] for k in ("gold", "proxy"))
        bands = curves(gold)
        proxy_text = svg(curves(proxy), f"{info.name}: proxy (learned) reward", xlabel,
                         "proxy reward", args.band)
        atomic_write_text(out / "figure_proxy.svg", proxy_text)
        written.append(out / "figure_proxy.svg")
        if not args.no_png and svg_to_png(proxy_text, out / "figure_proxy.png"):
            written.append(out / "figure_proxy.png")
        title = f"{info.name}: gold (true) reward"
    else:
        xlabel, title = "step", f"{info.name}: {metric} (mean over seeds)"
    text = svg(bands, title, xlabel, metric, args.band)
    atomic_write_text(written[0], text)
    _write_csv(written[1], summary)
    if not args.no_png:
        png = out / "figure.png"
        if svg_to_png(text, png):
            written.append(png)
    atomic_write_text(out / "findings.txt", "\n".join(lines) + "\n")
    written.append(out / "findings.txt")
    print("\nwrote " + ", ".join(str(p) for p in written))
    return 0


def _write_csv(path: Path, summary) -> None:
    from core.storage import atomic_write

    def write(tmp: Path) -> None:
        with open(tmp, "w", newline="", encoding="utf-8") as f:
            w = csv.writer(f)
            w.writerow(["config", "seeds", "final_mean", "final_sd", "start_mean",
                        "steps_to_threshold", "reached", "finals"])
            for s in summary:
                w.writerow([s.label, s.n, _num(s.final_mean), _num(s.final_sd),
                            _num(s.start_mean), _num(s.steps_to_threshold), s.reached,
                            " ".join(f"{v:.6g}" for v in s.finals)])

    atomic_write(path, write)


def _num(v: float) -> str:
    return "" if not math.isfinite(v) else f"{v:.6g}"


def svg_to_png(text: str, path: Path) -> bool:
    """Render the SVG with Qt (offscreen); False, with a note, where Qt cannot start."""
    import os

    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    try:
        from PySide6.QtCore import QByteArray
        from PySide6.QtGui import QImage, QPainter
        from PySide6.QtSvg import QSvgRenderer
        from PySide6.QtWidgets import QApplication
    except ImportError as exc:
        print(f"no PNG: Qt is not available ({exc}); the SVG is written", file=sys.stderr)
        return False
    # fonts need an application; a QApplication (not a bare QGuiApplication), so that a window
    # made later in the same process (the tests, a script) can still have widgets
    app = QApplication.instance() or QApplication([])  # noqa: F841
    renderer = QSvgRenderer(QByteArray(text.encode()))
    size = renderer.defaultSize()
    image = QImage(size.width() * 2, size.height() * 2, QImage.Format_ARGB32)
    image.fill(0xFFFFFFFF)
    painter = QPainter(image)
    renderer.render(painter)
    painter.end()
    from core.storage import atomic_write

    atomic_write(path, lambda tmp: image.save(str(tmp)) or None)
    return True
