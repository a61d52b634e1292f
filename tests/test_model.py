"""Tests for core/model.py: small configs on CPU, the whole file in a few seconds."""

from __future__ import annotations

import pytest
import torch

from core.model import (
    GPT,
    PAD_ID,
    GPTConfig,
    SampleOutput,
    SequenceScores,
    ValueHead,
    frozen_copy,
    sequence_logprobs,
)

V = 23  # vocabulary of the test models


def make_model(seed: int = 0, **overrides) -> GPT:
    torch.manual_seed(seed)
    cfg = dict(vocab_size=V, block_size=32, n_layer=2, n_head=2, n_embd=32)
    cfg.update(overrides)
    model = GPT(GPTConfig(**cfg))
    # GPT-2 init gives near-uniform logits; sharpen them so the checks below compare real,
    # position- and context-dependent distributions rather than ~constant ones.
    with torch.no_grad():
        for p in model.parameters():
            if p.dim() >= 2:
                p.mul_(8.0)
    return model.eval()


def left_padded(lengths: list[int], width: int, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """Random prompts (ids 1..V-1) of the given lengths, left-padded to `width` with PAD_ID."""
    g = torch.Generator().manual_seed(seed)
    ids = torch.full((len(lengths), width), PAD_ID, dtype=torch.long)
    mask = torch.zeros(len(lengths), width, dtype=torch.long)
    for i, n in enumerate(lengths):
        ids[i, width - n :] = torch.randint(1, V, (n,), generator=g)
        mask[i, width - n :] = 1
    return ids, mask


# ---------------------------------------------------------------------------------------------
# configuration


def test_config_defaults_and_round_trip():
    cfg = GPTConfig(vocab_size=50)
    assert (cfg.block_size, cfg.n_layer, cfg.n_head, cfg.n_embd, cfg.dropout) == (
        128, 4, 4, 128, 0.0
    )
    assert GPTConfig.from_dict(cfg.to_dict()) == cfg


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        (dict(vocab_size=50, n_embd=130, n_head=4), "divisible by n_head"),
        (dict(vocab_size=0), "vocab_size"),
        (dict(vocab_size=50, n_layer=0), "n_layer"),
        (dict(vocab_size=50, block_size=2.5), "block_size"),
        (dict(vocab_size=50, dropout=1.0), "dropout"),
        (dict(vocab_size=50, dropout=-0.1), "dropout"),
    ],
)
def test_config_validation(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GPTConfig(**kwargs)


def test_config_from_dict_rejects_unknown_and_missing_keys():
    with pytest.raises(ValueError, match="unknown"):
        GPTConfig.from_dict({"vocab_size": 5, "n_layers": 2})
    with pytest.raises(ValueError, match="vocab_size"):
        GPTConfig.from_dict({"n_layer": 2})


def test_default_model_size_and_tied_head():
    model = GPT(GPTConfig(vocab_size=50))
    assert 800_000 < model.num_params() < 830_000
    names = [n for n, _ in model.named_parameters()]
    assert sum("wte" in n for n in names) == 1  # the head has no matrix of its own
    x = torch.randint(0, 50, (2, 5))
    logits, hidden = model(x, return_hidden=True)
    assert logits.shape == (2, 5, 50) and hidden.shape == (2, 5, 128)


# ---------------------------------------------------------------------------------------------
# padding


def test_padding_does_not_change_real_token_logits():
    model = make_model()
    ids, mask = left_padded([9, 4, 1], width=9)
    padded = model(ids, attention_mask=mask)
    assert torch.isfinite(padded).all()  # pad queries attend to themselves: no NaN rows
    for i, n in enumerate([9, 4, 1]):
        alone = model(ids[i : i + 1, 9 - n :])  # same prompt, no padding, no mask
        torch.testing.assert_close(padded[i : i + 1, 9 - n :], alone, atol=1e-5, rtol=0)


def test_mask_of_ones_matches_no_mask():
    model = make_model()
    ids = torch.randint(1, V, (3, 7))
    torch.testing.assert_close(model(ids, torch.ones_like(ids)), model(ids))


# ---------------------------------------------------------------------------------------------
# generation


def test_cached_generation_matches_full_forward_at_every_step():
    model = make_model()
    lengths, P, T = [5, 2, 1, 3], 5, 12
    ids, mask = left_padded(lengths, width=P)
    out = model.generate(ids, mask, T, generator=torch.Generator().manual_seed(0),
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
    out = model.generate(ids, mask, 10, eos_id=eos, generator=torch.Generator().manual_seed(3))
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
    out = model.generate(ids, mask, 8, temperature=0.7, generator=torch.Generator().manual_seed(1))
    scores = sequence_logprobs(
        model, torch.cat([ids, out.tokens], 1), torch.cat([mask, out.mask], 1), 3, temperature=0.7
    )
    torch.testing.assert_close(scores.logprobs, out.logprobs, atol=1e-5, rtol=0)
    # top-k renormalises over k tokens: each log-prob is >= the untruncated one
    out_k = model.generate(ids, mask, 8, top_k=3, generator=torch.Generator().manual_seed(1))
    full = sequence_logprobs(
        model, torch.cat([ids, out_k.tokens], 1), torch.cat([mask, out_k.mask], 1), 3
    ).logprobs
    assert (out_k.logprobs >= full - 1e-6).all()


def test_top_k_1_is_greedy():
    model = make_model()
    ids, mask = left_padded([4, 2, 3], width=4)
    out = model.generate(ids, mask, 6, top_k=1, return_logits=True,
                         generator=torch.Generator().manual_seed(0))
    assert torch.equal(out.tokens, out.logits.argmax(-1))
    torch.testing.assert_close(out.logprobs, torch.zeros_like(out.logprobs))
    again = model.generate(ids, mask, 6, top_k=1, generator=torch.Generator().manual_seed(99))
    assert torch.equal(out.tokens, again.tokens)


def test_same_seed_same_samples():
    model = make_model()
    ids, mask = left_padded([4, 2, 3], width=4)
    a = model.generate(ids, mask, 10, generator=torch.Generator().manual_seed(7))
    b = model.generate(ids, mask, 10, generator=torch.Generator().manual_seed(7))
    c = model.generate(ids, mask, 10, generator=torch.Generator().manual_seed(8))
    assert torch.equal(a.tokens, b.tokens) and torch.equal(a.logprobs, b.logprobs)
    assert not torch.equal(a.tokens, c.tokens)


def test_tokens_after_eos_are_pad_and_masked():
    model = make_model()
    ids, mask = left_padded([3] * 16, width=3)
    eos = 5
    out = model.generate(ids, mask, 20, eos_id=eos, generator=torch.Generator().manual_seed(0))
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


def test_generation_stops_early_when_all_rows_finish():
    model = make_model()
    ids, mask = left_padded([2, 2], width=2)
    eos = 4
    # make EOS overwhelmingly likely: every final hidden state becomes e, and e . wte[eos] >> 0
    with torch.no_grad():
        e = torch.randn(32)
        model.ln_f.weight.zero_()
        model.ln_f.bias.copy_(e)
        model.wte.weight[eos] = 10 * e
    calls = []
    model.blocks[0].register_forward_hook(lambda *args: calls.append(1))
    out = model.generate(ids, mask, 10, eos_id=eos)
    assert (out.tokens[:, 0] == eos).all()
    assert (out.mask.sum(1) == 1).all() and (out.tokens[:, 1:] == PAD_ID).all()
    assert len(calls) == 1  # the prompt pass only: no decode step was run


def test_generate_restores_train_mode_and_makes_no_grad():
    model = make_model().train()
    ids, mask = left_padded([2], width=2)
    out = model.generate(ids, mask, 3)
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
        model.generate(ids, mask, **kwargs)


def test_generate_rejects_right_padding():
    model = make_model()
    ids = torch.randint(1, V, (2, 4))
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with pytest.raises(ValueError, match="LEFT-padded"):
        model.generate(ids, mask, 3)


# ---------------------------------------------------------------------------------------------
# scoring, value head, reference


def test_sequence_logprobs_grad_entropy_hidden_and_value_head():
    model = make_model().train()
    ids, mask = left_padded([5, 2], width=5)
    out = model.generate(ids, mask, 6, generator=torch.Generator().manual_seed(0))
    full_ids, full_mask = torch.cat([ids, out.tokens], 1), torch.cat([mask, out.mask], 1)
    logp, ent, hidden = sequence_logprobs(
        model, full_ids, full_mask, 5, return_entropy=True, return_hidden=True
    )
    assert logp.shape == ent.shape == (2, 6) and hidden.shape == (2, 6, 32)
    assert (ent >= 0).all() and (ent <= torch.log(torch.tensor(float(V))) + 1e-5).all()
    head = ValueHead(32)
    values = head(hidden)
    assert values.shape == (2, 6) and values.abs().max() < 0.5
    loss = -(logp * out.mask).sum() + (values**2).mean()
    loss.backward()
    for name, p in model.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
    assert model.wte.weight.grad.abs().sum() > 0 and head.proj.weight.grad is not None


def test_sequence_logprobs_validation():
    model = make_model()
    ids = torch.randint(1, V, (2, 6))
    with pytest.raises(ValueError, match="start"):
        sequence_logprobs(model, ids, torch.ones_like(ids), start=0)
    with pytest.raises(ValueError, match="start"):
        sequence_logprobs(model, ids, torch.ones_like(ids), start=6)
    with pytest.raises(ValueError, match="attention_mask"):
        sequence_logprobs(model, ids, torch.ones(2, 5), start=2)


def test_frozen_copy_is_independent():
    model = make_model().train()
    ref = frozen_copy(model)
    assert not ref.training and not any(p.requires_grad for p in ref.parameters())
    ids = torch.randint(1, V, (2, 6))
    before = ref(ids).clone()
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(ids).logsumexp(-1).mean().backward()
    opt.step()
    torch.testing.assert_close(ref(ids), before, atol=0, rtol=0)
    assert not torch.allclose(model(ids), before)
