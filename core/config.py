"""RunConfig: every knob of a run in one validated dataclass.

Help text, bounds, choices, which objectives a knob applies to and whether it may change mid-run
live once, in each field's metadata (`knob(...)`); the CLI's help, the GUI's tooltips and spin-box
limits and the validation below all read it from there.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import Any

# the task registry (numpy only): its names are the `task` knob's choices
from core.tasks import TASKS

ALGOS = ("reinforce", "kl_penalty", "ppo", "grpo", "dpo")
# Objectives that learn from rounds of rankings themselves, whatever the reward source (online
# DPO: `Objective.round_learner`); the round knobs apply to them too.
ROUND_LEARNERS = ("dpo",)
REWARD_SOURCES = ("true", "ranked", "learned")
# How a KL weight moves (core.kl.make_controller), for the regulariser's beta and the trust
# region's alike.
KL_CONTROLLERS = ("adaptive", "fixed")
ALL = ALGOS


def knob(default, help: str, *, min=None, max=None, choices=None, algos=ALL, sources=None,
         any_source: tuple = (), live: bool = False, group: str = "general",
         per_algo: dict | None = None, per_task: dict | None = None,
         per_source: dict | None = None):
    """A dataclass field carrying its own documentation and limits.

    algos: objectives that use it (the GUI hides it for others); sources: reward sources that use
    it (None = all); any_source: objectives that use it whatever the reward source (DPO learns
    from rounds of rankings itself, with no reward model); live: may be changed while a run goes
    (applied at the next step);
    per_algo / per_source / per_task: a different default for some objectives, reward sources or
    tasks (`RunConfig.for_algo`; a source's default wins over an objective's, a task's over
    both). A per_source value may itself be a dict by objective ({"learned": {"grpo": 2.0}}).
    """
    meta = dict(help=help, min=min, max=max, choices=choices, algos=tuple(algos),
                sources=sources, any_source=tuple(any_source), live=live, group=group,
                per_algo=per_algo or {}, per_task=per_task or {}, per_source=per_source or {})
    return field(default=default, metadata=meta)


@dataclass(frozen=True)
class RunConfig:
    # --- what to run
    task: str = knob("sentiment", "Task: corpus, prompts and hidden true reward.",
                     choices=tuple(TASKS), group="run")
    algo: str = knob("grpo", "Objective that updates the policy.", choices=ALGOS, group="run")
    reward_source: str = knob(
        "true", "Where rewards come from: the task's true reward, ranks from a simulated annotator "
        "(direct assignment), or a reward model learned from annotator rankings.",
        choices=REWARD_SOURCES, group="run")
    steps: int = knob(150, "Number of RL steps (rollout + update).", min=1, max=100_000,
                      group="run")
    seed: int = knob(0, "Seed for prompts, sampling and initialisation.", min=0, max=2**31 - 1,
                     group="run")
    device: str = knob("auto", "Where torch runs: auto picks CUDA when available.",
                       choices=("auto", "cpu", "cuda"), group="run")
    threads: int = knob(0, "torch CPU threads; 0 = auto: every core headless; in the window, "
                        "every core for the passes and all but one for sampling, whose small "
                        "steps stall when the GUI takes a core (core/lm/threads.py).",
                        min=0, max=256, group="run")
    checkpoint: str = knob("", "Base model checkpoint (safetensors); empty = the task's shipped "
                           "one in assets/.", group="run")

    # --- rollout
    # arithmetic's completions are 2-3 tokens, so 64 prompts cost what 8 sentiment ones do, and
    # its sparse right/wrong signal needs the bigger batch: at 8 prompts accuracy wandered.
    prompts_per_step: int = knob(8, "Distinct prompts per step.", min=1, max=1024,
                                 group="rollout", per_task={"arithmetic": 64})
    group_size: int = knob(8, "Completions per prompt (GRPO's G; the annotator ranks a group).",
                           min=2, max=256, group="rollout")
    max_new_tokens: int = knob(0, "Completion length in characters; 0 = the task's default.",
                               min=0, max=120, group="rollout")
    # TRL's generation kwarg of the same name. 0 lets completions end at EOS, as the tasks'
    # rewards expect; min = max gives every completion the same length, which is how a step's
    # cost is compared with another implementation's on equal work (benchmarks/bench_vs_trl.py).
    min_new_tokens: int = knob(0, "EOS cannot be sampled before this many tokens; 0 = off. "
                               "Set it to max_new_tokens for completions of one fixed length.",
                               min=0, max=120, group="rollout")
    temperature: float = knob(1.0, "Sampling temperature (log-probs use the same).", min=0.05,
                              max=5.0, live=True, group="rollout")
    top_k: int = knob(0, "Sample among the k likeliest tokens; 0 = all.", min=0, max=512,
                      group="rollout")

    # --- optimisation
    # 1e-4 lets every objective write clearly positive reviews within 150 steps on sentiment;
    # 3e-5 crawled (true reward ~0.3). REINFORCE, with one noisy update per batch, wants 1.5e-4
    # (0.58 at 1e-4, 0.66 at 1.5e-4) but collapsed onto short sentences at 2e-4 (0.33). The
    # trust-region objective and PPO take 4 updates per batch and want 5e-5: at 1e-4 the KL to
    # the reference overshot to 16-31 nats and the reward fell back (trust region 0.33 +- 0.14
    # over 5 seeds, PPO 0.42 over 3; at 5e-5 seed 0 went 0.45 -> 0.71 and 0.39 -> 0.64).
    # Measured with 5 seeds in benchmarks/README.md.
    lr: float = knob(1e-4, "Adam learning rate of the policy.", min=1e-7, max=1e-2, live=True,
                     group="optimisation", per_algo={"reinforce": 1.5e-4, "kl_penalty": 5e-5,
                                                            "ppo": 5e-5, "dpo": 5e-5},
                     per_task={"arithmetic": 2e-4})
    # PPO and the trust-region objective reuse each batch (2 epochs x 2 minibatches) so that the
    # ratio moves off 1 and the clip or the KL(pi_old || pi_theta) penalty has something to hold
    # back; PPO's usual 4 x 4 doubled the step time here and learned no faster.
    epochs: int = knob(1, "Passes over each rollout batch.", min=1, max=64, group="optimisation",
                       per_algo={"ppo": 2, "kl_penalty": 2})
    minibatches: int = knob(1, "Minibatches per epoch.", min=1, max=64, group="optimisation",
                            per_algo={"ppo": 2, "kl_penalty": 2})
    max_grad_norm: float = knob(1.0, "Gradient clipping by global norm; 0 = off.", min=0.0,
                                max=1e3, group="optimisation")

    # --- KL to the reference policy
    kl_estimator: str = knob("k1", "Per-token KL estimator: k1 unbiased (noisy, can be "
                             "negative), k2 low variance (biased), k3 unbiased and >= 0. In a "
                             "loss, k1's gradient is zero in expectation: use k2 or k3 there.",
                             choices=("k1", "k2", "k3"), group="kl",
                             per_algo={"grpo": "k3"}, per_source={"learned": "k1"})
    kl_in: str = knob("reward", "Where the KL to the reference enters: per token in the reward "
                      "(lm-human-preferences, TRL PPO; for GRPO, in each completion's score "
                      "before grouping) or as a term in the loss (GRPO, DeepSeekMath).",
                      choices=("reward", "loss"), group="kl", per_algo={"grpo": "loss"},
                      per_source={"learned": "reward"})
    kl_controller: str = knob("adaptive", "How beta (the weight of the KL to the reference) "
                              "moves: the lecture's adaptive rule (halve below target/1.5, "
                              "double above target*1.5), or fixed.",
                              choices=KL_CONTROLLERS, group="kl",
                              per_algo={"grpo": "fixed", "dpo": "fixed"},
                              per_source={"learned": "adaptive"})
    # A learned reward from a few rankings is another matter (issue 16; benchmarks/README.md,
    # "Rankings that steer the policy"): at GRPO's fixed 0.04 the KL reached 30-40 nats and the
    # policy wrote broken text the model liked. So with the learned source the KL to the
    # reference goes in the reward as k1 (unbiased; k3 in the loss has a biased gradient), and
    # beta starts at 0.5 and adapts to a budget of 4 nats (in practice: beta falls to beta_min
    # within ~12 steps and doubles only past 6 nats, target x 1.5): single-seed rows there had
    # transient collapses (true reward -0.67 for ten steps) with k3 in the loss that k1 in the
    # reward had not, and a budget of 2 nats left no room to follow the person's taste.
    # GRPO keeps DeepSeekMath's fixed 0.04: with the adaptive rule its k3 KL overshot the target,
    # beta doubled to 0.3-0.6 within a few steps and pulled the policy back to the base model,
    # erasing what it had learned (seeds 3 and 4: 0.23 and 0.36; fixed 0.04: 0.64 at seed 3).
    beta: float = knob(0.05, "Weight of the KL to the frozen reference (starting value when "
                       "adaptive); 0 turns that KL off.",
                       min=0.0, max=100.0, live=True, group="kl",
                       per_algo={"grpo": 0.04, "dpo": 0.1}, per_source={"learned": 0.5})
    # The KL budget is what bounds the reward: at 1 nat the policy may barely move from the base
    # model (true reward ~0.3 after 150 steps); 8 nats lets it write strongly positive reviews
    # that still read like the corpus (see benchmarks/README.md, reward against KL).
    kl_target: float = knob(8.0, "Adaptive rule's target for the KL to the reference: KL per "
                            "completion, in nats. This budget bounds how high the reward climbs.",
                            min=1e-4, max=100.0, live=True, group="kl",
                            per_source={"learned": 4.0})
    beta_min: float = knob(0.01, "Lower bound on the adaptive beta (the bare rule can halve it "
                           "to nothing while the KL is small, then overshoot).", min=0.0,
                           max=100.0, group="kl")
    beta_max: float = knob(10.0, "Upper bound on the adaptive beta.", min=0.0, max=1000.0,
                           group="kl")
    kl_interval: int = knob(2, "Apply the adaptive rule every N steps, to their mean KL.",
                            min=1, max=1000, group="kl")
    # The more rankings a reward model has seen, the further from the base model it can be
    # trusted (Gao et al. 2022; the overoptimisation preset's robust reward agrees): each round
    # of feedback on the policy's own samples widens the KL budget.
    kl_target_per_round: float = knob(
        0.0, "Nats the adaptive rule's KL budget grows by with each feedback round (the budget "
        "is kl_target + this x rounds done).", min=0.0, max=100.0, group="kl",
        sources=("learned",))

    # --- the trust region (the lecture's TRPO-style penalty; kl_penalty only)
    trust_beta: float = knob(1.0, "Starting weight of the trust-region penalty KL(pi_old || "
                             "pi_theta) in the KL-penalised objective (the PPO paper's beta; "
                             "its starting value matters little, the rule moves it).",
                             min=0.0, max=1e4, live=True, algos=("kl_penalty",), group="trust")
    trust_target: float = knob(0.01, "d_target of the adaptive rule: after each update, d = "
                               "KL(pi_old || pi_new) per token; beta halves below d/1.5 and "
                               "doubles above 1.5 d (PPO paper section 4 used 0.003-0.03).",
                               min=1e-6, max=10.0, live=True, algos=("kl_penalty",),
                               group="trust")
    trust_beta_min: float = knob(1e-6, "Floor of the adaptive trust-region beta. The bare rule "
                                 "halves beta after every calm update, so it can sink to where "
                                 "the penalty no longer acts, and then needs many doublings to "
                                 "catch one large step.", min=0.0, max=1e4,
                                 algos=("kl_penalty",), group="trust")
    trust_controller: str = knob("adaptive", "The trust-region beta: the lecture's adaptive "
                                 "rule, or fixed at trust_beta.", choices=KL_CONTROLLERS,
                                 algos=("kl_penalty",), group="trust")

    # --- REINFORCE / returns
    gamma: float = knob(1.0, "Discount: G_t = sum gamma^l r_{t+l}; the policy gradient is "
                        "weighted by gamma^t as in the lecture.", min=0.0, max=1.0,
                        algos=("reinforce", "ppo"), group="returns")
    baseline: str = knob("moving_average", "REINFORCE baseline b in (G - b): none, a moving "
                         "average of returns, or a learned value V(s_t).",
                         choices=("none", "moving_average", "value"),
                         algos=("reinforce", "kl_penalty"), group="returns")
    baseline_momentum: float = knob(0.9, "Momentum of the moving-average baseline.", min=0.0,
                                    max=0.999, algos=("reinforce", "kl_penalty"),
                                    group="returns")

    # --- PPO
    clip_eps: float = knob(0.2, "Clip range: ratios outside [1-eps, 1+eps] get no gradient "
                           "(GSPO's sequence ratio wants ~3e-4).",
                           min=1e-4, max=1.0, live=True, algos=("ppo", "grpo"), group="ppo")
    vf_coef: float = knob(0.1, "c1: weight of the value loss (PPO, and learned baselines).",
                          min=0.0, max=10.0, algos=("reinforce", "kl_penalty", "ppo"),
                          group="ppo")
    ent_coef: float = knob(0.0, "c2: entropy bonus weight.", min=0.0, max=1.0, live=True,
                           algos=("reinforce", "kl_penalty", "ppo", "grpo"), group="ppo")
    # 1, not the usual 0.95: the critic starts knowing nothing and the reward comes at the last
    # token, so with 0.95 the sentiment words at the start of a 30-token review would get
    # 0.95^30 ~ 0.2 of the credit the final "." gets until the critic has learned.
    gae_lambda: float = knob(1.0, "GAE lambda: 1 = Monte-Carlo, 0 = one-step TD.", min=0.0,
                             max=1.0, algos=("ppo",), group="ppo")
    whiten_advantages: bool = knob(True, "Standardise advantages over the batch.",
                                   algos=("ppo",), group="ppo")

    # --- GRPO
    grpo_std: str = knob("unbiased", "Spread used to standardise rewards in a group: unbiased "
                         "(n-1), population (n), or none (only subtract the mean, as "
                         "scale_rewards=none).",
                         choices=("unbiased", "population", "none"), algos=("grpo",),
                         group="grpo")
    loss_type: str = knob("grpo", "How per-token losses are averaged: grpo (mean per "
                          "completion, then over completions; DeepSeekMath), bnpo (mean over "
                          "the minibatch's tokens), dr_grpo (sum / (completions x "
                          "max_new_tokens): no length bias; Dr. GRPO) or dapo (token mean over "
                          "the whole batch, with clip-higher; DAPO).",
                          choices=("grpo", "bnpo", "dr_grpo", "dapo"), algos=("grpo",),
                          group="grpo")
    scale_rewards: str = knob("group", "Divide centred rewards by the group's spread (GRPO), "
                              "the whole batch's (PPO-Lite), or not at all (Dr. GRPO).",
                              choices=("group", "batch", "none"), algos=("grpo",),
                              group="grpo")
    group_baseline: str = knob("mean", "Baseline inside a group: the group mean (GRPO) or the "
                               "mean of the other G-1 samples (RLOO, leave-one-out).",
                               choices=("mean", "leave_one_out"), algos=("grpo",),
                               group="grpo")
    importance_sampling: str = knob("token", "Importance ratio per token (GRPO, PPO) or one "
                                    "length-normalised ratio per completion (GSPO; use "
                                    "clip_eps ~3e-4 with it).", choices=("token", "sequence"),
                                    algos=("grpo",), group="grpo")
    clip_eps_high: float = knob(0.0, "Upper clip range, 1 + eps_high (DAPO's clip-higher, 0.28 "
                                "in the paper); 0 = clip_eps, except 0.28 with loss_type=dapo.",
                                min=0.0, max=1.0, live=True, algos=("grpo",), group="grpo")

    # --- direct alignment: DPO trains on rankings, and samples each step only to watch
    dpo_loss: str = knob("sigmoid", "DPO's loss on the rankings: sigmoid (DPO: Bradley-Terry on "
                         "the implicit rewards of every ordered pair), ipo (IPO: keeps its "
                         "regularisation when preferences are deterministic, as with few "
                         "rankings) or plackett_luce (the whole ranking at once; DPO's appendix "
                         "A.3; ties are picked together).",
                         choices=("sigmoid", "ipo", "plackett_luce"), algos=("dpo",),
                         group="dpo")
    dpo_batch: int = knob(8, "Rankings in each DPO update.", min=1, max=4096, algos=("dpo",),
                          group="dpo")
    dpo_data: str = knob("simulated", "Which rankings DPO trains on: dpo_rankings from the "
                         "simulated annotator, ranked at start from the base model's samples, "
                         "or the ones stored in the data folder for this task (the Rank tab's, "
                         "imported ones, a judge's).", choices=("simulated", "stored"),
                         algos=("dpo",), group="dpo")
    # From 30 rankings DPO's implicit reward stayed at chance on held-out prompts (0.46-0.66)
    # and the true reward fell; from 300 it reached 0.70 and the true reward rose (+0.17 in
    # 150 steps at lr 1e-5, the whole model): docs/human_feedback.md, "DPO".
    dpo_rankings: int = knob(300, "With dpo_data=simulated: how many rankings (of rm_k "
                             "responses) the annotator gives.", min=2, max=100_000,
                             algos=("dpo",), group="dpo")
    dpo_negatives: float = knob(0.0, "Weight of 'negatives for free' in DPO: each update also "
                                "prefers one response of each ranking to a mangled copy of it "
                                "(a garbled or repeated word, the end cut off), with DPO's "
                                "sigmoid loss; 0 = off.", min=0.0, max=100.0, live=True,
                                algos=("dpo",), group="dpo")
    dpo_sft: float = knob(0.0, "Weight of the negative log-likelihood per token of each "
                          "ranking's best response, added to DPO's loss (RPO): it holds the "
                          "preferred responses' probability up while the margin widens.",
                          min=0.0, max=100.0, algos=("dpo",), group="dpo")
    # DPO from few rankings fits its implicit reward, the whole policy, to a few dozen prompts.
    # Training only the top block (at 5x the learning rate) keeps the language the lower blocks
    # read, as the reward model's frozen trunk does: from 30 rankings, IPO at 5 seeds went from
    # win 0.51-0.64 / 80-86 % real sentences to 0.61-0.67 / 87-90 %, sigmoid DPO from 0.33 /
    # 49-62 % to 0.52-0.58 / 79-85 % (2 seeds), and from 300 simulated rankings the true reward
    # gained +0.26 against +0.18; a step costs a quarter less (benchmarks/README.md, "Two
    # routes, same rankings").
    dpo_blocks: int = knob(1, "Train only the policy's top N transformer blocks (and its final "
                           "LayerNorm), the rest as the base model has them, as the reward "
                           "model's members do; 0 = the whole model (then lower the learning "
                           "rate: 1e-5 was its default).", min=0, max=64,
                           algos=("dpo",), group="dpo")
    dpo_sources: str = knob("", "With dpo_data=stored: the ranking sources to train on, comma-"
                            "separated (person, simulated, imported, judge); empty = all.",
                            algos=("dpo",), group="dpo")

    # --- rewards from rankings
    annotator_temperature: float = knob(
        0.1, "Noise of the simulated annotator: its ranking is drawn from Plackett-Luce over "
        "true reward / temperature (0 = always sorts correctly).", min=0.0, max=10.0,
        sources=("ranked", "learned"), group="rewards")
    rank_scheme: str = knob("normalized", "rank_to_reward scheme for direct assignment.",
                            choices=("fixed", "normalized", "log", "exp"), sources=("ranked",),
                            group="rewards")
    rank_lam: float = knob(1.0, "lambda of the exp scheme.", min=1e-3, max=10.0,
                           sources=("ranked",), group="rewards")
    rm_rankings: int = knob(500, "Annotator rankings the reward model is trained on.", min=10,
                            max=100_000, sources=("learned",), group="rewards")
    rm_k: int = knob(4, "Completions per ranking for the reward model's data.", min=2,
                     max=16, sources=("learned",), any_source=ROUND_LEARNERS, group="rewards")
    rm_loss: str = knob("bradley_terry", "Reward-model loss: Bradley-Terry on all pairs of each "
                        "ranking, or Plackett-Luce on whole rankings.",
                        choices=("bradley_terry", "plackett_luce"), sources=("learned",),
                        group="rewards")
    rm_steps: int = knob(150, "Reward-model updates of 16 rankings (a count of updates, not "
                         "epochs: with few rankings an epoch is one update).", min=1, max=10_000,
                         sources=("learned",), group="rewards")
    reward_model: str = knob("", "A saved reward model to use, by name ('' = train one at start "
                             "from the simulated annotator's rm_rankings).", sources=("learned",),
                             group="rewards")
    feedback_every: int = knob(0, "Iterated RLHF: every N steps, rank feedback_groups groups from "
                               "the current policy and update the reward model (for DPO: add them "
                               "to its data) on every ranking so far (0 = off).", min=0,
                               max=100_000, sources=("learned",), any_source=ROUND_LEARNERS,
                               group="rewards")
    feedback_groups: int = knob(8, "Groups (of rm_k responses) to rank in each round.", min=1,
                                max=64,
                                sources=("learned",), any_source=ROUND_LEARNERS, group="rewards")
    feedback_by: str = knob("simulated", "Who ranks in a round: the simulated annotator, a "
                            "person in the window's Rank tab, or a program (feedback_command).",
                            choices=("simulated", "person", "command"),
                            sources=("learned",), any_source=ROUND_LEARNERS, group="rewards")
    feedback_command: str = knob("", "The judge program for feedback_by=command: a shell "
                                 "command that reads the groups as JSONL on stdin and writes one "
                                 "ranking per line on stdout (docs/human_feedback.md).",
                                 sources=("learned",), any_source=ROUND_LEARNERS, group="rewards")
    feedback_timeout: float = knob(120.0, "Seconds a judge program may take for one round.",
                                   min=1.0, max=86_400.0,
                                   sources=("learned",), any_source=ROUND_LEARNERS, group="rewards")
    feedback_unsure: float = knob(0.0, "Also ask for a round when the reward model's members "
                                  "disagree this many times more on the policy's samples than "
                                  "on the base model's (rm/disagreement_ratio); 0 = off.",
                                  min=0.0, max=100.0, sources=("learned",), group="rewards")
    feedback_max_rounds: int = knob(0, "Most rounds in a run (0 = no limit).", min=0,
                                    max=10_000, sources=("learned",),
                                    any_source=ROUND_LEARNERS, group="rewards")
    feedback_pool: int = knob(4, "A round samples this many times feedback_groups groups and "
                              "asks about those the members disagree on most (1 = at random).",
                              min=1, max=16, sources=("learned",), group="rewards")
    feedback_restart: bool = knob(False, "After each round, start the policy again from the "
                                  "base model (on the reward model retrained on every ranking "
                                  "so far) instead of carrying it on.",
                                  sources=("learned",), group="rewards")
    feedback_base_sample: bool = knob(True, "Shuffle one base-model sample into each round's "
                                      "group, blind, so the ranks give eval/win_rate.",
                                      sources=("learned",), any_source=ROUND_LEARNERS,
                                      group="rewards")
    rm_round_steps: int = knob(60, "Reward-model updates after each round, continuing from the "
                               "current model.", min=1, max=10_000, sources=("learned",),
                               group="rewards")
    rm_lr: float = knob(3e-4, "Reward-model learning rate.", min=1e-6, max=1e-2,
                        sources=("learned",), group="rewards")
    # Issue 16: a reward model from a few rankings that RL cannot hack. Each default below is
    # measured in benchmarks/README.md, "Rankings that steer the policy".
    rm_members: int = knob(5, "Reward-model ensemble size: members on bootstrap resamples of the "
                           "rankings, each from its own initialisation, sharing the frozen trunk.",
                           min=1, max=16, sources=("learned",), group="rewards")
    rm_aggregate: str = knob("mean_minus_std", "How the members' standardised scores make the "
                             "reward: mean - rm_lambda x their spread, the minimum, or the mean.",
                             choices=("mean_minus_std", "min", "mean"), sources=("learned",),
                             group="rewards")
    rm_lambda: float = knob(1.0, "Weight of the members' spread in mean_minus_std.", min=0.0,
                            max=10.0, sources=("learned",), group="rewards")
    rm_negatives: float = knob(1.0, "Weight of 'negatives for free': each response preferred to "
                               "a mangled copy of itself (a word garbled or repeated, the end "
                               "cut off); 0 = off.", min=0.0, max=10.0, sources=("learned",),
                               group="rewards")
    rm_shaping: str = knob("par", "Reward shaping: none, or par (Preference-as-Reward, "
                           "sigmoid(r(y) - r(y_base)) against a base-model sample of the same "
                           "prompt: bounded and centred).", choices=("none", "par"),
                           sources=("learned",), group="rewards")

    # --- bookkeeping
    checkpoint_every: int = knob(50, "Save the policy every N steps (0 = only at the end).",
                                 min=0, max=100_000, group="run")
    samples_per_step: int = knob(8, "Completions stored and shown per step.", min=0, max=256,
                                 group="run")

    def __post_init__(self):
        for f in fields(self):
            check_value(f.name, getattr(self, f.name))
        if self.beta_min > self.beta_max:
            raise ValueError(f"beta_min ({self.beta_min}) must be <= beta_max ({self.beta_max})")
        if self.kl_in == "loss" and self.kl_estimator == "k1" and self.beta > 0:
            raise ValueError("kl_in=loss with kl_estimator=k1 would not regularise: k1's "
                             "gradient is zero in expectation; use kl_estimator=k2 or k3, or "
                             "kl_in=reward")
        if self.reward_model:
            from core.storage import check_name

            check_name(self.reward_model)
        if self.min_new_tokens:
            from core.tasks import get_task

            longest = self.max_new_tokens or get_task(self.task).max_new_tokens
            if self.min_new_tokens > longest:
                raise ValueError(f"min_new_tokens ({self.min_new_tokens}) must be <= "
                                 f"max_new_tokens ({longest}"
                                 f"{'' if self.max_new_tokens else f', task {self.task}'}); "
                                 f"lower it or raise max_new_tokens")
        if self.algo in ROUND_LEARNERS and self.feedback_unsure:
            raise ValueError(f"feedback_unsure reads a reward model's members, and {self.algo} "
                             "has none; use feedback_every")
        if (self.reward_model or self.feedback_unsure or
                (self.feedback_every and self.algo not in ROUND_LEARNERS)) \
                and self.reward_source != "learned":
            raise ValueError("feedback_every, feedback_unsure and reward_model need "
                             "reward_source=learned (or, for feedback_every, algo=dpo)")
        if self.feedback_by == "command" and not self.feedback_command.strip():
            raise ValueError("feedback_by=command needs feedback_command, the judge program to "
                             "run, e.g. --set feedback_command='python my_judge.py' "
                             "(docs/human_feedback.md)")

    @property
    def clip_high(self) -> float:
        """The upper clip range in effect (`clip_eps_high`, resolved)."""
        if self.clip_eps_high > 0:
            return self.clip_eps_high
        return 0.28 if self.loss_type == "dapo" else self.clip_eps

    # --- construction and I/O
    @classmethod
    def for_algo(cls, algo: str, **overrides) -> RunConfig:
        """Defaults for `algo` and the task in `overrides` (their per-objective and per-task
        defaults applied), then `overrides`."""
        check_value("algo", algo)
        task = overrides.get("task", cls.task)
        check_value("task", task)
        source = overrides.get("reward_source", cls.reward_source)
        check_value("reward_source", source)
        values = {}
        for f in fields(cls):
            if algo in f.metadata["per_algo"]:
                values[f.name] = f.metadata["per_algo"][algo]
            by_source = f.metadata["per_source"].get(source, MISSING)
            if isinstance(by_source, dict):
                by_source = by_source.get(algo, MISSING)
            if by_source is not MISSING:
                values[f.name] = by_source
            if task in f.metadata["per_task"]:
                values[f.name] = f.metadata["per_task"][task]
        values.update(overrides, algo=algo)
        return cls(**values)

    @property
    def batch_size(self) -> int:
        return self.prompts_per_step * self.group_size

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], algo_defaults: bool = True) -> RunConfig:
        # Settings that no longer exist: runs and config files saved before still open.
        data = {k: v for k, v in data.items() if k not in REMOVED}
        unknown = sorted(set(data) - {f.name for f in fields(cls)}, key=str)
        if unknown and isinstance(data[unknown[0]], dict):
            raise ValueError(f"settings go at the top level, not in a table "
                             f"[{str(unknown[0])[:40]}]; every setting: `rlhf-explorer train "
                             "--list-settings`")
        if unknown:
            raise ValueError(unknown_message(unknown[0]))
        data = {k: coerce(k, v) for k, v in data.items()}
        if not algo_defaults:   # a stored run's config: what it ran with, knobs added since too
            data = {**BEFORE_KNOB, **data}
        if algo_defaults:
            return cls.for_algo(data.pop("algo", cls.algo), **data)
        return cls(**data)

    def save(self, path: str | Path) -> None:
        """Write TOML (.toml) or JSON (anything else), all at once."""
        from core.storage import write_config_file

        write_config_file(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        """A config file: TOML (.toml) or JSON (.json), by extension in any case. ValueError
        names the file and what is wrong with it."""
        from core.storage import read_config_file

        return cls.from_dict(read_config_file(path))

    def with_changes(self, **changes) -> RunConfig:
        """A validated copy; the trainer uses it for mid-run edits."""
        return replace(self, **{k: coerce(k, v) for k, v in changes.items()})


FIELDS = {f.name: f for f in fields(RunConfig)}
REMOVED = frozenset({"rm_epochs"})   # replaced by rm_steps (updates, not epochs)
# What a run saved before a knob existed did, where the knob's default does something else: a
# resumed or reopened run goes on as it ran.
BEFORE_KNOB = {"dpo_blocks": 0, "rm_members": 1, "rm_aggregate": "mean", "rm_negatives": 0.0,
               "rm_shaping": "none", "feedback_pool": 1, "feedback_base_sample": False}


def field_info(name: str) -> dict:
    """The metadata of one knob plus its type and default (for CLI help and the GUI)."""
    f = FIELDS[name]
    default = f.default if f.default is not MISSING else None
    return dict(f.metadata, name=name, type=type(default), default=default)


def live_fields() -> list[str]:
    return [n for n, f in FIELDS.items() if f.metadata["live"]]


def check_live_changes(cfg: RunConfig, changes: dict) -> RunConfig:
    """`cfg` with live edits applied, or ValueError naming a knob that cannot change mid-run or a
    value out of range. The trainer and the GUI's worker (while set-up runs) both check here."""
    allowed = set(live_fields())
    bad = sorted(set(changes) - allowed)
    if bad:
        raise ValueError(f"{', '.join(bad)} cannot change during a run; "
                         f"live knobs: {', '.join(sorted(allowed))}")
    return cfg.with_changes(**changes)


