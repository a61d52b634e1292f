"""Tests for core/lm/sampling.py: the decode loop against full forward passes, on small CPU
models."""

from __future__ import annotations

import pytest
import torch
from test_model import V, left_padded, make_model

import core.lm.sampling as sampling
from core.lm.model import PAD_ID, SequenceScores, sequence_logprobs
from core.lm.sampling import SampleOutput, generate

# ---------------------------------------------------------------------------------------------
# generation


def spy_on_loop(monkeypatch) -> list[int]:
    """The number of tokens each decode loop sampled (it runs the model once fewer times)."""
    steps = []
    run = sampling._run_loop

    def spy(*args):
        out = run(*args)
        steps.append(out[2])
        return out

    monkeypatch.setattr(sampling, "_run_loop", spy)
    return steps


def test_cached_generation_matches_full_forward_at_every_step():
    model = make_model()
    lengths, P, T = [5, 2, 1, 3], 5, 12
    ids, mask = left_padded(lengths, width=P)
    out = generate(model, ids, mask, T, generator=torch.Generator().manual_seed(0),
                         return_logits=True)
    assert out.logits is not None and out.logits.shape == (4, T, V)
    full_ids = torch.cat([ids, out.tokens], dim=1)
    full_mask = torch.cat([mask, torch.ones_like(out.tokens)], dim=1)
    full = model(full_ids, attention_mask=full_mask)  # position P-1+t predicts token t
    torch.testing.assert_close(out.logits, full[:, P - 1 : P - 1 + T], atol=1e-5, rtol=0)
    # and each row equals the unpadded prompt run on its own
    for i, n in enumerate(lengths):
        alone = model(torch.cat([ids[i, P - n :], out.tokens[i]])[None])
        torch.testing.assert_close(out.logits[i], alone[0, n - 1 : n - 1 + T], atol=1e-5, rtol=0)


def test_generate_logprobs_equal_sequence_logprobs():
    model = make_model()
    ids, mask = left_padded([6, 3, 1, 4], width=6)
    eos = 3
    out = generate(model, ids, mask, 10, eos_id=eos, generator=torch.Generator().manual_seed(3))
    scores = sequence_logprobs(
        model, torch.cat([ids, out.tokens], 1), torch.cat([mask, out.mask], 1), start=6
    )
    assert isinstance(scores, SequenceScores) and scores.entropy is None and scores.hidden is None
    m = out.mask.bool()
    assert m.sum() > 4
    torch.testing.assert_close(scores.logprobs[m], out.logprobs[m], atol=1e-5, rtol=0)


def test_logprobs_follow_temperature_and_top_k():
    model = make_model()
    ids, mask = left_padded([3, 2], width=3)
    out = generate(model, ids, mask, 8, temperature=0.7, generator=torch.Generator().manual_seed(1))
    scores = sequence_logprobs(
        model, torch.cat([ids, out.tokens], 1), torch.cat([mask, out.mask], 1), 3, temperature=0.7
    )
    torch.testing.assert_close(scores.logprobs, out.logprobs, atol=1e-5, rtol=0)
    # top-k renormalises over k tokens: each log-prob is >= the untruncated one
    out_k = generate(model, ids, mask, 8, top_k=3, generator=torch.Generator().manual_seed(1))
    full = sequence_logprobs(
        model, torch.cat([ids, out_k.tokens], 1), torch.cat([mask, out_k.mask], 1), 3
    ).logprobs
    assert (out_k.logprobs >= full - 1e-6).all()


def test_top_k_1_is_greedy():
    model = make_model()
    ids, mask = left_padded([4, 2, 3], width=4)
    out = generate(model, ids, mask, 6, top_k=1, return_logits=True,
                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.tokens, out.logits.argmax(-1))
    torch.testing.assert_close(out.logprobs, torch.zeros_like(out.logprobs))
    again = generate(model, ids, mask, 6, top_k=1, generator=torch.Generator().manual_seed(99))
    assert torch.equal(out.tokens, again.tokens)


def test_same_seed_same_samples():
    model = make_model()
    ids, mask = left_padded([4, 2, 3], width=4)
    a = generate(model, ids, mask, 10, generator=torch.Generator().manual_seed(7))
    b = generate(model, ids, mask, 10, generator=torch.Generator().manual_seed(7))
    c = generate(model, ids, mask, 10, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.logprobs, b.logprobs)
    assert not torch.equal(a.tokens, c.tokens)


