"""``sentiment``: make short movie reviews positive.

Reward (hidden, in [-1, 1]) of the whole sentence ``prompt + completion``::

    invalid sentence                     -> -1
    valid sentence                       -> tanh(S / 4)
    S = sum over sentiment words w of  weight(w) * m(w)
        weight: strong positive +2 (superb, loved, masterpiece ...), mild positive +1 (good, fun
                ...), mild negative -1 (dull, slow ...), strong negative -2 (awful, hated ...),
                every other word 0
        m(w) = 1.5 after an intensifier (very, really, truly, so), 0.5 after a downtoner
               (fairly, somewhat, rather), else 1

"Invalid" is ``SentenceChecker``'s verdict: an unknown word, a word pair the review grammar never
produces ("superb superb"), irregular spacing, no final "." (a truncated or run-on completion),
more than one sentence, or a content word used twice. All of them score -1, below any real review.

Why tanh(S/4): "good" gives 0.24, "superb" 0.46, "truly superb" 0.64, two strong words 0.76, and
only a complete sentence that packs three or more strong, intensified positive words without a
negative one into 48 characters gets past 0.9, so RL keeps finding improvements long after it has
learned to "be positive". The corpus is slightly negative: the mean reward of its lines is about
-0.02 (see tests), and a sampling base model, which also writes some invalid sentences, starts
lower still.
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

STRONG_POS = ("superb", "brilliant", "wonderful", "stunning", "terrific", "excellent", "masterful")
MILD_POS = ("good", "fun", "funny", "moving", "clever", "charming", "lovely", "sweet", "smart",
            "fresh", "gripping", "touching")
MILD_NEG = ("dull", "boring", "weak", "slow", "messy", "bland", "silly", "flat", "tedious",
            "clumsy", "lazy", "predictable", "stale")
STRONG_NEG = ("awful", "terrible", "dreadful", "horrible", "painful", "pointless", "unwatchable")
NEUTRAL_ADJ = ("long", "short", "quiet", "loud", "strange", "simple", "dark", "familiar",
               "different", "serious", "ordinary")
POS_NOUN = {"gem": 2.0, "masterpiece": 2.0, "triumph": 2.0, "joy": 1.0, "delight": 1.0,
            "treat": 1.0}
NEG_NOUN = {"disaster": -2.0, "mess": -2.0, "bore": -1.0, "letdown": -1.0, "chore": -1.0}
GENRE = ("comedy", "drama", "thriller", "remake", "sequel", "western", "musical", "romance")
POS_VERB = {"loved": 2.0, "liked": 1.0, "enjoyed": 1.0}
NEG_VERB = {"hated": -2.0, "disliked": -1.0}
NEU_VERB = ("watched", "saw", "remember", "rewatched")
SUBJ_NOUN = ("film", "movie", "plot", "story", "acting", "cast", "ending", "script", "music",
             "dialogue", "pacing", "director", "soundtrack", "humor", "camera", "lead")
THIS_NOUN = ("film", "movie", "show", "sequel")
COPULA = ("was", "is", "felt", "seemed")
INTENSIFIERS = {"very": 1.5, "really": 1.5, "truly": 1.5, "so": 1.5}
DOWNTONERS = {"fairly": 0.5, "somewhat": 0.5, "rather": 0.5}

WEIGHTS: dict[str, float] = {
    **{w: 2.0 for w in STRONG_POS}, **{w: 1.0 for w in MILD_POS},
    **{w: -1.0 for w in MILD_NEG}, **{w: -2.0 for w in STRONG_NEG},
    **POS_NOUN, **NEG_NOUN, **POS_VERB, **NEG_VERB,
}
FUNCTION_WORDS = frozenset(
    {"the", "this", "it", "a", "i", "and", "but", "thought", "found", "overall", "honestly",
     ",", ".", *COPULA, *INTENSIFIERS, *DOWNTONERS}
)
SCALE = 4.0
INVALID = -1.0

# Mood of a sentence -> weight. Tuned so the corpus's mean reward is slightly negative.
MOODS: dict[str, float] = {"POS": 0.30, "NEG": 0.36, "NEU": 0.18, "MIX_PN": 0.08, "MIX_NP": 0.08}


def _consonant(words) -> tuple[str, ...]:
    return tuple(w for w in words if w[0] not in "aeiou")


def _grammar() -> Grammar:
    adj = {"POS": STRONG_POS + MILD_POS, "NEG": MILD_NEG + STRONG_NEG, "NEU": NEUTRAL_ADJ}
    noun = {"POS": tuple(POS_NOUN), "NEG": tuple(NEG_NOUN)}
    verb = {"POS": tuple(POS_VERB), "NEG": tuple(NEG_VERB), "NEU": NEU_VERB}
    r: dict[str, list[Rule]] = {
        "S": [(w, (f"S_{m}",)) for m, w in MOODS.items()],
        "SUBJ": [(4.0, ("the", "SNOUN")), (1.0, ("this", "TNOUN")), (0.4, ("it",))],
        "OBJ": [(4.0, ("the", "SNOUN")), (1.0, ("this", "TNOUN"))],
        "SNOUN": alternatives(*SUBJ_NOUN),
        "TNOUN": alternatives(*THIS_NOUN),
        "COP": alternatives(*COPULA),
        "INT": alternatives(*INTENSIFIERS),
        "INTA": alternatives("very", "really", "truly"),  # after "a"
        "DOWN": alternatives(*DOWNTONERS),
        "GENRE": alternatives(*GENRE),
    }
    for p in ("POS", "NEG", "NEU"):
        r[f"ADJ_{p}"] = alternatives(*adj[p])
        r[f"ADJC_{p}"] = alternatives(*_consonant(adj[p]))
        r[f"ADJP_{p}"] = [(6.0, (f"ADJ_{p}",)), (3.0, ("INT", f"ADJ_{p}")),
                          (1.0, ("DOWN", f"ADJ_{p}"))]
        r[f"LIST_{p}"] = [(3.0, (f"ADJP_{p}", "and", f"ADJ_{p}")),
                          (1.0, (f"ADJ_{p}", ",", f"ADJ_{p}", "and", f"ADJ_{p}"))]
        nounp = [(2.0, ("a", f"ADJC_{p}", "GENRE")), (1.0, ("a", "INTA", f"ADJ_{p}", "GENRE"))]
        if p in noun:
            nounp.append((2.0, ("a", f"NOUN_{p}")))
            r[f"NOUN_{p}"] = alternatives(*noun[p])
        r[f"NOUNP_{p}"] = nounp
        r[f"VERB_{p}"] = alternatives(*verb[p])
        r[f"S_{p}"] = [
            (5.0, ("SUBJ", "COP", f"ADJP_{p}", ".")),
            (3.0, ("SUBJ", "COP", f"LIST_{p}", ".")),
            (2.0, ("SUBJ", "COP", f"NOUNP_{p}", ".")),
            (2.0, ("i", "thought", "SUBJ", "was", f"ADJP_{p}", ".")),
            (1.5, ("i", "found", "OBJ", f"ADJP_{p}", ".")),
            (1.5, ("i", f"VERB_{p}", "OBJ", ".")),
            (1.5, ("overall", ",", "SUBJ", "COP", f"ADJP_{p}", ".")),
            (1.0, ("honestly", ",", "SUBJ", "COP", f"LIST_{p}", ".")),
            (2.0, ("SUBJ", "COP", f"ADJP_{p}", "and", "SUBJ", "COP", f"ADJP_{p}", ".")),
        ]
    for name, (p, q) in {"MIX_PN": ("POS", "NEG"), "MIX_NP": ("NEG", "POS")}.items():
        r[f"S_{name}"] = [
            (2.0, ("SUBJ", "COP", f"ADJP_{p}", ",", "but", "SUBJ", "COP", f"ADJP_{q}", ".")),
            (1.5, ("SUBJ", "COP", f"ADJP_{p}", "but", f"ADJ_{q}", ".")),
            (1.0, ("i", "thought", "SUBJ", "was", f"ADJP_{p}", ",", "but", f"ADJ_{q}", ".")),
        ]
    return Grammar(r)


class SentimentTask(SentenceTask):
    name = "sentiment"
    description = (
        "Continue a short movie review so that it reads as positive as possible: strong, "
        "intensified praise in one well-formed sentence ending in '.'."
    )
    max_new_tokens = 48
    reward_range = (-1.0, 1.0)
    max_line_chars = 62

    def __init__(self) -> None:
        self.grammar = _grammar()
        self.checker = SentenceChecker(self.grammar, FUNCTION_WORDS)
        # Prompt words carry no sentiment (nor a modifier of it): the completion sets the tone.
        self._prompt_words = frozenset(
            self.grammar.terminals - set(WEIGHTS) - set(INTENSIFIERS) - set(DOWNTONERS)
        )
        self._max_completion = self.max_new_tokens - 2  # leave room for EOS

    # ---------------------------------------------------------------- text generation
    def _split(self, line: str, rng: np.random.Generator) -> tuple[str, str] | None:
        return split_words(line, rng, self.max_prompt_chars, self._max_completion,
                           allowed=self._prompt_words)

    def _lines(self, n: int, rng: np.random.Generator) -> list[tuple[str, tuple[str, str]]]:
        u = Uniforms(rng)
        out: list[tuple[str, tuple[str, str]]] = []
        while len(out) < n:
            line = self._text(self.grammar.generate(u))
            if line is None:
                continue
            cut = self._split(line, rng)
            if cut is not None:
                out.append((line, cut))
        return out

    # ---------------------------------------------------------------- reward
    @staticmethod
    def score(tokens: tuple[str, ...] | list[str]) -> float:
        """S: the weighted sum of sentiment words (see the module docstring)."""
        s, prev = 0.0, ""
        for t in tokens:
            w = WEIGHTS.get(t)
            if w is not None:
                s += w * INTENSIFIERS.get(prev, DOWNTONERS.get(prev, 1.0))
            prev = t
        return s

    def _verdict(self, prompt: str, completion: str) -> tuple[float, Verdict]:
        v = self.checker.check(prompt + completion)
        if not v.valid:
            return INVALID, v
        return math.tanh(self.score(v.tokens) / SCALE), v

    def true_reward(self, prompt: str, completion: str) -> float:
        return self._verdict(prompt, completion)[0]

    def reward_info(self, prompt: str, completion: str) -> dict[str, object]:
        r, v = self._verdict(prompt, completion)
        reason = f"S={self.score(v.tokens):+.1f}" if v.valid else v.reason
        return {"reward": r, "reason": reason, "valid": v.valid}
