"""Every CLI error is one line on stderr and exit 2, never a traceback; refused input leaves no
run behind; a read-only command never writes (docs/promises.md)."""

import json
import os
import sqlite3
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from core import storage
from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from explorer.app import main

ROOT = Path(__file__).resolve().parents[3]
pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")


def one_error_line(capsys, words=()) -> str:
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err and "error:" in lines[0]
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


@pytest.fixture
def files(tmp_path):
    (tmp_path / "a_file").write_text("x")
    (tmp_path / "folder").mkdir()
    (tmp_path / "list.json").write_text("[1, 2]")
    (tmp_path / "null.json").write_text("null")
    (tmp_path / "Upper.TOML").write_text("lr = 3e-5\nalgo = 'ppo'\n")
    (tmp_path / "c.yaml").write_text("lr: 1")
    (tmp_path / "latin1.json").write_bytes(b'{"task": "caf\xe9"}')
    (tmp_path / "deep.json").write_text("[" * 100_000)
    (tmp_path / "nested.toml").write_text("[train]\nlr = 1e-4\n")
    (tmp_path / "dbfolder" / "runs.db").mkdir(parents=True)
    damaged = tmp_path / "damaged"
    damaged.mkdir()
    (damaged / "runs.db").write_bytes(b"this is not a database" * 100)
    (damaged / "rankings.db").write_bytes(b"this is not a database" * 100)
    return tmp_path


CASES = [
    # (argv with {t} for the folder, words the one line must hold)
    (["runs", "--data-dir", "{t}/a_file"], ["is a file, not a folder"]),
    (["metrics", "x", "--data-dir", "{t}/a_file"], ["is a file, not a folder"]),
    (["train", "--steps", "1", "--data-dir", "{t}/a_file"], ["is a file, not a folder"]),
    (["rankings", "list", "--data-dir", "{t}/a_file"], ["is a file, not a folder"]),
    (["runs", "--data-dir", "{t}/damaged"], ["runs.db is damaged", "move it aside"]),
    (["train", "--steps", "1", "--data-dir", "{t}/damaged"], ["runs.db is damaged"]),
    (["rankings", "list", "--data-dir", "{t}/damaged"], ["rankings.db is damaged"]),
    (["train", "--config", "{t}/folder"], ["is a folder"]),
    (["train", "--config", "{t}/list.json"], ["not a list"]),
    (["train", "--config", "{t}/null.json"], ["not null"]),
    (["train", "--config", "{t}/c.yaml"], ["unknown format '.yaml'", ".toml or .json"]),
    (["train", "--config", "{t}/missing.json"], ["does not exist"]),
    (["train", "--config", "{t}/latin1.json"], ["not UTF-8"]),
    (["train", "--config", "{t}/deep.json"], ["deep"]),
    (["pretrain", "--task", "length", "--out", "{t}/folder"], ["is a folder"]),
    (["pretrain", "--task", "length"], ["already exists", "--force"]),
    (["pretrain", "--task", "length", "--steps", "0", "--out", "{t}/m.safetensors"], [">= 1"]),
    (["train", "--set", "lr=nan"], ["lr must be a finite number"]),
    (["train", "--set", "lr=-inf"], ["lr must be a finite number"]),
    (["train", "--set", "clip_eps=9"], ["clip_eps", "[0.0001, 1.0]"]),
    (["train", "--set", "lrr=1"], ["did you mean lr"]),
    (["train", "--set", "lr"], ["KEY=VALUE"]),
    (["train", "--steps", "0"], ["steps must be in [1, 100000]"]),
    (["train", "--steps", "1e3"], ["invalid int value"]),
    (["train", "--task", "poetry"], ["invalid choice"]),
    (["train", "--device", "cuda"], ["CUDA is not available"]),
    (["train", "--set", "checkpoint={t}/folder"], ["not a file"]),
    (["train", "--set", "reward_source=learned", "--set", "reward_model=nope"], ["nope"]),
    (["train", "--resume", "no-such-run"], ["no run 'no-such-run'"]),
    (["train", "--from-step", "3"], ["--from-step goes with --resume"]),
    (["metrics", "no-such-run"], ["no run", "rlhf-explorer runs"]),
    (["rankings", "import", "{t}/missing.jsonl", "--task", "sentiment"], ["missing.jsonl"]),
    (["rankings", "export", "{t}/folder", "--format", "pairwise"], ["is a folder"]),
    (["bogus"], ["invalid choice"]),
    # found by a newcomer's run-through
    (["train", "--resume", ""], ["no run ''"]),
    (["runs", "--data-dir", ""], ["empty name"]),
    (["train", "--config", ""], ["config file name is empty"]),
    (["train", "--yes"], ["--yes goes with --resume"]),
    (["train", "--set", "checkpoint={t}/a_file"], ["not a readable safetensors"]),
    (["train", "--config", "{t}/nested.toml"], ["top level, not in a table [train]"]),
    (["runs", "--data-dir", "{t}/a_file/sub"], ["cannot exist", "is a file"]),
    (["train", "--set", "LR=1e-4"], ["did you mean lr"]),
    (["runs", "--data-dir", "{t}/dbfolder"], ["is a folder, not a database file"]),
    # issue 16: ensembles and judges
    (["rm", "train", "--task", "sentiment", "--members", "0"], ["--members must be in [1, 16]"]),
    (["rm", "train", "--task", "sentiment", "--negatives", "nan"], ["--negatives", "finite"]),
    (["train", "--set", "reward_source=learned", "--set", "feedback_by=command"],
     ["feedback_command", "--set feedback_command="]),
    (["train", "--set", "feedback_unsure=1.5"], ["reward_source=learned"]),
]


