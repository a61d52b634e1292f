"""The small character-level GPT the lab trains with RLHF, in the spirit of nanoGPT: one file.

What lives here:

* `GPTConfig` / `GPT`: a GPT-2 style decoder (learned positions, pre-LayerNorm blocks, tied head)
  that understands LEFT-PADDED batches: pass `attention_mask` (1 = real token) and padding neither
  shifts the positions of real tokens nor is ever attended to.
* `CausalSelfAttention` takes an optional preallocated KV cache; the decode loop that uses it
  (sampling a batch token by token) lives in core/lm/sampling.py.
* `sequence_logprobs`: the training-time scorer (with grad): log pi(token | prefix) for the
  completion part of `cat(prompt, completion)`, plus entropy and hidden states on request.
* `ValueHead` (the PPO critic on top of the hidden states) and `frozen_copy` (the reference policy).

Checkpoint I/O and device resolution live in core/lm/checkpoints.py.

Padding conventions used throughout: prompts are left-padded (real tokens at the right end, so every
row's next token goes in the same column), completions are right-padded with `PAD_ID` after EOS.
"""

from __future__ import annotations

import copy
import math
from dataclasses import asdict, dataclass, fields
from typing import Any, NamedTuple

import torch
import torch.nn as nn
import torch.nn.functional as F

from core.lm.masks import as_token_mask, position_ids, query_key_mask
from core.lm.shared_prompts import completion_states

Tensor = torch.Tensor

# Token id written after a row has emitted EOS. The mask, not this id, is what says "not real";
# 0 is the tokenizer's pad/unused slot by convention.
PAD_ID = 0


# --------------------------------------------------------------------------------------------------
# Configuration
# --------------------------------------------------------------------------------------------------


@dataclass
class GPTConfig:
    """Shape of the network. Defaults are sized for live RLHF on a 2-core laptop CPU."""

    # Number of distinct tokens; character-level vocabularies are ~50-100, so it has no default.
    vocab_size: int
    # Longest prompt + completion the model can see. 128 characters hold a short prompt plus a
    # ~48-character completion with room to spare; attention cost grows with its square.
    block_size: int = 128
    # 4 layers x 128 wide (~0.8M parameters): enough to write corpus-like sentences after a few
    # minutes of pretraining, small enough that a 64 x 48-token RL step takes ~0.2 s on 2 cores.
    n_layer: int = 4
    # 4 heads of 32 dims: enough heads to track a few patterns, each still wide enough to matter.
    n_head: int = 4
    n_embd: int = 128
    # 0 because RL compares log-probs of the same tokens computed at different times (sampling,
    # the PPO "old" policy, the update, the reference model). With dropout on, each of those calls
    # would draw a different random sub-network, so ratio = exp(logp_new - logp_old) would be noisy
    # even before any update and the KL to the reference would be biased. Tiny models trained on
    # small corpora for minutes barely overfit anyway.
    dropout: float = 0.0

    def __post_init__(self) -> None:
        for name in ("vocab_size", "block_size", "n_layer", "n_head", "n_embd"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int):
                raise ValueError(f"GPTConfig.{name} must be an int, got {value!r}")
            if value < 1:
                raise ValueError(f"GPTConfig.{name} must be >= 1, got {value}")
        if self.vocab_size < 2:
            raise ValueError(
                f"GPTConfig.vocab_size must be >= 2 (a pad/EOS id plus at least one symbol), "
                f"got {self.vocab_size}"
            )
        if self.n_embd % self.n_head != 0:
            lower = self.n_embd - self.n_embd % self.n_head
            raise ValueError(
                f"GPTConfig.n_embd ({self.n_embd}) must be divisible by n_head ({self.n_head}) so "
                f"each head gets n_embd / n_head dims; use n_embd={lower or self.n_head} or "
                f"{lower + self.n_head}, or an n_head that divides {self.n_embd}"
            )
        if isinstance(self.dropout, bool) or not isinstance(self.dropout, int | float):
            raise ValueError(f"GPTConfig.dropout must be a number, got {self.dropout!r}")
        if not 0.0 <= float(self.dropout) < 1.0:
            raise ValueError(
                f"GPTConfig.dropout must be in [0, 1), got {self.dropout}; use 0.0 for RL"
            )
        self.dropout = float(self.dropout)

    @property
    def head_dim(self) -> int:
        return self.n_embd // self.n_head

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GPTConfig:
        """Inverse of `to_dict`. Unknown keys are an error (a typo must not be silently ignored)."""
        if not isinstance(data, dict):
            raise ValueError(f"GPTConfig.from_dict needs a dict, got {type(data).__name__}")
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown GPTConfig keys {unknown}; expected a subset of {sorted(known)}"
            )
        if "vocab_size" not in data:
            raise ValueError("GPTConfig needs vocab_size (the tokenizer's vocabulary size)")
        return cls(**data)


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------


