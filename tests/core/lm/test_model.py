"""Tests for core/lm/model.py: small configs on CPU, the whole file in a few seconds."""

from __future__ import annotations

import pytest
import torch

from core.lm.model import (
    GPT,
    PAD_ID,
    GPTConfig,
    ValueHead,
    frozen_copy,
    sequence_logprobs,
)
from core.lm.sampling import generate

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
# scoring, value head, reference


def test_sequence_logprobs_grad_entropy_hidden_and_value_head():
    model = make_model().train()
    ids, mask = left_padded([5, 2], width=5)
    out = generate(model, ids, mask, 6, generator=torch.Generator().manual_seed(0))
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
