"""Headless sub-commands: pretrain, train, runs, metrics (and, from `explorer.cli.rankings`,
rankings and rm). No Qt is imported here.

Every error is one line on stderr and exit 2, never a traceback (explorer/cli/errors.py). `train`
shows a progress line (steps/s, ETA, latest reward and KL) and stops cleanly after the current
step on Ctrl-C or SIGTERM, with everything saved; `train --resume ID` carries the run on.
Read-only commands (`runs`, `metrics`) open the store read-only: they never write.
"""

from __future__ import annotations

import argparse
import csv
import fnmatch
import json
import logging
import math
import signal
import sys
import time

from core.config import ALGOS, FIELDS
from explorer.cli.errors import UsageError
from explorer.cli.output import ProgressLine, data_dir_flag, open_store, print_table

# the README's table of columns a person reads first; `--all` or `--columns` for the rest
METRIC_COLUMNS = ("reward/mean", "reward/true_mean", "kl/mean", "kl/beta", "loss/total",
                  "policy/entropy", "policy/clip_frac", "completions/mean_length")


def register(subparsers) -> None:
    data_dir = dict(metavar="DIR", default=argparse.SUPPRESS,
                    help="folder for runs (overrides RLHF_EXPLORER_DATA and the default)")

    p = subparsers.add_parser(
        "train", help="train a policy headless and store the run",
        description="Train headless; the run is stored like a GUI run.",
        epilog="exit status: 0 finished; 130 / 143 stopped by Ctrl-C / SIGTERM (after saving; "
               "carry it on with --resume); 3 diverged (a NaN or inf); 2 bad input; 1 a bug")
    # choices and help come from RunConfig's field metadata, so they are written once
    for name in ("task", "algo", "steps", "seed", "device"):
        info = FIELDS[name].metadata
        p.add_argument(f"--{name}", default=None, choices=info["choices"],
                       type=None if info["choices"] else type(FIELDS[name].default),
                       help=f"{info['help']} (default {FIELDS[name].default!r})")
    p.add_argument("--resume", metavar="RUN_ID",
                   help="carry on a stopped or interrupted run under the same id, up to --steps "
                   "total (its last saved state; later steps are replaced)")
    p.add_argument("--from-step", type=int, metavar="N",
                   help="with --resume: restart from the checkpoint at step N, deleting the "
                   "steps after it (asks first; --yes to skip the question)")
    p.add_argument("--yes", action="store_true",
                   help="with --resume: yes, delete the steps after the state it resumes from")
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="any RunConfig field, e.g. --set lr=1e-5 (see `train --list-settings`)")
    p.add_argument("--config", metavar="FILE", help="a TOML or JSON config to start from")
    p.add_argument("--list-settings", action="store_true",
                   help="print every setting with its default, range and help, then exit")
    p.add_argument("--data-dir", **data_dir)
    p.add_argument("--quiet", action="store_true", help="no progress line")
    p.set_defaults(func=cmd_train)

    p = subparsers.add_parser("pretrain", help="pretrain a task's base model into assets/")
    p.add_argument("--task", required=True, choices=FIELDS["task"].metadata["choices"],
                   help="whose corpus to learn")
    p.add_argument("--steps", type=int, default=2000,
                   help="optimiser steps (2000, the shipped models: ~4 min on 2 cores)")
    p.add_argument("--seed", type=int, default=0, help="seed for the corpus and the weights")
    p.add_argument("--out", metavar="PATH", help="default: assets/<task>.safetensors")
    p.add_argument("--force", action="store_true", help="overwrite an existing --out file")
    p.set_defaults(func=cmd_pretrain)

    p = subparsers.add_parser("runs", help="list stored runs")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_runs)

    p = subparsers.add_parser("metrics", help="print a run's per-step metrics")
    p.add_argument("run_id")
    p.add_argument("--csv", action="store_true", help="CSV of every metric")
    p.add_argument("--all", action="store_true", help="every metric, not the main few")
    p.add_argument("--columns", metavar="NAMES",
                   help="comma-separated metric names or patterns, e.g. 'kl/*,reward/mean'")
    p.add_argument("--data-dir", **data_dir)
    p.set_defaults(func=cmd_metrics)

    from explorer.cli.rankings import register as register_feedback

    register_feedback(subparsers, data_dir)

    from explorer.cli.sweep import register as register_sweep

    register_sweep(subparsers, data_dir)