@pytest.mark.parametrize("argv,words", CASES, ids=[" ".join(c[0][:3]) for c in CASES])
def test_bad_input_is_one_line_and_exit_2_and_leaves_no_run(files, capsys, monkeypatch, argv,
                                                             words):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    data = files / "data"
    argv = [a.format(t=files) for a in argv]
    if "--data-dir" not in argv and argv[0] != "pretrain" and argv != ["bogus"]:
        argv += ["--data-dir", str(data)]
    assert run(argv) == 2
    one_error_line(capsys, words)
    if data.exists():   # refused input leaves no run behind
        with RunStore(data, read_only=True) as store:
            assert store.list_runs() == []


def run(argv) -> int:
    """main()'s status; argparse's own errors exit through SystemExit."""
    try:
        return main(argv)
    except SystemExit as exc:
        return exc.code


def test_a_closed_pipe_is_one_line_not_a_traceback(tmp_path):
    assert main(["train", "--task", "arithmetic", "--steps", "2", "--quiet", "--data-dir",
                 str(tmp_path), "--set", "prompts_per_step=2", "--set", "group_size=2"]) == 0
    run_id = RunStore(tmp_path, read_only=True).list_runs()[0].id
    for argv in (["metrics", run_id, "--all"], ["runs"], ["metrics", run_id, "--csv"]):
        # `true` exits without reading: by the time Python writes, the pipe is closed
        proc = subprocess.run(f"{sys.executable} -m explorer.app {' '.join(argv)} --data-dir "
                              f"{tmp_path} | true; exit ${{PIPESTATUS[0]}}", shell=True, cwd=ROOT,
                              text=True, capture_output=True, executable="/bin/bash")
        assert "Traceback" not in proc.stderr and "Exception ignored" not in proc.stderr
        assert proc.stderr.count("\n") == 1 and "output was closed" in proc.stderr, proc.stderr
        assert proc.returncode == 2


def test_metrics_prints_the_main_columns_unless_asked(tmp_path, capsys):
    assert main(["train", "--task", "arithmetic", "--steps", "2", "--quiet", "--data-dir",
                 str(tmp_path), "--set", "prompts_per_step=2", "--set", "group_size=2"]) == 0
    run_id = capsys.readouterr().out.split()[1]
    assert main(["metrics", run_id, "--data-dir", str(tmp_path)]) == 0
    out, err = capsys.readouterr()
    assert max(len(line) for line in out.splitlines()) <= 160
    assert "more metrics" in err
    assert main(["metrics", run_id, "--columns", "kl/*", "--data-dir", str(tmp_path)]) == 0
    header = capsys.readouterr().out.splitlines()[0].split()
    assert header[0] == "step" and all(c.startswith("kl/") for c in header[1:])


