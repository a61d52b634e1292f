"""``length``: write a plain sentence of exactly nine words.

Sentences come from a small grammar of scenes ("a red fox runs over the hill.", "at dawn, the tired
dog sleeps near the barn and a small bird sings."). The pretraining corpus spreads its lengths
over 3..13 words with most mass on short and long sentences and little at 8..10, so the base
model rarely hits the target and RL has to discover it; the curve climbs in a different shape
from ``sentiment`` (a few quick gains, then a search for the exact count).

Reward (hidden, in [0, 1]) of the whole sentence ``prompt + completion``::

    invalid sentence -> 0
    valid sentence   -> exp(-|n - 9| / 2),   n = number of words (punctuation not counted)

so 9 words give 1.0, 8 or 10 give 0.61, 7 or 11 give 0.37, 3 words give 0.05. "Invalid" uses the
same checks as ``sentiment`` (``SentenceChecker``): unknown word, a word pair the grammar never
produces, irregular spacing, no final "." (truncated), more than one sentence, or a content word
used twice (so "the dog and the dog and ..." cannot pad a sentence to nine words).
"""

from __future__ import annotations

import math

import numpy as np

from .base import (
    Grammar,
    Rule,
    SentenceChecker,
    SentenceTask,
    Uniforms,
    Verdict,
    alternatives,
    split_words,
)

TARGET_WORDS = 9
FALLOFF = 2.0
INVALID = 0.0

ANIMALS = ("fox", "dog", "cat", "bird", "boy", "girl", "man", "horse", "cow", "duck", "goat",
           "wolf", "bear", "child", "hen", "pig")
ADJS = ("red", "big", "small", "brown", "white", "little", "tall", "young", "black", "grey",
        "lazy", "happy", "tired", "calm")
PLACES = ("hill", "river", "road", "tree", "house", "field", "bridge", "lake", "wall", "garden",
          "barn", "fence", "pond", "gate", "farm", "path")
PREPS = ("over", "under", "near", "by", "past", "along", "across", "behind", "in", "to")
VI = ("runs", "walks", "sleeps", "sits", "jumps", "swims", "sings", "waits", "plays", "rests",
      "hides", "stands", "lies", "dances")
VT = ("sees", "finds", "follows", "watches", "chases", "meets", "helps", "calls")
ADVS = ("slowly", "quickly", "quietly", "alone", "again", "today", "often", "happily")
TIMES = (("at", "dawn"), ("at", "night"), ("at", "noon"), ("in", "the", "rain"),
         ("every", "day"), ("in", "winter"), ("at", "dusk"))
FUNCTION_WORDS = frozenset({"a", "the", "and", "at", "every", ",", ".", *PREPS})

# Corpus length histogram (words -> weight): spread over 3..13, thin around the target.
LENGTH_WEIGHTS: dict[int, float] = {3: 8, 4: 12, 5: 13, 6: 11, 7: 7, 8: 3, 9: 2, 10: 3, 11: 7,
                                    12: 10, 13: 5}


def _grammar() -> Grammar:
    r: dict[str, list[Rule]] = {
        "S": [(4.0, ("CL", ".")), (4.0, ("CL", "and", "CL", ".")),
              (1.5, ("TIME", ",", "CL", ".")), (1.5, ("CL", "TIME", ".")),
              (1.5, ("TIME", ",", "CL", "and", "CL", "."))],
        "CL": [(2.0, ("NP", "VI")), (2.0, ("NP", "VI", "ADV")), (3.0, ("NP", "VI", "PP")),
               (1.0, ("NP", "VI", "ADV", "PP")), (1.0, ("NP", "VI", "PP", "PP")),
               (2.0, ("NP", "VT", "NP")), (1.5, ("NP", "VT", "NP", "PP"))],
        "NP": [(3.0, ("DET", "N")), (2.0, ("DET", "ADJ", "N")), (0.7, ("DET", "ADJ", "ADJ", "N"))],
        "PP": [(3.0, ("PREP", "DET", "PLACE")), (1.5, ("PREP", "DET", "ADJ", "PLACE"))],
        "DET": alternatives("a", "the"),
        "N": alternatives(*ANIMALS),
        "ADJ": alternatives(*ADJS),
        "PLACE": alternatives(*PLACES),
        "PREP": alternatives(*PREPS),
        "VI": alternatives(*VI),
        "VT": alternatives(*VT),
        "ADV": alternatives(*ADVS),
        "TIME": [(1.0, t) for t in TIMES],
    }
    return Grammar(r)


def length_reward(n_words: int) -> float:
    return math.exp(-abs(n_words - TARGET_WORDS) / FALLOFF)


class LengthTask(SentenceTask):
    name = "length"
    description = (
        "Finish a plain sentence so that it has exactly nine words, well-formed and ending "
        "in '.'; the reward falls off with the distance from nine."
    )
    max_new_tokens = 48
    reward_range = (0.0, 1.0)
    max_line_chars = 62

    def __init__(self) -> None:
        self.grammar = _grammar()
        self.checker = SentenceChecker(self.grammar, FUNCTION_WORDS)
        self._max_completion = self.max_new_tokens - 2  # leave room for EOS
        lengths = np.array(sorted(LENGTH_WEIGHTS))
        weights = np.array([LENGTH_WEIGHTS[n] for n in lengths], dtype=float)
        self._lengths, self._p = lengths.tolist(), (weights / weights.sum()).tolist()

    def _split(self, line: str, rng: np.random.Generator) -> tuple[str, str] | None:
        return split_words(line, rng, self.max_prompt_chars, self._max_completion)

    def _lines(self, n: int, rng: np.random.Generator) -> list[tuple[str, tuple[str, str]]]:
        """n lines whose word counts follow LENGTH_WEIGHTS: draw the counts, then fill each
        length's quota from one stream of grammar sentences (in generation order)."""
        u = Uniforms(rng)
        targets = rng.choice(self._lengths, size=n, p=self._p).tolist()
        need = {k: targets.count(k) for k in self._lengths}
        out: list[tuple[str, tuple[str, str]]] = []
        for _ in range(1000 * n + 10_000):
            if len(out) == n:
                return out
            tokens = self.grammar.generate(u)
            k = sum(t not in (",", ".") for t in tokens)
            if not need.get(k):
                continue
            line = self._text(tokens)
            cut = None if line is None else self._split(line, rng)
            if cut is not None:
                out.append((line, cut))
                need[k] -= 1
        if len(out) == n:
            return out
        raise RuntimeError("length: could not fill the corpus length histogram")  # pragma: no cover

    def _verdict(self, prompt: str, completion: str) -> tuple[float, Verdict]:
        v = self.checker.check(prompt + completion)
        if not v.valid:
            return INVALID, v
        return length_reward(sum(t not in (",", ".") for t in v.tokens)), v

    def true_reward(self, prompt: str, completion: str) -> float:
        return self._verdict(prompt, completion)[0]

    def reward_info(self, prompt: str, completion: str) -> dict[str, object]:
        r, v = self._verdict(prompt, completion)
        if v.valid:
            reason = f"{sum(t not in (',', '.') for t in v.tokens)} words"
        else:
            reason = v.reason
        return {"reward": r, "reason": reason, "valid": v.valid}
