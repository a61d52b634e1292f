"""Sweeps on a real local Ray, at smoke size: trials recorded by the driver, a crash, SIGTERM,
kill -9 of the driver, and --resume. Each runs the CLI in its own process, as a person does, so
Ray starts with the CPUs given and is gone when the process is."""

import os
import signal
import subprocess
import sys
import time

import pytest

from core.rl.trainer import default_checkpoint
from core.store.runs import RunStore
from core.store.train_state import plan_resume

pytest.importorskip("ray")
pytestmark = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing (run pretrain)")

TINY = """
[base]
steps = {steps}
prompts_per_step = 2
group_size = 2
samples_per_step = 1
checkpoint_every = {every}
"""


def _grid(tmp_path, body, steps=3, every=2):
    path = tmp_path / "grid.toml"
    path.write_text(f"name = \"smoke\"\nseeds = 1\n{TINY.format(steps=steps, every=every)}"
                    f"{body}")
    return path


def _sweep(*args, data, **kw):
    return subprocess.Popen([sys.executable, "-m", "explorer.app", "sweep", *args, "--data-dir",
                             str(data), "--cpus", "2", "--quiet"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, **kw)


def _only_sweep(data):
    with RunStore(data, read_only=True) as store:
        (sweep,) = store.list_sweeps()
        return sweep, {t.label: t.run for t in store.trials(sweep.id)}


def test_two_trials_on_local_ray_are_recorded_and_a_crash_fails_only_its_trial(tmp_path):
    import torch

    if torch.cuda.is_available():
        pytest.skip("the crashing trial asks for CUDA, which this machine has")
    data = tmp_path / "data"
    grid = _grid(tmp_path, "[grid]\ndevice = [\"cpu\", \"cuda\"]\n")
    proc = _sweep(str(grid), data=data)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 3, err   # some trial failed; the other ran to the end
    sweep, runs = _only_sweep(data)
    assert sweep.status == "failed" and "sweep-report" in out
    ok, crashed = runs["device=cpu"], runs["device=cuda"]
    assert ok.status == "finished" and ok.steps_done == 3
    assert crashed.status == "failed"
    with RunStore(data, read_only=True) as store:
        assert "CUDA" in store.run_error(crashed.id) or "cuda" in store.run_error(crashed.id)
        # recorded by the driver like any run: metrics, samples, checkpoints at 2 and the end
        assert store.metric_series(ok.id, "reward/true_mean")[0].tolist() == [0, 1, 2]
        assert store.samples(ok.id, 2)
        assert [s for s, _ in store.checkpoints(ok.id)] == [2, 3]
        # and Resume works on it as on any run: its stored state loads
        plan = plan_resume(store, ok.id, steps=5)
        assert plan.step == 3 and plan.state is not None and plan.cfg.steps == 5
        assert store.get_run(ok.id).name == "device=cpu · seed 0 [smoke]"


def _wait_for_steps(data, at_least, timeout=180):
    t0 = time.time()
    while time.time() - t0 < timeout:
        try:
            _, runs = _only_sweep(data)
            if runs and all(r.steps_done >= at_least for r in runs.values()) and len(runs) == 2:
                return runs
        except ValueError:   # the store or the sweep is not made yet
            pass
        time.sleep(0.3)
    raise AssertionError("the trials did not record their steps in time")


@pytest.mark.parametrize("how", ["sigterm", "kill -9"])
def test_a_stopped_or_killed_sweep_keeps_its_steps_and_resume_finishes_it(tmp_path, how):
    data = tmp_path / "data"
    grid = _grid(tmp_path, "[grid]\nlr = [1e-4, 5e-5]\n", steps=40, every=2)
    proc = _sweep(str(grid), data=data)
    try:
        _wait_for_steps(data, 3)
        proc.send_signal(signal.SIGTERM if how == "sigterm" else signal.SIGKILL)
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    sweep, runs = _only_sweep(data)
    if how == "sigterm":
        assert proc.returncode == 143, err
        assert sweep.status == "stopped" and "--resume" in out
        assert {r.status for r in runs.values()} == {"stopped"}
    else:
        assert proc.returncode == -signal.SIGKILL
        assert sweep.status == "interrupted"
        assert {r.status for r in runs.values()} == {"interrupted"}
    stopped_at = {label: r.steps_done for label, r in runs.items()}
    assert all(3 <= s < 40 for s in stopped_at.values())

    proc = _sweep("--resume", sweep.id, data=data)
    out, err = proc.communicate(timeout=240)
    assert proc.returncode == 0, err
    sweep, resumed = _only_sweep(data)
    assert sweep.status == "finished"
    assert {label: r.id for label, r in resumed.items()} == {l: r.id for l, r in runs.items()}
    with RunStore(data, read_only=True) as store:
        for run in resumed.values():
            assert run.status == "finished" and run.steps_done == 40
            steps, _ = store.metric_series(run.id, "reward/true_mean")
            assert steps.tolist() == list(range(40))   # no gap, no step twice


def test_resume_refuses_a_sweep_that_is_running_or_unknown(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "explorer.app", "sweep", "--resume", "nope",
                           "--data-dir", str(tmp_path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "no sweep 'nope'" in proc.stderr


def test_the_window_is_not_needed(tmp_path):
    """The sweep modules load no Qt: a cluster's workers need none."""
    code = ("import sys, core.sweeps.runner, core.sweeps.spec, core.sweeps.report, "
            "core.sweeps.figure;"
            "print(any(m.startswith('PySide6') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env={**os.environ}, timeout=60).stdout.strip()
    assert out == "False"
