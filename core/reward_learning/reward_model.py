"""r_theta(x, y): a GPT trunk with a scalar head, trained from rankings (the lecture's second way
to turn preferences into a reward); here an ensemble of members over one frozen lower trunk.

The trunk starts as a copy of the base model (it already reads the task's language); the head reads
the hidden state of the last real token. `Ranking` is the training data's form: K completions of
a prompt ranked by a person, the simulated annotator or an import (K may differ between
rankings). Training, its data and its accuracy are in `core.reward_learning.reward_training`.
"""

from __future__ import annotations

import copy
import logging
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from core.lm.batching import encode_pairs
from core.lm.model import GPT

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Ranking:
    prompt: str
    responses: tuple[str, ...]
    ranks: tuple[int, ...]        # 1 = best, as the annotator gave them
    true: tuple[float, ...] = ()  # hidden true rewards, for evaluation only (may be unknown)

    def to_json(self) -> dict:
        """The listwise preference form (prompt, responses, ranks)."""
        return {"prompt": self.prompt, "responses": list(self.responses),
                "ranks": list(self.ranks)}


class Member(nn.Module):
    """One member of the ensemble, above the shared frozen trunk: its own copy of the base
    model's upper blocks and final LayerNorm, and a scalar head of its own initialisation."""

    def __init__(self, base: GPT, frozen_blocks: int, generator: torch.Generator):
        super().__init__()
        self.blocks = nn.ModuleList(copy.deepcopy(b) for b in list(base.blocks)[frozen_blocks:])
        self.ln_f = copy.deepcopy(base.ln_f)
        self.head = nn.Linear(base.config.n_embd, 1)
        # Small, so every member starts near 0; each from its own draw, so members start apart.
        nn.init.normal_(self.head.weight, std=1e-3, generator=generator)
        nn.init.zeros_(self.head.bias)

    def forward(self, x: torch.Tensor, attn_mask, last: torch.Tensor) -> torch.Tensor:
        """The lower trunk's states [B, L, C] -> raw scores [B] read at each row's `last`."""
        rows = torch.arange(x.shape[0], device=x.device)
        if not len(self.blocks):
            return self.head(self.ln_f(x[rows, last])).squeeze(-1)
        for block in self.blocks[:-1]:
            x = block(x, attn_mask)
        h = _block_at(self.blocks[-1], x, attn_mask, rows, last)
        return self.head(self.ln_f(h)).squeeze(-1)


def _block_at(block, x: torch.Tensor, attn_mask, rows: torch.Tensor,
              last: torch.Tensor) -> torch.Tensor:
    """`block`'s output at one position per row, [B, L, C] -> [B, C]: the head reads one state,
    so the top block needs its query, attention and MLP there alone (keys and values everywhere).
    The same numbers as block(x)[rows, last], at a fraction of the cost for every member."""
    B, T, C = x.shape
    attn = block.attn
    h = block.ln_1(x)
    w, b = attn.c_attn.weight, attn.c_attn.bias
    k, v = F.linear(h, w[C:], b[C:]).split(C, dim=2)
    q = F.linear(h[rows, last], w[:C], b[:C])
    H, hd = attn.n_head, attn.head_dim
    q = q.view(B, H, 1, hd)
    k = k.view(B, T, H, hd).transpose(1, 2)
    v = v.view(B, T, H, hd).transpose(1, 2)
    # the query row of each `last` in the blocks' mask; with no mask (no padding) the last
    # position sees every key
    mask = None if attn_mask is None else attn_mask[rows, :, last].unsqueeze(2)
    y = F.scaled_dot_product_attention(q, k, v, attn_mask=mask).reshape(B, C)
    out = x[rows, last] + attn.c_proj(y)
    return out + block.mlp(block.ln_2(out))


AGGREGATES = ("mean_minus_std", "min", "mean")


def aggregate(z: torch.Tensor, kind: str, lam: float = 1.0) -> torch.Tensor:
    """Members' standardised scores [M, B] -> one reward [B]: the mean less lam times the
    members' spread (Coste et al. 2024's uncertainty-weighted form, with the standard deviation),
    the worst member's, or the plain mean. The spread is the population one, so one member
    gives its own score."""
    if kind == "mean":
        return z.mean(0)
    if kind == "mean_minus_std":
        return z.mean(0) - lam * z.std(0, correction=0)
    if kind == "min":
        return z.min(0).values
    raise ValueError(f"unknown aggregate {kind!r}; expected one of {', '.join(AGGREGATES)}")


def spread(z: torch.Tensor) -> torch.Tensor:
    """The members' disagreement on each sample: the standard deviation over members of their
    standardised scores, [M, B] -> [B]."""
    return z.std(0, correction=0)


