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

`DPO` is the objective (`--algo dpo`): it trains on rankings, chosen by `dpo_data` (simulated at
start, or the data folder's, by source), with whole prompts held out. Each step still samples a
batch from the policy, so the true reward, the KL to the reference and the samples are watched
as for every objective; that batch trains nothing. beta is the trainer's (`beta`, live).
Departure, stated: log pi is scored at temperature 1 (the model itself), whatever the sampling
temperature.

Everything here works on per-response *sequence* log-probabilities (sums over the response's
tokens): `sequence_logps` computes them for (prompt, response) rows. The reference's log-probs
are detached, so it never gets a gradient.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from core.algorithms.base import Objective, Panel, Rollout
from core.config import FIELDS
from core.tensor_utils import Tensor

LOSS_TYPES = FIELDS["dpo_loss"].metadata["choices"]
# held-out rankings: whole prompts, as the reward model holds them out (split_by_prompt)
HOLDOUT = 0.2
HELDOUT_EVERY = 10   # steps between measures of the held-out accuracy


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


# Log-ratio gaps (nats) this small are ties: at step 0 the policy's and the reference's log-probs
# of one response differ by ~1e-6 when they were scored in batches of other widths.
TIE = 1e-4


def ordered_share(gap: Tensor) -> float:
    """Share of pairs whose implicit-reward gap log pi/pi_ref(preferred) - log pi/pi_ref(other)
    orders them as ranked, a tie (|gap| <= TIE) counting half, as `eval/win_rate`'s ties do: at
    step 0 the policy is the reference and this reads 0.5, chance, where TRL's strict count
    reads 0 (or noise). NaN with no pair."""
    if not gap.numel():
        return float("nan")
    return float(((gap > TIE).float() + 0.5 * (gap.abs() <= TIE).float()).mean())


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
        best = best_of(ranks, valid)
        worst = valid & (ranks == ranks.masked_fill(~valid, -1).max(dim=1, keepdim=True)[0])
        metrics = {
            "dpo/loss": float(loss.detach()),
            "dpo/accuracy": ordered_share(h[row, i] - h[row, j]),
            "dpo/margin": float(margin.mean()) if margin.numel() else float("nan"),
            "dpo/reward_chosen": float(r[best].mean()),
            "dpo/reward_rejected": float(r[worst].mean()),
            "dpo/logp_chosen": float(logp[best].mean()),
            "dpo/pairs": float(margin.numel()),
        }
    return loss, metrics


def pad_rankings(rankings) -> tuple[list[str], list[str], Tensor, Tensor]:
    """(prompts, responses) flat, row-major over [N, K], and ranks / valid [N, K] for a list of
    rankings (core.reward_learning.rankings' Ranking or anything with prompt, responses, ranks);
    shorter
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
                   temperature: float = 1.0, with_lengths: bool = False, group: int = 1):
    """log pi(response | prompt) per row: the sum over the response's tokens (EOS included
    unless it was cut at max_new_tokens), with grad when the model has it; with_lengths, also
    each row's token count. group > 1: the rows come in runs of that many with one prompt (a
    ranking's responses, as `pad_rankings` lays them out), and each prompt runs once
    (core/lm/shared_prompts.py): the same numbers, to float rounding, for fewer tokens."""
    from core.lm.batching import encode_pairs
    from core.lm.model import sequence_logprobs

    device = next(model.parameters()).device
    ids, mask, start = encode_pairs(prompts, texts, max_new_tokens, device)
    logp = sequence_logprobs(model, ids, mask, start, temperature=temperature,
                             group=group).logprobs
    total = (logp * mask[:, start:]).sum(dim=-1)
    return (total, mask[:, start:].sum(dim=-1)) if with_lengths else total


def freeze_below(policy, top: int) -> None:
    """`dpo_blocks`: only the top `top` blocks and the final LayerNorm keep learning; the
    embeddings (and so the tied head) and the blocks below stay the base model's. With fewer
    blocks than `top`, the whole model learns."""
    n = len(policy.blocks)
    learning = {id(p) for b in list(policy.blocks)[max(0, n - top):] for p in b.parameters()}
    learning |= {id(p) for p in policy.ln_f.parameters()}
    if top >= n:
        return
    for p in policy.parameters():
        p.requires_grad_(id(p) in learning)


def best_of(ranks: Tensor, valid: Tensor) -> Tensor:
    """[N, K] bool: each ranking's best responses (rank 1, ties all of them)."""
    return valid & (ranks == ranks.masked_fill(~valid, 1 << 30).min(dim=1, keepdim=True)[0])


