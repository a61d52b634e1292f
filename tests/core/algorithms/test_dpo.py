"""DPO, IPO and listwise Plackett-Luce DPO against numbers worked by hand, their ties, and their
wiring: the reference never gets a gradient, beta reaches the loss, and a few steps on
simulated rankings move the policy's implicit rewards toward them."""

import math

import pytest
import torch

from core.algorithms.dpo import (
    dpo_loss,
    ordered_pairs,
    ordered_share,
    pad_rankings,
    plackett_luce_ll,
    sequence_logps,
)
from core.rl.trainer import default_checkpoint


def _t(rows):
    return torch.tensor(rows, dtype=torch.float32)


def _log_sigmoid(x):
    return -math.log1p(math.exp(-x))


def test_accuracy_counts_a_tied_margin_half():
    # margins: one right, one tie, one wrong: (1 + 0.5 + 0) / 3
    assert ordered_share(_t([0.3, 0.0, -0.2])) == pytest.approx(0.5)
    assert ordered_share(_t([0.0, 0.0])) == 0.5 and ordered_share(_t([1.0, 2.0])) == 1.0
    # float noise between two scorings of one response (batches of other widths) is a tie
    assert ordered_share(_t([3e-6, -2e-6])) == 0.5 and ordered_share(_t([2e-4])) == 1.0
    assert math.isnan(ordered_share(_t([])))
    # through the loss: ranks (1, 2, 3) with implicit rewards (0, 0, -1): pairs 1>2 tie,
    # 1>3 and 2>3 right
    logp, ref = _t([[-1.0, -1.0, -2.0]]), _t([[-1.0, -1.0, -1.0]])
    _, metrics = dpo_loss(logp, ref, torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool),
                          0.1, "sigmoid")
    assert metrics["dpo/accuracy"] == pytest.approx(2.5 / 3)


def test_k2_listwise_equals_dpo_by_hand():
    # h = log pi - log pi_ref = (0.5, -0.5); beta 0.5: r = (0.25, -0.25), margin 0.5
    logp, ref = _t([[-1.0, -2.0]]), _t([[-1.5, -1.5]])
    ranks, valid = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    dpo, metrics = dpo_loss(logp, ref, ranks, valid, 0.5, "sigmoid")
    pl, _ = dpo_loss(logp, ref, ranks, valid, 0.5, "plackett_luce")
    assert float(dpo) == pytest.approx(-_log_sigmoid(0.5)) == pytest.approx(0.474077, abs=1e-6)
    assert float(pl) == pytest.approx(float(dpo), abs=1e-6)
    assert metrics["dpo/accuracy"] == 1.0 and metrics["dpo/margin"] == pytest.approx(0.5)
    assert metrics["dpo/reward_chosen"] == pytest.approx(0.25)
    assert metrics["dpo/reward_rejected"] == pytest.approx(-0.25)
    assert metrics["dpo/logp_chosen"] == pytest.approx(-1.0)


def test_k3_listwise_by_hand():
    # beta 1, h = r = (1, 0, -1), listed best first:
    # log P = [1 - log(e + 1 + e^-1)] + [0 - log(1 + e^-1)] + 0 = -0.407606 - 0.313262
    r = _t([[1.0, 0.0, -1.0]])
    ll = plackett_luce_ll(r, torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool))
    assert float(ll) == pytest.approx(-0.720868, abs=1e-6)
    # the same responses listed in another order, with their ranks: the same likelihood
    shuffled = plackett_luce_ll(_t([[-1.0, 1.0, 0.0]]), torch.tensor([[3, 1, 2]]),
                                torch.ones(1, 3, dtype=torch.bool))
    assert float(shuffled) == pytest.approx(-0.720868, abs=1e-6)


