"""Is a headless run the same, bit for bit, in two checkouts? (issue 19: a restructuring changes
no behaviour.)

    git worktree add /tmp/before <commit>
    .venv/bin/python scripts/same_run.py /tmp/before .

Trains a few short runs through each checkout's own CLI (`train`, same seed, one thread): GRPO on
the true reward, PPO on a learned reward with feedback rounds, and online DPO with rounds. Then
reads every stored metric but the timings with that checkout's own run store and compares them
exactly (floats as their round-trip repr). Exits 1 on any difference.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

RUNS = {
    "grpo": ["--algo", "grpo"],
    "ppo, learned reward, rounds": [
        "--algo", "ppo", "--set", "reward_source=learned", "--set", "rm_rankings=20",
        "--set", "rm_steps=5", "--set", "feedback_every=3", "--set", "feedback_groups=2"],
    "online dpo": ["--algo", "dpo", "--set", "dpo_rankings=12", "--set", "feedback_every=3",
                   "--set", "feedback_groups=2"],
}
# the store's module before and after the restructuring
READ = ("import sys, json\n"
        "try:\n    from core.store.runs import RunStore\n"
        "except ImportError:\n    from core.runs import RunStore\n"
        "s = RunStore(sys.argv[1]); r = s.list_runs()[0]; c, rows = s.metrics_table(r.id)\n"
        "keep = [i for i, n in enumerate(c) if not (n == 'time_s' or n.startswith('perf/'))]\n"
        "print(json.dumps([[c[i] for i in keep]] + [[row[i] for i in keep] for row in rows]))")


def metrics(tree: str, args: list[str]) -> list:
    env = {**os.environ, "PYTHONPATH": os.path.abspath(tree)}
    with tempfile.TemporaryDirectory() as d:
        subprocess.run([sys.executable, "-m", "explorer.app", "train", "--steps", "6", "--seed",
                        "3", "--data-dir", d, "--set", "threads=1", *args],
                       cwd=tree, env=env, check=True, capture_output=True)
        out = subprocess.run([sys.executable, "-c", READ, d], cwd=tree, env=env, check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> int:
    before, after = sys.argv[1:3]
    same = True
    for name, args in RUNS.items():
        a, b = metrics(before, args), metrics(after, args)
        ok = a == b
        same &= ok
        print(f"{name}: {len(b) - 1} steps x {len(b[0])} metrics: "
              f"{'the same, bit for bit' if ok else 'DIFFERENT'}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