def test_the_done_line_keeps_the_data_dir_flag(tmp_path, capsys):
    assert main(["train", "--task", "arithmetic", "--steps", "1", "--quiet", "--data-dir",
                 str(tmp_path), "--set", "prompts_per_step=2", "--set", "group_size=2"]) == 0
    out = capsys.readouterr().out
    assert f"rlhf-explorer metrics {out.split()[1]} --data-dir {tmp_path}" in out


def test_a_setting_the_objective_does_not_read_gets_a_note(tmp_path, capsys):
    assert main(["train", "--task", "arithmetic", "--algo", "grpo", "--steps", "1", "--quiet",
                 "--data-dir", str(tmp_path), "--set", "prompts_per_step=2", "--set",
                 "group_size=2", "--set", "dpo_blocks=2"]) == 0
    notes = [line for line in capsys.readouterr().err.splitlines() if line.startswith("note:")]
    assert notes == ["note: dpo_blocks is for dpo only; grpo ignores it"]


def test_list_settings_shows_what_the_chosen_objective_uses(capsys):
    assert main(["train", "--algo", "ppo", "--list-settings"]) == 0
    text = capsys.readouterr().out
    assert "# settings for algo=ppo, task=sentiment" in text
    assert "lr = 5e-05" in text and "ppo's default; generic default 0.0001" in text
    assert main(["train", "--algo", "ppo", "--task", "arithmetic", "--list-settings"]) == 0
    assert "prompts_per_step = 64" in capsys.readouterr().out