def test_k4_listwise_by_hand_and_dpo_over_its_six_pairs():
    r = [2.0, 0.5, 0.0, -1.0]
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    by_hand = sum(r[k] - lse(r[k:]) for k in range(4))
    ranks, valid = torch.tensor([[1, 2, 3, 4]]), torch.ones(1, 4, dtype=torch.bool)
    loss, _ = dpo_loss(_t([r]), torch.zeros(1, 4), ranks, valid, 1.0, "plackett_luce")
    assert float(loss) == pytest.approx(-by_hand, abs=1e-6)
    pairs = [(i, j) for i in range(4) for j in range(i + 1, 4)]
    dpo, metrics = dpo_loss(_t([r]), torch.zeros(1, 4), ranks, valid, 1.0, "sigmoid")
    assert float(dpo) == pytest.approx(sum(-_log_sigmoid(r[i] - r[j]) for i, j in pairs) / 6,
                                       abs=1e-6)
    assert metrics["dpo/pairs"] == 6 and metrics["dpo/accuracy"] == 1.0


def test_ties_are_skipped_pairwise_and_grouped_listwise():
    # ranks (1, 2, 2, 3): the tied middle pair is no pair; listwise, it is picked together:
    # log P = [a - lse(a,b,c,d)] + [b + c - 2 lse(b,c,d)] + [d - d]
    a, b, c, d = 1.0, 0.3, -0.2, -1.0
    lse = lambda xs: math.log(sum(math.exp(x) for x in xs))  # noqa: E731
    by_hand = (a - lse([a, b, c, d])) + (b + c - 2 * lse([b, c, d]))
    ranks, valid = torch.tensor([[1, 2, 2, 3]]), torch.ones(1, 4, dtype=torch.bool)
    assert float(plackett_luce_ll(_t([[a, b, c, d]]), ranks, valid)) == pytest.approx(
        by_hand, abs=1e-6)
    row, i, j = ordered_pairs(ranks, valid)
    assert sorted(zip(i.tolist(), j.tolist(), strict=True)) == [(0, 1), (0, 2), (0, 3), (1, 3),
                                                                 (2, 3)]
    # two responses tied with each other: log sigma(d) + log sigma(-d), largest at d = 0
    tie = plackett_luce_ll(_t([[0.7, -0.1]]), torch.tensor([[1, 1]]),
                           torch.ones(1, 2, dtype=torch.bool))
    assert float(tie) == pytest.approx(_log_sigmoid(0.8) + _log_sigmoid(-0.8), abs=1e-6)
    # an all-tied ranking has no pair: the pairwise loss is 0, with a zero gradient
    logp = _t([[0.2, 0.1]]).requires_grad_()
    loss, metrics = dpo_loss(logp, torch.zeros(1, 2), torch.tensor([[1, 1]]),
                             torch.ones(1, 2, dtype=torch.bool), 0.1, "sigmoid")
    loss.backward()
    assert float(loss.detach()) == 0.0 and torch.all(logp.grad == 0) and math.isnan(
        metrics["dpo/accuracy"])


def test_ipo_by_hand():
    # h_w - h_l = 1 and beta 0.5: the target gap 1 / (2 beta) = 1 is met, loss 0; a gap of 0
    # costs 1; a gap of 3 costs 4 (IPO does not push a deterministic preference to infinity)
    ranks, valid = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    for gap, want in ((1.0, 0.0), (0.0, 1.0), (3.0, 4.0)):
        loss, _ = dpo_loss(_t([[gap, 0.0]]), torch.zeros(1, 2), ranks, valid, 0.5, "ipo")
        assert float(loss) == pytest.approx(want, abs=1e-6)


def test_sft_term_is_the_best_responses_nll_per_token_ties_all_of_them():
    from core.algorithms.dpo import sft_loss

    logp = torch.tensor([[-4.0, -6.0, -1.0], [-3.0, -9.0, -5.0]])
    lengths = torch.tensor([[2.0, 3.0, 1.0], [1.0, 3.0, 5.0]])
    ranks = torch.tensor([[2, 1, 1], [1, 2, 1]])
    valid = torch.tensor([[True, True, False], [True, True, True]])
    # row 0: the best is the 2nd (the 3rd is padding): -6/3; row 1: the 1st and 3rd tie: -3/1, -5/5
    assert float(sft_loss(logp, lengths, ranks, valid)) == pytest.approx((2 + 3 + 1) / 3)


