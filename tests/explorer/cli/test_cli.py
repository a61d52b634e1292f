"""The headless commands end to end: train -> runs -> metrics, errors, Ctrl-C."""

import csv
import io
import json
import os
import signal
import subprocess
import sys
import time

import pytest

from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from explorer.app import main

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")
TINY = ["--set", "prompts_per_step=2", "--set", "group_size=2", "--set", "threads=1"]


def test_train_then_list_then_metrics(tmp_path, capsys):
    rc = main(["train", "--task", "arithmetic", "--algo", "grpo", "--steps", "3", "--seed", "1",
               "--data-dir", str(tmp_path), "--quiet", *TINY])
    out = capsys.readouterr().out
    assert rc == 0 and "finished after 3 steps" in out
    run_id = out.split()[1]

    assert main(["runs", "--json", "--data-dir", str(tmp_path)]) == 0
    runs = json.loads(capsys.readouterr().out)
    assert runs[0]["id"] == run_id and runs[0]["status"] == "finished" and runs[0]["steps"] == 3

    assert main(["metrics", run_id, "--csv", "--data-dir", str(tmp_path)]) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [r["step"] for r in rows] == ["0", "1", "2"]
    assert {"reward/mean", "kl/mean", "policy/clip_frac"} <= set(rows[0])

    assert main(["metrics", run_id, "--data-dir", str(tmp_path)]) == 0
    assert "reward/mean" in capsys.readouterr().out.splitlines()[0]
    with RunStore(tmp_path) as store:
        assert store.checkpoints(run_id)[-1][0] == 3


@pytest.mark.parametrize("argv,words", [
    (["train", "--set", "clip_eps=9"], ["clip_eps", "[0.0001, 1.0]"]),
    (["train", "--set", "lr"], ["KEY=VALUE"]),
    (["train", "--task", "poetry"], ["task", "sentiment"]),
    (["metrics", "no-such-run"], ["no run", "rlhf-explorer runs"]),
])
def test_bad_input_exits_2_with_one_clear_line(tmp_path, argv, words):
    proc = subprocess.run([sys.executable, "-m", "explorer.app", *argv, "--data-dir",
                           str(tmp_path)], capture_output=True, text=True)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in proc.stderr


def test_list_settings_documents_every_knob(capsys):
    assert main(["train", "--list-settings"]) == 0
    text = capsys.readouterr().out
    assert "clip_eps = 0.2 in [0.0001, 1.0] (ppo, grpo only) [live]" in text


@pytest.mark.parametrize("signum,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_ctrl_c_or_sigterm_stops_after_the_current_step_with_everything_saved(tmp_path, signum,
                                                                              status):
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "explorer.app", "train", "--task", "arithmetic", "--algo",
         "reinforce", "--steps", "100000", "--data-dir", str(tmp_path), "--quiet", *TINY],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.time() + 120
        steps = 0
        while time.time() < deadline and steps < 2:
            time.sleep(0.3)
            if (tmp_path / "runs.db").exists():
                with RunStore(tmp_path) as store:
                    runs = store.list_runs()
                    steps = runs[0].steps_done if runs else 0
        assert steps >= 2, "training never started"
        proc.send_signal(signum)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, err   # 128 + the signal: stopped, not finished
    assert "stopping after the current step" in err and "stopped after" in out
    with RunStore(tmp_path) as store:
        run = store.list_runs()[0]
        assert run.status == "stopped" and run.steps_done >= 2
        assert store.checkpoints(run.id)[-1][0] == run.steps_done
        steps, _ = store.metric_series(run.id, "reward/mean")
        assert len(steps) == run.steps_done