def build_config(args):
    from core.config import RunConfig, coerce

    base = RunConfig.load(args.config).to_dict() if args.config is not None else {}
    for key in ("task", "algo", "steps", "seed", "device"):
        if getattr(args, key) is not None:
            base[key] = getattr(args, key)
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            raise UsageError(f"--set expects KEY=VALUE, got {item!r}")
        base[key.strip()] = coerce(key.strip(), value)
    return RunConfig.from_dict(base)


def unused_settings(args, cfg) -> list[str]:
    """A note for each `--set` the run's objective does not read (`dpo_blocks` on a GRPO run):
    it is kept, as a config file's would be, but a person who typed it expects it to act."""
    notes = []
    for item in args.set:
        key = item.partition("=")[0].strip()
        algos = FIELDS[key].metadata["algos"]
        if cfg.algo not in algos:
            notes.append(f"note: {key} is for {', '.join(algos)} only; {cfg.algo} ignores it")
    return notes


def list_settings(cfg=None) -> str:
    """Every setting with the value `cfg` (the objective's and task's defaults plus what was
    given) would use, its range and help; where that is not the generic default, says why."""
    from core.config import RunConfig, field_info

    cfg = cfg or RunConfig()
    lines = [f"# settings for algo={cfg.algo}, task={cfg.task}"]
    used = [n for n in FIELDS if cfg.algo in FIELDS[n].metadata["algos"]]
    unused = [n for n in FIELDS if n not in used]
    for name in used + unused:
        if name == (unused or [None])[0]:
            lines.append(f"# not used by {cfg.algo}")
        info = field_info(name)
        value = getattr(cfg, name)
        limits = (f" one of {', '.join(info['choices'])}" if info["choices"] else
                  f" in [{info['min']}, {info['max']}]" if info["min"] is not None else "")
        used = "" if len(info["algos"]) == len(ALGOS) else f" ({', '.join(info['algos'])} only)"
        live = " [live]" if info["live"] else ""
        why = ""
        if value != info["default"]:
            by_source = info["per_source"].get(cfg.reward_source)
            if isinstance(by_source, dict):
                by_source = by_source.get(cfg.algo)
            origin = ("this task's default" if cfg.task in info["per_task"] and
                      info["per_task"][cfg.task] == value else
                      f"the {cfg.reward_source} reward's default" if by_source == value else
                      f"{cfg.algo}'s default" if info["per_algo"].get(cfg.algo) == value
                      else "as given")
            why = f"  ({origin}; generic default {info['default']!r})"
        lines.append(f"{name} = {value!r}{limits}{used}{live}{why}\n    {info['help']}")
    return "\n".join(lines)


# Ctrl-C and SIGTERM both stop after the current step, save, and exit 128 + the signal.
STOP_SIGNALS = {signal.SIGINT: "Ctrl-C", signal.SIGTERM: "SIGTERM"}


