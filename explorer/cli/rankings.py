"""Headless commands for human feedback: `rankings import|export|list` and `rm train|list`.

Like the rest of the CLI: no Qt, one line on stderr and exit 2 for bad input, and an import that
fails leaves the store as it was. `rankings list|export` and `rm list` only read: they open the
store read-only and create nothing.
"""

from __future__ import annotations

import json
import sys

from core.config import FIELDS
from core.reward_learning.rankings import SOURCES
from explorer.cli.errors import UsageError
from explorer.cli.output import ProgressLine, print_table

# choices come from where they are defined (RunConfig's metadata, the rankings store), once
LOSSES = FIELDS["rm_loss"].metadata["choices"]


def register(subparsers, data_dir: dict) -> None:
    tasks = FIELDS["task"].metadata["choices"]
    p = subparsers.add_parser("rankings", help="import, export or list stored rankings",
                              description="The rankings store: what people (and the simulated "
                              "annotator) ranked, and imported preference data.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = sub.add_parser("import", help="add a JSONL file of pairwise or listwise rankings",
                       description="Each line is pairwise {prompt, chosen, rejected[, margin]} "
                       "(TRL's format) or listwise {prompt, responses, ranks} (1 = best, ties "
                       "equal). A file with a bad line is refused whole.")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--task", required=True, choices=tasks, help="the task the prompts belong to")
    q.add_argument("--data-dir", **data_dir)
    q.set_defaults(func=cmd_rankings_import)
    q = sub.add_parser("export", help="write stored rankings as JSONL")
    q.add_argument("file", metavar="FILE")
    q.add_argument("--format", required=True, choices=("pairwise", "listwise"),
                   help="pairwise: every strictly ordered pair; listwise: whole rankings")
    q.add_argument("--task", choices=tasks, help="only this task's rankings")
    q.add_argument("--data-dir", **data_dir)
    q.set_defaults(func=cmd_rankings_export)
    q = sub.add_parser("list", help="count stored rankings by task and source")
    q.add_argument("--json", action="store_true", help="machine-readable output")
    q.add_argument("--data-dir", **data_dir)
    q.set_defaults(func=cmd_rankings_list)

    p = subparsers.add_parser("rm", help="train or list named reward models",
                              description="Reward models trained from stored rankings.")
    sub = p.add_subparsers(dest="action", metavar="ACTION", required=True)
    q = sub.add_parser("train", help="train a reward model from stored rankings",
                       description="Trains r_theta on the task's stored rankings, holding out "
                       "whole prompts, and prints held-out accuracy against the rankings and "
                       "against the task's true reward.")
    q.add_argument("--task", required=True, choices=tasks)
    q.add_argument("--loss", default=FIELDS["rm_loss"].default, choices=LOSSES,
                   help="bradley_terry: all pairs of each ranking; plackett_luce: whole rankings")
    q.add_argument("--name", help="save it under this name (use with --set reward_model=NAME)")
    q.add_argument("--sources", default=",".join(SOURCES),
                   help="comma-separated ranking sources to train on (default: all)")
    q.add_argument("--steps", type=int, default=150, help="updates of 16 rankings")
    q.add_argument("--members", type=int, default=FIELDS["rm_members"].default,
                   help=FIELDS["rm_members"].metadata["help"])
    q.add_argument("--negatives", type=float, default=FIELDS["rm_negatives"].default,
                   help=FIELDS["rm_negatives"].metadata["help"])
    q.add_argument("--seed", type=int, default=0)
    q.add_argument("--json", action="store_true", help="print one JSON object")
    q.add_argument("--data-dir", **data_dir)
    q.set_defaults(func=cmd_rm_train)
    q = sub.add_parser("list", help="list saved reward models")
    q.add_argument("--json", action="store_true")
    q.add_argument("--data-dir", **data_dir)
    q.set_defaults(func=cmd_rm_list)


def _data_dir(args, create: bool = True):
    from core.storage import resolve_data_dir

    return resolve_data_dir(getattr(args, "data_dir", None), create=create)


def cmd_rankings_import(args) -> int:
    from core.reward_learning.rankings import RankingStore
    from core.reward_learning.rankings_io import import_rankings

    with RankingStore(_data_dir(args)) as store:
        ids = import_rankings(store, args.file, args.task)
        total = sum(store.counts(args.task).values())
    print(f"imported {len(ids)} rankings of task {args.task} from {args.file} "
          f"({total} stored for {args.task})")
    return 0


