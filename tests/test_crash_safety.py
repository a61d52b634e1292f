"""SIGKILL at random moments: the stores stay whole, nothing acknowledged is lost, and a run whose
process died shows as interrupted (docs/promises.md).

A "zygote" process imports the CLI and torch once and forks one child per kill, which runs the
real `rlhf-explorer train` (`explorer.app.main`); the test kills the child with SIGKILL after a
random delay. That makes 24 kills cost seconds instead of 24 interpreter starts. Each child
writes `ack N` to a file after the store returned from logging step N (the moment the CLI would
report it), so the test knows which steps were acknowledged before the kill.
"""

import json
import os
import random
import signal
import sqlite3
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore

ROOT = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")

ZYGOTE = """
    import os, sys
    # torch, imported before forking
    import explorer.app, core.store.runs, core.store.session, core.rl.trainer
    # Warm up once what every child would pay for again (the lazy imports of the first Adam(),
    # 1.5 s; torch's first kernels): one step, on one thread, so no thread pool exists to fork.
    import torch
    torch.set_num_threads(1)
    from core.config import RunConfig
    core.rl.trainer.Trainer(RunConfig.for_algo("ppo", task="arithmetic", steps=1, threads=1,
                                            prompts_per_step=2, group_size=2)).step()

    real_log_step = core.store.runs.RunStore.log_step

    def child(data_dir, steps):
        os.makedirs(data_dir, exist_ok=True)
        os.dup2(os.open(os.devnull, os.O_WRONLY), 1)   # the zygote's stdout is the test's pipe
        acks = os.open(os.path.join(data_dir, "acks.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)

        def log_step(self, run_id, step, *a, **k):
            real_log_step(self, run_id, step, *a, **k)
            os.write(acks, f"ack {run_id} {step}\\n".encode())

        core.store.runs.RunStore.log_step = log_step
        code = explorer.app.main(["train", "--task", "arithmetic", "--algo", "ppo", "--steps",
                                  steps, "--quiet", "--data-dir", data_dir, "--set",
                                  "prompts_per_step=2", "--set", "group_size=2", "--set",
                                  "threads=1", "--set", "checkpoint_every=2"])
        os._exit(code)

    print("ready", flush=True)
    for line in sys.stdin:
        cmd, *rest = line.split()
        if cmd == "go":
            pid = os.fork()
            if pid == 0:
                try:
                    child(*rest)
                finally:
                    os._exit(99)
            print("pid", pid, flush=True)
        elif cmd == "wait":
            _, status = os.waitpid(int(rest[0]), 0)
            print("status", status, flush=True)
"""


class Zygote:
    def __init__(self):
        self.proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(ZYGOTE)], cwd=ROOT,
                                     stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        assert self.proc.stdout.readline().strip() == "ready"

    def ask(self, line: str) -> str:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()
        return self.proc.stdout.readline().split()[1]

    def close(self):
        self.proc.stdin.close()
        self.proc.wait(30)


def acknowledged(data_dir: Path) -> dict[str, int]:
    """run id -> the last step the child was told was stored."""
    acks = data_dir / "acks.txt"
    out: dict[str, int] = {}
    for line in acks.read_text().splitlines() if acks.exists() else []:
        _, run_id, step = line.split()
        out[run_id] = max(out.get(run_id, -1), int(step))
    return out


def check_store_after_kill(data_dir: Path) -> tuple[str | None, int]:
    """Everything the issue promises of a store whose writer was SIGKILLed."""
    acked = acknowledged(data_dir)
    if not (data_dir / "runs.db").exists():
        assert not acked
        return None, 0
    # the CLI's read-only view already calls the dead run interrupted, before anything writes
    with RunStore(data_dir, read_only=True) as reader:
        seen = {r.id: r.status for r in reader.list_runs()}
    with RunStore(data_dir) as store:   # a writable open records it
        assert store._conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        runs = store.list_runs()
        assert len(runs) <= 1
        if not runs:
            assert not acked
            return None, 0
        run = runs[0]
        assert seen[run.id] in ("interrupted", "finished")
        assert run.status in ("interrupted", "finished"), run.status
        steps = [int(s) for s in store.metric_series(run.id, "step")[0]]
        assert steps == list(range(run.steps_done)), "a gap in the stored steps"
        assert run.steps_done >= acked.get(run.id, -1) + 1, "an acknowledged step was lost"
        columns, rows = store.metrics_table(run.id)
        assert all(len(r) == len(columns) for r in rows)
        for step, path in store.checkpoints(run.id):   # every recorded checkpoint is whole
            assert path.exists() and path.stat().st_size > 0, path
            assert step <= run.steps_done
        return run.id, run.steps_done