def test_tokens_after_eos_are_pad_and_masked():
    model = make_model()
    ids, mask = left_padded([3] * 16, width=3)
    eos = 5
    out = generate(model, ids, mask, 20, eos_id=eos, generator=torch.Generator().manual_seed(0))
    assert isinstance(out, SampleOutput)
    n_eos = 0
    for row in range(16):
        toks, m = out.tokens[row], out.mask[row]
        hits = (toks == eos).nonzero().flatten()
        if len(hits) == 0:
            assert m.all()
            continue
        n_eos += 1
        first = int(hits[0])
        assert m[: first + 1].all() and not m[first + 1 :].any()  # EOS itself is real
        assert (toks[first + 1 :] == PAD_ID).all() and (out.logprobs[row, first + 1 :] == 0).all()
        assert out.lengths[row] == first + 1
    assert n_eos > 0  # the test exercised EOS


def test_generation_stops_early_when_all_rows_finish(monkeypatch):
    model = make_model()
    ids, mask = left_padded([2, 2], width=2)
    eos = 4
    # make EOS overwhelmingly likely: every final hidden state becomes e, and e . wte[eos] >> 0
    with torch.no_grad():
        e = torch.randn(32)
        model.ln_f.weight.zero_()
        model.ln_f.bias.copy_(e)
        model.wte.weight[eos] = 10 * e
    loops = spy_on_loop(monkeypatch)
    out = generate(model, ids, mask, 10, eos_id=eos)
    assert (out.tokens[:, 0] == eos).all()
    assert (out.mask.sum(1) == 1).all() and (out.tokens[:, 1:] == PAD_ID).all()
    assert loops == [1]  # one token sampled from the prompt pass, no decode step run


def test_generate_restores_train_mode_and_makes_no_grad():
    model = make_model().train()
    ids, mask = left_padded([2], width=2)
    out = generate(model, ids, mask, 3)
    assert model.training and not out.logprobs.requires_grad


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(max_new_tokens=30), "block_size"),
        (dict(max_new_tokens=3, temperature=0.0), "temperature"),
        (dict(max_new_tokens=3, top_k=0), "top_k"),
        (dict(max_new_tokens=0), "max_new_tokens"),
    ],
)
def test_generate_validation(kwargs, match):
    model = make_model()
    ids, mask = left_padded([2, 3], width=3)
    with pytest.raises(ValueError, match=match):
        generate(model, ids, mask, **kwargs)