def cmd_train(args) -> int:
    from core.rl.run_control import RunControl
    from core.store.session import train_and_record

    if args.list_settings:
        print(list_settings(build_config(args)))
        return 0
    plan = None
    if args.resume is not None:
        store = open_store(args)
        plan = _plan_resume(args, store)
        cfg = plan.cfg
    else:
        if args.from_step is not None or args.yes:
            raise UsageError(f"{'--from-step' if args.from_step is not None else '--yes'} goes "
                             "with --resume RUN_ID")
        cfg = build_config(args)   # bad settings are refused before any folder is made
        for note in unused_settings(args, cfg):
            print(note, file=sys.stderr)
        store = open_store(args)
    control = RunControl(cfg)
    bar = None if args.quiet else ProgressLine(cfg.steps, first=plan.step if plan else 0)

    def on_signal(signum, frame):
        if control.stop_requested:
            raise KeyboardInterrupt   # a second one: abort now
        control.request_stop(STOP_SIGNALS.get(signum, str(signum)))
        caught.append(signum)
        print(f"\nstopping after the current step ({STOP_SIGNALS.get(signum)} again to abort)",
              file=sys.stderr)

    caught: list[int] = []
    previous = {s: signal.signal(s, on_signal) for s in STOP_SIGNALS}
    try:
        run_id, status = train_and_record(
            cfg, store, progress=bar.phase if bar else None,
            on_step=(lambda r: bar.update(r.step, r.metrics)) if bar else None,
            on_trainer=(lambda t: bar.start()) if bar else None, control=control, resume=plan)
    except KeyboardInterrupt:
        print("\naborted; finished steps are saved", file=sys.stderr)
        return 130
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
    info = store.get_run(run_id)
    where = data_dir_flag(args)
    if status == "diverged":
        print(f"run {run_id} {store.run_error(run_id)}; steps before it are saved, and the "
              f"last good checkpoint (see `rlhf-explorer metrics {run_id}{where}`)")
        return 3
    print(f"run {run_id} {status} after {info.steps_done} steps")
    print(f"stored in {store.data_dir} (see `rlhf-explorer metrics {run_id}{where}`; carry it "
          f"on with `rlhf-explorer train --resume {run_id}{where} --steps N`)")
    if status == "stopped":
        return 128 + int(caught[0] if caught else signal.SIGINT)
    return 0


def _plan_resume(args, store):
    from core.store.train_state import plan_resume

    given = [f"--{k}" for k in ("task", "algo", "seed", "device") if getattr(args, k) is not None]
    given += ["--set"] * bool(args.set) + ["--config"] * (args.config is not None)
    if given:
        raise UsageError(f"--resume carries on with the run's own settings; drop "
                         f"{', '.join(given)} (a changed run is a fork: the window's Fork action)")
    plan = plan_resume(store, args.resume, args.steps, args.from_step)
    if plan.dropped and not args.yes:
        question = (f"run {plan.run_id} has {plan.step + plan.dropped} steps; resuming from "
                    f"step {plan.step} deletes the {plan.dropped} after it. Go on? [y/N] ")
        if not sys.stdin.isatty():
            raise UsageError(f"resuming {plan.run_id} from step {plan.step} deletes its "
                             f"{plan.dropped} later steps; pass --yes to do that")
        if input(question).strip().lower() not in ("y", "yes"):
            raise UsageError("not resumed; nothing was changed")
    return plan


def cmd_pretrain(args) -> int:
    from pathlib import Path

    from core.rl.trainer import default_checkpoint

    if args.steps < 1:
        raise UsageError("--steps must be >= 1")
    out = Path(args.out).expanduser() if args.out else default_checkpoint(args.task)
    # Every check on --out before the training, which takes minutes.
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; give a file name, e.g. {out / args.task}"
                         ".safetensors")
    if out.exists() and not args.force:
        shipped = " (the model shipped with rlhf-explorer)" if out == default_checkpoint(
            args.task) else ""
        raise UsageError(f"{out} already exists{shipped}; pass --force to overwrite it, or "
                         "--out another file")
    from core.storage import check_folder, writable

    check_folder(out.parent, what="folder for --out")
    if not writable(out.parent):
        raise UsageError(f"cannot write {out}: its folder is read-only; pick another --out")
    from core.lm.checkpoints import save_checkpoint
    from core.lm.pretrain import PretrainConfig, pretrain

    bar = ProgressLine(args.steps)

    def progress(step, total, loss):
        width = 24
        fill = int(width * step / total)
        elapsed = time.perf_counter() - bar.t0
        eta = elapsed / step * (total - step)
        bar._emit(f"pretraining {args.task}: step {step}/{total} {'█' * fill}"
                  f"{'·' * (width - fill)} ETA {time.strftime('%M:%S', time.gmtime(eta))}  "
                  f"loss {loss:.3f}", force=step == total)

    model, meta = pretrain(PretrainConfig(task=args.task, steps=args.steps, seed=args.seed),
                           progress=progress)
    save_checkpoint(out, model, meta)
    print(f"saved {out}  (validation loss {meta['val_loss']:.3f}, {meta['seconds']:.0f} s)")
    return 0