def applies(name: str, algo: str, source: str) -> bool:
    """Whether knob `name` matters for this objective and reward source."""
    meta = FIELDS[name].metadata
    return algo in meta["algos"] and (meta["sources"] is None or source in meta["sources"]
                                      or algo in meta["any_source"])


def unknown_message(name) -> str:
    """'unknown setting ...' with the closest known names, for --set, config files and edits."""
    import difflib

    close = difflib.get_close_matches(str(name).lower(), list(FIELDS), n=3)
    hint = f"did you mean {' or '.join(close)}? " if close else ""
    return (f"unknown setting {str(name)[:60]!r}; {hint}"
            "every setting: `rlhf-explorer train --list-settings`")


def coerce(name: str, value):
    """Turn text (from --set or a line edit) into the field's type; other types pass through."""
    if name not in FIELDS:
        raise ValueError(unknown_message(name))
    kind = type(FIELDS[name].default)
    if not isinstance(value, str) or kind is str:
        if kind is float and isinstance(value, int) and not isinstance(value, bool):
            return float(value)
        return value
    text = value.strip()
    try:
        if kind is bool:
            if text.lower() in ("1", "true", "yes", "on"):
                return True
            if text.lower() in ("0", "false", "no", "off"):
                return False
            raise ValueError
        if kind is int:
            return int(text)
        return float(text)
    except ValueError:
        raise ValueError(f"{name} expects {kind.__name__}, got {value!r}") from None


def check_value(name: str, value) -> None:
    """Raise ValueError naming the field and what it allows."""
    meta = FIELDS[name].metadata
    kind = type(FIELDS[name].default)
    ok_type = (isinstance(value, kind) and not (kind is int and isinstance(value, bool))
               or (kind is float and isinstance(value, int) and not isinstance(value, bool)))
    if not ok_type:
        raise ValueError(f"{name} must be {kind.__name__}, got {value!r}")
    if meta["choices"] is not None and value not in meta["choices"]:
        raise ValueError(f"{name} must be one of {', '.join(meta['choices'])}; got {value!r}")
    if kind in (int, float):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"{name} must be a finite number, got {value!r}")
        lo, hi = meta["min"], meta["max"]
        if (lo is not None and value < lo) or (hi is not None and value > hi):
            raise ValueError(f"{name} must be in [{lo}, {hi}], got {value!r}")