class RewardModel(nn.Module):
    """An ensemble of `members` reward models sharing one frozen lower trunk.

    Each member is the base model's upper blocks with a head (`Member`); the embeddings and the
    lower `frozen_blocks` blocks are the base model's, frozen and run once for every member.
    After training, `calibrate` standardises each member on base-model samples (mean 0, sd 1
    there), so members are comparable, the base model scores 0 on average, and the members'
    spread on base samples (`base_spread`) is the yardstick for their spread on a policy's.
    One member is the single reward model of earlier versions."""

    def __init__(self, base: GPT, frozen_blocks: int | None = None, members: int = 1,
                 seed: int = 0):
        """frozen_blocks: the lower blocks (and the embeddings) training leaves as the base model
        had them; default all but the top one. Measured for one model on sentiment, 150 updates,
        2 seeds, agreement with the true reward on 200 fresh groups: all trained 0.65 / 0.73 at
        30 / 100 rankings in 22 s; lower 2 of 4 frozen 0.68 / 0.73 in 15 s; 3 frozen 0.66 / 0.71
        in 11 s; all 4 frozen (the head alone) 0.55 / 0.59. The lower layers already read the
        language and the rankings are too few to improve them. With the frozen trunk's states
        cached and the top block run at the head's token alone, 5 members on one block each
        train in 8.4 s where one model on two blocks took 10.5 s before (30 rankings, 2 cores):
        the top block is what members can afford to own."""
        super().__init__()
        if members < 1:
            raise ValueError(f"a reward model needs at least one member, got {members}")
        n = base.config.n_layer
        self.frozen_blocks = n - 1 if frozen_blocks is None else max(0, min(frozen_blocks, n))
        self.trunk = copy.deepcopy(base)
        self.trunk.blocks = nn.ModuleList(list(self.trunk.blocks)[:self.frozen_blocks])
        self.trunk.requires_grad_(False)
        generator = torch.Generator().manual_seed(seed)
        self.members = nn.ModuleList(Member(base, self.frozen_blocks, generator)
                                     for _ in range(members))
        # Standardisation on base-model samples (`calibrate`); identity until then.
        self.register_buffer("center", torch.zeros(members))
        self.register_buffer("scale", torch.ones(members))
        self.register_buffer("base_spread", torch.tensor(float("nan")))

    @property
    def n_members(self) -> int:
        return len(self.members)

    @property
    def calibrated(self) -> bool:
        return bool(torch.isfinite(self.base_spread))

    def lower(self, input_ids: torch.Tensor, attention_mask: torch.Tensor):
        """(the frozen trunk's states [B, L, C], the blocks' attention mask, each row's last
        real token [B]): what every member reads."""
        x, attn_mask = self.trunk.embed(input_ids, attention_mask)
        for block in self.trunk.blocks:
            x = block(x, attn_mask)
        return x, attn_mask, last_real(attention_mask)

    def raw(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, L] -> each member's raw score [M, B], read at each row's last real token."""
        x, attn_mask, last = self.lower(input_ids, attention_mask)
        return torch.stack([m(x, attn_mask, last) for m in self.members])

    def standardized(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """[B, L] -> each member's score [M, B] on the base-sample scale (`calibrate`)."""
        return (self.raw(input_ids, attention_mask) - self.center[:, None]) / self.scale[:, None]

    def score(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
              kind: str = "mean", lam: float = 1.0) -> torch.Tensor:
        """[B, L] -> [B]: the members' standardised scores combined (`aggregate`)."""
        return aggregate(self.standardized(input_ids, attention_mask), kind, lam)

    @torch.no_grad()
    def calibrate(self, prompts: list[str], texts: list[str], max_new_tokens: int) -> None:
        """Standardise each member on these base-model samples, and record the members' mean
        spread on them (`base_spread`)."""
        raw = torch.cat([self.raw(*encode_pairs(prompts[s:s + 64], texts[s:s + 64],
                                                max_new_tokens, self.center.device)[:2])
                         for s in range(0, len(prompts), 64)], dim=1)
        self.center.copy_(raw.mean(1))
        self.scale.copy_(raw.std(1, correction=0).clamp_min(1e-6))
        z = (raw - self.center[:, None]) / self.scale[:, None]
        self.base_spread.fill_(float(spread(z).mean()))

    def trainable(self) -> list[nn.Parameter]:
        """What training updates: the members (the trunk below them stays the base model's)."""
        return list(self.members.parameters())

    @classmethod
    def from_state(cls, base: GPT, state: dict[str, torch.Tensor]) -> RewardModel:
        """A model shaped like `state` (members and frozen blocks read from its keys), loaded.
        A single model saved before ensembles (trunk blocks, `head.*`) loads as one member."""
        n = base.config.n_layer
        if "head.weight" in state:   # the earlier layout: a whole trunk and one head
            frozen = n // 2
            state = _from_single(state, frozen, n)
        else:
            frozen = len({k.split(".")[2] for k in state if k.startswith("trunk.blocks.")})
        members = len({k.split(".")[1] for k in state if k.startswith("members.")})
        model = cls(base, frozen_blocks=frozen, members=members)
        model.load_state_dict(state, strict=True)
        return model


def _from_single(state: dict, frozen: int, n: int) -> dict:
    """A one-head model's state in the ensemble's layout (one member, uncalibrated)."""
    out = {}
    for k, v in state.items():
        if k.startswith("trunk.blocks."):
            i = int(k.split(".")[2])
            rest = k.split(".", 3)[3]
            out[f"trunk.blocks.{i}.{rest}" if i < frozen
                else f"members.0.blocks.{i - frozen}.{rest}"] = v
        elif k.startswith("trunk.ln_f."):
            out[k] = v
            out["members.0." + k[len("trunk."):]] = v
        elif k.startswith("head."):
            out["members.0." + k] = v
        else:
            out[k] = v
    out["center"], out["scale"] = torch.zeros(1), torch.ones(1)
    out["base_spread"] = torch.tensor(float("nan"))
    return out


def last_real(attention_mask: torch.Tensor) -> torch.Tensor:
    """Index of each row's last real token [B]: the head reads the state there (the EOS of a
    finished completion, the last character of one cut off at max_new_tokens)."""
    L = attention_mask.shape[1]
    return L - 1 - torch.argmax((attention_mask != 0).flip(1).to(torch.uint8), dim=1)
