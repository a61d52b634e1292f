"""Headless sub-commands: pretrain, train, runs, metrics (and, from `explorer.cli_feedback`,
rankings and rm). No Qt is imported here.

Invalid settings exit with status 2 and one line naming the field and its allowed range, never a
traceback. `train` shows a progress line (steps/s, ETA, latest reward and KL) and stops cleanly
after the current step on Ctrl-C, with everything saved.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import math
import signal
import sys
import time

ALGOS = ("reinforce", "kl_penalty", "ppo", "grpo")


class UsageError(Exception):
    """Bad input from the user: printed as one line, exit status 2."""


def register(subparsers) -> None:
    data_dir = dict(metavar="DIR", default=argparse.SUPPRESS,
                    help="folder for runs (overrides RLHF_EXPLORER_DATA and the default)")

    p = subparsers.add_parser("train", help="train a policy headless and store the run",
                              description="Train headless; the run is stored like a GUI run.")
    p.add_argument("--task", default=None, help="sentiment, arithmetic or length")
    p.add_argument("--algo", default=None, choices=ALGOS, help="the objective")
    p.add_argument("--steps", type=int, default=None, help="number of RL steps")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--device", default=None, choices=("auto", "cpu", "cuda"))
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any RunConfig field, e.g. --set lr=1e-5 (see `train --list-settings`)")
    p.add_argument("--config", metavar="FILE", help="a TOML or JSON config to start from")
    p.add_argument("--list-settings", action="store_true",
                   help="print every setting with its default, range and help, then exit")
    p.add_argument("--data-dir", **data_dir)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("pretrain", help="pretrain a task's base model into assets/")
    p.add_argument("--task", required=True)
    p.add_argument("--steps", type=int, default=2000)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", metavar="PATH", help="default: assets/<task>.safetensors")
    p.set_defaults(func=cmd_pretrain)

    p = subparsers.add_parser("runs", help="list stored runs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("metrics", help="print a run's per-step metrics")
    p.add_argument("run_id")
    p.add_argument("--csv", action="store_true", help="CSV instead of an aligned table")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_metrics)

    from explorer.cli_feedback import register as register_feedback

    register_feedback(subparsers, data_dir)


def guarded(func):
    """Turn user errors (ValueError, UsageError) into `error: ...` and exit status 2."""
    def wrapper(args) -> int:
        try:
            return func(args)
        except (ValueError, UsageError) as exc:
            print(f"rlhf-explorer {args.command}: error: {exc}", file=sys.stderr)
            return 2
    return wrapper


def _store(args):
    from core.runs import RunStore, resolve_data_dir

    return RunStore(resolve_data_dir(getattr(args, "data_dir", None)))


def build_config(args):
    from core.config import RunConfig, coerce

    base = RunConfig.load(args.config).to_dict() if args.config else {}
    for key in ("task", "algo", "steps", "seed", "device"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        base[key.strip()] = coerce(key.strip(), value)
    return RunConfig.from_dict(base)


def list_settings() -> str:
    from core.config import FIELDS, field_info

    lines = []
    for name in FIELDS:
        info = field_info(name)
        limits = (f" one of {', '.join(info['choices'])}" if info["choices"] else
                  f" in [{info['min']}, {info['max']}]" if info["min"] is not None else "")
        used = "" if len(info["algos"]) == 4 else f" ({', '.join(info['algos'])} only)"
        live = " [live]" if info["live"] else ""
        lines.append(f"{name} = {info['default']!r}{limits}{used}{live}\n    {info['help']}")
    return "\n".join(lines)


class ProgressLine:
    """One status line on stderr: a bar when it is a terminal, a line every 5 s otherwise."""

    def __init__(self, total: int, stream=None):
        # looked up now, not at import: a redirected stderr (pytest, a wrapper) is the one used
        stream = stream or sys.stderr
        self.total, self.stream, self.t0 = total, stream, time.perf_counter()
        self.tty = stream.isatty()
        self._last_print = 0.0

    def phase(self, name: str, done: int, total: int) -> None:
        self._emit(f"{name}: {done}/{total}", force=done == total)

    def update(self, step: int, metrics: dict) -> None:
        done = step + 1
        elapsed = time.perf_counter() - self.t0
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else math.inf
        width = 24
        fill = int(width * done / self.total)
        bar = "█" * fill + "·" * (width - fill)
        eta_s = time.strftime("%M:%S", time.gmtime(eta)) if math.isfinite(eta) else "--:--"
        self._emit(f"step {done}/{self.total} {bar} {rate:.2f} steps/s ETA {eta_s}  "
                   f"reward {metrics.get('reward/mean', math.nan):+.3f}  "
                   f"true {metrics.get('reward/true_mean', math.nan):+.3f}  "
                   f"KL {metrics.get('kl/mean', math.nan):.3f}  "
                   f"β {metrics.get('kl/beta', math.nan):.3g}", force=done == self.total)

    def _emit(self, text: str, force: bool = False) -> None:
        now = time.perf_counter()
        if self.tty:
            self.stream.write("\r\033[K" + text)
            if force:
                self.stream.write("\n")
        elif force or now - self._last_print >= 5.0:
            self.stream.write(text + "\n")
            self._last_print = now
        self.stream.flush()

    def close(self) -> None:
        if self.tty:
            self.stream.write("\n")


@guarded
def cmd_train(args) -> int:
    if args.list_settings:
        print(list_settings())
        return 0
    cfg = build_config(args)
    from core.session import train_and_record

    store = _store(args)
    bar = None if args.quiet else ProgressLine(cfg.steps)
    holder = {}

    def on_sigint(signum, frame):
        trainer = holder.get("trainer")
        if trainer is None or trainer.stop_requested:
            raise KeyboardInterrupt
        trainer.request_stop()
        print("\nstopping after the current step (Ctrl-C again to abort)", file=sys.stderr)

    previous = signal.signal(signal.SIGINT, on_sigint)
    try:
        run_id, status = train_and_record(
            cfg, store, progress=bar.phase if bar else None,
            on_step=(lambda r: bar.update(r.step, r.metrics)) if bar else None,
            on_trainer=lambda t: holder.update(trainer=t))
    except KeyboardInterrupt:
        print("\naborted; finished steps are saved", file=sys.stderr)
        return 130
    finally:
        signal.signal(signal.SIGINT, previous)
    info = store.get_run(run_id)
    print(f"run {run_id} {status} after {info.steps_done} steps")
    print(f"stored in {store.data_dir} (see `rlhf-explorer metrics {run_id}`)")
    return 0


@guarded
def cmd_pretrain(args) -> int:
    from pathlib import Path

    from core.checkpoints import save_checkpoint
    from core.pretrain import PretrainConfig, pretrain
    from core.tasks import get_task
    from core.trainer import default_checkpoint

    get_task(args.task)
    if args.steps < 1:
        raise UsageError("--steps must be >= 1")
    out = Path(args.out) if args.out else default_checkpoint(args.task)
    bar = ProgressLine(args.steps)

    def progress(step, total, loss):
        bar._emit(f"pretraining {args.task}: step {step}/{total}  loss {loss:.3f}",
                  force=step == total)

    model, meta = pretrain(PretrainConfig(task=args.task, steps=args.steps, seed=args.seed),
                           progress=progress)
    out.parent.mkdir(parents=True, exist_ok=True)
    save_checkpoint(out, model, meta)
    print(f"saved {out}  (validation loss {meta['val_loss']:.3f}, {meta['seconds']:.0f} s)")
    return 0


@guarded
def cmd_runs(args) -> int:
    runs = _store(args).list_runs()
    rows = [{"id": r.id, "task": r.task, "algo": r.algo, "reward_source": r.reward_source,
             "steps": r.steps_done, "status": r.status, "created": r.created_at} for r in runs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet; start one with `rlhf-explorer train --task sentiment --algo grpo`")
        return 0
    print_table(rows, ["id", "task", "algo", "reward_source", "steps", "status"])
    return 0


def print_table(rows: list[dict], cols: list[str]) -> None:
    """Left-aligned columns, a header line first (`runs`, `rankings list`)."""
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in cols}
    print("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        print("  ".join(str(r[c]).ljust(widths[c]) for c in cols))


@guarded
def cmd_metrics(args) -> int:
    store = _store(args)
    try:
        columns, rows = store.metrics_table(args.run_id)
    except KeyError as exc:
        raise UsageError(f"no run {args.run_id!r}; list them with `rlhf-explorer runs`") from exc
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([[_fmt(v, c) for v, c in zip(r, columns, strict=True)] for r in rows])
        return 0
    cells = [columns] + [[_fmt(v, c) for v, c in zip(r, columns, strict=True)] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(columns))]
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    return 0


def _fmt(value: float, column: str) -> str:
    if column == "step":
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


def configure_logging(verbose: bool = False) -> None:
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
