"""Direct alignment from rankings, without a reward model: DPO, IPO and listwise Plackett-Luce DPO.

Rafailov et al. 2023 (DPO): under the KL-regularised objective the optimal policy satisfies
r(x, y) = beta log(pi(y|x) / pi_ref(y|x)) + beta log Z(x), so a preference model over the
*implicit reward* r_hat(x, y) = beta (log pi(y|x) - log pi_ref(y|x)) can be fitted to rankings
directly, with pi_ref the base model. Z(x) cancels in every comparison of responses to one prompt.

- `sigmoid` (DPO, section 4): Bradley-Terry on the implicit rewards, -log sigma(r_w - r_l), for
  every strictly ordered pair of a ranking.
- `ipo` (Azar et al. 2023, eq. 17): (h_w - h_l - 1 / (2 beta))^2 with h = log pi/pi_ref. It keeps
  its regularisation when a preference is deterministic, as with a few rankings, where DPO's
  optimum pushes the margin to infinity.
- `plackett_luce` (DPO's appendix A.3): -log P(ranking) under Plackett-Luce with scores r_hat:
  the whole ranking of K at once. With K = 2 it is `sigmoid` exactly.

Ties (stated, and tested):
- the pairwise losses skip tied pairs: there is no preference to learn from them;
- Plackett-Luce takes a tied group as picked together from what remains (Breslow's form for tied
  events): each member of a group at rank k contributes r_i - logsumexp(r over every response
  ranked k or worse). With no ties this is Plackett-Luce exactly; for two responses tied with
  each other it is log sigma(d) + log sigma(-d), which pulls their implicit rewards together.

Everything here works on per-response *sequence* log-probabilities (sums over the response's
tokens): `sequence_logps` computes them for (prompt, response) rows. The reference's log-probs
are detached, so it never gets a gradient.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from core.tensor_utils import Tensor

LOSS_TYPES = ("sigmoid", "ipo", "plackett_luce")


def ordered_pairs(ranks: Tensor, valid: Tensor) -> tuple[Tensor, Tensor, Tensor]:
    """(row, i, j) of every strictly ordered pair, i ranked better than j (rank 1 = best), among
    valid entries of each row. ranks, valid: [N, K]."""
    better = (ranks[:, :, None] < ranks[:, None, :]) & valid[:, :, None] & valid[:, None, :]
    return better.nonzero(as_tuple=True)


def plackett_luce_ll(scores: Tensor, ranks: Tensor, valid: Tensor) -> Tensor:
    """log P(ranking) per row under Plackett-Luce, ties as Breslow's groups (module doc).
    scores, ranks, valid: [N, K]; invalid entries (padding) take no part."""
    # each i's choice set: every valid response ranked the same as i or worse
    rest = (ranks[:, None, :] >= ranks[:, :, None]) & valid[:, None, :]
    masked = scores[:, None, :].masked_fill(~rest, float("-inf"))
    lse = torch.logsumexp(masked, dim=-1)                        # [N, K]
    terms = (scores - lse).masked_fill(~valid, 0.0)
    return terms.sum(dim=-1)


def dpo_loss(logp: Tensor, logp_ref: Tensor, ranks: Tensor, valid: Tensor, beta: float,
             loss_type: str) -> tuple[Tensor, dict[str, float]]:
    """The loss over a batch of rankings, and its metrics.

    logp, logp_ref: [N, K] sequence log-probs of each ranking's responses under the policy (with
    grad) and the reference; ranks: [N, K] integers, 1 = best, ties equal; valid: [N, K] bool
    (rankings of fewer than K responses are padded). Mean over pairs (sigmoid, ipo) or over
    rankings (plackett_luce)."""
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"unknown DPO loss {loss_type!r}; expected one of "
                         f"{', '.join(LOSS_TYPES)}")
    if not beta > 0:
        raise ValueError(f"beta must be > 0, got {beta}")
    ranks, valid = ranks.to(logp.device), valid.to(logp.device).bool()
    h = logp - logp_ref.detach()                                 # log pi / pi_ref
    r = beta * h
    row, i, j = ordered_pairs(ranks, valid)
    margin = r[row, i] - r[row, j]
    if loss_type == "sigmoid":
        loss = -F.logsigmoid(margin).mean() if margin.numel() else r.sum() * 0
    elif loss_type == "ipo":
        gap = h[row, i] - h[row, j]
        loss = ((gap - 1 / (2 * beta)) ** 2).mean() if gap.numel() else r.sum() * 0
    else:
        loss = -plackett_luce_ll(r, ranks, valid).mean()
    with torch.no_grad():
        best = valid & (ranks == ranks.masked_fill(~valid, 1 << 30).min(dim=1, keepdim=True)[0])
        worst = valid & (ranks == ranks.masked_fill(~valid, -1).max(dim=1, keepdim=True)[0])
        metrics = {
            "dpo/loss": float(loss.detach()),
            "dpo/accuracy": float((margin > 0).float().mean()) if margin.numel() else
            float("nan"),
            "dpo/margin": float(margin.mean()) if margin.numel() else float("nan"),
            "dpo/reward_chosen": float(r[best].mean()),
            "dpo/reward_rejected": float(r[worst].mean()),
            "dpo/logp_chosen": float(logp[best].mean()),
            "dpo/pairs": float(margin.numel()),
        }
    return loss, metrics


def pad_rankings(rankings) -> tuple[list[str], list[str], Tensor, Tensor]:
    """(prompts, responses) flat, row-major over [N, K], and ranks / valid [N, K] for a list of
    rankings (core.rankings' Ranking or anything with prompt, responses, ranks); shorter
    rankings are padded with an empty response that is not valid."""
    k = max(len(r.responses) for r in rankings)
    prompts, texts = [], []
    ranks = torch.zeros((len(rankings), k), dtype=torch.long)
    valid = torch.zeros((len(rankings), k), dtype=torch.bool)
    for n, ranking in enumerate(rankings):
        for m in range(k):
            prompts.append(ranking.prompt)
            texts.append(ranking.responses[m] if m < len(ranking.responses) else "")
            if m < len(ranking.responses):
                ranks[n, m] = int(ranking.ranks[m])
                valid[n, m] = True
    return prompts, texts, ranks, valid


def sequence_logps(model, prompts: list[str], texts: list[str], max_new_tokens: int,
                   temperature: float = 1.0) -> Tensor:
    """log pi(response | prompt) per row: the sum over the response's tokens (EOS included
    unless it was cut at max_new_tokens), with grad when the model has it."""
    from core.batching import encode_pairs
    from core.model import sequence_logprobs

    device = next(model.parameters()).device
    ids, mask, start = encode_pairs(prompts, texts, max_new_tokens, device)
    logp = sequence_logprobs(model, ids, mask, start, temperature=temperature).logprobs
    return (logp * mask[:, start:]).sum(dim=-1)
