"""The reward-model ensemble (issue 16): its aggregate, standardisation and disagreement on
hand-sized numbers, which state the head reads, the earlier single-model layout, and the
negatives that come for free."""

import math

import numpy as np
import pytest
import torch

from core.lm.batching import encode_pairs
from core.lm.checkpoints import load_checkpoint
from core.reward_learning.negatives import garble, mangle, negative_pairs, repeat, truncate
from core.reward_learning.reward_model import RewardModel, aggregate, last_real, spread
from core.rl.trainer import default_checkpoint

needs_base = pytest.mark.skipif(not default_checkpoint("sentiment").exists(),
                                reason="assets/sentiment.safetensors missing")


@pytest.fixture(scope="module")
def base():
    torch.set_num_threads(1)
    return load_checkpoint(default_checkpoint("sentiment"))[0]


def test_aggregates_by_hand():
    # two members (rows) on two samples (columns)
    z = torch.tensor([[1.0, 0.0],
                      [3.0, 6.0]])
    # mean [2, 3]; population sd [1, 3]
    assert aggregate(z, "mean").tolist() == [2.0, 3.0]
    assert spread(z).tolist() == [1.0, 3.0]
    assert aggregate(z, "mean_minus_std", 0.5).tolist() == [1.5, 1.5]
    assert aggregate(z, "mean_minus_std", 2.0).tolist() == [0.0, -3.0]
    assert aggregate(z, "min").tolist() == [1.0, 0.0]
    # one member: its own score, no spread
    assert aggregate(z[:1], "mean_minus_std", 3.0).tolist() == [1.0, 0.0]
    with pytest.raises(ValueError, match="mean_minus_std"):
        aggregate(z, "max")


@needs_base
def test_calibration_standardises_each_member_on_base_samples_by_hand(base):
    model = RewardModel(base, members=2)
    raw = torch.tensor([[1.0, 2.0, 3.0, 4.0],
                        [0.0, 0.0, 0.0, 4.0]])
    model.raw = lambda ids, mask: raw[:, :ids.shape[0]]
    model.calibrate(["p"] * 4, ["a.", "b.", "c.", "d."], 16)
    # member 0: mean 2.5, sd sqrt(1.25); member 1: mean 1, sd sqrt(3)
    assert model.center.tolist() == pytest.approx([2.5, 1.0])
    assert model.scale.tolist() == pytest.approx([math.sqrt(1.25), math.sqrt(3.0)])
    z = model.standardized(torch.zeros(4, 3, dtype=torch.long), torch.ones(4, 3))
    assert z[0].tolist() == pytest.approx([-1.3416, -0.4472, 0.4472, 1.3416], abs=1e-4)
    assert z[1].tolist() == pytest.approx([-0.5774, -0.5774, -0.5774, 1.7321], abs=1e-4)
    # the spread of two members is half their difference: [0.382, 0.065, 0.512, 0.195]
    assert float(model.base_spread) == pytest.approx(0.2886, abs=1e-3)
    assert model.calibrated


@needs_base
def test_the_head_reads_the_last_real_token_of_each_padded_row(base):
    model = RewardModel(base, members=2)
    for m in model.members:
        torch.nn.init.normal_(m.head.weight)
    # the first completion fills max_new_tokens (no EOS): its last character is its last token
    prompts, texts = ["the film", "i thought"], ["was good and fun.", "it was dull."]
    ids, mask, _ = encode_pairs(prompts, texts, 17)
    # prompts are left-padded and completions right-padded: the last 1 of each row
    assert last_real(mask).tolist() == [max(i for i, m in enumerate(row) if m)
                                        for row in mask.tolist()]
    assert mask[0, -1] == 1 and mask[1, -1] == 0     # one row fills the width, one is padded
    x, attn, last = model.lower(ids, mask)
    for member, raw in zip(model.members, model.raw(ids, mask), strict=True):
        h = x
        for block in member.blocks:
            h = block(h, attn)
        at = member.ln_f(h[torch.arange(2), last])
        assert torch.allclose(raw, member.head(at).squeeze(-1), atol=1e-5)
    # changing only the last token of the row that has no EOS changes its score
    changed, *_ = encode_pairs(prompts, ["was good and fun!", "it was dull."], 17)
    before, after = model.raw(ids, mask), model.raw(changed, mask)
    assert not torch.allclose(before[:, 0], after[:, 0])
    assert torch.allclose(before[:, 1], after[:, 1])