def test_padding_takes_no_part():
    # a ranking of 2 padded to 3 gives the same loss as alone
    r = _t([[0.4, -0.3, 99.0]])
    padded = plackett_luce_ll(r, torch.tensor([[1, 2, 0]]), torch.tensor([[True, True, False]]))
    alone = plackett_luce_ll(r[:, :2], torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool))
    assert float(padded) == pytest.approx(float(alone), abs=1e-6)


@pytest.mark.parametrize("loss_type", ["sigmoid", "ipo", "plackett_luce"])
def test_the_reference_gets_no_gradient_and_beta_reaches_the_loss(loss_type):
    logp = _t([[-1.0, -1.4, -2.0]]).requires_grad_()
    ref = _t([[-1.2, -1.2, -1.2]]).requires_grad_()
    ranks, valid = torch.tensor([[1, 2, 3]]), torch.ones(1, 3, dtype=torch.bool)
    loss, _ = dpo_loss(logp, ref, ranks, valid, 0.1, loss_type)
    loss.backward()
    assert ref.grad is None and logp.grad is not None and torch.any(logp.grad != 0)
    other, _ = dpo_loss(logp, ref, ranks, valid, 0.3, loss_type)
    assert float(other.detach()) != pytest.approx(float(loss.detach()))


def test_bad_input_says_what_to_give():
    ranks, valid = torch.tensor([[1, 2]]), torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match="sigmoid, ipo, plackett_luce"):
        dpo_loss(_t([[0.0, 0.0]]), _t([[0.0, 0.0]]), ranks, valid, 0.1, "hinge")
    with pytest.raises(ValueError, match="beta must be > 0"):
        dpo_loss(_t([[0.0, 0.0]]), _t([[0.0, 0.0]]), ranks, valid, 0.0, "sigmoid")


@pytest.mark.skipif(not default_checkpoint("sentiment").exists(), reason="no base model")
@pytest.mark.parametrize("loss_type", ["sigmoid", "plackett_luce"])
def test_a_few_steps_on_rankings_raise_the_implicit_accuracy(loss_type):
    """Wiring end to end on the tiny GPT: 12 rankings of 3 responses whose best is the most
    positive; 8 Adam steps of the policy raise the share of ordered pairs the implicit reward
    gets right on those rankings and lower the loss, and the reference stays the base model."""
    from core.lm.checkpoints import load_checkpoint
    from core.reward_learning.reward_model import Ranking

    torch.manual_seed(0)
    torch.set_num_threads(1)
    policy, _ = load_checkpoint(default_checkpoint("sentiment"))
    reference, _ = load_checkpoint(default_checkpoint("sentiment"))
    reference.requires_grad_(False)
    before = [p.clone() for p in reference.parameters()]
    words = [("superb and moving.", "fine.", "dull and awful."),
             ("a delight.", "long.", "a mess.")]
    rankings = [Ranking(f"the film {n}", words[n % 2], (1, 2, 3)) for n in range(12)]
    prompts, texts, ranks, valid = pad_rankings(rankings)
    with torch.no_grad():
        ref = sequence_logps(reference, prompts, texts, 24).view(ranks.shape)
    opt = torch.optim.Adam(policy.parameters(), lr=1e-4)
    accuracies, losses = [], []
    for _ in range(8):
        logp = sequence_logps(policy, prompts, texts, 24).view(ranks.shape)
        loss, metrics = dpo_loss(logp, ref, ranks, valid, 0.1, loss_type)
        opt.zero_grad()
        loss.backward()
        opt.step()
        accuracies.append(metrics["dpo/accuracy"])
        losses.append(metrics["dpo/loss"])
    # at the start the policy is the reference: every implicit reward is 0, every pair a tie,
    # and a tie counts half: chance, not 0
    assert accuracies[0] == 0.5 and accuracies[-1] >= 0.9 and losses[-1] < losses[0]
    assert all(torch.equal(a, b) for a, b in zip(before, reference.parameters(), strict=True))