def cmd_runs(args) -> int:
    with open_store(args, read_only=True) as store:
        runs = store.list_runs()
        tags = store.run_tags()
        # a damaged run is listed, and says what is wrong; it never stops the list
        rows = [{"id": r.id, "task": r.task, "algo": r.algo, "reward_source": r.reward_source,
                 "steps": r.steps_done, "status": r.status, "created": r.created_at,
                 "damaged": store.damage(r.id),
                 "error": _last_line(store.run_error(r.id)) if r.status == "failed" else None,
                 "sweep": dict(zip(("id", "label", "seed"), tags[r.id], strict=True))
                 if r.id in tags else None}
                for r in runs]
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no runs yet; start one with `rlhf-explorer train --task sentiment --algo grpo`")
        return 0
    for row in rows:   # why a run failed, or what is wrong with its files
        row["note"] = (f"damaged: {row['damaged']}" if row["damaged"] else
                       f"{row['error']}" if row["error"] else "")
        tag = row["sweep"]
        row["trial of"] = f"{tag['id'][16:]}: {tag['label']} · seed {tag['seed']}" if tag else ""
    print_table(rows, ["id", "task", "algo", "reward_source", "steps", "status"]
                + (["trial of"] if any(r["trial of"] for r in rows) else [])
                + (["note"] if any(r["note"] for r in rows) else []))
    return 0


def cmd_metrics(args) -> int:
    with open_store(args, read_only=True) as store:
        columns, rows = store.metrics_table(args.run_id)
    if args.csv:
        writer = csv.writer(sys.stdout)
        writer.writerow(columns)
        writer.writerows([[_fmt(v, c) for v, c in zip(r, columns, strict=True)] for r in rows])
        return 0
    keep = _pick_columns(columns, args)
    cells = [[columns[i] for i in keep]] + [[_fmt(r[i], columns[i]) for i in keep] for r in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(keep))]
    for row in cells:
        print("  ".join(v.rjust(w) for v, w in zip(row, widths, strict=True)))
    if len(keep) < len(columns):
        print(f"({len(columns) - len(keep)} more metrics: --all, --columns 'kl/*,...' or --csv)",
              file=sys.stderr)
    return 0


def _last_line(text: str | None) -> str | None:
    """A traceback's last line (the error itself), for a list."""
    lines = [line for line in (text or "").splitlines() if line.strip()]
    return lines[-1].strip()[:120] if lines else None


def _pick_columns(columns: list[str], args) -> list[int]:
    """Indexes of the columns to print: step, then the main few, --columns' patterns or --all."""
    if args.all:
        return list(range(len(columns)))
    if args.columns is not None:
        patterns = [p.strip() for p in args.columns.split(",") if p.strip()]
        picked = [i for i, c in enumerate(columns)
                  if i == 0 or any(fnmatch.fnmatchcase(c, p) for p in patterns)]
        if len(picked) == 1:
            raise UsageError(f"--columns {args.columns!r} matches none of this run's metrics; "
                             "`--all` shows every one")
        return picked
    where = {c: i for i, c in enumerate(columns)}   # in the order a person reads them
    return [0] + [where[c] for c in METRIC_COLUMNS if c in where]


def _fmt(value: float, column: str) -> str:
    if column == "step":
        return str(int(value))
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    return f"{value:.6g}"


def configure_logging(verbose: bool = False) -> None:
    """`rlhf-explorer --verbose`: INFO logs from core on stderr (and tracebacks of bugs)."""
    logging.basicConfig(level=logging.INFO if verbose else logging.WARNING,
                        format="%(levelname)s %(name)s: %(message)s")