@needs_base
def test_a_single_model_saved_before_ensembles_loads_as_one_member(base):
    model = RewardModel(base, frozen_blocks=2, members=1)
    torch.nn.init.normal_(model.members[0].head.weight)
    state = model.state_dict()
    legacy = {}   # the earlier layout: a whole trunk and one head
    for k, v in state.items():
        if k.startswith("members.0.blocks."):
            i, rest = k.split(".", 4)[3], k.split(".", 4)[4]
            legacy[f"trunk.blocks.{int(i) + 2}.{rest}"] = v
        elif k.startswith("members.0.head."):
            legacy[k[len("members.0."):]] = v
        elif k.startswith("members.0.ln_f."):
            legacy["trunk." + k[len("members.0."):]] = v
        elif k.startswith("trunk."):
            legacy[k] = v
    loaded = RewardModel.from_state(base, legacy)
    assert loaded.n_members == 1 and loaded.frozen_blocks == 2 and not loaded.calibrated
    ids, mask, _ = encode_pairs(["the film"], ["was good."], 16)
    assert torch.allclose(loaded.score(ids, mask), model.score(ids, mask))


@needs_base
def test_an_ensemble_round_trips_through_its_state(base):
    model = RewardModel(base, members=3, seed=4)
    model.calibrate(["the film"] * 3, ["was good.", "was dull.", "is fun."], 16)
    again = RewardModel.from_state(base, model.state_dict())
    assert again.n_members == 3 and again.frozen_blocks == model.frozen_blocks
    ids, mask, _ = encode_pairs(["the film"], ["was good."], 16)
    assert torch.equal(again.standardized(ids, mask), model.standardized(ids, mask))
    # members start apart: each head from its own draw
    heads = [m.head.weight for m in model.members]
    assert not torch.equal(heads[0], heads[1])


def test_mangles_by_kind():
    rng = np.random.default_rng(0)
    text = " was sweet and fun."
    for _ in range(20):
        g = garble(text, rng)
        assert g != text and g.endswith(".") and len(g.split()) >= len(text.split())
        r = repeat(text, rng)
        assert len(r.split()) == len(text.split()) + 1 or r.count(" and ") == 2
        t = truncate(text, rng)
        assert not t.endswith(".") and text.startswith(t)
    assert garble(" a .", rng) is None   # no word of two letters
    assert mangle("", rng) is None
    pairs = negative_pairs([("p", " was good."), ("p", "")], 2, rng)
    assert len(pairs) == 2 and all(b != w for _, b, w in pairs)


@needs_base
def test_negatives_reach_the_loss_only_when_asked(base, monkeypatch):
    """Wiring: with rm_negatives > 0 every update of every member also sees (response, mangled
    copy) pairs through a Bradley-Terry term, the response as the preferred one."""
    import core.preference as preference
    from core.reward_learning.reward_model import Ranking
    from core.reward_learning.reward_training import train_reward_model

    calls = []
    real = preference.bradley_terry_loss

    def spy(chosen, rejected):
        calls.append((chosen.shape, rejected.shape))
        return real(chosen, rejected)

    monkeypatch.setattr(preference, "bradley_terry_loss", spy)
    data = [Ranking(f"the film {i}", (" was good.", " was dull and slow."), (1, 2))
            for i in range(6)]
    # Plackett-Luce for the rankings themselves: every Bradley-Terry call is a negatives' one
    train_reward_model(base, data, "plackett_luce", 3, 1e-3, 24, members=2, negatives=0.0)
    assert calls == []
    train_reward_model(base, data, "plackett_luce", 3, 1e-3, 24, members=2, negatives=0.5)
    assert len(calls) == 3 * 2 and all(c == r == (16,) for c, r in calls)


@needs_base
def test_preference_as_reward_is_the_sigmoid_against_the_base_sample_of_each_prompt(base):
    from core.config import RunConfig
    from core.reward_learning.reward_sources import LearnedReward
    from core.tasks import get_task

    task = get_task("sentiment")
    model = RewardModel(base, members=2, seed=1)
    for m in model.members:
        torch.nn.init.normal_(m.head.weight)
    cfg = RunConfig.for_algo("grpo", reward_source="learned", max_new_tokens=16)
    gen = torch.Generator().manual_seed(3)
    source = LearnedReward(task, model, {}, [], base=base, cfg=cfg, generator=gen)
    prompts = ["the film"] * 2 + ["i thought the plot"] * 2
    texts = [" was good.", " was dull.", " was fine.", " was long."]
    ids, mask, _ = encode_pairs(prompts, texts, 16)
    state = gen.get_state()
    scored = source.score(prompts, texts, ids, mask, 2)
    gen.set_state(state)
    with torch.no_grad():
        ref = source._reference(prompts, 2)         # the same base samples, drawn again
        z = model.standardized(ids, mask)
    expected = torch.sigmoid(aggregate(z, cfg.rm_aggregate, cfg.rm_lambda)
                             - ref.repeat_interleave(2))
    assert np.allclose(scored.scores, expected.numpy(), atol=1e-5)
    assert ((scored.scores > 0) & (scored.scores < 1)).all()
    assert scored.metrics["reward/rm_mean"] == pytest.approx(
        float(aggregate(z, cfg.rm_aggregate, cfg.rm_lambda).mean()), abs=1e-5)
    assert "rm/disagreement" in scored.metrics