class CausalSelfAttention(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.n_head = config.n_head
        self.head_dim = config.head_dim
        self.dropout = config.dropout
        self.c_attn = nn.Linear(config.n_embd, 3 * config.n_embd)  # q, k, v in one matmul
        self.c_proj = nn.Linear(config.n_embd, config.n_embd)  # residual projection
        self.resid_dropout = nn.Dropout(config.dropout)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cache: tuple[Tensor, Tensor] | None = None,
        cache_pos: int = 0,
    ) -> Tensor:
        """x [B,T,C] -> [B,T,C].

        attn_mask: None for a plain causal model, else a boolean [B,1,T,S] (True = may attend)
        that already combines causality and key padding. cache: preallocated (K, V), each
        [B,H,S_max,hd]; this call's keys/values are written at cache_pos..cache_pos+T-1 and the
        queries attend to everything cached up to there (then attn_mask is required).
        """
        B, T, C = x.shape
        q, k, v = self.c_attn(x).split(C, dim=2)
        q = q.view(B, T, self.n_head, self.head_dim).transpose(1, 2)  # [B,H,T,hd]
        k = k.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        v = v.view(B, T, self.n_head, self.head_dim).transpose(1, 2)
        if cache is not None:
            if attn_mask is None:
                # SDPA's is_causal aligns top-left, which is wrong once the keys include a cache.
                raise ValueError("a KV cache needs an explicit attn_mask")
            k_cache, v_cache = cache
            end = cache_pos + T
            k_cache[:, :, cache_pos:end] = k
            v_cache[:, :, cache_pos:end] = v
            k, v = k_cache[:, :, :end], v_cache[:, :, :end]
        dropout_p = self.dropout if self.training else 0.0
        if attn_mask is None:
            y = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout_p, is_causal=True)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=dropout_p)
        y = y.transpose(1, 2).contiguous().view(B, T, C)
        return self.resid_dropout(self.c_proj(y))