def test_generate_rejects_right_padding():
    model = make_model()
    ids = torch.randint(1, V, (2, 4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        generate(model, ids, mask, 3)




# ---------------------------------------------------------------------------------------------
# min_new_tokens: the EOS ban


def eos_loving_model(eos: int, strength: float = 10.0):
    """A model that prefers EOS as the next token (all but certainly at the default strength)."""
    model = make_model()
    with torch.no_grad():
        e = torch.randn(32)
        model.ln_f.weight.zero_()
        model.ln_f.bias.copy_(e)
        model.wte.weight[eos] = strength * e
    return model


@pytest.mark.parametrize("top_k", [None, 3])
def test_min_new_tokens_bans_eos_until_then(top_k):
    eos = 4
    model = eos_loving_model(eos)
    ids, mask = left_padded([2, 3, 1], width=3)
    out = generate(model, ids, mask, 8, eos_id=eos, min_new_tokens=5, top_k=top_k,
                   generator=torch.Generator().manual_seed(0))
    assert (out.tokens[:, :5] != eos).all()
    assert (out.tokens[:, 5] == eos).all()  # allowed from token 6 on, and it is all but certain
    assert (out.lengths == 6).all() and (out.tokens[:, 6:] == PAD_ID).all()
    free = generate(model, ids, mask, 8, eos_id=eos, top_k=top_k)
    assert (free.lengths == 1).all()  # without the ban every row ends at once


def test_min_new_tokens_records_the_policys_logprobs():
    """The ban constrains the sampler, not the policy: without top-k the recorded log-prob is
    what the training pass recomputes (so GRPO's first ratio is exactly 1)."""
    eos = 4
    model = make_model()
    ids, mask = left_padded([3, 2, 4, 1], width=4)
    out = generate(model, ids, mask, 10, eos_id=eos, min_new_tokens=10,
                   generator=torch.Generator().manual_seed(2))
    assert (out.lengths == 10).all() and (out.tokens != eos).all()
    scores = sequence_logprobs(model, torch.cat([ids, out.tokens], 1),
                               torch.cat([mask, out.mask], 1), start=4)
    torch.testing.assert_close(scores.logprobs, out.logprobs, atol=1e-5, rtol=0)


def test_min_equal_max_gives_every_row_full_length():
    model = eos_loving_model(4)
    ids, mask = left_padded([2, 2, 2, 2], width=2)
    out = generate(model, ids, mask, 6, eos_id=4, min_new_tokens=6)
    assert out.mask.all() and out.tokens.shape == (4, 6)


@pytest.mark.parametrize(("kwargs", "match"), [
    (dict(max_new_tokens=3, min_new_tokens=4), "min_new_tokens"),
    (dict(max_new_tokens=3, min_new_tokens=-1), "min_new_tokens"),
])
def test_min_new_tokens_validation(kwargs, match):
    model = make_model()
    ids, mask = left_padded([2, 3], width=3)
    with pytest.raises(ValueError, match=match):
        generate(model, ids, mask, **kwargs)


def test_trimmed_drops_only_columns_no_row_reached(monkeypatch):
    """Rows end at different steps; the loop runs until the last one ends, and `trimmed` keeps
    exactly the columns up to it."""
    eos = 4
    model = eos_loving_model(eos, strength=0.1)   # EOS likely, not certain: rows end apart
    loops = spy_on_loop(monkeypatch)
    ids, mask = left_padded([3] * 16, width=3)
    out = generate(model, ids, mask, 20, eos_id=eos, generator=torch.Generator().manual_seed(0))
    width = int(out.lengths.max())
    assert 1 < len(set(out.lengths.tolist())) and width < 20   # the case under test
    assert loops == [width]   # it stopped when the last row ended, not before or after
    short = out.trimmed()
    assert short.tokens.shape == (16, width) and torch.equal(short.lengths, out.lengths)
    assert torch.equal(short.tokens, out.tokens[:, :width]) and not out.mask[:, width:].any()
    full = generate(model, ids, mask, 20, generator=torch.Generator().manual_seed(0))
    assert full.trimmed() is full


def test_returned_hidden_states_are_the_training_pass_s():
    """PPO's critic reads V(s_t) from these at rollout time instead of running the policy again."""
    model = make_model()
    ids, mask = left_padded([4, 1, 3], width=4)
    out = generate(model, ids, mask, 9, eos_id=3, return_hidden=True,
                   generator=torch.Generator().manual_seed(4))
    scores = sequence_logprobs(model, torch.cat([ids, out.tokens], 1),
                               torch.cat([mask, out.mask], 1), 4, return_hidden=True)
    real = out.mask.bool()
    assert out.hidden.shape == (3, 9, 32) and real.sum() > 6
    torch.testing.assert_close(out.hidden[real], scores.hidden[real], atol=1e-5, rtol=0)
    assert generate(model, ids, mask, 9).hidden is None


def test_the_ban_comes_before_top_k():
    """Greedy (top_k=1) on a model that all but insists on EOS: with the ban applied first the
    best other token is drawn, with finite log-probs; applied after, no token would be left."""
    eos = 4
    model = eos_loving_model(eos)
    ids, mask = left_padded([2, 3], width=3)
    out = generate(model, ids, mask, 5, eos_id=eos, min_new_tokens=3, top_k=1)
    assert (out.tokens[:, :3] != eos).all() and (out.tokens[:, 3] == eos).all()
    assert torch.isfinite(out.logprobs).all()


@pytest.mark.skipif(not hasattr(torch.jit, "script"), reason="a torch without TorchScript")
def test_the_decode_loop_is_scripted():
    """The eager fallback gives the same numbers, so only this notices the GIL-free loop (what
    keeps the window from slowing sampling) going away."""
    assert isinstance(sampling._kernel(), torch.jit.ScriptFunction)