def test_sigkill_at_24_random_moments_loses_no_acknowledged_step(tmp_path):
    zygote = Zygote()
    rng = random.Random(1234)
    try:
        # one run left to finish measures how long a run takes on this machine
        t0 = time.perf_counter()
        pid = zygote.ask(f"go {tmp_path / 'whole'} 12")
        assert zygote.ask(f"wait {pid}") == "0"
        span = time.perf_counter() - t0
        kinds = {"set-up": 0, "steps": 0}
        for i in range(24):
            folder = tmp_path / f"kill{i}"
            folder.mkdir()
            pid = zygote.ask(f"go {folder} 12")
            time.sleep(rng.uniform(0.0, span))
            os.kill(int(pid), signal.SIGKILL)
            zygote.ask(f"wait {pid}")
            run_id, done = check_store_after_kill(folder)
            kinds["steps" if done else "set-up"] += 1
        # the moments covered both a run setting up and a run taking steps
        print(f"span {span:.2f} s, kills: {kinds}")
        assert kinds["set-up"] >= 1 and kinds["steps"] >= 3, kinds
    finally:
        zygote.close()


def test_an_interrupted_run_can_be_resumed_to_the_end(tmp_path):
    zygote = Zygote()
    try:
        pid = zygote.ask(f"go {tmp_path} 400")
        deadline = time.time() + 60
        while max(acknowledged(tmp_path).values(), default=-1) < 4 and time.time() < deadline:
            time.sleep(0.05)
        # alive, it is running to every other open, and no open may mark it interrupted
        with RunStore(tmp_path, read_only=True) as reader:
            assert [r.status for r in reader.list_runs()] == ["running"]
        with RunStore(tmp_path) as store:
            assert store.mark_interrupted() == []
            assert [r.status for r in store.list_runs()] == ["running"]
        os.kill(int(pid), signal.SIGKILL)
        zygote.ask(f"wait {pid}")
    finally:
        zygote.close()
    run_id, done = check_store_after_kill(tmp_path)
    assert done >= 5
    from explorer.app import main

    # state is saved with each checkpoint (every 2 steps): the steps after the last one go
    assert main(["train", "--resume", run_id, "--steps", "8", "--yes", "--quiet",
                 "--data-dir", str(tmp_path)]) == 0
    with RunStore(tmp_path) as store:
        info = store.get_run(run_id)
        assert (info.status, info.steps_done) == ("finished", 8)
        assert [int(s) for s in store.metric_series(run_id, "step")[0]] == list(range(8))


RANKING_BURST = """
    import os, sys
    from core.reward_learning.rankings import RankingStore
    store = RankingStore(sys.argv[1])
    acks = os.open(os.path.join(sys.argv[1], "acks.txt"), os.O_WRONLY | os.O_CREAT | os.O_APPEND)
    print("ready", flush=True)
    for i in range(100000):
        rid = store.add("sentiment", f"prompt {i}", ["a", "b", "c"], [1, 2, 2])
        os.write(acks, f"{rid}\\n".encode())   # the panel says "Saved #rid" here
"""


def test_sigkill_during_a_burst_of_rankings_keeps_every_acknowledged_one(tmp_path):
    from core.reward_learning.rankings import RankingStore

    rng = random.Random(7)
    for i in range(8):
        folder = tmp_path / f"burst{i}"
        folder.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", textwrap.dedent(RANKING_BURST),
                                 str(folder)], cwd=ROOT, stdout=subprocess.PIPE, text=True)
        assert proc.stdout.readline().strip() == "ready"
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.wait(30)
        acked = [int(x) for x in (folder / "acks.txt").read_text().split()] \
            if (folder / "acks.txt").exists() else []
        conn = sqlite3.connect(folder / "rankings.db")
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
        conn.close()
        with RankingStore(folder) as store:
            stored = {r.id for r in store.list()}
        assert set(acked) <= stored, "an acknowledged ranking was lost"
        assert len(stored) - len(acked) <= 1   # at most the one in flight
        assert json.dumps(sorted(stored)) == json.dumps(list(range(1, len(stored) + 1)))