class MLP(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.c_fc = nn.Linear(config.n_embd, 4 * config.n_embd)  # GPT-2's 4x expansion
        self.gelu = nn.GELU()
        self.c_proj = nn.Linear(4 * config.n_embd, config.n_embd)  # residual projection
        self.dropout = nn.Dropout(config.dropout)

    def forward(self, x: Tensor) -> Tensor:
        return self.dropout(self.c_proj(self.gelu(self.c_fc(x))))


class Block(nn.Module):
    """Pre-LN transformer block: x + attn(ln(x)), then x + mlp(ln(x))."""

    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        self.ln_1 = nn.LayerNorm(config.n_embd)
        self.attn = CausalSelfAttention(config)
        self.ln_2 = nn.LayerNorm(config.n_embd)
        self.mlp = MLP(config)

    def forward(
        self,
        x: Tensor,
        attn_mask: Tensor | None = None,
        cache: tuple[Tensor, Tensor] | None = None,
        cache_pos: int = 0,
    ) -> Tensor:
        x = x + self.attn(self.ln_1(x), attn_mask, cache, cache_pos)
        return x + self.mlp(self.ln_2(x))


class SequenceScores(NamedTuple):
    """Result of `sequence_logprobs`; unpacks as (logprobs, entropy, hidden)."""

    logprobs: Tensor  # [B, L-start]
    entropy: Tensor | None  # [B, L-start] when asked for, else None
    hidden: Tensor | None  # [B, L-start, C] when asked for, else None


# --------------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------------


class GPT(nn.Module):
    def __init__(self, config: GPTConfig) -> None:
        super().__init__()
        if not isinstance(config, GPTConfig):
            raise ValueError(f"GPT needs a GPTConfig, got {type(config).__name__}")
        self.config = config
        self.wte = nn.Embedding(config.vocab_size, config.n_embd)  # token embedding (= head)
        self.wpe = nn.Embedding(config.block_size, config.n_embd)  # learned positions
        self.drop = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(Block(config) for _ in range(config.n_layer))
        self.ln_f = nn.LayerNorm(config.n_embd)
        # The output head is tied to the token embedding: logits = h @ wte.weight^T (see `head`).
        # With only one Parameter there is nothing to re-tie after a copy or a load, and the
        # checkpoint stores the matrix once.
        self.apply(self._init_weights)
        # GPT-2: each residual projection adds to a stream that grows with depth (2 per block), so
        # scale their init by 1/sqrt(2 * n_layer) to keep the residual variance ~constant.
        for name, p in self.named_parameters():
            if name.endswith("c_proj.weight"):
                nn.init.normal_(p, mean=0.0, std=0.02 / math.sqrt(2 * config.n_layer))

    @staticmethod
    def _init_weights(module: nn.Module) -> None:
        # GPT-2: N(0, 0.02) for weights and embeddings, zero biases, LayerNorm at identity.
        if isinstance(module, nn.Linear):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
        elif isinstance(module, nn.Embedding):
            nn.init.normal_(module.weight, mean=0.0, std=0.02)

    def num_params(self, exclude_embeddings: bool = False) -> int:
        """Number of parameters (the tied head counted once). exclude_embeddings drops the
        position embedding (nanoGPT's convention; the token table doubles as the head)."""
        n = sum(p.numel() for p in self.parameters())
        return n - self.wpe.weight.numel() if exclude_embeddings else n

    @property
    def device(self) -> torch.device:
        return self.wte.weight.device

    def head(self, hidden: Tensor) -> Tensor:
        """Final hidden states [..., C] -> logits [..., V] through the tied token embedding."""
        return F.linear(hidden, self.wte.weight)

    # ---------------------------------------------------------------------------------------------
    def embed(self, idx: Tensor,
              attention_mask: Tensor | None = None) -> tuple[Tensor, Tensor | None]:
        """Token ids [B,T] (+ optional mask) -> (the blocks' input [B,T,C], the attention mask
        the blocks take, or None for all-real rows). The reward model runs the blocks itself."""
        if idx.dim() != 2:
            raise ValueError(f"idx must be [B,T] token ids, got shape {tuple(idx.shape)}")
        B, T = idx.shape
        if T > self.config.block_size:
            raise ValueError(
                f"sequence length {T} exceeds block_size {self.config.block_size}; shorten the "
                f"input or use a model with a larger block_size"
            )
        attn_mask = None
        if attention_mask is not None:
            key_mask = as_token_mask(attention_mask, idx, "attention_mask")
            if not bool(key_mask.all()):  # all-real rows: the cheaper plain causal path
                attn_mask = query_key_mask(key_mask, T)
                pos = position_ids(key_mask)
        if attn_mask is None:
            pos = torch.arange(T, device=idx.device)[None]
        return self.drop(self.wte(idx) + self.wpe(pos)), attn_mask

    def hidden_states(self, idx: Tensor, attention_mask: Tensor | None = None) -> Tensor:
        """Token ids [B,T] (+ optional [B,T] mask, 1 = real) -> final-LayerNorm states [B,T,C]."""
        x, attn_mask = self.embed(idx, attention_mask)
        for block in self.blocks:
            x = block(x, attn_mask)
        return self.ln_f(x)

    def forward(
        self,
        idx: Tensor,
        attention_mask: Tensor | None = None,
        return_hidden: bool = False,
    ) -> Tensor | tuple[Tensor, Tensor]:
        """idx [B,T] -> logits [B,T,V], or (logits, hidden [B,T,C]) when return_hidden.

        attention_mask [B,T] (1 = real token) supports left-padded batches: positions count real
        tokens only and no query attends to a pad key. Outputs at pad slots are finite but
        meaningless.
        """
        hidden = self.hidden_states(idx, attention_mask)
        logits = self.head(hidden)
        return (logits, hidden) if return_hidden else logits


# --------------------------------------------------------------------------------------------------
# Training-time scoring, value head, reference policy
# --------------------------------------------------------------------------------------------------


def sequence_logprobs(
    model: GPT,
    input_ids: Tensor,
    attention_mask: Tensor,
    start: int,
    temperature: float = 1.0,
    return_entropy: bool = False,
    return_hidden: bool = False,
    group: int = 1,
) -> SequenceScores:
    """Score the completion part of full sequences, WITH grad (this is the policy-gradient path).

    input_ids [B,L] = cat(prompt_ids, sample.tokens), attention_mask [B,L] = cat(prompt_mask,
    sample.mask); start = P, the prompt width. Returns a `SequenceScores` (a NamedTuple, so
    `logp, ent, h = sequence_logprobs(...)` works):

    * logprobs [B, L-start]: log softmax(logits / temperature) of input_ids[:, start:], each token
      scored from the logits at the position before it (positions start-1 .. L-2).
    * entropy  [B, L-start] (return_entropy): entropy of softmax(logits / temperature) there.
    * hidden   [B, L-start, C] (return_hidden): final hidden states at those same positions, i.e.
      the state from which each token was chosen - what a value head reads as V(s_t).

    Values at mask-0 (pad) slots are finite but meaningless: multiply by / average with the mask.
    At the same temperature this equals `core.lm.sampling` SampleOutput.logprobs of a top_k=None
    sample on real tokens (to float rounding).
    group > 1: the rows come in groups of that many sharing their prompt (a step's completions
    of one prompt), which then runs once per group (core/lm/shared_prompts.py); same numbers.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if input_ids.dim() != 2:
        raise ValueError(f"input_ids must be [B,L], got shape {tuple(input_ids.shape)}")
    L = input_ids.shape[1]
    if isinstance(start, bool) or not isinstance(start, int) or not 1 <= start < L:
        raise ValueError(
            f"start must be an int in [1, L-1] = [1, {L - 1}] (the prompt width, which needs at "
            f"least one token), got {start!r}"
        )
    if group > 1:
        hidden = completion_states(model, input_ids, attention_mask, start, group)
    else:
        hidden = model.hidden_states(input_ids, attention_mask)[:, start - 1 : L - 1]
    logits = model.head(hidden).float()  # logits only where they are needed
    if temperature != 1.0:
        logits = logits / temperature
    logp_all = torch.log_softmax(logits, dim=-1)
    target = input_ids[:, start:].to(logp_all.device)
    logprobs = logp_all.gather(-1, target.unsqueeze(-1)).squeeze(-1)
    entropy = -(logp_all.exp() * logp_all).sum(-1) if return_entropy else None
    return SequenceScores(logprobs, entropy, hidden if return_hidden else None)


class ValueHead(nn.Module):
    """The PPO critic's head: hidden states [B,T,C] -> values [B,T].

    Initialised small (std 1e-3 weights, zero bias) so initial values are ~0: the first advantages
    are then ~the returns, and the value loss does not push a large gradient into a shared trunk
    on the first updates.
    """

    def __init__(self, n_embd: int) -> None:
        super().__init__()
        self.proj = nn.Linear(n_embd, 1)
        nn.init.normal_(self.proj.weight, mean=0.0, std=1e-3)
        nn.init.zeros_(self.proj.bias)

    def forward(self, hidden: Tensor) -> Tensor:
        return self.proj(hidden).squeeze(-1)


def frozen_copy(model: GPT) -> GPT:
    """A deep copy in eval mode with requires_grad False: the reference policy for the KL."""
    ref = copy.deepcopy(model)
    ref.eval()
    ref.requires_grad_(False)
    return ref
