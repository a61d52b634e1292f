"""Sweeps without Ray: grid files and their errors, presets, the report's numbers from hand-made
runs, the recorder's bookkeeping fed by hand, and the report command."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest

from core.store.runs import RunStore
from core.sweeps.report import (
    Series,
    curves,
    findings,
    fit_gao,
    gao_peak,
    steps_to,
    summarise,
)
from core.sweeps.spec import PRESETS, SweepSpec, parse_spec, spec_from_dict
from explorer.app import main


# --- grid files
def test_a_grid_is_every_combination_with_readable_labels():
    spec = spec_from_dict({"base": {"algo": "ppo", "steps": 5},
                           "grid": {"lr": [1e-4, 5e-5], "clip_eps": [0.1, 0.3]}, "seeds": 3})
    assert [label for label, _ in spec.configs] == [
        "lr=0.0001 clip_eps=0.1", "lr=0.0001 clip_eps=0.3", "lr=5e-05 clip_eps=0.1",
        "lr=5e-05 clip_eps=0.3"]
    assert spec.seeds == (0, 1, 2) and len(spec.trials()) == 12
    cfg = spec.config("lr=5e-05 clip_eps=0.3", 2)
    assert (cfg.algo, cfg.lr, cfg.clip_eps, cfg.seed, cfg.steps) == ("ppo", 5e-5, 0.3, 2, 5)
    # the objective's own defaults apply under the grid's knobs (PPO's 2 epochs)
    assert cfg.epochs == 2


def test_configs_listed_by_hand_join_the_grid():
    spec = spec_from_dict({"grid": {"lr": [1e-4]}, "configs": [
        {"label": "no clip", "set": {"algo": "kl_penalty", "trust_beta": 0.0}}]})
    assert [label for label, _ in spec.configs] == ["lr=0.0001", "no clip"]
    assert spec.config("no clip", 0).trust_beta == 0.0


@pytest.mark.parametrize("data,words", [
    ({"grid": {"learning_rate": [1e-4]}}, ["[grid] learning_rate", "unknown setting"]),
    ({"grid": {"clip_esp": [0.1]}}, ["did you mean clip_eps"]),
    ({"grid": {"lr": []}}, ["[grid] lr", "empty"]),
    ({"grid": {"clip_eps": [0.2, 9.0]}}, ["clip_eps=9", "[0.0001, 1.0]"]),
    ({"grid": {"lr": "fast"}}, ["[grid] lr", "list"]),
    ({"grid": {"steps": ["many"]}}, ["steps", "int"]),
    ({"base": {"algo": "sgd"}, "grid": {"lr": [1e-4]}}, ["algo", "grpo"]),
    ({"grid": {"seed": [1, 2]}}, ["seeds are the sweep's own"]),
    ({"seeds": 0, "grid": {"lr": [1e-4]}}, ["seeds must be >= 1"]),
    ({"grids": {"lr": [1e-4]}}, ["unknown key 'grids'"]),
    ({}, ["no configs"]),
    ({"base": {"reward_source": "learned"}, "grid": {"reward_model": ["mine"]}},
     ["reward_model", "out of a trial's reach"]),
    ({"base": {"reward_source": "learned", "feedback_every": 5}, "grid": {
        "feedback_by": ["person"]}}, ["no person ranks in a sweep"]),
    ({"configs": [{"label": "a", "set": {"lr": 1e-4}}, {"label": "a", "set": {}}]},
     ["two configs", "'a'"]),
])
def test_grid_errors_are_one_line_naming_the_problem(data, words):
    with pytest.raises(ValueError) as err:
        spec_from_dict(data)
    text = str(err.value)
    assert "\n" not in text
    for w in words:
        assert w in text, text


@pytest.mark.parametrize("body,words", [
    ('[grid]\nlearning_rate = [1e-4]\n', ["unknown setting", "learning_rate"]),
    ('[grid]\nlr = []\n', ["empty"]),
    ('[grid]\nclip_eps = [5.0]\n', ["clip_eps", "1.0"]),
    ('[grid\n', ["not valid TOML"]),
])
def test_sweep_cli_refuses_a_bad_grid_with_exit_2_and_starts_nothing(tmp_path, body, words):
    grid = tmp_path / "grid.toml"
    grid.write_text(body)
    data = tmp_path / "data"
    proc = subprocess.run([sys.executable, "-m", "explorer.app", "sweep", str(grid),
                           "--data-dir", str(data)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
    for w in words:
        assert w in proc.stderr
    assert not data.exists()   # no store, no sweep, no trial


def test_sweep_cli_names_the_presets_when_given_neither_preset_nor_file(tmp_path, capsys):
    assert main(["sweep", "kl-vs-klip", "--data-dir", str(tmp_path)]) == 2
    err = capsys.readouterr().err
    assert "kl-vs-clip" in err and "overoptimisation" in err


@pytest.mark.parametrize("name", list(PRESETS))
@pytest.mark.parametrize("scale", ["laptop", "full"])
def test_every_preset_is_a_valid_sweep_and_full_is_bigger(name, scale):
    spec = parse_spec(name, scale)
    spec.check()
    assert spec.preset == name and spec.scale == scale
    if scale == "full":
        laptop = parse_spec(name, "laptop")
        assert len(spec.trials()) > len(laptop.trials())
        assert spec.base["steps"] > laptop.base["steps"]


def test_kl_vs_clip_has_the_papers_rows():
    spec = parse_spec("kl-vs-clip")
    knobs = dict(spec.configs)
    assert {k["clip_eps"] for k in knobs.values() if k.get("algo") == "ppo"} == {0.1, 0.2, 0.3}
    assert {k["trust_target"] for k in knobs.values() if "trust_target" in k} == {
        0.003, 0.01, 0.03}
    assert knobs["no clip, no penalty"]["trust_beta"] == 0.0
    # the KL to the reference is off, so only the surrogate differs
    cfg = spec.config("clip eps=0.2", 0)
    assert cfg.beta == 0.0 and cfg.kl_controller == "fixed"


def test_spec_survives_its_json():
    spec = parse_spec("overoptimisation")
    assert SweepSpec.from_json(json.loads(json.dumps(spec.to_json()))) == spec


# --- the report's numbers, by hand
def _series(label, seed, values):
    return Series(label, seed, np.arange(len(values), dtype=float), np.asarray(values, float))


def test_summary_final_is_the_mean_of_the_last_ten_steps_over_seeds():
    a0 = [0.0] * 10 + [1.0] * 10           # final 1.0
    a1 = [0.0] * 10 + [3.0] * 10           # final 3.0
    b0 = list(np.linspace(0, 1, 20))       # final mean(last 10) = mean(linspace[10:])
    summary = summarise([_series("a", 0, a0), _series("a", 1, a1), _series("b", 0, b0)],
                        threshold=0.9)
    a, b = summary
    assert a.label == "a" and a.n == 2 and a.final_mean == pytest.approx(2.0)
    assert a.final_sd == pytest.approx(math.sqrt(2.0))       # sd of (1, 3), ddof 1
    assert a.start_mean == pytest.approx(0.0)
    assert b.final_mean == pytest.approx(np.linspace(0, 1, 20)[10:].mean())
    assert math.isnan(b.final_sd)                            # one seed: no spread
    # steps to 0.9 with a 5-step mean: seed 0 at step 14 (steps 10..14 are all 1), seed 1 at
    # step 11 ((0 + 0 + 0 + 3 + 3) / 5 = 1.2); the mean over the seeds that reached it
    assert a.steps_to_threshold == pytest.approx(12.5) and a.reached == 2


def test_steps_to_threshold_uses_a_five_step_mean():
    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1, 1], float)
    assert steps_to(np.arange(10.0), y, 1.0) == 9.0
    assert steps_to(np.arange(10.0), y, 0.6) == 7.0     # mean of steps 3..7 = 0.6
    assert math.isnan(steps_to(np.arange(10.0), y, 2.0))


def test_band_is_mean_and_sd_over_the_seeds_present_at_each_step():
    (band,) = curves([_series("a", 0, [1.0, 2.0, 3.0]), _series("a", 1, [3.0, 4.0])])
    assert band.x.tolist() == [0.0, 1.0, 2.0]
    assert band.mean.tolist() == [2.0, 3.0, 3.0]
    assert band.sd[:2] == pytest.approx([math.sqrt(2)] * 2) and band.sd[2] == 0.0
    assert band.n.tolist() == [2, 2, 1]
    assert band.lo.tolist() == [1.0, 2.0, 3.0] and band.hi.tolist() == [3.0, 4.0, 3.0]


def test_gao_fit_recovers_alpha_beta_and_the_peak():
    d = np.linspace(0.2, 4.0, 40)
    alpha, beta = 1.2, 0.5
    r = d * (alpha - beta * np.log(d))
    a, b = fit_gao(d, r)
    assert (a, b) == pytest.approx((alpha, beta), abs=1e-9)
    peak = gao_peak(a, b)
    assert peak == pytest.approx(math.exp(alpha / beta - 1))
    # the peak is where R is highest on a fine grid
    fine = np.linspace(0.01, 20, 200_000)
    assert fine[np.argmax(fine * (alpha - beta * np.log(fine)))] == pytest.approx(peak, rel=1e-3)
    assert gao_peak(1.0, -0.1) == math.inf


def _summary(pairs):
    series = []
    for label, finals in pairs:
        for seed, v in enumerate(finals):
            series.append(_series(label, seed, [0.0] * 10 + [v] * 10))
    return summarise(series)


def test_kl_vs_clip_findings_follow_the_numbers():
    spec = parse_spec("kl-vs-clip")
    holds = findings(spec, _summary([("clip eps=0.2", [0.8, 0.82, 0.78]),
                                     ("adaptive KL d_targ=0.01", [0.4, 0.42, 0.38])]))
    assert any("holds here" in line for line in holds)
    reverse = findings(spec, _summary([("clip eps=0.2", [0.4, 0.42, 0.38]),
                                       ("adaptive KL d_targ=0.01", [0.8, 0.82, 0.78])]))
    assert any("does not hold here" in line for line in reverse)
    noisy = findings(spec, _summary([("clip eps=0.2", [0.2, 0.9]),
                                     ("adaptive KL d_targ=0.01", [0.5, 0.5])]))
    assert any("not resolved" in line for line in noisy)


def test_rank_to_reward_findings_name_the_faster_route():
    spec = parse_spec("rank-to-reward")
    lines = findings(spec, _summary([("ranks: fixed", [0.3, 0.31]),
                                     ("reward model: bradley_terry", [0.6, 0.61])]))
    assert any("a reward model learned faster" in line for line in lines)
    lines = findings(spec, _summary([("ranks: fixed", [0.6, 0.62]),
                                     ("reward model: bradley_terry", [0.3, 0.31])]))
    assert any("ranks used directly as rewards learned faster" in line for line in lines)
    lines = findings(spec, _summary([("ranks: fixed", [0.2, 0.6]),
                                     ("reward model: bradley_terry", [0.3, 0.5])]))
    assert any("not told apart" in line for line in lines)


def test_overoptimisation_findings_say_whether_the_gold_peak_moves_out():
    spec = parse_spec("overoptimisation")
    summary = _summary([("30 rankings, plain", [0.1]), ("100 rankings, plain", [0.2])])
    out = findings(spec, summary, {"peaks": {"30 rankings, plain": 0.5,
                                             "100 rankings, plain": 1.2,
                                             "300 rankings, plain": 2.0}})
    assert any("30: 0.50, 100: 1.20, 300: 2.00" in line and "moves out" in line for line in out)
    back = findings(spec, summary, {"peaks": {"30 rankings, plain": 2.0,
                                              "100 rankings, plain": 1.0}})
    assert any("does not move out steadily" in line for line in back)


# --- hand-made runs in the store, through the reader and the report command
def _hand_made_sweep(store):
    spec = SweepSpec("hand", (("low", {"lr": 1e-5}), ("high", {"lr": 1e-4})), seeds=(0, 1),
                     base={"steps": 20})
    sweep = store.create_sweep(spec.name, spec.to_json())
    values = {("low", 0): 0.1, ("low", 1): 0.3, ("high", 0): 0.5, ("high", 1): 0.9}
    for (label, seed), final in values.items():
        run = store.create_run(spec.config(label, seed).to_dict(), "sentiment", "grpo", "true")
        store.tag_run(sweep, run, label, seed)
        for step in range(20):
            store.log_step(run, step, {"reward/true_mean": 0.0 if step < 10 else final})
        store.finish_run(run, "finished")
    store.finish_sweep(sweep, "finished")
    return sweep


def test_trials_are_read_back_by_label_and_seed(tmp_path):
    from core.sweeps.runner import trial_series

    with RunStore(tmp_path) as store:
        sweep = _hand_made_sweep(store)
        trials = store.trials(sweep)
        assert [(t.label, t.seed) for t in trials] == [("high", 0), ("high", 1), ("low", 0),
                                                       ("low", 1)]
        assert {t.run.status for t in trials} == {"finished"}
        tags = store.run_tags()
        assert sorted(tags.values()) == sorted((sweep, t.label, t.seed) for t in trials)
        series = trial_series(store, sweep, "reward/true_mean")
        summary = {s.label: s for s in summarise(series)}
        assert summary["high"].final_mean == pytest.approx(0.7)
        assert summary["low"].final_mean == pytest.approx(0.2)
        assert store.get_sweep(sweep).status == "finished"
        # deleting a run drops its tag, not the sweep
        store.delete_run(trials[0].run.id)
        assert len(store.trials(sweep)) == 3


def test_sweep_report_prints_the_table_and_writes_the_figures(tmp_path, capsys):
    with RunStore(tmp_path) as store:
        sweep = _hand_made_sweep(store)
    out = tmp_path / "report"
    assert main(["sweep-report", sweep, "--data-dir", str(tmp_path), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "+0.70 ± 0.28" in text and "+0.20 ± 0.14" in text
    assert "Highest final reward/true_mean: high" in text
    assert (out / "figure.svg").read_text().startswith("<svg")
    assert (out / "figure.png").read_bytes()[:4] == b"\x89PNG"
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("config,seeds,final_mean") and rows[1].startswith("low,2,0.2")

    assert main(["sweeps", "--json", "--data-dir", str(tmp_path)]) == 0
    (listed,) = json.loads(capsys.readouterr().out)
    assert listed["id"] == sweep and listed["trials"] == "4/4" and listed["failed"] == 0


def test_a_sweep_whose_driver_died_reads_interrupted(tmp_path):
    with RunStore(tmp_path) as store:
        sweep = store.create_sweep("x", SweepSpec("x", (("a", {}),)).to_json())
        assert store.get_sweep(sweep).status == "running"
        store._locks.pop(f"sweep:{sweep}").release()   # as if its process had ended
        assert store.get_sweep(sweep).status == "interrupted"


def test_report_of_an_unknown_sweep_is_one_line(tmp_path, capsys):
    assert main(["sweep-report", "nope", "--data-dir", str(tmp_path)]) == 2
    assert "no sweep 'nope'" in capsys.readouterr().err


def test_the_driver_records_what_trials_report(tmp_path):
    """The recorder, fed by hand the payloads a trial sends through Ray: the run is made at
    'start', each step is one transaction, checkpoint bytes become files, 'end' sets the
    status, and a trial that dies is recorded failed while the others go on."""
    from core.sweeps.runner import SweepRunner, trial_key

    spec = SweepSpec("fed", (("a", {}), ("b", {})), seeds=(0,), base={"steps": 3})
    with RunStore(tmp_path) as store:
        runner = SweepRunner(store, spec, cpus=2)
        runner.sweep_id = store.create_sweep(spec.name, spec.to_json())
        a, b = trial_key("a", 0), trial_key("b", 0)
        runner._record(a, {"kind": "start"})
        runner._record(b, {"kind": "start"})
        for step in range(3):
            ckpt = ({"step": 2, "policy": b"policy-bytes", "state": b"state-bytes"}
                    if step == 1 else None)
            runner._record(a, {"kind": "step", "step": step, "checkpoint": ckpt,
                               "metrics": {"reward/true_mean": 0.1 * step},
                               "samples": [{"prompt": "p", "completion": "c"}],
                               "events": [{"kind": "note", "text": "hi"}] if step == 0 else []})
        runner._record(a, {"kind": "end", "status": "finished", "step": 3, "checkpoint": None})
        runner._failed(b, "Traceback ...\nValueError: boom")
        trials = {t.label: t.run for t in store.trials(runner.sweep_id)}
        assert trials["a"].status == "finished" and trials["a"].steps_done == 3
        assert trials["b"].status == "failed" and "boom" in store.run_error(trials["b"].id)
        run = trials["a"].id
        assert store.metric_series(run, "reward/true_mean")[1].tolist() == pytest.approx(
            [0.0, 0.1, 0.2])
        assert [e["kind"] for e in store.events(run)] == ["note"]
        ((step, path),) = store.checkpoints(run)
        assert step == 2 and path.read_bytes() == b"policy-bytes"
        from core.store.train_state import state_path

        assert state_path(path).read_bytes() == b"state-bytes"
        progress = runner.progress()
        assert progress.count("finished") == 1 and progress.count("failed") == 1
        assert "1/2 done, 0 running, 1 failed" in progress.line()


def test_seeds_binned_on_common_edges_line_up_in_one_band():
    from core.sweeps.report import binned, common_edges

    a = Series("c", 0, np.array([0.0, 0.5, 1.0, 1.5, 2.0]), np.array([1.0, 1.0, 2.0, 2.0, 3.0]))
    b = Series("c", 1, np.array([0.2, 1.2, 3.8]), np.array([3.0, 4.0, 5.0]))
    edges = common_edges([a, b], bins=4)["c"]
    assert edges.tolist() == pytest.approx([0.0, 0.95, 1.9, 2.85, 3.8])
    xa, ya = binned(a.x, a.y, edges=edges)
    xb, yb = binned(b.x, b.y, edges=edges)
    assert xa.tolist() == pytest.approx([0.475, 1.425, 2.375]) and ya.tolist() == [1.0, 2.0, 3.0]
    assert xb.tolist() == pytest.approx([0.475, 1.425, 3.325]) and yb.tolist() == [3.0, 4.0, 5.0]
    (band,) = curves([Series("c", 0, xa, ya), Series("c", 1, xb, yb)])
    assert band.n.tolist() == [2, 2, 1, 1]            # the first two bins hold both seeds
    assert band.mean.tolist()[:2] == [2.0, 3.0]


def test_a_newer_run_of_a_trial_takes_its_tag_and_the_older_run_stays(tmp_path):
    with RunStore(tmp_path) as store:
        sweep = store.create_sweep("x", SweepSpec("x", (("a", {}),)).to_json())
        old = store.create_run({}, "sentiment", "grpo", "true")
        new = store.create_run({}, "sentiment", "grpo", "true")
        store.tag_run(sweep, old, "a", 0)
        store.tag_run(sweep, new, "a", 0)
        assert [t.run.id for t in store.trials(sweep)] == [new]
        assert {r.id for r in store.list_runs()} == {old, new}
        assert old not in store.run_tags()