# --- the objective in the trainer (`--algo dpo`)
needs_base = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="no base model")
SMALL = dict(prompts_per_step=2, group_size=2, threads=1, dpo_rankings=10, rm_k=3,
             dpo_batch=4, steps=3)


def _trainer(**kw):
    from core.config import RunConfig
    from core.rl.trainer import Trainer

    return Trainer(RunConfig.for_algo("dpo", **{**SMALL, **kw}))


@needs_base
def test_a_dpo_run_trains_on_rankings_and_watches_its_samples():
    trainer = _trainer()
    assert trainer.objective.name == "dpo" and not trainer.objective.trains_on_rollout
    before = [p.clone() for p in trainer.policy.parameters()]
    results = [trainer.step() for _ in range(3)]
    first = results[0].metrics
    # DPO's own metrics, and the rollout's, as for every objective (no entropy: no pass on it)
    assert {"dpo/loss", "dpo/accuracy", "dpo/heldout_accuracy", "reward/true_mean",
            "kl/mean"} <= set(first)
    assert first["dpo/loss"] == pytest.approx(math.log(2), abs=1e-4) or \
        trainer.cfg.dpo_loss != "sigmoid"   # the policy is the reference at step 0
    assert "policy/entropy" not in first and results[0].samples
    assert any(not torch.equal(a, b) for a, b in zip(before, trainer.policy.parameters(),
                                                       strict=True))
    # the reference is the base model, untouched
    assert all(not p.requires_grad for p in trainer.reference.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, trainer.reference.parameters(),
                                                   strict=True))


@needs_base
def test_held_out_prompts_are_never_trained_on(monkeypatch):
    from core.algorithms import dpo as module

    trainer = _trainer(dpo_rankings=16)
    obj = trainer.objective
    train_prompts, held_prompts = {r.prompt for r in obj.train}, {r.prompt for r in obj.held}
    assert held_prompts and not train_prompts & held_prompts
    seen = []
    real = module.pad_rankings

    def spy(rankings):
        seen.append({r.prompt for r in rankings})
        return real(rankings)

    monkeypatch.setattr(module, "pad_rankings", spy)
    for _ in range(3):
        trainer.objective.data_loss(trainer, 0.1)
    # every batch is all training prompts or all held-out ones (the held-out measure, which
    # trains nothing), and each of the 3 updates drew training prompts only
    assert all(s <= train_prompts or s <= held_prompts for s in seen)
    assert sum(s <= train_prompts for s in seen) == 3


@needs_base
def test_beta_reaches_the_loss_live(monkeypatch):
    from core.algorithms import dpo as module

    trainer = _trainer()
    betas = []
    real = module.dpo_loss
    monkeypatch.setattr(module, "dpo_loss", lambda *a: betas.append(a[4]) or real(*a))
    trainer.step()
    trainer.control.request_changes(beta=0.37)
    trainer.step()
    assert betas[0] == pytest.approx(0.1) and betas[-1] == pytest.approx(0.37)


@needs_base
def test_stored_rankings_are_refused_in_one_line_when_there_are_none(tmp_path):
    from core.config import RunConfig
    from core.rl.trainer import Trainer

    cfg = RunConfig.for_algo("dpo", **SMALL, dpo_data="stored")
    with pytest.raises(ValueError, match="no data folder"):
        Trainer(cfg)
    with pytest.raises(ValueError, match="no ranking with a strict preference.*Rank tab"):
        Trainer(cfg, data_dir=tmp_path)


@needs_base
def test_dpo_sft_adds_its_weight_times_the_preferred_nll_to_the_loss():
    with_sft = _trainer(dpo_sft=2.0)
    loss, metrics = with_sft.objective.data_loss(with_sft, 0.1)
    plain = _trainer()
    base_loss, base_metrics = plain.objective.data_loss(plain, 0.1)
    assert "dpo/sft_nll" in metrics and "dpo/sft_nll" not in base_metrics
    assert metrics["dpo/sft_nll"] > 0
    expected = float(base_loss.detach()) + 2.0 * metrics["dpo/sft_nll"]
    assert float(loss.detach()) == pytest.approx(expected, abs=1e-5)