def test_a_locked_store_says_so(tmp_path, monkeypatch):
    RunStore(tmp_path).close()
    holder = sqlite3.connect(tmp_path / "runs.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    monkeypatch.setattr(storage, "LOCK_TIMEOUT_S", 0.2)
    try:
        with pytest.raises(ValueError, match="locked by another program"):
            RunStore(tmp_path).create_run({}, "arithmetic", "grpo", "true")
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_a_read_only_folder_can_be_read_and_is_never_written(tmp_path, capsys):
    """Root ignores file modes, so as root this checks that reading writes nothing (and the
    open path a read-only folder takes); as a user the folder is truly read-only too."""
    data = tmp_path / "data"
    assert main(["train", "--task", "arithmetic", "--steps", "2", "--quiet", "--data-dir",
                 str(data), "--set", "prompts_per_step=2", "--set", "group_size=2"]) == 0
    run_id = capsys.readouterr().out.split()[1]
    for path in [data, *data.rglob("*")]:
        os.chmod(path, 0o555 if path.is_dir() else 0o444)
    before = {p: p.stat().st_mtime_ns for p in data.rglob("*")}
    try:
        def cli(*argv):
            return subprocess.run([sys.executable, "-m", "explorer.app", *argv, "--data-dir",
                                   str(data)], cwd=ROOT, capture_output=True, text=True)

        for argv in (["runs"], ["metrics", run_id], ["rankings", "list"], ["rm", "list"]):
            proc = cli(*argv)
            assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
        assert run_id in cli("runs").stdout
        if os.geteuid() != 0:
            proc = cli("train", "--task", "arithmetic", "--steps", "1")
            assert proc.returncode == 2 and len(proc.stderr.splitlines()) == 1, proc.stderr
            assert "read-only" in proc.stderr
        # nothing was written, not even SQLite's -wal and -shm files
        assert {p: p.stat().st_mtime_ns for p in data.rglob("*")} == before
    finally:
        for path in [data, *data.rglob("*")]:
            os.chmod(path, stat.S_IRWXU)


def test_a_folder_that_cannot_be_written_is_opened_immutable(tmp_path, monkeypatch):
    with RunStore(tmp_path) as store:
        run_id = store.create_run({}, "arithmetic", "grpo", "true")
        store.finish_run(run_id, "finished")
    monkeypatch.setattr(storage, "writable", lambda folder: False)
    with RunStore(tmp_path, read_only=True) as store:
        assert [r.id for r in store.list_runs()] == [run_id]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["runs", "runs.db"]


def test_damaged_run_files_are_listed_as_damaged(tmp_path, capsys):
    for _ in range(2):
        assert main(["train", "--task", "arithmetic", "--steps", "2", "--quiet", "--data-dir",
                     str(tmp_path), "--set", "prompts_per_step=2", "--set", "group_size=2"]) == 0
    capsys.readouterr()
    with RunStore(tmp_path) as store:
        broken, whole = [r.id for r in store.list_runs()]
        store.checkpoints(broken)[-1][1].write_bytes(b"\x00" * 5)
    assert main(["runs", "--json", "--data-dir", str(tmp_path)]) == 0
    rows = {r["id"]: r for r in json.loads(capsys.readouterr().out)}
    assert rows[broken]["damaged"] == "the checkpoint of step 2 is empty or cut short"
    assert rows[whole]["damaged"] is None
    assert main(["runs", "--data-dir", str(tmp_path)]) == 0
    assert "damaged: the checkpoint of step 2" in capsys.readouterr().out


def test_pretrain_shows_progress_warns_nothing_and_asks_before_overwriting(tmp_path):
    out = tmp_path / "m.safetensors"

    def pretrain(*extra):
        return subprocess.run([sys.executable, "-m", "explorer.app", "pretrain", "--task",
                               "length", "--steps", "2", "--out", str(out), *extra], cwd=ROOT,
                              capture_output=True, text=True)

    proc = pretrain()
    assert proc.returncode == 0, proc.stderr
    assert "step 2/2" in proc.stderr and "ETA" in proc.stderr
    assert "Warning" not in proc.stderr and "warn" not in proc.stderr.lower()
    assert out.stat().st_mode & 0o044 == 0o044          # readable by others, like any model
    proc = pretrain()
    assert proc.returncode == 2 and "already exists; pass --force" in proc.stderr
    assert pretrain("--force").returncode == 0


def test_the_eta_counts_from_the_first_step_not_from_set_up():
    import io
    import time

    from explorer.cli.output import ProgressLine

    stream = io.StringIO()
    bar = ProgressLine(10, stream=stream)
    bar.t0 -= 100.0            # as if a reward model had trained for 100 s
    bar.start()                # the trainer exists: steps begin now
    time.sleep(0.01)
    bar.update(4, {})
    rate = float(stream.getvalue().split(" steps/s")[0].split()[-1])
    assert rate > 1.0           # 5 steps in ~0.01 s, not 5 in 100 s


def test_export_writes_through_a_symlink_and_into_a_fifo(tmp_path, capsys):
    from core.reward_learning.rankings import RankingStore

    with RankingStore(tmp_path) as store:
        store.add("sentiment", "p", ["good", "bad"], [1, 2])
    target = tmp_path / "real.jsonl"
    target.write_text("old")
    link = tmp_path / "link.jsonl"
    link.symlink_to(target)
    assert main(["rankings", "export", str(link), "--format", "pairwise", "--data-dir",
                 str(tmp_path)]) == 0
    assert link.is_symlink() and '"chosen": "good"' in target.read_text()
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    reader = subprocess.Popen(["cat", str(fifo)], stdout=subprocess.PIPE, text=True)
    assert main(["rankings", "export", str(fifo), "--format", "listwise", "--data-dir",
                 str(tmp_path)]) == 0
    assert '"ranks": [1, 2]' in reader.communicate(timeout=30)[0]
    assert stat.S_ISFIFO(fifo.stat().st_mode)   # still a FIFO, not replaced by a file


def test_a_refused_reward_model_leaves_no_run(tmp_path, capsys):
    import json as _json

    folder = tmp_path / "reward_models"
    folder.mkdir()
    (folder / "other.json").write_text(_json.dumps({"name": "other", "task": "length"}))
    (folder / "other.safetensors").write_bytes(b"\x00" * 16)
    code = main(["train", "--task", "arithmetic", "--set", "reward_source=learned", "--set",
                 "reward_model=other", "--data-dir", str(tmp_path)])
    assert code == 2 and "other" in one_error_line(capsys)
    with RunStore(tmp_path, read_only=True) as store:
        assert store.list_runs() == []