def sft_loss(logp: Tensor, lengths: Tensor, ranks: Tensor, valid: Tensor) -> Tensor:
    """The negative log-likelihood per token of each ranking's best responses (RPO's term,
    Pang et al. 2024): DPO lowers both responses of a pair when that widens the margin, and
    this holds the preferred ones up. logp: [N, K] sequence sums; lengths: [N, K] tokens."""
    best = best_of(ranks.to(logp.device), valid.to(logp.device).bool())
    return -(logp[best] / lengths[best].clamp(min=1)).mean()


_NONE = ("DPO found no ranking with a strict preference for task {task!r}; rank some in the "
         "Rank tab, import some (`rlhf-explorer rankings import`), or use dpo_data=simulated")


def _strict(rankings) -> list:
    return [r for r in rankings if len(set(r.ranks)) > 1 and len(r.responses) >= 2]


def stored_rankings(cfg, data_dir) -> list:
    """The data folder's rankings of cfg.task from cfg.dpo_sources (all when empty)."""
    from core.reward_learning.rankings import RankingStore

    if data_dir is None:
        raise ValueError("dpo_data=stored reads the data folder's rankings, and this run has no "
                         "data folder; use dpo_data=simulated")
    sources = [x.strip() for x in cfg.dpo_sources.split(",") if x.strip()] or None
    with RankingStore(data_dir, read_only=True) as store:
        return [r.to_training() for r in store.list(task=cfg.task, sources=sources,
                                                    rankable_only=True)]


def check_stored(cfg, data_dir) -> None:
    """Refuse, before a run exists, a DPO run on stored rankings when there are none to use."""
    if cfg.algo == "dpo" and cfg.dpo_data == "stored" and \
            not _strict(stored_rankings(cfg, data_dir)):
        raise ValueError(_NONE.format(task=cfg.task))


