"""The window outside the happy path: an interrupted run, Resume, Fork, a run that diverges, input
refused before a run exists, and Ctrl-C in the terminal (docs/promises.md)."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from core.config import RunConfig
from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from core.store.session import train_and_record
from explorer.panels.runs import STATUS

pytestmark = pytest.mark.skipif(not default_checkpoint("arithmetic").exists(),
                                reason="assets/arithmetic.safetensors missing (run pretrain)")
ROOT = Path(__file__).resolve().parents[2]
FAST = dict(task="arithmetic", prompts_per_step=2, group_size=2, threads=1, checkpoint_every=2)




def status_cell(window, run_id) -> str:
    return window.runs_panel._item(run_id, STATUS).text()


def test_a_run_whose_process_died_shows_interrupted(qtbot, tmp_path):
    code = textwrap.dedent("""
        import os, sys
        from core.store.runs import RunStore
        store = RunStore(sys.argv[1])
        run_id = store.create_run({}, "arithmetic", "grpo", "true")
        store.log_step(run_id, 0, {"reward/mean": 0.5})
        print(run_id, flush=True)
        os._exit(9)   # no final status, as after SIGKILL
    """)
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], cwd=ROOT, text=True,
                         capture_output=True, timeout=60)
    run_id = out.stdout.strip()
    from explorer.main_window import MainWindow

    win = MainWindow(data_dir=tmp_path, restore=False)
    qtbot.addWidget(win)
    assert status_cell(win, run_id) == "● interrupted"
    assert "killed or crashed" in win.runs_panel._item(run_id, STATUS).toolTip()
    win.close()


def test_resume_from_the_window_carries_the_run_on_under_its_id(window, qtbot):
    with RunStore(window.data_dir) as store:
        run_id, _ = train_and_record(RunConfig.for_algo("grpo", **FAST, steps=4), store)
    window.runs_panel.refresh()
    assert window.recovery.resume_run(run_id, steps=6)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    assert window.store.get_run(run_id).steps_done == 6
    assert len(window.store.list_runs()) == 1
    assert len(window.live_series.get("reward/mean")) == 6   # the stored steps, then the new
    assert status_cell(window, run_id) == "● finished"


def test_resume_from_an_earlier_step_asks_first(window, qtbot, monkeypatch):
    with RunStore(window.data_dir) as store:
        run_id, _ = train_and_record(RunConfig.for_algo("grpo", **FAST, steps=4), store)
    asked = []
    monkeypatch.setattr(window.recovery, "confirm", lambda title, text: asked.append(text) or False)
    assert not window.recovery.resume_run(run_id, step=2, steps=5)
    assert "deletes the 2 steps" in asked[0] and window.store.get_run(run_id).steps_done == 4
    monkeypatch.setattr(window.recovery, "confirm", lambda title, text: True)
    assert window.recovery.resume_run(run_id, step=2, steps=5)
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    assert window.store.get_run(run_id).steps_done == 5


def test_fork_puts_the_saved_knobs_in_the_panel_and_starts_a_new_run(window, qtbot):
    with RunStore(window.data_dir) as store:
        parent, _ = train_and_record(RunConfig.for_algo("grpo", **FAST, steps=4), store)
    window.recovery.fork_run(parent, 2)
    assert window.buttons.start_button.text() == "Start fork"
    cfg = window.panel.config()
    window.panel.set_config(cfg.with_changes(lr=3e-4, steps=5))
    window.start_run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    child = next(r.id for r in window.store.list_runs() if r.id != parent)
    assert window.store.get_run(child).steps_done == 5
    kinds = [e["kind"] for e in window.store.events(child)]
    assert "fork" in kinds and "set" in kinds
    assert window.buttons.start_button.text() == "Start"


def test_a_run_that_diverges_says_where_and_keeps_the_last_good_checkpoint(window, qtbot,
                                                                          monkeypatch):
    from core.reward_learning import reward_sources

    real, calls = reward_sources.TrueReward.score, []

    def poisoned(self, *args):
        calls.append(1)
        scored = real(self, *args)
        if len(calls) == 3:   # step 2's rewards
            scored.scores[1] = np.nan
        return scored

    monkeypatch.setattr(reward_sources.TrueReward, "score", poisoned)
    window.panel.set_config(RunConfig.for_algo("grpo", **FAST, steps=10))
    window.start_run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    run_id = window.store.list_runs()[0].id
    info = window.store.get_run(run_id)
    assert (info.status, info.steps_done) == ("diverged", 2)
    assert window.store.run_error(run_id) == "diverged at step 2: reward is nan (1 of 4 values)"
    assert "diverged at step 2" in window.status_text.text()
    assert [s for s, _ in window.store.checkpoints(run_id)] == [2]
    assert status_cell(window, run_id) == "● diverged"
    assert ("✕ reward is nan" in [label for *_, label in window.live_series.events])


def test_a_refused_device_shows_one_line_and_leaves_no_run(window, qtbot, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    window.panel.set_config(RunConfig.for_algo("grpo", **FAST, steps=3, device="cuda"))
    window.start_run()
    qtbot.waitUntil(lambda: not window.runner.busy, timeout=60_000)
    assert window.store.list_runs() == []
    assert window.status_text.text().startswith("Run not started: device 'cuda'")
    from PySide6.QtWidgets import QMessageBox

    box = window.findChild(QMessageBox, "refusedBox")
    assert box is not None and "Traceback" not in box.text()


def test_ctrl_c_in_the_terminal_stops_the_run_and_closes_the_window(window, qtbot):
    from explorer.app import close_on_signals

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        caught = close_on_signals(window)
        window.panel.set_config(RunConfig.for_algo("grpo", **FAST, steps=100_000))
        window.start_run()
        qtbot.waitUntil(lambda: window.live_series is not None
                        and window.live_series.get("reward/mean") is not None, timeout=60_000)
        os.kill(os.getpid(), signal.SIGINT)
        qtbot.waitUntil(lambda: not window.isVisible(), timeout=60_000)
    finally:
        signal.set_wakeup_fd(-1)
        for s, handler in previous.items():
            signal.signal(s, handler)
    assert caught == [signal.SIGINT] and not window.runner.busy
    with RunStore(window.data_dir) as store:
        run = store.list_runs()[0]
        assert run.status == "stopped" and store.checkpoints(run.id)[-1][0] == run.steps_done


def test_the_app_exits_130_on_ctrl_c_without_a_crash_dialog(tmp_path):
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "explorer.app", "--data-dir", str(tmp_path)],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.time() + 60
        while not (tmp_path / "runs.db").exists() and time.time() < deadline:
            time.sleep(0.2)
        time.sleep(1.5)   # the event loop is running
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "KeyboardInterrupt" not in err


@pytest.mark.parametrize("make", ["file", "damaged"])
def test_an_unusable_data_folder_stops_the_app_in_one_line(tmp_path, make):
    data = tmp_path / "data"
    if make == "file":
        data.write_text("x")
    else:
        data.mkdir()
        (data / "runs.db").write_bytes(b"not a database" * 50)
    env = {**os.environ, "QT_QPA_PLATFORM": "offscreen"}
    proc = subprocess.run([sys.executable, "-m", "explorer.app", "--data-dir", str(data)],
                          cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    lines = [line for line in proc.stderr.splitlines() if "propagateSizeHints" not in line]
    assert proc.returncode == 2 and len(lines) == 1, proc.stderr
    assert ("is a file, not a folder" if make == "file" else "runs.db is damaged") in lines[0]
