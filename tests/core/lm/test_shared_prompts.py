"""The grouped passes (core/lm/shared_prompts.py) against the full forward pass."""

from __future__ import annotations

import pytest
import torch
from test_model import V, left_padded, make_model

from core.lm.model import sequence_logprobs
from core.lm.sampling import generate
from core.lm.shared_prompts import completion_states


def grouped_batch(lengths, G, T=7, seed=0):
    """Prompts of the given lengths, each repeated G times, with sampled (EOS-ended) tails."""
    model = make_model(seed)
    ids, mask = left_padded(lengths, width=max(lengths))
    ids, mask = ids.repeat_interleave(G, 0), mask.repeat_interleave(G, 0)
    out = generate(model, ids, mask, T, eos_id=3, generator=torch.Generator().manual_seed(seed))
    assert out.mask.sum(1).min() < T   # some completions ended early: padding on the right too
    return model, torch.cat([ids, out.tokens], 1), torch.cat([mask, out.mask], 1), ids.shape[1]


@pytest.mark.parametrize("G", [2, 4])
def test_grouped_states_equal_the_full_pass(G):
    model, ids, mask, P = grouped_batch([5, 2, 1, 4], G)
    full = model.hidden_states(ids, mask)[:, P - 1 : -1]
    torch.testing.assert_close(completion_states(model, ids, mask, P, G), full, atol=1e-5,
                               rtol=0)


def test_grouped_scores_and_gradients_equal_the_full_pass():
    model, ids, mask, P = grouped_batch([3, 6, 2], 4, seed=1)
    model.train()
    comp = mask[:, P:]
    grads = []
    for group in (1, 4):
        model.zero_grad()
        logp, ent, hidden = sequence_logprobs(model, ids, mask, P, return_entropy=True,
                                              return_hidden=True, group=group)
        ((logp * comp).sum() + (ent * comp).sum() + hidden.sum()).backward()
        grads.append((logp.detach(), ent.detach(),
                      [p.grad.clone() for p in model.parameters()]))
    (lp1, e1, g1), (lp4, e4, g4) = grads
    torch.testing.assert_close(lp4, lp1, atol=1e-5, rtol=0)
    torch.testing.assert_close(e4, e1, atol=1e-5, rtol=0)
    for a, b in zip(g4, g1, strict=True):
        torch.testing.assert_close(a, b, atol=1e-4, rtol=1e-4)


def test_rows_that_do_not_share_a_prompt_are_refused():
    model, ids, mask, P = grouped_batch([3, 6], 2)
    ids = ids.clone()
    ids[1, P - 1] = (ids[1, P - 1] % (V - 1)) + 1   # the second row of group 0 differs
    with pytest.raises(ValueError, match="share their prompt"):
        completion_states(model, ids, mask, P, 2)
    with pytest.raises(ValueError, match="groups of 3"):
        completion_states(model, ids, mask, P, 3)