class DPO(Objective):
    """Direct preference optimisation on rankings (module doc)."""

    name = "dpo"
    trains_on_rollout = False
    label = "DPO"
    panels = (
        Panel("dpo_accuracy", "Accuracy",
              ("dpo/accuracy", "dpo/heldout_accuracy", "dpo/fresh_accuracy"), "share of pairs",
              bounds=(0, 1),
              tooltip="How often the implicit reward β log π/π_ref orders a pair as ranked: on "
                      "the training batch, on held-out prompts (every 10 steps), and on each "
                      "round's new rankings before training on them. Training near 1 with "
                      "held-out near 0.5: DPO memorises the rankings."),
        Panel("dpo_rewards", "Implicit rewards",
              ("dpo/reward_chosen", "dpo/reward_rejected", "dpo/margin"), "β log π/π_ref",
              tooltip="The implicit reward of each ranking's best and worst responses, and "
                      "their margin over ordered pairs."),
        Panel("dpo_logp", "Preferred log π", ("dpo/logp_chosen",), "log π", "nats",
              tooltip="log π of each ranking's best responses. When it falls while the margin "
                      "grows, DPO lowers what it should prefer (likelihood displacement): the "
                      "probability goes to text nobody ranked. dpo_sft holds it up."),
        Panel("dpo_loss", "DPO loss", ("dpo/loss", "dpo/sft_nll"), "loss",
              tooltip="The loss on the rankings (dpo_loss) and, with dpo_sft, the preferred "
                      "responses' negative log-likelihood per token."),
    )

    def setup(self, trainer) -> None:
        from core.reward_learning.reward_training import split_by_prompt

        cfg = self.cfg
        rankings = (stored_rankings(cfg, trainer.data_dir) if cfg.dpo_data == "stored" else
                    self._simulated(trainer))
        rankings = _strict(rankings)
        if not rankings:
            raise ValueError(_NONE.format(task=cfg.task))
        self.train, self.held = split_by_prompt(rankings, HOLDOUT,
                                                np.random.default_rng(cfg.seed + 5))
        self.max_new_tokens = trainer.max_new_tokens
        if cfg.dpo_blocks:
            freeze_below(trainer.policy, cfg.dpo_blocks)
        self.policy, self.reference = trainer.policy, trainer.reference
        # the reference never changes: its log-probs are computed once, here
        self.train_ref = self._logps(trainer.reference, self.train)
        self.held_ref = self._logps(trainer.reference, self.held)
        self.online: list = []   # the rounds' rankings, in the order they came
        self._held_at = -1

    def _simulated(self, trainer):
        from core.reward_learning.annotator import SimulatedAnnotator
        from core.reward_learning.reward_training import collect_rankings

        cfg = self.cfg
        rng = np.random.default_rng(cfg.seed + 5)
        annotator = SimulatedAnnotator(cfg.annotator_temperature, rng)
        gen = torch.Generator(device=trainer.device).manual_seed(cfg.seed + 5)
        return collect_rankings(trainer.reference, trainer.task, annotator, cfg.dpo_rankings,
                                cfg.rm_k, trainer.max_new_tokens, rng, gen, cfg.temperature,
                                trainer._setup_progress, min_new_tokens=cfg.min_new_tokens)

    def _logps(self, model, rankings) -> list[Tensor]:
        """Each ranking's responses' log pi (no grad), in chunks."""
        out = []
        with torch.no_grad():
            for start in range(0, len(rankings), 32):
                chunk = rankings[start:start + 32]
                prompts, texts, ranks, valid = pad_rankings(chunk)
                logp = sequence_logps(model, prompts, texts, self.max_new_tokens,
                                      group=ranks.shape[1]).view(ranks.shape)
                out += [logp[n, valid[n]] for n in range(len(chunk))]
        return out

    def prepare(self, batch: Rollout, beta: float) -> tuple[Rollout, dict[str, float]]:
        return batch, {}   # the rollout is watched, not trained on

    # --- online DPO: rounds of feedback (core.reward_learning.feedback) rank the policy's own
    # samples, and
    # the rankings join the training data. DPO is its own round learner: no reward model picks
    # the groups (they are the first ones sampled), and its fresh accuracy is the implicit
    # reward's on the new rankings before any update sees them.
    model = None

    def round_learner(self, trainer):
        return self

    @property
    def rankings(self) -> list:
        return self.train + self.held

    def fresh_accuracy(self, new_rankings, max_new_tokens: int) -> dict[str, float]:
        """`dpo/fresh_accuracy`: the share of a round's new ordered pairs the policy's implicit
        reward already orders right, before it trains on them."""
        new = _strict(new_rankings)
        accuracy = self._accuracy(self.policy, new, self._logps(self.reference, new))
        return {"dpo/fresh_accuracy": accuracy} if accuracy == accuracy else {}

    def update(self, new_rankings, cfg, max_new_tokens: int, progress=None, stop=None) -> dict:
        """A round's rankings join the training data (all of them: the held-out prompts stay
        those chosen at the start, so the held-out accuracy stays comparable)."""
        new = _strict(new_rankings)
        self.train = self.train + new
        self.train_ref = self.train_ref + self._logps(self.reference, new)
        self.online = self.online + new
        return {}

    def state(self) -> dict:
        return {"online": [{**r.to_json(), "true": list(r.true)} for r in self.online]}

    def load_state(self, state: dict) -> None:
        from core.reward_learning.reward_model import Ranking

        online = [Ranking(r["prompt"], tuple(r["responses"]), tuple(r["ranks"]),
                          tuple(r.get("true", ()))) for r in state.get("online", [])]
        if online:
            self.update(online, self.cfg, self.max_new_tokens)

    def data_loss(self, trainer, beta: float) -> tuple[Tensor, dict[str, Tensor]]:
        cfg = self.cfg
        take = min(cfg.dpo_batch, len(self.train))
        idx = trainer.rng.choice(len(self.train), size=take, replace=False)
        batch = [self.train[i] for i in idx]
        prompts, texts, ranks, valid = pad_rankings(batch)
        logp, lengths = sequence_logps(trainer.policy, prompts, texts, self.max_new_tokens,
                                       with_lengths=True, group=ranks.shape[1])
        logp, lengths = logp.view(ranks.shape), lengths.view(ranks.shape)
        ref = torch.zeros_like(logp)
        for n, i in enumerate(idx):
            ref[n, valid[n]] = self.train_ref[i]
        loss, metrics = dpo_loss(logp, ref, ranks, valid, beta, cfg.dpo_loss)
        if cfg.dpo_sft > 0:
            nll = sft_loss(logp, lengths, ranks, valid)
            loss = loss + cfg.dpo_sft * nll
            metrics["dpo/sft_nll"] = float(nll.detach())
        if cfg.dpo_negatives > 0:
            negative, accuracy = self.negatives_loss(trainer, batch, beta)
            loss = loss + cfg.dpo_negatives * negative
            metrics["dpo/negatives_accuracy"] = accuracy
        metrics["dpo/rankings"] = float(len(self.train))
        if trainer.step_index % HELDOUT_EVERY == 0 and self._held_at != trainer.step_index:
            self._held_at = trainer.step_index
            metrics["dpo/heldout_accuracy"] = self.heldout_accuracy(trainer.policy, beta)
        return loss, metrics

    def negatives_loss(self, trainer, batch, beta: float) -> tuple[Tensor, float]:
        """Negatives for free (core/reward_learning/negatives.py, as the reward model's): one
        response of each
        ranking preferred to a mangled copy of it, with DPO's sigmoid loss, whatever dpo_loss
        is; and the share of those pairs the implicit reward orders right."""
        from core.reward_learning.negatives import negative_pairs

        rng = trainer.rng
        chosen = [(r.prompt, r.responses[int(rng.integers(len(r.responses)))]) for r in batch]
        pairs = negative_pairs(chosen, 1, rng)
        if not pairs:
            return torch.zeros((), device=trainer.device), float("nan")
        prompts = [p for p, _, _ in pairs] * 2
        texts = [good for _, good, _ in pairs] + [bad for _, _, bad in pairs]
        logp = sequence_logps(trainer.policy, prompts, texts, self.max_new_tokens).view(2, -1)
        with torch.no_grad():
            ref = sequence_logps(trainer.reference, prompts, texts, self.max_new_tokens)
        h = logp - ref.view(2, -1)            # log pi / pi_ref of the response, then the copy
        margin = beta * (h[0] - h[1])
        return -F.logsigmoid(margin).mean(), ordered_share((h[0] - h[1]).detach())

    def heldout_accuracy(self, policy, beta: float) -> float:
        """Share of the held-out rankings' ordered pairs the implicit reward orders right."""
        return self._accuracy(policy, self.held, self.held_ref)

    def _accuracy(self, policy, rankings, ref_logps) -> float:
        """Share of the rankings' strictly ordered pairs whose implicit reward log pi/pi_ref
        (beta > 0 only scales it) orders them as ranked, a tie counting half
        (`ordered_share`); NaN with none."""
        if not rankings:
            return float("nan")
        was = policy.training
        policy.eval()
        logps = self._logps(policy, rankings)
        policy.train(was)
        margins = []
        for ranking, lp, lr in zip(rankings, logps, ref_logps, strict=True):
            r = lp - lr
            margins += [r[i] - r[j] for i in range(len(ranking.ranks))
                        for j in range(len(ranking.ranks)) if ranking.ranks[i] < ranking.ranks[j]]
        return ordered_share(torch.stack(margins)) if margins else float("nan")