def cmd_rankings_export(args) -> int:
    from core.reward_learning.rankings import RankingStore
    from core.reward_learning.rankings_io import export_rankings

    with RankingStore(_data_dir(args, create=False), read_only=True) as store:
        n = export_rankings(store, args.file, args.format, args.task)
    print(f"wrote {n} {args.format} lines to {args.file}")
    return 0


def cmd_rankings_list(args) -> int:
    from core.reward_learning.rankings import RankingStore

    with RankingStore(_data_dir(args, create=False), read_only=True) as store:
        rows = store.summary()
    if args.json:
        print(json.dumps(rows, indent=2))
        return 0
    if not rows:
        print("no rankings yet; rank in the window's Rank tab, or `rlhf-explorer rankings "
              "import FILE --task TASK`")
        return 0
    print_table(rows, ["task", "source", "rankings", "not_rankable", "last"])
    return 0


def cmd_rm_train(args) -> int:
    from core.reward_learning.feedback import train_from_store

    sources = tuple(s.strip() for s in args.sources.split(",") if s.strip())
    bad = [s for s in sources if s not in SOURCES]
    if bad or not sources:
        raise UsageError(f"--sources takes a comma-separated subset of {', '.join(SOURCES)}; "
                         f"got {args.sources!r}")
    if not 1 <= args.steps <= 10_000:
        raise UsageError(f"--steps must be in [1, 10000], got {args.steps}")
    from core.config import check_value

    try:   # the knobs' own bounds, and their one-line refusals
        check_value("rm_members", args.members)
        check_value("rm_negatives", args.negatives)
    except ValueError as exc:
        raise UsageError(f"--{str(exc).removeprefix('rm_')}") from None
    bar = None if args.json else ProgressLine(args.steps)
    _, metrics, meta = train_from_store(
        _data_dir(args), args.task, args.loss, sources, args.name, args.steps, seed=args.seed,
        progress=bar.phase if bar else None, members=args.members, negatives=args.negatives)
    out = {"task": args.task, "loss": args.loss, "name": args.name, "members": meta["members"],
           "rankings": meta["rankings"], "heldout_accuracy": _num(metrics["rm/accuracy"]),
           "true_accuracy": _num(metrics["rm/true_accuracy"]),
           "heldout_loss": _num(metrics["rm/loss"])}
    if args.json:
        print(json.dumps(out))  # NaN (nothing to compare) is null: strict JSON has no NaN
        return 0
    true = (f"{out['true_accuracy']:.3f} against the true reward" if out["true_accuracy"]
            is not None else "no true-reward comparison (the held-out pairs tie on it)")
    kind = f"an ensemble of {meta['members']}" if meta["members"] > 1 else "reward model"
    print(f"{kind} on {meta['rankings']} rankings of {args.task} ({args.loss}): held-out "
          f"accuracy {_fmt(out['heldout_accuracy'])} against the rankings, {true}")
    if args.name:
        print(f"saved as {args.name!r}; use it with `rlhf-explorer train --task {args.task} --set "
              f"reward_source=learned --set reward_model={args.name}`")
    return 0


def _num(x: float) -> float | None:
    return None if x != x else float(x)


def _fmt(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.3f}"


def cmd_rm_list(args) -> int:
    from core.reward_learning.reward_model_store import list_reward_models

    models = list_reward_models(_data_dir(args, create=False))
    if args.json:
        clean = [{**m, "metrics": {k: _num(v) for k, v in m.get("metrics", {}).items()}}
                 for m in models]
        print(json.dumps(clean, indent=2))
        return 0
    if not models:
        print("no reward models yet; `rlhf-explorer rm train --task TASK --name NAME`")
        return 0
    for m in models:
        acc = m.get("metrics", {})
        print(f"{m['name']}  {m.get('task')}  {m.get('loss')}  {m.get('rankings')} rankings  "
              f"held-out {acc.get('rm/accuracy', float('nan')):.3f}  "
              f"true {acc.get('rm/true_accuracy', float('nan')):.3f}  {m.get('created_at', '')}",
              file=sys.stdout)
    return 0