@needs_base
def test_negatives_prefer_each_response_to_its_mangled_copy(monkeypatch):
    from core.algorithms import dpo as module

    trainer = _trainer(dpo_negatives=1.0)
    seen = []
    real = module.sequence_logps
    monkeypatch.setattr(module, "sequence_logps", lambda m, p, t, n, *a, **kw: (
        m is trainer.reference and seen.append(list(t))) or real(m, p, t, n, *a, **kw))
    loss, metrics = trainer.objective.data_loss(trainer, 0.1)
    (good_bad,) = seen             # the reference's one pass: responses, then their copies
    half = len(good_bad) // 2
    assert half >= 1 and all(g != b for g, b in zip(good_bad[:half], good_bad[half:],
                                                     strict=True))
    assert all(g in {x for r in trainer.objective.train for x in r.responses}
               for g in good_bad[:half])
    # at the start the policy is the reference: every pair ties (half each), the term is log 2
    assert metrics["dpo/negatives_accuracy"] == 0.5
    without = _trainer(dpo_negatives=0.0)
    base_loss, _ = without.objective.data_loss(without, 0.1)
    assert float(loss.detach()) == pytest.approx(float(base_loss.detach()) + math.log(2),
                                                 abs=1e-4)


@needs_base
def test_dpo_on_no_stored_rankings_is_refused_before_a_run_exists(tmp_path, capsys):
    from core.store.runs import RunStore
    from explorer.app import main

    assert main(["train", "--algo", "dpo", "--set", "dpo_data=stored", "--steps", "2",
                 "--data-dir", str(tmp_path), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "no ranking with a strict preference" in err and len(err.strip().splitlines()) == 1
    with RunStore(tmp_path, read_only=True) as store:
        assert store.list_runs() == []


# --- online DPO: rounds of the policy's own samples join the data
@needs_base
def test_a_round_adds_the_policys_ranked_samples_to_the_data_after_scoring_them(monkeypatch):
    from core.algorithms import dpo as module

    trainer = _trainer(feedback_every=2, feedback_groups=3, steps=5)
    obj = trainer.objective
    assert trainer.takes_rounds() and obj.round_learner(trainer) is obj
    start = len(obj.train)
    order = []
    real_accuracy, real_update = module.DPO._accuracy, module.DPO.update

    def accuracy(self, policy, rankings, ref):
        order.append(("held" if rankings is self.held else "fresh", len(self.train)))
        return real_accuracy(self, policy, rankings, ref)

    def update(self, new, *a, **kw):
        order.append(("update", len(self.train)))
        return real_update(self, new, *a, **kw)

    monkeypatch.setattr(module.DPO, "_accuracy", accuracy)
    monkeypatch.setattr(module.DPO, "update", update)
    results = list(trainer.run())
    rounds = [e for r in results for e in r.events if e["kind"] == "feedback_round"]
    assert [e["step"] for e in rounds] == [2, 4]
    # each round's rankings: K policy samples plus the blind base one, all of them trained on
    # from then on, none of them held out
    grown = len(obj.train) - start
    assert 0 < grown <= 6 and len(obj.online) == grown and len(obj.train_ref) == len(obj.train)
    assert all(len(r.responses) == trainer.cfg.rm_k + 1 for r in obj.online)
    assert all(r in obj.train and r not in obj.held for r in obj.online)
    # the fresh accuracy is the implicit reward's on the new rankings, before they are trained on
    fresh = [n for kind, n in order if kind == "fresh"]
    updates = [n for kind, n in order if kind == "update"]
    assert fresh == updates == [start, start + len(obj.online) - rounds[1]["new_rankings"]]
    metrics = {k: v for r in results for k, v in r.metrics.items()}
    assert 0 <= metrics["eval/win_rate"] <= 1 and "rm/fresh_accuracy" not in metrics
    assert "dpo/fresh_accuracy" in metrics
    assert rounds[-1]["rankings"] == len(obj.train) + len(obj.held)


@needs_base
def test_rounds_for_dpo_need_no_learned_reward_and_refuse_disagreement():
    from core.config import RunConfig, applies

    RunConfig.for_algo("dpo", feedback_every=10)   # the task's true reward watched, no model
    with pytest.raises(ValueError, match="reward_source=learned"):
        RunConfig.for_algo("grpo", feedback_every=10)
    with pytest.raises(ValueError, match="feedback_unsure.*dpo has none"):
        RunConfig.for_algo("dpo", feedback_unsure=2.0)
    assert applies("feedback_every", "dpo", "true") and applies("rm_k", "dpo", "true")
    assert not applies("feedback_every", "grpo", "true")
    assert not applies("feedback_pool", "dpo", "true")   # no members to choose groups with


@needs_base
def test_a_rankings_prompt_runs_once_for_all_its_responses_with_the_same_numbers(monkeypatch):
    """The update scores each ranking's K responses with their prompt computed once (as GRPO
    does a group's), and that changes no number beyond float rounding."""
    import core.lm.model as lm
    from core.lm.checkpoints import load_checkpoint

    trainer = _trainer()
    groups = []
    real = lm.sequence_logprobs
    monkeypatch.setattr(lm, "sequence_logprobs", lambda *a, **kw: (
        groups.append((a[1].shape[0], kw.get("group", 1))) or real(*a, **kw)))
    trainer.objective.data_loss(trainer, 0.1)
    rows, group = groups[0]
    assert group == 3 and rows == 4 * 3          # dpo_batch 4 rankings of rm_k 3, one prompt each

    policy, _ = load_checkpoint(default_checkpoint("sentiment"))
    rankings = trainer.objective.train[:5]
    prompts, texts, ranks, valid = pad_rankings(rankings)
    with torch.no_grad():
        once = sequence_logps(policy, prompts, texts, 24, group=ranks.shape[1])
        each = sequence_logps(policy, prompts, texts, 24)
    torch.testing.assert_close(once, each, rtol=1e-5, atol=1e-4)


@needs_base
def test_at_step_0_the_training_and_held_out_accuracies_read_chance():
    # the reference's log-probs were taken in other batches than the update's, so the gaps are
    # ~1e-6, not 0: a strict comparison read 0.42-0.67 here
    for seed in (0, 1, 2):
        trainer = _trainer(seed=seed)
        _, metrics = trainer.objective.data_loss(trainer, 0.1)
        assert metrics["dpo/accuracy"] == 0.5
        assert metrics["dpo/heldout_accuracy"] == 0.5


@needs_base
@pytest.mark.parametrize("blocks", [1, 0])
def test_dpo_blocks_trains_the_top_blocks_and_leaves_the_rest_as_the_base_model(blocks):
    trainer = _trainer(dpo_blocks=blocks, steps=2)
    policy = trainer.policy
    before = {name: p.detach().clone() for name, p in policy.named_parameters()}
    trainer.step()
    trainer.step()
    moved = {name for name, p in policy.named_parameters() if not torch.equal(p, before[name])}
    n = len(policy.blocks)
    top = {name for name in before if name.startswith(f"blocks.{n - 1}.")}
    if blocks:
        assert top <= moved                                     # the whole top block learns
        assert moved <= top | {"ln_f.weight", "ln_f.bias"}      # and nothing below it, nor wte
    else:
        assert "wte.weight" in moved and any(name.startswith("blocks.0.") for name in moved)


def test_a_dpo_run_saved_before_dpo_blocks_goes_on_training_the_whole_model():
    from core.config import RunConfig

    saved = RunConfig.for_algo("dpo").to_dict()
    del saved["dpo_blocks"]
    assert RunConfig.from_dict(saved, algo_defaults=False).dpo_blocks == 0
    assert RunConfig.for_algo("dpo").dpo_blocks == 1
